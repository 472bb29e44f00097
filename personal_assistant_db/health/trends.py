"""The dashboard's history section: charts and their tables, built from History snapshots.

- P95 and P99 over time for the busiest ``CHARTED_OPERATIONS`` operations, each against the
  ``DB_QUERY_P95_BUDGET_MS`` line (the P95 alert's threshold);
- pool connections used and callers waiting, against the pool's capacity;
- one status bar per check;
- every alert transition as a marker on all of them, and as a row in a table.

The numbers behind the charts follow as tables (per operation over the window, and per time slice),
so nothing is only in a picture. Times are UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from .charts import Frame, Marker, Series, line_chart, timeline
from .history import Snapshot
from .result import worst

__all__ = ["CHARTED_OPERATIONS", "render_trends"]

CHARTED_OPERATIONS = 6
SLICES = 15  # rows of the per-time-slice table


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def _markers(snapshots: Sequence[Snapshot]) -> list[Marker]:
    return [
        Marker(s.at, e.state, f"{_clock(s.at)} {e.rule} {e.state} ({e.value:g} vs {e.threshold:g})")
        for s in snapshots
        for e in s.alerts
    ]


def _figure(svg: str, name: str, caption: str) -> str:
    return f"<figure><figcaption><b>{escape(name)}</b> {escape(caption)}</figcaption>{svg}</figure>"


def _latency_charts(
    snapshots: Sequence[Snapshot], frame: Frame, budget_ms: float, markers: list[Marker]
) -> tuple[str, list[str]]:
    latest = snapshots[-1].latency
    seen = {op for s in snapshots for op in s.latency}
    ops = sorted(seen, key=lambda op: (-(latest[op].queries if op in latest else 0), op))
    charted = ops[:CHARTED_OPERATIONS]
    figures = []
    for i, op in enumerate(charted):
        p95 = [(s.at, s.latency[op].p95 * 1000) for s in snapshots if op in s.latency]
        p99 = [(s.at, s.latency[op].p99 * 1000) for s in snapshots if op in s.latency]
        over = sum(1 for _, v in p95 if v > budget_ms)
        desc = (
            f"{op}: P95 now {p95[-1][1]:.2f} ms, highest {max(v for _, v in p95):.2f} ms; "
            f"P99 highest {max(v for _, v in p99):.2f} ms; the budget of {budget_ms:g} ms was "
            f"exceeded by P95 in {over} of {len(p95)} snapshots."
        )
        svg = line_chart(
            f"lat{i}",
            title=f"{op} latency, P95 and P99 (ms)",
            desc=desc,
            frame=frame,
            series=[Series("P95", "p95", p95), Series("P99", "p99", p99)],
            unit="ms",
            limit=budget_ms,
            limit_label=f"alert threshold DB_QUERY_P95_BUDGET_MS={budget_ms:g} ms",
            markers=markers,
        )
        figures.append(_figure(svg, op, "P95 solid, P99 dashed, budget red (ms)"))
    return "".join(figures), ops


def _pool_chart(snapshots: Sequence[Snapshot], frame: Frame, markers: list[Marker]) -> str:
    points = [(s.at, s.pool) for s in snapshots if s.pool is not None]
    if not points:
        return '<p class="muted">The pool was not started during this window.</p>'
    capacity = points[-1][1].capacity
    used = [(t, float(p.used)) for t, p in points]
    waiting = [(t, float(p.waiting)) for t, p in points]
    full = sum(1 for _, p in points if p.used >= p.capacity)
    desc = (
        f"Connections used now {points[-1][1].used} of {capacity}, highest "
        f"{max(p.used for _, p in points)}; callers waiting now {points[-1][1].waiting}, highest "
        f"{max(p.waiting for _, p in points)}; the pool was full in {full} of {len(points)} "
        "snapshots."
    )
    svg = line_chart(
        "pool",
        title="Pool connections used and callers waiting",
        desc=desc,
        frame=frame,
        series=[Series("used", "used", used), Series("waiting", "waiting", waiting)],
        unit="",
        limit=float(capacity),
        limit_label=f"capacity {capacity} (DB_POOL_SIZE + DB_MAX_OVERFLOW)",
        markers=markers,
    )
    return _figure(svg, "Pool", "connections used solid, callers waiting dashed, capacity red")


def _status_chart(
    snapshots: Sequence[Snapshot], frame: Frame, interval: float, markers: list[Marker]
) -> str:
    names: list[str] = []
    runs: dict[str, list[tuple[float, float, str]]] = {}
    for i, s in enumerate(snapshots):
        following = snapshots[i + 1].at if i + 1 < len(snapshots) else s.at + interval
        end = min(following, s.at + frame.gap)
        for c in s.checks:
            if c.name not in runs:
                names.append(c.name)
                runs[c.name] = []
            row = runs[c.name]
            if row and row[-1][2] == c.status and abs(row[-1][1] - s.at) < 1e-6:
                row[-1] = (row[-1][0], end, c.status)
            else:
                row.append((s.at, end, c.status))
    parts = []
    for name in names:
        counts = {st: 0 for st in ("pass", "warn", "fail")}
        for begin, end, st in runs[name]:
            counts[st] += max(1, round((end - begin) / interval))
        parts.append(f"{name}: " + ", ".join(f"{st} {n}" for st, n in counts.items() if n))
    desc = "Snapshots per status. " + "; ".join(parts) + "."
    svg = timeline(
        "status",
        title="Check status over time",
        desc=desc,
        frame=frame,
        rows=[(n, runs[n]) for n in names],
        markers=markers,
    )
    return _figure(
        svg, "Checks", "green pass, amber warn, red fail; triangles: alert fired / resolved"
    )


def _tables(snapshots: Sequence[Snapshot], ops: list[str], budget_ms: float) -> str:
    rows = []
    for op in ops:
        points = [s.latency[op] for s in snapshots if op in s.latency]
        over = sum(1 for p in points if p.p95 * 1000 > budget_ms)
        rows.append(
            f'<tr><td>{escape(op)}</td><td class="n">{_ms(points[-1].p95)}</td>'
            f'<td class="n">{_ms(max(p.p95 for p in points))}</td>'
            f'<td class="n">{_ms(max(p.p99 for p in points))}</td>'
            f'<td class="n">{over}/{len(points)}</td></tr>'
        )
    by_op = (
        "<table><caption>Latency per operation over the window (ms)</caption><tr><th>operation"
        '</th><th class="n">P95 last</th><th class="n">P95 max</th><th class="n">P99 max</th>'
        '<th class="n">over budget</th></tr>' + "".join(rows) + "</table>"
        if rows
        else ""
    )
    step = max(1, -(-len(snapshots) // SLICES))
    slices = []
    for i in range(0, len(snapshots), step):
        part = snapshots[i : i + step]
        pools = [s.pool for s in part if s.pool is not None]
        p95s = [(p.p95, op) for s in part for op, p in s.latency.items()]
        top = max(p95s) if p95s else None
        status = worst([c.status for s in part for c in s.checks])
        slices.append(
            f"<tr><td>{_clock(part[-1].at)}</td><td>{status}</td>"
            f'<td class="n">{max((p.used for p in pools), default="-")}</td>'
            f'<td class="n">{max((p.waiting for p in pools), default="-")}</td>'
            f'<td class="n">{_ms(max((p.wait_p95 for p in pools), default=0.0))}</td>'
            f"<td>{'-' if top is None else escape(f'{_ms(top[0])} {top[1]}')}</td></tr>"
        )
    by_time = (
        "<table><caption>Per time slice (the worst of each slice; times UTC)</caption><tr>"
        '<th>until</th><th>worst check</th><th class="n">used</th><th class="n">waiting</th>'
        '<th class="n">wait P95 ms</th><th>highest P95 ms</th></tr>' + "".join(slices) + "</table>"
    )
    events = [(s.at, e) for s in snapshots for e in s.alerts][-20:]
    ev_rows = "".join(
        f"<tr><td>{_clock(at)}</td><td>{escape(e.rule)}</td><td>{e.state}</td>"
        f'<td class="n">{e.value:g}</td><td class="n">{e.threshold:g}</td></tr>'
        for at, e in events
    )
    alerts = (
        "<table><caption>Alert transitions (times UTC)</caption><tr><th>at</th><th>rule</th>"
        '<th>state</th><th class="n">value</th><th class="n">threshold</th></tr>'
        + ev_rows
        + "</table>"
        if events
        else '<p class="muted">No alert fired or resolved in this window.</p>'
    )
    return (
        alerts
        + "<details><summary>Numbers behind the charts</summary>"
        + by_op
        + by_time
        + ("</details>")
    )


def render_trends(
    snapshots: Sequence[Snapshot],
    *,
    interval: float,
    window: float,
    now: float,
    budget_ms: float,
) -> str:
    """The history section's HTML (charts, then tables); a note while there is no snapshot."""
    if not snapshots:
        return (
            f'<p class="muted">No history yet: a snapshot is taken every {interval:g} s '
            "once the database has started.</p>"
        )
    frame = Frame(start=now - window, end=now, gap=interval * 2.5)
    markers = _markers(snapshots)
    latency, ops = _latency_charts(snapshots, frame, budget_ms, markers)
    if not latency:
        latency = '<p class="muted">No query latency recorded (telemetry not attached?).</p>'
    covered = f"{len(snapshots)} snapshots, one every {interval:g} s"
    return (
        f'<p class="muted" id="history-span">{covered}; last at {_clock(snapshots[-1].at)} UTC.</p>'
        f'<h3>Query latency</h3><div class="grid">{latency}</div>'
        f'<h3>Pool and checks</h3><div class="grid">{_pool_chart(snapshots, frame, markers)}'
        f"{_status_chart(snapshots, frame, interval, markers)}</div>"
        + _tables(snapshots, ops, budget_ms)
    )
