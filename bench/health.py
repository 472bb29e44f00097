"""/health benchmark: /health/ready and /health/database vs a constant-JSON route, one run.

    .venv/bin/python bench/health.py [--seconds 10] [--connections 32] [--repeat 2] [--tool wrk]

Serves a small host app (Database + Mount("/health") + a constant JSON route + a naive route
that runs SELECT 1 per request) with uvicorn on 127.0.0.1 in a subprocess, and loads each route
with wrk (Debian: ``apt-get install wrk``) or, without wrk, a bounded httpx loop in another
subprocess. Prints req/s, the ratio to the constant route, and the database's health queries per
TTL (counted by a listener on the real engine). Goal (issue 3): /health/ready >= 0.8x constant,
<= 1 DB query per TTL. Uses $DATABASE_URL's server (else embedded PostgreSQL 18), in a fresh
database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, server_url, table
from _plot import write_ratio_chart

from personal_assistant_db.testing import fresh_database

ROUTES = ["/const", "/health/ready", "/health/database", "/naive"]


def serve(port: int) -> None:
    """The host app under uvicorn (runs in the server subprocess)."""
    import uvicorn
    from sqlalchemy import event
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from personal_assistant_db import Database

    db = Database.from_env()
    counted = {"health_queries": 0}

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "server_version" in statement:
            counted["health_queries"] += 1

    async def hook(database: Database) -> None:
        event.listen(database.engine.sync_engine, "before_cursor_execute", count)

    db.add_hooks(on_start=hook)

    async def const(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def naive(request: Request) -> JSONResponse:
        async with db.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        return JSONResponse({"ok": True})

    async def counts(request: Request) -> JSONResponse:
        return JSONResponse(counted)

    app = Starlette(
        routes=[
            Route("/const", const),
            Route("/naive", naive),
            Route("/counts", counts),
            Mount("/health", app=db.health_app()),
        ],
        lifespan=db.lifespan,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def python_load(url: str, connections: int, seconds: float) -> float:
    """Bounded load loop (no wrk): ``connections`` keep-alive clients for ``seconds``."""
    import httpx

    done = failed = 0
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=5) as client:

        async def worker() -> None:
            nonlocal done, failed
            while time.perf_counter() < stop_at:
                response = await client.get(url)
                done += 1
                failed += not response.is_success

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        if failed:
            print(f"  note: {url} had {failed} non-2xx responses", file=sys.stderr)
        return done / (time.perf_counter() - began)


def load(url: str, connections: int, seconds: float, tool: str) -> float:
    if tool == "wrk":
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert match, out
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if errors:
            print(f"  note: {url} had {errors.group(1)} non-2xx responses", file=sys.stderr)
        return float(match.group(1))
    code = f"import asyncio,sys;sys.path.insert(0,{str(Path(__file__).parent)!r});import health;" \
        f"print(asyncio.run(health.python_load({url!r},{connections},{seconds})))"  # fmt: skip
    command = [sys.executable, "-c", code]
    proc = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def wait_up(port: int, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the bench server did not listen on 127.0.0.1:{port} within {limit}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--tool",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator: wrk if installed (auto), or the bounded httpx loop (python)",
    )
    parser.add_argument("--plot", metavar="SVG", help="also write the ratio table as an SVG chart")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tool == "auto":
        args.tool = "wrk" if shutil.which("wrk") else "python"
    elif args.tool == "wrk" and not shutil.which("wrk"):
        parser.error("--tool wrk: wrk is not on PATH (apt-get install wrk), or use --tool python")
    if args.serve:
        serve(args.serve)
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with fresh_database(server_url(), prefix="pa_bench") as url:
        env = {**os.environ, "DATABASE_URL": url, "DB_ENV": "production"}
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env)
        try:
            wait_up(port)
            base = f"http://127.0.0.1:{port}"
            tool = "wrk -t2" if args.tool == "wrk" else "python httpx loop (own process)"
            print(f"load: {tool}, {args.connections} connections, {args.seconds:g} s per route")
            rates: dict[str, list[float]] = {r: [] for r in ROUTES}
            began = time.monotonic()
            before = _counts(base)
            for _ in range(args.repeat):
                for route in ROUTES:
                    rate = load(base + route, args.connections, args.seconds, args.tool)
                    rates[route].append(rate)
            elapsed = time.monotonic() - began
            queries = _counts(base) - before
        finally:
            server.terminate()
            server.wait(10)
    const = median(rates["/const"])
    rows = [
        [
            route,
            " ".join(f"{r:,.0f}" for r in rates[route]),
            f"{median(rates[route]):,.0f}",
            f"{median(rates[route]) / const:.2f}x",
        ]
        for route in ROUTES
    ]
    print(table(["route", "req/s per run", "median", "vs /const"], rows))
    if args.plot:
        write_ratio_chart(
            args.plot,
            title="bench/health.py: requests per second by route",
            baseline="/const",
            groups=[(route, [("req/s", median(rates[route]) / const)]) for route in ROUTES],
            note=f"{tool}, {args.connections} connections, {args.seconds:g} s x {args.repeat}",
        )
    ttl = float(os.environ.get("DB_HEALTH_TTL", "1.0"))
    print(
        f"health queries on the engine: {queries} in {elapsed:.1f} s "
        f"= {queries / (elapsed / ttl):.2f} per TTL ({ttl:g} s; the /naive route's SELECT 1 "
        "is not counted)"
    )
    ratio = median(rates["/health/ready"]) / const
    print(
        f"goal /health/ready >= 0.8x /const: {'met' if ratio >= 0.8 else 'NOT met'} ({ratio:.2f}x)"
    )


def _counts(base: str) -> int:
    import urllib.request

    with urllib.request.urlopen(base + "/counts", timeout=5) as response:  # noqa: S310
        return int(json.loads(response.read())["health_queries"])


if __name__ == "__main__":
    main()
