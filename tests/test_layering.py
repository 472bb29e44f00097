"""The package's layering, read from its source: which module may import which.

- the core (settings/, urls, redaction, pool, database, errors, failures, lifespan, logs, _sql,
  timeout_guards, http_errors, pooler, engines, startup) imports no subsystem at runtime;
  ``Database.health_app`` is the one documented convenience edge;
- ``settings/`` imports only errors, logs and urls; ``engines.py`` alone creates engines;
- the modules that are handed their parts (``HANDED``) never hold the Database;
- ``health`` reaches into ``migrate`` only through ``migrate.history`` (no yoyo, no psycopg);
- nothing imports ``cli``; only the migration manifest tool may import ``testing``;
- ``models`` imports nothing of the package, and nothing in the package imports it;
- ``migrations/`` is data: yoyo would take any ``.py`` file there for a migration;
- every name imported from another module of the package is in that module's ``__all__``.

Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import subprocess
import sys
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from personal_assistant_db import Database

PACKAGE = Path(__file__).resolve().parent.parent / "personal_assistant_db"
CORE = {
    *("settings", "urls", "pool", "database", "errors", "failures", "lifespan", "logs", "_sql"),
    *("redaction", "timeout_guards", "http_errors", "pooler", "engines", "startup", "app_schema"),
    "replicas",
}
SUBSYSTEMS = {"health", "telemetry", "migrate", "doctor", "cli", "testing", "workers"}
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
    assert (
        Edge("health.checks", "migrate.history", ("MigrationStatus", "migration_status"), None)
        in EDGES
    )


def test_core_imports_no_subsystem_at_runtime() -> None:
    bad = [
        e
        for e in EDGES
        if _top(e.source) in CORE
        and _top(e.target) in SUBSYSTEMS
        and not (e.source == "database" and e.function == "health_app" and e.target == "health")
    ]
    assert bad == []


def test_workers_read_telemetry_and_never_the_health_app() -> None:
    """workers/ merges what telemetry measured; health calls it, never the reverse at runtime
    (it may use the history's data types, health.history)."""
    bad = [
        e
        for e in EDGES
        if _top(e.source) == "workers"
        and _top(e.target) in {"health", "migrate", "doctor", "cli", "testing"}
        and e.target != "health.history"
    ]
    assert bad == []


def test_settings_describe_and_build_nothing() -> None:
    """settings/ reads and checks values; what the driver gets is the engine builder's job
    (engines.py), so settings/ never imports the pooler, the pool or an engine."""
    bad = [
        e
        for e in EDGES
        if _top(e.source) == "settings"
        and _top(e.target) not in {"settings", "errors", "logs", "urls", "app_schema"}
    ]
    assert bad == []


def test_one_engine_builder() -> None:
    """Every AsyncEngine the package makes comes from engines.build_engine: no other module
    calls create_async_engine (the testing helpers included)."""
    calls = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if "create_async_engine(" in path.read_text(encoding="utf-8")
    ]
    assert calls == ["engines.py"]


#: Modules that are handed what they need (an engine, the settings, nodes, a meter ...):
#: they never hold the Database, not even in an annotation.
HANDED = (
    "engines.py",
    "startup.py",
    "settings",
    "fastpath/observed.py",
    "health/replica_lag.py",
    "health/query_latency.py",
    "telemetry/metrics.py",
    "telemetry/replicas.py",
)


@pytest.mark.parametrize("where", HANDED)
def test_handed_modules_never_hold_the_database(where: str) -> None:
    target = PACKAGE / where
    paths = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    holding = [
        e
        for e in EDGES
        if e.target == "database" and any(_module_name(p) == e.source for p in paths)
    ]
    mentions = [p.name for p in paths if "import Database" in p.read_text(encoding="utf-8")]
    assert holding == [] and mentions == []


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


def test_models_import_nothing_of_the_package_and_nothing_imports_them() -> None:
    """models/ is a leaf a host app imports on its own: loading the package never loads the ORM."""
    out = [e for e in EDGES if _top(e.source) == "models" and _top(e.target) != "models"]
    into = [e for e in EDGES if _top(e.target) == "models" and _top(e.source) != "models"]
    assert out == [] and into == []


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


# -- the statement path, traced ------------------------------------------------------------------
# The modules one ``db.fetch_one`` enters, in call order, read with sys.setprofile: an edge A -> B
# is a call from code in module A (the nearest package frame below) into module B. The walk
# starts at ``database`` (the user calls a Database method). One way means the graph is acyclic,
# by module and by subpackage: the executor never reaches back into ``database``, replica code
# never calls back into the fast path.

WALK_LIMIT = 6


def _package_module(frame: types.FrameType | None) -> str | None:
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name == _ROOT or name.startswith(_ROOT + "."):
            return name.removeprefix(_ROOT).lstrip(".") or "__init__"
        frame = frame.f_back
    return None


def _frame_of(frame: types.FrameType | None, module: str) -> types.FrameType | None:
    """The frame below the nearest frame of ``module`` (None when there is none)."""
    while frame is not None:
        if _package_module(frame) == module and (
            frame.f_globals.get("__name__", "").removeprefix(_ROOT).lstrip(".") == module
        ):
            return frame.f_back
        frame = frame.f_back
    return None


