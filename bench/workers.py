"""Several workers: the exchange format, a scrape's cost at 3 and 8 workers, request throughput.

    .venv/bin/python bench/workers.py [--seconds 5] [--repeat 3] [--skip-servers]

1. format: one worker's publication (a Telemetry after 2,000 queries of 6 operations) written
   and read back as JSON (shipped), marshal and pickle; and one pod merge at 3 and 8 workers.
2. scrape, in process: ``Pod.prometheus_exposition()`` with 2 or 7 live peers (sleeping child
   processes stand for them, their files copies of ours) against the single-process
   ``Telemetry.prometheus_exposition()`` of the same telemetry.
3. servers: the README quickstart under ``uvicorn --workers 3``, loaded with wrk on /now (keep-
   alive, 32 connections): DB_WORKERS=on against DB_WORKERS=off (each worker alone), cells
   interleaved; and /health/metrics scrapes per second at 3 and 8 workers, on vs off.
Uses $DATABASE_URL's server (else embedded pgserver), in a fresh database. Ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import marshal
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, server_url, table

from personal_assistant_db.testing import free_port, fresh_database

ROOT = Path(__file__).resolve().parent.parent
OPS = ["SELECT 1", "SELECT now()", "SELECT 2 + 2", "SHOW server_version", "SELECT pg_backend_pid()"]


def _per_call(fn: Callable[[], object], n: int) -> float:
    fn()
    began = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - began) / n


async def in_process(url: str, repeat: int, children: list[subprocess.Popen[bytes]]) -> None:
    """``children``: 7 sleeping processes that stand for live peer workers."""
    from sqlalchemy import text

    from personal_assistant_db import Database, Settings, Telemetry
    from personal_assistant_db.workers import families, identity, sketches
    from personal_assistant_db.workers.exchange import Exchange
    from personal_assistant_db.workers.pod import Pod

    base = Path(tempfile.mkdtemp(prefix="pa-db-bench-workers-"))
    db = Database(Settings.from_env({"DATABASE_URL": url, "DB_WORKERS": "on"}))
    telemetry = Telemetry(db, tracing=False)
    exchange = Exchange(base, "bench", identity.current())
    pod = Pod(db, telemetry, exchange, interval=3600)
    await db.start()
    try:
        for i in range(2000):
            await db.fetch_val(text(OPS[i % len(OPS)]))
        data = pod.publication()
        body = json.dumps(data, separators=(",", ":")).encode()
        print(f"one publication: {len(body):,} bytes JSON")
        rows = []
        for name, dumps, loads in (
            ("json (shipped)", lambda d: json.dumps(d, separators=(",", ":")).encode(), json.loads),
            ("marshal", marshal.dumps, marshal.loads),
            ("pickle", pickle.dumps, pickle.loads),
        ):
            encoded = dumps(data)
            enc = median([_per_call(lambda f=dumps: f(data), 300) for _ in range(repeat)])
            dec = median([_per_call(lambda f=loads, b=encoded: f(b), 300) for _ in range(repeat)])
            rows.append([name, len(encoded), f"{enc * 1e6:.0f}", f"{dec * 1e6:.0f}"])
        write = median(
            [_per_call(lambda: exchange.write("probe.json", data), 100) for _ in range(repeat)]
        )
        rows.append(
            ["(atomic write of the JSON file, 0600 + rename)", len(body), f"{write * 1e6:.0f}", "-"]
        )
        print(table(["format", "bytes", "encode us", "decode us"], rows))

        baseline = median(
            [_per_call(lambda: telemetry.prometheus_exposition(), 100) for _ in range(repeat)]
        )
        rows = [["1 (no pod: Telemetry alone)", f"{baseline * 1e3:.2f}", "1.00", "-", "-"]]
        for n in (3, 8):
            for f in exchange.folder.glob("w-*"):
                f.unlink()
            for child in children[: n - 1]:
                start = identity.start_time(child.pid) or "?"
                me = identity.WorkerId(child.pid, start, identity.boot_id(), exchange.me.run)
                Exchange(base, "bench", me).publish(data)
            scrape = median(
                [_per_call(lambda: pod.prometheus_exposition(), 100) for _ in range(repeat)]
            )

            def merge_only() -> object:
                peers, _ = exchange.collect()
                parts = [{o: sketches.load(d) for o, d in p.data["latency"].items()} for p in peers]
                sketches.merged_latency(parts)
                return list(
                    families.merge(
                        data["metrics"], [("1", p.data["metrics"]) for p in peers], [], "0"
                    )
                )

            merge = median([_per_call(merge_only, 100) for _ in range(repeat)])
            publish = median([_per_call(pod.publish, 100) for _ in range(repeat)])
            rows.append(
                [
                    f"{n} workers (pod)",
                    f"{scrape * 1e3:.2f}",
                    f"{scrape / baseline:.2f}",
                    f"{merge * 1e3:.2f}",
                    f"{publish * 1e3:.2f}",
                ]
            )
        print(table(["scrape, in process", "ms", "vs alone", "read+merge ms", "publish ms"], rows))
    finally:
        await db.stop()
        shutil.rmtree(base, ignore_errors=True)


def _serve(url: str, workers: int, mode: str, exchange: Path) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DB_", "WEB_"))}
    env |= {"DATABASE_URL": url, "DB_WORKERS": mode, "DB_WORKERS_DIR": str(exchange)}
    cmd = [sys.executable, "-m", "uvicorn", "examples.quickstart:app", "--port", str(port)]
    cmd += ["--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["wrk", "-t1", "-c", str(workers * 4), "-d1s", f"http://127.0.0.1:{port}/now"],
            capture_output=True,
            text=True,
        )
        if "Non-2xx" not in out.stdout and "Requests/sec" in out.stdout:
            break
        time.sleep(0.5)
    return proc, port


def _wrk(port: int, path: str, seconds: float, connections: int) -> float:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "10s",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors on {path}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def servers(url: str, seconds: float, repeat: int) -> None:
    if shutil.which("wrk") is None:
        print("servers: skipped (apt-get install wrk)")
        return
    base = Path(tempfile.mkdtemp(prefix="pa-db-bench-workers-"))
    results: dict[tuple[int, str, str], list[float]] = {}
    try:
        for workers, paths in ((3, ["/now", "/health/metrics"]), (8, ["/health/metrics"])):
            running = {mode: _serve(url, workers, mode, base) for mode in ("off", "on")}
            try:
                for _ in range(repeat):
                    for path in paths:
                        for mode, (_, port) in running.items():  # interleaved cells
                            rate = _wrk(port, path, seconds, 32 if path == "/now" else 4)
                            results.setdefault((workers, path, mode), []).append(rate)
            finally:
                for proc, _ in running.values():
                    proc.terminate()
                    proc.wait(timeout=30)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    rows = []
    for (workers, path, mode), rates in sorted(results.items()):
        off = median(results[(workers, path, "off")])
        rows.append(
            [workers, path, mode, f"{median(rates):.0f}", f"{median(rates) / off:.3f}",
             " ".join(f"{r:.0f}" for r in rates)]
        )  # fmt: skip
    print(table(["workers", "route", "DB_WORKERS", "req/s", "vs off", "runs"], rows))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--skip-servers", action="store_true")
    args = p.parse_args()
    with fresh_database(server_url(), prefix="pa_bench") as url:
        sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
        children = [subprocess.Popen(sleep) for _ in range(7)]
        try:
            asyncio.run(in_process(url, args.repeat, children))
        finally:
            for child in children:
                child.kill()
                child.wait()
        if not args.skip_servers:
            servers(url, args.seconds, args.repeat)


if __name__ == "__main__":
    main()
