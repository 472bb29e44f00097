"""A password put anywhere a user could put it never shows: not in an error, a repr, a log line,
a ConnectTimeout, ``pa-db settings`` (text and --json), ``pa-db migrate status --database`` or
``pa-db doctor``.

The canary is the password a user meant to give. It goes raw or percent-encoded into the userinfo,
into ``?password=`` (and the other secret parameters, in any case), after an extra ``/`` (so it
lands in the path), after an unencoded ``@`` (so it lands where the host goes), into a fragment,
and behind a mistyped separator. Extra characters around it include every URL delimiter.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import socket
from collections.abc import Iterator
from unittest import mock
from urllib.parse import quote

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from personal_assistant_db import ConfigurationError, ConnectError, Database, Settings
from personal_assistant_db.cli import main
from personal_assistant_db.logs import redact_secrets

CORE = "Kanary9zQ"  # what must never show
DELIMITERS = "@:/?#%&=+!$'()*,;[]~.-_ "
canaries = st.builds(
    lambda a, b: a + CORE + b,
    st.text(DELIMITERS + "aZ0", max_size=4),
    st.text(DELIMITERS + "aZ0", max_size=4),
)
SECRET_KEYS = ["password", "sslpassword", "oauth_client_secret", "PASSWORD", "Password"]
TEMPLATES = [
    "{s}://{u}:{p}@{h}/{d}",  # userinfo, raw
    "{s}://{u}:{e}@{h}/{d}",  # userinfo, percent-encoded
    "{s}://:{e}@{h}/{d}",  # no user name
    "{s}://{u}@{h}/{d}?{k}={p}",  # query, raw
    "{s}://{u}@{h}/{d}?application_name=x&{k}={e}",  # query, encoded
    "{s}://{u}:{e}@{h}/{d}?{k}={e}&sslmode=disable",
    "{s}:///{u}:{p}@{h}/{d}",  # an extra '/': the password lands in the path
    "{s}://{u}:{p}@{h}//{d}",
    "{s}://{u}:{e}@{h}/{d}#{p}",  # fragment
    "{s}://{u}:x@{p}@{h}/{d}",  # an unencoded '@': the rest lands where the host goes
    "{s}://{u}:{p}{h}/{d}",  # '@' forgotten: password and host run together
    "{s}//{u}:{p}@{h}/{d}",  # mistyped separators
    "{s}:/{u}:{p}@{h}/{d}",
    "{s}:{u}:{p}@{h}/{d}",
    "{s}:://{u}:{p}@{h}/{d}",
    "host={h} user={u} password={p} dbname={d}",  # a libpq keyword string, not a URL
]


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again on exit: connects are refused


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    with mock.patch.dict(os.environ, env, clear=True):
        yield


def cli_output(env: dict[str, str], *args: str) -> str:
    """``pa-db ARGS`` in-process: stdout and stderr (its logs included)."""
    out, err = io.StringIO(), io.StringIO()
    saved = structlog.get_config()  # main() configures structlog, as the host it is
    try:
        with environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        structlog.configure(**saved)
    text = out.getvalue() + err.getvalue()
    assert code in (0, 2), text
    if "--json" in args:
        json.loads(out.getvalue())  # the JSON stays JSON
    return text


async def start_and_fail(db: Database) -> str:
    with pytest.raises(ConnectError) as info:
        await db.start()
    return f"{info.value} {info.value!r} {info.value.cause}"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    template=st.sampled_from(TEMPLATES),
    scheme=st.sampled_from(["postgresql", "postgres", "postgresql+asyncpg", "PostgreSQL"]),
    canary=canaries,
    key=st.sampled_from(SECRET_KEYS),
)
def test_the_canary_never_shows(
    closed_port: int, template: str, scheme: str, canary: str, key: str
) -> None:
    host = f"127.0.0.1:{closed_port}"
    raw = template.format(
        s=scheme, u="app", p=canary, e=quote(canary, safe=""), h=host, d="app", k=key
    )
    env = {
        "DATABASE_URL": raw,
        "DB_ENV": "test",
        "DB_CONNECT_TIMEOUT": "1",
        "DB_CONNECT_RETRY_DEADLINE": "0.05",
        "DB_CONNECT_RETRY_INITIAL": "0.01",
        "DB_CONNECT_RETRY_MAX": "0.02",
        "DB_PASWORD": canary,  # an unknown variable, reported by name (never by value)
    }
    shown: list[str] = []
    with capture_logs() as logs:
        try:
            s = Settings.from_env(env)
        except ConfigurationError as exc:
            shown += [str(exc), repr(exc), json.dumps([vars(p) for p in exc.problems])]
        else:
            db = Database(s)
            shown += [repr(s), s.safe_url, repr(db)]
            shown.append(asyncio.run(start_and_fail(db)))
    shown.append(str(logs))
    shown.append(cli_output(env, "settings"))
    shown.append(cli_output(env, "settings", "--json"))
    shown.append(cli_output({}, "migrate", "status", "--database", raw))  # psycopg's path
    shown.append(cli_output(env, "doctor"))
    # The host's own log lines with the raw URL in free text, through redact_secrets.
    event = {"event": f"connecting to {raw} now", "dsn": raw, "detail": f"url={raw}"}
    if not any(c.isspace() for c in canary):  # a raw space ends a value in free text
        shown.append(str(redact_secrets(None, "info", event)))
    for text in shown:
        assert CORE not in text, text
