"""/health/dashboard in a real browser: Debian's Chromium driven by Playwright, under load.

The demo runs with uvicorn on a real 127.0.0.1 port (pool of 4, history every second) while
``examples.demo.load`` drives traffic at it. The test loads the dashboard and checks what a person
would see: live values that change between two refreshes, charts that are drawn, no console
error, an injected inline script blocked by the CSP, no horizontal scroll on a 375 px phone, and
dark mode. It saves screenshots (``PA_DB_SCREENSHOTS=<dir>`` keeps them; docs/dashboard.png is
one of them).

Needs the ``playwright`` package (test extra) and ``/usr/bin/chromium`` (scripts/test installs
it with apt-get when it runs as root); without either the test is skipped with the reason. It
never downloads a browser (``playwright install`` is not possible here).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import first_response

from personal_assistant_db.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.slow


def _browser_or_skip() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]'")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no {CHROMIUM}: apt-get install -y chromium (scripts/test does, as root)")
    return async_playwright


@pytest.fixture
def demo(make_database: Callable[[], str]) -> Iterator[str]:
    """The demo on a real port, with a pool small enough to saturate and history every second."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        DATABASE_URL=make_database(),
        DB_ENV="test",
        DB_POOL_SIZE="4",
        DB_HEALTH_TTL="1",
        DB_HEALTH_HISTORY_INTERVAL="1",
        DB_HEALTH_HISTORY_WINDOW="30",
        DB_LATENCY_WINDOW="30",
        DB_QUERY_P95_BUDGET_MS="5",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "examples.demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        first_response(proc, f"{base}/health/live", timeout=60)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _load(base: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "examples.demo.load", "--url", base),
            *("--seconds", str(seconds), "--concurrency", "8", "--users", "3"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


READ_LIVE = """() => ({
  generated: document.querySelector('#generated').textContent,
  latency: document.querySelector('#latency') ? document.querySelector('#latency').innerText : '',
  history: document.querySelector('#history-span').textContent,
})"""

READ_CHARTS = """() => [...document.querySelectorAll('svg.chart')].map(svg => {
  const box = svg.getBoundingClientRect();
  return {
    id: svg.id,
    width: box.width,
    height: box.height,
    title: svg.querySelector('title').textContent,
    desc: svg.querySelector('desc').textContent,
    points: [...svg.querySelectorAll('path.line')].map(p => p.getAttribute('d').split(' ').length),
    segments: svg.querySelectorAll('rect[class^="s-"]').length,
  };
})"""

INJECT = """() => {
  const s = document.createElement('script');
  s.textContent = 'window.__injected = 1';
  document.head.appendChild(s);
  return window.__injected === undefined;
}"""


async def test_dashboard_in_chromium_under_load(demo: str, tmp_path: Path) -> None:
    async_playwright = _browser_or_skip()
    shots = Path(os.environ.get("PA_DB_SCREENSHOTS") or tmp_path)
    os.makedirs(shots, exist_ok=True)
    url = f"{demo}/health/dashboard"
    load = _load(demo, 40)
    try:
        await asyncio.sleep(20)  # seeding, then load: the history fills a snapshot a second
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1100, "height": 900})
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                # A failing pool answers 503 by design, and Chromium logs any 5xx document as
                # "Failed to load resource"; that line is the status code, not a page error.
                status_line = "the server responded with a status of 503"
                page.on("pageerror", lambda e: errors.append(str(e)))
                response = await page.goto(url)
                assert response is not None and response.status in (200, 503)
                csp = response.headers["content-security-policy"]
                weight = len(await response.body())
                first = await page.evaluate(READ_LIVE)
                async with page.expect_event("load", timeout=15_000):
                    pass  # the page's own <meta http-equiv="refresh" content="5">
                second = await page.evaluate(READ_LIVE)
                charts = await page.evaluate(READ_CHARTS)
                await page.screenshot(path=shots / "dashboard.png", full_page=True)
                # before the injection, nothing complained
                assert [e for e in errors if status_line not in e] == []
                errors.clear()
                blocked = await page.evaluate(INJECT)
                await page.wait_for_timeout(200)

                phone = await browser.new_page(viewport={"width": 375, "height": 800})
                await phone.goto(url)
                widths = await phone.evaluate(
                    "() => [document.documentElement.scrollWidth, window.innerWidth]"
                )
                await phone.screenshot(path=shots / "dashboard-375.png", full_page=True)
                dark = await browser.new_page(viewport={"width": 1100, "height": 900})
                await dark.emulate_media(color_scheme="dark")
                await dark.goto(url)
                background = await dark.evaluate(
                    "() => getComputedStyle(document.body).backgroundColor"
                )
                await dark.screenshot(path=shots / "dashboard-dark.png", full_page=True)
            finally:
                await browser.close()
    finally:
        load.terminate()
        load.wait(timeout=15)
    print(f"screenshots in {shots}; dashboard page weight under load: {weight} bytes")
    assert weight < 100_000
    # live values changed between two refreshes (the page reloaded itself, under load)
    assert first["generated"] != second["generated"]
    assert first["latency"] and first["latency"] != second["latency"]
    assert first["history"] != second["history"]
    # the charts are drawn: three or more, each with a text alternative and real data in it
    ids = [c["id"] for c in charts]
    assert ids[-2:] == ["pool", "status"] and ids[0] == "lat0"
    for chart in charts:
        assert chart["width"] > 200 and chart["height"] > 50
        assert chart["title"] and chart["desc"]
    lines = [n for c in charts for n in c["points"]]
    assert lines and min(lines) >= 4  # every line has several points (x y pairs)
    assert next(c for c in charts if c["id"] == "status")["segments"] >= 3
    # the CSP blocks an inline script injected into the page, and says so in the console
    assert "script-src" not in csp and blocked
    assert any("Content Security Policy" in e for e in errors), errors
    # a phone: no horizontal scroll; dark mode follows prefers-color-scheme
    assert widths[0] <= widths[1], widths
    assert background == "rgb(13, 17, 23)"
    assert (shots / "dashboard.png").stat().st_size > 10_000
