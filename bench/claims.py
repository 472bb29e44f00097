"""The seed's seven claims, each measured on this machine: ``python -m bench.claims``.

- pool efficiency > 80 %: ``PoolStats.efficiency`` after 16 tasks x ``--seconds`` of PK lookups
  (production profile);
- query P95 < 100 ms: the package's own latency window (``Telemetry``, tracing off) over that
  load, with the client-observed P95 beside it;
- uptime > 99.9 %: availability of reads in ``bench/faults.py``'s restart scenarios (fast and
  immediate), the lower of the two;
- 100 % rollback capability: the stairway over every shipped migration (apply, roll back: the
  schema equals the one before; re-apply: equals again);
- container start < 30 s and image < 500 MB: ``scripts/container-smoke`` (demo start -> Docker
  healthy; image size), only where a Docker engine runs;
- live health dashboard: ``/health/dashboard`` of the fault host under load in headless Chromium
  (Playwright with the system Chromium, else ``--dump-dom`` twice); the values read from the DOM
  must be there and change between the two readings.

Prints the table (claim, measured, how, pass/fail). ``--markdown`` prints it as Markdown for
docs/performance.md. A claim that cannot be measured here says why; it never shows a number.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench._common import bench_database, pct, table  # noqa: E402
from bench.fault_load import Load, fetch  # noqa: E402
from bench.faults import HOST, fault_server, read_path, run, serving  # noqa: E402
from personal_assistant_db import Database, Telemetry  # noqa: E402
from personal_assistant_db.testing import fresh_database  # noqa: E402


@dataclass
class Claim:
    claim: str
    measured: str
    how: str
    ok: bool | None  # None: not measured here

    @property
    def verdict(self) -> str:
        return "not measured" if self.ok is None else "pass" if self.ok else "FAIL"


async def pool_and_p95(seconds: float) -> list[Claim]:
    with bench_database(rows=10_000) as url:
        db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "production"})
        telemetry = Telemetry(db, tracing=False, environ={})
        await db.start()
        query = text("SELECT payload FROM bench_items WHERE id = :id")
        latencies: list[float] = []
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop_at:
                began = time.perf_counter()
                async with db.connect() as conn:
                    await conn.execute(query, {"id": random.randint(1, 10_000)})
                latencies.append(time.perf_counter() - began)

        try:
            await asyncio.gather(*(worker() for _ in range(16)))
            stats = db.pool_stats()
            p95 = telemetry.overall_p95()
        finally:
            await db.stop()
            telemetry.close()
    client_p95 = pct(latencies, 0.95) * 1000
    p95_ms = (p95 or 0.0) * 1000
    load = f"16 tasks x {seconds:g} s of PK lookups via db.connect(), production profile"
    return [
        Claim(
            "pool efficiency > 80 %",
            f"{stats.efficiency:.2%} ({stats.reused_checkouts}/{stats.checkouts} checkouts reused)",
            f"PoolStats.efficiency; {load}",
            stats.efficiency > 0.80,
        ),
        Claim(
            "query P95 < 100 ms",
            f"{p95_ms:.2f} ms (client-observed incl. checkout: {client_p95:.2f} ms; "
            f"{len(latencies)} queries)",
            f"Telemetry's latency window (db.client.operation.duration); {load}",
            p95 is not None and p95_ms < 100,
        ),
    ]


async def uptime() -> Claim:
    results = await run(["restart_fast", "restart_immediate"], quick=False)
    low = min(r.availability for r in results)
    parts = ", ".join(
        f"{r.scenario.split(',')[0]}: {r.availability:.3f} % of {r.requests} reads" for r in results
    )
    return Claim(
        "uptime > 99.9 %",
        f"{low:.3f} % ({parts})",
        "bench/faults.py restart scenarios: 64 keep-alive clients reading through db.fetch_one "
        "(retried within DB_READ_RETRY_BUDGET_MS), 12 s, restart at 2 s; "
        "availability = 2xx reads / all reads",
        low > 99.9,
    )


def rollback_capability() -> Claim:
    from bench._common import server_url
    from personal_assistant_db.migrate import apply, rollback
    from personal_assistant_db.migrate.snapshot import snapshot
    from personal_assistant_db.migrate.source import shipped_ids
    from personal_assistant_db.migrate.target import target_of

    ids = shipped_ids()
    exact = 0
    with fresh_database(server_url(), prefix="pa_claims") as url:
        target = target_of(url)

        def snap() -> object:
            with target.connect() as conn:
                return snapshot(conn)

        before = snap()
        for mid in ids:
            apply(target, to=mid)
            after = snap()
            rollback(target, steps=1)
            back = snap()
            apply(target, to=mid)
            again = snap()
            exact += back == before and again == after
            before = after
    return Claim(
        "100 % rollback capability",
        f"{exact}/{len(ids)} migrations ({exact / len(ids):.0%}) roll back to the exact "
        "prior schema",
        "stairway over every shipped migration: apply, catalog snapshot, roll back one, snapshot "
        "equals the one before, re-apply, snapshot equals again",
        exact == len(ids),
    )


def docker_engine() -> bool:
    if shutil.which("docker") is None:
        return False
    done = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=20)
    return done.returncode == 0


def container(output: Path | None) -> list[Claim]:
    why = ""
    text_out = ""
    if output is not None:
        text_out = output.read_text()
        source = f"scripts/container-smoke output ({output})"
    elif docker_engine():
        done = subprocess.run(
            ["bash", "scripts/container-smoke"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        text_out = done.stdout
        source = "scripts/container-smoke, run now"
        if done.returncode != 0:
            why = f"scripts/container-smoke failed (exit {done.returncode})"
    else:
        why = (
            "no Docker engine here (docker info fails); run scripts/container-smoke "
            "(it can start one), or pass --smoke-output"
        )
    healthy = re.search(r"demo start -> Docker healthy\s+([\d.]+) s", text_out)
    size = re.search(r"image personal-assistant-db:smoke\s+(\d+) MB", text_out)
    if why or healthy is None or size is None:
        reason = why or "the smoke output has no summary"
        return [
            Claim("container start < 30 s", f"not measured here: {reason}", "-", None),
            Claim("image < 500 MB", f"not measured here: {reason}", "-", None),
        ]
    start_s, mb = float(healthy.group(1)), int(size.group(1))
    return [
        Claim(
            "container start < 30 s",
            f"{start_s:.2f} s",
            f"{source}: demo container start -> Docker HEALTHCHECK healthy",
            start_s < 30,
        ),
        Claim("image < 500 MB", f"{mb} MB", f"{source}: docker image size", mb < 500),
    ]


_CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str) -> str:
    """The page as Chromium rendered it (``--dump-dom``)."""
    chromium = chromium_path()
    assert chromium is not None
    done = subprocess.run(
        [chromium, *_CHROMIUM_FLAGS, "--dump-dom", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def read_live(url: str) -> tuple[str, str, str]:
    """Two readings of the page: with Playwright (the system Chromium, never ``playwright
    install``) the same tab is read, then read again after the page's own refresh reloaded it;
    without Playwright, two ``--dump-dom`` loads 2.5 s apart."""
    chromium = chromium_path()
    assert chromium is not None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        first = dump_dom(url)
        time.sleep(2.5)
        return first, dump_dom(url), "two chromium --dump-dom loads 2.5 s apart"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=_CHROMIUM_FLAGS[1:])
        try:
            page = browser.new_page()
            page.goto(url)
            first = page.content()
            with page.expect_event("load", timeout=20_000):  # its own <meta refresh>
                pass
            second = page.content()
        finally:
            browser.close()
    return (
        first,
        second,
        "Playwright on the system Chromium: one tab, read before and after its own refresh",
    )


def dashboard_values(dom: str) -> dict[str, str]:
    """check name -> 'status | counts' from the rendered table; plus the page's overall status."""
    values = {"title": (re.search(r"<title>(.*?)</title>", dom) or [None, ""])[1]}
    for row in re.findall(r"<tr><td>(.*?)</tr>", dom, re.S):
        row = row.replace("<br>", " ")
        cells = [re.sub(r"<.*?>", "", c) for c in re.split(r"</td><td[^>]*>", row)]
        if len(cells) >= 3:  # check, status, observed (with counts), reason
            values[cells[0]] = f"{cells[1]} | {' '.join(cells[2].split())}"
    return values


