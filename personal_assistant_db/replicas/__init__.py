"""Read replicas: one measured engine per node, lag-aware routing, read-your-writes.

``Database`` owns a ``ReplicaSet`` (replica_set.py); the router (router.py) picks a node per read
from what the lag monitor (lag.py) measured and what the session wrote (consistency.py);
``ReadYourWritesMiddleware`` (middleware.py) carries a session's last write across requests.
See docs/scaling.md.
"""

from __future__ import annotations

from .consistency import WriteMark, current_mark, record_write
from .lag import LagMonitor
from .middleware import ReadYourWritesMiddleware
from .node import Node
from .replica_set import ReplicaSet
from .router import WRITE_OPTION, Router, is_write

__all__ = [
    "WRITE_OPTION",
    "LagMonitor",
    "Node",
    "ReadYourWritesMiddleware",
    "ReplicaSet",
    "Router",
    "WriteMark",
    "current_mark",
    "is_write",
    "record_write",
]
