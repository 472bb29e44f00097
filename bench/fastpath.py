"""Fast path benchmark: the statement API against raw asyncpg and plain SQLAlchemy, one run.

    .venv/bin/python bench/fastpath.py [--seconds 0.8] [--repeat 3] [--tasks 1,16,64]
                                       [--pool 20] [--queries pk,select1] [--profile PATH]

Paths, on a PK lookup over 100k rows and ``SELECT 1``, pool 20 everywhere, on a throwaway
PostgreSQL of its own on 127.0.0.1 (the four pools hold 80 connections; ``--shared-server`` uses
$DATABASE_URL's server instead):

- ``asyncpg``: raw asyncpg ``Pool`` (``acquire`` + ``fetchval``), the baseline of the ratios;
- ``plain-sqla``: plain SQLAlchemy Core, ``engine.connect()`` + ``execute().scalar()``, no
  pre-ping (the baseline of ``db.connect()``);
- ``fast``: ``db.fetch_val(stmt, params)``, no telemetry;
- ``fast+metrics``: the same with the duration histogram, pool metrics and the P95 window;
- ``fast+traced``: every query sampled (ALWAYS_ON), spans through a BatchSpanProcessor and the
  OTLP/HTTP exporter to tests/otlp_receiver.py in its own process;
- ``connect-prod``: ``db.connect()`` + ``execute().scalar()`` in the production profile (pre-ping
  on, ``DB_POOL_PING_BYPASS_MS=500``), untraced;
- ``fast/lambda``, ``fast/select``, ``fast/text``: ``db.fetch_val`` on a statement built on every
  call as ``sa.lambda_stmt``, ``select(...).where(col == value)`` and ``text()``; a table sets
  them beside ``fast`` (the statement built once) and asyncpg.

Paths run in shuffled order each round; medians of ``--repeat`` rounds. CPU per query is this
process's CPU (the exporter thread included) over the queries served. A last section times the
sampled-out span path (parent not sampled; ratio sampler at 0) against no tracer at all.

Two more sections (issue 20), each beside raw asyncpg in the same run:

- transactions of 5 PK lookups: asyncpg ``conn.transaction()``, the explicit ``tx.fetch_val``
  and the ambient form (``db.fetch_val`` inside ``async with db.transaction():``), plus the cost
  of the ambient check on a call outside any transaction (a contextvar read);
- the cancellation wave: 50 tasks of ``pg_sleep(30)`` on the pool, cancelled once the pool's
  statements run on the server; the time until the pool serves again, the most backends seen and
  the statements still running afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROWS, Runner, bench_database, drive, median, pct, table
from _plot import write_ratio_chart
from tracing import start_receiver

from personal_assistant_db import Database
from personal_assistant_db.telemetry import Telemetry
from personal_assistant_db.telemetry.sampling import Sampling
from personal_assistant_db.testing import ThrowawayServer, plain_url
from personal_assistant_db.urls import parse_database_url

ITEMS = sa.Table(
    "bench_items",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("payload", sa.Text),
)
PK = sa.select(ITEMS.c.payload).where(ITEMS.c.id == sa.bindparam("id"))
SELECT1 = sa.text("SELECT 1")
PK_RAW = "SELECT payload FROM bench_items WHERE id = $1"
Result = tuple[float, list[float], float]


def sqla_runner(connect: Callable[[], Any]) -> Runner:
    async def run(q: str) -> None:
        async with connect() as conn:
            if q == "pk":
                (await conn.execute(PK, {"id": random.randint(1, ROWS)})).scalar()
            else:
                (await conn.execute(SELECT1)).scalar()

    return run


def fast_runner(db: Database) -> Runner:
    async def run(q: str) -> None:
        if q == "pk":
            await db.fetch_val(PK, {"id": random.randint(1, ROWS)})
        else:
            await db.fetch_val(SELECT1)

    return run


# -- the forms people write (issue 20 item 7): each builds its statement on every call ---------
def lambda_runner(db: Database) -> Runner:
    """``sa.lambda_stmt`` built per call (SQLAlchemy's own answer to per-call construction)."""

    async def run(q: str) -> None:
        if q == "pk":
            key = random.randint(1, ROWS)
            await db.fetch_val(
                sa.lambda_stmt(lambda: sa.select(ITEMS.c.payload).where(ITEMS.c.id == key))
            )
        else:
            await db.fetch_val(sa.lambda_stmt(lambda: sa.select(sa.literal_column("1"))))

    return run


def select_runner(db: Database) -> Runner:
    """``select(...).where(...)`` built per call with the value inline: most SQLAlchemy code."""

    async def run(q: str) -> None:
        if q == "pk":
            await db.fetch_val(
                sa.select(ITEMS.c.payload).where(ITEMS.c.id == random.randint(1, ROWS))
            )
        else:
            await db.fetch_val(sa.select(sa.literal_column("1")))

    return run


def text_runner(db: Database) -> Runner:
    """``text()`` built per call, the value as a parameter."""

    async def run(q: str) -> None:
        if q == "pk":
            statement = sa.text("SELECT payload FROM bench_items WHERE id = :id")
            await db.fetch_val(statement, {"id": random.randint(1, ROWS)})
        else:
            await db.fetch_val(sa.text("SELECT 1"))

    return run


FORMS = {"fast/lambda": lambda_runner, "fast/select": select_runner, "fast/text": text_runner}


async def measure(
    paths: dict[str, tuple[Runner, Callable[[], None]]], args: argparse.Namespace
) -> dict[tuple[str, int], dict[str, list[Result]]]:
    out: dict[tuple[str, int], dict[str, list[Result]]] = {}
    for run, select in paths.values():  # warm statement caches and every pooled connection
        select()
        await drive(run, "pk", args.pool, 0.2)
        await drive(run, "select1", args.pool, 0.1)
    for query in args.queries:
        for tasks in args.tasks:
            results: dict[str, list[Result]] = {k: [] for k in paths}
            for _ in range(args.repeat):
                for name in random.sample(list(paths), len(paths)):
                    run, select = paths[name]
                    select()
                    results[name].append(await drive(run, query, tasks, args.seconds))
            out[(query, tasks)] = results
    return out


def sampled_out_cost(telemetry: Telemetry, loops: int = 50_000) -> list[list[str]]:
    """us per query that the span path adds when nothing is sampled (hook start + end only)."""
    observer = telemetry.observer
    stmt = observer.statement(PK_RAW)
    saved = observer.tracer
    unsampled_parent = trace.NonRecordingSpan(
        trace.SpanContext(1, 2, is_remote=False, trace_flags=trace.TraceFlags(0))
    )
    cases: list[tuple[str, Any, Any]] = [
        ("no tracer", None, None),
        ("parent not sampled", TracerProvider(shutdown_on_exit=False), unsampled_parent),
        (
            "ratio sampler 0 (root)",
            TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.0)), shutdown_on_exit=False),
            None,
        ),
    ]
    tracers = {
        name: provider.get_tracer("bench") if provider is not None else None
        for name, provider, _ in cases
    }
    timings = dict.fromkeys(tracers, float("inf"))
    for _ in range(15):  # interleaved; CPU time, so a busy machine's preemption does not count
        for name, _, parent in cases:
            observer.tracer = tracers[name]
            observer.sampling = Sampling.of(observer.tracer)
            token = (
                trace.context_api.attach(trace.set_span_in_context(parent))
                if parent is not None
                else None
            )
            began, started = time.thread_time(), time.perf_counter()
            for _ in range(loops):
                span = observer.start(stmt)
                observer.succeeded(stmt, span, started)
            timings[name] = min(timings[name], (time.thread_time() - began) / loops)
            if token is not None:
                trace.context_api.detach(token)
    observer.tracer = saved
    observer.sampling = Sampling.of(saved)
    base = timings["no tracer"]
    return [[n, f"{t * 1e6:.2f}", f"{(t - base) * 1e6:+.2f}"] for n, t in timings.items()]


