"""Getting the first connection: the state machine ``Database.start()`` delegates to.

- ``fail_fast`` (``DB_STARTUP_MODE``): connect with retry (exponential backoff, full jitter, one
  total deadline, ``DB_CONNECT_RETRY_DEADLINE``), then warm up ``DB_WARMUP_CONNECTIONS``; a
  fatal error (bad credentials, unknown database) fails at once, a transient one once the
  deadline is spent.
- ``degraded``: never blocks. Connects in the background, waiting at most
  ``DB_DEGRADED_START_WAIT`` for the first attempt so that a fatal first error still fails the
  start; the host serves, with readiness failing, until the database answers.

``Startup`` is handed the settings and a way to reach the engine; it never holds the Database.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_before_delay,
    wait_random_exponential,
)

from .app_schema import require_schema
from .errors import ConnectFatal, ConnectTimeout
from .failures import describe, is_transient
from .logs import get_logger
from .pooler import detect_mismatch
from .server_version import unsupported_version
from .settings import Settings

__all__ = ["Startup"]

log = get_logger()


class Startup:
    """Whether the database has answered yet, and how to get it to (see the module docstring)."""

    def __init__(self, settings: Settings, engine: Callable[[], AsyncEngine]) -> None:
        self.settings = settings
        self._engine = engine
        #: True once a connection succeeded (in degraded mode: after recovery).
        self.ready = False
        self._reconnect: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = "ready" if self.ready else "connecting" if self._reconnect else "not ready"
        return f"<Startup {self.settings.startup_mode} {state}>"

    async def run(self) -> None:
        """Connect as ``DB_STARTUP_MODE`` says. Raises ConnectFatal, ConnectTimeout or
        PoolerMismatch; the caller disposes the engine then."""
        if self.settings.startup_mode == "degraded":
            await self._start_degraded()
            return
        s = self.settings
        await self._connect_with_retry(s.connect_retry_deadline)
        await require_schema(self._engine(), s.schema, s.safe_url, s.pooler)
        await self._warm_up()
        self.ready = True

    async def stop(self) -> None:
        """Stop reconnecting (idempotent). ``ready`` stays as it is until the engine is gone."""
        if self._reconnect is not None:
            self._reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnect
            self._reconnect = None

    async def _probe(self) -> None:
        async with self._engine().connect() as conn:
            # Marked as a health probe: telemetry neither traces nor measures it.
            await conn.execution_options(pa_db_health=True)
            await conn.exec_driver_sql("SELECT 1")

    async def _connect_with_retry(self, deadline: float) -> None:
        s = self.settings
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_random_exponential(
                multiplier=s.connect_retry_initial, max=s.connect_retry_max
            ),
            stop=stop_before_delay(deadline),
            before_sleep=lambda state: _log_retry(state, deadline),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    await self._probe()
        except Exception as exc:
            mismatch = detect_mismatch(exc) if s.pooler == "none" else None
            if mismatch is not None:
                log.error("db.pooler.detected", setting="DB_POOLER", hint=str(mismatch))
                raise mismatch from None
            cause, hint = describe(exc)
            if is_transient(exc):
                raise ConnectTimeout(
                    f"could not connect to {s.safe_url} within DB_CONNECT_RETRY_DEADLINE="
                    f"{deadline:g}s: {hint}",
                    cause=cause,
                ) from None
            raise ConnectFatal(f"could not connect to {s.safe_url}: {hint}", cause=cause) from None

    async def _start_degraded(self) -> None:
        first: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self._reconnect = asyncio.create_task(self._reconnect_forever(first), name="pa-db-connect")
        await asyncio.wait({first}, timeout=self.settings.degraded_start_wait)  # never a cancel
        error = first.result() if first.done() else None
        if error is not None and not is_transient(error):
            await self.stop()
            cause, hint = describe(error)
            raise ConnectFatal(
                f"could not connect to {self.settings.safe_url}: {hint}", cause=cause
            ) from None
        if not self.ready:
            cause = describe(error)[0] if error is not None else "still connecting"
            log.warning("db.degraded", cause=cause, url=self.settings.safe_url)

    async def _reconnect_forever(self, first: asyncio.Future[BaseException | None]) -> None:
        s = self.settings
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._probe()
            except Exception as exc:
                if not first.done():
                    first.set_result(exc)
                if not is_transient(exc):
                    log.error("db.reconnect.failed", cause=describe(exc)[0], hint=describe(exc)[1])
                cap = min(s.connect_retry_max, s.connect_retry_initial * 2**attempt)
                await asyncio.sleep(random.uniform(0, cap))  # noqa: S311 - full jitter, not crypto
                continue
            await self._warm_up()
            self.ready = True
            if not first.done():
                first.set_result(None)
            if attempt > 1:
                log.info("db.recovered", attempts=attempt)
            return

    async def _warm_up(self) -> None:
        old = unsupported_version(self._engine().dialect.server_version_info)
        if old is not None:  # the first connection told the dialect the server's version
            log.warning("db.server.unsupported", hint=old)
        count = self.settings.warmup_connections
        if count <= 0:
            return
        began = time.perf_counter()
        engine = self._engine()
        conns = [engine.connect() for _ in range(count)]
        results = await asyncio.gather(*(c.start() for c in conns), return_exceptions=True)
        started = [
            c for c, r in zip(conns, results, strict=True) if not isinstance(r, BaseException)
        ]
        await asyncio.gather(*(c.close() for c in started))  # never close one that did not start
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning("db.warmup.failed", count=len(failed), cause=describe(failed[0])[0])
        log.info(
            "db.warmup",
            requested=count,
            opened=len(started),
            ms=round((time.perf_counter() - began) * 1000, 1),
        )


def _log_retry(state: RetryCallState, deadline: float) -> None:
    exc = state.outcome.exception() if state.outcome else None
    elapsed = state.seconds_since_start or 0.0
    log.warning(
        "db.connect.retry",
        attempt=state.attempt_number,
        delay=round(state.upcoming_sleep, 3),
        cause=type(exc).__name__ if exc else None,
        hint=describe(exc)[1] if exc else None,
        deadline_s=deadline,
        left_s=round(max(0.0, deadline - elapsed), 1),
        until=f"retrying for {max(0.0, deadline - elapsed):.1f}s more "
        f"(DB_CONNECT_RETRY_DEADLINE={deadline:g}s)",
    )
