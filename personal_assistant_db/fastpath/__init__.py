"""The fast path: SQLAlchemy Core statements compiled once and run on the pooled asyncpg
connection, one round trip per statement outside a transaction (docs/queries.md).

- compiled.py: the compiled-statement cache and ``Row``;
- lease.py: a connection checked out of the engine's own pool, returned without IO;
- executor.py: ``FastPath``, running statements with tracing, read retry and fallback;
- fallback.py: the SQLAlchemy path for what the fast path cannot run exactly;
- transaction.py: ``Transaction`` (savepoints, server-side cursors);
- api.py: the statement methods ``Database`` offers.
"""

from __future__ import annotations

from .api import StatementMethods
from .compiled import Row
from .executor import FastPath
from .transaction import Transaction

__all__ = ["FastPath", "Row", "StatementMethods", "Transaction"]
