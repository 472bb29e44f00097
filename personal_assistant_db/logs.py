"""structlog helpers. The library logs through ``structlog.get_logger`` and never configures it.

Hosts may add these processors to their own ``structlog.configure(processors=[...])``:

- ``redact_secrets``: replaces secrets with ``***`` in every value: URL passwords and secret query
  parameters (in any URL shape, even one embedded in free text), ``password=...`` pairs, and the
  whole value of any key that looks like a secret (``password``, ``db_token``, ``dsn`` ...).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import structlog
from sqlalchemy.engine import URL

from .redaction import redact_text
from .urls import looks_secret, render_url

__all__ = ["get_logger", "redact_secrets"]


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
