"""Cheap ways for a statement built per call to find its compiled entry.

SQLAlchemy's cache key is what ``StatementCache`` keys on, and it is exact, but three forms
people write pay more than they need to before it is even computed:

- ``sa.lambda_stmt(...)``: reading ``_execution_options`` or ``_propagate_attrs`` through the
  lambda element resolves it, which clones the whole statement to put this call's values in
  (about 80 us of a 135 us PK lookup). ``options_of`` reads them from the analysed statement
  that SQLAlchemy keeps per lambda and closure structure instead: the same options, no clone.
  ``lambda_key`` is the key SQLAlchemy's ``_gen_cache_key`` returns for a single lambda (its
  code, its class and the closure's structure, which the element computed when it was built)
  and the bound values it extracts, without the cache-key walk (7 us of the 19).
- ``sa.text(...)`` per call: its SQLAlchemy cache key is the string plus its bind parameters
  (``TextClause._traverse_internals``). When every bind parameter is exactly the plain one
  ``text()`` makes for a ``:name`` (no value, no type, not expanding: its whole ``__dict__`` is
  compared), the string alone decides the compiled form, and ``text_key`` returns it without
  walking the cache-key machinery. Anything else (``.bindparams(...)``, ``.columns(...)``,
  execution options) returns None and takes the cache-key path.
- a plain ``str``: ``StatementCache`` keeps one ``text()`` per string (``TextCache``), so the
  string is parsed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import text
from sqlalchemy.sql.elements import BindParameter, TextClause
from sqlalchemy.sql.lambdas import StatementLambdaElement

__all__ = ["TextCache", "lambda_key", "options_of", "text_key"]

_TEXT_LIMIT = 1024
_plain_binds: dict[str, dict[str, Any]] = {}


def options_of(statement: Any) -> Mapping[str, Any]:
    """The statement's execution options, without resolving a lambda statement."""
    if isinstance(statement, StatementLambdaElement):
        analysed: Any = statement._rec.expected_expr
        options: Mapping[str, Any] = analysed._execution_options
        return options
    found: Mapping[str, Any] = statement._execution_options
    return found


def lambda_key(statement: Any) -> tuple[tuple[Any, ...], list[Any]] | None:
    """(cache key, extracted bound values) of a single ``lambda_stmt``, as SQLAlchemy's
    ``StatementLambdaElement._gen_cache_key`` makes them; None for anything else (a lambda with
    added criteria, an uncacheable closure): use SQLAlchemy's cache key."""
    if type(statement) is not StatementLambdaElement or statement.parent_lambda is not None:
        return None
    closure = statement.closure_cache_key
    if not isinstance(closure, tuple):  # CacheConst.NO_CACHE
        return None
    return (statement.fn.__code__, StatementLambdaElement, *closure), statement._resolved_bindparams


def _plain_bind(name: str) -> dict[str, Any]:
    plain = _plain_binds.get(name)
    if plain is None:
        if len(_plain_binds) >= _TEXT_LIMIT:
            _plain_binds.clear()
        plain = _plain_binds[name] = dict(BindParameter(name, required=True).__dict__)
    return plain


def text_key(statement: Any) -> tuple[str, str] | None:
    """A cache key for a plain ``text()`` (its string), or None: use SQLAlchemy's cache key."""
    if type(statement) is not TextClause or statement._execution_options:
        return None
    for name, bind in statement._bindparams.items():
        if bind.__dict__ != _plain_bind(name):
            return None
    return ("text", statement.text)


class TextCache:
    """One ``text()`` per SQL string, so a string statement is parsed once."""

    def __init__(self) -> None:
        self._texts: dict[str, TextClause] = {}

    def get(self, sql: str) -> TextClause:
        found = self._texts.get(sql)
        if found is None:
            if len(self._texts) >= _TEXT_LIMIT:
                self._texts.clear()
            found = self._texts[sql] = text(sql)
        return found
