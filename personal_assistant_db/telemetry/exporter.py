"""Trace export set up from the standard ``OTEL_*`` variables (the one place that reads them).

``tracer_provider_from_env()``:

1. If the host already installed a global TracerProvider, returns it, owned by the host: we
   change nothing global and never shut it down.
2. ``OTEL_SDK_DISABLED=true``, or no OTLP endpoint configured: no provider (no spans; metrics
   and percentiles still work).
3. Otherwise a private SDK TracerProvider: resource from ``OTEL_SERVICE_NAME`` (default: the
   ``DB_APPLICATION_NAME`` setting, itself ``personal-assistant-db`` by default), sampler from
   ``OTEL_TRACES_SAMPLER(_ARG)``, a BatchSpanProcessor and the OTLP/HTTP exporter on
   ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``.
   Export runs on the processor's thread, so an endpoint that is down never blocks a query;
   failed batches are counted and logged.

A garbage value gets a warning naming the variable, what was expected and the fallback used; it
never raises.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from ..logs import get_logger

__all__ = [
    "DEFAULT_SERVICE_NAME",
    "SHUTDOWN_FLUSH_SECONDS",
    "CountingSpanExporter",
    "TraceExport",
    "service_name_from_env",
    "tracer_provider_from_env",
]

DEFAULT_SERVICE_NAME = "personal-assistant-db"
#: Seconds a stopping app may spend flushing spans (the endpoint may be down).
SHUTDOWN_FLUSH_SECONDS = 2.0
_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
log = get_logger()


class CountingSpanExporter(SpanExporter):
    """Wraps an exporter; counts spans in batches that failed and logs a warning for each."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.exported = 0
        self.dropped = 0
        self.closed = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.closed:  # past the shutdown flush budget: drop (counted), never wait
            self.dropped += len(spans)
            log.warning("otel.spans.dropped", count=len(spans), dropped_total=self.dropped,
                        cause="shutdown flush budget spent")  # fmt: skip
            return SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        except Exception as exc:  # the exporter's thread must survive; counted and logged
            result = SpanExportResult.FAILURE
            cause = type(exc).__name__
        else:
            cause = "export failed"
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.dropped += len(spans)
            log.warning(
                "otel.spans.dropped", count=len(spans), dropped_total=self.dropped, cause=cause
            )
        return result

    def shutdown(self) -> None:
        if not self.closed:
            self.closed = True
            self.inner.shutdown()  # the OTLP exporter also cuts a retry backoff short

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


@dataclass
class TraceExport:
    """What ``tracer_provider_from_env`` set up. ``owned`` providers are ours to shut down."""

    provider: trace.TracerProvider | None
    owned: bool = False
    exporter: CountingSpanExporter | None = None
    endpoint: str | None = None

    def shutdown(self, timeout: float = SHUTDOWN_FLUSH_SECONDS) -> None:
        """Flush and stop an owned provider within ``timeout`` seconds (blocking: call it off
        the event loop). With the endpoint down, the OTLP exporter retries with backoff for up to
        its own timeout (10 s), and the provider's shutdown waits for it: a stop took ~7 s. Here
        the flush gets ``timeout``; then the exporter is closed (what is left is dropped and
        counted) and the provider is shut down from a daemon thread waited on for what remains
        of the budget, so neither the stop nor the interpreter's exit waits for the network."""
        provider = self.provider
        if not self.owned or not isinstance(provider, TracerProvider):
            return
        deadline = time.monotonic() + timeout
        flushed = threading.Thread(
            target=provider.force_flush, args=(int(timeout * 1000),), daemon=True
        )
        flushed.start()
        flushed.join(max(0.0, timeout - 0.25))  # a quarter second left to close
        if self.exporter is not None:
            self.exporter.shutdown()
        closing = threading.Thread(target=provider.shutdown, name="pa-db-otel-stop", daemon=True)
        closing.start()
        closing.join(max(0.05, deadline - time.monotonic()))


def _warn(variable: str, value: str, expected: str, fallback: str) -> None:
    log.warning(
        "otel.config.invalid",
        variable=variable,
        value=value[:60],
        expected=expected,
        fallback=fallback,
    )


