"""Secrets during adoption: hashed where the package keeps only a hash, never printed.

- ``auth_tokens.token``, ``users.verification_token`` and ``password_reset_token``: the package
  keeps the sha256 (hex) of a token; the app hashes what the client presents and looks it up, so
  every legacy token stays valid after adoption.
- ``mfa_configurations.backup_codes``: a JSON list of plain codes becomes a ``text[]`` of their
  sha256; a code is used once by removing its hash (``consume_backup_code_sql``).
- ``mfa_configurations.totp_secret`` and ``user_sessions.session_id`` stay as they are: the
  authenticator app needs the secret, and the package's schema keeps session ids.

The SQL functions here are created by expand in the adopted schema and dropped by contract (or by
rolling back expand).
"""

from __future__ import annotations

import hashlib

__all__ = ["CONSUME_BACKUP_CODE_SQL", "FUNCTIONS", "FUNCTION_NAMES", "hash_secret"]


def hash_secret(value: str) -> str:
    """sha256 hex of a token or backup code, as the package's schema stores it."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


CONSUME_BACKUP_CODE_SQL = (
    "UPDATE mfa_configurations SET backup_codes = array_remove(backup_codes, %(hash)s)"
    " WHERE user_id = %(user_id)s AND %(hash)s = ANY(backup_codes) RETURNING id"
)
"""Use a backup code once: one row back means the code was valid (and is now spent)."""

_IPV4 = r"^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$"

FUNCTIONS: tuple[str, ...] = (
    """CREATE OR REPLACE FUNCTION _pa_adopt_sha256(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT encode(sha256(convert_to(value, 'UTF8')), 'hex') $$""",
    """CREATE OR REPLACE FUNCTION _pa_adopt_nothing(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT NULL::text $$""",
    """CREATE OR REPLACE FUNCTION _pa_adopt_inet6(value text) RETURNS inet
LANGUAGE plpgsql IMMUTABLE STRICT AS
$$ BEGIN RETURN value::inet; EXCEPTION WHEN invalid_text_representation THEN RETURN NULL; END $$""",
    f"""CREATE OR REPLACE FUNCTION _pa_adopt_inet(value text) RETURNS inet
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS
$$ SELECT CASE WHEN value ~ '{_IPV4}' THEN value::inet
               WHEN value ~ '^[0-9A-Fa-f:.]+$' AND value LIKE '%:%' THEN _pa_adopt_inet6(value)
          END $$""",
    """CREATE OR REPLACE FUNCTION _pa_adopt_severity(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT CASE WHEN value IS NULL THEN 'info'
               WHEN value IN ('info', 'low', 'medium', 'high', 'critical') THEN value
               WHEN value = 'warning' THEN 'medium'
               ELSE 'info' END $$""",
    """CREATE OR REPLACE FUNCTION _pa_adopt_hash_codes(codes json) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT COALESCE(array_agg(_pa_adopt_sha256(e.code) ORDER BY e.n), '{}'::text[])
   FROM json_array_elements_text(
       CASE WHEN json_typeof(codes) = 'array' THEN codes ELSE '[]'::json END
   ) WITH ORDINALITY AS e(code, n) $$""",
    """CREATE OR REPLACE FUNCTION _pa_adopt_codes_kept(codes json, hashes text[]) RETURNS json
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
$$ SELECT COALESCE(json_agg(e.code ORDER BY e.n), '[]'::json)
   FROM json_array_elements_text(
       CASE WHEN json_typeof(codes) = 'array' THEN codes ELSE '[]'::json END
   ) WITH ORDINALITY AS e(code, n)
   WHERE _pa_adopt_sha256(e.code) = ANY(hashes) $$""",
)

FUNCTION_NAMES: tuple[str, ...] = (
    "_pa_adopt_codes_kept(json, text[])",
    "_pa_adopt_hash_codes(json)",
    "_pa_adopt_severity(text)",
    "_pa_adopt_inet(text)",
    "_pa_adopt_inet6(text)",
    "_pa_adopt_nothing(text)",
    "_pa_adopt_sha256(text)",
)
