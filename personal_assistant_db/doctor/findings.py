"""The doctor's data model: a Finding (severity, object, evidence, action) and a Report.

Everything here is plain frozen data; analyses produce it and ``optimize_render`` turns it into
text or JSON. ``REPORT_FORMAT`` versions the JSON shape documented in docs/doctor.md.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REPORT_FORMAT", "Evidence", "Finding", "Report", "Severity"]

REPORT_FORMAT = 1

Evidence = Mapping[str, "int | float | str | bool | None"]


class Severity(enum.IntEnum):
    """How much a finding matters; ``--fail-on`` compares against these."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls[value.strip().upper()]
        except KeyError:
            choices = ", ".join(s.label for s in cls)
            raise ValueError(f"expected one of {choices}, got {value!r}") from None


@dataclass(frozen=True)
class Finding:
    """One thing the doctor noticed.

    ``analysis`` is a stable code (``duplicate_index``, ``unindexed_foreign_key`` ...), ``object``
    the schema-qualified thing it concerns, ``evidence`` the numbers behind it, and ``action``
    what to do: exact SQL for index changes, or a setting and its value.
    """

    severity: Severity
    analysis: str
    object: str
    summary: str
    evidence: Evidence = field(default_factory=dict)
    action: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity.label,
            "analysis": self.analysis,
            "object": self.object,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "action": self.action,
        }


@dataclass(frozen=True)
class Report:
    """What ``analyze()`` returns: findings (most severe first) and facts about the server."""

    findings: tuple[Finding, ...]
    facts: Mapping[str, Any]

    def at_least(self, severity: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity >= severity)

    def of(self, analysis: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.analysis == analysis)

    def counts(self) -> dict[str, int]:
        return {s.label: sum(f.severity is s for f in self.findings) for s in reversed(Severity)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "facts": dict(self.facts),
            "summary": self.counts(),
            "findings": [f.as_dict() for f in self.findings],
        }
