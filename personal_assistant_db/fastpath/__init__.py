"""The fast path: SQLAlchemy Core statements compiled once and run on the pooled asyncpg
connection, one round trip per statement outside a transaction (docs/queries.md).

- compiled.py: the compiled-statement cache and ``Row``;
- lease.py: a connection checked out of the engine's own pool, returned without IO;
- executor.py: ``FastPath``, running statements with tracing, read retry and fallback;
- fallback.py: the SQLAlchemy path for what the fast path cannot run exactly;
- transaction.py: ``Transaction`` (savepoints, server-side cursors);
- reads.py: ``ReplicaReads``, statement-API reads routed to replicas (only with replicas);
- ambient.py: which transaction a call joins (contextvar), the per-connection call lock;
- pin.py: ``force_rollback()``, one pinned connection rolled back at exit (test isolation);
- api.py: the statement methods ``Database`` offers.
"""

from __future__ import annotations

from .ambient import note_connect
from .api import StatementMethods
from .compiled import Row
from .executor import FastPath
from .pin import pinned_connection
from .reads import ReplicaReads
from .transaction import Transaction

__all__ = [
    "FastPath",
    "ReplicaReads",
    "Row",
    "StatementMethods",
    "Transaction",
    "note_connect",
    "pinned_connection",
]
