"""DATABASE_URL: the strict parser, the safe serializer, asyncpg/psycopg translation, redaction."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import URL

from personal_assistant_db.redaction import redact_text
from personal_assistant_db.urls import (
    UrlError,
    parse_database_url,
    render_url,
    to_async,
    to_sync,
)

names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=20)
anything = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)
hosts = st.one_of(
    st.just("127.0.0.1"),
    st.just("db.internal"),
    st.just("::1"),
    st.builds(lambda n: f"/var/run/{n}", names),  # unix-socket directories
)
queries = st.dictionaries(
    st.sampled_from(
        ["application_name", "options", "sslmode", "schema", "sslpassword", "password"]
    ),
    anything,
    max_size=3,
)


def build(
    scheme: str,
    user: str | None,
    password: str | None,
    host: str,
    port: int | None,
    db: str,
    query: dict[str, str],
) -> URL:
    socket = host.startswith("/")
    return URL.create(
        scheme,
        username=user,
        password=password,
        host=None if socket else host,
        port=port,
        database=db,
        query={**query, "host": host} if socket else query,
    )


url_parts = st.tuples(
    st.sampled_from(["postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg"]),
    st.none() | anything,
    st.none() | anything,
    hosts,
    st.none() | st.integers(1, 65535),
    anything,
    queries,
)


@given(url_parts)
def test_every_url_render_writes_parses_back_to_the_same_parts(parts: tuple) -> None:  # type: ignore[type-arg]
    url = build(*parts)
    parsed = parse_database_url(render_url(url, hide_secrets=False))
    assert parsed.drivername == "postgresql+asyncpg"
    assert parsed == to_async(url)
    sync = to_sync(parsed)
    assert sync.drivername == "postgresql+psycopg"
    assert to_async(sync) == parsed
    assert parse_database_url(render_url(sync, hide_secrets=False)) == parsed


@given(url_parts)
def test_the_shown_form_hides_the_password_and_secret_parameters(parts: tuple) -> None:  # type: ignore[type-arg]
    url = to_async(build(*parts))
    shown = render_url(url)
    back = parse_database_url(shown)
    assert back.password == (None if url.password is None else "***")
    assert back.query.get("sslpassword", "***") == "***"
    assert (back.username, back.host, back.port, back.database) == (
        url.username,
        url.host,
        url.port,
        url.database,
    )


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
        ("localhost:5432/db", "does not start with a scheme"),
        ("postgresql//u:hunter2secret@h/db", "separator after 'postgresql' is exactly '://'"),
        ("postgresql:/u:hunter2secret@h/db", "does not start with a scheme"),
        ("mysql://u:hunter2secret@h/db", "scheme 'mysql' is not supported"),
        ("hunter2secret://u@h/db", "^scheme is not supported"),
        ("postgresql://u:hunter2secret@h:notaport/db", "port that is not a number"),
        ("postgresql://u:hunter2secret@h:5432", "names no database"),
        ("postgresql://u:p@hunter2secret@h/db", r"more than one '@'.*%40"),
        ("postgresql:///u:hunter2secret@h/db", r"'@' after the host.*%40.*no extra '/'"),
        ("postgresql://u:hunter2/secret@h/db", "'@' or '/' in the password as %40 or %2F"),
        ("postgresql://u:1234/hunter2secret@h/db", "'@' after the host"),
        ("postgresql://u:hunter2#secret@h/db", "%23"),
        ("postgresql://u:hunter2?secret@h/db", "port that is not a number"),
        ("postgresql://u:hunter2 secret@h/db", "%20"),
        ("postgresql://u:100%hunter2secret@h/db", "%25"),
        ("postgresql://u@h/db?password=a&hunter2secret", "not name=value"),
        ("postgresql://u@h/db?hunter2secret=1", "libpq does not know"),
        ("postgresql://u@h/db?PASSWORD=hunter2secret", "did you mean password"),
        ("postgresql://u@h1:5432,h2:5433/db", r"\?host=h1:5432&host=h2:5432"),
        ("postgresql://u@ho$t/db", "not a host name"),
    ],
)
def test_bad_and_ambiguous_urls_get_a_clear_error_without_any_url_text(
    raw: str, message: str
) -> None:
    with pytest.raises(UrlError, match=message) as info:
        parse_database_url(raw)
    assert "hunter2" not in str(info.value)


def test_secret_query_parameters_are_hidden_and_others_shown() -> None:
    raw = "postgresql://u@h/d?sslpassword=pw3&application_name=shop&oauth_client_secret=pw4"
    shown = render_url(parse_database_url(raw))
    assert shown == (
        "postgresql+asyncpg://u@h/d?sslpassword=***&application_name=shop&oauth_client_secret=***"
    )


def test_a_query_password_becomes_the_password_so_sqlalchemy_hides_it_too() -> None:
    url = parse_database_url("postgresql://u:pw1@h/d?password=hunter2&application_name=shop")
    assert url.password == "hunter2" and "password" not in url.query  # libpq: the query wins
    assert to_sync(url).password == "hunter2"
    for shown in (render_url(url), repr(url), str(url), repr(to_sync(url))):
        assert "hunter2" not in shown and "application_name=shop" in shown


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("use postgresql://app:hunter2@db/app now", "use postgresql://app:***@db/app now"),
        ("x postgresql://app:p@hunter2@db/app", "x postgresql://***"),
        ("x postgresql:///app:hunter2@db/app", "x postgresql://***"),
        ("x postgresql://app:hun ter2@db/app", "x postgresql://app:***@db/app"),
        ("x postgresql://app:hun/ter2@db/app", "x postgresql://***"),
        ("x postgresql://app:hunter2db/app", "x postgresql://***"),
        ("x postgresql//app:hunter2@db/app", "x postgresql//***@db/app"),
        ("x mysql://app:p@hunter2@db/app", "x mysql://***@db/app"),
        ("x mysql:///app:hunter2@db/app", "x mysql://***@db/app"),
        ("x mysql://app:hun?ter2@db/app", "x mysql://app:***@db/app"),
        ("x postgresql://app:hun%40ter2@db/app", "x postgresql://app:***@db/app"),
        ("x postgres://u@db/app?PassWord=hunter2&sslmode=require", None),
        ("x postgres://u@db/app?sslpassword=hunter2#frag", None),
        ("dsn: host=db password=hunter2 user=app", "dsn: host=db password=*** user=app"),
        ("host=db password='hun ter2' user=app", "host=db password=*** user=app"),
        ('{"db_password": "hunter2"}', '{"db_password": ***}'),
    ],
)
def test_free_text_redaction_hides_passwords_in_any_url_shape(
    text: str, expected: str | None
) -> None:
    redacted = redact_text(text)
    assert "hunter2" not in redacted and "ter2" not in redacted
    if expected is not None:
        assert redacted == expected


def test_free_text_redaction_leaves_ordinary_urls_alone() -> None:
    text = "GET http://api:8080/users?mail=a@b.example&page=2 failed"
    assert redact_text(text) == text
