"""Render a HealthReport: application/health+json (draft-inadarei-api-health-check) or text.

The public view carries status, timings, observed values, counts and correlation ids only.
``detailed=True`` (a valid token) adds each result's ``details`` (error class, server version,
pool internals). Nothing here ever sees an exception or a URL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .checks import CheckResult, Status
from .runner import HealthReport

__all__ = ["HEALTH_JSON", "STATUS_CODES", "render_json", "render_text"]

HEALTH_JSON = "application/health+json"
STATUS_CODES: Mapping[Status, int] = {"pass": 200, "warn": 200, "fail": 503}


def _entry(result: CheckResult, detailed: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"componentType": result.component_type}
    if result.component_id is not None:
        entry["componentId"] = result.component_id
    entry |= {
        "status": result.status,
        "time": result.time,
        "durationMs": round(result.duration * 1000, 3),
    }
    if result.observed_value is not None:
        entry["observedValue"] = result.observed_value
        entry["observedUnit"] = result.observed_unit
    if result.counts:
        entry["counts"] = dict(result.counts)
    if result.error_id is not None:
        entry["errorId"] = result.error_id
    if result.reason and result.status != "pass":
        entry["output"] = result.reason  # public: the check's own text, never the error's
    if detailed and result.details:
        entry["details"] = dict(result.details)
        reason = result.details.get("reason")
        if reason and "output" not in entry:
            entry["output"] = str(reason)
    return entry


def render_json(
    report: HealthReport,
    *,
    description: str,
    detailed: bool = False,
    alerts: Sequence[Mapping[str, Any]] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """The health+json body; ``alerts`` (the overview) and ``extra`` go in as top-level keys."""
    checks: dict[str, list[dict[str, Any]]] = {}
    for result in report.results:
        checks.setdefault(result.name, []).append(_entry(result, detailed))
    body: dict[str, Any] = {"status": report.status, "description": description, "checks": checks}
    if alerts is not None:
        body["alerts"] = list(alerts)
    if extra:
        body.update(extra)
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def render_text(report: HealthReport, *, name: str) -> bytes:
    """Kubernetes-style verbose list: ``[+]database:responseTime ok`` per check."""
    lines = []
    for r in report.results:
        if r.status == "fail":
            ref = f" (error id {r.error_id})" if r.error_id else ""
            lines.append(f"[-]{r.name} failed: reason withheld{ref}")
        elif r.status == "warn":
            lines.append(f"[+]{r.name} warn: {r.reason}" if r.reason else f"[+]{r.name} warn")
        else:
            lines.append(f"[+]{r.name} ok")
    verdict = "failed" if report.status == "fail" else "passed"
    lines.append(f"{name} check {verdict}")
    return ("\n".join(lines) + "\n").encode()
