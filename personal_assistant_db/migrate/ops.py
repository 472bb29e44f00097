"""Migrations for the auth/RBAC schema, on top of yoyo's Python API.

- ``status``, ``apply``, ``rollback``, ``unlock``: synchronous, for ``pa-db migrate``, the demo
  and the container's ``migrate`` service. They take ``Settings`` (its psycopg URL and migrate
  timeouts) or a database URL in any accepted form.
- ``migration_status`` (readiness), ``verify``, ``lint`` and ``assess`` live in their own
  modules; ``personal_assistant_db.migrate`` re-exports them all.

Rollbacks are always explicit: ``--to ID`` (ID stays applied), ``--steps N`` or ``--all``;
never yoyo's silent one-migration batch default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import MigrationError, UnknownMigration
from .runner import Runner
from .source import read_manifest, shipped, shipped_ids
from .target import Source, target_of

__all__ = ["StatusReport", "apply", "rollback", "status", "unlock"]


@dataclass(frozen=True)
class StatusReport:
    """What ``pa-db migrate status`` shows: applied, pending, and any drift."""

    applied: tuple[str, ...]
    pending: tuple[str, ...]
    unknown: tuple[str, ...] = ()  # applied but not shipped by this package
    drift: tuple[str, ...] = field(default=())  # human-readable drift findings
    lock: str | None = None  # who holds yoyo's lock right now, and how to clear a stale one

    @property
    def at_head(self) -> bool:
        return not self.pending


def status(source: Source) -> StatusReport:
    """Applied and pending migrations, plus content drift against the MANIFEST."""
    target = target_of(source)
    with Runner(target) as runner:
        applied = runner.applied()
        recorded = runner.recorded_hashes()
        lock = runner.describe_lock() if runner.lock_row() else None
    return dataclasses.replace(_report(applied, recorded), lock=lock)


def _report(applied: list[str], recorded: dict[str, str]) -> StatusReport:
    ids = shipped_ids()
    manifest = read_manifest()
    current = {m.id: m.sha256 for m in shipped()}
    drift: list[str] = []
    for mid in ids:
        if manifest.get(mid) != current[mid]:
            drift.append(f"{mid}: file content differs from the MANIFEST (package edited)")
    for mid in applied:
        if mid in recorded and mid in current and recorded[mid] != current[mid]:
            drift.append(f"{mid}: changed since it was applied (recorded sha256 differs)")
    return StatusReport(
        applied=tuple(applied),
        pending=tuple(i for i in ids if i not in set(applied)),
        unknown=tuple(i for i in applied if i not in set(ids)),
        drift=tuple(drift),
    )


def _check_id(mid: str, flag: str = "--to") -> None:
    if mid not in shipped_ids():
        known = ", ".join(shipped_ids())
        raise UnknownMigration(f"{flag} {mid!r} is not a migration in this package; known: {known}")


def apply(
    source: Source,
    *,
    to: str | None = None,
    dry_run: bool = False,
    lock_wait: float = 10.0,
) -> list[str]:
    """Apply pending migrations, up to and including ``to``; return the IDs applied (or planned)."""
    ids = shipped_ids()
    if to is not None:
        _check_id(to)
        ids = ids[: ids.index(to) + 1]
    with Runner(target_of(source), lock_wait=lock_wait) as runner, runner.locked():
        done = set(runner.applied())
        plan = [i for i in ids if i not in done]
        return plan if dry_run else _carry_out(plan, runner.apply_one, "applied")


def rollback(
    source: Source,
    *,
    to: str | None = None,
    steps: int | None = None,
    all: bool = False,
    dry_run: bool = False,
    lock_wait: float = 10.0,
) -> list[str]:
    """Roll back, newest first: to ``to`` (which stays applied), ``steps`` migrations, or ``all``.

    Exactly one of them must be given. Returns the IDs rolled back (or planned, on a dry run).
    """
    chosen = [x for x in (to is not None, steps is not None, all) if x]
    if len(chosen) != 1:
        raise MigrationError("rollback needs exactly one of --to ID, --steps N or --all")
    if steps is not None and (isinstance(steps, bool) or steps < 1):
        raise MigrationError(f"--steps must be a whole number >= 1, got {steps!r}")
    if to is not None:
        _check_id(to)
    with Runner(target_of(source), lock_wait=lock_wait) as runner, runner.locked():
        applied = set(runner.applied())
        order = [i for i in shipped_ids() if i in applied]  # dependency order
        if to is not None:
            if to not in applied:
                raise MigrationError(
                    f"--to {to!r} is not applied, so there is nothing to roll back to it "
                    f"(use `apply --to {to}`)"
                )
            plan = order[order.index(to) + 1 :]
        elif steps is not None:
            if steps > len(order):
                raise MigrationError(
                    f"--steps {steps} is more than the {len(order)} applied migration(s)"
                    " (use --all to roll back everything)"
                )
            plan = order[-steps:]
        else:
            plan = order
        plan.reverse()
        return plan if dry_run else _carry_out(plan, runner.rollback_one, "rolled back")


def _carry_out(plan: list[str], step: Callable[[str], None], verb: str) -> list[str]:
    """``step`` for each ID of ``plan`` in order (apply or roll back; each migration is its own
    transaction). A failure names the ones this run already finished."""
    done: list[str] = []
    for mid in plan:
        try:
            step(mid)
        except MigrationError as exc:
            if not done:
                raise
            raise type(exc)(f"{exc} (this run already {verb}: {', '.join(done)})") from None
        done.append(mid)
    return done


def unlock(source: Source) -> int:
    """Remove a stale yoyo lock row; returns how many rows were removed."""
    with Runner(target_of(source)) as runner:
        return runner.unlock()
