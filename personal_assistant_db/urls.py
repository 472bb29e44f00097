"""DATABASE_URL: one strict parser, one safe serializer, and the asyncpg/psycopg translation.

The application talks to PostgreSQL through asyncpg (``postgresql+asyncpg://``); yoyo needs a
synchronous driver, psycopg 3 (``postgresql+psycopg://``). Both are derived from the one
``DATABASE_URL``, which is parsed here and nowhere else.

The parser is strict where drivers disagree. libpq and asyncpg split ``user:p@ss@db`` at different
``@`` signs, and ``postgresql:///app:secret@db/app`` is a valid URL whose database name holds the
password. Such URLs are rejected with a message that says how to write them (``@`` as ``%40``).
Messages are fixed text: they never contain any part of the URL.

Everything shown to people (logs, errors, ``repr``, ``pa-db settings``) is re-serialised from the
parsed parts by ``render_url``, with the password and every query value that may be a secret
replaced by ``***``. Unix-socket hosts are normalized to the ``?host=/dir`` form, which both
drivers understand.
"""

from __future__ import annotations

import difflib
import re
from urllib.parse import quote, unquote, unquote_plus

from sqlalchemy.engine import URL

__all__ = [
    "ASYNC_DRIVER",
    "KNOWN_PARAMS",
    "MASK",
    "SYNC_DRIVER",
    "UrlError",
    "is_public_param",
    "looks_secret",
    "parse_database_url",
    "render_url",
    "to_async",
    "to_sync",
]

ASYNC_DRIVER = "postgresql+asyncpg"
SYNC_DRIVER = "postgresql+psycopg"
ACCEPTED_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg")
# Other schemes people paste by mistake; only these are named back in an error.
_NAMED_SCHEMES = frozenset(
    {"mysql", "mariadb", "sqlite", "mssql", "oracle", "redis", "mongodb", "http", "https"}
    | {"postgresql+psycopg2", "postgresql+pg8000", "postgresql+asyncpg+psycopg"}
)
_SSL_TO_PSYCOPG = {"ssl": "sslmode"}
_SSL_TO_ASYNCPG = {"sslmode": "ssl"}
MASK = "***"

# Query parameters whose values are shown; the secret ones are known too, and shown as ***.
# Any other name is rejected: libpq (psycopg, yoyo) refuses unknown names, while asyncpg would
# send them to the server as settings.
_PUBLIC_PARAMS = frozenset(
    {
        # libpq connection keywords that are not secrets
        "host", "hostaddr", "port", "dbname", "user", "passfile", "require_auth",
        "channel_binding", "connect_timeout", "client_encoding", "options", "application_name",
        "fallback_application_name", "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "replication", "gssencmode", "sslmode",
        "sslnegotiation", "sslcompression", "sslcert", "sslkey", "sslcertmode", "sslrootcert",
        "sslcrl", "sslcrldir", "sslsni", "requirepeer", "ssl_min_protocol_version",
        "ssl_max_protocol_version", "krbsrvname", "gsslib", "gssdelegation", "service",
        "target_session_attrs", "load_balance_hosts", "oauth_issuer", "oauth_client_id",
        "oauth_scope",
        # asyncpg and SQLAlchemy's asyncpg dialect
        "ssl", "direct_tls", "prepared_statement_cache_size",
        # ours: the schema migrations go into
        "schema",
    }
)  # fmt: skip
_SECRET_PARAMS = frozenset({"password", "sslpassword", "oauth_client_secret"})
KNOWN_PARAMS = _PUBLIC_PARAMS | _SECRET_PARAMS
_SECRET_PARTS = ("pass", "pwd", "secret", "token", "credential", "auth", "api_key", "apikey")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_HOSTNAME = re.compile(r"[A-Za-z0-9._\-]+")
_IPV6 = re.compile(r"\[([0-9A-Fa-f:.]+)\](?::(.*))?")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_EXAMPLE = "postgresql://user:password@host:5432/dbname"


class UrlError(ValueError):
    """DATABASE_URL could not be understood. The message never contains any part of the URL."""


def is_public_param(name: str) -> bool:
    """True for query parameters whose value may be shown (never a password or a secret)."""
    return name.lower() in _PUBLIC_PARAMS and not looks_secret(name)


def looks_secret(name: str) -> bool:
    """True for parameter or field names that suggest a secret (password, sslpassword, token)."""
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_PARTS)


