"""``WebhookSink``: an alert sink that POSTs each event as JSON, off the caller's path."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from typing import TYPE_CHECKING

from ..logs import get_logger

if TYPE_CHECKING:
    from .alerts import AlertEvent

__all__ = ["WebhookSink"]

log = get_logger()


class WebhookSink:
    """POSTs each event as JSON from its own task; ``__call__`` only enqueues (never blocks).

    A full queue drops the event (counted in ``dropped``); a failed POST is logged and counted in
    ``failed``. Uses the standard library (urllib in a thread), so no extra dependency.
    """

    def __init__(self, url: str, *, timeout: float = 2.0, max_queue: int = 100) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"WebhookSink url must start with http:// or https://, got {url[:8]!r}..."
            )
        if not timeout > 0:
            raise ValueError(f"WebhookSink timeout must be seconds > 0, got {timeout!r}")
        self.url = url
        self.timeout = timeout
        self.sent = self.failed = self.dropped = 0
        self._queue: asyncio.Queue[AlertEvent] = asyncio.Queue(max_queue)
        self._worker: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<WebhookSink sent={self.sent} failed={self.failed} dropped={self.dropped}>"

    async def __call__(self, event: AlertEvent) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="pa-db-alert-webhook")
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await asyncio.to_thread(self._post, json.dumps(event.as_dict()).encode())
                self.sent += 1
            except Exception as exc:
                self.failed += 1
                log.error(
                    "db.alert.webhook_failed", rule=event.rule, error_class=type(exc).__name__
                )
            finally:
                self._queue.task_done()

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            self.url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            response.read()

    async def aclose(self, drain: float | None = None) -> None:
        """Wait up to ``drain`` seconds (default: timeout) for queued events, then stop."""
        if self._worker is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain if drain is not None else self.timeout)
        worker, self._worker = self._worker, None
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
