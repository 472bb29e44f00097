"""The fault suite: a real uvicorn host under keep-alive load while PostgreSQL misbehaves.

    python -m bench.faults            # every scenario, full length (about 3 minutes)
    python -m bench.faults --quick    # short forms (tests/test_faults.py runs these)
    python -m bench.faults --only pool_exhaustion,frozen

A throwaway PostgreSQL (``ThrowawayServer``), the host app ``bench/fault_host.py`` under uvicorn on
127.0.0.1 in its own process, and the lean keep-alive client of ``bench/fault_load.py`` (wrk
reports no per-request timeline; we need one for error windows and recovery). ``/health/ready``
is polled at 10 Hz throughout. After each scenario the pool (``/stats``) is compared with
``pg_stat_activity``. Prints one table; ``--json`` writes every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/faults.py` as well as `python -m bench.faults`
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.fault_host import TABLE_SQL  # noqa: E402
from bench.fault_load import Load, Sample, fetch, poll  # noqa: E402
from bench.fault_report import Result, count_log_lines, render, summarize  # noqa: E402
from personal_assistant_db.testing import ThrowawayServer, free_port  # noqa: E402

HOST = "127.0.0.1"
APP = "pa-faults"
LIMIT = 180.0  # seconds per scenario


class Host:
    """The fault host under uvicorn in its own process; output to a log file."""

    def __init__(self, url: str, **env: str) -> None:
        self.port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="pa-faults-", suffix=".log")[1])
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "DB_ENV": "production",
            "DB_APPLICATION_NAME": APP,
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.launched = 0.0

    def start(self) -> None:
        cmd = [sys.executable, "-m", "uvicorn", "--factory", "bench.fault_host:create_app"]
        cmd += ["--host", HOST, "--port", str(self.port), "--no-access-log"]
        cmd += ["--log-level", "warning"]
        with self.log.open("wb") as out:
            self.launched = time.monotonic()
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=out)

    async def wait(self, path: str = "/health/live", status: int = 200, limit: float = 30) -> float:
        """Seconds since launch until ``path`` answers ``status`` (polled every 10 ms)."""
        while time.monotonic() - self.launched < limit:
            try:
                code, _ = await fetch(HOST, self.port, path)
                if code == status:
                    return time.monotonic() - self.launched
            except OSError:
                pass
            await asyncio.sleep(0.01)
        raise RuntimeError(f"{path} did not answer {status} within {limit}s; log: {self.log}")

    async def stats(self) -> dict[str, Any]:
        _, body = await fetch(HOST, self.port, "/stats")
        data: dict[str, Any] = json.loads(body)
        return data

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def server_sessions(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, coalesce(state, '') FROM pg_stat_activity WHERE application_name = %s",
            (APP,),
        ).fetchall()
    return {
        "pids": [int(r[0]) for r in rows],
        "count": len(rows),
        "idle_in_tx": sum(1 for r in rows if str(r[1]).startswith("idle in transaction")),
    }


async def settle(host: Host, url: str, limit: float = 10.0) -> dict[str, Any]:
    """Pool vs server once both are quiet (backends exit a moment after their socket closed)."""
    deadline = time.monotonic() + limit
    while True:
        await fetch(HOST, host.port, "/health/ready")  # gives back a reserved probe session
        pool = (await host.stats())["pool"]
        server = server_sessions(url)
        done = pool["used"] == 0 and pool["open"] == server["count"]
        if done or time.monotonic() > deadline:
            return {
                "used": pool["used"],
                "idle": pool["idle"],
                "open": pool["open"],
                "capacity": pool["capacity"],
                "server": server["count"],
                "idle_in_tx": server["idle_in_tx"],
                "invalidated": pool["invalidated"],
                "reconnects": pool.get("reconnects", 0),
                "timeouts": pool["timeouts"],
            }
        await asyncio.sleep(0.1)


@contextmanager
def serving(server: ThrowawayServer, **env: str) -> Iterator[Host]:
    host = Host(server.url, **env)
    host.start()
    try:
        yield host
    finally:
        host.stop()


def read_path(worker: int, n: int) -> str:
    return f"/read?id={(worker * 7919 + n) % 1000 + 1}"


async def under_load(
    host: Host,
    seconds: float,
    fault: Callable[[], Awaitable[float | None]] | None = None,
    *,
    clients: int = 64,
    path_for: Callable[[int, int], str] = read_path,
    fault_at: float = 2.0,
) -> tuple[list[Sample], list[Sample], float | None]:
    """Load for ``seconds``; ``fault()`` at ``fault_at`` returns when the server is back."""
    load = Load(HOST, host.port, clients, path_for)
    stopping = False
    poller = asyncio.create_task(poll(HOST, host.port, "/health/ready", 10, lambda: stopping))
    load.start()
    back_at = None
    began = time.monotonic()
    try:
        if fault is not None:
            await asyncio.sleep(fault_at)
            back_at = await fault()
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - began)))
    finally:
        await load.stop()
        stopping = True
    return load.samples, await poller, back_at


# -- scenarios ---------------------------------------------------------------------------------
async def baseline(server: ThrowawayServer, quick: bool) -> Result:
    r = Result("no fault, 64 clients", "ready 200 on 100 % of polls")
    with serving(server) as host:
        await host.wait()
        reads, polls, _ = await under_load(host, 4 if quick else 10)
        summarize(r, reads, polls)
        r.extra["rps"] = round(len(reads) / (4 if quick else 10))
        r.after = await settle(host, server.url)
    count_log_lines(r, host.lines())
    return r


async def restart(server: ThrowawayServer, quick: bool, mode: str, via: str = "fetch") -> Result:
    """``via="fetch"``: reads on the fast path (retried); ``"connect"``: through db.connect()."""
    label = "db.fetch_one" if via == "fetch" else "db.connect(), no retry"
    r = Result(
        f"pg_ctl restart -m {mode}, 64 clients, {label}", "0 failed reads; >= 99.95 % of requests"
    )

    def path_for(worker: int, n: int) -> str:
        return read_path(worker, n) + ("&path=connect" if via == "connect" else "")

    async def fault() -> float:
        await asyncio.to_thread(server.stop, mode)
        await asyncio.to_thread(server.start)
        return time.monotonic()

    with serving(server) as host:
        await host.wait()
        reads, polls, back = await under_load(host, 6 if quick else 12, fault, path_for=path_for)
        summarize(r, reads, polls, back_at=back)
        r.extra["read_retries"] = (await host.stats())["read_retries"]
        r.after = await settle(host, server.url)
    count_log_lines(r, host.lines())
    return r


async def pool_exhaustion(server: ThrowawayServer, quick: bool) -> Result:
    timeout = 1.0
    r = Result(
        "pool exhaustion (4 slots, 8 holders, 32 readers)",
        f"503 + Retry-After within pool timeout ({timeout:g} s) + 50 ms, keep-alive, <= 1 log/s",
    )
    env = {"DB_POOL_SIZE": "4", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": f"{timeout:g}"}

    def path_for(worker: int, n: int) -> str:
        return "/hold?ms=3000" if worker < 8 else read_path(worker, n)

    with serving(server, **env) as host:
        await host.wait()
        reads, polls, _ = await under_load(host, 5 if quick else 10, clients=40, path_for=path_for)
        reads = [s for s in reads if s.path.startswith("/read")]
        summarize(r, reads, polls)
        rejected = [s for s in reads if s.status == 503]
        r.extra["rejected"] = len(rejected)
        r.extra["rejected_max_s"] = round(max((s.seconds for s in rejected), default=0.0), 3)
        r.extra["rejected_over_bound"] = sum(1 for s in rejected if s.seconds > timeout + 0.05)
        r.after = await settle(host, server.url)
    count_log_lines(r, host.lines())
    return r


async def cancellations(server: ThrowawayServer, quick: bool) -> Result:
    total = 200 if quick else 1000
    r = Result(f"{total} cancelled queries", "nothing leaked, none idle in transaction")
    with serving(server) as host:
        await host.wait()
        done: list[Sample] = []
        load = Load(HOST, host.port, 16, lambda w, n: "/cancel")
        load.start()
        while len(load.samples) < total:  # noqa: ASYNC110 - polling a counter, not an event
            await asyncio.sleep(0.05)
        await load.stop()
        done = load.samples[:total]
        summarize(r, [], [])
        r.requests = len(load.samples)
        r.by_kind = dict(Counter(str(s.status) for s in load.samples))
        r.after = await settle(host, server.url)
    count_log_lines(r, host.lines())
    r.extra["answered_504"] = sum(1 for s in done if s.status == 504)
    return r


async def frozen(server: ThrowawayServer, quick: bool) -> Result:
    freeze = 5.0 if quick else 40.0
    env = {"DB_STATEMENT_TIMEOUT_MS": "1000"} if quick else {}
    command = 2.0 if quick else 31.0
    r = Result(
        f"backends SIGSTOPped {freeze:g} s",
        f"no request longer than command timeout ({command:g} s) + 1 s",
    )

    async def fault() -> float:
        pids = server_sessions(server.url)["pids"]
        try:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):  # it may have just exited
                    os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(freeze)
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        r.extra["frozen_backends"] = len(pids)
        return time.monotonic()

    with serving(server, **env) as host:
        await host.wait()
        reads, polls, back = await under_load(host, freeze + 4, fault, clients=16)
        summarize(r, reads, polls, back_at=back)
        r.extra["over_bound"] = sum(1 for s in reads if s.seconds > command + 1)
        r.after = await settle(host, server.url)
    count_log_lines(r, host.lines())
    return r


async def degraded_start(server: ThrowawayServer, quick: bool) -> Result:
    r = Result("degraded start, database down", "live 200 <= 1 s after launch; ready <= 1 s after")
    with serving(server, DB_STARTUP_MODE="fail_fast") as host:  # the same launch, database up
        r.extra["live_after_launch_db_up_s"] = round(await host.wait("/health/live"), 3)
    server.stop()
    env = {"DB_STARTUP_MODE": "degraded", "DB_HEALTH_FAIL_TTL": "0.5"}
    with serving(server, **env) as host:
        live = await host.wait("/health/live")
        code, _ = await fetch(HOST, host.port, "/health/ready")
        await asyncio.sleep(0.5 if quick else 3.0)  # the database stays down a while
        await asyncio.to_thread(server.start)
        back = time.monotonic()
        while (await fetch(HOST, host.port, "/health/ready"))[0] != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        r.recovery_s = time.monotonic() - back
        r.extra.update(
            live_after_launch_s=round(live, 3),
            ready_while_down=code,
            ready_after_db_back_s=round(r.recovery_s, 3),
        )
        r.after = await settle(host, server.url)
    count_log_lines(r, host.lines())
    return r


SCENARIOS: dict[str, Callable[[ThrowawayServer, bool], Awaitable[Result]]] = {
    "baseline": baseline,
    "restart_fast": lambda s, q: restart(s, q, "fast"),
    "restart_immediate": lambda s, q: restart(s, q, "immediate"),
    "restart_fast_connect": lambda s, q: restart(s, q, "fast", "connect"),
    "pool_exhaustion": pool_exhaustion,
    "cancellations": cancellations,
    "frozen": frozen,
    "degraded_start": degraded_start,
}


@contextmanager
def fault_server() -> Iterator[ThrowawayServer]:
    server = ThrowawayServer()
    server.start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute(TABLE_SQL)
        yield server
    finally:
        server.cleanup()


async def run(names: list[str], quick: bool) -> list[Result]:
    results = []
    with fault_server() as server:
        for name in names:
            if not server.running:
                server.start()
            # A scenario that overruns is a finding, not a reason to hang the suite.
            results.append(await asyncio.wait_for(SCENARIOS[name](server, quick), LIMIT))
    return results


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short scenarios (CI)")
    p.add_argument("--only", help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    p.add_argument("--json", type=Path, help="write every figure to this file")
    args = p.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every stack
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        p.error(f"--only: unknown scenario(s) {sorted(unknown)}; choose from {list(SCENARIOS)}")
    results = asyncio.run(run(names, args.quick))
    print(render(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
