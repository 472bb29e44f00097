"""Does the server notice a client that went away mid-statement?

A statement keeps running on its backend after the client closed the socket (a crashed worker, a
killed pod, a load balancer that dropped the connection): PostgreSQL only notices when it next
writes to the socket. The package cancels its own statements when a caller is cancelled, but it
cannot cancel for a process that died. PostgreSQL 14 added ``client_connection_check_interval``:
the backend polls the socket while a statement runs and ends the statement when the client is
gone. Off (0) by default; a few seconds costs almost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .findings import Finding, Severity

__all__ = ["RECOMMENDED_CHECK_INTERVAL", "disconnect_check_finding"]

RECOMMENDED_CHECK_INTERVAL = "5s"
_SINCE = 140000


def disconnect_check_finding(
    settings: Mapping[str, Mapping[str, Any]], version: int
) -> Finding | None:
    """A recommendation when the server (>= 14) does not check for vanished clients."""
    if version < _SINCE:
        return None
    row = settings.get("client_connection_check_interval")
    if row is None:
        return None
    value = int(row["setting"])
    if value > 0:
        return None
    return Finding(
        Severity.INFO,
        "client_connection_check",
        "server",
        "client_connection_check_interval is off: a statement whose client went away (a killed "
        "process, a dropped connection) runs to its end on the server, holding its backend, locks "
        "and CPU",
        {"client_connection_check_interval_ms": value, "server_version_num": version},
        f"ALTER SYSTEM SET client_connection_check_interval = '{RECOMMENDED_CHECK_INTERVAL}'; "
        "SELECT pg_reload_conf();  (PostgreSQL >= 14; the package already cancels the statements "
        "of callers it sees cancelled, this covers clients that died)",
    )
