"""The Starlette app the host mounts: ``Mount("/health", app=health_app(db))``.

Routes (GET and HEAD): ``/`` overview, ``/live``, ``/ready``, ``/database``, ``/pool``,
``/dashboard`` (a self-refreshing HTML page of the public view) and, with a telemetry object,
``/metrics``. Bodies are application/health+json (``?format=text``: a Kubernetes-style list);
pass/warn -> 200, fail -> 503; always ``Cache-Control: no-store``.
A valid ``Authorization: Bearer $DB_HEALTH_TOKEN`` adds details; a wrong or missing one gets the
public view (never a 401 that would break a probe). The app has no lifespan of its own.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .alerts import AlertManager, AlertRule, Sink, default_rules
from .checks import Check
from .dashboard import CSP, render_dashboard
from .history import History
from .monitor import HealthMonitor, TelemetrySource
from .registry import HealthParts, build_groups
from .render import HEALTH_JSON, STATUS_CODES, render_json, render_text
from .runner import HealthRunner

if TYPE_CHECKING:
    from ..database import Database
    from ..workers import Pod

__all__ = ["health_app"]

_NO_STORE = {"Cache-Control": "no-store"}


def _authorized(request: Request, token: str | None) -> bool:
    if not token:
        return False
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def health_app(
    db: Database,
    *,
    checks: Sequence[Check] = (),
    telemetry: TelemetrySource | None = None,
    require_migrations: bool = False,
    alert_rules: Sequence[AlertRule] | None = None,
    alert_sinks: Sequence[Sink] = (),
) -> Starlette:
    """Build the /health app for ``db``.

    - ``checks``: the host's own checks (e.g. Redis), run in readiness and the overview. The
      built-in ones come from ``registry.BUILT_IN`` (docs/health.md: adding a check).
    - ``telemetry``: enables ``/metrics``, the query P95 in ``/database`` and its alert rule.
    - ``require_migrations``: readiness also needs migrations at head.
    - ``alert_rules``: default ``alerts.default_rules(db.settings)``; ``alert_sinks``: async
      callables or ``WebhookSink``s that receive every transition (structlog always does).
    """
    s = db.settings
    pod = _pod(db, telemetry)
    if pod is not None:
        telemetry = pod  # /metrics, P95, dashboard and alert rules see every worker of the pod
    runner = HealthRunner(ttl=s.health_ttl, fail_ttl=s.health_fail_ttl, deadline=s.health_timeout)
    parts = HealthParts.of(
        db, telemetry=telemetry, require_migrations=require_migrations, host_checks=checks
    )
    overview, groups = build_groups(parts)
    rules = list(alert_rules) if alert_rules is not None else default_rules(s)
    manager = AlertManager(rules, alert_sinks)
    history = History(interval=s.health_history_interval, window=s.health_history_window)
    monitor = HealthMonitor(
        db,
        runner,
        overview,
        manager,
        telemetry=telemetry,
        interval=max(s.health_ttl, 1.0),
        history=history,
        gate=pod,
    )
    if pod is not None:
        pod.history = history

    def active_alerts() -> list[dict[str, Any]]:
        return manager.active() if pod is None else pod.active_alerts(manager)

    def endpoint(group: Sequence[Check], label: str, with_alerts: bool = False) -> Any:
        # The last rendering per view: while results come from the cache, so does the body.
        # Keyed by the results themselves (tuple equality tries identity first: cheap on a hit).
        rendered: dict[tuple[bool, bool], tuple[Any, bytes]] = {}

        async def handle(request: Request) -> Response:
            monitor.ensure_started()
            report = await runner.run(group)
            # Parse the query string only when there is one (most probes send none).
            text = bool(request.scope["query_string"]) and (
                request.query_params.get("format") == "text"
            )
            detailed = not text and _authorized(request, s.health_token)
            alerts = active_alerts() if with_alerts else None
            pod_part = pod.summary(detailed=detailed) if with_alerts and pod is not None else None
            key = (report.results, alerts, pod_part)
            hit = rendered.get((text, detailed))
            if hit is not None and hit[0] == key:
                body = hit[1]
            elif text:
                body = render_text(report, name=label)
            else:
                description = f"personal_assistant_db {label}"
                body = render_json(
                    report,
                    description=description,
                    detailed=detailed,
                    alerts=alerts,
                    extra={"workers": pod_part} if pod_part is not None else None,
                )
            rendered[(text, detailed)] = (key, body)
            media = "text/plain; charset=utf-8" if text else HEALTH_JSON
            if request.method == "HEAD":
                body = b""
            return Response(body, STATUS_CODES[report.status], _NO_STORE, media)

        return handle

    async def metrics(request: Request) -> Response:
        if telemetry is None:
            return Response(b"not found\n", 404, _NO_STORE, "text/plain")
        if s.metrics_require_token and not _authorized(request, s.health_token):
            return Response(b"token required\n", 401, _NO_STORE, "text/plain")
        body, media = telemetry.prometheus_exposition(
            ", ".join(request.headers.getlist("accept"))  # repeated fields form one list (RFC 9110)
        )
        return Response(b"" if request.method == "HEAD" else body, 200, _NO_STORE, media)

    async def dashboard(request: Request) -> Response:
        monitor.ensure_started()
        report = await runner.run(overview)
        latency = telemetry.latency_snapshot() if telemetry is not None else None
        status, body = render_dashboard(
            report,
            alerts=active_alerts(),
            latency=latency,
            history=history.snapshots() if pod is None else pod.history_snapshots(history),
            history_interval=history.interval,
            history_window=history.window,
            budget_ms=s.query_p95_budget_ms,
            workers=pod.view() if pod is not None else None,
        )
        headers = {**_NO_STORE, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}
        if request.method == "HEAD":
            body = b""
        return Response(body, STATUS_CODES[status], headers, "text/html; charset=utf-8")

    methods = ["GET", "HEAD"]
    app = Starlette(
        routes=[
            Route("/", endpoint(overview, "health", with_alerts=True), methods=methods),
            Route("/live", endpoint(groups["live"], "livez"), methods=methods),
            Route("/ready", endpoint(groups["ready"], "readyz"), methods=methods),
            Route("/database", endpoint(groups["database"], "database"), methods=methods),
            Route("/pool", endpoint(groups["pool"], "pool"), methods=methods),
            Route("/metrics", metrics, methods=methods),
            Route("/dashboard", dashboard, methods=methods),
        ]
    )
    app.state.runner = runner
    app.state.monitor = monitor
    app.state.alerts = manager
    app.state.pod = pod
    return app


def _pod(db: Database, telemetry: TelemetrySource | None) -> Pod | None:
    """The pod view when this process is one worker of several (workers/, DB_WORKERS)."""
    from ..telemetry import Telemetry
    from ..workers import pod_for

    return pod_for(db, telemetry) if isinstance(telemetry, Telemetry) else None
