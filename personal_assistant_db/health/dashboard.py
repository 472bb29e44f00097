"""The /health/dashboard page: one self-refreshing HTML view of the public health data.

It shows what the public JSON shows (statuses, reasons, timings, observed values, counts,
correlation ids), the active alerts, with telemetry P50/P95/P99 per operation, and the monitor's
history as inline SVG charts (trends.py). Never details: a browser sends no bearer token, so the
page is always the public view. Every value is HTML-escaped, the page loads nothing (no script,
no external style or image) and is served with a CSP that forbids both.

Consistency: the headline status is the worst of the checks and the firing alerts, and the
summary under it lists the reason for every ``warn``/``fail`` check and every firing alert, so the
badge, the checks and the alerts never say different things.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from ..telemetry import OperationLatency
from ..workers.render import render_workers, workers_summary
from .charts import duration
from .history import Snapshot
from .result import Status, worst
from .runner import HealthReport
from .trends import render_trends

if TYPE_CHECKING:
    from ..workers.view import PodView

__all__ = ["CSP", "render_dashboard", "verdict"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_STYLE = """
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--panel:#f6f8fa;--line:#d0d7de;--pass:#1a7f37;
--warn:#9a6700;--fail:#cf222e;--c1:#0969da;--c2:#8250df;--on:#fff;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;
--panel:#161b22;--line:#30363d;--pass:#3fb950;--warn:#d29922;--fail:#f85149;--c1:#4493f8;
--c2:#ab7df8;--on:#0d1117}}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;padding:1em;color:var(--fg);
background:var(--bg);max-width:72em}
h1{font-size:1.35em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .4em}
h3{font-size:1em;margin:1em 0 .3em}a{color:var(--c1)}
table{border-collapse:collapse;width:100%;margin:.4em 0 1em}
td,th{padding:.3em .5em;border-bottom:1px solid var(--line);text-align:left;
overflow-wrap:break-word;vertical-align:top}
@media (max-width:40em){body{font-size:14px;padding:.6em}td,th{padding:.25em .3em}
td{overflow-wrap:anywhere}.stack,.stack tbody,.stack tr,.stack td{display:block}
.stack tr:first-child{display:none}.stack tr{border-bottom:1px solid var(--line);padding:.3em 0}
.stack td{border:0;padding:.1em 0}.stack td:first-child{display:inline;font-weight:600;
margin-right:.5em}.stack td:nth-child(2){display:inline}}
th{background:var(--panel);font-weight:600}
caption{text-align:left;color:var(--muted);padding:.2em 0}
.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{color:var(--on);border-radius:1em;padding:.05em .7em;font-weight:600;font-size:.9em;
white-space:nowrap;overflow-wrap:normal;display:inline-block}
.b-pass{background:var(--pass)}.b-warn{background:var(--warn)}.b-fail{background:var(--fail)}
.muted,small{color:var(--muted)}
.summary{list-style:none;padding:.6em .8em;margin:.6em 0;background:var(--panel);
border-left:4px solid var(--line);border-radius:4px}
.summary.s-warn{border-left-color:var(--warn)}.summary.s-fail{border-left-color:var(--fail)}
.summary.s-pass{border-left-color:var(--pass)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,26em),1fr));gap:.8em}
figure{margin:0;padding:.5em;background:var(--panel);border-radius:6px}
figcaption{font-size:.85em;color:var(--muted)}figcaption b{color:var(--fg)}
.chart{width:100%;height:auto;display:block}
.chart text{fill:var(--muted);font-size:10px;font-family:system-ui,sans-serif}
.chart .grid{stroke:var(--line);stroke-width:.5}
.chart .line{fill:none;stroke-width:1.5;stroke-linejoin:round}
.p95,.used{stroke:var(--c1)}.p99,.waiting{stroke:var(--c2);stroke-dasharray:4 2}
.limit path{stroke:var(--fail);stroke-dasharray:6 3;stroke-width:1}
.m-firing{stroke:var(--fail);fill:var(--fail)}.m-resolved{stroke:var(--pass);fill:var(--pass)}
.m-firing path,.m-resolved path{stroke-width:1}
.track{fill:var(--line)}.s-pass{fill:var(--pass)}.s-warn{fill:var(--warn)}.s-fail{fill:var(--fail)}
details{margin:.6em 0}summary{cursor:pointer;color:var(--c1)}
"""


def _badge(status: str, ident: str = "") -> str:
    id_attr = f' id="{ident}"' if ident else ""
    return f'<span{id_attr} class="badge b-{escape(status)}">{escape(status)}</span>'


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def verdict(report: HealthReport, alerts: Sequence[Mapping[str, Any]]) -> tuple[Status, list[str]]:
    """The page's status and the sentences that explain it.

    The status is the worst of the checks' and of the firing alerts' (a ``critical`` alert counts
    as ``fail``, any other as ``warn``). Every non-pass check and every firing alert gets a line,
    so a ``fail`` badge always shows what is behind it."""
    alert_status: list[Status] = [
        "fail" if a.get("severity") == "critical" else "warn" for a in alerts
    ]
    status = worst([report.status, *alert_status])
    lines = []
    for r in report.results:
        if r.status == "pass":
            continue
        why = r.reason or "the check gave no reason"
        ref = f" (error id {r.error_id}: the log has the cause)" if r.error_id else ""
        lines.append(f"{r.name} is {r.status}: {why}{ref}")
    for a in alerts:
        lines.append(
            f"Alert {a.get('rule')} ({a.get('severity')}) firing since {a.get('since')}: "
            f"{a.get('description') or 'no description'}"
        )
    if not lines:
        lines.append("Every check passes and no alert is firing.")
    elif not alerts:
        lines.append("No alert is firing: rules fire only once a condition persists.")
    return status, lines


def _checks(report: HealthReport) -> str:
    rows = []
    for r in report.results:
        observed = "" if r.observed_value is None else f"{r.observed_value} {r.observed_unit or ''}"
        counts = ", ".join(f"{k}={v}" for k, v in r.counts.items())
        why = r.reason or ("no reason given" if r.status != "pass" else "")
        if r.error_id:
            why = f"{why} (error id {r.error_id})".strip()
        rows.append(
            f"<tr><td>{escape(r.name)}{_instance(r.component_id)}</td><td>{_badge(r.status)}</td>"
            f"<td>{escape(observed.strip())}{'<br>' if observed else ''}<small>{escape(counts)} "
            f"took {_ms(r.duration)} ms</small></td><td>{escape(why)}</td></tr>"
        )
    return (
        '<table class="stack"><tr><th>check</th><th>status</th><th>observed</th><th>reason</th>'
        "</tr>" + "".join(rows) + "</table>"
    )


def _instance(component_id: str | None) -> str:
    return f" ({escape(component_id)})" if component_id else ""


def _alerts(alerts: Sequence[Mapping[str, Any]]) -> str:
    if not alerts:
        return '<p class="muted" id="alerts-none">No active alerts.</p>'
    rows = "".join(
        f"<tr><td>{escape(str(a.get('rule', '')))}</td><td>{escape(str(a.get('severity', '')))}"
        f"</td><td>{escape(str(a.get('since', '')))}</td>"
        f"<td>{escape(str(a.get('description', '')))}</td></tr>"
        for a in alerts
    )
    return (
        '<table id="alerts" class="stack"><tr><th>rule</th><th>severity</th><th>since</th>'
        "<th>what</th></tr>" + rows + "</table>"
    )


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
        '<table id="latency"><tr><th>operation</th><th class="n">count</th>'
        '<th class="n">P50 ms</th><th class="n">P95 ms</th><th class="n">P99 ms</th></tr>'
        + rows
        + "</table>"
    )


def _pod(view: PodView | None, now: float) -> str:
    return "" if view is None else f"<h2>Workers</h2>{render_workers(view, now)}"


def render_dashboard(
    report: HealthReport,
    *,
    alerts: Sequence[Mapping[str, Any]],
    latency: Mapping[str, OperationLatency] | None,
    history: Sequence[Snapshot] = (),
    history_interval: float = 5.0,
    history_window: float = 900.0,
    budget_ms: float = 100.0,
    refresh: int = 5,
    now: float | None = None,
    workers: PodView | None = None,
) -> tuple[Status, bytes]:
    """The page's status and its UTF-8 HTML; the page reloads itself every ``refresh`` s."""
    now = time.time() if now is None else now
    status, lines = verdict(report, alerts)
    scope = "this process" if workers is None else f"merged from {workers_summary(workers)}"
    summary = "".join(f"<li>{escape(line)}</li>" for line in lines)
    stamp = time.strftime("%H:%M:%S", time.gmtime(now))
    trends = render_trends(
        history, interval=history_interval, window=history_window, now=now, budget_ms=budget_ms
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="refresh" content="{int(refresh)}">'
        f"<title>health: {escape(status)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>Database health {_badge(status, 'status')}</h1>"
        f'<ul class="summary s-{escape(status)}" id="summary">{summary}</ul>'
        f'<p class="muted">Public view at <time id="generated">{stamp}</time> UTC; refreshes '
        f'every {int(refresh)} s. Machine-readable: <a href="./">health+json</a>, '
        '<a href="ready?format=text">readiness</a>, <a href="metrics">metrics</a>.</p>'
        f"<h2>Checks</h2>{_checks(report)}"
        f"<h2>Last {duration(history_window)}</h2>{trends}"
        f"<h2>Active alerts</h2>{_alerts(alerts)}"
        f"{_pod(workers, now)}"
        f"<h2>Query latency now ({scope})</h2>{_latency(latency)}"
        "</body></html>"
    )
    return status, page.encode()
