"""The package's layering, read from its source: which module may import which.

- the core (settings/, urls, redaction, pool, database, errors, failures, lifespan, logs, _sql,
  timeout_guards, http_errors) imports no subsystem at runtime; ``Database.health_app`` is the one
  documented convenience edge;
- ``health`` reaches into ``migrate`` only through ``migrate.history`` (no yoyo, no psycopg);
- nothing imports ``cli``; only the migration manifest tool may import ``testing``;
- ``migrations/`` is data: yoyo would take any ``.py`` file there for a migration;
- every name imported from another module of the package is in that module's ``__all__``.

Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "personal_assistant_db"
CORE = {
    *("settings", "urls", "pool", "database", "errors", "failures", "lifespan", "logs", "_sql"),
    *("redaction", "timeout_guards", "http_errors"),
    "replicas",
}
SUBSYSTEMS = {"health", "telemetry", "migrate", "doctor", "cli", "testing"}
_ROOT = "personal_assistant_db"


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted under the package ("health.checks")
    target: str  # imported module, dotted under the package ("migrate.history")
    names: tuple[str, ...]  # names taken with ``from target import ...``
    function: str | None  # enclosing function when the import is local


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _visit(
    node: ast.AST, source: str, package: list[str], function: str | None, edges: list[Edge]
) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            for other in child.orelse:
                _visit(other, source, package, function, edges)
            continue
        inner = (
            child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
        )
        if isinstance(child, ast.ImportFrom) and child.level:
            base = package[: len(package) - (child.level - 1)]
            names = tuple(a.name for a in child.names)
            if child.module is None:  # from . import x: x is a module
                edges.extend(Edge(source, ".".join([*base, n]), (), inner) for n in names)
            else:
                edges.append(Edge(source, ".".join([*base, child.module]), names, inner))
        elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith(_ROOT):
            target = (child.module or "").removeprefix(_ROOT).lstrip(".")
            edges.append(Edge(source, target, tuple(a.name for a in child.names), inner))
        elif isinstance(child, ast.Import):
            for alias in child.names:
                if alias.name.startswith(_ROOT):
                    target = alias.name.removeprefix(_ROOT).lstrip(".")
                    edges.append(Edge(source, target, (), inner))
        _visit(child, source, package, inner, edges)


def _edges() -> list[Edge]:
    edges: list[Edge] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = _module_name(path)
        package = source.split(".") if path.name == "__init__.py" else source.split(".")[:-1]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        _visit(tree, source, package if source else [], None, edges)
    return edges


EDGES = _edges()


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def test_the_graph_was_read() -> None:
    assert len(EDGES) > 100
    assert Edge("health.checks", "migrate.history", ("migration_status",), None) in EDGES


def test_core_imports_no_subsystem_at_runtime() -> None:
    bad = [
        e
        for e in EDGES
        if _top(e.source) in CORE
        and _top(e.target) in SUBSYSTEMS
        and not (e.source == "database" and e.function == "health_app" and e.target == "health")
    ]
    assert bad == []


def test_health_reaches_migrate_only_through_history() -> None:
    bad = [
        e
        for e in EDGES
        if _top(e.source) == "health"
        and (
            (_top(e.target) == "migrate" and e.target != "migrate.history")
            or _top(e.target) in {"doctor", "cli", "testing"}
        )
    ]
    assert bad == []


def test_nothing_imports_cli_or_testing() -> None:
    into_cli = [e for e in EDGES if _top(e.target) == "cli" and _top(e.source) != "cli"]
    into_testing = [
        e
        for e in EDGES
        if _top(e.target) == "testing"
        and _top(e.source) != "testing"
        and e.source != "migrate.manifest"
    ]
    assert into_cli == [] and into_testing == []


def test_migrations_folder_is_data_only() -> None:
    assert [p.name for p in (PACKAGE / "migrations").iterdir() if p.suffix == ".py"] == []


def _all_of(module: str) -> set[str] | None:
    parts = module.split(".") if module else []
    path = PACKAGE.joinpath(*parts)
    file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    for node in ast.parse(file.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return None


def test_cross_module_imports_are_public() -> None:
    missing = []
    for e in EDGES:
        if not e.names:
            continue
        exported = _all_of(e.target)
        for name in e.names:
            submodule = PACKAGE.joinpath(*e.target.split("."), name)
            if submodule.is_dir() or submodule.with_suffix(".py").is_file():
                continue  # ``from .health import alerts``-style module import
            if exported is None or name not in exported:
                missing.append(f"{e.source}: from {e.target} import {name}")
    assert missing == []


@pytest.mark.parametrize("module", ["assess", "lint", "verify", "apply", "migration_status"])
def test_migrate_facade_names_are_functions_whatever_was_imported_first(module: str) -> None:
    """Submodules are named apart from the facade's functions, so importing one never replaces
    ``personal_assistant_db.migrate.<name>`` with a module."""
    code = (
        "import importlib, pkgutil, personal_assistant_db.migrate as m;"
        "[importlib.import_module('personal_assistant_db.migrate.' + i.name)"
        " for i in pkgutil.iter_modules(m.__path__)];"
        f"from personal_assistant_db.migrate import {module} as f;"
        "assert callable(f) and not hasattr(f, '__path__') and type(f).__name__ == 'function', f"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


READY_PROBE = """
import asyncio, sys, time
import httpx
from personal_assistant_db import Database

async def main(url):
    db = Database.from_env({"DATABASE_URL": url, "DB_ENV": "test"})
    app = db.health_app(require_migrations=True)
    await db.start()
    try:
        before = set(sys.modules)
        began = time.perf_counter()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get("/ready")
        took = time.perf_counter() - began
        added = set(sys.modules) - before
        body = response.json()
        assert "migrations" in str(body), body
        print("RESULT", len(added), round(took, 4), sorted(m for m in added if m.split(".")[0] in
              {"psycopg", "yoyo", "sqlparse", "tabulate"} or m.endswith(".testing")))
    finally:
        await db.stop()

asyncio.run(main(sys.argv[1]))
"""


def test_readiness_with_migrations_loads_neither_psycopg_nor_yoyo(database_url: str) -> None:
    """A web process answering /health/ready (migrations required) never imports the migration
    tools: the check reads yoyo's table through ``migrate.history`` on the app's own engine."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", READY_PROBE, database_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [line] = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")]
    _count, _took, heavy = line.removeprefix("RESULT ").split(" ", 2)
    assert heavy == "[]", heavy
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert not {m for m in imported if m.split(".")[0] in {"psycopg", "yoyo"}}
