"""``pa-db migrate assess``: what each statement of a migration locks, rewrites and costs.

It works on a scratch database created on the same server (and dropped afterwards), never on the
target itself: the migrations before the assessed one are applied there first. Each statement of
a transactional migration then runs inside one open transaction, and after each one we read

- the relation locks our backend holds (``pg_locks``), keeping those this statement added;
- which existing tables or indexes got a new ``relfilenode`` (the statement rewrote them);
- its duration.

Then the transaction is rolled back. A ``-- transactional: false`` migration (CREATE INDEX
CONCURRENTLY) runs in autocommit, where locks are gone by the time a statement returns; its lock
column says so, and its own rollback file undoes it. The scratch database is empty, so durations
measure catalog work, not data volume.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from yoyo.migrations import read_sql_migration

from ..errors import UnknownMigration
from .ops import apply
from .runner import Runner
from .source import ShippedMigration, shipped, shipped_ids
from .target import Source, Target, scratch_database, target_of

__all__ = ["StatementImpact", "as_rows", "assess"]

# Table-level locks only: those are what block other sessions' reads and writes.
_LOCKS = """
    SELECT c.relname, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
    WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
      AND c.relkind IN ('r', 'p', 'm') AND c.relnamespace = current_schema()::regnamespace
"""
_STRENGTH = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
_FILENODES = """
    SELECT relname, relfilenode FROM pg_class
    WHERE relnamespace = current_schema()::regnamespace AND relkind IN ('r', 'i', 'm', 'p')
"""


@dataclass(frozen=True)
class StatementImpact:
    migration: str
    statement: str  # the statement's first line, shortened
    locks: tuple[str, ...]  # "ACCESS EXCLUSIVE users"
    rewritten: tuple[str, ...]  # relations whose relfilenode changed
    duration_ms: float
    transactional: bool


def assess(source: Source, migration_id: str | None = None) -> list[StatementImpact]:
    """Impacts of ``migration_id`` (default: every migration still pending on the target)."""
    target = target_of(source)
    ids = shipped_ids()
    if migration_id is not None:
        if migration_id not in ids:
            raise UnknownMigration(
                f"{migration_id!r} is not a migration in this package; known: {', '.join(ids)}"
            )
        chosen = [migration_id]
    else:
        with Runner(target) as runner:
            done = set(runner.applied())
        chosen = [i for i in ids if i not in done]
    by_id = {m.id: m for m in shipped()}
    impacts: list[StatementImpact] = []
    if not chosen:
        return impacts
    with scratch_database(target, prefix="pa_db_assess") as scratch:
        before = ids[: ids.index(chosen[0])]
        if before:
            apply(scratch, to=before[-1])
        for mid in chosen:
            impacts.extend(_measure(scratch, by_id[mid]))
            apply(scratch, to=mid)
    return impacts


def _measure(scratch: Target, migration: ShippedMigration) -> list[StatementImpact]:
    _, _, statements = read_sql_migration(str(migration.apply_path))
    impacts = []
    with scratch.connect(autocommit=not migration.transactional) as conn:
        held: set[tuple[str, str]] = set()
        # Tables created inside this migration are invisible to other sessions until it
        # commits, so only locks on tables that existed before it can block anyone.
        existing = dict(conn.execute(_FILENODES).fetchall())
        for statement in statements:
            nodes = dict(conn.execute(_FILENODES).fetchall())
            started = time.perf_counter()
            conn.execute(statement.encode())
            duration = (time.perf_counter() - started) * 1000
            after = dict(conn.execute(_FILENODES).fetchall())
            rewritten = tuple(sorted(r for r, n in nodes.items() if r in after and after[r] != n))
            if migration.transactional:
                now: set[tuple[str, str]] = set(conn.execute(_LOCKS).fetchall())
                locks = _strongest(now - held, existing=existing)
                held |= now
            else:
                locks = ("(not observable: runs outside a transaction)",)
            impacts.append(
                StatementImpact(
                    migration=migration.id,
                    statement=_first_line(statement),
                    locks=locks,
                    rewritten=rewritten,
                    duration_ms=round(duration, 3),
                    transactional=migration.transactional,
                )
            )
        if migration.transactional:
            conn.rollback()
        else:
            _, _, undo = read_sql_migration(str(migration.rollback_path))
            for statement in undo:
                conn.execute(statement.encode())
    return impacts


def _strongest(added: set[tuple[str, str]], *, existing: dict[str, int]) -> tuple[str, ...]:
    """The strongest newly taken lock per pre-existing table."""
    best: dict[str, str] = {}
    for rel, mode in added:
        if rel not in existing:
            continue
        if rel not in best or _STRENGTH.index(mode) > _STRENGTH.index(best[rel]):
            best[rel] = mode
    return tuple(f"{_mode(mode)} {rel}" for rel, mode in sorted(best.items()))


def _mode(mode: str) -> str:
    # pg_locks says "AccessExclusiveLock"; the docs and squawk say "ACCESS EXCLUSIVE".
    words: list[str] = []
    for ch in mode.removesuffix("Lock"):
        if ch.isupper() and words:
            words.append(" ")
        words.append(ch.upper())
    return "".join(words)


def _first_line(statement: str) -> str:
    lines = [
        ln.strip()
        for ln in statement.splitlines()
        if ln.strip() and not ln.strip().startswith("--")
    ]
    text = lines[0] if lines else statement.strip()
    return text if len(text) <= 72 else text[:69] + "..."


def as_rows(impacts: list[StatementImpact]) -> list[dict[str, Any]]:
    return [
        {
            "migration": i.migration,
            "statement": i.statement,
            "locks": list(i.locks),
            "rewritten": list(i.rewritten),
            "duration_ms": i.duration_ms,
            "transactional": i.transactional,
        }
        for i in impacts
    ]
