"""The measuring pool and its statistics.

SQLAlchemy fires no event before a checkout, so ``MeasuredPool`` times ``connect()`` itself:
how long callers wait for a slot (not the time to open a connection in a free slot, timed
apart), how many wait right now, and how many gave up (pool timeouts). Pool events count
connections created, closed, invalidated and re-opened on a slot that had one before
(reconnects), and whether a checkout reused an open connection (efficiency). ``idle``/``open``
count live connections only: a slot whose connection was invalidated goes back to the pool empty,
so ``checkedin()`` alone overcounts; ``created - closed`` is what the server sees. The ping
bypass window (``DB_POOL_PING_BYPASS_MS``, HikariCP's ``aliveBypassWindowMs``) hands out a
connection returned less than that long ago without the pre-ping. Counters live in a
``PoolMeter`` owned by the Database, because
``engine.dispose()`` replaces the pool object; ``bind_pool_class`` bakes the meter into a
subclass so that the replacement keeps counting into the same place.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, PoolProxiedConnection

__all__ = ["MeasuredPool", "PoolMeter", "PoolStats", "bind_pool_class"]

_FRESH = "pa_db_fresh"
_CHECKED_OUT_AT = "pa_db_checked_out_at"
_HAD_CONNECTION = "pa_db_had_connection"
_RETURNED_AT = "pa_db_returned_at"
_CREATE_SECONDS = "pa_db_create_seconds"
_SLOT_WAIT = "pa_db_slot_wait"


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of the pool. Counts are connections; times are seconds."""

    size: int
    max_overflow: int
    used: int
    idle: int
    overflow_in_use: int
    waiting: int
    checkouts: int
    reused_checkouts: int
    timeouts: int
    wait_p50: float
    wait_p95: float
    wait_max: float
    created: int
    closed: int
    invalidated: int
    reconnects: int = 0
    read_retries: int = 0

    @property
    def capacity(self) -> int:
        return self.size + max(self.max_overflow, 0)

    @property
    def open(self) -> int:
        """Connections open right now (used + idle)."""
        return self.used + self.idle

    @property
    def utilization(self) -> float:
        """used / capacity, from 0 to 1."""
        return self.used / self.capacity if self.capacity else 0.0

    @property
    def efficiency(self) -> float:
        """Share of checkouts served by an already-open connection (1.0 before any checkout)."""
        return self.reused_checkouts / self.checkouts if self.checkouts else 1.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            capacity=self.capacity,
            open=self.open,
            utilization=round(self.utilization, 4),
            efficiency=round(self.efficiency, 4),
        )
        return data


