"""The shipped migration files: paired, package data only, pinned by MANIFEST and SNAPSHOTS.

No database needed: these guard the package itself.
"""

from __future__ import annotations

import itertools

from personal_assistant_db.migrate.source import (
    expected_snapshots,
    manifest_text,
    migrations_dir,
    read_manifest,
    shipped,
    shipped_ids,
)

REGENERATE = (
    "regenerate with: python -m personal_assistant_db.migrate.source --write "
    "--snapshots postgresql://postgres@127.0.0.1/postgres (never for an already-released migration)"
)


def test_manifest_matches_the_files() -> None:
    """Editing a migration without updating MANIFEST fails here (yoyo hashes only the ID)."""
    on_disk = (migrations_dir() / "MANIFEST").read_text(encoding="utf-8")
    assert on_disk == manifest_text(), REGENERATE


def test_manifest_covers_every_migration_exactly() -> None:
    assert list(read_manifest()) == list(shipped_ids())


def test_every_migration_has_a_non_empty_rollback() -> None:
    for m in shipped():
        statements = [
            line
            for line in m.rollback_sql.splitlines()
            if line.strip() and not line.strip().startswith("--")
        ]
        assert statements, f"{m.rollback_path.name} undoes nothing"


def test_folder_is_package_data_not_a_subpackage() -> None:
    """yoyo takes every .py in the folder as a migration, __init__.py too (docs/field-notes.md)."""
    names = {p.name for p in migrations_dir().iterdir()}
    assert not any(n.endswith(".py") for n in names)
    assert "__init__.py" not in names


def test_ids_form_one_dependency_chain() -> None:
    """Each migration depends on the one before: the stairway then walks a single history."""
    ms = shipped()
    assert ms[0].depends == ()
    for before, after in itertools.pairwise(ms):
        assert after.depends == (before.id,), after.id


def test_snapshots_exist_for_every_prefix() -> None:
    assert sorted(expected_snapshots()) == sorted(["", *shipped_ids()]), REGENERATE
    assert all(not v for v in expected_snapshots()[""].values())


def test_only_concurrent_index_migrations_are_non_transactional() -> None:
    for m in shipped():
        if not m.transactional:
            body = [ln for ln in m.apply_sql.splitlines() if ln.strip() and not ln.startswith("--")]
            assert all("CONCURRENTLY" in ln for ln in body), m.id
