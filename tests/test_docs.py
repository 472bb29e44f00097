"""Docs stay current: every setting is documented, the README keeps its two commands."""

from __future__ import annotations

import re
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


def test_every_picture_the_docs_show_is_committed_and_small() -> None:
    """Screenshots and charts are part of the docs: present, and light enough for a repository."""
    shown = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            picture = (page.parent / target).resolve()
            assert picture.is_file(), f"{page.name} shows {target}, which is not committed"
            assert picture.stat().st_size < 150_000, f"{target} is {picture.stat().st_size} bytes"
            shown.append(picture.name)
    assert "dashboard.png" in shown
