"""Adoption of an existing ai_assistant database (docs/adopting.md).

A lazy facade, like ``personal_assistant_db.migrate``: importing it loads nothing else, so
``migrate.history`` (readiness) can read ``steps`` without pulling in psycopg or yoyo.

- ``layout``: recognise the legacy layout from the catalog; ``check``: the rows the package's
  schema would refuse; ``expand``, ``contract``, ``uncontract``: the steps yoyo runs (``steps``);
  ``secrets``: hashing; ``mapping``: the column mapping; ``shape``: the two schemas as snapshots;
  ``checksum``: per-table checksums; ``report``: the results, as data; ``api``: ``adopt`` and
  ``contract``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_facade

if TYPE_CHECKING:
    from .api import adopt, adoption_state, contract, table_checksums
    from .report import AdoptionReport, ContractReport, Finding
    from .secrets import hash_secret
    from .shape import legacy_ddl

__all__ = [
    "AdoptionReport",
    "ContractReport",
    "Finding",
    "adopt",
    "adoption_state",
    "contract",
    "hash_secret",
    "legacy_ddl",
    "table_checksums",
]

_HOMES = {
    "AdoptionReport": "report",
    "ContractReport": "report",
    "Finding": "report",
    "adopt": "api",
    "adoption_state": "api",
    "contract": "api",
    "table_checksums": "api",
    "hash_secret": "secrets",
    "legacy_ddl": "shape",
}


__getattr__, __dir__ = lazy_facade(globals(), _HOMES)
