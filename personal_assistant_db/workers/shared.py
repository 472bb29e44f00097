"""What the alert lease holder shares with the pod: the dashboard history and the pool total.

The holder records the history (health/history.py) from the pod's merged figures and writes the
ring to ``history.json`` after each snapshot; every other worker's dashboard draws that file, and
a worker that takes the lease over starts from it, so the charts survive a leader's death. The
ring is bounded by ``DB_HEALTH_HISTORY_WINDOW / DB_HEALTH_HISTORY_INTERVAL`` snapshots and each
snapshot by history.py's caps; a file over ``MAX_FILE_BYTES`` is not written (logged).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..health.history import CheckPoint, EventPoint, OperationPoint, PoolPoint, Snapshot
from ..pool import PoolStats

__all__ = ["dump_history", "load_history", "pod_pool"]

_MAX = ("wait_p50", "wait_p95", "wait_max")


def dump_history(snapshots: Iterable[Snapshot]) -> list[list[Any]]:
    return [
        [
            s.at,
            {op: list(p) for op, p in s.latency.items()},
            None if s.pool is None else list(s.pool),
            [list(c) for c in s.checks],
            [list(e) for e in s.alerts],
        ]
        for s in snapshots
    ]


def load_history(rows: Sequence[Any]) -> list[Snapshot]:
    """Snapshots from ``dump_history`` rows; a malformed row is skipped."""
    out = []
    for row in rows:
        try:
            at, latency, pool, checks, alerts = row
            out.append(
                Snapshot(
                    float(at),
                    {str(op): OperationPoint(*p) for op, p in dict(latency).items()},
                    None if pool is None else PoolPoint(*pool),
                    tuple(CheckPoint(*c) for c in checks),
                    tuple(EventPoint(*e) for e in alerts),
                )
            )
        except (TypeError, ValueError):
            continue
    return out


def pod_pool(pools: Iterable[Mapping[str, Any]]) -> PoolStats | None:
    """The pod's pool: counts summed over workers, wait percentiles the worst worker's."""
    total: dict[str, Any] = {}
    for pool in pools:
        for name, value in pool.items():
            if not isinstance(value, int | float):
                continue
            if name in _MAX:
                total[name] = max(total.get(name, 0.0), float(value))
            else:
                total[name] = total.get(name, 0) + value
    if not total:
        return None
    fields = PoolStats.__dataclass_fields__
    return PoolStats(**{k: v for k, v in total.items() if k in fields})
