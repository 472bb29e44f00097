"""Run checks concurrently under deadlines, with single-flight and a TTL cache per check.

- **Single-flight:** concurrent callers of one check share its one in-flight run.
- **TTL:** a finished result is reused for ``ttl`` seconds (``fail_ttl`` for a ``fail``), so a
  flood of probes costs the database at most one health query per TTL.
- **Deadlines:** the runner waits at most ``check.timeout`` for a check and at most the response
  deadline for all of them. A check that overruns is answered ``fail`` *without being cancelled*
  (its run stays the in-flight one; its result is cached when it lands). Nothing here cancels a
  task, so nothing here can leak a checked-out connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from .checks import Check, CheckResult, Status, failure, worst

__all__ = ["HealthReport", "HealthRunner"]


@dataclass(frozen=True)
class HealthReport:
    """The results of one group of checks, and the overall status."""

    status: Status
    results: tuple[CheckResult, ...]

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if r.status == "fail")


@dataclass
class _Entry:
    result: CheckResult | None = None
    expires: float = 0.0
    flight: asyncio.Task[CheckResult] | None = None


def _key(check: Check) -> str:
    instance = getattr(check, "component_id", None)
    return check.name if instance is None else f"{check.name}#{instance}"


class HealthRunner:
    """Caches and runs checks. One runner per health app; checks are keyed by ``name`` (and
    ``component_id`` when a check has one: a pool check per database node)."""

    def __init__(
        self,
        *,
        ttl: float,
        fail_ttl: float,
        deadline: float,
        on_result: Callable[[CheckResult], None] | None = None,
    ) -> None:
        if not deadline > 0:
            raise ValueError(f"deadline must be seconds > 0, got {deadline!r}")
        if ttl < 0 or fail_ttl < 0:
            raise ValueError(f"ttl and fail_ttl must be seconds >= 0, got {ttl!r}, {fail_ttl!r}")
        self.ttl = ttl
        self.fail_ttl = fail_ttl
        self.deadline = deadline
        self.on_result = on_result
        self.runs = 0  # fresh runs started (the cache's misses)
        self._entries: dict[str, _Entry] = {}

    def __repr__(self) -> str:
        return f"<HealthRunner ttl={self.ttl:g}s fail_ttl={self.fail_ttl:g}s runs={self.runs}>"

    def latest(self, name: str) -> CheckResult | None:
        """The last finished result of check ``name`` (any age), or None."""
        entry = self._entries.get(name)
        return entry.result if entry else None

    async def drain(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for in-flight runs; True if none is left.

        A bounded wait, not ``asyncio.timeout``: that would cancel the runs, and a cancel around
        a checked-out connection is what leaks it."""
        flights = {e.flight for e in self._entries.values() if e.flight is not None}
        if flights:
            await asyncio.wait(flights, timeout=seconds)
        return all(e.flight is None for e in self._entries.values())

    async def run(self, checks: Sequence[Check]) -> HealthReport:
        """Every check concurrently; the report within the response deadline."""
        began = time.perf_counter()
        now = time.monotonic()
        fresh = [self._fresh(_key(c), now) for c in checks]
        results: list[CheckResult] = [r for r in fresh if r is not None]
        if len(results) < len(checks):  # the fast path (all cached) makes no task at all
            results = list(await asyncio.gather(*(self.result(c, began) for c in checks)))
        statuses: list[Status] = [
            r.status if c.critical or r.status != "fail" else "warn"
            for c, r in zip(checks, results, strict=True)
        ]
        return HealthReport(status=worst(statuses), results=tuple(results))

    def _fresh(self, name: str, now: float) -> CheckResult | None:
        entry = self._entries.get(name)
        if entry is not None and entry.result is not None and now < entry.expires:
            return entry.result
        return None

    async def result(self, check: Check, began: float | None = None) -> CheckResult:
        """Cached, joined in flight, or run now; ``fail`` past the check's deadline."""
        began = time.perf_counter() if began is None else began
        entry = self._entries.setdefault(_key(check), _Entry())
        now = time.monotonic()
        if entry.result is not None and now < entry.expires:
            return entry.result
        if entry.flight is None:
            self.runs += 1
            entry.flight = asyncio.create_task(self._fly(check, entry), name=f"health:{check.name}")
        budget = min(check.timeout, self.deadline - (time.perf_counter() - began))
        flight = entry.flight
        done, _ = await asyncio.wait({flight}, timeout=max(0.0, budget))
        if done:
            return flight.result()
        late = failure(
            check.name, began, None, "check deadline exceeded", error_class="DeadlineExceeded"
        )
        return replace(late, component_id=getattr(check, "component_id", None))

    async def _fly(self, check: Check, entry: _Entry) -> CheckResult:
        began = time.perf_counter()
        try:
            result = await check.run()
        except Exception as exc:  # a host check broke its contract: still a result
            result = failure(check.name, began, exc, "check raised")
        finally:
            entry.flight = None
        if result.status == "fail" and result.error_id is None:  # every failure gets an id
            # ... and its log line the real cause: the check's own reason and observation.
            reason = result.details.get("reason") or result.reason or "check reported fail"
            observed = (
                f" (observed {result.observed_value} {result.observed_unit or ''})".rstrip()
                if result.observed_value is not None
                else ""
            )
            tagged = failure(
                check.name,
                began,
                None,
                f"{reason}{observed}",
                error_class=result.details.get("error_class") or "CheckReportedFail",
            )
            result = replace(result, error_id=tagged.error_id)
        instance = getattr(check, "component_id", None)
        if instance is not None and result.component_id is None:
            result = replace(result, component_id=instance)
        # A check's own ``ttl`` (MigrationsCheck: 10 s) applies to a pass only: a warn (say, a
        # probe skipped because the pool was saturated) is retried after the normal TTL.
        ttl = {"pass": getattr(check, "ttl", self.ttl), "warn": self.ttl}.get(
            result.status, self.fail_ttl
        )
        entry.result = result
        entry.expires = time.monotonic() + ttl
        if self.on_result is not None:
            self.on_result(result)
        return result
