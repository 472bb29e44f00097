"""The fault suite's figures: one ``Result`` per scenario, how samples become figures, the table."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench._common import table
from bench.fault_load import Sample

__all__ = ["Result", "count_log_lines", "render", "summarize"]


@dataclass
class Result:
    scenario: str
    target: str
    requests: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    max_s: float = 0.0
    p99_s: float = 0.0
    error_window_s: float = 0.0
    recovery_s: float | None = None
    availability: float = 100.0
    ready_polls: int = 0
    ready_200: int = 0
    ready_max_s: float = 0.0
    server_closed: int = 0  # keep-alive connections the server closed
    retry_after_missing: int = 0
    log_lines: dict[str, int] = field(default_factory=dict)
    log_lines_max_per_s: int = 0
    after: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pool_matches_server(self) -> bool:
        a = self.after
        return bool(a) and a["used"] == 0 and a["open"] == a["server"] and a["idle_in_tx"] == 0


def summarize(
    result: Result, reads: list[Sample], polls: list[Sample], *, back_at: float | None = None
) -> Result:
    kinds = Counter(str(s.status) if s.status else s.error for s in reads)
    result.requests = len(reads)
    result.by_kind = dict(sorted(kinds.items()))
    durations = sorted(s.seconds for s in reads)
    result.max_s = durations[-1] if durations else 0.0
    result.p99_s = durations[int(0.99 * (len(durations) - 1))] if durations else 0.0
    failed = [s for s in reads if not 200 <= s.status < 300]
    ok = len(reads) - len(failed)
    result.availability = 100.0 * ok / len(reads) if reads else 100.0
    if failed:
        result.error_window_s = max(s.ended for s in failed) - min(s.began for s in failed)
        last = max(s.ended for s in failed)
        later = [s.ended for s in reads if 200 <= s.status < 300 and s.ended > last]
        if back_at is not None and later:
            result.recovery_s = max(0.0, min(later) - back_at)
    elif back_at is not None:
        result.recovery_s = 0.0
    result.server_closed = sum(1 for s in reads if s.closed_by_server)
    result.retry_after_missing = sum(1 for s in reads if s.status == 503 and not s.retry_after)
    result.ready_polls = len(polls)
    result.ready_200 = sum(1 for s in polls if s.status == 200)
    result.ready_max_s = max((s.seconds for s in polls), default=0.0)
    return result


def count_log_lines(result: Result, lines: list[str]) -> None:
    causes = Counter()
    per_second: Counter[tuple[str, str]] = Counter()
    for line in lines:
        for key in ("db.unavailable", "db.pool.timeout", "Traceback", "health.check.failed"):
            if key in line:
                causes[key] += 1
                cause = line.split("cause=", 1)[1].split()[0] if "cause=" in line else key
                per_second[(line[:19], cause)] += 1
    result.log_lines = dict(causes)
    result.log_lines_max_per_s = max(per_second.values(), default=0)


def render(results: list[Result]) -> str:
    header = [
        "scenario", "requests", "by status/error", "max s", "error window s", "recovery s",
        "availability %", "ready 200/polls", "ready max s", "closed by server", "log lines",
        "pool used/idle/open vs server", "idle in tx",
    ]  # fmt: skip
    rows = []
    for r in results:
        a = r.after
        rows.append(
            [
                r.scenario,
                r.requests,
                " ".join(f"{k}:{v}" for k, v in r.by_kind.items()),
                f"{r.max_s:.3f}",
                f"{r.error_window_s:.3f}",
                "-" if r.recovery_s is None else f"{r.recovery_s:.3f}",
                f"{r.availability:.3f}",
                f"{r.ready_200}/{r.ready_polls}",
                f"{r.ready_max_s:.3f}",
                r.server_closed,
                " ".join(f"{k}:{v}" for k, v in r.log_lines.items()) or "0",
                f"{a.get('used')}/{a.get('idle')}/{a.get('open')} vs {a.get('server')}",
                a.get("idle_in_tx"),
            ]
        )
    lines = [table(header, rows), ""]
    for r in results:
        lines.append(f"- {r.scenario}: target {r.target}; {json.dumps(r.extra)}")
    return "\n".join(lines)
