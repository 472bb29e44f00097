"""Prometheus metric families as plain data, and the pod's exposition merged from them.

A worker publishes what its own exposition collects: ``[name, type, help, unit, samples]`` with
``samples = [[sample name, labels, value], ...]``. The merge follows what each type means:

- counters, histograms (``_bucket``/``_count``/``_sum``) and summaries: summed over every worker
  of the run, dead ones included (their last figures live in the archive), so a series never
  goes down while the pod runs, as with prometheus_client's ``mark_process_dead``;
- gauges: one series per live worker, with a ``worker`` label (its pid); a dead worker's gauges
  disappear with it;
- capacity gauges (``CAPACITY``: the pool's maximum and idle maximum): summed over live workers,
  because the pod's capacity is the sum of its workers' pools;
- ``target_info``: the answering worker's.

The exposition also carries ``pa_db_workers`` (live workers merged), per-worker
``pa_db_worker_report_age_seconds`` and ``pa_db_worker_pool_utilization`` (used / capacity).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Metric
from prometheus_client.registry import Collector

__all__ = ["CAPACITY", "Family", "dump", "fold", "merge", "registry_of"]

#: Gauges whose pod value is the sum over live workers.
CAPACITY = frozenset({"db_client_connection_max", "db_client_connection_idle_max"})
_SUMMED = frozenset({"counter", "histogram", "summary", "gaugehistogram"})
Family = list[Any]  # [name, type, help, unit, [[sample name, labels, value], ...]]
_Key = tuple[str, tuple[tuple[str, str], ...]]


def dump(registry: CollectorRegistry) -> list[Family]:
    """What ``registry`` collects now, as JSON-ready lists."""
    return [
        [f.name, f.type, f.documentation, f.unit, [[s.name, s.labels, s.value] for s in f.samples]]
        for f in registry.collect()
    ]


def _summed(families: Iterable[Family]) -> dict[str, tuple[Family, dict[_Key, float]]]:
    out: dict[str, tuple[Family, dict[_Key, float]]] = {}
    for family in families:
        name, kind = family[0], family[1]
        if kind not in _SUMMED:
            continue
        _, values = out.setdefault(name, (family[:4], {}))
        for sample, labels, value in family[4]:
            key = (sample, tuple(sorted(labels.items())))
            if sample.endswith("_created"):
                values[key] = min(values.get(key, value), value)
            else:
                values[key] = values.get(key, 0.0) + value
    return out


def fold(archive: Sequence[Family], published: Sequence[Family]) -> list[Family]:
    """The archive plus one dead worker's counters and histograms (gauges are dropped)."""
    merged = _summed([*archive, *published])
    return [
        [*head, [[sample, dict(labels), value] for (sample, labels), value in values.items()]]
        for head, values in merged.values()
    ]


def merge(
    own: Sequence[Family],
    peers: Sequence[tuple[str, Sequence[Family]]],
    dead: Sequence[Sequence[Family]],
    me: str,
) -> Iterator[Metric]:
    """The pod's families: ``own`` (this worker, pid ``me``), live ``peers`` (pid, families),
    ``dead`` workers' counters (files not yet compacted, and the archive)."""
    live = [(me, own), *peers]
    summed = _summed([f for _, fams in live for f in fams] + [f for fams in dead for f in fams])
    order: dict[str, Family] = {}
    gauges: dict[str, list[tuple[str, list[Any]]]] = {}
    capacity: dict[str, dict[_Key, float]] = {}
    for pid, fams in live:
        for family in fams:
            name, kind = family[0], family[1]
            order.setdefault(name, family[:4])
            if kind in _SUMMED:
                continue
            if name == "target_info":
                if pid == me:
                    gauges.setdefault(name, []).append((pid, family[4]))
            elif name in CAPACITY:
                values = capacity.setdefault(name, {})
                for sample, labels, value in family[4]:
                    key = (sample, tuple(sorted(labels.items())))
                    values[key] = values.get(key, 0.0) + value
            else:
                gauges.setdefault(name, []).append((pid, family[4]))
    for head, _ in summed.values():
        order.setdefault(head[0], head)
    for name, (fam_name, kind, doc, unit) in order.items():
        metric = Metric(fam_name, doc, kind, unit)
        if name in summed:
            for (sample, labels), value in summed[name][1].items():
                metric.add_sample(sample, dict(labels), value)
        elif name in capacity:
            for (sample, labels), value in capacity[name].items():
                metric.add_sample(sample, dict(labels), value)
        else:
            for pid, samples in gauges.get(name, []):
                for sample, labels, value in samples:
                    extra = {} if name == "target_info" else {"worker": pid}
                    metric.add_sample(sample, {**labels, **extra}, value)
        if metric.samples:
            yield metric


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def registry_of(metrics: Iterable[Metric]) -> CollectorRegistry:
    """A throwaway registry that yields ``metrics`` (for prometheus_client's encoders)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(metrics)))
    return registry
