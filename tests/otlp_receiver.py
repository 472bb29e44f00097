"""A small local OTLP/HTTP trace receiver, standing in for Jaeger (which cannot run here).

It accepts ``POST /v1/traces`` with a protobuf ``ExportTraceServiceRequest`` (gzip or plain),
decodes it with ``opentelemetry-proto`` and keeps the spans, flattened to ``ReceivedSpan``.
Tests use it in-process; bench/tracing.py runs it as a separate process
(``python tests/otlp_receiver.py``, which prints the port) so its CPU is not billed to the bench.
"""

from __future__ import annotations

import gzip
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


@dataclass
class OtlpReceiver:
    """``with OtlpReceiver() as rx:`` listens on 127.0.0.1; ``rx.endpoint`` is the traces URL."""

    port: int = 0
    spans: list[ReceivedSpan] = field(default_factory=list)
    requests: int = 0
    count_only: bool = False
    received: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/traces"

    def start(self) -> OtlpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver._store(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _store(self, request: ExportTraceServiceRequest) -> None:
        flat = []
        for rs in request.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    if self.count_only:
                        flat.append(None)
                        continue
                    flat.append(
                        ReceivedSpan(
                            name=s.name,
                            trace_id=s.trace_id.hex(),
                            span_id=s.span_id.hex(),
                            parent_span_id=s.parent_span_id.hex(),
                            kind=s.kind,
                            status_code=s.status.code,
                            status_message=s.status.message,
                            attributes={a.key: _value(a.value) for a in s.attributes},
                            resource=resource,
                            scope=ss.scope.name,
                        )
                    )
        with self._lock:
            self.requests += 1
            self.received += len(flat)
            if not self.count_only:
                self.spans.extend(s for s in flat if s is not None)


if __name__ == "__main__":
    rx = OtlpReceiver(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0, count_only=True).start()
    print(rx.port, flush=True)
    try:
        sys.stdin.read()  # run until the parent closes our stdin
    finally:
        print(rx.received, flush=True)
        rx.stop()
