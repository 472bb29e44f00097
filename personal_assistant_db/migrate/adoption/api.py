"""``adopt`` and ``contract``: recognise, check, then run the yoyo step under yoyo's lock.

Both return data (``AdoptionReport``, ``ContractReport``); bad input raises ``MigrationError``
(exit 2 in the CLI) before anything is changed.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import psycopg.errors

from ...errors import MigrationError
from ..runner import Runner, describe
from ..target import Source, Target, target_of
from .check import find
from .layout import privileges, recognise
from .report import AdoptionReport, ContractReport
from .shape import TABLE_NAMES, columns_of, legacy_snapshot
from .steps import ADOPT_SOURCE, CONTRACT_ID, EXPAND_ID, RunOptions, options

__all__ = ["adopt", "adoption_state", "contract", "table_checksums"]


def adoption_state(conn: psycopg.Connection[Any]) -> tuple[str, ...]:
    """The adoption steps recorded in yoyo's history of the current schema."""
    row = conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()
    if row is None or row[0] is None:
        return ()
    rows = conn.execute(
        "SELECT migration_id FROM _yoyo_migration WHERE migration_id = ANY(%s)",
        ([EXPAND_ID, CONTRACT_ID],),
    ).fetchall()
    found = {str(r[0]) for r in rows}
    return tuple(i for i in (EXPAND_ID, CONTRACT_ID) if i in found)


