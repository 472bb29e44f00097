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
from .adoption.steps import (
    ADOPT_SOURCE,
    ADOPTION_IDS,
    CONTRACT_ID,
    CONTRACT_LOSSES,
    EXPAND_ID,
    covered_ids,
)
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
    adoption: str | None = None  # "expand applied, contract pending" / "adopted" (adopting.md)

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


def _adoption(applied: list[str] | set[str]) -> str | None:
    if CONTRACT_ID in applied:
        return "adopted (expand and contract applied)"
    if EXPAND_ID in applied:
        return "expand applied, contract pending: both app versions run; `pa-db migrate contract`"
    return None


def _report(applied: list[str], recorded: dict[str, str]) -> StatusReport:
    ids = shipped_ids()
    adoption = _adoption(applied)
    if adoption is not None:
        ids = (*ADOPTION_IDS, *ids)
    manifest = read_manifest()
    current = {m.id: m.sha256 for m in shipped()}
    drift: list[str] = []
    for mid in shipped_ids():
        if manifest.get(mid) != current[mid]:
            drift.append(f"{mid}: file content differs from the MANIFEST (package edited)")
    for mid in applied:
        if mid in recorded and mid in current and recorded[mid] != current[mid]:
            drift.append(f"{mid}: changed since it was applied (recorded sha256 differs)")
    return StatusReport(
        applied=tuple(applied),
        pending=tuple(i for i in ids if i not in set(applied) and i not in ADOPTION_IDS),
        unknown=tuple(i for i in applied if i not in set(ids)),
        drift=tuple(drift),
        adoption=adoption,
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
        if EXPAND_ID in done and CONTRACT_ID not in done:
            raise MigrationError(
                "this database is half-adopted (expand applied, contract pending): apply refuses"
                " until `pa-db migrate contract` has run (docs/adopting.md)"
            )
        plan = [i for i in ids if i not in done]
        if plan[:1] == [ids[0]] and _holds_legacy_users(runner):
            raise MigrationError(
                "this schema already holds ai_assistant's users table (users.hashed_password):"
                " adopt it in place with `pa-db migrate adopt --check`, then `pa-db migrate adopt`"
                " (docs/adopting.md); nothing was applied"
            )
        return plan if dry_run else _carry_out(plan, runner.apply_one, "applied")


def _holds_legacy_users(runner: Runner) -> bool:
    with runner.target.connect() as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('users')"
            " AND attname = 'hashed_password' AND NOT attisdropped"
        ).fetchone()
    return row is not None


def rollback(
    source: Source,
    *,
    to: str | None = None,
    steps: int | None = None,
    all: bool = False,
    dry_run: bool = False,
    lock_wait: float = 10.0,
    allow_lossy: bool = False,
) -> list[str]:
    """Roll back, newest first: to ``to`` (which stays applied), ``steps`` migrations, or ``all``.

    Exactly one of them must be given. Returns the IDs rolled back (or planned, on a dry run).
    On an adopted database the adoption steps take their place in the order (docs/adopting.md);
    rolling back contract needs ``allow_lossy``.
    """
    chosen = [x for x in (to is not None, steps is not None, all) if x]
    if len(chosen) != 1:
        raise MigrationError("rollback needs exactly one of --to ID, --steps N or --all")
    if steps is not None and (isinstance(steps, bool) or steps < 1):
        raise MigrationError(f"--steps must be a whole number >= 1, got {steps!r}")
    if to is not None and to not in ADOPTION_IDS:
        _check_id(to)
    runner_ = Runner(target_of(source), lock_wait=lock_wait, extra_sources=(ADOPT_SOURCE,))
    with runner_ as runner, runner.locked():
        applied = set(runner.applied())
        order = _rollback_order(applied)
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
        if CONTRACT_ID in plan and not allow_lossy and not dry_run:
            raise MigrationError(
                f"rolling back {CONTRACT_ID} cannot restore {CONTRACT_LOSSES}; pass --allow-lossy"
                " to go ahead (nothing was rolled back)"
            )
        return plan if dry_run else _carry_out(plan, runner.rollback_one, "rolled back")


def _rollback_order(applied: set[str]) -> list[str]:
    """Applied IDs in dependency order. On an adopted database the package migrations that
    contract recorded are not rolled back one by one (their rollbacks drop the app's tables):
    the adoption steps stand in for them."""
    if EXPAND_ID not in applied:
        return [i for i in shipped_ids() if i in applied]
    covered = set(covered_ids())
    adopted = [i for i in ADOPTION_IDS if i in applied]
    return adopted + [i for i in shipped_ids() if i in applied and i not in covered]


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