def _disabled(env: Mapping[str, str]) -> bool:
    raw = env.get("OTEL_SDK_DISABLED", "").strip().lower()
    if raw in ("", "false"):
        return False
    if raw == "true":
        return True
    _warn("OTEL_SDK_DISABLED", raw, "true or false", "false (SDK enabled)")
    return False


def _endpoint(env: Mapping[str, str]) -> str | None:
    raw = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    variable = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    if not raw:
        base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
        if not base:
            return None
        variable, raw = "OTEL_EXPORTER_OTLP_ENDPOINT", base.rstrip("/") + "/v1/traces"
    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        _warn(variable, raw, "an http(s) URL, e.g. http://localhost:4318", "no trace export")
        return None
    return raw


def _ratio(env: Mapping[str, str]) -> float:
    raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        _warn("OTEL_TRACES_SAMPLER_ARG", raw, "a ratio between 0 and 1", "1.0")
        return 1.0
    return value


def sampler_from_env(env: Mapping[str, str]) -> Sampler:
    name = env.get("OTEL_TRACES_SAMPLER", "").strip().lower() or "parentbased_always_on"
    if name not in _SAMPLERS:
        _warn("OTEL_TRACES_SAMPLER", name, ", ".join(_SAMPLERS), "parentbased_always_on")
        name = "parentbased_always_on"
    root: Sampler
    if name.endswith("traceidratio"):
        root = TraceIdRatioBased(_ratio(env))
    elif name.endswith("always_off"):
        root = ALWAYS_OFF
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def _host_provider() -> trace.TracerProvider | None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider


def service_name_from_env(
    environ: Mapping[str, str] | None = None, default: str = DEFAULT_SERVICE_NAME
) -> str:
    """``OTEL_SERVICE_NAME``, or ``default`` (the app's ``DB_APPLICATION_NAME``) when unset.

    Without this, OpenTelemetry's own default is ``unknown_service:python``."""
    env = os.environ if environ is None else environ
    return env.get("OTEL_SERVICE_NAME", "").strip() or default


def tracer_provider_from_env(
    environ: Mapping[str, str] | None = None,
    *,
    export_timeout: float = 10.0,
    schedule_delay: float = 1.0,
    service_name: str | None = None,
) -> TraceExport:
    """The host's provider if it set one, else ours from ``OTEL_*``, else none (see module doc)."""
    host = _host_provider()
    if host is not None:
        return TraceExport(provider=host, owned=False)
    env = os.environ if environ is None else environ
    if _disabled(env):
        return TraceExport(provider=None)
    endpoint = _endpoint(env)
    if endpoint is None:
        return TraceExport(provider=None)
    service = service_name or service_name_from_env(env)
    # Imported here: it pulls in requests and protobuf, which a process without export skips.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: service}),
        sampler=sampler_from_env(env),
        shutdown_on_exit=False,
    )
    try:  # it also reads OTEL_EXPORTER_OTLP_* (headers, compression, certificates) itself
        otlp = OTLPSpanExporter(endpoint=endpoint, timeout=export_timeout)
    except (ValueError, TypeError, OSError) as exc:
        _warn("OTEL_EXPORTER_OTLP_*", str(exc), "values the OTLP exporter accepts", "no export")
        return TraceExport(provider=None)
    exporter = CountingSpanExporter(otlp)
    delay = schedule_delay * 1000
    try:  # BatchSpanProcessor reads OTEL_BSP_* and raises on bad values
        processor = BatchSpanProcessor(exporter, schedule_delay_millis=delay)
    except ValueError as exc:
        _warn("OTEL_BSP_*", str(exc), "positive whole numbers", "the SDK defaults")
        processor = BatchSpanProcessor(
            exporter,
            max_queue_size=2048,
            schedule_delay_millis=delay,
            max_export_batch_size=512,
            export_timeout_millis=30_000,
        )
    provider.add_span_processor(processor)
    log.info("otel.tracing.export", endpoint=endpoint, service_name=service)
    return TraceExport(provider=provider, owned=True, exporter=exporter, endpoint=endpoint)
