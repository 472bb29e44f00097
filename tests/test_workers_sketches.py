"""Latency sketches travel between workers as data and merge exactly.

The pod's P95 is checked against the exact P95 of every worker's samples together: DDSketch
promises a relative error of ``RELATIVE_ACCURACY`` on the value at the quantile's rank.
"""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from personal_assistant_db.telemetry.latency import RELATIVE_ACCURACY, LatencyWindow
from personal_assistant_db.workers import sketches

durations = st.floats(min_value=1e-5, max_value=30.0, allow_nan=False)
workers = st.lists(st.lists(durations, min_size=0, max_size=300), min_size=1, max_size=5)


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]  # DDSketch's rank: q x (n - 1), lower


def _window(samples: list[float]) -> LatencyWindow:
    window = LatencyWindow(300.0, clock=lambda: 10.0)
    for value in samples:
        window.record("SELECT", value)
    return window


@given(workers)
def test_the_merged_p95_and_p99_are_those_of_all_samples_within_the_sketch_error(
    per_worker: list[list[float]],
) -> None:
    # Each worker's sketches go through the file format (JSON) and back, as between processes.
    parts = [
        {op: sketches.load(json.loads(json.dumps(sketches.dump(s)))) for op, s in sk.items()}
        for sk in (_window(samples).sketches() for samples in per_worker)
    ]
    per_op, overall = sketches.merged_latency(parts)
    every = [v for samples in per_worker for v in samples]
    if not every:
        assert per_op == {} and overall is None
        return
    assert overall is not None and per_op["SELECT"] == overall
    assert overall.count == len(every)
    for q, got in ((0.95, overall.p95), (0.99, overall.p99), (0.5, overall.p50)):
        exact = _exact(every, q)
        assert abs(got - exact) <= RELATIVE_ACCURACY * exact * 1.0001, (q, got, exact)


@given(workers)
def test_merging_is_the_same_as_one_sketch_of_every_sample(per_worker: list[list[float]]) -> None:
    together = _window([v for samples in per_worker for v in samples]).overall()
    merged = sketches.merged_latency(_window(s).sketches() for s in per_worker)[1]
    assert merged == together


def test_a_dumped_sketch_is_small() -> None:
    window = _window([i / 1000 for i in range(1, 20_000)])  # 1 ms .. 20 s: hundreds of bins
    body = json.dumps(sketches.dump(window.sketches()["SELECT"]))
    assert len(body) < 8_000


@given(st.lists(st.floats(min_value=1e-9, max_value=1e4), min_size=1, max_size=400), workers)
def test_collapsed_sketches_still_merge_like_one_sketch(
    wide: list[float], per_worker: list[list[float]]
) -> None:
    # Values over 13 decades exceed the 600-bin limit: the lowest bins collapse.
    per_worker = [wide, *per_worker]
    together = _window([v for samples in per_worker for v in samples]).overall()
    parts = [
        {op: sketches.load(json.loads(json.dumps(sketches.dump(s)))) for op, s in sk.items()}
        for sk in (_window(samples).sketches() for samples in per_worker)
    ]
    merged = sketches.merged_latency(parts)[1]
    assert merged is not None and together is not None
    assert (merged.count, merged.p95, merged.p99) == (together.count, together.p95, together.p99)
