"""From environment text to field values: the profile, the URLs, then each ``DB_*`` variable.

Every problem is collected (one ConfigurationError names them all); the raw URL texts go back
to the caller so that no problem can echo a password (``parsers.scrub``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import Field
from typing import Any

from ..errors import SettingProblem
from ..urls import looks_secret
from .parsers import EXAMPLE_URL, URL_EXPECTED, database_url, replica_urls
from .profiles import PROFILES

__all__ = ["URL_VARIABLES", "read_values"]

URL_VARIABLES = ("DATABASE_URL", "DATABASE_MIGRATE_URL", "DATABASE_REPLICA_URLS")


def read_values(
    env: Mapping[str, str], declared: Iterable[Field[Any]]
) -> tuple[dict[str, Any], list[SettingProblem], tuple[str, ...]]:
    """(values for the fields ``env`` sets, the profile's defaults included; the problems; the
    raw URL texts). A field reads the variable named in its ``env`` metadata."""
    problems: list[SettingProblem] = []
    values: dict[str, Any] = {}

    raw_profile = env.get("DB_ENV", "production").strip().lower() or "production"
    if raw_profile not in PROFILES:
        problems.append(
            SettingProblem(
                "DB_ENV",
                f"unknown profile {raw_profile[:40]!r}",
                "development, test or production",
            )
        )
        raw_profile = "production"
    values["env"] = raw_profile
    values.update(PROFILES[raw_profile])

    raw_url = env.get("DATABASE_URL", "").strip()
    values["url"] = database_url(env, "DATABASE_URL", URL_EXPECTED, problems, required=True)
    raw_migrate = env.get("DATABASE_MIGRATE_URL", "").strip()
    values["migrate_url"] = database_url(
        env, "DATABASE_MIGRATE_URL", "a direct (not pooled) URL, e.g. " + EXAMPLE_URL, problems
    )
    raw_replicas = env.get("DATABASE_REPLICA_URLS", "")
    if raw_replicas.strip():
        values["replica_urls"], replica_problems = replica_urls(raw_replicas)
        problems += replica_problems

    for f in declared:
        name = f.metadata.get("env")
        if name is None or name not in env:
            continue
        try:
            values[f.name] = f.metadata["parse"](env[name])
        except ValueError:
            shown = "(hidden)" if looks_secret(name) else repr(env[name][:40])
            problems.append(SettingProblem(name, f"invalid value {shown}", f.metadata["expected"]))
    raw = (raw_url, raw_migrate, *raw_replicas.split(","))
    return values, problems, raw
