"""The dashboard page built from history: charts, their tables, its weight, its consistency.

Rendering is pure (no database), so these tests feed it a synthetic 15 minutes
(tests/dashboard_support.py); tests/test_health_browser.py loads the real page in Chromium.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

from dashboard_support import CHECKS, NOW, OPERATIONS, history
from hypothesis import given
from hypothesis import strategies as st

from personal_assistant_db.health.charts import nice_ceiling
from personal_assistant_db.health.dashboard import render_dashboard, verdict
from personal_assistant_db.health.history import History
from personal_assistant_db.health.result import CheckResult, Status
from personal_assistant_db.health.runner import HealthReport
from personal_assistant_db.telemetry import OperationLatency

STATUSES: list[Status] = ["pass", "warn", "fail"]
LIMIT = 100_000  # bytes: the page weight docs/health.md states


def report(status: Status = "pass") -> HealthReport:
    results = tuple(
        CheckResult(name, status if name == "pool:utilization" else "pass", 0.001,
                    reason=None if status == "pass" else "20 of 20 connections in use")
        for name in CHECKS
    )  # fmt: skip
    return HealthReport(status, results)


LATENCY = {op: OperationLatency(1000, 0.002, 0.01, 0.03) for op in OPERATIONS}
ALERTS = [{"rule": "pool_saturated", "severity": "warning", "since": "x", "description": "d"}]


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(body: bytes) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(body.decode())
    return parser.tags


def test_fifteen_minutes_of_history_weigh_under_100_kb() -> None:
    """The heaviest realistic page: 16 operations (6 charted), 6 checks, a spike, 3 alerts."""
    status, body = render_dashboard(
        report("fail"), alerts=ALERTS, latency=LATENCY, history=history().snapshots(), now=NOW
    )
    print(f"dashboard page weight at 15 min of history: {len(body)} bytes")
    assert status == "fail"
    assert len(body) < LIMIT
    tags = parse(body)
    assert not [t for t, _ in tags if t in {"script", "img", "link", "iframe", "object"}]
    charts = [a for t, a in tags if t == "svg"]
    assert [a["id"] for a in charts] == [*(f"lat{i}" for i in range(6)), "pool", "status"]
    for chart in charts:  # every chart has its text alternative
        assert chart["role"] == "img"
        assert chart["aria-labelledby"] == f"{chart['id']}-t {chart['id']}-d"
    text = body.decode()
    assert text.count('class="line p95"') == 6 and text.count('class="line p99"') == 6
    assert text.count('<g class="limit">') == 7  # six budget lines and the pool's capacity
    assert text.count('<g class="m-firing">') == 2 * 8  # two firing transitions on 8 charts
    assert text.count('<g class="m-resolved">') == 8
    # the numbers stay available as tables: one row per operation, then per time slice
    assert "Latency per operation over the window" in text
    assert all(f"<td>{op}</td>" in text for op in OPERATIONS)
    assert "<td>pool_saturated</td><td>firing</td>" in text


def test_a_long_window_still_draws_bounded_lines() -> None:
    """Four hours at 5 s: lines keep one point per unit of width, tables 15 slices."""
    long = history(n=2880, window=4 * 3600.0)
    _, body = render_dashboard(
        report(), alerts=[], latency=LATENCY, history=long.snapshots(), history_window=4 * 3600.0,
        now=NOW,
    )  # fmt: skip
    paths = re.findall(r'class="line p95" d="([^"]*)"', body.decode())
    assert paths and all(len(p.split(" ")) <= 2 * 360 for p in paths)
    assert len(body) < 2 * LIMIT


def test_no_history_yet_says_so() -> None:
    _, body = render_dashboard(report(), alerts=[], latency=None, now=NOW)
    assert b"No history yet: a snapshot is taken every 5 s" in body
    assert b"<svg" not in body


@given(st.floats(1e-6, 1e9, allow_nan=False))
def test_nice_ceiling_is_a_round_number_at_most_twice_the_value(value: float) -> None:
    top = nice_ceiling(value)
    assert value * (1 - 1e-9) <= top <= 2 * value * (1 + 1e-9)
    mantissa = top / 10 ** len(str(int(top))) * 10 if top >= 1 else None
    assert mantissa is None or round(mantissa, 6) in {1, 2, 2.5, 5, 10}


reasons = st.none() | st.text(min_size=1, max_size=30)
results = st.builds(
    CheckResult,
    name=st.sampled_from(["a:x", "b:y", "c:z"]),
    status=st.sampled_from(STATUSES),
    duration=st.just(0.001),
    reason=reasons,
    error_id=st.none() | st.just("abc123def456"),
)
alerts = st.lists(
    st.fixed_dictionaries(
        {
            "rule": st.sampled_from(["database_down", "pool_saturated"]),
            "severity": st.sampled_from(["critical", "warning"]),
            "since": st.just("2026-11-30T00:00:00Z"),
            "description": st.text(max_size=20),
        }
    ),
    max_size=2,
)


@given(st.lists(results, min_size=1, max_size=3, unique_by=lambda r: r.name), alerts)
def test_badge_checks_and_alerts_never_contradict(
    checks: list[CheckResult], firing: list[dict[str, str]]
) -> None:
    worst_check = max((r.status for r in checks), key=STATUSES.index)
    rep = HealthReport(worst_check, tuple(checks))
    status, lines = verdict(rep, firing)
    _, body = render_dashboard(rep, alerts=firing, latency=None, now=NOW)
    html = body.decode()
    # the badge is the worst of the checks and the alerts
    from_alerts = ["fail" if a["severity"] == "critical" else "warn" for a in firing]
    assert status == max([worst_check, *from_alerts], key=STATUSES.index)
    assert f'<span id="status" class="badge b-{status}">{status}</span>' in html
    # every warn/fail check has a line naming it and its reason (or saying it gave none)
    for r in checks:
        mine = [line for line in lines if line.startswith(f"{r.name} is ")]
        if r.status == "pass":
            assert mine == []
        else:
            assert len(mine) == 1 and f"is {r.status}: " in mine[0]
            assert (r.reason or "the check gave no reason") in mine[0]
    # every firing alert has its line; a non-pass page never says "all is well"
    assert sum(line.startswith("Alert ") for line in lines) == len(firing)
    assert ("No active alerts." in html) is (not firing)
    assert (lines == ["Every check passes and no alert is firing."]) is (status == "pass")


@given(st.text(min_size=1, max_size=30), st.text(min_size=1, max_size=30))
def test_names_in_charts_and_tables_arrive_as_text(operation: str, check: str) -> None:
    """Operation names come from SQL and check names from the host: the charts escape both."""
    h = History(interval=5, window=900)
    for i in range(3):
        h.record(
            results=[CheckResult(check, "warn", 0.001, reason=f"<i>{check}</i>")],
            pool=None,
            latency={operation: OperationLatency(10, 0.001, 0.002, 0.003)},
            at=NOW - 10 + 5 * i,
        )
    _, body = render_dashboard(report(), alerts=[], latency=None, history=h.snapshots(), now=NOW)
    tags = parse(body)
    assert not [t for t, _ in tags if t in {"script", "i", "img", "iframe"}]
    assert [a["id"] for t, a in tags if t == "svg"] == ["lat0", "status"]
    text = body.decode()
    assert f"<b>{escape(operation)}</b>" in text  # the chart's caption
    assert f">{escape(check)}</text>" in text  # the status bar's label
