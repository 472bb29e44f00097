"""Hypothesis strategies for legacy ai_assistant data (the layout of legacy_client.LEGACY_SQL).

No tests here.

``legacy_datasets()`` draws a whole database's worth of rows, every table, with explicit ids
(sparse, so "ids keep their values" and "sequences continue after the highest id" are tested):

- emails: unicode local parts and domains, and pairs that differ only in case (two accounts);
- NULL in every nullable column (each column is NULL in some examples);
- odd IPs in the VARCHAR(45) columns (``testclient``, ``''``, ``::1``, a CIDR, ``localhost``,
  ``999.1.1.1``); real addresses in the INET one;
- naive timestamps within two hours of DST changes (Europe and the US, both directions), where a
  wall-clock time is missing or happens twice;
- large JSON (a 40,000-element list, a 60 kB string, deep nesting) in ``event_data`` and the
  JSON lists of ``backup_codes`` / ``trusted_devices``;
- tokens of every ``token_type`` (refresh, access, reset, verification, NULL);
- the legal legacy oddities: two primary roles for one user, duplicate (user, role) pairs, NULL
  role descriptions, NULL ``device_info``, severity ``'warning'``, expiry before creation.

``insert(url, data)`` writes a drawn dataset (on top of ``create_legacy``'s RBAC seed) and moves
every serial sequence past its highest id, as the app's own inserts would have.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from hypothesis import strategies as st
from legacy_client import LEGACY_TABLES
from psycopg import sql
from psycopg.types.json import Json

Rows = dict[str, list[dict[str, Any]]]

JSON_COLUMNS = {
    ("user_sessions", "device_info"),
    ("mfa_configurations", "backup_codes"),
    ("mfa_configurations", "trusted_devices"),
    ("security_events", "event_data"),
}
# Wall-clock instants where clocks jump (naive UTC timestamps near them are the interesting ones
# once a time zone enters the picture: Europe/Berlin and America/New_York, 2024, both ways).
DST_CHANGES = [
    datetime(2024, 3, 31, 1, 0),
    datetime(2024, 10, 27, 1, 0),
    datetime(2024, 3, 10, 7, 0),
    datetime(2024, 11, 3, 6, 0),
    datetime(2024, 3, 31, 2, 30),
    datetime(2024, 10, 27, 2, 30),
]
ODD_IPS = [
    "testclient",
    "",
    "::1",
    "127.0.0.1",
    "192.0.2.17",
    "2001:db8::8a2e:370:7334",
    "::ffff:192.0.2.1",
    "192.0.2.0/24",
    "localhost",
    "999.1.1.1",
    "unknown",
    "0.0.0.0",  # noqa: S104 (data, not a bind address)
]
INET_IPS = ["127.0.0.1", "::1", "192.0.2.17", "2001:db8::1", "198.51.100.0/24", "::ffff:1.2.3.4"]
TOKEN_TYPES = ["refresh", "access", "reset", "verification", None]

# PostgreSQL text cannot hold NUL; everything else of Unicode (minus lone surrogates) goes.
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
naive_times = st.builds(
    lambda base, seconds, micro: base + timedelta(seconds=seconds, microseconds=micro),
    st.sampled_from(DST_CHANGES),
    st.integers(-7200, 7200),
    st.integers(0, 999_999),
)
_local = st.text(
    st.characters(
        codec="utf-8", exclude_characters="@ \t\r\n\x00", exclude_categories=["Cs", "Cc", "Zs"]
    ),
    min_size=1,
    max_size=12,
)
_domain = st.sampled_from(["example.org", "EXAMPLE.org", "bücher.example", "例え.jp", "x.io"])
emails = st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain)
big_json = st.one_of(
    st.just(list(range(40_000))),
    st.just({"blob": "x" * 60_000, "nested": [[[[{"k": "v"}]]]]}),
    st.just({"unicode": "ü€😀", "null": None, "float": 1.5e300, "neg": -0.0}),
)
small_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
json_values = st.one_of(small_json, big_json, st.just(Json(None)))  # JSON null, not SQL NULL
json_lists = st.lists(texts, max_size=12)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def legacy_datasets(draw: st.DrawFn, max_users: int = 6) -> Rows:
    """Rows for every legacy table (ids explicit); the RBAC seed's 3 roles have ids 1..3."""
    n = draw(st.integers(1, max_users))
    user_ids = sorted(draw(st.sets(st.integers(1, 10_000), min_size=n, max_size=n)))
    role_ids = [1, 2, 3]
    rows: Rows = {table: [] for table in LEGACY_TABLES}
    extra_role = draw(st.booleans())
    if extra_role:  # an app-made role: NULL description, a parent, a name the package may refuse
        rows["roles"].append(
            {
                "id": 50,
                "name": draw(st.sampled_from(["support", "Support Staff", "beta_tester"])),
                "description": None,
                "parent_role_id": draw(_maybe(st.sampled_from(role_ids))),
                "created_at": draw(_maybe(naive_times)),
                "updated_at": draw(_maybe(naive_times)),
            }
        )
        role_ids.append(50)
    seen_emails: list[str] = []
    phones = iter(
        draw(
            st.lists(
                st.from_regex(r"\+[0-9]{6,15}", fullmatch=True), min_size=n, max_size=n, unique=True
            )
        )
    )
    for uid in user_ids:
        if seen_emails and draw(st.booleans()):
            base = draw(st.sampled_from(seen_emails))
            email = draw(st.sampled_from([base.upper(), base.swapcase(), base.title()]))
            if email in seen_emails:
                email = draw(emails)
        else:
            email = draw(emails)
        if email in seen_emails:
            email = f"{uid}.{email}"
        seen_emails.append(email)
        rows["users"].append(
            {
                "id": uid,
                "email": email,
                "phone_number": draw(_maybe(st.just(next(phones)))),
                "full_name": draw(_maybe(texts)),
                "hashed_password": "$2b$12$"
                + draw(st.from_regex(r"[./A-Za-z0-9]{53}", fullmatch=True)),
                "is_active": draw(_maybe(st.booleans())),
                "is_verified": draw(_maybe(st.booleans())),
                "verification_token": draw(
                    _maybe(st.text("abcdef0123456789-_", min_size=8, max_size=40))
                ),
                "password_reset_token": draw(
                    _maybe(st.text("abcdef0123456789-_", min_size=8, max_size=40))
                ),
                "password_reset_expires": draw(_maybe(naive_times)),
                "last_login": draw(_maybe(naive_times)),
                "failed_login_attempts": draw(_maybe(st.integers(0, 20))),
                "locked_until": draw(_maybe(naive_times)),
                "created_at": draw(_maybe(naive_times)),
                "updated_at": draw(_maybe(naive_times)),
                "default_role_id": draw(_maybe(st.sampled_from(role_ids))),
                "role_assigned_at": draw(_maybe(naive_times)),
                "role_assigned_by": None,
            }
        )
    for user in rows["users"]:
        user["role_assigned_by"] = draw(_maybe(st.sampled_from(user_ids)))
    next_id = iter(range(1, 10_000))
    for uid in user_ids:
        # Several roles, maybe the same one twice, maybe two marked primary.
        for role in draw(st.lists(st.sampled_from(role_ids), max_size=3)):
            rows["user_roles"].append(
                {
                    "id": next(next_id) * 3,
                    "user_id": uid,
                    "role_id": role,
                    "is_primary": draw(_maybe(st.booleans())),
                    "granted_by": draw(_maybe(st.sampled_from(user_ids))),
                    "granted_at": draw(_maybe(naive_times)),
                    "expires_at": draw(_maybe(naive_times)),
                }
            )
        for _ in range(draw(st.integers(0, 2))):
            created = draw(_maybe(naive_times))
            rows["user_sessions"].append(
                {
                    "id": next(next_id) * 3 + 1,
                    "user_id": uid,
                    "session_id": draw(st.text("0123456789abcdef", min_size=16, max_size=64))
                    + f"-{next(next_id)}",
                    "device_info": draw(
                        _maybe(st.one_of(small_json, st.just(Json({"os": "ios"}))))
                    ),
                    "ip_address": draw(_maybe(st.sampled_from(ODD_IPS))),
                    "user_agent": draw(_maybe(texts)),
                    "created_at": created,
                    "last_accessed": draw(_maybe(naive_times)),
                    "expires_at": draw(naive_times),
                    "is_active": draw(_maybe(st.booleans())),
                }
            )
        for _ in range(draw(st.integers(0, 3))):
            rows["auth_tokens"].append(
                {
                    "id": next(next_id) * 3 + 2,
                    "user_id": uid,
                    "token": draw(
                        st.text(
                            st.characters(codec="ascii", min_codepoint=33, max_codepoint=126),
                            min_size=20,
                            max_size=200,
                        )
                    )
                    + f"-{uid}-{len(rows['auth_tokens'])}",
                    "token_type": draw(st.sampled_from(TOKEN_TYPES)),
                    "expires_at": draw(naive_times),
                    "is_revoked": draw(_maybe(st.booleans())),
                    "created_at": draw(_maybe(naive_times)),
                    "last_used_at": draw(_maybe(naive_times)),
                }
            )
        if draw(st.booleans()):
            rows["mfa_configurations"].append(
                {
                    "id": uid + 20_000,
                    "user_id": uid,
                    "totp_secret": draw(_maybe(st.from_regex(r"[A-Z2-7]{16,32}", fullmatch=True))),
                    "totp_enabled": draw(_maybe(st.booleans())),
                    "sms_enabled": draw(_maybe(st.booleans())),
                    "phone_number": draw(_maybe(st.from_regex(r"\+[0-9]{6,15}", fullmatch=True))),
                    "backup_codes": draw(_maybe(json_lists)),
                    "trusted_devices": draw(
                        _maybe(st.one_of(json_lists, st.just([{"id": "d1", "name": "Pixel"}])))
                    ),
                    "created_at": draw(_maybe(naive_times)),
                    "updated_at": draw(_maybe(naive_times)),
                }
            )
    for i in range(draw(st.integers(0, 4))):
        rows["security_events"].append(
            {
                "id": 100 + i * 7,
                "user_id": draw(_maybe(st.sampled_from(user_ids))),
                "event_type": draw(
                    st.sampled_from(
                        [
                            "login_success",
                            "mfa_totp_enabled",
                            "mfa_backup_code_used",
                            "Password Changed",
                        ]
                    )
                ),
                "event_data": draw(_maybe(json_values)),
                "severity": draw(_maybe(st.sampled_from(["info", "warning", "critical", "low"]))),
                "ip_address": draw(_maybe(st.sampled_from(ODD_IPS))),
                "user_agent": draw(_maybe(texts)),
                "created_at": draw(_maybe(naive_times)),
            }
        )
    for i in range(draw(st.integers(0, 3))):
        rows["access_audit_logs"].append(
            {
                "id": 200 + i * 5,
                "user_id": draw(st.sampled_from(user_ids)),
                "resource_type": draw(st.sampled_from(["memory", "task", "note"])),
                "resource_id": draw(_maybe(st.integers(-(2**31), 2**31 - 1))),
                "action": draw(st.sampled_from(["read", "write", "delete"])),
                "permission_granted": draw(st.booleans()),
                "roles_checked": draw(
                    _maybe(
                        st.lists(
                            st.sampled_from(["user", "premium", "administrator", "Ü"]), max_size=3
                        )
                    )
                ),
                "ip_address": draw(_maybe(st.sampled_from(INET_IPS))),
                "user_agent": draw(_maybe(texts)),
                "created_at": draw(_maybe(naive_times)),
            }
        )
    return rows


