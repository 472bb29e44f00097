"""Tracing benchmark: what query tracing, metrics and P95 cost, side by side in one run.

    .venv/bin/python bench/tracing.py [--seconds 1.5] [--repeat 3] [--tasks 1,16,64]
                                      [--pool 20] [--exporter otlp|none] [--profile]

Paths, on SELECT 1 and a PK lookup over 100k rows (fresh database on $DATABASE_URL's server,
else embedded PostgreSQL 18):

- ``asyncpg``: raw asyncpg pool;
- ``plain-sqla``: plain SQLAlchemy Core, untraced (the baseline of every ratio);
- ``pa-db``: our engine, no telemetry attached (the pool's own cost);
- ``pa-db+metrics``: our engine, duration histogram, pool metrics and P95 window, no spans;
- ``pa-db+traced``: our engine, every query sampled (ALWAYS_ON), spans through a
  BatchSpanProcessor and the real OTLP/HTTP exporter to tests/otlp_receiver.py running in its
  own process (``--exporter none``: an exporter that discards, to see the SDK cost alone);
- ``stock`` (subprocess): plain SQLAlchemy with ``SQLAlchemyInstrumentor().instrument()``, in a
  child process so its global patching cannot touch the others. instrument() patches
  ``Engine.connect`` at class level (engines created earlier get connect spans too), so the child
  measures its own plain-sqla baseline first, then instruments, and reports the ratio to that.

Targets (issue 4): traced >= 0.9x plain-sqla, metrics-only >= 0.97x. Paths run in shuffled order
each round; medians of ``--repeat`` rounds are reported. CPU per query includes the exporter
thread (same process).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import random
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy.ext.asyncio as sa_asyncio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROWS, Runner, bench_database, drive, median, pct, table
from _plot import write_ratio_chart

from personal_assistant_db import Database
from personal_assistant_db.telemetry import Telemetry
from personal_assistant_db.testing import plain_url

ROOT = Path(__file__).resolve().parent.parent
PK_SQLA = "SELECT payload FROM bench_items WHERE id = :id"
PK_RAW = "SELECT payload FROM bench_items WHERE id = $1"
QUERIES = ("select1", "pk")
Result = tuple[float, list[float], float]


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def engine_runner(engine: Any) -> Runner:
    pk, select1 = text(PK_SQLA), text("SELECT 1")

    async def run(q: str) -> None:
        async with engine.connect() as conn:
            if q == "pk":
                await conn.execute(pk, {"id": random.randint(1, ROWS)})
            else:
                await conn.execute(select1)

    return run


def plain_engine(db_url: str, pool: int, pre_ping: bool) -> Any:
    from personal_assistant_db.urls import parse_database_url

    return sa_asyncio.create_async_engine(
        parse_database_url(db_url), pool_size=pool, max_overflow=0, pool_pre_ping=pre_ping
    )


async def measure(
    paths: dict[str, tuple[Runner, Callable[[], None]]], args: argparse.Namespace
) -> dict[tuple[str, int], dict[str, list[Result]]]:
    out: dict[tuple[str, int], dict[str, list[Result]]] = {}
    for run, select in paths.values():  # warm statement caches
        select()
        await drive(run, "pk", 4, 0.3)
    for query in QUERIES:
        for tasks in args.tasks:
            results: dict[str, list[Result]] = {k: [] for k in paths}
            for _ in range(args.repeat):
                for name in random.sample(list(paths), len(paths)):
                    run, select = paths[name]
                    select()
                    results[name].append(await drive(run, query, tasks, args.seconds))
            out[(query, tasks)] = results
    return out


async def stock_child(args: argparse.Namespace) -> None:
    """Child process: plain-sqla, then plain-sqla + stock SQLAlchemyInstrumentor().instrument().

    instrument() also patches ``Engine.connect`` at class level, so an engine created before it is
    traced too: the plain baseline is measured first, before instrument() runs at all.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    noop = lambda: None  # noqa: E731
    plain = plain_engine(args.url, args.pool, args.pre_ping)
    before = await measure({"plain-sqla": (engine_runner(plain), noop)}, args)
    await plain.dispose()
    provider = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False)
    exporter = OTLPSpanExporter(endpoint=args.endpoint) if args.endpoint else Discard()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    SQLAlchemyInstrumentor().instrument(tracer_provider=provider)
    stock = plain_engine(args.url, args.pool, args.pre_ping)  # wrapped by the instrumentor
    after = await measure({"stock": (engine_runner(stock), noop)}, args)
    await stock.dispose()
    provider.shutdown()
    merged = {f"{q}|{t}": {**before[(q, t)], **after[(q, t)]} for (q, t) in before}
    print(json.dumps(merged))


