"""Semantic-convention database metrics, through the OpenTelemetry metrics API.

- ``db.client.operation.duration`` (histogram, s): recorded by the query listener (tracing.py).
- ``db.client.connection.count`` {state=idle|used}, ``.max``, ``.idle.max``,
  ``.pending_requests`` (observable up-down counters) and ``.timeouts`` (observable counter):
  read from ``Database.pool_stats()`` / ``PoolMeter`` at collection time, so they cost nothing
  per query.
- ``db.client.connection.wait_time``, ``.use_time``, ``.create_time`` (histograms, s): fed by the
  PoolMeter hooks.

Histograms carry the semconv bucket boundaries as an advisory, so any SDK (ours or the host's)
buckets seconds correctly; the SDK default assumes milliseconds. Metric attributes are kept to
low-cardinality, non-sensitive values (no server address): ``/health/metrics`` may be public.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

if TYPE_CHECKING:
    from ..database import Database

__all__ = ["DURATION_BUCKETS", "PoolInstruments", "create_duration_histogram"]

#: Semconv bucket boundaries for db.client.operation.duration, in seconds.
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0)
POOL_NAME = "db.client.connection.pool.name"
STATE = "db.client.connection.state"


def create_duration_histogram(meter: Meter) -> Histogram:
    return meter.create_histogram(
        "db.client.operation.duration",
        unit="s",
        description="Duration of database client operations.",
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
    )


class PoolInstruments:
    """Pool metrics for one Database; ``attach`` hooks the PoolMeter, ``detach`` unhooks it."""

    def __init__(self, meter: Meter, db: Database, pool_name: str) -> None:
        self._db = db
        self._attrs = {POOL_NAME: pool_name}
        self._idle = {POOL_NAME: pool_name, STATE: "idle"}
        self._used = {POOL_NAME: pool_name, STATE: "used"}
        buckets = list(DURATION_BUCKETS)
        self.wait_time = meter.create_histogram(
            "db.client.connection.wait_time",
            unit="s",
            description="The time it took to obtain an open connection from the pool.",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self.use_time = meter.create_histogram(
            "db.client.connection.use_time",
            unit="s",
            description="The time between borrowing a connection and returning it to the pool.",
            explicit_bucket_boundaries_advisory=buckets,
        )
        self.create_time = meter.create_histogram(
            "db.client.connection.create_time",
            unit="s",
            description="The time it took to create a new connection.",
            explicit_bucket_boundaries_advisory=buckets,
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            [self._observe_count],
            unit="{connection}",
            description="The number of connections that are currently in the state described.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.max",
            [self._observe_max],
            unit="{connection}",
            description="The maximum number of open connections allowed.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.idle.max",
            [self._observe_idle_max],
            unit="{connection}",
            description="The maximum number of idle open connections allowed.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.pending_requests",
            [self._observe_pending],
            unit="{request}",
            description="The number of current pending requests for an open connection.",
        )
        meter.create_observable_counter(
            "db.client.connection.timeouts",
            [self._observe_timeouts],
            unit="{timeout}",
            description="The number of connection timeouts that have occurred trying to obtain "
            "a connection from the pool.",
        )

    # -- hooks on PoolMeter (called on the checkout path; keep them small) -------------------
    def _on_wait(self, seconds: float) -> None:
        self.wait_time.record(seconds, self._attrs)

    def _on_use(self, seconds: float) -> None:
        self.use_time.record(seconds, self._attrs)

    def _on_create(self, seconds: float) -> None:
        self.create_time.record(seconds, self._attrs)

    def attach(self) -> None:
        for hooks, hook in self._hooks():
            if hook not in hooks:
                hooks.append(hook)

    def detach(self) -> None:
        for hooks, hook in self._hooks():
            while hook in hooks:
                hooks.remove(hook)

    def _hooks(self) -> list[tuple[list[Callable[[float], None]], Callable[[float], None]]]:
        meter = self._db.meter
        return [
            (meter.on_wait, self._on_wait),
            (meter.on_use, self._on_use),
            (meter.on_create, self._on_create),
        ]

    # -- observable callbacks (run at collection time) ---------------------------------------
    def _observe_count(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._db.started:
            return []
        stats = self._db.pool_stats()
        return [Observation(stats.idle, self._idle), Observation(stats.used, self._used)]

    def _observe_max(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._db.started:
            return []
        return [Observation(self._db.pool_stats().capacity, self._attrs)]

    def _observe_idle_max(self, options: CallbackOptions) -> Iterable[Observation]:
        if not self._db.started:
            return []
        return [Observation(self._db.pool_stats().size, self._attrs)]

    def _observe_pending(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._db.meter.waiting, self._attrs)]

    def _observe_timeouts(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._db.meter.timeouts, self._attrs)]
