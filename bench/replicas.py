"""Replica benchmark on a local topology (a primary and two streaming standbys, started here).

    .venv/bin/python bench/replicas.py [--seconds 2] [--repeat 3] [--tasks 16] [--failovers 3]

Targets (issue 14):
- routing overhead: a PK read through ``db.read()`` vs the same read on the same replica's
  engine without routing, one replica, interleaved runs: ratio >= 0.95;
- spread over 2 replicas: each gets 50 % +- 10 % of the reads (least-in-flight and round robin);
- the lag monitor's cost on the servers: queries/s per server (counted by the monitor and cross-
  checked with ``pg_stat_database.xact_commit`` deltas while the app is idle);
- from a replica's lag crossing ``DB_REPLICA_MAX_LAG_MS`` to its removal: <= 2 x interval;
- failover: promotion -> first acknowledged write, and stop -> first write, under 4 writers.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import drive, median, table
from _plot import write_ratio_chart
from sqlalchemy import text

from personal_assistant_db import Database
from personal_assistant_db.testing import ReplicaTopology, started_database

ROWS = 10_000
PK = text("SELECT payload FROM bench_items WHERE id = :id")


def env(topo: ReplicaTopology, replicas: int, **extra: str) -> dict[str, str]:
    urls = ",".join(s.url for s in topo.standbys[:replicas])
    return {
        "DATABASE_REPLICA_URLS": urls,
        "DB_POOL_SIZE": "20",
        "DB_READ_YOUR_WRITES": "off",
        **extra,
    }


async def until(predicate: Callable[[], bool], step: float = 0.01) -> None:
    while True:
        if predicate():
            return
        await asyncio.sleep(step)


async def ready(db: Database) -> None:
    await until(lambda: all(n.state != "starting" for n in db.replicas.nodes))


async def overhead(topo: ReplicaTopology, seconds: float, repeat: int, tasks: int) -> list[Any]:
    async with started_database(topo.primary.url, **env(topo, 1)) as db:
        await ready(db)
        engine = db.replicas.nodes[0].started_engine()

        async def direct(_: str) -> None:
            async with engine.connect() as conn:
                await conn.execute(PK, {"id": random.randint(1, ROWS)})

        async def routed(_: str) -> None:
            async with db.read() as conn:
                await conn.execute(PK, {"id": random.randint(1, ROWS)})

        assert db.replica_reads is not None
        path = db.replica_reads.by_name[db.replicas.nodes[0].name]

        async def fast_direct(_: str) -> None:
            await path.run(PK, {"id": random.randint(1, ROWS)}, "one")

        async def fast_routed(_: str) -> None:
            await db.fetch_one(PK, {"id": random.randint(1, ROWS)})

        pairs = [
            ("direct", direct),
            ("db.read()", routed),
            ("fast path direct", fast_direct),
            ("db.fetch_one()", fast_routed),
        ]
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in pairs}
        for _name, fn in pairs:  # warm every path
            await drive(fn, "", tasks, 0.5)
        for _ in range(repeat):
            for name, fn in pairs:
                qps, _lat, cpu = await drive(fn, "", tasks, seconds)
                runs[name].append((qps, cpu))
    rows = []
    for name, values in runs.items():
        base = runs["fast path direct" if name.startswith(("fast", "db.fetch")) else "direct"]
        base_qps = median([q for q, _ in base])
        base_cpu = median([c for _, c in base])
        qps = median([q for q, _ in values])
        cpu = median([c for _, c in values])
        rows.append(
            [
                name,
                f"{qps:,.0f}",
                f"{qps / base_qps:.3f}",
                f"{cpu * 1e6:.0f}",
                f"{cpu / base_cpu:.3f}",
            ]
        )
    return rows


async def spread(
    topo: ReplicaTopology, seconds: float, repeat: int, tasks: int, slow_port: int | None = None
) -> list[Any]:
    """``slow_port``: that replica answers in 5 ms, the other in 1 ms (pg_sleep by port)."""
    runs: dict[str, list[tuple[float, list[int], int]]] = {"least_in_flight": [], "round_robin": []}
    if slow_port is None:
        query, params = PK, lambda: {"id": random.randint(1, ROWS)}
    else:
        query = text(
            "SELECT pg_sleep(CASE WHEN inet_server_port() = :slow THEN 0.005 ELSE 0.001 END)"
        )
        params = lambda: {"slow": slow_port}  # noqa: E731
    async with started_database(topo.primary.url, **env(topo, 2)) as db:
        await ready(db)

        async def routed(_: str) -> None:
            async with db.read() as conn:
                await conn.execute(query, params())

        for i in range(repeat):
            order = list(runs.items()) if i % 2 == 0 else list(reversed(runs.items()))
            for policy, results in order:
                db.replicas.router.policy = policy  # type: ignore[assignment]
                before = [n.reads for n in db.replicas.nodes]
                fallbacks = db.replicas.router.fallbacks.total()
                qps, _lat, _cpu = await drive(routed, "", tasks, seconds)
                reads = [n.reads - b for n, b in zip(db.replicas.nodes, before, strict=True)]
                results.append((qps, reads, db.replicas.router.fallbacks.total() - fallbacks))
    rows = []
    for policy, results in runs.items():
        totals = [sum(r[1][i] for r in results) for i in range(2)]
        shares = [f"{t / sum(totals) * 100:.1f} %" for t in totals]
        worst = max(abs(r[1][0] / sum(r[1]) - 0.5) for r in results) * 100
        qps = median([r[0] for r in results])
        rows.append([policy, f"{qps:,.0f}", *shares, f"{worst:.1f}", sum(r[2] for r in results)])
    return rows


def xacts(topo: ReplicaTopology) -> list[int]:
    sql = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = 'postgres'"
    return [int(topo.query(n, sql)) for n in topo.nodes]  # type: ignore[call-overload]


async def monitor_cost(topo: ReplicaTopology, interval: float, seconds: float) -> list[Any]:
    extra = {"DB_REPLICA_CHECK_INTERVAL": str(interval)}
    baseline_before = xacts(topo)
    await asyncio.sleep(seconds)
    baseline = [b - a for a, b in zip(baseline_before, xacts(topo), strict=True)]
    async with started_database(topo.primary.url, **env(topo, 2, **extra)) as db:
        await ready(db)
        before, q0, t0 = xacts(topo), db.replicas.monitor.queries, time.perf_counter()
        await asyncio.sleep(seconds)
        after, q1, t1 = xacts(topo), db.replicas.monitor.queries, time.perf_counter()
    # Each xacts() call itself is one transaction per server: subtract the idle baseline.
    per_server = [
        (b - a - base) / (t1 - t0) for a, b, base in zip(before, after, baseline, strict=True)
    ]
    return [
        [
            f"{interval:g} s",
            f"{(q1 - q0) / (t1 - t0):.2f}",
            *(f"{v:.2f}" for v in per_server),
        ]
    ]


async def removal(topo: ReplicaTopology, interval: float, max_lag_ms: int, repeat: int) -> Any:
    extra = {"DB_REPLICA_CHECK_INTERVAL": str(interval), "DB_REPLICA_MAX_LAG_MS": str(max_lag_ms)}
    standby = topo.standbys[0]
    delays = []
    async with started_database(topo.primary.url, **env(topo, 1, **extra)) as db:
        node = db.replicas.nodes[0]
        for _ in range(repeat):
            await until(lambda: node.state == "ok")
            await asyncio.sleep(random.uniform(0, interval))  # decorrelate from the checks
            topo.pause_replay(standby)
            # Keep the primary writing so the standby receives WAL it does not replay: lag in
            # seconds only exists once receive LSN > replay LSN.
            stop = asyncio.Event()
            first: list[float] = []

            async def write(stop: asyncio.Event = stop, first: list[float] = first) -> None:
                while not stop.is_set():
                    async with db.begin() as conn:
                        await conn.execute(
                            text("UPDATE bench_items SET payload = payload WHERE id = 1")
                        )
                    if not first:
                        first.append(time.time())
                    await asyncio.sleep(0.02)

            writer = asyncio.create_task(write())
            await until(lambda first=first: bool(first))  # type: ignore[misc]
            # Replay was paused just before the first write, so the oldest unreplayed commit is
            # that write: the true lag crosses the limit at first write + limit. The monitor's
            # estimate is an upper bound of the true lag, so it may remove the replica early
            # (a negative delay), never later than one interval after the true crossing.
            crossing = first[0] + max_lag_ms / 1000
            await until(lambda: node.state != "ok", 0.002)
            removed = time.time()
            stop.set()
            await writer
            topo.resume_replay(standby)
            topo.wait_caught_up(standby)
            delays.append(removed - crossing)
    return delays


async def failover(writers: int, synchronous: bool) -> tuple[float, float, float, int, int]:
    with ReplicaTopology(standbys=1, synchronous=synchronous) as topo:
        old, standby = topo.primary, topo.standbys[0]
        topo.query(old, "CREATE TABLE w (id int PRIMARY KEY)")
        hosts = "&".join(f"host=127.0.0.1:{n.port}" for n in topo.nodes)
        url = f"postgresql://postgres@/postgres?{hosts}&target_session_attrs=read-write"
        extra = {"DATABASE_REPLICA_URLS": standby.url, "DB_REPLICA_CHECK_INTERVAL": "0.25"}
        async with started_database(url, **extra) as db:
            acked: list[int] = []
            first_ok: list[float] = []
            ids = iter(range(1, 10**9))
            marks: dict[str, float] = {}
            stop = asyncio.Event()

            async def writer() -> None:
                while not stop.is_set():
                    key = next(ids)
                    try:
                        async with db.begin() as conn:
                            await conn.execute(text("INSERT INTO w VALUES (:k)"), {"k": key})
                    except Exception:
                        await asyncio.sleep(0.005)
                        continue
                    acked.append(key)
                    if "promoting" in marks and not first_ok:
                        first_ok.append(time.perf_counter())

            tasks = [asyncio.create_task(writer()) for _ in range(writers)]
            await asyncio.sleep(0.5)
            marks["stopped"] = time.perf_counter()
            await asyncio.to_thread(topo.stop, old)
            marks["promoting"] = time.perf_counter()
            await asyncio.to_thread(topo.promote, standby)
            marks["promoted"] = time.perf_counter()
            await until(lambda: bool(first_ok), 0.005)
            await asyncio.sleep(0.2)
            stop.set()
            await asyncio.gather(*tasks)
            present = topo.query(
                standby, f"SELECT count(*) FROM w WHERE id = ANY('{{{','.join(map(str, acked))}}}')"
            )
            return (
                first_ok[0] - marks["promoting"],
                marks["promoted"] - marks["promoting"],
                first_ok[0] - marks["stopped"],
                len(acked),
                int(present),  # type: ignore[call-overload]
            )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--plot", metavar="SVG", help="also write the overhead ratios as SVG")
    parser.add_argument(
        "--only", choices=["overhead", "spread", "monitor", "removal", "failover"], default=None
    )
    args = parser.parse_args()

    def wanted(part: str) -> bool:
        return args.only in (None, part)

    with ReplicaTopology(standbys=2) as topo:
        topo.query(topo.primary, "CREATE TABLE bench_items (id bigint PRIMARY KEY, payload text)")
        topo.query(
            topo.primary,
            f"INSERT INTO bench_items SELECT g, md5(g::text) FROM generate_series(1, {ROWS}) g",
        )
        for standby in topo.standbys:
            topo.wait_caught_up(standby)

        if wanted("overhead"):
            rows = await overhead(topo, args.seconds, args.repeat, args.tasks)
            print(
                f"\nRouting overhead: PK read on one replica, {args.tasks} tasks, medians of "
                f"{args.repeat} interleaved {args.seconds:g} s runs (target: ratio >= 0.95)"
            )
            print(table(["path", "reads/s", "ratio", "CPU us/read", "CPU ratio"], rows))
            if args.plot:
                routed, fetched = rows[1], rows[3]
                write_ratio_chart(
                    args.plot,
                    title="bench/replicas.py: a replica read with routing vs without",
                    baseline="the same read on the replica's engine / fast path",
                    groups=[
                        (
                            "throughput (reads/s)",
                            [
                                ("db.read()", float(routed[2])),
                                ("db.fetch_one()", float(fetched[2])),
                            ],
                        ),
                        (
                            "client CPU per read",
                            [
                                ("db.read()", float(routed[4])),
                                ("db.fetch_one()", float(fetched[4])),
                            ],
                        ),
                    ],
                    note=f"PK read, {args.tasks} tasks, --seconds {args.seconds:g} "
                    f"--repeat {args.repeat} (medians)",
                )

        if wanted("spread"):
            rows = await spread(topo, args.seconds, args.repeat, args.tasks)
            print(
                f"\nSpread over 2 replicas, {args.tasks} tasks, {args.repeat} interleaved runs "
                "per policy (target: 50 % +- 10 % each)"
            )
            header = ["policy", "reads/s (median)", "replica 1", "replica 2", "worst run +-pp"]
            print(table([*header, "fallbacks"], rows))
            slow = topo.standbys[1].port
            rows = await spread(topo, args.seconds, args.repeat, args.tasks, slow_port=slow)
            print("\nUnequal replicas: replica 2 answers in 5 ms, replica 1 in 1 ms (pg_sleep)")
            print(table([*header, "fallbacks"], rows))

        if wanted("monitor"):
            rows = []
            for interval in (1.0, 0.25):
                rows += await monitor_cost(topo, interval, max(3.0, args.seconds * 2))
            print(
                "\nLag monitor's server cost, app idle: queries/s it sent, and the transactions/s "
                "each server counted (pg_stat_database; a pooled backend flushes its counts at "
                "most once a second, so those are lower bounds)"
            )
            print(table(["interval", "monitor q/s", "primary", "replica 1", "replica 2"], rows))

        if wanted("removal"):
            rows = []
            for interval in (1.0, 0.25):
                delays = await removal(topo, interval, 1000, max(5, args.repeat))
                rows.append(
                    [
                        f"{interval:g} s",
                        ", ".join(f"{d:.3f}" for d in delays),
                        f"{max(delays):.3f}",
                        f"{max(delays) / interval:.2f}",
                    ]
                )
            print(
                "\nTrue lag crossing 1000 ms -> removal from rotation (target: <= 2 x interval; "
                "negative: removed before the true lag crossed, on the monitor's upper bound)"
            )
            print(table(["interval", "delays (s)", "max (s)", "max / interval"], rows))

    if wanted("failover"):
        rows = []
        for synchronous in (False, True):
            for _ in range(args.failovers):
                after_promote, promotion, after_stop, acked, present = await failover(
                    4, synchronous
                )
                rows.append(
                    [
                        "sync" if synchronous else "async",
                        f"{promotion:.3f}",
                        f"{after_promote:.3f}",
                        f"{after_stop:.3f}",
                        acked,
                        acked - present,
                    ]
                )
        print("\nFailover under 4 writers: primary stopped (immediate), standby promoted")
        header = ["replication", "promotion (s)", "promote -> 1st write", "stop -> 1st write"]
        print(table([*header, "acked", "acked lost"], rows))


if __name__ == "__main__":
    asyncio.run(main())
