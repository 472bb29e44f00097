"""Alerts: rules with thresholds and hysteresis -> one event per transition -> sinks.

A rule reads one number from an ``Observation`` (the latest check results, the pool snapshot,
the query P95). It *fires* once the number stays above ``fire_above`` for ``fire_after_runs``
evaluations and ``fire_after_seconds``, and *resolves* once it stays below ``clear_below`` as long
(``clear_after_*``). Between the two thresholds nothing changes: that gap is the hysteresis.
Every transition is one ``AlertEvent``; it is logged through structlog and handed to each sink
(an async callable; ``WebhookSink``, in webhook.py, POSTs JSON from its own task). Evaluation
runs off the request path (health/monitor.py), so a slow sink never delays a probe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from ..logs import get_logger
from .webhook import WebhookSink

if TYPE_CHECKING:
    from ..pool import PoolStats
    from ..settings import Settings
    from .checks import CheckResult

__all__ = [
    "AlertEvent",
    "AlertManager",
    "AlertRule",
    "Observation",
    "Sink",
    "WebhookSink",
    "default_rules",
]

log = get_logger()
Sink = Callable[["AlertEvent"], Awaitable[None]]


@dataclass(frozen=True)
class Observation:
    """What rules look at: latest results by check name, pool, query P95 (s), new timeouts."""

    results: Mapping[str, CheckResult] = field(default_factory=dict)
    pool: PoolStats | None = None
    query_p95: float | None = None
    new_timeouts: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class AlertEvent:
    rule: str
    state: Literal["firing", "resolved"]
    severity: str
    value: float
    threshold: float
    description: str
    at: str = field(
        default_factory=lambda: (
            datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        )
    )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "state": self.state,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold,
            "description": self.description,
            "at": self.at,
        }


@dataclass
class AlertRule:
    """``metric`` returns None when it cannot tell (that evaluation changes nothing)."""

    name: str
    metric: Callable[[Observation], float | None]
    fire_above: float
    clear_below: float
    fire_after_runs: int = 1
    fire_after_seconds: float = 0.0
    clear_after_runs: int = 1
    clear_after_seconds: float = 0.0
    severity: str = "warning"
    description: str = ""
    firing: bool = field(default=False, init=False)
    since: str | None = field(default=None, init=False)
    _runs: int = field(default=0, init=False, repr=False)
    _first: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.clear_below > self.fire_above:
            raise ValueError(
                f"rule {self.name!r}: clear_below={self.clear_below} must be <= "
                f"fire_above={self.fire_above} (hysteresis)"
            )
        if self.fire_after_runs < 1 or self.clear_after_runs < 1:
            raise ValueError(f"rule {self.name!r}: fire/clear_after_runs must be >= 1")

    def evaluate(self, obs: Observation) -> AlertEvent | None:
        """Advance the state machine; an event only on a transition."""
        value = self.metric(obs)
        if value is None:
            return None
        moving = value < self.clear_below if self.firing else value > self.fire_above
        if not moving:
            self._runs, self._first = 0, None
            return None
        self._runs += 1
        self._first = obs.at if self._first is None else self._first
        runs, seconds = (
            (self.clear_after_runs, self.clear_after_seconds)
            if self.firing
            else (self.fire_after_runs, self.fire_after_seconds)
        )
        if self._runs < runs or obs.at - self._first < seconds:
            return None
        self.firing = not self.firing
        self._runs, self._first = 0, None
        event = AlertEvent(
            rule=self.name,
            state="firing" if self.firing else "resolved",
            severity=self.severity,
            value=round(value, 4),
            threshold=self.fire_above if self.firing else self.clear_below,
            description=self.description,
        )
        self.since = event.at if self.firing else None
        return event


def _db_failing(obs: Observation) -> float | None:
    result = obs.results.get("database:responseTime")
    return None if result is None else float(result.status == "fail")


def _utilization(obs: Observation) -> float | None:
    return None if obs.pool is None else obs.pool.utilization


def default_rules(
    settings: Settings,
    *,
    db_fail_runs: int = 3,
    pool_threshold: float = 0.8,
    pool_window: float = 30.0,
    timeout_quiet: float = 60.0,
    p95_runs: int = 3,
) -> list[AlertRule]:
    """The four rules of the issue; a fresh list (rules carry state) per call."""
    budget = settings.query_p95_budget_ms
    return [
        AlertRule(
            "database_down", _db_failing, 0.5, 0.5,
            fire_after_runs=db_fail_runs, clear_after_runs=1, severity="critical",
            description=f"database check failed {db_fail_runs} runs in a row",
        ),
        AlertRule(
            "pool_saturated", _utilization, pool_threshold, pool_threshold - 0.1,
            fire_after_seconds=pool_window, clear_after_seconds=pool_window,
            description=f"pool utilization above {pool_threshold:.0%} for {pool_window:g}s",
        ),
        AlertRule(
            "pool_checkout_timeouts", lambda o: float(o.new_timeouts), 0.5, 0.5,
            clear_after_seconds=timeout_quiet,
            description="a pool checkout timed out (DB_POOL_TIMEOUT)",
        ),
        AlertRule(
            "query_p95_over_budget",
            lambda o: None if o.query_p95 is None else o.query_p95 * 1000,
            budget, budget * 0.9, fire_after_runs=p95_runs, clear_after_runs=p95_runs,
            description=f"query P95 above DB_QUERY_P95_BUDGET_MS={budget:g}",
        ),
    ]  # fmt: skip


class AlertManager:
    """Evaluates rules and sends each transition to structlog and to every sink."""

    def __init__(
        self, rules: Sequence[AlertRule], sinks: Sequence[Sink] = (), *, sink_timeout: float = 2.0
    ) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"alert rule names must be unique, got {names}")
        self.rules = list(rules)
        self.sinks = list(sinks)
        self.sink_timeout = sink_timeout
        self.sink_errors = 0

    def __repr__(self) -> str:
        return f"<AlertManager rules={len(self.rules)} sinks={len(self.sinks)}>"

    def evaluate(self, obs: Observation) -> list[AlertEvent]:
        return [e for e in (r.evaluate(obs) for r in self.rules) if e is not None]

    def active(self) -> list[dict[str, Any]]:
        """Firing alerts, for the /health overview (name, severity, since, description)."""
        return [
            {
                "rule": r.name,
                "severity": r.severity,
                "since": r.since,
                "description": r.description,
            }
            for r in self.rules
            if r.firing
        ]

    async def dispatch(self, events: Sequence[AlertEvent]) -> None:
        """Log each event, then hand it to every sink at once: a hung sink delays no other."""
        for event in events:
            log.warning("db.alert", **event.as_dict())
            await asyncio.gather(*(self._send(sink, event) for sink in self.sinks))

    async def _send(self, sink: Sink, event: AlertEvent) -> None:
        try:
            await asyncio.wait_for(sink(event), self.sink_timeout)
        except Exception as exc:
            self.sink_errors += 1
            log.error("db.alert.sink_failed", rule=event.rule, error_class=type(exc).__name__)

    async def close(self) -> None:
        for sink in self.sinks:
            closer = getattr(sink, "aclose", None)
            if closer is not None:
                await closer()
