"""Pool sizing advice: HikariCP's formula as a start, corrected by what the live pool observed,
and bounded by what the server can give each worker.

- start: ``connections = cores x 2 + 1`` for the whole server (HikariCP's "About Pool Sizing"),
  shared by every worker of the app;
- observed: a pool that made callers wait (wait P95 above 50 ms, anyone waiting now, or any
  checkout timeout) needs the demand it saw (used + waiting), at least 1.5x its capacity. Without
  such evidence the configured pool is kept: the formula alone never overrides a configuration
  (the package's production default, 10 + 10 overflow, included), since it knows neither the
  server's real cores nor the app's query mix;
- limit: ``max_connections - superuser_reserved - connections held by others - headroom`` split
  across the workers. Advice above that limit says so instead of recommending it.
- behind PgBouncer (``DB_POOLER``): the app's pools are the pooler's *clients*, so
  ``capacity x workers`` is checked against its ``max_client_conn`` and the pooler's own server
  pool against the server's budget (``pooler_advice``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..pool import PoolStats
from .findings import Finding, Severity

__all__ = ["PGBOUNCER_MAX_CLIENT_CONN", "PoolInputs", "pool_advice", "pooler_advice"]

SLOW_WAIT_S = 0.05
HEADROOM = 3  # connections kept free for migrations, psql and monitoring
PGBOUNCER_MAX_CLIENT_CONN = 100  # PgBouncer's default


@dataclass(frozen=True)
class PoolInputs:
    max_connections: int
    reserved: int
    others: int  # client connections held by anything other than this app
    workers: int
    cores: int
    cores_known: bool
    configured_size: int
    configured_overflow: int
    stats: PoolStats | None
    pooler: str = "none"  # DB_POOLER
    pooler_max_client_conn: int = PGBOUNCER_MAX_CLIENT_CONN
    pooler_pool_size: int | None = None  # server connections PgBouncer may open (pool + reserve)
    replicas: int = 0  # DATABASE_REPLICA_URLS: each replica gets the same count as the primary


def pooler_advice(p: PoolInputs) -> Finding | None:
    """Behind PgBouncer: client connections vs ``max_client_conn``, its pool vs the server."""
    if p.pooler == "none":
        return None
    capacity = p.stats.capacity if p.stats else p.configured_size + p.configured_overflow
    clients = capacity * p.workers
    budget = p.max_connections - p.reserved - p.others - HEADROOM
    evidence: dict[str, int | float | str | bool | None] = {
        "pooler": p.pooler,
        "client_connections": clients,
        "max_client_conn": p.pooler_max_client_conn,
        "pooler_pool_size": p.pooler_pool_size,
        "server_budget": budget,
    }
    problems = []
    if clients > p.pooler_max_client_conn:
        problems.append(
            f"{p.workers} workers x capacity {capacity} = {clients} client connections exceed "
            f"PgBouncer's max_client_conn {p.pooler_max_client_conn}"
        )
    if p.pooler_pool_size is not None and p.pooler_pool_size > budget:
        problems.append(
            f"PgBouncer's {p.pooler_pool_size} server connections exceed what the server has "
            f"free ({budget})"
        )
    if not problems:
        return Finding(
            Severity.INFO,
            "pooler_sizing",
            "pool",
            f"{clients} client connections through PgBouncer ({p.pooler}), within "
            f"max_client_conn {p.pooler_max_client_conn}",
            evidence,
            "",
        )
    return Finding(
        Severity.WARNING,
        "pooler_sizing",
        "pool",
        "; ".join(problems),
        evidence,
        f"max_client_conn >= {clients} in pgbouncer.ini, or lower DB_POOL_SIZE/DB_MAX_OVERFLOW; "
        "default_pool_size x databases x users within the server's free connections",
    )


def pool_advice(p: PoolInputs) -> Finding:
    budget = p.max_connections - p.reserved - p.others - HEADROOM
    per_worker_budget = budget // p.workers if p.workers else budget
    hikari = p.cores * 2 + 1
    start = max(1, math.ceil(hikari / p.workers))
    reasons = [
        f"HikariCP start: {p.cores} cores x 2 + 1 = {hikari} for the server"
        + ("" if p.cores_known else " (cores assumed from this machine; pass --server-cores)")
        + f", {start} per worker across {p.workers}",
        f"server budget: max_connections {p.max_connections} - reserved {p.reserved} - "
        f"held by others {p.others} - headroom {HEADROOM} = {budget}, "
        f"{per_worker_budget} per worker",
    ]
    s = p.stats
    capacity = s.capacity if s else p.configured_size + p.configured_overflow
    saturated = False
    want = start
    if s is None:
        reasons.append(
            "no live pool statistics: advice is the formula only "
            "(call analyze(conn, pool=db.pool_stats()) inside the app)"
        )
    else:
        saturated = s.timeouts > 0 or s.waiting > 0 or s.wait_p95 > SLOW_WAIT_S
        reasons.append(
            f"observed: capacity {s.capacity}, used {s.used}, waiting {s.waiting}, "
            f"wait p95 {s.wait_p95 * 1000:.1f} ms, timeouts {s.timeouts}, "
            f"utilization {s.utilization:.0%}"
        )
        if saturated:
            demand = max(s.used + s.waiting, math.ceil(s.capacity * 1.5), s.capacity + 1)
            want = max(start, demand)
            reasons.append(f"callers waited: demand at least {demand}")
    if not saturated:
        want = capacity
        reasons.append(f"no waits observed: keep the configured capacity {capacity}")
    evidence: dict[str, int | float | str | bool | None] = {
        "current_capacity": capacity,
        "hikari_per_worker": start,
        "server_budget_per_worker": per_worker_budget,
        "max_connections": p.max_connections,
        "workers": p.workers,
        # workers x (DB_POOL_SIZE + DB_MAX_OVERFLOW), to the primary *and* to each replica
        "connections_per_node": capacity * p.workers,
        "nodes": 1 + p.replicas,
        "saturated": saturated,
        "reasoning": "; ".join(reasons),
    }
    if s is not None:
        evidence.update(
            wait_p95_ms=round(s.wait_p95 * 1000, 1),
            timeouts=s.timeouts,
            waiting=s.waiting,
            utilization=round(s.utilization, 4),
        )
    if want > per_worker_budget >= 1 and not saturated:
        want = per_worker_budget
        evidence["reasoning"] = f"{evidence['reasoning']}; capped at the server budget"
    if per_worker_budget < 1 or want > per_worker_budget:
        limit = max(per_worker_budget, 0)
        needed = p.reserved + p.others + HEADROOM + want * p.workers
        return Finding(
            Severity.ERROR,
            "pool_sizing",
            "pool",
            f"the pool needs {want} connections per worker but the server limit forbids it: "
            f"{p.workers} workers get at most {limit} each",
            {**evidence, "recommended_capacity": want},
            f"max_connections = {needed} (restart), or PgBouncer in transaction mode, or fewer "
            f"workers; meanwhile DB_POOL_SIZE={max(limit, 1)} DB_MAX_OVERFLOW=0",
        )
    if saturated:
        size = min(max(start, s.used if s else 0, 1), want)
    else:
        size = min(p.configured_size, want)
    overflow = want - size
    action = f"DB_POOL_SIZE={size} DB_MAX_OVERFLOW={overflow} (per worker, x{p.workers} workers)"
    evidence["recommended_capacity"] = want
    if saturated:
        return Finding(
            Severity.ERROR if s is not None and s.timeouts else Severity.WARNING,
            "pool_sizing",
            "pool",
            f"the pool is too small: callers waited (capacity {capacity}); raise it to {want}",
            evidence,
            action,
        )
    if capacity * p.workers > budget and p.pooler == "none":  # a pooler: pooler_advice
        return Finding(
            Severity.WARNING,
            "pool_sizing",
            "pool",
            f"{p.workers} workers x capacity {capacity} = {capacity * p.workers} connections "
            f"per node can exceed what the server has free ({budget})"
            + (f"; each of the {p.replicas} replicas gets as many" if p.replicas else ""),
            evidence,
            action,
        )
    observed = "no waits observed" if s is not None else "no live statistics to show waits"
    return Finding(
        Severity.INFO,
        "pool_sizing",
        "pool",
        f"pool capacity {capacity} per worker fits the server; {observed}: keep it "
        f"(the formula alone would start at {start})",
        evidence,
        f"keep {action}",
    )