def _value(table: str, column: str, value: Any) -> Any:
    if (table, column) in JSON_COLUMNS and value is not None and not isinstance(value, Json):
        return Json(value)
    return value


def insert(url: str, data: Rows) -> None:
    """Write ``data`` (ids explicit) and set every serial sequence past its table's highest id."""
    with psycopg.connect(url) as conn:
        for table in LEGACY_TABLES:
            table_rows = data.get(table, [])
            if not table_rows:
                continue
            columns = [c for c in table_rows[0] if (table, c) != ("users", "role_assigned_by")]
            with conn.cursor() as cur:
                cur.executemany(
                    sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                        sql.Identifier(table),
                        sql.SQL(", ").join(map(sql.Identifier, columns)),
                        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                    ),
                    [[_value(table, c, row[c]) for c in columns] for row in table_rows],
                )
            if table == "users":  # a user may have been assigned a role by a later user
                with conn.cursor() as cur:
                    cur.executemany(
                        "UPDATE users SET role_assigned_by = %s WHERE id = %s",
                        [(r["role_assigned_by"], r["id"]) for r in table_rows],
                    )
        for table in LEGACY_TABLES:
            conn.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({t}, 'id'),"
                    " coalesce((SELECT max(id) FROM {i}), 0) + 1, false)"
                ).format(t=sql.Literal(table), i=sql.Identifier(table))
            )
