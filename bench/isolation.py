"""Test isolation benchmark: a 200-test user suite, rolled back per test vs tables recreated.

    .venv/bin/python bench/isolation.py [--tests 200] [--repeat 3]

Writes one small app (five tables with foreign keys and indexes, as an auth schema has) and the
same test bodies twice into a temporary folder:

- ``rollback``: the package's pytest plugin; each test is marked ``pa_db_rollback`` and runs
  inside ``db.force_rollback()``; the tables are created once per run;
- ``recreate``: what users do without it: a function-scoped autouse fixture that drops and
  creates every table before each test (``metadata.drop_all`` + ``create_all``).

Each test inserts a user, two roles, their links and a note, then reads them back with a join.
Both suites run with ``python -m pytest`` in a subprocess on a fresh database of
$DATABASE_URL's server (else the embedded server), interleaved; medians of ``--repeat`` runs.
The figures: wall-clock time of the whole run (interpreter start and collection included, the
same in both), the time spent in the tests (setup, call and teardown, summed by a hook), per
test, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, server_url, table

from personal_assistant_db.testing import fresh_database

APP = """
import os
import sqlalchemy as sa
from personal_assistant_db import Database

db = Database.from_env({"DATABASE_URL": os.environ["PA_BENCH_URL"], "DB_ENV": "test"})
md = sa.MetaData()
users = sa.Table("b_users", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("email", sa.Text, nullable=False, unique=True),
                 sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now()))
roles = sa.Table("b_roles", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("name", sa.Text, nullable=False, unique=True))
user_roles = sa.Table("b_user_roles", md,
                      sa.Column("user_id", sa.ForeignKey("b_users.id", ondelete="CASCADE"),
                                primary_key=True),
                      sa.Column("role_id", sa.ForeignKey("b_roles.id"), primary_key=True))
notes = sa.Table("b_notes", md, sa.Column("id", sa.Integer, primary_key=True),
                 sa.Column("user_id", sa.ForeignKey("b_users.id"), index=True),
                 sa.Column("body", sa.Text))
tags = sa.Table("b_tags", md, sa.Column("note_id", sa.ForeignKey("b_notes.id"), primary_key=True),
                sa.Column("tag", sa.Text, primary_key=True, index=True))


async def create_all():
    async with db.begin() as conn:
        await conn.run_sync(md.drop_all)
        await conn.run_sync(md.create_all)
"""

CONFTEST = {
    "rollback": """
import pytest
from app import create_all, db


@pytest.fixture(scope="session")
async def pa_db_database():
    await db.start()
    await create_all()
    yield db
    await db.stop()
""",
    "recreate": """
import pytest
from app import create_all, db


@pytest.fixture(scope="session")
async def started():
    await db.start()
    yield db
    await db.stop()


@pytest.fixture(autouse=True)
async def fresh_tables(started):
    await create_all()
""",
}

BODY = """
async def test_{n}():
    user = await db.fetch_val(sa.insert(users).values(email="u{n}@x.y").returning(users.c.id))
    await db.execute(sa.insert(roles).values(id=1, name="admin"))
    await db.execute(sa.insert(roles).values(id=2, name="reader"))
    links = [{{"user_id": user, "role_id": r}} for r in (1, 2)]
    await db.execute_many(sa.insert(user_roles), links)
    await db.execute(sa.insert(notes).values(id=1, user_id=user, body="hello"))
    rows = await db.fetch_all(
        sa.select(roles.c.name).join(user_roles).where(user_roles.c.user_id == user)
        .order_by(roles.c.name)
    )
    assert [r.name for r in rows] == ["admin", "reader"]
"""

# Both suites: the time spent in tests (setup, call and teardown of each), written to a file,
# so the interpreter's start and collection (the same in both) can be told apart.
TIMING = """

import os

_spent = []


def pytest_runtest_logreport(report):
    _spent.append(report.duration)


def pytest_sessionfinish(session):
    with open(os.environ["PA_BENCH_SPENT"], "w") as out:
        out.write(str(sum(_spent)))
"""

INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
"""


def write_suite(folder: Path, mode: str, tests: int) -> None:
    folder.mkdir()
    (folder / "pytest.ini").write_text(INI)
    (folder / "app.py").write_text(APP)
    (folder / "conftest.py").write_text(CONFTEST[mode] + TIMING)
    head = "import pytest\nimport sqlalchemy as sa\n"
    head += "from app import db, notes, roles, user_roles, users\n"
    if mode == "rollback":
        head += "\npytestmark = pytest.mark.pa_db_rollback\n"
    (folder / "test_suite.py").write_text(head + "".join(BODY.format(n=n) for n in range(tests)))


def run_suite(folder: Path, url: str, tests: int) -> tuple[float, float]:
    """(wall seconds of the whole run, seconds spent in the tests' setup, call and teardown)."""
    spent = folder / "spent.txt"
    env = {**os.environ, "PA_BENCH_URL": url, "PA_BENCH_SPENT": str(spent)}
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0 or f"{tests} passed" not in done.stdout:
        raise SystemExit(f"{folder.name}: the suite failed\n{done.stdout[-3000:]}{done.stderr}")
    return seconds, float(spent.read_text())


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, fresh_database(server_url()) as url:
        folders = {mode: Path(tmp) / mode for mode in CONFTEST}
        for mode, folder in folders.items():
            write_suite(folder, mode, args.tests)
        runs: dict[str, list[tuple[float, float]]] = {mode: [] for mode in folders}
        for _ in range(args.repeat):
            for mode, folder in folders.items():
                runs[mode].append(run_suite(folder, url, args.tests))
    wall = {mode: median([r[0] for r in rs]) for mode, rs in runs.items()}
    spent = {mode: median([r[1] for r in rs]) for mode, rs in runs.items()}
    rows = [
        [
            mode,
            args.tests,
            f"{wall[mode]:.2f}",
            f"{spent[mode]:.2f}",
            f"{spent[mode] / args.tests * 1000:.1f}",
            " ".join(f"{w:.1f}/{t:.1f}" for w, t in runs[mode]),
        ]
        for mode in folders
    ]
    header = ["suite", "tests", "run s", "in tests s", "ms/test", "runs (run/in tests)"]
    print(table(header, rows))
    print(
        f"recreate / rollback: {spent['recreate'] / spent['rollback']:.2f}x time in tests, "
        f"{wall['recreate'] / wall['rollback']:.2f}x whole run (medians of {args.repeat})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    main(parser.parse_args())
