"""Replica gauges for ``/health/metrics``: what the lag monitor and the router saw.

Observable (read at collection time, free per query), one series per replica, labelled
``server.address``/``server.port``:

- ``db.replica.lag`` (s) and ``db.replica.lag.bytes`` (By): the last replay lag measured;
- ``db.replica.in_rotation``: 1 while the replica serves reads;
- ``db.replica.checks`` / ``db.replica.check_failures``: lag checks run and failed.

And for the Database: ``db.replica.fallbacks`` {reason} (reads sent to the primary) and
``db.replica.retries`` (reads retried on another node after losing their replica).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from .metrics import observable_counters

if TYPE_CHECKING:
    from ..replicas.node import Node
    from ..replicas.router import Router

__all__ = ["ReplicaInstruments"]


class ReplicaInstruments:
    """Observable metrics of the replica nodes it is handed and of the router that chooses
    among them (nothing when there is no replica)."""

    def __init__(self, nodes: Sequence[Node], router: Router) -> None:
        self._nodes = nodes
        self._router = router

    def observe(self, meter: Meter) -> None:
        if not self._nodes:
            return
        gauges: list[tuple[str, str, str, Callable[[Node], float | None]]] = [
            ("db.replica.lag", "s", "Replay lag of the replica.", lambda n: n.lag_seconds),
            ("db.replica.lag.bytes", "By", "WAL the replica has not replayed.", _bytes),
            ("db.replica.in_rotation", "1", "1 while the replica serves reads.", _rotation),
        ]
        for name, unit, description, read in gauges:
            meter.create_observable_gauge(
                name, [self._per_node(read)], unit=unit, description=description
            )
        observable_counters(
            meter,
            (
                ("db.replica.checks", self._per_node(_checks), "{check}", "Lag checks run."),
                (
                    "db.replica.check_failures",
                    self._per_node(_failures),
                    "{check}",
                    "Lag checks that failed.",
                ),
                (
                    "db.replica.fallbacks",
                    self._observe_fallbacks,
                    "{read}",
                    "Reads sent to the primary, by reason.",
                ),
                (
                    "db.replica.retries",
                    self._observe_retries,
                    "{read}",
                    "Reads retried on another node after their replica was lost.",
                ),
            ),
        )

    def _per_node(
        self, read: Callable[[Node], float | None]
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            out = []
            for node in self._nodes:
                value = read(node)
                if value is not None:
                    out.append(Observation(value, _attrs(node)))
            return out

        return callback

    def _observe_fallbacks(self, options: CallbackOptions) -> Iterable[Observation]:
        router = self._router
        return [
            Observation(router.fallbacks[reason], {"reason": reason})
            for reason in ("no_replica", "read_your_writes")
        ]

    def _observe_retries(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self._router.retries)]


def _attrs(node: Node) -> dict[str, Any]:
    return {"server.address": node.address, "server.port": node.port, "db.role": node.role}


def _bytes(node: Node) -> float | None:
    return node.lag_bytes


def _rotation(node: Node) -> float:
    return 1 if node.in_rotation else 0


def _checks(node: Node) -> float:
    return node.checks


def _failures(node: Node) -> float:
    return node.check_failures
