"""What ``verify`` owns in a schema it shares with the app: the package's objects, nothing else.

An app keeps its own tables beside the package's (``todos`` next to ``users``), and extensions
put their objects wherever they are created. Neither is drift. The rule, applied to the catalog
snapshot of the schema against the one expected at the applied version:

- every object the migrations create must be there, exactly as created (missing or changed:
  drift);
- on the package's tables, an extra column or constraint is drift too: it changes which rows the
  package's code and models can write (a NOT NULL column without a default, a CHECK);
- anything else is the app's: its tables with their columns, constraints, indexes, triggers and
  sequences, its functions, types and views, and the indexes and triggers it adds to the
  package's tables. It is listed in the notes and left alone;
- objects an extension owns (``pg_depend`` deptype ``'e'``) never reach the comparison at all
  (snapshot.py leaves them out).
"""

from __future__ import annotations

import re
from collections import defaultdict

from .snapshot import Snapshot

__all__ = ["package_tables", "split_differences"]

_ON_TABLE = re.compile(r" ON (?:ONLY )?(\"(?:[^\"]|\"\")+\"|\S+) USING ")
_ROW_SHAPE = ("columns", "constraints")  # an extra one on a package table is drift
_ONE = {
    **{"columns": "column", "constraints": "constraint", "indexes": "index"},
    **{"triggers": "trigger", "functions": "function", "types": "type"},
    **{"sequences": "sequence", "views": "view"},
}


def package_tables(expected: Snapshot) -> frozenset[str]:
    """The tables the migrations create at this version."""
    return frozenset(key.split(".", 1)[0] for key in expected.get("columns", {}))


def _table_of(kind: str, key: str, definition: str) -> str | None:
    if kind in ("columns", "constraints", "triggers"):
        return key.split(".", 1)[0]
    if kind == "indexes":
        found = _ON_TABLE.search(definition)
        return found.group(1).strip('"') if found else None
    return None


def split_differences(expected: Snapshot, live: Snapshot) -> tuple[list[str], list[str]]:
    """(drift lines, notes): drift as ``- kind key: def`` / ``+ kind key: def`` (as
    ``snapshot.diff``), notes naming each of the app's objects that were left alone."""
    tables = package_tables(expected)
    drift: list[str] = []
    foreign: dict[str, list[str]] = defaultdict(list)
    for kind in sorted(set(expected) | set(live)):
        want, have = expected.get(kind, {}), live.get(kind, {})
        for key, definition in want.items():
            if have.get(key) != definition:
                drift.append(f"- {kind} {key}: {definition}")
        for key, definition in have.items():
            if want.get(key) == definition:
                continue
            table = _table_of(kind, key, definition)
            if key in want or (kind in _ROW_SHAPE and table in tables):
                drift.append(f"+ {kind} {key}: {definition}")
            elif table is not None and table not in tables:
                foreign[f"table {table}"].append(kind)
            elif table is not None:
                foreign[f"{_ONE[kind]} {key} on {table}"].append(kind)
            else:
                foreign[f"{_ONE.get(kind, kind)} {key}"].append(kind)
    notes = [
        f"not the package's, left alone: {name}" + _counted(kinds)
        for name, kinds in sorted(foreign.items())
    ]
    return sorted(drift), notes


def _counted(kinds: list[str]) -> str:
    if len(kinds) == 1:
        return ""
    counts: dict[str, int] = defaultdict(int)
    for kind in kinds:
        counts[kind] += 1
    return (
        " (" + ", ".join(f"{n} {k if n > 1 else _ONE[k]}" for k, n in sorted(counts.items())) + ")"
    )
