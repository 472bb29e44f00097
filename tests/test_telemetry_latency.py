"""Windowed percentiles: accuracy against exact percentiles, bounded memory, window expiry."""

from __future__ import annotations

import math
import random
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from personal_assistant_db.telemetry.latency import OVERFLOW_OPERATION, LatencyWindow

# Query durations: 10 us .. 30 s, the range a database client sees.
durations = st.floats(min_value=1e-5, max_value=30.0, allow_nan=False, allow_infinity=False)


def exact(values: list[float], q: float) -> float:
    """The exact q-quantile: the sample at rank floor(q * (n - 1)) of the sorted values."""
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@settings(max_examples=200, deadline=None)
@given(st.lists(durations, min_size=1, max_size=2000))
def test_p95_within_two_percent_of_exact(values: list[float]) -> None:
    window = LatencyWindow(300.0, clock=FakeClock())
    for v in values:
        window.record("SELECT", v)
    got = window.snapshot()["SELECT"]
    assert got.count == len(values)
    for q, value in ((0.95, got.p95), (0.50, got.p50), (0.99, got.p99)):
        want = exact(values, q)
        assert abs(value - want) <= 0.02 * want, (q, value, want)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["SELECT", "INSERT"]), durations), min_size=1))
def test_overall_p95_covers_every_operation(samples: list[tuple[str, float]]) -> None:
    window = LatencyWindow(60.0, clock=FakeClock())
    for op, v in samples:
        window.record(op, v)
    overall = window.overall()
    assert overall is not None and overall.count == len(samples)
    want = exact([v for _, v in samples], 0.95)
    assert abs(overall.p95 - want) <= 0.02 * want


def test_old_samples_leave_the_window() -> None:
    clock = FakeClock()
    window = LatencyWindow(300.0, clock=clock)
    for _ in range(100):
        window.record("SELECT", 2.0)
    clock.now += 150
    for _ in range(10):
        window.record("SELECT", 0.001)
    assert window.snapshot()["SELECT"].count == 110
    clock.now += 300  # the 2 s samples are older than the window now; so are the fast ones
    assert window.snapshot() == {}
    assert window.overall() is None
    window.record("SELECT", 0.004)
    got = window.snapshot()["SELECT"]
    assert got.count == 1 and abs(got.p95 - 0.004) <= 0.02 * 0.004


def test_memory_per_series_is_bounded() -> None:
    """Worst case for a DDSketch store: values spread over every bin, in every slot, 250 000
    samples per slot. The retained size is measured with tracemalloc and must stay <= 64 KiB."""
    clock = FakeClock()
    rng = random.Random(7)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        window = LatencyWindow(300.0, clock=clock)
        for slot in range(window.slots):
            clock.now = 1000.0 + slot * window.window / window.slots
            for _ in range(250_000):
                window.record("SELECT", 10 ** rng.uniform(-6, 2))  # 1 us .. 100 s
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    retained = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert window.snapshot()["SELECT"].count == 250_000 * window.slots
    print(f"retained by one full series: {retained} bytes")
    assert retained <= 64 * 1024, f"{retained} bytes for one series"


def test_series_count_is_bounded() -> None:
    window = LatencyWindow(60.0, max_series=3, clock=FakeClock())
    for i in range(10):
        window.record(f"OP{i}", 0.01)
    snapshot = window.snapshot()
    assert set(snapshot) == {"OP0", "OP1", "OP2", OVERFLOW_OPERATION}
    assert snapshot[OVERFLOW_OPERATION].count == 7


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_window_is_rejected(bad: float) -> None:
    with pytest.raises(ValueError, match="window must be seconds > 0"):
        LatencyWindow(bad)


@given(st.lists(durations, min_size=1, max_size=300))
def test_folding_matches_adding_one_by_one(values: list[float]) -> None:
    """fold() inlines LogarithmicMapping.key(); it must bin exactly as DDSketch.add() does."""
    from personal_assistant_db.telemetry.latency import _sketch

    window = LatencyWindow(60.0, clock=FakeClock())
    for v in values:
        window.record("SELECT", v)
    folded = window.snapshot()["SELECT"]
    direct = _sketch()
    for v in values:
        direct.add(v)
    for q, got in ((0.5, folded.p50), (0.95, folded.p95), (0.99, folded.p99)):
        assert got == direct.get_quantile_value(q)
