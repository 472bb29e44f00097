"""The dashboard's history: a bounded ring of snapshots the health monitor takes.

Every ``DB_HEALTH_HISTORY_INTERVAL`` seconds (default 5) the monitor's loop, which already runs
the checks through the runner's cache, records one ``Snapshot`` from what it has in memory: the
check results it just got, ``Database.pool_stats()`` and telemetry's latency window. Taking a
snapshot runs no query and checks out no connection (tests/test_health_history.py proves it).

Memory is bounded twice: the ring keeps ``window / interval`` snapshots (at most
``settings.MAX_HISTORY_SNAPSHOTS``), and each snapshot keeps at most ``MAX_OPERATIONS`` operations
(the busiest), ``MAX_CHECKS`` checks and ``MAX_EVENTS`` alert events. With the defaults (180
snapshots) and every per-snapshot cap reached the ring holds under 2 MiB; a typical host (a dozen
operations, five passing checks) about 0.6 MiB. tests/test_health_history.py measures both with
tracemalloc (names are the telemetry's and the checks' own strings, shared, not copied).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from ..settings import MAX_HISTORY_SNAPSHOTS
from .result import CheckResult, Status

if TYPE_CHECKING:
    from ..pool import PoolStats
    from ..telemetry.latency import OperationLatency
    from .alerts import AlertEvent

__all__ = [
    "MAX_CHECKS",
    "MAX_EVENTS",
    "MAX_OPERATIONS",
    "CheckPoint",
    "EventPoint",
    "History",
    "OperationPoint",
    "PoolPoint",
    "Snapshot",
]

MAX_OPERATIONS = 16  # the busiest operations per snapshot; the rest stay in the live table only
MAX_CHECKS = 16
MAX_EVENTS = 8  # alert transitions kept per snapshot (more in one interval: the latest)
MAX_REASON = 120  # characters of a check's public reason kept in history


class OperationPoint(NamedTuple):
    """Query latency of one operation over telemetry's window, at the snapshot. Seconds."""

    queries: int
    p50: float
    p95: float
    p99: float


class PoolPoint(NamedTuple):
    used: int
    idle: int
    waiting: int
    capacity: int
    wait_p95: float  # seconds
    timeouts: int  # cumulative checkout timeouts


class EventPoint(NamedTuple):
    """An alert transition (``AlertEvent``'s numbers, without its text)."""

    rule: str
    state: str  # firing | resolved
    value: float
    threshold: float


class CheckPoint(NamedTuple):
    name: str
    status: Status
    reason: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the dashboard draws for one moment. ``at`` is Unix time (seconds)."""

    at: float
    latency: Mapping[str, OperationPoint]
    pool: PoolPoint | None
    checks: tuple[CheckPoint, ...]
    alerts: tuple[EventPoint, ...]  # transitions since the previous snapshot


def make_snapshot(
    *,
    at: float,
    results: Iterable[CheckResult],
    pool: PoolStats | None,
    latency: Mapping[str, OperationLatency] | None,
    events: Sequence[AlertEvent] = (),
) -> Snapshot:
    """A snapshot from in-memory data only, with every per-snapshot cap applied."""
    ops: dict[str, OperationPoint] = {}
    if latency:
        busiest = sorted(latency.items(), key=lambda kv: -kv[1].count)[:MAX_OPERATIONS]
        ops = {k: OperationPoint(v.count, v.p50, v.p95, v.p99) for k, v in sorted(busiest)}
    point = None
    if pool is not None:
        point = PoolPoint(
            pool.used, pool.idle, pool.waiting, pool.capacity, pool.wait_p95, pool.timeouts
        )
    checks = tuple(
        CheckPoint(
            # One timeline per instance (pool:utilization per node, replica:lag per replica).
            f"{r.name} ({r.component_id})" if r.component_id else r.name,
            r.status,
            r.reason[:MAX_REASON] if r.reason else None,
        )
        for r in list(results)[:MAX_CHECKS]
    )
    alerts = tuple(EventPoint(e.rule, e.state, e.value, e.threshold) for e in events[-MAX_EVENTS:])
    return Snapshot(at, ops, point, checks, alerts)


class History:
    """A ring of at most ``window / interval`` snapshots; ``due()`` says when to take the next."""

    def __init__(self, *, interval: float, window: float) -> None:
        if not interval > 0:
            raise ValueError(f"history interval must be seconds > 0, got {interval!r}")
        size = round(window / interval)
        if not 1 <= size <= MAX_HISTORY_SNAPSHOTS:
            raise ValueError(
                f"history window={window!r}s at interval={interval!r}s keeps {size} snapshots; "
                f"expected 1 to {MAX_HISTORY_SNAPSHOTS}"
            )
        self.interval = interval
        self.window = window
        self._ring: deque[Snapshot] = deque(maxlen=size)
        self._events: deque[AlertEvent] = deque(maxlen=MAX_EVENTS)
        self._next = float("-inf")
        self._last: dict[CheckPoint, CheckPoint] = {}

    def __repr__(self) -> str:
        return f"<History {len(self._ring)}/{self.capacity} every {self.interval:g}s>"

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def capacity(self) -> int:
        return self._ring.maxlen or 0

    def note(self, events: Iterable[AlertEvent]) -> None:
        """Alert transitions to attach to the next snapshot."""
        self._events.extend(events)

    def due(self, now: float | None = None) -> bool:
        """True once ``interval`` has passed since the last snapshot (monotonic clock)."""
        return (time.monotonic() if now is None else now) >= self._next

    def record(
        self,
        *,
        results: Iterable[CheckResult],
        pool: PoolStats | None,
        latency: Mapping[str, OperationLatency] | None,
        at: float | None = None,
    ) -> Snapshot:
        """Take a snapshot now (with the noted events) and push it into the ring."""
        snapshot = make_snapshot(
            at=time.time() if at is None else at,
            results=results,
            pool=pool,
            latency=latency,
            events=tuple(self._events),
        )
        self._events.clear()
        # An unchanged check shares its point with the previous snapshot (most of them do).
        checks = tuple(self._last.setdefault(c, c) for c in snapshot.checks)
        self._last = {c: c for c in checks}
        snapshot = Snapshot(snapshot.at, snapshot.latency, snapshot.pool, checks, snapshot.alerts)
        self._ring.append(snapshot)
        self._next = time.monotonic() + self.interval * 0.95  # ticks jitter: never skip one
        return snapshot

    def replace(self, snapshots: Iterable[Snapshot]) -> None:
        """Start from ``snapshots`` (oldest first): a worker taking over the pod's history."""
        self._ring.clear()
        self._ring.extend(snapshots)

    def snapshots(self) -> list[Snapshot]:
        """Oldest first."""
        return list(self._ring)
