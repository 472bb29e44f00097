"""The monitor's history ring: bounded in count and memory, fed from memory (no query)."""

from __future__ import annotations

import asyncio
import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from personal_assistant_db import ConfigurationError, Database, Settings, Telemetry
from personal_assistant_db.health.alerts import AlertEvent, AlertRule
from personal_assistant_db.health.history import MAX_OPERATIONS, History
from personal_assistant_db.health.result import CheckResult, Status
from personal_assistant_db.pool import PoolStats
from personal_assistant_db.settings import MAX_HISTORY_SNAPSHOTS
from personal_assistant_db.telemetry import OperationLatency

URL = "postgresql://u@h/d"


def pool(used: int) -> PoolStats:
    return PoolStats(
        size=10, max_overflow=10, used=used, idle=2, overflow_in_use=0, waiting=used // 4,
        checkouts=100, reused_checkouts=90, timeouts=1, wait_p50=0.001, wait_p95=0.002,
        wait_max=0.1, created=12, closed=0, invalidated=0,
    )  # fmt: skip


def fill(
    history: History, *, ops: int, checks: int, events: int, n: int, status: Status = "warn"
) -> None:
    """``n`` snapshots, each with fresh numbers and reasons (as real ones would be). Names are
    made once: telemetry's operations and the checks keep theirs for the process's life."""
    op_names = [f"SELECT table_{k:02d}" for k in range(ops)]
    check_names = [f"host:check{k}" for k in range(checks)]
    for i in range(n):
        latency = {
            op: OperationLatency(1000 + i + k, i * 1e-4, i * 2e-4, i * 3e-4)
            for k, op in enumerate(op_names)
        }
        results = [
            CheckResult(name, status, 0.001 * i, reason=f"reason {i} " + "x" * 300)
            if status != "pass"
            else CheckResult(name, status, 0.001 * i)
            for name in check_names
        ]
        history.note(
            AlertEvent(f"rule{k}", "firing", "warning", float(i), 0.5, "d") for k in range(events)
        )
        history.record(results=results, pool=pool(i % 20), latency=latency, at=1e9 + 5 * i)


def test_defaults_keep_15_minutes_every_5_seconds() -> None:
    s = Settings.from_env({"DATABASE_URL": URL})
    assert (s.health_history_interval, s.health_history_window) == (5.0, 900.0)
    history = History(interval=s.health_history_interval, window=s.health_history_window)
    assert history.capacity == 180
    fill(history, ops=1, checks=1, events=0, n=400)
    snapshots = history.snapshots()
    assert len(snapshots) == 180
    assert snapshots[0].at == 1e9 + 5 * 220 and snapshots[-1].at == 1e9 + 5 * 399


def measure(history: History, **kw: Any) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fill(history, **kw)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_memory_bound_of_the_default_ring() -> None:
    """The bound history.py states: < 2 MiB with every per-snapshot cap hit, < 1 MiB typical."""
    worst = History(interval=5, window=900)
    used = measure(worst, ops=64, checks=40, events=30, n=360)  # caps: 16 ops, 16 checks, 8 ev
    assert len(worst) == 180
    last = worst.snapshots()[-1]
    assert len(last.latency) == MAX_OPERATIONS and len(last.checks) == 16 and len(last.alerts) == 8
    assert all(len(c.reason or "") <= 120 for c in last.checks)
    print(f"history memory, every cap reached: {used / 1024:.0f} KiB")
    assert used < 2 * 1024 * 1024, used
    typical = History(interval=5, window=900)
    used = measure(typical, ops=12, checks=5, events=0, n=360, status="pass")
    print(f"history memory, 12 operations and 5 passing checks: {used / 1024:.0f} KiB")
    assert used < 1024 * 1024, used


@given(
    interval=st.floats(0, 100, allow_nan=False),
    window=st.floats(0, 10**6, allow_nan=False),
)
def test_history_settings_are_checked_and_name_the_variable(interval: float, window: float) -> None:
    env = {
        "DATABASE_URL": URL,
        "DB_HEALTH_HISTORY_INTERVAL": repr(interval),
        "DB_HEALTH_HISTORY_WINDOW": repr(window),
    }
    try:
        s = Settings.from_env(env)
    except ConfigurationError as exc:
        text = str(exc)
        assert "DB_HEALTH_HISTORY_INTERVAL" in text or "DB_HEALTH_HISTORY_WINDOW" in text
        assert interval < 1 or window <= 0 or not 1 <= window / interval <= MAX_HISTORY_SNAPSHOTS
        return
    history = History(interval=s.health_history_interval, window=s.health_history_window)
    assert 1 <= history.capacity <= MAX_HISTORY_SNAPSHOTS
    assert interval >= 1


async def test_snapshots_come_from_memory_and_run_no_query(test_env: dict[str, str]) -> None:
    env = {**test_env, "DB_HEALTH_HISTORY_INTERVAL": "1", "DB_HEALTH_TTL": "60"}
    db = Database.from_env(env)
    telemetry = Telemetry(db, tracing=False)
    always = AlertRule("host_rule", lambda obs: 1.0, 0.5, 0.5, description="always on")
    await db.start()
    try:
        async with db.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        app = db.health_app(telemetry=telemetry, alert_rules=[always])
        monitor = app.state.monitor
        history = monitor.history
        await monitor.tick()  # the first tick runs the checks once; later ones hit the cache
        checkouts = db.pool_stats().checkouts
        runs = app.state.runner.runs
        queries = sum(v.count for v in telemetry.latency_snapshot().values())
        for _ in range(2):
            await asyncio.sleep(1.0)
            await monitor.tick()
        assert len(history) == 3  # one snapshot per tick, each a second apart
        assert db.pool_stats().checkouts == checkouts  # no connection was taken: no query ran
        assert app.state.runner.runs == runs
        assert sum(v.count for v in telemetry.latency_snapshot().values()) == queries
    finally:
        await db.stop()
        telemetry.close()
    first, last = history.snapshots()[0], history.snapshots()[-1]
    assert "SELECT" in last.latency and last.latency["SELECT"].queries >= 1
    assert last.pool is not None and last.pool.capacity == db.settings.pool_size
    assert {c.name for c in last.checks} >= {"database:responseTime", "pool:utilization"}
    assert [e.rule for e in first.alerts] == ["host_rule"]  # the transition, once
    assert last.alerts == ()


def test_a_bad_ring_size_is_refused() -> None:
    with pytest.raises(ValueError, match="keeps 0 snapshots"):
        History(interval=5, window=1)