def run_child(args: argparse.Namespace, url: str, endpoint: str | None) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--stock-child", "--url", url, "--pool", str(args.pool)]
    argv += ["--seconds", str(args.seconds), "--repeat", str(args.repeat)]
    argv += ["--tasks", ",".join(map(str, args.tasks))]
    argv += ["--endpoint", endpoint or ""] + (["--pre-ping"] if args.pre_ping else [])
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    raw = json.loads(done.stdout.strip().splitlines()[-1])
    return {tuple_key(k): v for k, v in raw.items()}


def tuple_key(key: str) -> tuple[str, int]:
    q, t = key.split("|")
    return q, int(t)


def start_receiver() -> tuple[subprocess.Popen[str], str]:
    """tests/otlp_receiver.py in its own process (its CPU is not billed to ours)."""
    receiver = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "otlp_receiver.py")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    return receiver, f"http://127.0.0.1:{receiver.stdout.readline().strip()}/v1/traces"


async def main(args: argparse.Namespace) -> None:
    receiver, endpoint = start_receiver() if args.exporter == "otlp" else (None, None)
    try:
        with bench_database() as url:
            results, telemetry = await main_paths(args, url, endpoint)
            print(f"[ours done; stock instrumentor in a child process at {time.strftime('%X')}]")
            stock = run_child(args, url, endpoint)
    finally:
        if receiver is not None:
            assert receiver.stdin is not None and receiver.stdout is not None
            receiver.stdin.close()
            received = receiver.stdout.readline().strip()
            receiver.wait(10)
            print(f"OTLP receiver (separate process) got {received} spans")
    report(results, stock, telemetry, args)


async def main_paths(
    args: argparse.Namespace, url: str, endpoint: str | None
) -> tuple[dict[tuple[str, int], dict[str, list[Result]]], Telemetry]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    env = {
        "DATABASE_URL": url,
        "DB_ENV": "production",
        "DB_POOL_SIZE": str(args.pool),
        "DB_MAX_OVERFLOW": "0",
        "DB_WARMUP_CONNECTIONS": str(args.pool),
        "DB_POOL_PRE_PING": str(args.pre_ping).lower(),
        "DB_SLOW_QUERY_MS": "0",
    }
    db = Database.from_env(env)
    provider = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False)
    exporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else Discard()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    traced = Telemetry(db, tracer_provider=provider, tracing=True)
    metrics = Telemetry(db, tracing=False)
    await db.start()
    plain = plain_engine(url, args.pool, args.pre_ping)
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
                await conn.fetchrow(PK_RAW, random.randint(1, ROWS))
            else:
                await conn.fetchval("SELECT 1")

    ours = engine_runner(db.engine)
    paths = {
        "asyncpg": (asyncpg_raw, mode(None)),
        "plain-sqla": (engine_runner(plain), mode(None)),
        "pa-db": (ours, mode(None)),
        "pa-db+metrics": (ours, mode(metrics)),
        "pa-db+traced": (ours, mode(traced)),
    }
    if args.profile:
        mode(traced)()
        profiler = cProfile.Profile()
        profiler.enable()
        await drive(ours, "pk", 16, args.seconds)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    results = await measure(paths, args)
    mode(traced)()
    for tasks in (1, 16):
        await drive(ours, "pk", tasks, 0.5)
    print("P95 window (traced path, per operation):", traced.latency_snapshot())
    await db.stop()
    provider.shutdown()
    await plain.dispose()
    await raw.close()
    return results, traced


