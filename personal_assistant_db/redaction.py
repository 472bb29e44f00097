"""Hiding secrets in free text: URLs and ``key=value`` connection strings inside any message.

``render_url`` (urls.py) is exact for a URL the package parsed. Text from elsewhere (an exception
message, a host's log line) may hold a URL in any shape, well-formed or not, so this errs on the
side of hiding. A database URL that the strict parser (urls.py) rejects is hidden whole after
``://``. In any other URL whose credentials cannot be told apart with certainty, everything
between ``://`` and its last ``@`` is hidden, user name included.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .urls import MASK, UrlError, is_public_param, looks_secret, parse_database_url

__all__ = ["redact_text"]

# scheme://user:pass word@ : a password may hold spaces, but not a line break.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)[^@/\n]*@")
# A URL-shaped token: from scheme:// to the next space (a quote may be part of a password).
_URL_TOKEN = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>[^\s<>`]*)")
# postgresql//user:pw@db, postgresql:/user:pw@db, postgresql:user:pw@db: a mistyped separator.
_MISTYPED = re.compile(
    r"(?P<head>\bpostgres(?:ql)?(?:\+\w+)?(?!://)[:/]{1,4})[^\s<>`]*@", re.IGNORECASE
)
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::\d+)?")
_PARAM = re.compile(r"[?&;](?P<key>[^=&?#\s]+)=")
# password=secret in a libpq keyword/value string, "password": "x" in JSON, quoted values too.
_KEYWORD = re.compile(
    r"(?P<head>\b(?P<key>\w*(?:password|passwd|pwd|secret|token))[\"']?\s*[=:]\s*)"
    r"(?P<value>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)",
    re.IGNORECASE,
)


def _authority_end(rest: str) -> int:
    """Where a URL's authority ends if its userinfo holds no raw delimiter."""
    ends = [i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0]
    return min(ends) if ends else len(rest)


def _tail_is_clean(tail: str) -> bool:
    """True when no '@' after the authority could end a password: only in name=value pairs."""
    path, _, query = tail.partition("?")
    query, _, fragment = query.partition("#")
    if "@" in path or "@" in fragment:
        return False
    for part in query.split("&"):
        at = part.find("@")
        if at >= 0 and not 0 <= part.find("=") < at:
            return False
    return True


def _redact_userinfo(rest: str) -> str:
    """Hide everything up to the last '@' when the credentials' extent is ambiguous."""
    end = _authority_end(rest)
    authority, tail = rest[:end], rest[end:]
    if "@" not in rest:
        host, colon, port = authority.partition(":")
        if colon and not port.isdigit() and not authority.startswith("["):
            return f"{host}:{MASK}{tail}"  # user:secret with the '@' forgotten
        return rest
    clean = authority.count("@") <= 1 and _tail_is_clean(tail)
    if clean and ("@" in authority or _HOST_PORT.fullmatch(authority)):
        return rest  # user:***@host (hidden already), or host:port with a later mail=a@b
    return MASK + rest[rest.rfind("@") :]


def _redact_token(match: re.Match[str]) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    if scheme.lower().startswith("postgres"):
        try:
            parse_database_url(scheme + rest)
        except UrlError:
            return scheme + MASK  # a database URL we cannot read for certain: hide all of it
    rest = _redact_userinfo(rest)
    for param in _PARAM.finditer(rest):
        key = unquote(param.group("key"))
        if looks_secret(key) and not is_public_param(key):
            # A secret's value may hold a raw '&' or '#': hide the rest of the URL.
            rest = rest[: param.end()] + MASK
            break
    if scheme.lower().startswith("postgres") and "#" in rest:
        rest = rest.split("#", 1)[0] + "#" + MASK  # libpq has no fragments: a cut password
    return scheme + rest


def _redact_keyword(match: re.Match[str]) -> str:
    return match.group("head") + MASK


def redact_text(text: str) -> str:
    """``text`` with URL passwords, secret query values and ``password=...`` pairs as ``***``."""
    text = _MISTYPED.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    if "://" in text:
        text = _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", text)
        text = _URL_TOKEN.sub(_redact_token, text)
    return _KEYWORD.sub(_redact_keyword, text)
