"""Check results as data: ``Status``, ``CheckResult``, the ``Check`` protocol, ``failure()``."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from ..logs import get_logger

__all__ = ["Check", "CheckResult", "Status", "failure", "worst"]

Status = Literal["pass", "warn", "fail"]
_RANK: dict[str, int] = {"pass": 0, "warn": 1, "fail": 2}
log = get_logger()


def worst(statuses: list[Status]) -> Status:
    """The most severe status (``pass`` for none)."""
    return max(statuses, key=_RANK.__getitem__, default="pass")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome. ``counts`` are public numbers; ``details`` need the token.

    ``reason`` is public: a short text the check itself wrote (never server or exception text)
    saying why it is not ``pass``. The dashboard shows it next to every ``warn`` and ``fail``.
    """

    name: str
    status: Status
    duration: float
    observed_value: float | int | str | None = None
    observed_unit: str | None = None
    component_type: str = "component"
    time: str = field(default_factory=_now)
    error_id: str | None = None
    counts: Mapping[str, float | int] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None
    #: Which instance of the component (``primary``, ``replica-1``): health+json ``componentId``.
    component_id: str | None = None


@runtime_checkable
class Check(Protocol):
    """What the runner needs. ``name`` is the health+json key, ``component:measurement``."""

    name: str
    timeout: float  # seconds; the runner never waits longer for this check
    critical: bool  # a failing non-critical check makes the response ``warn``, not ``fail``

    async def run(self) -> CheckResult: ...


def failure(
    name: str,
    began: float,
    exc: BaseException | None,
    reason: str,
    *,
    error_class: str | None = None,
    **kw: Any,
) -> CheckResult:
    """A ``fail`` result with a fresh correlation id; the real cause goes to the log only.

    ``reason`` must be the package's (or host's) own fixed text: it is shown publicly.
    ``error_class`` names the cause for the log when there is no exception (a check that
    reported fail, a missed deadline)."""
    error_id = uuid.uuid4().hex[:12]
    cls = type(exc).__name__ if exc else error_class
    log.warning(
        "health.check.failed",
        check=name,
        error_id=error_id,
        reason=reason,
        error_class=cls,
        error=str(exc)[:500] if exc else None,
    )
    details = {"reason": reason, "error_class": cls}
    return CheckResult(
        name=name,
        status="fail",
        duration=time.perf_counter() - began,
        error_id=error_id,
        details=details,
        reason=reason,
        **kw,
    )
