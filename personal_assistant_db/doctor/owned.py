"""What the package's own migrations own: the doctor never advises dropping it.

The shipped schema snapshots (``migrations/SNAPSHOTS.json``, one per prefix of the history) name
every index the migrations create, and the first snapshot an index appears in names the
migration that created it; that migration's leading comment says why it exists. An index is
owned when it carries one of those names in a schema whose ``_yoyo_migration`` table records one
of the shipped migrations (``public``, or the ``?schema=`` the migrations went to).
Dropping one would make ``pa-db migrate verify`` fail, and the next rollback or migration break.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .._sql import quote_ident
from ..migrate.source import expected_snapshots, shipped, shipped_ids

__all__ = ["OwnedIndex", "owned_index_names", "read_owned_schemas"]

_YOYO_SCHEMAS = text(
    "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = '_yoyo_migration' AND c.relkind IN ('r', 'p') ORDER BY 1"
)
_FIRST_SENTENCE = re.compile(r"(.+?\.)(?:\s|$)", re.S)


@dataclass(frozen=True)
class OwnedIndex:
    """An index a shipped migration creates, and why it is there."""

    name: str
    migration: str
    purpose: str

    @property
    def reason(self) -> str:
        return (
            f"created by migration {self.migration} ({self.purpose}); "
            "`pa-db migrate verify` expects it, so keep it"
        )


def _purpose(sql: str) -> str:
    lines = []
    for line in sql.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        body = stripped.lstrip("-").strip()
        if ":" in body.split(" ", 1)[0]:  # "depends:", "transactional:", "squawk-ignore..."
            continue
        lines.append(body)
    joined = " ".join(lines)
    match = _FIRST_SENTENCE.match(joined)
    return (match.group(1) if match else joined).rstrip(".") or "part of the shipped schema"


@functools.cache
def owned_index_names() -> dict[str, OwnedIndex]:
    """Index name -> what created it, from the shipped snapshots (read once per process)."""
    snapshots = expected_snapshots()
    sql = {m.id: m.apply_sql for m in shipped()}
    owned: dict[str, OwnedIndex] = {}
    for migration in shipped_ids():
        for name in snapshots.get(migration, {}).get("indexes", {}):
            if name not in owned:
                owned[name] = OwnedIndex(name, migration, _purpose(sql[migration]))
    return owned


async def read_owned_schemas(conn: AsyncConnection) -> set[str]:
    """Schemas where yoyo recorded at least one of the package's migrations."""
    ids = list(shipped_ids())
    found = set()
    for schema in (await conn.execute(_YOYO_SCHEMAS)).scalars():
        table = f"{quote_ident(schema)}._yoyo_migration"
        query = text(f"SELECT count(*) FROM {table} WHERE migration_id = ANY(:ids)")
        if (await conn.execute(query, {"ids": ids})).scalar_one():
            found.add(str(schema))
    return found
