"""The dashboard's "Workers" section: who was merged, when each reported, pool use per worker
and in total against the server's ``max_connections``."""

from __future__ import annotations

import time
from html import escape

from .view import PodView

__all__ = ["render_workers", "workers_summary"]


def workers_summary(view: PodView) -> str:
    n = len(view.workers)
    return f"{n} worker{'s' if n != 1 else ''}"


def render_workers(view: PodView, now: float | None = None) -> str:
    now = time.time() if now is None else now
    rows = []
    for w in view.workers:
        age = 0.0 if w.this else max(0.0, now - w.reported_at)
        role = ", ".join(
            x for x in ("this page" if w.this else "", "alerts" if w.leader else "") if x
        )
        pool = w.pool or {}
        rows.append(
            f'<tr><td class="n">{w.pid}</td><td>{escape(role)}</td>'
            f'<td class="n">{age:.1f} s ago</td><td class="n">{w.used}</td>'
            f'<td class="n">{int(pool.get("idle", 0))}</td><td class="n">{w.capacity}</td>'
            f'<td class="n">{int(pool.get("waiting", 0))}</td></tr>'
        )
    used = sum(w.used for w in view.workers)
    capacity = sum(w.capacity for w in view.workers)
    limit = (
        f" of the server's max_connections={view.max_connections}" if view.max_connections else ""
    )
    return (
        f'<p id="workers-merged">Merged from {workers_summary(view)} of this pod: '
        f"{used} connections in use, pool capacity {capacity}{escape(limit)}.</p>"
        '<table id="workers" class="stack"><tr><th class="n">worker pid</th><th>role</th>'
        '<th class="n">reported</th><th class="n">used</th><th class="n">idle</th>'
        '<th class="n">capacity</th><th class="n">waiting</th></tr>' + "".join(rows) + "</table>"
    )