async def live_dashboard() -> Claim:
    if chromium_path() is None:
        return Claim("live health dashboard", "not measured here: no chromium", "-", None)
    with fault_server() as server, serving(server) as host:
        await host.wait()
        load = Load(HOST, host.port, 8, read_path)
        load.start()
        try:
            url = f"http://{HOST}:{host.port}/health/dashboard"
            first_dom, second_dom, how = await asyncio.to_thread(read_live, url)
        finally:
            await load.stop()
        await fetch(HOST, host.port, "/health/ready")
    first, second = dashboard_values(first_dom), dashboard_values(second_dom)
    checks = [k for k in first if ":" in k]
    changed = [k for k in checks if first.get(k) != second.get(k)]
    expected = {"process:eventLoopLag", "database:responseTime", "pool:utilization"}
    ok = expected <= set(checks) and bool(changed) and second["title"] == "health: pass"
    pool = second.get("pool:utilization", "?")
    return Claim(
        "live health dashboard",
        f"{len(checks)} checks rendered, '{second['title']}'; {len(changed)} changed between "
        f"the two readings; pool row: {pool}",
        f"/health/dashboard of the fault host under 8-client load; {how}",
        ok,
    )


def render(claims: list[Claim], markdown: bool) -> str:
    rows = [[c.claim, c.measured, c.how, c.verdict] for c in claims]
    header = ["claim", "measured here", "how", "verdict"]
    if not markdown:
        return table(header, rows)
    lines = ["| " + " | ".join(header) + " |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in r) + " |" for r in rows]
    return "\n".join(lines)


async def measure(args: argparse.Namespace) -> list[Claim]:
    claims = await pool_and_p95(args.seconds)
    claims.append(await uptime())
    claims.append(await asyncio.to_thread(rollback_capability))
    claims += await asyncio.to_thread(container, args.smoke_output)
    claims.append(await live_dashboard())
    return claims


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0, help="load length for pool and P95")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument(
        "--smoke-output",
        type=Path,
        help="use this saved scripts/container-smoke output instead of running it",
    )
    args = p.parse_args(argv)
    if args.smoke_output is not None and not args.smoke_output.is_file():
        p.error(f"--smoke-output: no such file {args.smoke_output}")
    began = time.monotonic()
    claims = asyncio.run(measure(args))
    print(render(claims, args.markdown))
    print(f"\n(measured in {time.monotonic() - began:.0f} s on this machine)")


if __name__ == "__main__":
    main()
