"""The check registry: which route runs which check, built from the parts health_app hands over.

Through real HTTP on a started Database with a replica: every route answers with exactly the
checks the registry gives it, a host check lands in readiness and the overview with no wiring,
and a check registered with one more ``Registration`` line reaches its routes.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import CheckResult, Database, Telemetry, health_app
from personal_assistant_db.health.registry import (
    BUILT_IN,
    ROUTES,
    HealthParts,
    Registration,
    build_groups,
)
from personal_assistant_db.health.result import Check


class Canary:
    """A host's own check, as a host writes one."""

    name = "cache:ping"
    timeout = 0.5
    critical = True

    async def run(self) -> CheckResult:
        return CheckResult(name=self.name, status="pass", duration=0.0)


def _names(checks: Sequence[Check]) -> list[str]:
    return [c.name for c in checks]


async def test_each_route_serves_the_checks_the_registry_gives_it(database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "DATABASE_REPLICA_URLS": database_url, "DB_ENV": "test"}
    db = Database.from_env(env)
    telemetry = Telemetry(db, tracing=False)
    app = Starlette(
        routes=[Mount("/health", health_app(db, checks=[Canary()], telemetry=telemetry))]
    )
    await db.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            served = {
                route: (await client.get(f"/health/{route}")).json()["checks"] for route in ROUTES
            }
            overview = (await client.get("/health/")).json()["checks"]
    finally:
        await db.stop()
        telemetry.close()
    assert sorted(served["live"]) == ["process:eventLoopLag"]
    assert sorted(served["ready"]) == [
        "cache:ping",
        "database:responseTime",
        "pool:utilization",
        "replica:lag",
    ]
    assert sorted(served["database"]) == ["database:queryP95", "database:responseTime"]
    assert sorted(served["pool"]) == ["pool:utilization"]
    # one pool entry per node, one lag entry per replica, each named by position
    assert [e["componentId"] for e in served["pool"]["pool:utilization"]] == [
        "primary",
        "replica-1",
    ]
    assert [e["componentId"] for e in served["ready"]["replica:lag"]] == ["replica-1"]
    assert sorted(overview) == sorted({*served["live"], *served["ready"], *served["database"]})


def test_one_registration_line_adds_a_check_to_its_routes() -> None:
    db = Database.from_env({"DATABASE_URL": "postgresql://u@h/db"})
    parts = HealthParts.of(db, telemetry=None, require_migrations=True, host_checks=())
    extra = Registration("canary", lambda p: [Canary()], ("ready", "database"))
    overview, groups = build_groups(parts, (*BUILT_IN, extra))
    assert _names(groups["ready"])[-1] == "cache:ping"
    assert _names(groups["database"]) == ["database:responseTime", "cache:ping"]
    assert "cache:ping" not in _names(groups["live"]) + _names(groups["pool"])
    # without replicas or telemetry those registrations build nothing; migrations when asked
    assert _names(overview) == [
        "process:eventLoopLag",
        "database:responseTime",
        "pool:utilization",
        "database:pendingMigrations",
        "cache:ping",
    ]


def test_host_check_names_stay_unique() -> None:
    db = Database.from_env({"DATABASE_URL": "postgresql://u@h/db"})
    with pytest.raises(ValueError, match="cache:ping"):
        health_app(db, checks=[Canary(), Canary()])
