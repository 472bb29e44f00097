"""Rules across settings: values that are each valid alone but not together."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..app_schema import SCHEMA_PARAM, is_schema_name
from ..errors import SettingProblem

if TYPE_CHECKING:
    from .model import Settings

__all__ = ["MAX_HISTORY_SNAPSHOTS", "cross_checks"]

#: The history ring's hard cap (health/history.py states the memory this bounds).
MAX_HISTORY_SNAPSHOTS = 2880


def cross_checks(s: Settings) -> list[SettingProblem]:
    """Every rule ``s`` breaks (empty: none)."""
    problems = []
    if SCHEMA_PARAM in s.url.query and not is_schema_name(s.url.query[SCHEMA_PARAM]):
        problems.append(
            SettingProblem(
                "DATABASE_URL",
                "?schema= is not one plain lower-case identifier",
                "the schema pa-db migrate created the tables in, e.g. ?schema=auth",
            )
        )
    if s.warmup_connections > s.pool_size:
        problems.append(
            SettingProblem(
                "DB_WARMUP_CONNECTIONS",
                f"{s.warmup_connections} is more than DB_POOL_SIZE={s.pool_size}",
                "a number <= DB_POOL_SIZE",
            )
        )
    if s.connect_retry_initial > s.connect_retry_max:
        problems.append(
            SettingProblem(
                "DB_CONNECT_RETRY_INITIAL", "is larger than DB_CONNECT_RETRY_MAX", "initial <= max"
            )
        )
    if s.health_checkout_timeout >= s.health_timeout:
        problems.append(
            SettingProblem(
                "DB_HEALTH_CHECKOUT_TIMEOUT",
                "is not below DB_HEALTH_TIMEOUT",
                "a checkout wait shorter than the whole check deadline",
            )
        )
    snapshots = s.health_history_window / s.health_history_interval
    if not 1 <= snapshots <= MAX_HISTORY_SNAPSHOTS:
        problems.append(
            SettingProblem(
                "DB_HEALTH_HISTORY_WINDOW",
                f"keeps {snapshots:g} snapshots at DB_HEALTH_HISTORY_INTERVAL="
                f"{s.health_history_interval:g}",
                f"a window of 1 to {MAX_HISTORY_SNAPSHOTS} intervals, e.g. 900 at an interval of 5",
            )
        )
    return problems
