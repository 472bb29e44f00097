"""squawk over the migrations is part of the test command (and of `pa-db migrate lint`)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from personal_assistant_db.migrate._lint import EXCLUDED_RULES, lint
from personal_assistant_db.migrate.source import shipped

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_migrations_lint_clean() -> None:
    findings = lint()
    assert findings == [], "\n".join(map(str, findings))


def test_lint_catches_a_blocking_migration(tmp_path: Path) -> None:
    """The check can fail: an index built without CONCURRENTLY on an existing table is flagged."""
    apply = tmp_path / "0099_bad.sql"
    rollback = tmp_path / "0099_bad.rollback.sql"
    apply.write_text("ALTER TABLE users ADD COLUMN nickname varchar(20) NOT NULL;\n")
    rollback.write_text("ALTER TABLE users DROP COLUMN nickname;\n")
    bad = dataclasses.replace(
        shipped()[0],
        id="0099_bad",
        apply_path=apply,
        rollback_path=rollback,
        apply_sql=apply.read_text(),
        rollback_sql=rollback.read_text(),
    )
    rules = {f.rule for f in lint((bad,))}
    assert "adding-required-field" in rules
    assert "ban-drop-column" in rules


def test_squawk_toml_excludes_the_same_rules_as_the_runner() -> None:
    config = tomllib.loads((ROOT / ".squawk.toml").read_text())
    assert sorted(config["excluded_rules"]) == sorted(EXCLUDED_RULES)
