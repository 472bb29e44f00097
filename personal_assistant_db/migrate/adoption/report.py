"""What adoption returns: plain data, rendered by the CLI as the last step.

A ``Finding`` names rows by table and primary key, never by value: no email, token, session id,
secret or hash ever reaches a report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["AdoptionReport", "ContractReport", "Finding", "Verdict"]

Verdict = Literal["legacy", "expanded", "adopted", "package", "unknown", "refused"]


@dataclass(frozen=True)
class Finding:
    """Rows the package's schema would refuse or change, and what adoption does with them."""

    table: str
    rule: str
    count: int
    keys: tuple[str, ...]  # primary keys of (up to 20 of) the rows
    action: str
    decision: str | None = None  # None: adoption handles it; else what must happen first
    loss: str | None = None  # TABLE.COLUMN that --accept-loss may name to go ahead

    @property
    def needs_decision(self) -> bool:
        return self.decision is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rule": self.rule,
            "count": self.count,
            "keys": list(self.keys),
            "action": self.action,
            "decision": self.decision,
            "accept_loss": self.loss,
        }


@dataclass(frozen=True)
class AdoptionReport:
    """The outcome of ``adopt``: the layout found, its differences, the rows, what was applied."""

    verdict: Verdict
    schema: str
    message: str
    differences: tuple[str, ...] = ()  # why a layout is not the legacy one (nothing touched)
    extras: tuple[str, ...] = ()  # the app's own columns, indexes, tables: listed and kept
    findings: tuple[Finding, ...] = ()
    applied: tuple[str, ...] = ()
    check: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def needs_decision(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.needs_decision)

    @property
    def exit_code(self) -> int:
        """0 go ahead (or done), 1 rows need a decision (--check), 2 bad input / refused."""
        if self.verdict in ("unknown", "refused", "package", "adopted"):
            return 2
        if self.check and self.needs_decision:
            return 1
        return 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code == 0,
            "verdict": self.verdict,
            "schema": self.schema,
            "message": self.message,
            "differences": list(self.differences),
            "extras": list(self.extras),
            "findings": [f.as_dict() for f in self.findings],
            "applied": list(self.applied),
            "check": self.check,
            "timings": self.timings,
        }


@dataclass(frozen=True)
class ContractReport:
    """The outcome of ``contract``: what it dropped, merged and accepted, or why it refused."""

    done: bool
    message: str
    dropped: tuple[str, ...] = ()  # legacy columns removed with no home (and why)
    moved: tuple[str, ...] = ()  # legacy column -> the package column(s) that hold its values
    accepted_loss: tuple[str, ...] = ()
    merged: tuple[str, ...] = ()  # RBAC rows added, grants left alone
    blocking: tuple[Finding, ...] = ()
    applied: tuple[str, ...] = ()
    swap_seconds: float | None = None  # how long the one exclusive-lock transaction took

    @property
    def exit_code(self) -> int:
        return 0 if self.done else 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.done,
            "message": self.message,
            "dropped": list(self.dropped),
            "moved": list(self.moved),
            "accepted_loss": list(self.accepted_loss),
            "merged": list(self.merged),
            "blocking": [f.as_dict() for f in self.blocking],
            "applied": list(self.applied),
            "swap_seconds": self.swap_seconds,
        }
