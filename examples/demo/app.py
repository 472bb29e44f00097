"""The demo's Starlette app: a host that uses personal_assistant_db the documented way.

- one ``Database`` from the environment, its lifespan combined with the app's own;
- ``Mount("/health", app=db.health_app(...))``: liveness, readiness, metrics;
- ``Telemetry(db)``: a span per query under a SERVER span per request (``tracing.py``),
  exported when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; semconv metrics; P50/P95/P99;
- endpoints over the RBAC tables in SQLAlchemy Core: create a user, grant a role, check a
  permission (audited), list audit events.
"""

from __future__ import annotations

import html
import ipaddress
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from personal_assistant_db import Database, ReadYourWritesMiddleware, Telemetry, combine_lifespans

from . import store, validation
from .passwords import hash_password
from .tracing import RequestSpans, jaeger_search_url
from .validation import BadInput

__all__ = ["create_app"]

INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>personal-assistant-db demo</title></head>
<body><h1>personal-assistant-db demo</h1>
<p>A small personal-assistant API on PostgreSQL. Try:</p>
<pre>
curl -s -XPOST localhost:8000/users -d '{"email": "ada@example.com", "password": "correct horse"}'
curl -s -XPOST localhost:8000/users/1/roles -d '{"role": "premium"}'
curl -s -XPOST localhost:8000/users/1/access-checks -d '{"permission": "assistant:advanced"}'
curl -s localhost:8000/audit-events
</pre>
<ul>
<li><a href="roles">roles and their permissions</a></li>
<li><a href="audit-events">audit events</a></li>
<li><a href="stats">query P50/P95/P99 and pool</a></li>
<li><a href="health/dashboard">health dashboard</a>, <a href="health/ready">readiness</a> and
<a href="health/">health overview</a></li>
<li><a href="health/metrics">Prometheus metrics</a></li>
<li>{traces}</li>
</ul></body></html>
"""
NO_TRACES = (
    "Traces: export is off. Set <code>OTEL_EXPORTER_OTLP_ENDPOINT</code> (docker compose up does) "
    "to send them to Jaeger."
)


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _client_ip(request: Request) -> str | None:
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def create_app(
    db: Database | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    telemetry: Telemetry | None = None,
) -> Starlette:
    """The demo app; ``db`` defaults to ``Database.from_env(environ)``. Nothing connects until
    the lifespan runs."""
    db = db if db is not None else Database.from_env(environ)
    telemetry = telemetry if telemetry is not None else Telemetry(db, environ=environ)
    search = jaeger_search_url(os.environ if environ is None else environ)
    traces = (
        f'<a href="{html.escape(search)}">this demo\'s traces in Jaeger</a> (spans per request '
        "and per query)"
        if search
        else NO_TRACES
    )
    index_page = INDEX.replace("{traces}", traces)

    @asynccontextmanager
    async def own_lifespan(app: object) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {"demo_started_at": time.time()}
        finally:
            telemetry.close()

    async def index(request: Request) -> Response:
        return HTMLResponse(index_page)

    async def create_user(request: Request) -> Response:
        body = await validation.json_object(request)
        email = validation.email(body)
        password = validation.password(body)
        name = validation.display_name(body)
        hashed = await run_in_threadpool(hash_password, password)
        user = await store.create_user(db, email, name, hashed)  # one INSERT .. RETURNING
        if user is None:
            return _json({"error": f"email: {email} is already registered", "field": "email"}, 409)
        return _json(user | {"roles": []}, 201)

    async def get_user(request: Request) -> Response:
        uid = validation.user_id(request.path_params["user_id"])
        user = await store.get_user(db, uid)
        if user is None:
            return _json({"error": f"user {uid} does not exist"}, 404)
        return _json(user)

    async def grant_role(request: Request) -> Response:
        uid = validation.user_id(request.path_params["user_id"])
        role = validation.role(await validation.json_object(request))
        async with db.transaction() as tx:
            if not await store.user_exists(tx, uid):
                return _json({"error": f"user {uid} does not exist"}, 404)
            try:
                created = await store.grant_role(tx, uid, role)
            except store.UnknownRole:
                known = ", ".join(await store.known_role_names(tx))
                raise BadInput("role", f"no role named {role!r} (known: {known})") from None
            roles = await store.current_roles(tx, uid)
        return _json({"user_id": uid, "role": role, "roles": roles}, 201 if created else 200)

    async def check_access(request: Request) -> Response:
        uid = validation.user_id(request.path_params["user_id"])
        resource, action = validation.permission(await validation.json_object(request))
        async with db.transaction() as tx:
            if not await store.user_exists(tx, uid):
                return _json({"error": f"user {uid} does not exist"}, 404)
            decision = await store.check_permission(tx, uid, resource, action, _client_ip(request))
        return _json(
            {
                "user_id": uid,
                "permission": f"{resource}:{action}",
                "allowed": decision.allowed,
                "roles_checked": decision.roles_checked,
                "reason": decision.reason,
            }
        )

    async def audit_events(request: Request) -> Response:
        raw_user = request.query_params.get("user_id")
        uid = validation.user_id(raw_user) if raw_user is not None else None
        limit = validation.limit(request.query_params.get("limit"))
        events = await store.list_audit(db, user_id=uid, limit=limit)
        return _json({"events": events})

    async def list_roles(request: Request) -> Response:
        return _json({"roles": await store.list_roles(db)})

    async def stats(request: Request) -> Response:
        latency = {
            op: {
                "count": v.count,
                "p50_ms": v.p50 * 1e3,
                "p95_ms": v.p95 * 1e3,
                "p99_ms": v.p99 * 1e3,
            }
            for op, v in sorted(telemetry.latency_snapshot().items())
        }
        p95 = telemetry.overall_p95()
        return _json(
            {
                "overall_p95_ms": None if p95 is None else p95 * 1e3,
                "p95_over_budget": telemetry.p95_over_budget(),
                "operations": latency,
                "pool": db.pool_stats().as_dict(),
            }
        )

    async def bad_input(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadInput)
        return _json({"error": str(exc), "field": exc.field}, 422)

    routes: list[BaseRoute] = [
        Route("/", index),
        Route("/users", create_user, methods=["POST"]),
        Route("/users/{user_id}", get_user),
        Route("/users/{user_id}/roles", grant_role, methods=["POST"]),
        Route("/users/{user_id}/access-checks", check_access, methods=["POST"]),
        Route("/audit-events", audit_events),
        Route("/roles", list_roles),
        Route("/stats", stats),
        # live, ready (database, pool, migrations at head), database, pool, metrics
        Mount("/health", app=db.health_app(telemetry=telemetry, require_migrations=True)),
    ]
    return Starlette(
        routes=routes,
        lifespan=combine_lifespans(db.lifespan, own_lifespan),
        # Transient database failures -> 503 + Retry-After (problem+json); the rest stay 500.
        exception_handlers={**db.exception_handlers(), BadInput: bad_input},
        middleware=[
            Middleware(RequestSpans, telemetry=telemetry),
            # Carries each client's last write (cookie pa_db_rw) so its next reads see it.
            Middleware(ReadYourWritesMiddleware, db=db),
        ],
    )
