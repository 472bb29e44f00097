"""A SERVER span per HTTP request, so Jaeger shows each request with its queries as children.

The host's job, not the package's: a real app would use its HTTP instrumentation
(opentelemetry-instrumentation-asgi). The demo keeps to twenty lines and no extra dependency.
It uses the provider ``Telemetry`` set up (none unless an OTLP endpoint or a provider is given)
and leaves ``/health`` untraced, as the package does for its probes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlencode

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personal_assistant_db import Telemetry
from personal_assistant_db.telemetry.exporter import DEFAULT_SERVICE_NAME

_ID = re.compile(r"/\d+(?=/|$)")


def jaeger_search_url(environ: Mapping[str, str]) -> str | None:
    """The Jaeger UI's search for this service's traces, when spans are exported (else None).

    ``JAEGER_UI_URL`` (default ``http://127.0.0.1:16686``) is where a browser reaches the UI, which
    is not the OTLP endpoint the app exports to (``http://jaeger:4318`` inside compose)."""
    if not (
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    ):
        return None
    ui = environ.get("JAEGER_UI_URL", "http://127.0.0.1:16686").rstrip("/")
    service = environ.get("OTEL_SERVICE_NAME", "").strip() or DEFAULT_SERVICE_NAME
    return f"{ui}/search?{urlencode({'service': service, 'limit': 20, 'lookback': '15m'})}"


class RequestSpans:
    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        provider = self.telemetry.export.provider
        path: str = scope.get("path", "")
        if scope["type"] != "http" or provider is None or path.startswith("/health"):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        route = _ID.sub("/{id}", path)  # low-cardinality span name
        tracer = provider.get_tracer("examples.demo")
        attributes = {"http.request.method": method, "url.path": path, "http.route": route}
        with tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.SERVER, attributes=attributes
        ) as span:

            async def traced_send(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await self.app(scope, receive, traced_send)
