"""Alerts: rules with hysteresis (pure, with Hypothesis), sinks (a real local HTTP receiver), and
the monitor on a real throwaway server that stops and restarts.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from health_helpers import receiving
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import (
    AlertEvent,
    AlertManager,
    AlertRule,
    Database,
    Telemetry,
    WebhookSink,
    default_rules,
)
from personal_assistant_db.health.alerts import Observation
from personal_assistant_db.testing import ThrowawayServer


def value_rule(**kw: object) -> AlertRule:
    return AlertRule("r", lambda o: o.query_p95, fire_above=10, clear_below=5, **kw)  # type: ignore[arg-type]


def obs(value: float | None, at: float = 0.0) -> Observation:
    return Observation(query_p95=value, at=at)


@given(st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), max_size=60))
def test_events_alternate_and_match_a_reference_model(values: list[float]) -> None:
    rule = value_rule()
    events = [e for e in (rule.evaluate(obs(v)) for v in values) if e is not None]
    firing, expected = False, []
    for v in values:  # the reference: fire above 10, clear below 5, else keep the state
        if (not firing and v > 10) or (firing and v < 5):
            firing = not firing
            expected.append("firing" if firing else "resolved")
    assert [e.state for e in events] == expected
    assert rule.firing is firing


def test_hysteresis_band_changes_nothing() -> None:
    rule = value_rule()
    assert rule.evaluate(obs(11)) is not None
    assert [rule.evaluate(obs(v)) for v in (7, 9, 11, 5, 6)] == [None] * 5  # 5 is not below 5
    resolved = rule.evaluate(obs(4.9))
    assert resolved is not None and resolved.state == "resolved" and resolved.threshold == 5


def test_consecutive_runs_and_sustained_seconds() -> None:
    rule = value_rule(fire_after_runs=3)
    assert [rule.evaluate(obs(11)) for _ in range(2)] == [None, None]
    assert rule.evaluate(obs(1)) is None  # the streak breaks
    assert [rule.evaluate(obs(11)) is not None for _ in range(3)] == [False, False, True]
    timed = value_rule(fire_after_seconds=30)
    assert timed.evaluate(obs(11, at=0)) is None
    assert timed.evaluate(obs(11, at=29)) is None
    event = timed.evaluate(obs(11, at=30))
    assert event is not None and event.state == "firing" and timed.since == event.at
    assert timed.evaluate(obs(None, at=40)) is None and timed.firing  # unknown changes nothing


def test_bad_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="clear_below"):
        AlertRule("x", lambda o: 0.0, fire_above=1, clear_below=2)
    with pytest.raises(ValueError, match="unique"):
        AlertManager([value_rule(), value_rule()])
    with pytest.raises(ValueError, match="http"):
        WebhookSink("ftp://example.invalid/hook")


EVENT = AlertEvent("database_down", "firing", "critical", 1.0, 0.5, "db failed 3 runs")


async def test_webhook_posts_json_without_blocking_the_caller() -> None:
    answer_s = 0.5  # the receiver's delay before it answers
    with receiving(delay=answer_s) as receiver:
        sink = WebhookSink(receiver.url, timeout=2)
        began = time.perf_counter()
        await sink(EVENT)
        # enqueued, not sent: returned well before the receiver could have answered
        assert time.perf_counter() - began < answer_s / 4
        assert receiver.bodies == []
        await sink.aclose(drain=3)
        assert receiver.bodies == [EVENT.as_dict()]
        assert sink.sent == 1


async def test_webhook_to_a_dead_receiver_counts_the_failure() -> None:
    with receiving() as receiver:
        url = receiver.url
    sink = WebhookSink(url, timeout=0.5)
    manager = AlertManager([], [sink])
    await manager.dispatch([EVENT])  # returns at once; the POST fails in the background
    await sink.aclose(drain=2)
    assert (sink.sent, sink.failed) == (0, 1)


async def test_a_failing_or_hung_sink_does_not_stop_the_others() -> None:
    got: list[AlertEvent] = []

    async def broken(event: AlertEvent) -> None:
        raise RuntimeError("sink down")

    async def hung(event: AlertEvent) -> None:
        await asyncio.sleep(30)

    async def collect(event: AlertEvent) -> None:
        got.append(event)

    manager = AlertManager([], [broken, hung, collect], sink_timeout=0.1)
    await manager.dispatch([EVENT])
    assert got == [EVENT] and manager.sink_errors == 2


async def test_database_down_fires_once_shows_in_overview_and_resolves(
    throwaway_server: ThrowawayServer,
) -> None:
    env = {"DATABASE_URL": throwaway_server.url, "DB_ENV": "test", "DB_HEALTH_FAIL_TTL": "0"}
    db = Database.from_env({**env, "DB_HEALTH_TTL": "0"})
    got: list[AlertEvent] = []

    async def collect(event: AlertEvent) -> None:
        got.append(event)

    with receiving() as receiver:
        webhook = WebhookSink(receiver.url)
        health = db.health_app(alert_sinks=[collect, webhook])
        await db.start()
        try:
            monitor = health.state.monitor
            transport = httpx.ASGITransport(app=Starlette(routes=[Mount("/health", app=health)]))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                for _ in range(3):
                    assert await monitor.tick() == []
                await asyncio.to_thread(throwaway_server.stop)
                for _ in range(5):  # fires on the 3rd failing run, and only once
                    await monitor.tick()
                assert [(e.rule, e.state) for e in got] == [("database_down", "firing")]
                overview = (await c.get("/health/")).json()
                assert [a["rule"] for a in overview["alerts"]] == ["database_down"]
                await asyncio.to_thread(throwaway_server.start)
                for _ in range(3):
                    await monitor.tick()
                assert [(e.rule, e.state) for e in got][-1] == ("database_down", "resolved")
                assert len(got) == 2
                assert (await c.get("/health/")).json()["alerts"] == []
        finally:
            await db.stop()  # the stop hook stops the monitor and drains the webhook
        assert [b["state"] for b in receiver.bodies] == ["firing", "resolved"]


async def test_query_p95_over_budget_fires_from_telemetry(test_env: dict[str, str]) -> None:
    # Generous health deadlines: on a loaded machine the database probe can miss the default
    # 0.2 s checkout wait three ticks running, and database_down would fire beside the rule
    # under test.
    db = Database.from_env(
        {
            **test_env,
            "DB_QUERY_P95_BUDGET_MS": "0.001",
            "DB_HEALTH_TIMEOUT": "10",
            "DB_HEALTH_CHECKOUT_TIMEOUT": "5",
        }
    )
    telemetry = Telemetry(db, tracing=False)
    got: list[AlertEvent] = []

    async def collect(event: AlertEvent) -> None:
        got.append(event)

    health = db.health_app(telemetry=telemetry, alert_sinks=[collect])
    await db.start()
    try:
        monitor = health.state.monitor
        await monitor.tick()
        assert got == []  # no queries yet: P95 unknown, the rule waits
        async with db.connect() as conn:
            for _ in range(10):
                await conn.exec_driver_sql("SELECT 1")
        for _ in range(3):
            await monitor.tick()
        assert [(e.rule, e.state) for e in got] == [("query_p95_over_budget", "firing")]
        assert got[0].value > 0.001
    finally:
        await db.stop()
        telemetry.close()


def test_default_rules_without_telemetry_never_see_a_p95() -> None:
    from personal_assistant_db import Settings

    rules = default_rules(Settings.from_env({"DATABASE_URL": "postgresql://u@h/d"}))
    p95 = next(r for r in rules if r.name == "query_p95_over_budget")
    assert p95.evaluate(Observation(query_p95=None)) is None
    assert {r.name for r in rules} == {
        "database_down",
        "pool_saturated",
        "pool_checkout_timeouts",
        "query_p95_over_budget",
    }


async def test_pool_rules_fire_on_a_real_saturated_pool_and_a_checkout_timeout(
    test_env: dict[str, str],
) -> None:
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    db = Database.from_env({**test_env, "DB_POOL_TIMEOUT": "0.1"})
    got: list[AlertEvent] = []

    async def collect(event: AlertEvent) -> None:
        got.append(event)

    rules = default_rules(db.settings, pool_window=0)
    health = db.health_app(alert_rules=rules, alert_sinks=[collect])
    await db.start()
    try:
        monitor = health.state.monitor
        await monitor.tick()
        held = [db.connect() for _ in range(db.settings.pool_size)]
        for conn in held:
            await conn.start()
        with pytest.raises(PoolTimeout):
            async with db.connect() as conn:
                pass
        await monitor.tick()
        assert {(e.rule, e.state) for e in got} == {
            ("pool_saturated", "firing"),
            ("pool_checkout_timeouts", "firing"),
        }
        for conn in held:
            await conn.close()
        await monitor.tick()
        assert ("pool_saturated", "resolved") in {(e.rule, e.state) for e in got}
    finally:
        await db.stop()
