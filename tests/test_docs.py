"""Docs stay current: every setting is documented, the README keeps its two commands."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from personal_assistant_db import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [
        f.metadata["env"]
        for f in fields(Settings)
        if "env" in f.metadata and f"`{f.metadata['env']}`" not in text
    ]
    assert missing == []


def test_readme_starts_with_the_demo_and_test_commands() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1 : lines.index("```bash") + 3]
    assert block[0].startswith("bash scripts/demo")
    assert block[1].startswith("bash scripts/test")
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test" in ci
