"""Replica checks: what the lag monitor last saw, per replica (no query of their own).

A replica out of rotation (lagging, unreachable, or a primary behind a replica URL) is ``warn``:
reads fall back to the primary, so the pod stays ready; only the primary's own checks fail
readiness. The public view names a replica by position (``replica-1``); its address and port
need the token (``details``), as every server detail does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .result import CheckResult, Status

if TYPE_CHECKING:
    from ..replicas.node import Node

__all__ = ["ReplicaLagCheck", "component_id"]

# Public: our own words for the monitor's verdicts (never server text). Reads go to the primary.
_REASONS = {
    "starting": "no lag check has finished yet: reads go to the primary",
    "lagging": "replay lag over DB_REPLICA_MAX_LAG_MS: out of read rotation",
    "unreachable": "the lag check failed (down or too slow): out of read rotation",
    "not_in_recovery": "not a standby (pg_is_in_recovery() is false): it gets no reads",
}


def component_id(nodes: Sequence[Node], node: Node) -> str:
    """``primary`` or ``replica-N`` (1-based, in DATABASE_REPLICA_URLS order); ``nodes`` is
    ``Database.nodes``: the primary, then the replicas."""
    if node.role == "primary":
        return "primary"
    return f"replica-{nodes.index(node)}"


class ReplicaLagCheck:
    """``replica:lag`` for one replica: pass in rotation, warn out of it; observed lag in ms."""

    component_type = "datastore"
    critical = False
    timeout = 0.1

    def __init__(
        self, node: Node, component_id: str, *, max_lag_ms: int, name: str = "replica:lag"
    ) -> None:
        self.node = node
        self.component_id = component_id
        self.max_lag_ms = max_lag_ms
        self.name = name

    def __repr__(self) -> str:
        return f"<ReplicaLagCheck {self.component_id}>"

    async def run(self) -> CheckResult:
        began = time.perf_counter()
        node = self.node
        status: Status = "pass" if node.in_rotation else "warn"
        lag_ms = None if node.lag_seconds is None else round(node.lag_seconds * 1000, 1)
        counts: dict[str, float | int] = {
            "inRotation": int(node.in_rotation),
            "inFlight": node.in_flight,
            "reads": node.reads,
            "checkFailures": node.check_failures,
        }
        if node.lag_bytes is not None:
            counts["lagBytes"] = node.lag_bytes
        return CheckResult(
            name=self.name,
            status=status,
            duration=time.perf_counter() - began,
            observed_value=lag_ms,
            observed_unit="ms",
            component_type=self.component_type,
            component_id=self.component_id,
            counts=counts,
            reason=None if node.in_rotation else _REASONS.get(node.state, node.state),
            details={
                "state": node.state,
                "server.address": node.address,
                "server.port": node.port,
                "max_lag_ms": self.max_lag_ms,
            },
        )
