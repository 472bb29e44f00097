"""Migrations for the auth/RBAC schema, on top of yoyo's Python API.

A lazy facade: ``from personal_assistant_db.migrate import apply`` works, and importing this
package loads nothing else, so ``/health/ready`` (which needs only ``history``) never pulls in
yoyo or psycopg. The modules:

- ``history``: ``migration_status(conn)``, applied vs shipped over the app's own connection;
- ``source``: the shipped migrations and their MANIFEST (a leaf);
- ``target``: where migrations go (psycopg URL, schema, timeouts), scratch databases;
- ``runner``: one yoyo backend under its lock; ``ops``: status, apply, rollback, unlock;
- ``_verify``, ``_assess``, ``_lint``: the checks behind ``pa-db migrate verify|assess|lint``.
  The public names are the functions ``verify``, ``assess`` and ``lint`` of this package; their
  modules carry a leading underscore so that importing one never rebinds the package attribute
  of the same name (a submodule import sets it) to a module;
- ``snapshot``: catalog snapshots;
- ``_lazy``: the lazy facade itself (``__getattr__``/``__dir__``), shared with ``adoption/``;
- ``manifest``: the maintenance tool that regenerates MANIFEST and SNAPSHOTS.json;
- ``adoption/``: ``adopt``, ``contract`` and ``table_checksums`` for an existing ai_assistant
  database (docs/adopting.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_facade

if TYPE_CHECKING:
    from ._assess import assess
    from ._lint import lint
    from ._verify import verify
    from .adoption.api import adopt, contract, table_checksums
    from .adoption.report import AdoptionReport, ContractReport, Finding
    from .history import MigrationStatus, migration_status
    from .ops import StatusReport, apply, rollback, status, unlock

__all__ = [
    "AdoptionReport",
    "ContractReport",
    "Finding",
    "MigrationStatus",
    "StatusReport",
    "adopt",
    "apply",
    "assess",
    "contract",
    "lint",
    "migration_status",
    "rollback",
    "status",
    "table_checksums",
    "unlock",
    "verify",
]

_HOMES = {
    "AdoptionReport": "adoption.report",
    "ContractReport": "adoption.report",
    "Finding": "adoption.report",
    "adopt": "adoption.api",
    "contract": "adoption.api",
    "table_checksums": "adoption.api",
    "MigrationStatus": "history",
    "migration_status": "history",
    "StatusReport": "ops",
    "apply": "ops",
    "rollback": "ops",
    "status": "ops",
    "unlock": "ops",
    "assess": "_assess",
    "lint": "_lint",
    "verify": "_verify",
}


__getattr__, __dir__ = lazy_facade(globals(), _HOMES)