def parse_database_url(raw: str) -> URL:
    """Parse ``raw`` into an asyncpg URL, or raise UrlError with a message that echoes nothing."""
    text = raw.strip()
    if not text:
        raise UrlError("is empty")
    match = _SCHEME.match(text)
    if match is None:
        raise UrlError(
            f"does not start with a scheme and '://' (e.g. {_EXAMPLE}); "
            "check the separator after 'postgresql' is exactly '://'"
        )
    scheme = match.group(1).lower()
    if scheme not in ACCEPTED_SCHEMES:
        named = f" {scheme!r}" if scheme in _NAMED_SCHEMES else ""
        raise UrlError(f"scheme{named} is not supported")
    rest = text[match.end() :]
    if any(c.isspace() or not c.isprintable() for c in rest):
        raise UrlError("contains a space or control character: percent-encode it (space as %20)")
    if "#" in rest:
        raise UrlError("contains '#': write a '#' in the password as %23")
    if _BAD_ESCAPE.search(rest):
        raise UrlError("contains a '%' that does not start a %XX escape: write '%' as %25")
    rest, _, query_text = rest.partition("?")
    authority, _, path = rest.partition("/")
    if "@" in path:
        raise UrlError(
            "has an '@' after the host: write an '@' or '/' in the password as %40 or %2F, and "
            f"put user:password@ right after '//' (e.g. {_EXAMPLE}, no extra '/')"
        )
    if "/" in path:
        raise UrlError("has a '/' in the database name: write it as %2F (or remove the extra '/')")
    userinfo, _, hostport = authority.rpartition("@")
    if "@" in userinfo:
        raise UrlError(
            "has more than one '@' before the host: write an '@' in the user name or password "
            "as %40 (e.g. p%40ss for p@ss)"
        )
    username, colon, password = userinfo.partition(":")
    host, port = _host_and_port(hostport)
    query = _query(query_text)
    database = unquote(path)
    if not database:
        raise UrlError("names no database (the path after the host is empty)")
    url = URL.create(
        ASYNC_DRIVER,
        username=unquote(username) or None,
        password=unquote(password) if colon else None,
        host=host,
        port=port,
        database=database,
        query=query,
    )
    return to_async(url)


def _host_and_port(hostport: str) -> tuple[str | None, int | None]:
    if "," in hostport:
        raise UrlError("lists several hosts: write them as ?host=h1:5432&host=h2:5432")
    ipv6 = _IPV6.fullmatch(hostport)
    if ipv6:
        host, port_text = ipv6.group(1), ipv6.group(2)
    else:
        host, colon, port_text = hostport.partition(":")
        if ":" in port_text:
            raise UrlError("has more than one ':' after the host: write IPv6 hosts as [::1]")
        port_text = port_text if colon else None
        host = unquote(host)
        if host and not host.startswith("/") and not _HOSTNAME.fullmatch(host):
            raise UrlError(
                "host is not a host name (letters, digits, '.', '-'); a socket directory goes "
                "in ?host=/path, and an '@' or ':' in the password is written %40 or %3A"
            )
    port = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit() and 0 < int(port_text) < 65536):
            raise UrlError(
                "has a port that is not a number from 1 to 65535 (a '/', '?' or ':' in the "
                "password must be written %2F, %3F or %3A)"
            )
        port = int(port_text)
    return host or None, port


def _query(text: str) -> dict[str, str | tuple[str, ...]]:
    query: dict[str, list[str]] = {}
    for item in text.split("&") if text else []:
        key, eq, value = item.partition("=")
        key = unquote_plus(key)
        if not eq or not _PARAM_NAME.fullmatch(key):
            raise UrlError(
                "has a query part that is not name=value: write '&', '=' or '@' inside a value "
                "as %26, %3D or %40"
            )
        if key not in KNOWN_PARAMS:
            close = difflib.get_close_matches(key.lower(), sorted(KNOWN_PARAMS), n=1)
            raise UrlError(
                "has a query parameter that libpq does not know"
                + (f" (did you mean {close[0]}?)" if close else "")
                + "; known ones include sslmode, application_name, options, host and schema"
            )
        query.setdefault(key, []).append(unquote_plus(value))
    return {k: v[0] if len(v) == 1 else tuple(v) for k, v in query.items()}


def render_url(url: URL, *, hide_secrets: bool = True) -> str:
    """``url`` as text, every part percent-encoded; secrets (password, secret query values) as
    ``***`` unless ``hide_secrets=False``. ``parse_database_url`` reads the result back."""

    def enc(value: object, safe: str = "") -> str:
        return quote(str(value), safe=safe)

    text = f"{url.drivername}://"
    if url.username is not None or url.password is not None:
        text += enc(url.username or "")
        if url.password is not None:
            text += ":" + (MASK if hide_secrets else enc(url.password))
        text += "@"
    if url.host:
        text += f"[{url.host}]" if ":" in url.host else enc(url.host)
    if url.port is not None:
        text += f":{url.port}"
    text += "/" + enc(url.database or "")
    items = []
    for key, values in url.query.items():
        for value in (values,) if isinstance(values, str) else values:
            shown = MASK if hide_secrets and not is_public_param(key) else enc(value, "/:,")
            items.append(f"{enc(key)}={shown}")
    return text + ("?" + "&".join(items) if items else "")


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


def _password_from_query(url: URL) -> URL:
    """``?password=`` becomes the URL's password (it wins over the userinfo's, as in libpq and
    SQLAlchemy), so that SQLAlchemy's own ``repr`` of the URL or the engine hides it too."""
    value = url.query.get("password")
    if not isinstance(value, str):
        return url
    return url.set(password=value, query={k: v for k, v in url.query.items() if k != "password"})


def to_async(url: URL) -> URL:
    """The asyncpg form of any accepted URL."""
    url = _normalize_socket_host(_password_from_query(url.set(drivername=ASYNC_DRIVER)))
    return _rename_query(url, _SSL_TO_ASYNCPG)


def to_sync(url: URL) -> URL:
    """The psycopg 3 form (for yoyo) of any accepted URL."""
    url = _normalize_socket_host(_password_from_query(url.set(drivername=SYNC_DRIVER)))
    return _rename_query(url, _SSL_TO_PSYCOPG)
