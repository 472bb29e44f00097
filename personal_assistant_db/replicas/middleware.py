"""``ReadYourWritesMiddleware``: a read-your-writes session per request, carried across requests.

    app = Starlette(..., middleware=[Middleware(ReadYourWritesMiddleware, db=db)])

Each HTTP request opens a fresh session holding the mark the client sent back (cookie
``pa_db_rw`` or header ``X-PA-DB-RW``). A request that wrote sends the new mark back in both. A
pending mark (a commit seen only by the engine event) is resolved first with one
``pg_current_wal_lsn()`` on the primary. The value is a WAL position and a time, not a secret:
a forged one can only send that client's own reads to the primary, or to a replica that has not
caught up with its writes, which is what sending no mark does.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..logs import get_logger
from .consistency import Session, format_mark, open_session, parse_mark

if TYPE_CHECKING:
    from ..database import Database

__all__ = ["COOKIE", "HEADER", "ReadYourWritesMiddleware"]

log = get_logger()
COOKIE = "pa_db_rw"
HEADER = "x-pa-db-rw"


class ReadYourWritesMiddleware:
    """Pure ASGI: non-HTTP scopes pass through untouched."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        db: Database,
        cookie: str | None = COOKIE,
        header: str | None = HEADER,
        max_age: int | None = None,
    ) -> None:
        if cookie is None and header is None:
            raise ValueError("ReadYourWritesMiddleware needs a cookie or a header name")
        self.app = app
        self.db = db
        self.cookie = cookie
        self.header = header.lower() if header else None
        s = db.settings
        self.max_age = (
            max_age if max_age is not None else max(60, math.ceil(s.read_your_writes.window))
        )

    def __repr__(self) -> str:
        return f"<ReadYourWritesMiddleware cookie={self.cookie!r} header={self.header!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.db.replicas.enabled:
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        raw = conn.headers.get(self.header) if self.header else None
        if raw is None and self.cookie:
            raw = conn.cookies.get(self.cookie)
        session = open_session(parse_mark(raw))

        async def send_with_mark(message: Message) -> None:
            if message["type"] == "http.response.start" and session.changed:
                await self._attach(message, session)
            await send(message)

        await self.app(scope, receive, send_with_mark)

    async def _attach(self, message: Message, session: Session) -> None:
        if session.mark is not None and session.mark.pending:
            try:
                await self.db.replicas.resolve_pending()
            except Exception as exc:  # the response must not fail for this
                # Sent as position 0: still pending on the next request, which then reads the
                # primary until the lag monitor's sample of the primary resolves it.
                log.warning("db.read_your_writes.unresolved", error_class=type(exc).__name__)
        mark = session.mark
        if mark is None:
            return
        value = format_mark(mark)
        headers = MutableHeaders(scope=message)
        if self.header:
            headers[self.header] = value
        if self.cookie:
            headers.append(
                "set-cookie",
                f"{self.cookie}={value}; Max-Age={self.max_age}; Path=/; HttpOnly; SameSite=Lax",
            )
