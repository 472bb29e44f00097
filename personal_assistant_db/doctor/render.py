"""Render a Report: text grouped by severity (ANSI colour only when asked) or stable JSON."""

from __future__ import annotations

import json
from typing import Any

from .findings import Finding, Report, Severity

__all__ = ["render_json", "render_text"]

_COLOURS = {Severity.ERROR: "\033[1;31m", Severity.WARNING: "\033[33m", Severity.INFO: "\033[36m"}
_RESET = "\033[0m"
_FACTS = (
    "server_version",
    "database",
    "schema",
    "stats_reset",
    "stats_window_days",
    "cache_hit_ratio",
    "max_connections",
    "connections_by_state",
    "application_connections",
    "pg_stat_statements",
)


def render_json(report: Report) -> str:
    return json.dumps(report.as_dict(), indent=2, default=str)


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _finding(f: Finding) -> list[str]:
    lines = [f"  [{f.analysis}] {f.object}", f"    {f.summary}"]
    evidence = {k: v for k, v in f.evidence.items() if k not in ("reasoning", "definition")}
    if evidence:
        lines.append("    evidence: " + ", ".join(f"{k}={_value(v)}" for k, v in evidence.items()))
    if "reasoning" in f.evidence:
        lines.append(f"    reasoning: {f.evidence['reasoning']}")
    if f.action:
        lines.append(f"    action: {f.action}")
    return lines


def render_text(report: Report, *, colour: bool = False) -> str:
    facts = report.facts
    lines = [
        "pa-db doctor: "
        + ", ".join(f"{k}={_value(facts[k])}" for k in _FACTS if facts.get(k) is not None)
    ]
    counts = report.counts()
    lines.append("findings: " + ", ".join(f"{n} {label}" for label, n in counts.items()))
    for severity in sorted(Severity, reverse=True):
        group = [f for f in report.findings if f.severity is severity]
        if not group:
            continue
        title = f"{severity.name} ({len(group)})"
        lines += ["", f"{_COLOURS[severity]}{title}{_RESET}" if colour else title]
        for f in group:
            lines += _finding(f)
    return "\n".join(lines) + "\n"
