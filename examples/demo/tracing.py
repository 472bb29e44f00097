"""A SERVER span per HTTP request, so Jaeger shows each request with its queries as children.

The host's job, not the package's: a real app would use its HTTP instrumentation
(opentelemetry-instrumentation-asgi). The demo keeps to twenty lines and no extra dependency.
It uses the provider ``Telemetry`` set up (none unless an OTLP endpoint or a provider is given)
and leaves ``/health`` untraced, as the package does for its probes.
"""

from __future__ import annotations

import re

from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from personal_assistant_db import Telemetry

_ID = re.compile(r"/\d+(?=/|$)")


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
