"""The fast path's compiled-statement cache: SQLAlchemy compiles, asyncpg executes.

A Core statement (or ``text()``) is compiled once per SQLAlchemy cache key with the engine's own
dialect, exactly as ``Connection.execute`` would compile it. The entry keeps the SQL, the
positional order of the binds, the bind processors and, per result shape, SQLAlchemy's own
``CursorResultMetaData`` (keys and result processors), so rows and parameters are the ones the
SQLAlchemy path would produce. Literal values inside a statement come from its cache key's
extracted parameters, as SQLAlchemy does; expanding ``IN`` goes through
``construct_expanded_state``.

Anything this cannot do exactly (ORM statements, Python-side column defaults, a statement's own
schema translate map, an uncacheable statement, DDL) is reported as ``None`` by
``StatementCache.get`` with a reason, and the caller falls back to the SQLAlchemy path. The
engine's own ``schema_translate_map`` (``?schema=``, app_schema.py) is fixed for the cache's
life, so it is rendered into the cached SQL once, as SQLAlchemy renders it per execution.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping, MutableMapping, Sequence
from functools import partial
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.engine import Row as SARow
from sqlalchemy.engine.cursor import CursorResultMetaData
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.lambdas import StatementLambdaElement

from .keys import TextCache, lambda_key, options_of, text_key

__all__ = ["Compiled", "Row", "StatementCache", "rowcount_of"]

_CACHE_LIMIT = 1024
_IDENTITY_LIMIT = 512
_ROWCOUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


class Row(SARow[Any]):
    """A result row: ``row.name``, ``row["name"]``, ``row[users.c.name]``, ``row[0]``; equal to
    SQLAlchemy's ``Row``.

    It *is* a SQLAlchemy ``Row`` (``row._mapping``, ``row._asdict()``, tuple equality), with
    string keys and column objects added to ``[]`` (looked up in ``row._mapping``).
    """

    __slots__ = ()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int | slice):
            return super().__getitem__(key)
        return self._mapping[key]


def rowcount_of(status: str | None) -> int:
    """The row count in a command status (``UPDATE 3`` -> 3), as SQLAlchemy's asyncpg cursor."""
    found = _ROWCOUNT.match(status or "")
    return int(found.group(1)) if found else -1


class _ResultContext:
    """Just what ``CursorResultMetaData`` reads from an execution context."""

    _translate_colname = None

    def __init__(self, compiled: SQLCompiler, dialect: Dialect) -> None:
        self.compiled = compiled
        self.dialect = dialect
        self.result_column_struct = (
            compiled._result_columns,
            compiled._ordered_columns,
            compiled._textual_ordered_columns,
            compiled._ad_hoc_textual,
            compiled._loose_column_name_matching,
        )

    def get_result_processor(self, type_: Any, colname: str, coltype: Any) -> Any:
        return type_._cached_result_processor(self.dialect, coltype)


class _ResultParent:
    def __init__(self, context: _ResultContext) -> None:
        self.context = context


class Compiled:
    """One compiled statement: SQL, bind order and processors, result shapes."""

    __slots__ = ("_context", "_shapes", "compiled", "expanding", "positiontup", "processors", "sql")

    def __init__(self, compiled: SQLCompiler, dialect: Dialect) -> None:
        self.compiled = compiled
        self.sql: str = compiled.string
        self.positiontup: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.processors: Mapping[str, Any] = compiled._bind_processors
        self.expanding = bool(compiled.literal_execute_params or compiled.post_compile_params)
        self._context = _ResultContext(compiled, dialect)
        # id(attributes) -> (attributes, metadata); the attributes are kept so the id stays unique
        self._shapes: dict[int, tuple[Any, CursorResultMetaData]] = {}

    def bind(
        self, params: Mapping[str, Any] | None, extracted: Sequence[Any] | None
    ) -> tuple[str, tuple[Any, ...]]:
        """(SQL, positional arguments) for one parameter set, as SQLAlchemy would send them."""
        compiled = self.compiled
        values: MutableMapping[str, Any] = compiled.construct_params(
            params, extracted_parameters=extracted, escape_names=False
        )
        sql, order, processors = self.sql, self.positiontup, self.processors
        bound: Mapping[str, Any] = values
        if self.expanding:
            state = compiled._process_parameters_for_postcompile(values)
            sql, order, bound = state.statement, tuple(state.positiontup or ()), state.parameters
            processors = {**processors, **state.processors}
        return sql, tuple(  # a tuple: what SQLAlchemy sends, and shows in error messages
            [processors[key](bound[key]) if key in processors else bound[key] for key in order]
        )

    def metadata(self, attributes: Any) -> CursorResultMetaData:
        """SQLAlchemy's result metadata for the driver's column description ``attributes``."""
        found = self._shapes.get(id(attributes))
        if found is not None and found[0] is attributes:
            return found[1]
        description = [(a.name, a.type.oid, None, None, None, None, None) for a in attributes]
        meta = CursorResultMetaData(_ResultParent(self._context), description)  # type: ignore[arg-type]
        if len(self._shapes) >= 64:
            self._shapes.clear()
        self._shapes[id(attributes)] = (attributes, meta)
        return meta

    def rows(self, attributes: Any, records: Sequence[Any]) -> list[Row]:
        meta = self.metadata(attributes)
        processors, index = meta._processors, meta._key_to_index
        return [Row(meta, processors, index, record) for record in records]

    def row(self, attributes: Any, record: Any) -> Row:
        meta = self.metadata(attributes)
        return Row(meta, meta._processors, meta._key_to_index, record)


