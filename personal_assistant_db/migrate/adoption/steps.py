"""The adoption steps as yoyo sees them: IDs, the source folder, and the step callables.

``personal_assistant_db/adoption_steps/`` holds two yoyo Python migrations (package data, like
``migrations/``), ``adopt_0001_expand`` and ``adopt_0002_contract``; each is one step whose apply
and rollback are the functions here. Options of the run (batch size, accepted losses) reach them
through a context variable set by ``adopt()`` / ``contract()``: yoyo passes only the connection.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ADOPTED_TABLES",
    "ADOPTED_UP_TO",
    "ADOPTION_IDS",
    "ADOPT_SOURCE",
    "CONTRACT_ID",
    "CONTRACT_LOSSES",
    "EXPAND_ID",
    "TABLE_NAMES",
    "RunOptions",
    "adopted_view",
    "contract_apply",
    "contract_rollback",
    "covered_ids",
    "expand_apply",
    "expand_rollback",
    "options",
]

ADOPT_SOURCE = "package:personal_assistant_db:adoption_steps"
EXPAND_ID = "adopt_0001_expand"
CONTRACT_ID = "adopt_0002_contract"
ADOPTION_IDS = (EXPAND_ID, CONTRACT_ID)
TABLE_NAMES = (
    "roles",
    "permissions",
    "role_permissions",
    "users",
    "user_roles",
    "user_sessions",
    "auth_tokens",
    "mfa_configurations",
    "security_events",
    "access_audit_logs",
)
"""The adopted tables, parents before children (``shape`` re-exports it)."""
ADOPTED_TABLES = frozenset(TABLE_NAMES)
ADOPTED_UP_TO = "0009_app_column_indexes"
"""Contract leaves the schema of this prefix of the history, and records it as applied."""
CONTRACT_LOSSES = (
    "the raw tokens (auth_tokens.token, users.verification_token and password_reset_token: only"
    " their sha256 is kept, so the old app cannot match them), the plain backup codes (only"
    " their hashes), ip_address texts that were not addresses, unknown severities, the JSON"
    " text of device_info/event_data/trusted_devices as written (their values are kept),"
    " user_roles.id and role_permissions.id (new ids are issued)"
)
"""What rolling back contract cannot give back (it needs --allow-lossy)."""


def covered_ids() -> tuple[str, ...]:
    """The package migrations whose schema contract leaves (recorded as applied by it)."""
    from ..source import shipped_ids

    ids = shipped_ids()
    return ids[: ids.index(ADOPTED_UP_TO) + 1]


def adopted_view(snap: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A snapshot as ``verify`` compares it on an adopted database: the adopted tables keep their
    ``integer`` ids (widening would rewrite users and every app table that references it), so
    the id columns' type and their identity sequences are left out of the comparison."""
    out = {kind: dict(items) for kind, items in snap.items()}
    for key in list(out.get("columns", {})):
        table, _, column = key.partition(".")
        if column == "id" and table in ADOPTED_TABLES:
            out["columns"][key] = "(id: integer or bigint identity)"
    for key in list(out.get("sequences", {})):
        if key.removesuffix("_id_seq") in ADOPTED_TABLES:
            del out["sequences"][key]
    return out


@dataclass
class RunOptions:
    batch_size: int = 5_000
    accept_loss: tuple[str, ...] = ()
    grant_package_permissions: bool = False
    result: dict[str, Any] = field(default_factory=dict)


_OPTIONS: contextvars.ContextVar[RunOptions | None] = contextvars.ContextVar(
    "pa_db_adopt_options", default=None
)


def current() -> RunOptions:
    return _OPTIONS.get() or RunOptions()


@contextlib.contextmanager
def options(opts: RunOptions) -> Iterator[RunOptions]:
    token = _OPTIONS.set(opts)
    try:
        yield opts
    finally:
        _OPTIONS.reset(token)


def expand_apply(conn: Any) -> None:
    from .expand import apply_expand

    opts = current()
    apply_expand(
        conn, batch_size=opts.batch_size, progress=opts.result.setdefault("rows", {}).__setitem__
    )


def expand_rollback(conn: Any) -> None:
    from .expand import rollback_expand

    rollback_expand(conn)


def contract_apply(conn: Any) -> None:
    from .contract import apply_contract

    apply_contract(conn, current())


def contract_rollback(conn: Any) -> None:
    from .contract import rollback_contract

    rollback_contract(conn)
