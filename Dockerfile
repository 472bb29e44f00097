# personal-assistant-db: the package in a venv, plus the demo app, on Debian bookworm slim.
# Build: docker build -t personal-assistant-db .   (docs/containers.md)
# Pin the base by digest for reproducible builds, e.g.
#   docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- builder: build the wheel and install it with its dependencies into /opt/venv ----------
FROM ${BASE_IMAGE} AS builder
# The classic builder leaves this stage behind as an untagged image whose history holds the
# build args; scripts/container-smoke removes images with this label after the build.
LABEL pa-db-stage=builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# pip talks to PyPI. Behind a TLS-intercepting egress proxy, pass its CA certificate (public,
# not a secret) as PEM text: EXTRA_CA_PEM="$(cat proxy-ca.crt)"; it is appended to a copy of
# the system bundle for pip only. PIP_FIND_LINKS/PIP_NO_INDEX=1 point pip at a wheel mirror
# instead. All three exist in the builder stage only: the runtime image never sees them.
ARG EXTRA_CA_PEM
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
RUN python3 -m venv /opt/venv
COPY pyproject.toml setup.cfg README.md ./
COPY personal_assistant_db ./personal_assistant_db
# Dependencies come pinned by their bounds in pyproject.toml; the wheel is built from this tree.
RUN if [ -n "${EXTRA_CA_PEM:-}" ]; then \
        cat /etc/ssl/certs/ca-certificates.crt > /tmp/pip-ca.pem \
        && printf '%s\n' "$EXTRA_CA_PEM" >> /tmp/pip-ca.pem \
        && export PIP_CERT=/tmp/pip-ca.pem; \
    fi \
    && /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install "$(ls /wheels/personal_assistant_db-*.whl)[container]" \
    && /opt/venv/bin/pip uninstall --yes setuptools pip

# --- runtime: the slim base with the venv and the demo only ----------------------------------
FROM ${BASE_IMAGE}
# WEB_CONCURRENCY: worker processes (docs/scaling.md#several-workers-per-pod). 2 by default: the
# app is async and I/O-bound, so one worker per core of a typical 1-2 core container limit; a
# second worker keeps the pod serving while one restarts, and 2 x (10 + 10) connections per
# container stays small against max_connections. The workers merge their metrics, P95 and
# alerts through /tmp (a tmpfs under compose).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    WEB_CONCURRENCY=2 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY examples ./examples
# Nothing writes outside /tmp: the root filesystem can be mounted read-only (compose does).
VOLUME ["/tmp"]
USER 10001:10001
EXPOSE 8000
# Liveness without curl or wget: a stdlib one-liner (an HTTP error or refusal raises -> exit 1).
# Not `pa-db probe`: its parser imports every subcommand, 0.44 s CPU per probe against 0.04 s
# here (measured in this image). Readiness (/health/ready) is for the platform's readiness
# probe, not for restarting the container. Every 3 s because Docker < 25 ignores
# --start-interval (and the classic builder rejects it): the first check comes one interval
# after start, and the target is healthy within 5 s.
HEALTHCHECK --interval=3s --timeout=2s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8000/health/live', timeout=2).status != 200)"]
CMD ["python", "-m", "examples.demo", "--host", "0.0.0.0"]
