"""Statement-API reads with read replicas: the fast path asks, the replica set chooses.

Only a ``Database`` with ``DATABASE_REPLICA_URLS`` has a ``ReplicaReads``; without one the
statement API runs straight on the primary's executor and no replica code runs on a query.

The calls go one way: this module asks ``ReplicaSet.route`` for a node and tells it
``ReplicaSet.lost`` when a replica's connection is lost; it owns one executor per replica and the
single retry on another node. The replica set never calls into the fast path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..replicas.reads import is_connection_lost
from ..replicas.router import is_write
from .executor import FastPath

if TYPE_CHECKING:
    from ..replicas.node import Node
    from ..replicas.replica_set import ReplicaSet
    from ..settings import Settings
    from .fallback import Mode

__all__ = ["ReplicaReads"]


class ReplicaReads:
    """The statement API's executors for the replicas, and how a read picks one."""

    def __init__(self, primary: FastPath, replicas: ReplicaSet, settings: Settings) -> None:
        self.primary = primary
        self.replicas = replicas
        #: One executor per replica node (no same-node retry: the retry goes elsewhere).
        self.executors: dict[Node, FastPath] = {
            node: FastPath(settings, node.meter, retry_reads=False) for node in replicas.nodes
        }
        #: The same executors by node name (telemetry and benches address them so).
        self.by_name = {node.name: fast for node, fast in self.executors.items()}
        primary.on_write = replicas.wrote  # writes on the primary mark the session

    def __repr__(self) -> str:
        return f"<ReplicaReads {list(self.by_name)}>"

    def attach(self) -> None:
        """Each executor runs on its node's engine (call after the replica engines exist)."""
        for node, fast in self.executors.items():
            if node.engine is not None:
                fast.attach(node.engine)

    def detach(self) -> None:
        for fast in self.executors.values():
            fast.detach()

    async def drain(self) -> None:
        for fast in self.executors.values():
            await fast.drain()

    def executor(self, node: Node | None) -> FastPath:
        return self.primary if node is None else self.executors[node]

    def read_path(self, statement: Any) -> FastPath:
        """The executor for a streamed read (``iterate``: never retried mid-stream)."""
        node = self.replicas.route(statement)
        if node is not None:
            node.reads += 1
        return self.executor(node)

    async def fetch(self, statement: Any, params: Any, mode: Mode) -> Any:
        """A read on the node the replica set routes it to (a statement that writes: the primary,
        and the session is marked). A replica whose connection is lost is reported lost, and
        the read runs once more on the node chosen next."""
        replicas = self.replicas
        node = replicas.route(statement)
        if node is None:
            result = await self.primary.run(statement, params, mode)
            if is_write(statement):
                replicas.wrote()
            return result
        node.in_flight += 1
        node.reads += 1
        try:
            return await self.executors[node].run(statement, params, mode)
        except Exception as exc:
            if not is_connection_lost(exc):
                raise
            replicas.lost(node, type(exc).__name__)
        finally:
            node.in_flight -= 1
        other = replicas.route(statement, exclude=node)
        if other is not None:
            other.reads += 1
        return await self.executor(other).run(statement, params, mode)