def report(
    results: dict[tuple[str, int], dict[str, list[Result]]],
    stock: dict[tuple[str, int], dict[str, list[Any]]],
    telemetry: Telemetry,
    args: argparse.Namespace,
) -> None:
    rows = []
    summary = []
    for (query, tasks), per_path in results.items():
        qps = {k: median([r[0] for r in v]) for k, v in per_path.items()}
        base = qps["plain-sqla"]
        for name, rs in per_path.items():
            lat = [x for r in rs for x in r[1]]
            rows.append(
                [
                    query,
                    tasks,
                    name,
                    f"{qps[name]:.0f}",
                    f"{pct(lat, 0.5) * 1e3:.2f}",
                    f"{pct(lat, 0.99) * 1e3:.2f}",
                    f"{median([r[2] for r in rs]) * 1e6:.0f}",
                    f"{qps[name] / base:.3f}",
                    f"{qps[name] / qps['asyncpg']:.3f}",
                ]
            )
        child = stock[(query, tasks)]
        child_qps = {k: median([r[0] for r in v]) for k, v in child.items()}
        rows.append(
            [
                query,
                tasks,
                "plain-sqla (child)",
                f"{child_qps['plain-sqla']:.0f}",
                f"{pct([x for r in child['plain-sqla'] for x in r[1]], 0.5) * 1e3:.2f}",
                f"{pct([x for r in child['plain-sqla'] for x in r[1]], 0.99) * 1e3:.2f}",
                f"{median([r[2] for r in child['plain-sqla']]) * 1e6:.0f}",
                "1.000*",
                f"{child_qps['plain-sqla'] / qps['asyncpg']:.3f}",
            ]
        )
        rows.append(
            [
                query,
                tasks,
                "stock (child)",
                f"{child_qps['stock']:.0f}",
                f"{pct([x for r in child['stock'] for x in r[1]], 0.5) * 1e3:.2f}",
                f"{pct([x for r in child['stock'] for x in r[1]], 0.99) * 1e3:.2f}",
                f"{median([r[2] for r in child['stock']]) * 1e6:.0f}",
                f"{child_qps['stock'] / child_qps['plain-sqla']:.3f}*",
                f"{child_qps['stock'] / qps['asyncpg']:.3f}",
            ]
        )
        summary.append(
            (
                query,
                tasks,
                qps["pa-db+traced"] / base,
                qps["pa-db+metrics"] / base,
                qps["pa-db+traced"] / qps["pa-db"],
                qps["pa-db+metrics"] / qps["pa-db"],
                child_qps["stock"] / child_qps["plain-sqla"],
            )
        )
    header = ["query", "tasks", "path", "q/s", "p50 ms", "p99 ms", "cpu us/q"]
    print(table([*header, "vs plain-sqla", "vs asyncpg"], rows))
    print("* child process: plain-sqla measured first, then stock instrument(); ratio to that")
    if args.plot:
        names = ["pa-db", "pa-db+metrics", "pa-db+traced", "stock"]
        groups = [
            (
                f"{q}, {t} task{'s' * (t != 1)}",
                list(zip(names, (x[0] / x[2], x[1], x[0], x[4]), strict=True)),
            )
            for q, t, *x in summary
        ]
        write_ratio_chart(
            args.plot,
            title="bench/tracing.py: throughput with telemetry",
            baseline="untraced plain-sqla",
            groups=[(g, [(n, float(v)) for n, v in bars]) for g, bars in groups],
            note=f"pool {args.pool}, --seconds {args.seconds:g} --repeat {args.repeat} (medians); "
            "stock: the stock instrumentor vs plain-sqla in a child process",
        )
    print()
    print(
        table(
            [
                "query",
                "tasks",
                "traced/plain (>=0.9)",
                "metrics/plain (>=0.97)",
                "traced/pa-db",
                "metrics/pa-db",
                "stock/plain",
            ],
            [[q, t, *(f"{x:.3f}" for x in xs)] for q, t, *xs in summary],
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument(
        "--tasks", type=lambda v: [int(x) for x in v.split(",")], default=[1, 16, 64]
    )
    parser.add_argument("--pool", type=int, default=20, help="connections per path")
    parser.add_argument("--exporter", choices=("otlp", "none"), default="otlp")
    parser.add_argument("--pre-ping", action="store_true", help="pool_pre_ping on every path")
    parser.add_argument("--profile", action="store_true", help="cProfile the traced path first")
    parser.add_argument("--plot", metavar="SVG", help="also write the ratio table as an SVG chart")
    parser.add_argument("--stock-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.stock_child:
        asyncio.run(stock_child(parsed))
    else:
        asyncio.run(main(parsed))
