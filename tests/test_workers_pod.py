"""The pod view across real processes, and its absence in a single process.

Three worker processes (each a Database + Telemetry + health app with ``DB_WORKERS=on`` on one
exchange directory) record known latencies; one of them serves the dashboard, whose P95/P99 must
be the exact P95/P99 of every sample of the three within the sketch's relative error.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path

from personal_assistant_db import Database, Telemetry
from personal_assistant_db.telemetry.latency import RELATIVE_ACCURACY

WORKER = r"""
import asyncio, os, random, sys
import httpx
from personal_assistant_db import Database, Telemetry

async def main(seed: int, serve: bool) -> None:
    db = Database.from_env()
    telemetry = Telemetry(db, tracing=False)
    app = db.health_app(telemetry=telemetry)
    await db.start()
    rng = random.Random(seed)
    for _ in range(3000):
        telemetry.latency.record("SELECT", rng.lognormvariate(-4.5, 0.8))  # ~11 ms median
    app.state.pod.publish()
    print("published", flush=True)
    sys.stdin.readline()
    if serve:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            page = (await client.get("/dashboard")).text
        print(page, "\nEND-OF-PAGE", flush=True)
    sys.stdin.readline()
    await db.stop()

# Same command line in every worker (it is part of the app's identity); the role comes by env.
asyncio.run(main(int(os.environ["SEED"]), os.environ["ROLE"] == "serve"))
"""


def _read_until(proc: subprocess.Popen[str], marker: str) -> str:
    """stdout up to the line holding ``marker`` (log lines go there too)."""
    assert proc.stdout is not None
    seen = ""
    while marker not in seen:
        line = proc.stdout.readline()
        assert line, f"worker exited before {marker!r}: {seen[-2000:]}"
        seen += line
    return seen


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def test_the_dashboards_p95_is_the_p95_of_every_workers_samples(
    test_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**os.environ, **test_env, "DB_WORKERS": "on", "DB_WORKERS_DIR": str(tmp_path)}
    seeds = [11, 22, 33]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER],
            env={**env, "SEED": str(seed), "ROLE": "serve" if i == 0 else "wait"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i, seed in enumerate(seeds)
    ]
    try:
        for p in procs:
            _read_until(p, "published")
        assert procs[0].stdin is not None
        procs[0].stdin.write("\n")
        procs[0].stdin.flush()
        page = _read_until(procs[0], "END-OF-PAGE")
    finally:
        for p in procs:
            p.communicate("\n\n", timeout=30)
    samples = []
    for seed in seeds:
        rng = random.Random(seed)
        samples += [rng.lognormvariate(-4.5, 0.8) for _ in range(3000)]
    assert "Merged from 3 workers" in page
    row = re.search(r"<tr><td>SELECT</td>(.*?)</tr>", page)
    assert row is not None
    count, p50, p95, p99 = (float(x) for x in re.findall(r">([\d.]+)<", row.group(1)))
    assert count == 9000
    for q, shown_ms in ((0.5, p50), (0.95, p95), (0.99, p99)):
        exact_ms = _exact(samples, q) * 1000
        # the sketch's relative error, plus the page's rounding to 0.01 ms
        assert abs(shown_ms - exact_ms) <= RELATIVE_ACCURACY * exact_ms + 0.005, (q, shown_ms)


async def test_a_single_process_gets_no_pod_and_touches_no_file(
    test_env: dict[str, str], tmp_path: Path
) -> None:
    db = Database.from_env({**test_env, "DB_WORKERS_DIR": str(tmp_path / "x")})  # auto
    app = db.health_app(telemetry=Telemetry(db, tracing=False))
    await db.start()
    try:
        assert app.state.pod is None
        assert not (tmp_path / "x").exists()
        assert "pa-db-workers-publish" not in {t.get_name() for t in asyncio.all_tasks()}
    finally:
        await db.stop()
