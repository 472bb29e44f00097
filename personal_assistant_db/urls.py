"""DATABASE_URL parsing and translation between the asyncpg and psycopg forms.

The application talks to PostgreSQL through asyncpg (``postgresql+asyncpg://``); yoyo needs a
synchronous driver, psycopg 3 (``postgresql+psycopg://``). Both are derived from the one
``DATABASE_URL``. Unix-socket hosts are normalized to the ``?host=/dir`` query form, which both
drivers understand.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "ASYNC_DRIVER",
    "SYNC_DRIVER",
    "UrlError",
    "parse_database_url",
    "redact_url",
    "to_async",
    "to_sync",
]

ASYNC_DRIVER = "postgresql+asyncpg"
SYNC_DRIVER = "postgresql+psycopg"
ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")
_SSL_TO_PSYCOPG = {"ssl": "sslmode"}
_SSL_TO_ASYNCPG = {"sslmode": "ssl"}

# scheme://user:password@  -> scheme://user:***@ . The password may hold spaces (SQLAlchemy renders
# them raw) but not "/" or "@" (rendered %2F and %40), so "http://host:8080/x a@b" is left alone.
_USERINFO = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@/\n]*)@")


class UrlError(ValueError):
    """DATABASE_URL could not be understood. The message never contains the URL itself."""


def parse_database_url(raw: str) -> URL:
    """Parse ``raw`` into an asyncpg URL, or raise UrlError with a safe message."""
    text = raw.strip()
    if not text:
        raise UrlError("is empty")
    if "://" not in text:
        raise UrlError("is not a URL (no scheme://)")
    scheme = text.split("://", 1)[0].lower()
    if scheme not in ACCEPTED_SCHEMES:
        # The scheme is safe to show: it sits before any credentials.
        raise UrlError(f"scheme {scheme[:40]!r} is not supported")
    try:
        url = make_url(text)
        _ = url.port  # make_url parses the port lazily in some versions
    except (ArgumentError, ValueError) as exc:
        raise UrlError("could not be parsed (check the port and percent-encoding)") from exc
    if not url.database:
        raise UrlError("names no database (the path after the host is empty)")
    return to_async(url)


def _normalize_socket_host(url: URL) -> URL:
    host = url.host
    if host and "%2f" in host.lower():
        host = unquote(host)
    if host and host.startswith("/"):
        query = dict(url.query)
        query["host"] = host
        return url._replace(host=None).set(query=query)  # set() ignores host=None
    return url


def _rename_query(url: URL, mapping: dict[str, str]) -> URL:
    if not any(k in url.query for k in mapping):
        return url
    query = {mapping.get(k, k): v for k, v in url.query.items()}
    return url.set(query=query)


def to_async(url: URL) -> URL:
    """The asyncpg form of any accepted URL."""
    url = _normalize_socket_host(url.set(drivername=ASYNC_DRIVER))
    return _rename_query(url, _SSL_TO_ASYNCPG)


def to_sync(url: URL) -> URL:
    """The psycopg 3 form (for yoyo) of any accepted URL."""
    url = _normalize_socket_host(url.set(drivername=SYNC_DRIVER))
    return _rename_query(url, _SSL_TO_PSYCOPG)


def redact_url(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``."""
    return _USERINFO.sub(lambda m: f"{m.group('head')}***@", text)
