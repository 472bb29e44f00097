"""structlog helpers. The library logs through ``structlog.get_logger`` and never configures it.

Hosts may add these processors to their own ``structlog.configure(processors=[...])``:

- ``redact_secrets``: replaces URL passwords in every string value with ``***``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import structlog

from .urls import redact_url

__all__ = ["get_logger", "redact_secrets"]

_SECRET_KEYS = frozenset({"password", "token", "secret", "authorization", "health_token"})


def get_logger(name: str = "personal_assistant_db") -> Any:
    """The package's logger (lazy; binds to whatever the host configured)."""
    return structlog.get_logger(name)


def redact_secrets(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide URL passwords and values of secret-looking keys."""
    for key, value in list(event_dict.items()):
        if key.lower() in _SECRET_KEYS and value is not None:
            event_dict[key] = "***"
        elif isinstance(value, str) and "://" in value:
            event_dict[key] = redact_url(value)
    return event_dict
