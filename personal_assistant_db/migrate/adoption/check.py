"""Finding the rows of a legacy database that the rules (rules.py) match, plus the RBAC merge.

Rows are named by primary key only, never by value.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from .report import Finding
from .rules import KEYS_SHOWN, PACKAGE_PERMISSIONS, RULES

__all__ = ["find"]


def find(conn: psycopg.Connection[Any]) -> list[Finding]:
    """Every rule that matches at least one row (in the current schema), plus the RBAC merge."""
    found: list[Finding] = []
    for rule in RULES:
        query = sql.SQL(
            "SELECT count(*), (array_agg(id ORDER BY id))[1:{}] FROM {} WHERE {}"
        ).format(sql.Literal(KEYS_SHOWN), sql.Identifier(rule.table), sql.SQL(rule.where))
        row = conn.execute(query).fetchone()
        if row is None or not row[0]:
            continue
        found.append(
            Finding(
                table=rule.table,
                rule=rule.rule,
                count=int(row[0]),
                keys=tuple(f"id={k}" for k in row[1] or ()),
                action=rule.action,
                decision=rule.decision,
                loss=rule.loss,
            )
        )
    names = [f"{r}:{a}" for r, a, _ in PACKAGE_PERMISSIONS]
    have = {
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM permissions WHERE name = ANY(%s)", (names,)
        ).fetchall()
    }
    missing = [n for n in names if n not in have]
    if missing:
        found.append(
            Finding(
                table="permissions",
                rule="package_permissions_missing",
                count=len(missing),
                keys=tuple(f"name={n}" for n in missing),
                action="contract adds these permissions; the app's roles, permissions and grants"
                " stay as they are, and no existing role gets them without"
                " --grant-package-permissions",
            )
        )
    return found