class StatementCache:
    """Compiled statements of one dialect, keyed by SQLAlchemy cache key (and by identity).

    A statement seen before is found by identity (no cache key at all); one built per call by
    its cache key, or by its string for a plain ``text()`` (``keys.text_key``). The identity
    entries hold a weak reference: a statement built per call leaves when the caller drops it,
    so none is kept alive and no burst of frees lands on one unlucky query.
    """

    def __init__(
        self, dialect: Dialect, schema_translate_map: Mapping[str | None, str | None] | None = None
    ) -> None:
        self.dialect = dialect
        #: The engine's map (rendered into every entry's SQL), or None.
        self.schema_translate_map = dict(schema_translate_map) if schema_translate_map else None
        self._by_key: dict[Any, Compiled | str] = {}
        self._texts = TextCache()
        # id(statement) -> (weak reference, keys, many, entry or reason, extracted parameters)
        self._by_id: dict[int, tuple[Any, tuple[str, ...], bool, Compiled | str, Any]] = {}

    def get(
        self, statement: Any, keys: tuple[str, ...] = (), many: bool = False
    ) -> tuple[Compiled | str, Sequence[Any] | None]:
        """(entry, extracted parameters), or (reason, None) when the fast path cannot run it.

        ``keys``: the sorted parameter names (they decide an INSERT's or UPDATE's columns).
        """
        if isinstance(statement, str):
            statement = self._texts.get(statement)
        elif type(statement) is StatementLambdaElement:  # built per call by design
            return self._lookup(statement, keys, many)
        ident = id(statement)
        hit = self._by_id.get(ident)
        if hit is not None and hit[0]() is statement and hit[1] == keys and hit[2] == many:
            return hit[3], hit[4]
        entry, extracted = self._lookup(statement, keys, many)
        try:
            ref = weakref.ref(statement, partial(self._forget, ident))
        except TypeError:  # not weakly referenceable: found by key each time
            return entry, extracted
        if len(self._by_id) >= _IDENTITY_LIMIT:
            self._by_id.clear()
        self._by_id[ident] = (ref, keys, many, entry, extracted)
        return entry, extracted

    def _forget(self, ident: int, _: object = None) -> None:
        found = self._by_id.get(ident)
        if found is not None and found[0]() is None:
            del self._by_id[ident]

    def _lookup(
        self, statement: Any, keys: tuple[str, ...], many: bool
    ) -> tuple[Compiled | str, Sequence[Any] | None]:
        if not isinstance(statement, ClauseElement) or not isinstance(statement, Executable):
            return "not an executable statement", None
        if statement._propagate_attrs.get("compile_state_plugin") == "orm":
            return "ORM statement", None
        plain = text_key(statement)
        if plain is not None:
            return self._entry(statement, None, (plain, keys, many), keys, many), None
        found = lambda_key(statement)
        if found is not None:
            return self._lambda(statement, (found[0], keys, many), keys, many), found[1] or None
        cache_key = statement._generate_cache_key()
        if cache_key is None:
            return "uncacheable statement", None
        if options_of(statement).get("schema_translate_map"):
            return "schema_translate_map", None
        entry = self._entry(statement, cache_key, (cache_key.key, keys, many), keys, many)
        return entry, (cache_key[1] or None) if isinstance(entry, Compiled) else None

    def _lambda(
        self, statement: Any, key: Any, keys: tuple[str, ...], many: bool
    ) -> Compiled | str:
        """A single lambda's entry by ``keys.lambda_key`` (options and the cache key itself are
        read from SQLAlchemy only when the structure is new)."""
        entry = self._by_key.get(key)
        if entry is None:
            cache_key = statement._generate_cache_key()
            if cache_key is None:
                entry = "uncacheable statement"
            elif options_of(statement).get("schema_translate_map"):
                entry = "schema_translate_map"
            else:
                entry = self._compile(statement, cache_key, keys, many)
            if len(self._by_key) >= _CACHE_LIMIT:
                self._by_key.clear()
            self._by_key[key] = entry
        return entry

    def _entry(
        self, statement: Any, cache_key: Any, key: Any, keys: tuple[str, ...], many: bool
    ) -> Compiled | str:
        entry = self._by_key.get(key)
        if entry is None:
            entry = self._compile(statement, cache_key, keys, many)
            if len(self._by_key) >= _CACHE_LIMIT:
                self._by_key.clear()
            self._by_key[key] = entry
        return entry

    def _compile(
        self, statement: ClauseElement, cache_key: Any, keys: tuple[str, ...], many: bool
    ) -> Compiled | str:
        translate: dict[str, Any] = {}
        if self.schema_translate_map:
            translate = {
                "schema_translate_map": self.schema_translate_map,
                "render_schema_translate": True,
            }
        compiled = statement.compile(
            dialect=self.dialect,
            cache_key=cache_key,
            column_keys=list(keys),
            for_executemany=many,
            **translate,
        )
        if not isinstance(compiled, SQLCompiler) or not compiled.positional:
            return "not a SQL statement (DDL?)"
        if compiled.insert_prefetch or compiled.update_prefetch:
            return "Python-side column default"
        if compiled.schema_translate_map and not self.schema_translate_map:
            return "schema_translate_map"
        if many and (compiled.implicit_returning or compiled.effective_returning):
            return "executemany with RETURNING"
        if many and (compiled.literal_execute_params or compiled.post_compile_params):
            return "executemany with expanding parameters"
        return Compiled(compiled, self.dialect)
