"""DATABASE_URL parsing, asyncpg/psycopg translation and redaction."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from personal_assistant_db.urls import (
    UrlError,
    parse_database_url,
    redact_url,
    to_async,
    to_sync,
)

names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=20)
passwords = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)
hosts = st.one_of(
    st.just("127.0.0.1"),
    st.just("db.internal"),
    st.builds(lambda n: f"/var/run/{n}", names),  # unix-socket directories
)


def render(
    scheme: str, user: str, password: str | None, host: str, port: int | None, db: str
) -> str:
    url = URL.create(scheme, username=user, password=password, host=None, port=port, database=db)
    url = url.update_query_dict({"host": host}) if host.startswith("/") else url.set(host=host)
    return url.render_as_string(hide_password=False)


url_parts = st.tuples(
    st.sampled_from(["postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg"]),
    names,
    st.none() | passwords,
    hosts,
    st.none() | st.integers(1, 65535),
    names,
)


@given(url_parts)
def test_translation_round_trips(parts: tuple[str, str, str | None, str, int | None, str]) -> None:
    _scheme, user, password, _host, port, db = parts
    parsed = parse_database_url(render(*parts))
    assert parsed.drivername == "postgresql+asyncpg"
    assert (parsed.username, parsed.password, parsed.database, parsed.port) == (
        user,
        password,
        db,
        port,
    )
    sync = to_sync(parsed)
    assert sync.drivername == "postgresql+psycopg"
    assert to_async(sync) == parsed
    assert to_sync(to_async(sync)) == sync
    # The rendered text parses back to the same URL (passwords with @ : / % survive).
    assert parse_database_url(sync.render_as_string(hide_password=False)) == parsed


@given(url_parts)
def test_redaction_hides_every_password(
    parts: tuple[str, str, str | None, str, int | None, str],
) -> None:
    scheme = parts[0]
    text = render(*parts)
    hidden = to_async(parse_database_url(text)).set(drivername=scheme)
    expected = hidden.render_as_string(hide_password=True)
    assert redact_url(f"could not use {text} today") == f"could not use {expected} today"


def test_urls_with_ports_and_later_at_signs_are_left_alone() -> None:
    text = "GET http://api:8080/users?mail=a@b.example failed"
    assert redact_url(text) == text


def test_socket_host_forms_are_normalized() -> None:
    a = parse_database_url("postgresql://app@%2Fvar%2Frun%2Fpostgresql/app")
    b = parse_database_url("postgres://app@/app?host=/var/run/postgresql")
    assert a == b
    assert a.query["host"] == "/var/run/postgresql"
    assert to_sync(a).query["host"] == "/var/run/postgresql"


def test_sslmode_is_translated_for_each_driver() -> None:
    url = parse_database_url("postgresql://u@h/d?sslmode=require")
    assert url.query == {"ssl": "require"}
    assert to_sync(url).query == {"sslmode": "require"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "is empty"),
        ("localhost:5432/db", "no scheme"),
        ("mysql://u:hunter2secret@h/db", "scheme 'mysql' is not supported"),
        ("postgresql://u:hunter2secret@h:notaport/db", "could not be parsed"),
        ("postgresql://u:hunter2secret@h:5432", "names no database"),
    ],
)
def test_bad_urls_get_a_clear_error_without_the_password(raw: str, message: str) -> None:
    with pytest.raises(UrlError, match=message) as info:
        parse_database_url(raw)
    assert "hunter2secret" not in str(info.value)
