"""The /health/dashboard page: one self-refreshing HTML view of the public health data.

It shows what the public JSON shows (statuses, timings, observed values, counts, correlation ids),
plus the active alerts and, with telemetry, P50/P95/P99 per operation. Never details: a browser
sends no bearer token, so the page is always the public view. Every value is HTML-escaped, the page
loads nothing (no script, no external style) and is served with a CSP that forbids both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from ..telemetry import OperationLatency
from .runner import HealthReport

__all__ = ["CSP", "render_dashboard"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_COLOURS = {"pass": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1f2328;max-width:64em}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}td,th{padding:.3em .6em;border-bottom:1px solid #d0d7de;
text-align:left}th{background:#f6f8fa}.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{color:#fff;border-radius:1em;padding:.1em .7em;font-weight:600}
.muted{color:#656d76}
"""


def _badge(status: str) -> str:
    colour = _COLOURS.get(status, "#656d76")
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _checks(report: HealthReport) -> str:
    rows = []
    for r in report.results:
        observed = "" if r.observed_value is None else f"{r.observed_value} {r.observed_unit or ''}"
        counts = ", ".join(f"{k}={v}" for k, v in r.counts.items())
        rows.append(
            f"<tr><td>{escape(r.name)}</td><td>{_badge(r.status)}</td>"
            f'<td class="n">{_ms(r.duration)}</td><td>{escape(observed.strip())}</td>'
            f"<td>{escape(counts)}</td><td>{escape(r.reason or '')}</td>"
            f"<td>{escape(r.error_id or '')}</td></tr>"
        )
    return (
        '<table><tr><th>check</th><th>status</th><th class="n">ms</th><th>observed</th>'
        "<th>counts</th><th>reason</th><th>error id</th></tr>" + "".join(rows) + "</table>"
    )


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return '<p class="muted">No active alerts.</p>'
    rows = "".join(
        f"<tr><td>{escape(str(a.get('rule', '')))}</td><td>{escape(str(a.get('severity', '')))}"
        f"</td><td>{escape(str(a.get('since', '')))}</td></tr>"
        for a in alerts
    )
    return "<table><tr><th>rule</th><th>severity</th><th>since</th></tr>" + rows + "</table>"


def _latency(latency: Mapping[str, OperationLatency] | None) -> str:
    if latency is None:
        return '<p class="muted">Telemetry is not attached: no query percentiles.</p>'
    if not latency:
        return '<p class="muted">No queries in the window yet.</p>'
    rows = "".join(
        f'<tr><td>{escape(op)}</td><td class="n">{v.count}</td><td class="n">{_ms(v.p50)}</td>'
        f'<td class="n">{_ms(v.p95)}</td><td class="n">{_ms(v.p99)}</td></tr>'
        for op, v in sorted(latency.items())
    )
    return (
        '<table><tr><th>operation</th><th class="n">count</th><th class="n">P50 ms</th>'
        '<th class="n">P95 ms</th><th class="n">P99 ms</th></tr>' + rows + "</table>"
    )


def render_dashboard(
    report: HealthReport,
    *,
    alerts: Sequence[Mapping[str, Any]],
    latency: Mapping[str, OperationLatency] | None,
    refresh: int = 5,
) -> bytes:
    """The dashboard page as UTF-8 HTML; it reloads itself every ``refresh`` seconds."""
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{int(refresh)}">'
        f"<title>health: {escape(report.status)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Database health {_badge(report.status)}</h1>"
        f'<p class="muted">Public view; refreshes every {int(refresh)} s. Machine-readable: '
        '<a href="./">health+json</a>, <a href="ready?format=text">readiness</a>, '
        '<a href="metrics">metrics</a>.</p>'
        f"<h2>Checks</h2>{_checks(report)}"
        f"<h2>Active alerts</h2>{_alerts(alerts)}"
        f"<h2>Query latency (this process)</h2>{_latency(latency)}"
        "</body></html>"
    )
    return page.encode()
