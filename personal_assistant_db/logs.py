"""structlog helpers. The library logs through ``structlog.get_logger`` and never configures it.

Hosts may add these processors to their own ``structlog.configure(processors=[...])``:

- ``redact_secrets``: replaces secrets with ``***`` in every value: URL passwords and secret query
  parameters (in any URL shape, even one embedded in free text), ``password=...`` pairs, and the
  whole value of any key that looks like a secret (``password``, ``db_token``, ``dsn`` ...).

``CauseLog`` rate-limits a repeated warning: one line per cause per interval, with a count.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

import structlog
from sqlalchemy.engine import URL

from .redaction import redact_text
from .urls import looks_secret, render_url

__all__ = ["CauseLog", "get_logger", "redact_secrets"]


def get_logger(name: str = "personal_assistant_db") -> Any:
    """The package's logger (lazy; binds to whatever the host configured)."""
    return structlog.get_logger(name)


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide URL passwords and values of secret-looking keys."""
    for key, value in list(event_dict.items()):
        if value is None:
            continue
        if looks_secret(str(key)) or str(key).lower() == "dsn":
            event_dict[key] = "***"
        elif isinstance(value, URL):
            event_dict[key] = render_url(value)
        elif isinstance(value, str):
            event_dict[key] = redact_text(value)
        elif isinstance(value, BaseException):
            event_dict[key] = redact_text(f"{type(value).__name__}: {value}")
    return event_dict


class CauseLog:
    """At most one log line per cause per ``interval`` seconds, carrying how many occurred.

    ``count`` on a line is the number of occurrences since the previous line for that cause
    (this one included). ``interval=0`` logs every occurrence.
    """

    def __init__(self, interval: float, event: str = "db.unavailable") -> None:
        self.interval = interval
        self.event = event
        self.total: dict[str, int] = {}
        self._last: dict[str, tuple[float, int]] = {}  # cause -> (logged at, suppressed since)

    def __repr__(self) -> str:
        return f"<CauseLog every {self.interval:g}s totals={self.total}>"

    def record(self, cause: str, **fields: Any) -> bool:
        """Count one occurrence; True when it was logged."""
        self.total[cause] = self.total.get(cause, 0) + 1
        now = time.monotonic()
        last = self._last.get(cause)
        if last is not None and now - last[0] < self.interval:
            self._last[cause] = (last[0], last[1] + 1)
            return False
        count = 1 + (last[1] if last is not None else 0)
        self._last[cause] = (now, 0)
        get_logger().warning(
            self.event, cause=cause, count=count, interval_s=self.interval, **fields
        )
        return True