def _schema(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    return str(row[0]) if row and row[0] else "?"


def adopt(
    source: Source,
    *,
    check: bool = False,
    batch_size: int = 5_000,
    lock_wait: float = 10.0,
) -> AdoptionReport:
    """Recognise the legacy layout, list the rows the package would refuse, and (unless
    ``check``) expand. Nothing is changed unless the layout is exactly the legacy one."""
    if isinstance(batch_size, bool) or batch_size < 1:
        raise MigrationError(f"--batch-size must be a whole number >= 1, got {batch_size!r}")
    target = target_of(source)
    began = time.perf_counter()
    try:
        return _adopt(target, check=check, batch_size=batch_size, lock_wait=lock_wait, began=began)
    except psycopg.errors.LockNotAvailable:
        raise MigrationError(
            f"another session held a lock longer than lock_timeout ({target.lock_timeout_ms} ms)"
            " while adoption read or changed the tables; nothing was changed; retry later"
        ) from None
    except psycopg.errors.QueryCanceled:
        raise MigrationError(
            f"adoption stopped at statement_timeout ({target.statement_timeout_ms} ms); nothing"
            " was changed. A large database needs more: raise DB_MIGRATE_STATEMENT_TIMEOUT_MS"
            " (0 = no limit) for this run"
        ) from None
    except psycopg.Error as exc:
        raise MigrationError(
            f"adoption could not run: {describe(exc)}; nothing was changed"
        ) from None


def _adopt(
    target: Target, *, check: bool, batch_size: int, lock_wait: float, began: float
) -> AdoptionReport:
    with target.connect() as conn:
        schema = _schema(conn)
        state = adoption_state(conn)
        if CONTRACT_ID in state:
            return AdoptionReport(
                "adopted", schema, "nothing to adopt: this database was adopted (contract applied)"
            )
        if EXPAND_ID in state:
            findings = tuple(find(conn))
            return AdoptionReport(
                "expanded",
                schema,
                "expand is already applied: both app versions can run; run"
                " `pa-db migrate contract` once the old app is gone",
                findings=findings,
                check=check,
            )
        layout = recognise(conn, schema)
        if layout.verdict == "package":
            return AdoptionReport(
                "package", schema, "nothing to adopt: this schema holds the package's own tables"
            )
        if layout.verdict != "legacy":
            return AdoptionReport(
                "unknown",
                schema,
                f"not the legacy layout: {len(layout.differences)} difference(s); nothing changed",
                differences=layout.differences,
                extras=layout.extras,
            )
        problems = privileges(conn, schema)
        if problems:
            return AdoptionReport(
                "refused", schema, "; ".join(problems) + "; nothing changed", extras=layout.extras
            )
        findings = tuple(find(conn))
    timings = {"check_s": round(time.perf_counter() - began, 3)}
    if check:
        decisions = sum(1 for f in findings if f.needs_decision)
        message = (
            "legacy layout recognised; adoption can go ahead"
            if not decisions
            else f"legacy layout recognised; {decisions} rule(s) need a decision before contract"
        )
        return AdoptionReport(
            "legacy",
            schema,
            message,
            extras=layout.extras,
            findings=findings,
            check=True,
            timings=timings,
        )
    opts = RunOptions(batch_size=batch_size)
    _run(target, EXPAND_ID, opts, lock_wait)
    timings["total_s"] = round(time.perf_counter() - began, 3)
    return AdoptionReport(
        "expanded",
        schema,
        "expand applied: the old app runs unchanged; run the new app with ?schema=pa_adopt;"
        " `pa-db migrate contract` once the old app is gone",
        extras=layout.extras,
        findings=findings,
        applied=(EXPAND_ID,),
        timings=timings,
    )


def _run(target: Target, mid: str, opts: RunOptions, lock_wait: float) -> None:
    runner_ = Runner(target, lock_wait=lock_wait, extra_sources=(ADOPT_SOURCE,))
    with runner_ as runner, runner.locked():
        if mid in runner.applied():
            return
        with options(opts):
            runner.apply_one(mid)


def _legacy_columns() -> set[str]:
    return {f"{t}.{c.name}" for t in TABLE_NAMES for c in columns_of(legacy_snapshot(), t)}


def contract(
    source: Source,
    *,
    accept_loss: tuple[str, ...] | list[str] = (),
    grant_package_permissions: bool = False,
    lock_wait: float = 10.0,
) -> ContractReport:
    """Remove the legacy shape. Refuses (``done=False``) while rows need a decision or a column
    would lose values that ``accept_loss`` does not name."""
    accepted = tuple(accept_loss)
    known = _legacy_columns()
    for item in accepted:
        if item not in known:
            raise MigrationError(
                f"--accept-loss {item!r} is not a legacy column; expected TABLE.COLUMN,"
                " e.g. security_events.ip_address"
            )
    target = target_of(source)
    with target.connect() as conn:
        state = adoption_state(conn)
        if CONTRACT_ID in state:
            raise MigrationError("contract is already applied: nothing to contract")
        if EXPAND_ID not in state:
            raise MigrationError(
                "expand is not applied here: run `pa-db migrate adopt` first"
                " (and `adopt --check` before it)"
            )
        findings = find(conn)
        referenced = conn.execute(
            "SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint"
            " WHERE contype = 'f' AND confrelid IN (to_regclass('user_roles'),"
            " to_regclass('role_permissions'))"
        ).fetchall()
        if referenced:
            names = ", ".join(str(r[0]) for r in referenced)
            raise MigrationError(
                f"foreign keys reference user_roles.id or role_permissions.id ({names}): the"
                " package keys these tables by their pair; drop or change those keys first"
            )
        try:
            pending = conn.execute(
                "SELECT count(*) FROM users WHERE _pa_password_hash IS NULL"
            ).fetchone()
        except psycopg.Error as exc:
            raise MigrationError(f"cannot read the expanded users table: {describe(exc)}") from None
    blocking = tuple(
        f for f in findings if f.needs_decision and not (f.loss and f.loss in accepted)
    )
    if pending and pending[0]:
        raise MigrationError(
            f"{pending[0]} users rows are not backfilled yet: run `pa-db migrate adopt` again"
        )
    if blocking:
        return ContractReport(
            done=False,
            message=f"contract refused: {len(blocking)} rule(s) need a decision; nothing changed",
            blocking=blocking,
        )
    opts = RunOptions(accept_loss=accepted, grant_package_permissions=grant_package_permissions)
    _run(target, CONTRACT_ID, opts, lock_wait)
    return ContractReport(
        done=True,
        message="contract applied: the schema is the package's; the old app can no longer run",
        dropped=tuple(opts.result.get("dropped", ())),
        moved=tuple(opts.result.get("moved", ())),
        accepted_loss=accepted,
        merged=tuple(opts.result.get("merged", ())),
        applied=(CONTRACT_ID,),
        swap_seconds=opts.result.get("swap_s"),
    )


def table_checksums(source: Source | psycopg.Connection[Any]) -> dict[str, str]:
    """Per-table checksums of the legacy columns (see ``checksum.py``)."""
    from .checksum import checksums

    if isinstance(source, psycopg.Connection):
        return checksums(source)
    with target_of(source).connect() as conn:
        return checksums(conn)
