"""SQL text helpers shared by the migration tools, the doctor and the readiness check."""

from __future__ import annotations

__all__ = ["qualified", "quote_ident"]


def quote_ident(name: str) -> str:
    """PostgreSQL identifier quoting: always quoted, embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    """``"schema"."name"``, both parts quoted."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"
