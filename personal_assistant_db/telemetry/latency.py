"""Windowed P50/P95/P99 per operation, on DDSketch.

Each operation keeps ``slots`` DDSketches, one per ``window / slots`` seconds, in a ring. A
snapshot merges the live slots, so it covers between ``window * (slots - 1) / slots`` and
``window`` seconds of history. DDSketch guarantees a relative error of ``relative_accuracy`` on
every quantile; the collapsing store caps each sketch at ``bin_limit`` bins, so memory is bounded
whatever the query rate (tests/test_telemetry_latency.py measures it: <= 64 KiB per series).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from math import ceil, log

from ddsketch import LogCollapsingLowestDenseDDSketch

__all__ = [
    "BIN_LIMIT",
    "FOLD_AT",
    "OVERFLOW_OPERATION",
    "RELATIVE_ACCURACY",
    "LatencySeries",
    "LatencyWindow",
    "OperationLatency",
    "summary",
]

#: Operations beyond ``max_series`` are counted under this name, so memory stays bounded.
OVERFLOW_OPERATION = "OTHER"
RELATIVE_ACCURACY = 0.0125  # 1.25 %: inside the 2 % the issue asks for, with margin
# e^(600 * 2 * 0.0125) ~ 3.3 million: every value from max / 3.3e6 up is kept at full accuracy
# (10 us .. 30 s at once). Lower values collapse into the lowest bin.
BIN_LIMIT = 600
SLOTS = 3  # 3 slots x 600 bins x 32 bytes worst case ~ 58 KiB per series
FOLD_AT = 32  # samples buffered per series before they go into the sketch (~1 KiB)


@dataclass(frozen=True)
class OperationLatency:
    """Latency of one operation over the window. Times are seconds."""

    count: int
    p50: float
    p95: float
    p99: float

    def as_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "p50": self.p50, "p95": self.p95, "p99": self.p99}


def _sketch() -> LogCollapsingLowestDenseDDSketch:
    return LogCollapsingLowestDenseDDSketch(RELATIVE_ACCURACY, bin_limit=BIN_LIMIT)


class LatencySeries:
    """One operation: a ring of sketches plus a small buffer of samples not yet folded in.

    The query hook appends to ``pending`` and folds every ``FOLD_AT`` samples: a DDSketch
    ``add()`` is seven Python calls per sample, a fold is two C calls per sample.
    """

    __slots__ = ("epochs", "pending", "sketches", "slot", "slot_end")

    def __init__(self, slots: int) -> None:
        self.sketches = [_sketch() for _ in range(slots)]
        self.epochs = [-1] * slots
        self.pending: list[float] = []
        self.slot = 0
        self.slot_end = float("-inf")


class LatencyWindow:
    """Sliding-window latency sketches keyed by operation name.

    Times passed as ``now`` are on ``clock``'s scale (default ``time.perf_counter``, which the
    query hook already reads).
    """

    def __init__(
        self,
        window: float = 300.0,
        *,
        slots: int = SLOTS,
        max_series: int = 64,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if not (window > 0 and math.isfinite(window)):
            raise ValueError(f"window must be seconds > 0, got {window!r}")
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots!r}")
        self.window = window
        self.slots = slots
        self.max_series = max_series
        self.clock = clock
        self._width = window / slots
        self._series: dict[str, LatencySeries] = {}

    def __repr__(self) -> str:
        return f"<LatencyWindow window={self.window:g}s series={len(self._series)}>"

    def series(self, operation: str) -> LatencySeries:
        """The series of ``operation`` (beyond ``max_series`` operations: ``OTHER``'s)."""
        found = self._series.get(operation)
        if found is None:
            if len(self._series) >= self.max_series:
                operation = OVERFLOW_OPERATION
                found = self._series.get(operation)
            if found is None:
                found = self._series[operation] = LatencySeries(self.slots)
        return found

    def record(self, operation: str, seconds: float, now: float | None = None) -> None:
        """Add one duration (seconds) for ``operation``. Negative values count as zero."""
        self.add(self.series(operation), seconds, self.clock() if now is None else now)

    def add(self, series: LatencySeries, seconds: float, now: float) -> None:
        """The hot path: the query hook (tracing.py) calls this once per statement."""
        if now >= series.slot_end:
            self.rotate(series, now)
        series.pending.append(seconds)
        if len(series.pending) >= FOLD_AT:
            self.fold(series)

    def rotate(self, series: LatencySeries, now: float) -> None:
        """Fold what is pending into the current slot, then move to the slot of ``now``."""
        self.fold(series)
        epoch = int(now // self._width)
        slot = epoch % self.slots
        if series.epochs[slot] != epoch:
            series.sketches[slot] = _sketch()
            series.epochs[slot] = epoch
        series.slot = slot
        series.slot_end = (epoch + 1) * self._width

    def fold(self, series: LatencySeries) -> None:
        pending = series.pending
        if not pending:
            return
        sketch = series.sketches[series.slot]
        mapping = sketch._mapping
        # LogarithmicMapping.key(v), inlined so the comprehension makes no Python call per
        # sample; test_telemetry_latency.py checks it against mapping.key().
        multiplier, offset, smallest = mapping._multiplier, mapping._offset, mapping.min_possible
        keys = Counter(
            [int(ceil(log(v, 2) * multiplier) + offset) if v > smallest else None for v in pending]
        )
        pending.clear()
        for key, count in keys.items():
            sketch.add(0.0 if key is None else mapping.value(key), float(count))

    def _merged(self, series: LatencySeries, now: float) -> LogCollapsingLowestDenseDDSketch | None:
        if now >= series.slot_end:
            self.rotate(series, now)
        else:
            self.fold(series)
        oldest = int(now // self._width) - self.slots + 1
        merged: LogCollapsingLowestDenseDDSketch | None = None
        for epoch, sketch in zip(series.epochs, series.sketches, strict=True):
            if epoch < oldest or sketch.count == 0:
                continue
            if merged is None:
                merged = _sketch()
            merged.merge(sketch)
        return merged

    def sketches(self) -> dict[str, LogCollapsingLowestDenseDDSketch]:
        """Operation -> the window's merged sketch (a fresh object: the caller may keep it)."""
        now = self.clock()
        out = {}
        for operation, series in list(self._series.items()):
            merged = self._merged(series, now)
            if merged is not None:
                out[operation] = merged
        return out

    def snapshot(self) -> dict[str, OperationLatency]:
        """Operation -> latency over the window; operations with no queries in it are left out."""
        return {op: _summary(merged) for op, merged in sorted(self.sketches().items())}

    def overall(self) -> OperationLatency | None:
        """All operations together, or None when the window holds no query."""
        now = self.clock()
        total: LogCollapsingLowestDenseDDSketch | None = None
        for series in list(self._series.values()):
            merged = self._merged(series, now)
            if merged is None:
                continue
            if total is None:
                total = merged
            else:
                total.merge(merged)
        return None if total is None else _summary(total)


def summary(sketch: LogCollapsingLowestDenseDDSketch) -> OperationLatency:
    """Count and P50/P95/P99 of ``sketch`` (workers/ merges sketches of several processes)."""
    return _summary(sketch)


def _summary(sketch: LogCollapsingLowestDenseDDSketch) -> OperationLatency:
    def q(quantile: float) -> float:
        value = sketch.get_quantile_value(quantile)
        return 0.0 if value is None else float(value)

    return OperationLatency(count=round(sketch.count), p50=q(0.50), p95=q(0.95), p99=q(0.99))
