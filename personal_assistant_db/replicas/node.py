"""One database server the package talks to: its engine, its measured pool, its role and lag.

A ``Node`` is data plus counters. The primary's node wraps the Database's own engine; each
replica's node gets an engine of its own (``engines.build_engine``, read-only sessions), all
created and disposed by the Database that owns them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from ..errors import DatabaseNotStarted
from ..pool import PoolMeter, PoolStats

__all__ = ["LagSample", "Node", "NodeState", "Role", "lsn_to_int", "server_of"]

Role = Literal["primary", "replica"]
#: Why a replica is (or is not) in read rotation.
NodeState = Literal["starting", "ok", "lagging", "unreachable", "not_in_recovery", "primary"]


def lsn_to_int(text: str | None) -> int | None:
    """``'16/B374D848'`` -> its 64-bit WAL position (None stays None)."""
    if text is None:
        return None
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def server_of(url: URL) -> tuple[str, int]:
    """(address, port) of ``url``'s first host, for metric labels (``?host=h:p`` forms too)."""
    if url.host:
        return url.host, url.port or 5432
    hosts = url.query.get("host")
    first = hosts[0] if isinstance(hosts, tuple) else hosts
    if not first:
        return "localhost", url.port or 5432
    host, _, port = first.rpartition(":") if ":" in first else (first, "", "")
    return host, int(port) if port.isdigit() else (url.port or 5432)


@dataclass
class LagSample:
    """What one lag check saw (``None`` when it could not be measured)."""

    in_recovery: bool
    replay_lsn: int | None
    lag_bytes: int | None
    lag_seconds: float
    caught_up: bool = False  # receive LSN = replay LSN
    checked_at: float = 0.0  # time.monotonic() when the check's query was sent


class Node:
    """A server, its engine and pool meter, its configured role and what the monitor saw."""

    def __init__(self, url: URL, role: Role, *, meter: PoolMeter | None = None) -> None:
        self.url = url
        self.role: Role = role
        self.meter = meter if meter is not None else PoolMeter()
        self.engine: AsyncEngine | None = None
        self.address, self.port = server_of(url)
        self.state: NodeState = "primary" if role == "primary" else "starting"
        self.in_flight = 0
        self.reads = 0
        self.lag_bytes: int | None = None
        self.lag_seconds: float | None = None
        self.replay_lsn: int | None = None
        self.checks = 0
        self.check_failures = 0
        #: time.monotonic() of the last check that saw receive LSN = replay LSN.
        self.caught_up_at: float | None = None
        #: The last state the monitor logged (it logs changes only).
        self.logged_state: str | None = None

    def __repr__(self) -> str:
        return f"<Node {self.role} {self.address}:{self.port} {self.state}>"

    @property
    def name(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def in_rotation(self) -> bool:
        """A replica that may serve reads right now."""
        return self.role == "replica" and self.state == "ok" and self.engine is not None

    def started_engine(self) -> AsyncEngine:
        """The engine; DatabaseNotStarted before start and after stop."""
        if self.engine is None:
            raise DatabaseNotStarted(f"the {self.role} {self.name} has no engine (not started)")
        return self.engine

    def pool_stats(self) -> PoolStats:
        return self.meter.snapshot(self.started_engine().pool)

    def observe(self, sample: LagSample, max_lag_seconds: float) -> NodeState:
        """Apply one lag check; returns the new state."""
        self.checks += 1
        self.replay_lsn = sample.replay_lsn
        self.lag_bytes = sample.lag_bytes
        lag = sample.lag_seconds
        if sample.caught_up:
            self.caught_up_at = sample.checked_at
        elif self.caught_up_at is not None:
            # Unreplayed WAL arrived after the last check that saw none: it is no older.
            lag = min(lag, max(0.0, time.monotonic() - self.caught_up_at))
        self.lag_seconds = lag
        if not sample.in_recovery:
            self.state = "not_in_recovery"
        elif lag > max_lag_seconds:
            self.state = "lagging"
        else:
            self.state = "ok"
        return self.state

    def unreachable(self) -> NodeState:
        self.checks += 1
        self.check_failures += 1
        self.state = "unreachable"
        return self.state
