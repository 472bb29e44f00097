"""The shipped migrations: their IDs, their text, and the MANIFEST of content hashes.

The migrations live in ``personal_assistant_db/migrations/`` as package data (not a subpackage:
yoyo would take an ``__init__.py`` for a migration). yoyo records only a hash of each migration's
*ID*, so an edited, already-applied migration goes unnoticed by yoyo itself. The MANIFEST pins a
sha256 over each migration's apply and rollback text; a test keeps it current, and the runner
records the hash of what it applied so ``verify`` can tell when the package changed underneath.

Regenerate after a deliberate edit (only of a migration no database has applied yet) with the
maintenance tool in ``manifest.py``. This module is a leaf: it imports nothing of the package.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "MANIFEST",
    "SNAPSHOTS",
    "SOURCE",
    "ShippedMigration",
    "expected_snapshots",
    "manifest_text",
    "migrations_dir",
    "read_manifest",
    "shipped",
    "shipped_ids",
]

SOURCE = "package:personal_assistant_db:migrations"
MANIFEST = "MANIFEST"
SNAPSHOTS = "SNAPSHOTS.json"
_DEPENDS = re.compile(r"^\s*--\s*depends\s*:\s*(.*)$", re.MULTILINE)
_TRANSACTIONAL = re.compile(r"^\s*--\s*transactional\s*:\s*(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class ShippedMigration:
    """One migration as shipped: ID, apply and rollback SQL text, and whether yoyo wraps it."""

    id: str
    apply_path: Path
    rollback_path: Path
    apply_sql: str
    rollback_sql: str
    transactional: bool
    depends: tuple[str, ...]

    @property
    def sha256(self) -> str:
        """sha256 over the apply text, a NUL byte and the rollback text."""
        digest = hashlib.sha256(self.apply_sql.encode())
        digest.update(b"\0")
        digest.update(self.rollback_sql.encode())
        return digest.hexdigest()


def migrations_dir() -> Path:
    """The folder yoyo reads (``package:personal_assistant_db:migrations``)."""
    return Path(str(resources.files("personal_assistant_db").joinpath("migrations")))


@functools.cache
def shipped() -> tuple[ShippedMigration, ...]:
    """Every shipped migration, in apply order (dependencies first). Read once per process."""
    folder = migrations_dir()
    found: dict[str, ShippedMigration] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".py":
            raise RuntimeError(f"{path}: only .sql migrations are supported in this package")
        if path.suffix != ".sql" or path.name.endswith(".rollback.sql"):
            continue
        rollback = path.with_name(path.stem + ".rollback.sql")
        if not rollback.exists():
            raise RuntimeError(f"{path.name} has no paired {rollback.name}")
        text = path.read_text(encoding="utf-8")
        tx = _TRANSACTIONAL.search(text)
        depends = tuple(d for m in _DEPENDS.finditer(text) for d in m.group(1).split())
        found[path.stem] = ShippedMigration(
            id=path.stem,
            apply_path=path,
            rollback_path=rollback,
            apply_sql=text,
            rollback_sql=rollback.read_text(encoding="utf-8"),
            transactional=tx is None or tx.group(1).lower() != "false",
            depends=depends,
        )
    return _topological(found)


def _topological(found: dict[str, ShippedMigration]) -> tuple[ShippedMigration, ...]:
    order: list[ShippedMigration] = []
    done: set[str] = set()

    def visit(mid: str, trail: tuple[str, ...]) -> None:
        if mid in done:
            return
        if mid in trail:
            raise RuntimeError(f"migration dependency cycle: {' -> '.join((*trail, mid))}")
        if mid not in found:
            raise RuntimeError(f"{trail[-1]} depends on unknown migration {mid!r}")
        for dep in found[mid].depends:
            visit(dep, (*trail, mid))
        done.add(mid)
        order.append(found[mid])

    for mid in sorted(found):
        visit(mid, ())
    return tuple(order)


@functools.cache
def shipped_ids() -> tuple[str, ...]:
    """The shipped migration IDs in apply order."""
    return tuple(m.id for m in shipped())


def manifest_text() -> str:
    """The MANIFEST the current files call for: ``<sha256>  <id>`` per line, in apply order."""
    return "".join(f"{m.sha256}  {m.id}\n" for m in shipped())


def read_manifest() -> dict[str, str]:
    """The shipped MANIFEST as {id: sha256}."""
    path = migrations_dir() / MANIFEST
    pairs = (line.split() for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {mid: digest for digest, mid in pairs}


@functools.cache
def expected_snapshots() -> dict[str, Any]:
    """{last applied ID or "": normalized schema snapshot} for every prefix of the history."""
    path = migrations_dir() / SNAPSHOTS
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