class PoolMeter:
    """Counters shared by every pool object an engine has over its life."""

    def __init__(self, window: int = 2048) -> None:
        self.waiting = 0
        self.creating = 0
        self.checkouts = 0
        self.reused = 0
        self.timeouts = 0
        self.created = 0
        self.closed = 0
        self.invalidated = 0
        self.reconnects = 0
        self.timeout_times: deque[float] = deque(maxlen=window)  # time.monotonic() of each
        #: Reads retried on a fresh connection after a disconnect (the fast path's read retry).
        self.read_retries = 0
        #: Seconds: a connection returned less than this long ago skips the pre-ping (0: never).
        self.ping_bypass = 0.0
        self.waits: deque[float] = deque(maxlen=window)
        self.create_times: deque[float] = deque(maxlen=window)
        #: Called with (seconds,) after each checkout wait, connection creation and use.
        #: Telemetry attaches here; each list is empty (and free) unless someone listens.
        self.on_wait: list[Callable[[float], None]] = []
        self.on_create: list[Callable[[float], None]] = []
        self.on_use: list[Callable[[float], None]] = []
        self.on_timeout: list[Callable[[], None]] = []

    def record_wait(self, seconds: float, slot_wait: float | None = None) -> None:
        """``seconds``: the whole checkout (telemetry's wait time, connecting included);
        ``slot_wait``: the part spent waiting for a free slot, which is what ``wait_p*`` report:
        opening a connection in a free slot is not a sign of a pool too small."""
        self.waits.append(seconds if slot_wait is None else slot_wait)
        for hook in self.on_wait:
            hook(seconds)

    def timeouts_within(self, seconds: float) -> int:
        """Checkout timeouts in the last ``seconds``."""
        since = time.monotonic() - seconds
        return sum(1 for t in self.timeout_times if t >= since)

    def snapshot(self, pool: Any) -> PoolStats:
        waits = sorted(self.waits)
        # checkedout() also counts slots whose connection is still being created; those callers
        # are waiting, not using.
        used = pool.checkedout() - self.creating
        # Live connections only: slots whose connection was invalidated sit in the pool empty.
        idle = max(0, min(pool.checkedin(), self.created - self.closed - used))
        size = pool.size()
        return PoolStats(
            size=size,
            max_overflow=pool._max_overflow,
            used=used,
            idle=idle,
            overflow_in_use=max(0, used - size),
            waiting=self.waiting,
            checkouts=self.checkouts,
            reused_checkouts=self.reused,
            timeouts=self.timeouts,
            wait_p50=_quantile(waits, 0.50),
            wait_p95=_quantile(waits, 0.95),
            wait_max=waits[-1] if waits else 0.0,
            created=self.created,
            closed=self.closed,
            invalidated=self.invalidated,
            reconnects=self.reconnects,
            read_retries=self.read_retries,
        )

    def attach(self, engine: Engine) -> None:
        """Count pool events of ``engine`` (the sync engine behind an AsyncEngine)."""
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "close", self._on_close)
        event.listen(engine, "close_detached", self._on_close_detached)
        event.listen(engine, "invalidate", self._on_invalidate)
        event.listen(engine, "soft_invalidate", self._on_invalidate)

    def _on_connect(self, dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        self.created += 1
        # record_info, not info: connect() and _do_return_conn() read record_info, a different dict.
        info = record.record_info
        if info is not None:
            info[_FRESH] = True
            if _HAD_CONNECTION in info:  # record_info outlives the record's connections
                self.reconnects += 1
            info[_HAD_CONNECTION] = True

    def _on_close(self, dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        self.closed += 1

    def _on_close_detached(self, dbapi_conn: Any) -> None:
        self.closed += 1

    def _on_invalidate(
        self, dbapi_conn: Any, record: ConnectionPoolEntry, exception: BaseException | None
    ) -> None:
        self.invalidated += 1


class MeasuredPool(AsyncAdaptedQueuePool):
    """AsyncAdaptedQueuePool that times checkouts and counts waiters into ``meter``."""

    meter: PoolMeter

    # Checkouts and returns are counted here rather than with pool events: an event dispatch
    # on every checkout and checkin cost about 5 % of throughput (bench/pool.py).
    def connect(self) -> PoolProxiedConnection:
        meter = self.meter
        meter.waiting += 1
        started = time.perf_counter()
        try:
            connection = super().connect()
        except exc.TimeoutError:
            meter.waiting -= 1
            meter.record_wait(time.perf_counter() - started)
            meter.timeouts += 1
            meter.timeout_times.append(time.monotonic())
            for on_timeout in meter.on_timeout:
                on_timeout()
            raise
        except BaseException:
            meter.waiting -= 1
            raise
        meter.waiting -= 1
        now = time.perf_counter()
        info = connection.record_info
        slot_wait = None
        if info is not None:
            info.pop(_CREATE_SECONDS, None)
            slot_wait = info.pop(_SLOT_WAIT, None)
        meter.record_wait(now - started, slot_wait)
        meter.checkouts += 1
        if info is not None:
            if info.pop(_FRESH, None) is None:
                meter.reused += 1
            if meter.on_use:
                info[_CHECKED_OUT_AT] = now
        return connection

    def _do_get(self) -> ConnectionPoolEntry:
        started = time.perf_counter()
        record = super()._do_get()
        info = record.record_info
        if info is not None:
            # The wait for a slot: the time to get a record, less the time spent opening a
            # connection in a free slot (_create_connection). get(), not pop(): a nested _do_get
            # (QueuePool retries itself) must still subtract it.
            created = info.get(_CREATE_SECONDS, 0.0)
            info[_SLOT_WAIT] = max(0.0, time.perf_counter() - started - created)
        # The pre-ping is skipped for a record SQLAlchemy considers fresh (just connected). A
        # connection returned within the bypass window is as good as fresh: mark it so.
        if self._pre_ping and self.meter.ping_bypass > 0:
            info = record.record_info
            returned = info.get(_RETURNED_AT) if info is not None else None
            if returned is not None and time.monotonic() - returned < self.meter.ping_bypass:
                record.fresh = True  # type: ignore[attr-defined]  # _ConnectionRecord
        return record

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        if self._pre_ping and self.meter.ping_bypass > 0:
            info = record.record_info
            if info is not None:
                info[_RETURNED_AT] = time.monotonic()
        if self.meter.on_use:
            info = record.record_info
            started = info.pop(_CHECKED_OUT_AT, None) if info is not None else None
            if started is not None:
                used_for = time.perf_counter() - started
                for hook in self.meter.on_use:
                    hook(used_for)
        super()._do_return_conn(record)

    def _create_connection(self) -> Any:
        started = time.perf_counter()
        self.meter.creating += 1
        try:
            record = super()._create_connection()
        finally:
            self.meter.creating -= 1
        took = time.perf_counter() - started
        info = record.record_info
        if info is not None:
            info[_CREATE_SECONDS] = took
        self.meter.create_times.append(took)
        for hook in self.meter.on_create:
            hook(took)
        return record


def bind_pool_class(meter: PoolMeter) -> type[MeasuredPool]:
    """A MeasuredPool subclass bound to ``meter``; survives ``dispose()``/``recreate()``."""
    return type("MeasuredPool", (MeasuredPool,), {"meter": meter})
