"""PostgreSQL's own count of the work a scenario caused in its database: transactions committed
(pg_stat_database) and statements executed (pg_stat_statements, when it is loaded), per
request. Ratios say how fast; these say how much durable work each request cost."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg

_COMMITS = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"
_STATEMENTS = ("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
               "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)")


@dataclass
class Counts:
    commits: float = 0.0
    statements: float | None = None
    samples: dict[str, Any] = field(default_factory=dict)

    def per_request(self, requests: int) -> dict[str, float | None]:
        if requests <= 0:
            return {}
        return {"commits": round(self.commits / requests, 2),
                "statements": None if self.statements is None
                else round(self.statements / requests, 2)}


async def _read(url: str) -> tuple[float, float | None]:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(url)
    try:
        commits = float(await conn.fetchval(_COMMITS, name) or 0)
        statements: float | None = None
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            statements = float(await conn.fetchval(_STATEMENTS, name))
        return commits, statements
    finally:
        await conn.close()


async def _settled(url: str, wait_s: float) -> tuple[float, float | None]:
    """Backends report their counters when they go idle, up to ~10 s later (PostgreSQL 15):
    read until two readings a second apart agree, or `wait_s` has passed."""
    last = await _read(url)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = await _read(url)
        if now == last:
            break
        last = now
    return last


@contextlib.contextmanager
def counted(url: str | None, *, wait_s: float = 12.0) -> Generator[Counts]:
    """Counts of `url`'s database over the block (its own reads add a handful of
    statements, nothing next to thousands of requests)."""
    counts = Counts()
    if url is None:
        yield counts
        return
    before = asyncio.run(_settled(url, wait_s))
    yield counts
    after = asyncio.run(_settled(url, wait_s))
    counts.commits = after[0] - before[0]
    if before[1] is not None and after[1] is not None:
        counts.statements = after[1] - before[1]
