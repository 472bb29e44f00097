"""Latency sketches as plain data, and their exact merge across workers.

Every worker's sketches share one mapping (``telemetry.latency``'s relative accuracy), so a merge
adds bin counts key by key: the merged sketch is the sketch of all samples together, and its
P95 is within ``RELATIVE_ACCURACY`` of the exact P95 of every worker's samples (a test checks it
against the exact values). Durations are never negative, so only the positive store and the
zero count travel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ddsketch import LogCollapsingLowestDenseDDSketch

from ..telemetry.latency import BIN_LIMIT, RELATIVE_ACCURACY, OperationLatency, summary

__all__ = ["dump", "load", "merge", "merged_latency"]


def _new() -> LogCollapsingLowestDenseDDSketch:
    return LogCollapsingLowestDenseDDSketch(RELATIVE_ACCURACY, bin_limit=BIN_LIMIT)


def _num(value: float) -> float | int:
    return int(value) if value == int(value) else value


def dump(sketch: LogCollapsingLowestDenseDDSketch) -> dict[str, Any]:
    """``{"k": first key, "b": [count per key from k], "z": zeros, "s": sum, ...}``."""
    store = sketch._store
    if store.count:
        lo, hi = store.min_key - store.offset, store.max_key - store.offset
        first, bins = store.min_key, [_num(c) for c in store.bins[lo : hi + 1]]
    else:
        first, bins = 0, []
    return {
        "k": first,
        "b": bins,
        "c": store.is_collapsed,
        "z": _num(sketch._zero_count),
        "s": sketch._sum,
        "lo": sketch._min if sketch._count else None,
        "hi": sketch._max if sketch._count else None,
    }


def load(data: Mapping[str, Any]) -> LogCollapsingLowestDenseDDSketch:
    """The sketch ``dump`` described (ValueError on a malformed one)."""
    sketch = _new()
    first = int(data["k"])
    bins = [float(c) for c in data["b"]]
    if any(c < 0 for c in bins) or len(bins) > BIN_LIMIT:
        raise ValueError("malformed sketch bins")
    total = sum(bins)
    if total:
        # The store exactly as dumped (bins[key - offset]); a per-key add() costs ~10x more.
        store = sketch._store
        store.bins, store.offset = bins, first
        store.min_key, store.max_key, store.count = first, first + len(bins) - 1, total
        store.is_collapsed = bool(data.get("c"))
    zeros = float(data["z"])
    sketch._zero_count = zeros
    sketch._count = total + zeros
    sketch._sum = float(data["s"])
    if sketch._count:
        sketch._min, sketch._max = float(data["lo"]), float(data["hi"])
    return sketch


def merge(
    parts: Iterable[Mapping[str, LogCollapsingLowestDenseDDSketch]],
) -> dict[str, LogCollapsingLowestDenseDDSketch]:
    """Operation -> the merge of every part's sketch of it (inputs are left unchanged)."""
    out: dict[str, LogCollapsingLowestDenseDDSketch] = {}
    for part in parts:
        for operation, sketch in part.items():
            target = out.get(operation)
            if target is None:
                target = out[operation] = _new()
            target.merge(sketch)
    return out


def merged_latency(
    parts: Iterable[Mapping[str, LogCollapsingLowestDenseDDSketch]],
) -> tuple[dict[str, OperationLatency], OperationLatency | None]:
    """(per operation, all operations together) from the parts' sketches."""
    merged = merge(parts)
    total = _new()
    for sketch in merged.values():
        total.merge(sketch)
    per_op = {op: summary(s) for op, s in sorted(merged.items())}
    return per_op, summary(total) if total.count else None