async def main(args: argparse.Namespace) -> None:
    receiver, endpoint = start_receiver()
    server = None
    if not args.shared_server:  # 80 connections: more than a shared server can spare
        server = ThrowawayServer()
        server.start()
        os.environ["DATABASE_URL"] = server.url
    try:
        with bench_database() as url:
            await run_paths(args, url, endpoint)
    finally:
        if server is not None:
            server.cleanup()
        assert receiver.stdin is not None and receiver.stdout is not None
        receiver.stdin.close()
        received = receiver.stdout.readline().strip()
        receiver.wait(10)
        print(f"OTLP receiver (separate process) got {received} spans")


def database(url: str, pool: int, pre_ping: bool) -> Database:
    return Database.from_env(
        {
            "DATABASE_URL": url,
            "DB_ENV": "production",
            "DB_POOL_SIZE": str(pool),
            "DB_MAX_OVERFLOW": "0",
            "DB_WARMUP_CONNECTIONS": str(pool),
            "DB_POOL_PRE_PING": str(pre_ping).lower(),
            "DB_SLOW_QUERY_MS": "0",
        }
    )


async def run_paths(args: argparse.Namespace, url: str, endpoint: str) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    db = database(url, args.pool, pre_ping=False)
    provider = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    traced = Telemetry(db, tracer_provider=provider, tracing=True)
    metrics = Telemetry(db, tracing=False)
    prod = database(url, args.pool, pre_ping=True)  # production profile: pre-ping + bypass
    await db.start()
    await prod.start()
    plain = sa.ext.asyncio.create_async_engine(
        parse_database_url(url), pool_size=args.pool, max_overflow=0, pool_pre_ping=False
    )
    raw = await asyncpg.create_pool(plain_url(url), min_size=args.pool, max_size=args.pool)
    assert raw is not None

    def mode(active: Telemetry | None) -> Callable[[], None]:
        def select() -> None:
            for t in (traced, metrics):
                if t is not active:
                    t.uninstrument()
            if active is not None:
                active.instrument()

        return select

    async def asyncpg_raw(q: str) -> None:
        async with raw.acquire() as conn:
            if q == "pk":
                await conn.fetchval(PK_RAW, random.randint(1, ROWS))
            else:
                await conn.fetchval("SELECT 1")

    fast = fast_runner(db)
    paths = {
        "asyncpg": (asyncpg_raw, mode(None)),
        "plain-sqla": (sqla_runner(plain.connect), mode(None)),
        "fast": (fast, mode(None)),
        "fast+metrics": (fast, mode(metrics)),
        "fast+traced": (fast, mode(traced)),
        "connect-prod": (sqla_runner(prod.connect), mode(None)),
        **{name: (runner(db), mode(None)) for name, runner in FORMS.items()},
    }
    if args.profile:
        mode(None)()
        profiler = cProfile.Profile()
        profiler.enable()
        await drive(fast, "pk", 16, 2.0)
        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    results = await measure(paths, args)
    mode(None)()
    forms_cpu = await sequential_cpu(
        {"asyncpg": asyncpg_raw, "fast": fast, **{name: paths[name][0] for name in FORMS}}
    )
    print("checkouts:", prod.pool_stats().checkouts, "fast-path fallbacks:", db.fast_path.fallbacks)
    await issue_20_sections(args, db, raw, url)
    cost = sampled_out_cost(traced)
    await db.stop()
    await prod.stop()
    provider.shutdown()
    await plain.dispose()
    await raw.close()
    report(results, args)
    print()
    print("Sampled-out span path (hook start+end per query, thread CPU, best of 15 x 50k):")
    print(table(["case", "us/query", "vs no tracer"], cost))
    print()
    print("Statement forms: client CPU per call to build the statement and find its compiled")
    print("entry (SQL + arguments ready), thread CPU, best of 15 interleaved rounds x 3k:")
    print(table(["form", "build us", "build+lookup us", "vs built once"], form_costs()))
    print()
    print("Statement forms, whole PK lookups: process CPU per query, one task, best of 7")
    print("interleaved rounds of 1,500 (the figure a busy machine disturbs least):")
    print(table(["path", "cpu us/q", "vs asyncpg", "vs built once"], forms_cpu))


