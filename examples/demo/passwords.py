"""Password hashing with the standard library's scrypt, stored as a PHC-like string.

``$scrypt$ln=14,r=8,p=1$<salt>$<hash>`` (unpadded base64): it satisfies the schema's
``users_password_hash_format`` CHECK (``^\\$[a-z0-9-]+\\$``) and carries its own parameters,
so they can be raised later without breaking stored hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

LOG2_N = 14  # n = 16384, r = 8: 16 MiB and ~50 ms per hash, the usual interactive setting
R = 8
P = 1
_DKLEN = 32


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=2**log2_n,
        r=r,
        p=p,
        maxmem=2 * 128 * r * 2**log2_n,
        dklen=_DKLEN,
    )


def hash_password(password: str, *, log2_n: int = LOG2_N) -> str:
    """A fresh salted scrypt hash of ``password`` in ``$scrypt$...`` form."""
    salt = os.urandom(16)
    digest = _scrypt(password, salt, log2_n, R, P)
    return f"$scrypt$ln={log2_n},r={R},p={P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; False for any other or malformed hash."""
    try:
        _, scheme, params, salt, digest = stored.split("$")
        fields = dict(item.split("=", 1) for item in params.split(","))
        log2_n, r, p = int(fields["ln"]), int(fields["r"]), int(fields["p"])
    except (ValueError, KeyError):
        return False
    if scheme != "scrypt":
        return False
    actual = _scrypt(password, _unb64(salt), log2_n, r, p)
    return hmac.compare_digest(actual, _unb64(digest))
