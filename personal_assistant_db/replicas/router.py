"""Which node serves a read: a healthy replica that has your writes, else the primary.

- Candidates are replicas in rotation (the lag monitor's verdict) that satisfy read-your-writes:
  ``lsn`` mode needs replay LSN >= the session's mark; ``window:N`` sends every read to the
  primary for N seconds after a write; ``off`` ignores writes.
- Among candidates the least in-flight node wins; ties rotate (bench/replicas.py measured this
  against in-flight-weighted round robin).
- No candidate: the primary, counted by reason (``fallbacks``) and logged once per change.
- ``is_write(statement)``: INSERT/UPDATE/DELETE, SELECT ... FOR UPDATE/SHARE, ``text()`` marked
  ``.execution_options(pa_db_write=True)``; such a statement never goes to a replica.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy.sql.dml import UpdateBase

from ..logs import get_logger
from .consistency import WriteMark, current_mark, resolve_pending
from .node import Node

__all__ = ["WRITE_OPTION", "Policy", "Router", "is_write"]

Policy = Literal["least_in_flight", "round_robin"]

WRITE_OPTION = "pa_db_write"
_WRITE_WORDS = ("insert", "update", "delete", "merge", "create", "drop", "alter", "truncate")
log = get_logger()


_DECIDED: dict[Any, bool] = {}  # statement object -> is_write (objects are reused: constants)
_DECIDED_LIMIT = 4096


def is_write(statement: Any) -> bool:
    """True for a statement that must run on the primary (decided once per statement object)."""
    try:
        return _DECIDED[statement]
    except (KeyError, TypeError):  # TypeError: an unhashable statement
        pass
    decided = _is_write(statement)
    if not isinstance(statement, str):
        if len(_DECIDED) >= _DECIDED_LIMIT:
            _DECIDED.clear()
        with contextlib.suppress(TypeError):
            _DECIDED[statement] = decided
    return decided


def _is_write(statement: Any) -> bool:
    if isinstance(statement, str):
        head = statement.lstrip().split(None, 1)[0].lower() if statement.strip() else ""
        return head in _WRITE_WORDS or "for update" in statement.lower()
    if isinstance(statement, UpdateBase):
        return True
    options = getattr(statement, "_execution_options", None) or {}
    if options.get(WRITE_OPTION):
        return True
    if getattr(statement, "_for_update_arg", None) is not None:
        return True
    text = getattr(statement, "text", None)  # TextClause
    return isinstance(text, str) and _is_write(text)


class Router:
    """Chooses among ``replicas`` for a read; the primary when none may serve it."""

    def __init__(
        self, replicas: Sequence[Node], mode: str, window: float, policy: Policy = "least_in_flight"
    ) -> None:
        self.replicas = list(replicas)
        #: ``least_in_flight`` (default) or ``round_robin`` (kept for bench/replicas.py).
        self.policy: Policy = policy
        self.mode = mode
        self.window = window
        self._turn = 0
        #: Reads sent to the primary, by reason: no_replica | read_your_writes | write.
        self.fallbacks: Counter[str] = Counter()
        self.retries = 0
        self._last_reason: str | None = None
        #: (primary LSN, monotonic time its query started), set by the lag monitor.
        self.primary_sample: tuple[int, float] | None = None

    def __repr__(self) -> str:
        return f"<Router {self.mode} replicas={len(self.replicas)}>"

    def choose(self, exclude: Node | None = None) -> Node | None:
        """A replica for a read now, or None (use the primary; the reason is counted)."""
        mark = current_mark() if self.mode != "off" else None
        need = self._needed_lsn(mark) if mark is not None else None
        if need is False:
            return self._fallback("read_your_writes")
        best: Node | None = None
        count = len(self.replicas)
        for i in range(count):
            node = self.replicas[(self._turn + i) % count]
            # node.in_rotation, inlined (a replica is "ok" only while started): hot path.
            if node is exclude or node.state != "ok":
                continue
            if need is not None and (node.replay_lsn is None or node.replay_lsn < need):
                continue
            if best is None or node.in_flight < best.in_flight:
                best = node
                if self.policy == "round_robin":
                    break
        if best is None:
            behind = need is not None and self._any_healthy()
            return self._fallback("read_your_writes" if behind else "no_replica")
        self._turn = (self._turn + 1) % count
        if self._last_reason is not None:
            log.info("db.replica.reads_resume", after=self._last_reason)
            self._last_reason = None
        return best

    def _needed_lsn(self, mark: WriteMark | None) -> int | bool | None:
        """None: any replica; an int: replay LSN needed; False: the primary must serve."""
        if mark is None or self.mode == "off":
            return None
        if self.mode == "window":
            return False if time.time() - mark.at < self.window else None
        if mark.lsn is None:
            sample = self.primary_sample
            if sample is None or sample[1] <= mark.monotonic:
                return False
            resolve_pending(sample[0])
            return sample[0]
        return mark.lsn

    def _any_healthy(self) -> bool:
        return any(n.in_rotation for n in self.replicas)

    def _fallback(self, reason: str) -> Node | None:
        self.fallbacks[reason] += 1
        if reason == "no_replica" and self._last_reason != reason:
            log.warning("db.replica.none_healthy", replicas=[r.name for r in self.replicas])
        self._last_reason = reason
        return None