def report(
    results: dict[tuple[str, int], dict[str, list[Result]]], args: argparse.Namespace
) -> None:
    rows = []
    for (query, tasks), per_path in results.items():
        qps = {k: median([r[0] for r in v]) for k, v in per_path.items()}
        for name, rs in per_path.items():
            lat = [x for r in rs for x in r[1]]
            rows.append(
                [
                    query,
                    tasks,
                    name,
                    f"{qps[name]:.0f}",
                    f"{pct(lat, 0.5) * 1e3:.2f}",
                    f"{pct(lat, 0.95) * 1e3:.2f}",
                    f"{pct(lat, 0.99) * 1e3:.2f}",
                    f"{median([r[2] for r in rs]) * 1e6:.0f}",
                    f"{qps[name] / qps['asyncpg']:.2f}",
                    f"{qps[name] / qps['plain-sqla']:.2f}",
                ]
            )
    header = ["query", "tasks", "path", "q/s", "p50 ms", "p95 ms", "p99 ms", "cpu us/q"]
    print(table([*header, "vs asyncpg", "vs plain-sqla"], rows))
    if args.plot:
        groups = [
            (
                f"{q}, {t} task{'s' * (t != 1)}",
                [(r[2], float(r[8])) for r in rows if (r[0], r[1]) == (q, t)],
            )
            for q, t in dict.fromkeys((r[0], r[1]) for r in rows)
        ]
        write_ratio_chart(
            args.plot,
            title="bench/fastpath.py: throughput (queries/s)",
            baseline="asyncpg",
            groups=groups,
            note=f"pool {args.pool}, --seconds {args.seconds:g} --repeat {args.repeat} (medians)",
        )
    targets = []
    for (query, tasks), per_path in results.items():
        qps = {k: median([r[0] for r in v]) for k, v in per_path.items()}
        cpu = {k: median([r[2] for r in v]) for k, v in per_path.items()}
        p95 = {k: pct([x for r in v for x in r[1]], 0.95) for k, v in per_path.items()}

        def both(
            path: str, base: str, qps: dict[str, float] = qps, cpu: dict[str, float] = cpu
        ) -> str:
            return f"{qps[path] / qps[base]:.2f} ({cpu[base] / cpu[path]:.2f})"

        targets.append(
            [
                query,
                tasks,
                both("fast", "asyncpg"),
                both("fast+metrics", "asyncpg"),
                both("fast+traced", "asyncpg"),
                both("connect-prod", "plain-sqla"),
                f"{p95['fast'] / p95['asyncpg']:.2f}",
            ]
        )
    print()
    print(forms_report(results))
    print()
    print("Targets: throughput ratio (client CPU per query ratio, the steadier figure)")
    print(
        table(
            [
                "query",
                "tasks",
                "fast/asyncpg (>=0.85)",
                "metrics/asyncpg (>=0.80)",
                "traced/asyncpg (>=0.60)",
                "connect-prod/plain (>=0.95)",
                "fast p95/asyncpg p95 (<=1.3)",
            ],
            targets,
        )
    )


