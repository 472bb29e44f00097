"""Several workers, one picture: what each worker publishes and the pod's merged view.

Under ``uvicorn --workers N`` or gunicorn with ``UvicornWorker`` every worker is a process with
its own counters, sketches, pool and history. With ``DB_WORKERS=auto`` (the default) a worker of
such a server publishes its figures into the exchange directory (``DB_WORKERS_DIR``; exchange.py)
and answers ``/health/metrics``, the dashboard and the ``/health`` overview from every live
worker's (pod.py); one worker at a time holds the alert lease (lease.py). A single-process app
gets no ``Pod`` and pays nothing. See docs/scaling.md.
"""

from __future__ import annotations

import multiprocessing
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .exchange import Exchange
from .identity import current
from .pod import Pod, WorkerReport

if TYPE_CHECKING:
    from ..database import Database
    from ..telemetry import Telemetry

__all__ = ["Pod", "WorkerReport", "in_worker_server", "pod_for"]


def in_worker_server() -> bool:
    """True in a worker of a multi-process server: uvicorn spawns its workers (and its reload
    child) with multiprocessing; gunicorn forks them from its arbiter (``gunicorn.workers``)."""
    return multiprocessing.parent_process() is not None or "gunicorn.workers.base" in sys.modules


def pod_for(db: Database, telemetry: Telemetry) -> Pod | None:
    """The pod view for ``db`` when ``DB_WORKERS`` says so (``auto``: in a worker server)."""
    s = db.settings
    if s.workers == "off" or (s.workers == "auto" and not in_worker_server()):
        return None
    url = s.url
    database = f"{url.username}@{url.host}:{url.port}/{url.database}"
    base = Path(s.workers_dir) if s.workers_dir else None
    exchange = Exchange.for_app(base, s.application_name, database, current())
    return Pod(db, telemetry, exchange, s.workers_interval)
