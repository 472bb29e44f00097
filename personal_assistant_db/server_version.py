"""The PostgreSQL versions the package is tested on, and the warning for an older server.

``Database.start()`` logs ``db.server.unsupported`` and ``pa-db doctor`` reports a WARNING with
this text when the server is older than 14 (docs/versions.md lists what is tested and how).
"""

from __future__ import annotations

__all__ = ["OLDEST_TESTED", "TESTED_VERSIONS", "unsupported_version", "version_warning"]

OLDEST_TESTED = 140000
"""``server_version_num`` of the oldest PostgreSQL the package is tested on (14)."""

TESTED_VERSIONS = ("14", "15", "16", "18")
"""Major versions the test matrix runs (scripts/pg-matrix)."""


def version_warning(version_num: int, version: str) -> str | None:
    """The warning for a server older than 14, naming the version and what may not work."""
    if version_num >= OLDEST_TESTED:
        return None
    return (
        f"PostgreSQL {version} is older than 14, the oldest version personal-assistant-db is "
        "tested on: the migrations (stairway, verify), the doctor's statistics "
        "(pg_stat_statements before 1.9, checkpoint and I/O counters) and replica lag "
        "may not work; upgrade to PostgreSQL 14 or newer"
    )


def unsupported_version(info: tuple[int, ...] | None) -> str | None:
    """``version_warning`` for SQLAlchemy's ``dialect.server_version_info`` ((13, 12) for
    13.12); None for 14 and newer, or when the version is not known yet."""
    if not info:
        return None
    major, minor = info[0], info[1] if len(info) > 1 else 0
    return version_warning(major * 10000 + minor, ".".join(str(part) for part in info[:2]))
