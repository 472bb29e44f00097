"""Settings in one room: read once from ``DATABASE_URL`` and ``DB_*``, validated up front.

- ``model``: the frozen ``Settings`` dataclass, one field per variable, and the cross-checks;
- ``parsers``: one parser per kind of value, unknown names, problems scrubbed of secrets;
- ``profiles``: what each ``DB_ENV`` profile changes from the defaults.

``from personal_assistant_db.settings import Settings`` is the public spelling.
"""

from __future__ import annotations

from .model import MAX_HISTORY_SNAPSHOTS, Settings, closest_variable, known_variables
from .profiles import PROFILES

__all__ = ["MAX_HISTORY_SNAPSHOTS", "PROFILES", "Settings", "closest_variable", "known_variables"]
