"""The one place health checks are registered: built-in, replica and telemetry checks alike.

``BUILT_IN`` is a tuple of ``Registration``s, read in order: each builds its checks from the parts
``health_app`` hands it (``HealthParts``; a registration never goes looking for them) and names
the routes that run them. The overview (``/health/``) runs every check once, in this order.

Adding a built-in check: write its module (a class with ``name``, ``timeout``, ``critical`` and
``async run() -> CheckResult``), then add one line here. A host's own check needs neither: pass it
in ``health_app(db, checks=[...])`` and the ``host`` registration puts it in readiness.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .checks import DatabaseCheck, LivenessCheck, MigrationsCheck, PoolCheck
from .query_latency import QueryLatencyCheck
from .replica_lag import ReplicaLagCheck, component_id
from .result import Check

if TYPE_CHECKING:
    from ..database import Database
    from ..replicas.node import Node
    from ..settings import Settings
    from .monitor import TelemetrySource

__all__ = ["BUILT_IN", "ROUTES", "HealthParts", "Registration", "Route", "build_groups"]

Route = Literal["live", "ready", "database", "pool"]
ROUTES: tuple[Route, ...] = ("live", "ready", "database", "pool")


@dataclass(frozen=True)
class HealthParts:
    """What checks are built from: handed over once by ``health_app``."""

    db: Database  # the probes' way to the primary's engine and pool
    settings: Settings
    primary: Node
    replicas: Sequence[Node]
    telemetry: TelemetrySource | None
    require_migrations: bool
    host_checks: Sequence[Check]

    @classmethod
    def of(
        cls,
        db: Database,
        *,
        telemetry: TelemetrySource | None,
        require_migrations: bool,
        host_checks: Sequence[Check],
    ) -> HealthParts:
        primary, *replicas = db.nodes
        return cls(db, db.settings, primary, replicas, telemetry, require_migrations, host_checks)


@dataclass(frozen=True)
class Registration:
    """Checks built from the parts (none is fine: no replica, no telemetry) and their routes."""

    name: str
    build: Callable[[HealthParts], Sequence[Check]]
    routes: tuple[Route, ...]


def _pools(p: HealthParts) -> list[Check]:
    # Without replicas the pool result carries no componentId (node=None: the primary's pool).
    nodes: list[Node | None] = [p.primary, *p.replicas] if p.replicas else [None]
    return [PoolCheck(p.db, node=node) for node in nodes]


def _replica_lag(p: HealthParts) -> list[Check]:
    # warn only: reads fall back to the primary, so replica trouble never fails readiness.
    nodes, max_lag = [p.primary, *p.replicas], p.settings.replica_max_lag_ms
    return [ReplicaLagCheck(n, component_id(nodes, n), max_lag_ms=max_lag) for n in p.replicas]


def _query_p95(p: HealthParts) -> list[Check]:
    if p.telemetry is None:
        return []
    return [QueryLatencyCheck(p.telemetry, budget_ms=p.settings.query_p95_budget_ms)]


BUILT_IN: tuple[Registration, ...] = (
    Registration("liveness", lambda p: [LivenessCheck()], ("live",)),
    Registration("database", lambda p: [DatabaseCheck(p.db)], ("ready", "database")),
    Registration("pool", _pools, ("ready", "pool")),
    Registration("replica lag", _replica_lag, ("ready",)),
    Registration(
        "migrations", lambda p: [MigrationsCheck(p.db)] if p.require_migrations else [], ("ready",)
    ),
    Registration("host", lambda p: list(p.host_checks), ("ready",)),
    Registration("query P95", _query_p95, ("database",)),
)


def build_groups(
    parts: HealthParts, registrations: Sequence[Registration] = BUILT_IN
) -> tuple[list[Check], dict[Route, list[Check]]]:
    """(the overview's checks, route -> its checks), in registration order."""
    names = [c.name for c in parts.host_checks]
    if len(set(names)) != len(names):
        raise ValueError(f"health check names must be unique, got {names}")
    overview: list[Check] = []
    groups: dict[Route, list[Check]] = {route: [] for route in ROUTES}
    for registration in registrations:
        checks = list(registration.build(parts))
        overview += checks
        for route in registration.routes:
            groups[route] += checks
    return overview, groups