async def sequential_cpu(
    runners: dict[str, Runner], rounds: int = 7, n: int = 1_500
) -> list[list[str]]:
    """Process CPU per PK lookup, one task, best of ``rounds`` interleaved rounds."""
    best = dict.fromkeys(runners, float("inf"))
    for _ in range(rounds):
        for name in random.sample(list(runners), len(runners)):
            run = runners[name]
            began = time.process_time()
            for _ in range(n):
                await run("pk")
            best[name] = min(best[name], (time.process_time() - began) / n)
    return [
        [
            "fast/built-once" if name == "fast" else name,
            f"{cpu * 1e6:.0f}",
            f"{best['asyncpg'] / cpu:.2f}",
            f"{best['fast'] / cpu:.2f}",
        ]
        for name, cpu in best.items()
    ]


def form_costs(loops: int = 3_000) -> list[list[str]]:
    """us per call that each form spends before the round trip (no database needed)."""
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    from personal_assistant_db.fastpath.compiled import StatementCache

    cache = StatementCache(dialect())
    text_sql = "SELECT payload FROM bench_items WHERE id = :id"

    def once(i: int) -> Any:
        return PK, {"id": i}

    def lam(i: int) -> Any:
        return sa.lambda_stmt(lambda: sa.select(ITEMS.c.payload).where(ITEMS.c.id == i)), None

    def select(i: int) -> Any:
        return sa.select(ITEMS.c.payload).where(ITEMS.c.id == i), None

    def text(i: int) -> Any:
        return sa.text(text_sql), {"id": i}

    def string(i: int) -> Any:
        return text_sql, {"id": i}

    forms = {"built once": once, "lambda_stmt": lam, "select()": select, "text()": text}
    forms["str"] = string
    build = dict.fromkeys(forms, float("inf"))
    total = dict.fromkeys(forms, float("inf"))
    for _ in range(15):
        for name, make in forms.items():
            began = time.thread_time()
            for i in range(loops):
                make(i)
            build[name] = min(build[name], (time.thread_time() - began) / loops)
            began = time.thread_time()
            for i in range(loops):
                statement, params = make(i)
                entry, extracted = cache.get(statement, tuple(sorted(params or ())))
                assert not isinstance(entry, str), entry
                entry.bind(params, extracted)
            total[name] = min(total[name], (time.thread_time() - began) / loops)
    base = total["built once"]
    return [
        [n, f"{build[n] * 1e6:.1f}", f"{total[n] * 1e6:.1f}", f"{(total[n] - base) * 1e6:+.1f}"]
        for n in forms
    ]


