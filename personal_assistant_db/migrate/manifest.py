"""Maintenance tool: regenerate the MANIFEST (content hashes) and SNAPSHOTS.json.

Run it after a deliberate edit of a migration that no database has applied yet::

    python -m personal_assistant_db.migrate.manifest --write
    python -m personal_assistant_db.migrate.manifest --write --snapshots postgresql://...

``--snapshots`` applies the migrations one by one on a scratch database of that server (it needs
CREATEDB there) and records the catalog snapshot after each, which ``verify`` and the stairway
tests compare against. A test keeps both files current.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .ops import apply
from .snapshot import snapshot
from .source import MANIFEST, SNAPSHOTS, manifest_text, migrations_dir, shipped_ids
from .target import scratch_database, target_of

__all__ = ["build_snapshots", "main"]


def build_snapshots(server_url: str) -> dict[str, Any]:
    """Apply the migrations one by one on a fresh database; snapshot after each (and at base)."""
    result: dict[str, Any] = {}
    with scratch_database(target_of(server_url), prefix="pa_db_snapshots") as target:
        for mid in ("", *shipped_ids()):
            if mid:
                apply(target, to=mid)
            with target.connect() as conn:
                result[mid] = snapshot(conn)
    return result


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - maintenance tool
    """``--write`` rewrites MANIFEST; ``--snapshots SERVER_URL`` rewrites SNAPSHOTS.json too."""
    args = sys.argv[1:] if argv is None else argv
    text = manifest_text()
    if "--write" in args:
        (migrations_dir() / MANIFEST).write_text(text, encoding="utf-8")
    if "--snapshots" in args:
        snaps = build_snapshots(args[args.index("--snapshots") + 1])
        body = json.dumps(snaps, indent=1, sort_keys=True) + "\n"
        (migrations_dir() / SNAPSHOTS).write_text(body, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
