"""What a span may say about a SQL statement: operation, table, and text without literals.

Bound parameters never reach a span (SQLAlchemy and asyncpg send them separately as ``$1``...).
Literals written into the SQL itself (``WHERE email = 'x@y'``) would, so ``redact_sql`` replaces
string, dollar-quoted, numeric and bit/hex literals with ``?`` and drops comments (which may hold
anything). Quoted identifiers and ``$n`` placeholders stay. Each distinct statement is analysed
once and cached by the caller, so none of this runs per query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["StatementInfo", "analyse", "redact_sql"]

_TOKENS = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<ident>"(?:[^"]|"")*(?:"|\Z))
    | (?P<string>[Ee]'(?:[^'\\]|''|\\.)*(?:'|\Z)|(?:[BbXxNn]|[Uu]&)?'(?:[^']|'')*(?:'|\Z))
    | (?P<dollar>\$\$.*?(?:\$\$|\Z)|\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*)\$.*?(?:\$(?P=tag)\$|\Z))
    | (?P<param>\$\d+)
    | (?P<word>[A-Za-z_][A-Za-z_0-9$]*)
    | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    """,
    re.VERBOSE | re.DOTALL,
)
_KEYWORD = re.compile(r"[A-Za-z]+")
_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z_0-9$]*)'
_QUALIFIED = rf"({_NAME}(?:\s*\.\s*{_NAME})?)"
_TARGETS = {
    "SELECT": re.compile(rf"\bFROM\s+{_QUALIFIED}", re.IGNORECASE),
    "DELETE": re.compile(rf"\bFROM\s+(?:ONLY\s+)?{_QUALIFIED}", re.IGNORECASE),
    "INSERT": re.compile(rf"\bINTO\s+{_QUALIFIED}", re.IGNORECASE),
    "UPDATE": re.compile(rf"^\s*UPDATE\s+(?:ONLY\s+)?{_QUALIFIED}", re.IGNORECASE),
}
_NOT_TABLES = frozenset({"SELECT", "LATERAL", "UNNEST", "GENERATE_SERIES", "ONLY"})


def redact_sql(statement: str) -> str:
    """``statement`` with every literal replaced by ``?`` and comments removed."""

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "comment":
            return " "
        if kind in ("string", "dollar", "number"):
            return "?"
        return match.group(0)

    return " ".join(_TOKENS.sub(replace, statement).split())


@dataclass(frozen=True)
class StatementInfo:
    """The cached facts about one statement."""

    operation: str
    collection: str | None
    text: str


def analyse(statement: str) -> StatementInfo:
    """Operation (first keyword, upper case), table when it is cheap to see, redacted text."""
    text = redact_sql(statement)
    first = _KEYWORD.match(text)
    operation = first.group(0).upper() if first else "OTHER"
    collection = None
    pattern = _TARGETS.get(operation)
    if pattern is not None:
        found = pattern.search(text)
        if found is not None:
            name = re.sub(r"\s+", "", found.group(1))
            if name.upper() not in _NOT_TABLES:
                collection = name.replace('"', "")
    return StatementInfo(operation=operation, collection=collection, text=text)
