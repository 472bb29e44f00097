"""db.query.text never carries a literal: Hypothesis properties on redact_sql / analyse."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from personal_assistant_db.telemetry.sql import analyse, redact_sql

# Secrets are long enough and marked so that a hit cannot be an accident of the SQL around them.
secrets = st.text(alphabet=string.ascii_letters + string.digits + " @.-_'\\$;", min_size=4).map(
    lambda s: "zz" + s + "zz"
)


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@given(secrets)
def test_string_literals_are_redacted(secret: str) -> None:
    sql = f"SELECT id FROM users WHERE email = {quote(secret)} AND id = $1"
    redacted = redact_sql(sql)
    assert "zz" not in redacted
    assert redacted == "SELECT id FROM users WHERE email = ? AND id = $1"


@given(secrets)
def test_escape_strings_and_dollar_quotes_are_redacted(secret: str) -> None:
    escaped = "E'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"
    body = secret.replace("$", "")
    sql = f"INSERT INTO t (a, b, c) VALUES ({escaped}, $${body}$$, $tag${body}$tag$)"
    redacted = redact_sql(sql)
    assert "zz" not in redacted
    assert redacted == "INSERT INTO t (a, b, c) VALUES (?, ?, ?)"


@given(st.integers(min_value=0), st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_numbers_are_redacted_placeholders_kept(number: int, real: float) -> None:
    sql = f"SELECT * FROM t2 WHERE a = {number} AND b > {real!r} AND c = $12 AND d2 = $3"
    assert redact_sql(sql) == "SELECT * FROM t2 WHERE a = ? AND b > ? AND c = $12 AND d2 = $3"


@given(secrets)
def test_comments_are_dropped(secret: str) -> None:
    clean = secret.replace("*/", "").replace("\n", "")
    sql = f"/* {clean} */ SELECT 1 -- {clean}\nFROM t"
    assert redact_sql(sql) == "SELECT ? FROM t"


@given(st.text(max_size=200))
def test_redaction_is_idempotent_and_total(sql: str) -> None:
    once = redact_sql(sql)
    assert redact_sql(once) == once


def test_quoted_identifiers_are_kept() -> None:
    assert redact_sql('SELECT "Weird ""Name""" FROM "My Table"') == (
        'SELECT "Weird ""Name""" FROM "My Table"'
    )


def test_analyse_names_operation_and_table() -> None:
    assert analyse("select a from public.items where id = $1").collection == "public.items"
    assert analyse("INSERT INTO orders (id) VALUES ($1)").collection == "orders"
    assert analyse('UPDATE "Users" SET x = 1').collection == "Users"
    assert analyse("DELETE FROM ONLY logs WHERE t < now()").collection == "logs"
    info = analyse("  with x as (select 1) select * from x")
    assert (info.operation, info.collection) == ("WITH", None)
    assert analyse("SELECT 1").collection is None
    assert analyse("").operation == "OTHER"