def forms_report(results: dict[tuple[str, int], dict[str, list[Result]]]) -> str:
    """Statements built per call against the same statement built once ('fast') and asyncpg."""
    rows = []
    for (query, tasks), per_path in results.items():
        qps = {k: median([r[0] for r in v]) for k, v in per_path.items()}
        cpu = {k: median([r[2] for r in v]) for k, v in per_path.items()}
        for name in ["fast", *FORMS]:
            rows.append(
                [
                    query,
                    tasks,
                    "fast/built-once" if name == "fast" else name,
                    f"{qps[name]:.0f}",
                    f"{cpu[name] * 1e6:.0f}",
                    f"{qps[name] / qps['asyncpg']:.2f}",
                    f"{qps[name] / qps['fast']:.2f} ({cpu['fast'] / cpu[name]:.2f})",
                ]
            )
    header = ["query", "tasks", "form", "q/s", "cpu us/q", "vs asyncpg"]
    title = "Statement forms (lambda/built-once target >= 0.75)\n"
    return title + table([*header, "vs built once (cpu ratio)"], rows)


# -- issue 20: transactions and the cancellation wave (separate sections) ------------------------
TX_QUERIES = 5


def transaction_paths(db: Database, raw: Any) -> dict[str, Runner]:
    """One transaction of ``TX_QUERIES`` PK lookups per call, three ways."""

    async def asyncpg_tx(_: str) -> None:
        async with raw.acquire() as conn, conn.transaction():
            for _ in range(TX_QUERIES):
                await conn.fetchval(PK_RAW, random.randint(1, ROWS))

    async def explicit(_: str) -> None:
        async with db.transaction() as tx:
            for _ in range(TX_QUERIES):
                await tx.fetch_val(PK, {"id": random.randint(1, ROWS)})

    async def ambient(_: str) -> None:
        async with db.transaction():
            for _ in range(TX_QUERIES):
                await db.fetch_val(PK, {"id": random.randint(1, ROWS)})

    return {"asyncpg tx": asyncpg_tx, "tx.fetch_val": explicit, "ambient db.fetch_val": ambient}


def ambient_check_cost(db: Database, loops: int = 200_000) -> float:
    """Seconds per call of what the statement API adds outside a transaction: the ambient
    contextvar read and the pin check (thread CPU, best of 7)."""
    from personal_assistant_db.fastpath.ambient import current

    fast = db.fast_path
    best = float("inf")
    for _ in range(7):
        began = time.thread_time()
        for _ in range(loops):
            if current.get() is not None or fast.pin is not None:
                raise AssertionError("inside a transaction")
        best = min(best, (time.thread_time() - began) / loops)
    return best