async def _walk(call: Callable[[], Awaitable[object]]) -> tuple[list[str], set[tuple[str, str]]]:
    """(modules entered in order, call edges between modules) while ``call()`` runs in a task
    of its own (other tasks on the loop, such as the lag monitor, are not counted)."""
    entered: list[str] = ["database"]
    edges: set[tuple[str, str]] = set()
    task: asyncio.Task[object] | None = None

    def profile(frame: types.FrameType, event: str, arg: object) -> None:
        if event != "call" or asyncio.current_task() is not task:
            return
        module = _package_module(frame)
        if module is None:
            return
        caller = _package_module(frame.f_back)
        if caller is None and len(entered) == 1:
            caller = "database"  # the Database method the user called
        if caller is not None and frame.f_code.co_flags & inspect.CO_COROUTINE:
            # An awaitable that module M created and handed to B (M -> B -> M's coroutine) runs
            # for M: B awaits it, B does not call into M. A plain function (a property such as
            # db.engine) called back stays a back-edge.
            below = _package_module(_frame_of(frame.f_back, caller))
            if below == module:
                caller = module
        if module not in entered:
            entered.append(module)
        if caller is not None and caller != module:  # None: a greenlet's first frame
            edges.add((caller, module))

    async def traced() -> object:
        sys.setprofile(profile)
        try:
            return await call()
        finally:
            sys.setprofile(None)

    task = asyncio.ensure_future(traced())
    await task
    return entered, edges


def _cycle(edges: set[tuple[str, str]]) -> list[str] | None:
    """A cycle in the directed graph, or None."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        if a != b:
            graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [*path, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])) is not None:
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])) is not None:
            return found
    return None


def _packages(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(_top(a), _top(b)) for a, b in edges if _top(a) != _top(b)}


def test_the_cycle_finder_sees_a_detour() -> None:
    """The check below can fail: the shape the review found (fastpath -> replicas -> fastpath,
    executor -> database) is a cycle, by module and by subpackage."""
    detour = {
        ("database", "fastpath.api"),
        ("fastpath.api", "replicas.replica_set"),
        ("replicas.replica_set", "fastpath.executor"),
        ("fastpath.executor", "database"),
    }
    assert _cycle(detour) == [
        "database",
        "fastpath.api",
        "replicas.replica_set",
        "fastpath.executor",
        "database",
    ]
    assert _cycle(_packages(detour)) is not None
    assert _cycle({("database", "fastpath.api"), ("fastpath.api", "fastpath.compiled")}) is None


async def test_fetch_one_walks_one_way_through_at_most_six_modules(db: Database) -> None:
    import sqlalchemy as sa

    statement = sa.select(sa.literal(1).label("one"))
    assert (await db.fetch_one(statement)) == (1,)  # compiled and prepared: the steady state
    entered, edges = await _walk(lambda: db.fetch_one(statement))
    assert len(entered) <= WALK_LIMIT, entered
    assert not [m for m in entered if _top(m) == "replicas"], entered  # no replica configured
    assert _cycle(edges) is None, (_cycle(edges), sorted(edges))
    assert _cycle(_packages(edges)) is None, sorted(_packages(edges))
    assert not [e for e in edges if e[1] == "database"], sorted(edges)


async def test_fetch_one_with_replicas_asks_the_replica_set_and_never_is_called_back(
    database_url: str,
) -> None:
    """With a replica configured (here the primary itself, which the lag monitor keeps out of
    rotation), the fast path asks replicas/ for a route; the calls still go one way."""
    import sqlalchemy as sa

    env = {"DATABASE_URL": database_url, "DATABASE_REPLICA_URLS": database_url, "DB_ENV": "test"}
    db = Database.from_env(env)
    await db.start()
    try:
        statement = sa.select(sa.literal(1).label("one"))
        assert (await db.fetch_one(statement)) == (1,)
        entered, edges = await _walk(lambda: db.fetch_one(statement))
    finally:
        await db.stop()
    assert "replicas.replica_set" in entered, entered
    assert _cycle(edges) is None, (_cycle(edges), sorted(edges))
    assert _cycle(_packages(edges)) is None, sorted(_packages(edges))
    assert not [e for e in edges if e[1] == "database"], sorted(edges)


def test_the_fast_path_never_imports_the_database_and_replicas_never_import_the_fast_path() -> None:
    """The static half of the one-way path (annotations under TYPE_CHECKING do not count)."""
    back = [
        e
        for e in EDGES
        if (_top(e.source) == "fastpath" and e.target == "database")
        or (_top(e.source) == "replicas" and _top(e.target) == "fastpath")
    ]
    assert back == []


async def test_fetch_one_with_telemetry_adds_only_the_observers(database_url: str) -> None:
    """Metrics and tracing on: the executor and the pool call telemetry's hooks (the query
    observer, the pool's metrics, the latency window), which call nothing back: still one way."""
    import sqlalchemy as sa

    from personal_assistant_db import Telemetry

    db = Database.from_env({"DATABASE_URL": database_url, "DB_ENV": "test"})
    telemetry = Telemetry(db, tracing=True)
    db.add_hooks(on_start=lambda _: telemetry.instrument())
    await db.start()
    try:
        statement = sa.select(sa.literal(1).label("one"))
        assert (await db.fetch_one(statement)) == (1,)
        entered, edges = await _walk(lambda: db.fetch_one(statement))
    finally:
        await db.stop()
        telemetry.close()
    hooks = {m for m in entered if _top(m) == "telemetry"}
    assert hooks <= {"telemetry.metrics", "telemetry.tracing", "telemetry.latency"}, entered
    # + fastpath.observed, the one wrapper that calls the observer
    assert len(entered) <= WALK_LIMIT + 1 + len(hooks), entered
    assert _cycle(edges) is None, (_cycle(edges), sorted(edges))
    assert _cycle(_packages(edges)) is None, sorted(_packages(edges))
    assert not [e for e in edges if _top(e[0]) == "telemetry" and _top(e[1]) != "telemetry"]
