"""The README quickstart under real multi-worker servers: one picture per pod.

uvicorn ``--workers 3`` (spawned workers) and gunicorn + ``UvicornWorker`` (forked workers), on
a real PostgreSQL, driven by a keep-alive client while ``/health/metrics`` is scraped.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from workers_helpers import counters, drive, scrape, selects, server_env, start, wait_for_workers

from personal_assistant_db.testing import free_port


def _assert_monotonic(scrapes: list[dict[str, float]]) -> None:
    for before, after in itertools.pairwise(scrapes):
        went_down = {k: (v, after[k]) for k, v in counters(before).items() if after.get(k, v) < v}
        assert not went_down, f"counters went down between scrapes: {went_down}"
        lost = set(counters(before)) - set(after)
        assert not lost, f"series vanished: {sorted(lost)[:5]}"


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    return str(out)


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_scrapes_merge_every_worker_and_never_go_down(
    kind: str, make_database: Callable[[], str], tmp_path: Path
) -> None:
    port = free_port()
    proc = start(kind, port, server_env(make_database(), tmp_path))
    try:
        wait_for_workers(port, 3)
        tally: list[int] = []
        load = threading.Thread(target=lambda: tally.extend(asyncio.run(drive(port, 6))))
        load.start()
        scrapes = []
        while load.is_alive() or len(scrapes) < 50:
            scrapes.append(scrape(port))
            time.sleep(0.05)
        load.join()
        time.sleep(2.5)  # > DB_WORKERS_INTERVAL: every worker has published its last query
        scrapes += [scrape(port) for _ in range(3)]
        _assert_monotonic(scrapes)
        assert len(scrapes) >= 50
        assert all(s.get("pa_db_workers") == 3 for s in scrapes[-3:])
        ok, other, lost = tally
        assert ok > 100 and other == 0 and lost == 0
        # Health probes tag their own queries, so the SELECT count is exactly the /now requests
        # (each runs one statement), on whichever worker the scrape lands.
        assert [selects(s) for s in scrapes[-3:]] == [ok] * 3
        capacity = [v for k, v in scrapes[-1].items() if k.startswith("db_client_connection_max")]
        assert capacity == [3 * 20]  # pool capacity: summed over workers (10 + 10 overflow each)
        overview = httpx.get(f"http://127.0.0.1:{port}/health/", timeout=5).json()
        assert overview["workers"] == {"merged": 3}  # the public view: the count only
        used = [k for k in scrapes[-1] if k.startswith("db_client_connection_count")]
        assert len({re.search(r'worker="(\d+)"', k).group(1) for k in used}) == 3  # type: ignore[union-attr]
    finally:
        _stop(proc)


def test_a_killed_leader_keeps_counters_and_alerts_fire_once(
    make_database: Callable[[], str], tmp_path: Path
) -> None:
    port = free_port()
    # A P95 budget every query exceeds: query_p95_over_budget fires after 3 evaluations.
    env = server_env(make_database(), tmp_path, DB_QUERY_P95_BUDGET_MS="0.001")
    proc = start("uvicorn", port, env)
    try:
        first = wait_for_workers(port, 3)
        pids = {m.group(1) for k in first if (m := re.search(r'worker="(\d+)"', k))}
        stop = asyncio.Event()
        tally: list[int] = []
        load = threading.Thread(
            target=lambda: tally.extend(asyncio.run(drive(port, 30, stop=stop)))
        )
        load.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if httpx.get(f"http://127.0.0.1:{port}/health/", timeout=5).json().get("alerts"):
                break
            time.sleep(0.3)
        (lock,) = tmp_path.glob("*/leader.lock")
        leader = int(lock.read_text())
        scrapes = [scrape(port) for _ in range(5)]
        os.kill(leader, signal.SIGKILL)
        # uvicorn notices the dead worker on its next check and spawns one, which imports the
        # app and starts: seconds on a quiet machine, up to a minute on a loaded one.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            scrapes.append(scrape(port))
            now = {m.group(1) for k in scrapes[-1] if (m := re.search(r'worker="(\d+)"', k))}
            if len(now) == 3 and now - pids and lock.read_text().strip() != str(leader):
                break
            time.sleep(0.2)
        assert str(leader) not in now and len(now - pids) == 1, (pids, now)
        time.sleep(3)  # several evaluations by the new lease holder
        scrapes.append(scrape(port))
        stop.set()
        load.join()
        _assert_monotonic(scrapes)
        page = httpx.get(f"http://127.0.0.1:{port}/health/dashboard", timeout=5).text
        replacement = (now - pids).pop()
        assert f'<td class="n">{replacement}</td>' in page and "Merged from 3 workers" in page
        assert "query_p95_over_budget" in page  # the new holder shows the alert as still firing
    finally:
        out = _stop(proc)
    firing = [line for line in out.splitlines() if "db.alert " in line and "state=firing" in line]
    assert len(firing) == 1, firing