async def cancellation_wave(
    run_slow: Callable[[], Any], run_quick: Callable[[], Any], url: str, pool: int
) -> tuple[float, float, int, int]:
    """(ms from the cancel until no pg_sleep runs on the server, ms until ``pool`` quick
    queries all ran, most pg_sleep statements seen running before and after the cancel, most
    backends of the database: the bench's other pools included)."""
    watch = await asyncpg.connect(plain_url(url))
    running_sql = (
        "SELECT count(*) FILTER (WHERE state = 'active' AND query LIKE 'SELECT pg_sleep%'),"
        " count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()"
    )

    async def sample() -> tuple[int, int]:
        running, backends = await watch.fetchrow(running_sql)
        return int(running), int(backends)

    try:
        tasks = [asyncio.ensure_future(run_slow()) for _ in range(50)]
        most = backends = 0
        for _ in range(1000):
            running, seen = await sample()
            most, backends = max(most, running), max(backends, seen)
            if running >= pool:
                break
            await asyncio.sleep(0.005)
        began = time.perf_counter()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        quick = asyncio.gather(*(run_quick() for _ in range(pool)))
        stopped = served = 0.0
        while not stopped or not quick.done():
            running, seen = await sample()
            most, backends = max(most, running), max(backends, seen)
            if not running and not stopped:
                stopped = time.perf_counter() - began
            if quick.done() and not served:
                served = time.perf_counter() - began
            if time.perf_counter() - began > 60:
                raise AssertionError("cancelled statements still run after 60 s")
            await asyncio.sleep(0.002)
        await quick
        served = served or time.perf_counter() - began
        return stopped * 1000, served * 1000, most, backends
    finally:
        await watch.close()


async def issue_20_sections(args: argparse.Namespace, db: Database, raw: Any, url: str) -> None:
    db.fast_path.observer = None  # untraced, as the ``fast`` row
    paths = transaction_paths(db, raw)
    for run in paths.values():
        await drive(run, "pk", args.pool, 0.2)
    rows = []
    for tasks in args.tasks:
        got: dict[str, list[Result]] = {k: [] for k in paths}
        for _ in range(args.repeat):
            for name in random.sample(list(paths), len(paths)):
                got[name].append(await drive(paths[name], "pk", tasks, args.seconds))
        qps = {k: median([r[0] for r in v]) for k, v in got.items()}
        cpu = {k: median([r[2] for r in v]) for k, v in got.items()}
        for name in paths:
            rows.append(
                [
                    tasks,
                    name,
                    f"{qps[name]:.0f}",
                    f"{cpu[name] * 1e6:.0f}",
                    f"{qps[name] / qps['asyncpg tx']:.2f}",
                    f"{cpu['asyncpg tx'] / cpu[name]:.2f}",
                ]
            )
    print()
    print(f"Transactions of {TX_QUERIES} PK lookups (medians of {args.repeat}):")
    header = ["tasks", "path", "tx/s", "cpu us/tx", "vs asyncpg", "cpu ratio (asyncpg/path)"]
    print(table(header, rows))
    check = ambient_check_cost(db)
    print(f"Ambient check outside a transaction: {check * 1e9:.0f} ns per call (thread CPU)")

    slow_sql, quick_sql = "SELECT pg_sleep(30)", "SELECT 1"

    async def raw_slow() -> None:
        async with raw.acquire() as conn:
            await conn.fetchval(slow_sql)

    async def raw_quick() -> None:
        async with raw.acquire() as conn:
            await conn.fetchval(quick_sql)

    waves = {
        "asyncpg pool": (raw_slow, raw_quick),
        "db.fetch_val": (
            lambda: db.fetch_val(sa.text(slow_sql)),
            lambda: db.fetch_val(sa.text(quick_sql)),
        ),
    }
    out = []
    for name, (slow, quick) in waves.items():
        results = [await cancellation_wave(slow, quick, url, args.pool) for _ in range(3)]
        out.append(
            [
                name,
                f"{median([r[0] for r in results]):.0f}",
                f"{median([r[1] for r in results]):.0f}",
                max(r[2] for r in results),
            ]
        )
    print()
    print(f"Cancellation wave: 50 x pg_sleep(30) on a pool of {args.pool}, cancelled once")
    print(f"{args.pool} run (medians of 3 waves; most running: pg_sleep statements on the server)")
    header = ["path", "ms until stopped on the server", "ms until the pool serves", "most running"]
    print(table(header, out))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--tasks", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 64]
    )
    parser.add_argument("--queries", type=lambda s: s.split(","), default=["pk", "select1"])
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--profile", default="")
    parser.add_argument("--plot", metavar="SVG", help="also write the ratio table as an SVG chart")
    parser.add_argument(
        "--shared-server",
        action="store_true",
        help="use $DATABASE_URL's server (else a throwaway PostgreSQL of its own)",
    )
    asyncio.run(main(parser.parse_args()))
