"""Hostile requests never get a 5xx from /health: generated headers and query strings, raw bytes,
through the real ASGI app on a real PostgreSQL.

The app runs on its own event loop in a background thread (where the Database lives), and each
Hypothesis example sends one raw ASGI request there: no HTTP client sits in between to tidy up
the headers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import Database, Telemetry
from personal_assistant_db.telemetry.prometheus import wants_openmetrics

TOKEN = "t0ken-for-health-details-1234"
ROUTES = ["/", "/live", "/ready", "/database", "/pool", "/metrics", "/dashboard", "/missing"]
MEDIA = ["application/openmetrics-text", "text/plain", "*/*", "application/json", "text/html"]
PARAMS = ["version", "q", "charset", "escaping", "", "version "]
NASTY = [
    b"application/openmetrics-text; version=abc",
    b"application/openmetrics-text; version=",
    b"application/openmetrics-text; version=1.0.0.0",
    b"application/openmetrics-text; version=0.0.1",
    b"application/openmetrics-text; version=2",
    b"application/openmetrics-text; escaping=nope; version=1.0.0",
    b"text/plain; version=x.y",
    b"text/plain; version=1.0.0; escaping=bogus",
    b"text/plain; version=999999999999999999999.0.0",
    b";;;,,,;=;=",
    b"\xff\xfe\x00garbage",
    b"Bearer",
    b"Bearer \xff",
    b"Basic Zm9vOmJhcg==",
]

accept_like = st.builds(
    lambda media, params: (media + "".join(f"; {k}={v}" for k, v in params)).encode(),
    st.sampled_from(MEDIA),
    st.lists(st.tuples(st.sampled_from(PARAMS), st.text(max_size=12)), max_size=3),
)
values = st.one_of(
    st.sampled_from(NASTY),
    accept_like,
    st.lists(accept_like, min_size=2, max_size=4).map(b", ".join),
    st.binary(max_size=120),
    st.integers(1_000, 70_000).map(lambda n: b"application/openmetrics-text; version=1" * n),
)
names = st.one_of(
    st.sampled_from(
        [
            *(b"accept", b"authorization", b"cookie", b"host", b"accept-encoding"),
            *(b"content-type", b"if-none-match", b"range", b"x-forwarded-for", b"content-length"),
        ]
    ),
    st.binary(min_size=1, max_size=16),
)
queries = st.one_of(
    st.binary(max_size=120),
    st.sampled_from([b"format=text", b"format=text&format=json", b"format=%ff%fe", b"%", b"&&=="]),
)
requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "HEAD"]),
        "path": st.sampled_from(ROUTES),
        "query": queries,
        "headers": st.lists(st.tuples(names, values), max_size=4),
    }
)


class AppThread:
    """A started Database and its /health app on an event loop in a background thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.db = Database.from_env(env)
        self.telemetry = Telemetry(self.db, tracing=False)
        self.run(self.db.start())
        health = self.db.health_app(telemetry=self.telemetry)
        self.app = Starlette(routes=[Mount("/health", app=health)])

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def request(self, method: str, path: str, query: bytes, headers: list) -> tuple[int, dict]:  # type: ignore[type-arg]
        return self.run(self._request(method, path, query, headers))  # type: ignore[no-any-return]

    async def _request(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, dict[bytes, bytes]]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": "/health" + path,
            "raw_path": ("/health" + path).encode(),
            "root_path": "",
            "query_string": query,
            "headers": [(k.lower(), v) for k, v in headers],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        started: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.append(message)

        await self.app(scope, receive, send)
        [start] = started
        return start["status"], dict(start["headers"])

    def close(self) -> None:
        self.run(self.db.stop())
        self.telemetry.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def app_thread(database_url: str) -> Iterator[AppThread]:
    env = {"DATABASE_URL": database_url, "DB_ENV": "test", "DB_HEALTH_TOKEN": TOKEN}
    running = AppThread(env)
    try:
        yield running
    finally:
        running.close()


@settings(max_examples=300)
@given(requests)
def test_no_hostile_request_gets_a_5xx(app_thread: AppThread, request_: dict) -> None:  # type: ignore[type-arg]
    status, headers = app_thread.request(**request_)
    assert status < 500, request_
    if request_["path"] == "/metrics":
        assert status == 200
        accept = b",".join(v for k, v in request_["headers"] if k.lower() == b"accept")
        openmetrics = wants_openmetrics(accept.decode("latin-1"))
        assert headers[b"content-type"].startswith(
            b"application/openmetrics-text; version=1.0.0" if openmetrics else b"text/plain"
        )


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        ("application/openmetrics-text; version=abc", False),
        ("text/plain; version=x.y", False),
        ("application/openmetrics-text; version=1.0.0", True),
        ("application/openmetrics-text", True),
        ("text/plain;q=0.5, application/openmetrics-text;version=1.0.0;q=0.9", True),
        ("application/openmetrics-text; version=1.0.0; q=0", False),
        ("", False),
    ],
)
def test_the_metrics_format_follows_a_valid_accept_header_only(
    app_thread: AppThread, accept: str, openmetrics: bool
) -> None:
    status, headers = app_thread.request("GET", "/metrics", b"", [(b"accept", accept.encode())])
    assert status == 200
    expected = b"application/openmetrics-text" if openmetrics else b"text/plain; version=0.0.4"
    assert headers[b"content-type"].startswith(expected)
