"""``python -m personal_assistant_db.cli`` is ``pa-db``."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
