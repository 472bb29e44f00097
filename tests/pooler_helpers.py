"""A mixed load for the PgBouncer tests: each client writes its own rows and reads them back.

Every client (one asyncio task) cycles through writes (``db.begin()``), reads (``db.connect()``),
two-statement transactions, a driver-level statement (every other one in AUTOCOMMIT, outside any
transaction), every other cycle a ``/health/ready`` request over HTTP (httpx.ASGITransport), and
the fast path: ``db.execute`` (autocommit), ``db.fetch_val``, ``db.transaction()``,
``db.fetch_all`` and ``db.iterate`` (a server-side cursor).
Each outcome is recorded with its time, so a test can ask where errors fell; a read that does not
return the client's own write is a wrong result.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.routing import Mount

from personal_assistant_db import Database

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pooler_load "
    "(client int NOT NULL, seq int NOT NULL, value text NOT NULL, PRIMARY KEY (client, seq))"
)
INSERT = text("INSERT INTO pooler_load (client, seq, value) VALUES (:c, :s, :v)")
READ = text("SELECT value FROM pooler_load WHERE client = :c AND seq = :s")
COUNT = text("SELECT count(*) FROM pooler_load WHERE client = :c")
LATEST = text("SELECT value FROM pooler_load WHERE client = :c ORDER BY seq DESC LIMIT 3")
# One step of each per cycle: the SQLAlchemy path (0-3), a probe, the fast path (5-8).
OPS = ("write", "read", "transaction", "driver", "probe", "fast-write", "fast-read", "fast-tx")
OPS += ("fast-list",)


@dataclass
class Outcome:
    at: float
    op: str
    error: str | None = None  # "ClassName: first line"


@dataclass
class LoadReport:
    outcomes: list[Outcome] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    probes: dict[int, int] = field(default_factory=dict)  # HTTP status -> count

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error is not None]

    def ok_after(self, moment: float) -> int:
        return sum(1 for o in self.outcomes if o.error is None and o.at > moment)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"


async def run_load(
    db: Database, *, clients: int, seconds: float, health: Starlette | None = None
) -> LoadReport:
    """Drive ``clients`` tasks for ``seconds``; client ``i`` owns the rows ``client = i``."""
    async with db.begin() as conn:
        await conn.execute(text(SCHEMA))
        await conn.execute(text("TRUNCATE pooler_load"))
    report = LoadReport()
    stop = time.monotonic() + seconds
    host = Starlette(routes=[Mount("/health", app=health)]) if health is not None else None
    transport = httpx.ASGITransport(app=host) if host is not None else None

    async def client(i: int, http: httpx.AsyncClient | None) -> None:
        seq = 0  # every insert takes a new seq, failed or not: an unknown commit never collides
        confirmed: dict[int, str] = {}  # seq -> value, for writes whose COMMIT returned
        unknown = 0  # writes that failed: committed or not, the client cannot know
        maybe: set[str] = set()  # their values: a COMMIT lost with PgBouncer may still have landed
        step = 0
        while time.monotonic() < stop:
            step += 1
            kind = step % len(OPS)
            op = OPS[kind]
            try:
                if kind in (5, 7):  # the fast path: autocommit write, or a transaction
                    seq += 1
                    value = f"{i}:{seq}:{step}"
                    params = {"c": i, "s": seq, "v": value}
                    try:
                        if kind == 5:
                            await db.execute(INSERT, params)
                        else:
                            async with db.transaction() as tx:
                                await tx.execute(INSERT, params)
                                count = await tx.fetch_val(COUNT, {"c": i}) or 0
                                low = len(confirmed) + 1
                                if not low <= count <= low + unknown:
                                    report.wrong.append(f"client {i} counted {count}, not {low}")
                    except Exception:
                        unknown += 1
                        maybe.add(value)
                        raise
                    confirmed[seq] = value
                elif kind == 6 and confirmed:
                    last = max(confirmed)
                    got = await db.fetch_val(READ, {"c": i, "s": last})
                    if got != confirmed[last]:
                        report.wrong.append(f"client {i} read {got!r}, wrote {confirmed[last]!r}")
                elif kind == 8 and confirmed:
                    rows = await db.fetch_all(LATEST, {"c": i})
                    streamed = [r.value async for r in db.iterate(LATEST, {"c": i}, batch=1)]
                    last = max(confirmed)
                    newest = rows[0].value
                    newer_unknown = newest in maybe and int(newest.split(":")[1]) > last
                    if (newest != confirmed[last] and not newer_unknown) or [
                        r.value for r in rows
                    ] != streamed:
                        report.wrong.append(f"client {i} listed {rows[:1]} / {streamed[:1]}")
                elif kind in (0, 2):
                    seq += 1
                    value = f"{i}:{seq}:{step}"
                    try:
                        async with db.begin() as conn:
                            await conn.execute(INSERT, {"c": i, "s": seq, "v": value})
                            if kind == 2:
                                count = (await conn.execute(COUNT, {"c": i})).scalar() or 0
                                low = len(confirmed) + 1
                                if not low <= count <= low + unknown:
                                    report.wrong.append(f"client {i} counted {count}, not {low}")
                    except Exception:
                        unknown += 1
                        maybe.add(value)
                        raise
                    confirmed[seq] = value
                elif kind == 1 and confirmed:
                    last = max(confirmed)
                    async with db.connect() as conn:
                        got = (await conn.execute(READ, {"c": i, "s": last})).scalar()
                    if got != confirmed[last]:
                        report.wrong.append(f"client {i} read {got!r}, wrote {confirmed[last]!r}")
                elif kind == 3:  # a driver statement; every other one outside a transaction
                    async with db.connect() as conn:
                        if step % 2:
                            await conn.execution_options(isolation_level="AUTOCOMMIT")
                        result = await conn.exec_driver_sql("SELECT $1::int * 2", (i,))
                        doubled = result.scalar()
                    if doubled != i * 2:
                        report.wrong.append(f"client {i} got {doubled} for {i} * 2")
                elif kind == 4 and http is not None and (step // len(OPS)) % 2 == 0:
                    response = await http.get("/health/ready")
                    report.probes[response.status_code] = (
                        report.probes.get(response.status_code, 0) + 1
                    )
                    if response.status_code != 200:
                        raise RuntimeError(f"/health/ready answered {response.status_code}")
                else:
                    continue
            except Exception as exc:
                report.outcomes.append(Outcome(time.monotonic(), op, _error(exc)))
                await asyncio.sleep(0.01)  # an outage: do not spin
            else:
                report.outcomes.append(Outcome(time.monotonic(), op))

    if transport is not None:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await asyncio.gather(*(client(i, http) for i in range(clients)))
    else:
        await asyncio.gather(*(client(i, None) for i in range(clients)))
    return report
