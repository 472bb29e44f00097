"""The public API is exactly what __all__ says, sorted, and importing it does nothing."""

from __future__ import annotations

import subprocess
import sys

import personal_assistant_db


def test_all_is_sorted_and_complete() -> None:
    names = personal_assistant_db.__all__
    # isort-style order, as ruff's RUF022 keeps it: CONSTANTS, Classes, functions.
    assert names == sorted(
        names, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n)
    )
    public = {n for n in dir(personal_assistant_db) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(personal_assistant_db, n)).__name__ == "module"}
    assert set(names) == public - modules


def test_import_has_no_side_effects() -> None:
    """Importing the package configures nothing, starts no thread, opens no connection and loads
    no driver or migration tool: those arrive only when a Database starts or a command runs."""
    code = (
        "import sys, threading, structlog, personal_assistant_db;"
        "assert not structlog.is_configured(), 'structlog configured';"
        "assert threading.active_count() == 1, threading.enumerate();"
        "heavy = {'asyncpg', 'psycopg', 'yoyo', 'personal_assistant_db.testing',"
        " 'personal_assistant_db.models'};"
        "heavy &= set(sys.modules);"
        "assert not heavy, sorted(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_models_all_is_sorted_and_complete() -> None:
    """``personal_assistant_db.models`` is the other public surface (docs/models.md): Core tables
    and ORM classes, imported on their own."""
    from personal_assistant_db import models

    names = models.__all__
    assert names == sorted(names, key=lambda n: (0 if n[0].isupper() else 1, n))
    public = {n for n in dir(models) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(models, n)).__name__ == "module"}
    assert set(names) == public - modules - {"annotations"}
    assert set(models.metadata.tables) == {n for n in names if n.islower()} - {"metadata"}
