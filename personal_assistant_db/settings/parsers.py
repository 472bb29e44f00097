"""Reading DB_* values: one parser per kind of value, unknown names, and scrubbed problems.

``model.py`` declares the settings; this module holds what turns environment text into values
and keeps a problem's text free of anything that could be the password.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import unquote

from sqlalchemy.engine import URL

from ..errors import SettingProblem
from ..logs import get_logger
from ..urls import UrlError, looks_secret, parse_database_url

__all__ = [
    "EXAMPLE_URL",
    "URL_EXPECTED",
    "ReadYourWrites",
    "app_name",
    "choice",
    "closest",
    "database_url",
    "decimal",
    "parse_bool",
    "read_your_writes",
    "replica_urls",
    "scrub",
    "secret",
    "warn_unknown",
    "whole",
]


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError


def whole(minimum: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if value < minimum:
            raise ValueError
        return value

    return parse


def decimal(minimum: float, *, strict: bool = False) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw.strip())
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError
        if value < minimum or (strict and value == minimum):
            raise ValueError
        return value

    return parse


def choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError
        return value

    return parse


def app_name(raw: str) -> str:
    value = raw.strip()
    if not value or len(value.encode()) > 63 or not value.isprintable():
        raise ValueError
    return value


def secret(raw: str) -> str:
    if len(raw) < 16:
        raise ValueError
    return raw


_warned_unknown: set[str] = set()  # process-wide: each unknown name is reported once


def warn_unknown(env: Mapping[str, str], known: Sequence[str]) -> None:
    """Log once per name for a ``DB_*`` variable that is not a setting (``DB_POOLSIZE``)."""
    for name in sorted(n for n in env if n.upper().startswith("DB_") and n not in known):
        if name in _warned_unknown:
            continue
        _warned_unknown.add(name)
        close = closest(name, known)
        get_logger().warning(
            "db.settings.unknown_variable",
            variable=name,
            did_you_mean=close,
            hint=f"{name} is not a personal_assistant_db setting and is ignored"
            + (f"; did you mean {close}?" if close else " (see docs/configuration.md)"),
        )


def closest(name: str, known: Sequence[str]) -> str | None:
    """The known variable ``name`` was most likely meant to be (difflib), or None."""
    close = difflib.get_close_matches(name.upper(), list(known), n=1, cutoff=0.6)
    return close[0] if close else None


class ReadYourWrites(str):
    """``DB_READ_YOUR_WRITES``, normalized: ``lsn``, ``off`` or ``window:<seconds>``."""

    __slots__ = ()

    @property
    def mode(self) -> str:
        """``lsn``, ``window`` or ``off``."""
        return self.partition(":")[0]

    @property
    def window(self) -> float:
        """Seconds of primary-only reads after a write (``window`` mode; else 0)."""
        mode, _, seconds = self.partition(":")
        return float(seconds) if mode == "window" else 0.0


def read_your_writes(raw: str) -> ReadYourWrites:
    """``lsn``, ``off`` or ``window:<seconds>`` (0 < seconds < 1 day), normalized."""
    value = raw.strip().lower()
    if value in {"lsn", "off"}:
        return ReadYourWrites(value)
    mode, _, seconds = value.partition(":")
    if mode != "window":
        raise ValueError
    window = float(seconds)
    if not 0 < window < 86_400:
        raise ValueError
    return ReadYourWrites(f"window:{window:g}")


def replica_urls(raw: str) -> tuple[tuple[URL, ...], list[SettingProblem]]:
    """Each comma-separated entry parsed like DATABASE_URL; a problem names the entry's position
    (never its text, which may hold a password)."""
    urls: list[URL] = []
    problems: list[SettingProblem] = []
    entries = raw.split(",")
    for position, entry in enumerate(entries, start=1):
        try:
            urls.append(parse_database_url(entry))
        except UrlError as exc:
            where = f"entry {position} of {len(entries)}"
            problems.append(SettingProblem("DATABASE_REPLICA_URLS", f"{where} {exc}", URL_EXPECTED))
    return tuple(urls), problems


def scrub(problems: list[SettingProblem], *raw_urls: str) -> list[SettingProblem]:
    """Belt and braces: no problem text may carry anything that could be a URL's password
    (userinfo up to the last '@', secret query values), even from a URL that did not parse."""
    candidates = set()
    for raw_url in raw_urls:
        rest = raw_url.split("://", 1)[-1]
        if "@" in rest:
            userinfo = rest.rsplit("@", 1)[0]
            candidates.update({userinfo, userinfo.split(":", 1)[-1]})
        for key, value in re.findall(r"[?&]([^=&#]*)=([^&#]*)", raw_url):
            if looks_secret(key):
                candidates.add(value)
    secrets = {x for c in candidates for x in (c, unquote(c)) if x}
    if not secrets:
        return problems
    scrubbed = []
    for p in problems:
        text = p.problem
        for value in sorted(secrets, key=len, reverse=True):
            text = text.replace(value, "***")
        scrubbed.append(SettingProblem(p.variable, text, p.expected))
    return scrubbed


EXAMPLE_URL = "postgresql://app:secret@db:5432/app"
URL_EXPECTED = (
    "postgresql://, postgres:// or postgresql+asyncpg:// with a database name, e.g. " + EXAMPLE_URL
)


def database_url(
    env: Mapping[str, str],
    name: str,
    expected: str,
    problems: list[SettingProblem],
    *,
    required: bool = False,
) -> URL | None:
    """The asyncpg URL in ``env[name]``, or None (unset, or a problem appended)."""
    raw = env.get(name, "").strip()
    if not raw:
        if required:
            problems.append(
                SettingProblem(name, "is not set", "postgresql://user:password@host:5432/dbname")
            )
        return None
    try:
        return parse_database_url(raw)
    except UrlError as exc:
        problems.append(SettingProblem(name, str(exc), expected))
        return None
