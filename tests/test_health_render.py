"""Rendering is pure: the public view never carries ``details``, whatever they hold."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from personal_assistant_db.health.checks import CheckResult, Status
from personal_assistant_db.health.render import STATUS_CODES, render_json, render_text
from personal_assistant_db.health.runner import HealthReport

SECRET = "s3cr3t-canary"
STATUSES: list[Status] = ["pass", "warn", "fail"]
statuses = st.sampled_from(STATUSES)


@st.composite
def reports(draw: st.DrawFn) -> HealthReport:
    results = []
    for i in range(draw(st.integers(1, 5))):
        noise = draw(st.text(max_size=20))
        results.append(
            CheckResult(
                f"c{i}:m",
                draw(statuses),
                draw(st.floats(0, 1)),
                observed_value=draw(st.none() | st.integers(0, 100)),
                observed_unit="ms",
                error_id=draw(st.none() | st.just("abc123def456")),
                details={"reason": SECRET + noise, "error_class": "Secret" + SECRET},
            )
        )
    worst = max((r.status for r in results), key=STATUSES.index)
    return HealthReport(status=worst, results=tuple(results))


@given(reports())
def test_public_views_never_show_details(report: HealthReport) -> None:
    public = render_json(report, description="d")
    assert SECRET.encode() not in public
    assert SECRET.encode() not in render_text(report, name="readyz")
    body = json.loads(public)
    assert body["status"] == report.status
    assert set(body["checks"]) == {r.name for r in report.results}
    for r in report.results:
        entry = body["checks"][r.name][0]
        assert entry["status"] == r.status
        assert ("errorId" in entry) is (r.error_id is not None)
    detailed = json.loads(render_json(report, description="d", detailed=True))
    assert all(SECRET in e[0]["details"]["reason"] for e in detailed["checks"].values())


@given(reports())
def test_text_has_one_line_per_check_and_a_verdict(report: HealthReport) -> None:
    lines = render_text(report, name="readyz").decode().splitlines()
    assert len(lines) == len(report.results) + 1
    for line, r in zip(lines, report.results, strict=False):
        assert line.startswith("[-]" if r.status == "fail" else "[+]")
        assert r.name in line
    assert lines[-1] == f"readyz check {'failed' if report.status == 'fail' else 'passed'}"
    assert STATUS_CODES[report.status] == (503 if report.status == "fail" else 200)
