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
_BY_STATEMENT = ("SELECT queryid, calls, total_exec_time, query FROM pg_stat_statements "
                 "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)")
_TOP = 6  # statements listed per scenario, by execution time

Reading = tuple[float, float | None, dict[int, tuple[int, float, str]]]


@dataclass
class Counts:
    commits: float = 0.0
    statements: float | None = None
    samples: dict[str, Any] = field(default_factory=dict)
    # The statements that took PostgreSQL longest over the block: (calls, exec ms, text).
    top: list[tuple[int, float, str]] = field(default_factory=list)

    def per_request(self, requests: int) -> dict[str, float | None]:
        if requests <= 0:
            return {}
        return {"commits": round(self.commits / requests, 2),
                "statements": None if self.statements is None
                else round(self.statements / requests, 2)}

    def top_per_request(self, requests: int) -> list[dict[str, Any]]:
        """Each top statement's calls and execution microseconds per request."""
        if requests <= 0:
            return []
        return [{"calls": round(calls / requests, 2),
                 "exec_us": round(ms * 1000 / requests, 1),
                 "query": " ".join(query.split())[:100]}
                for calls, ms, query in self.top]


async def _read(url: str) -> Reading:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(url)
    try:
        commits = float(await conn.fetchval(_COMMITS, name) or 0)
        statements: float | None = None
        each: dict[int, tuple[int, float, str]] = {}
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            statements = float(await conn.fetchval(_STATEMENTS, name))
            each = {r["queryid"]: (r["calls"], r["total_exec_time"], r["query"])
                    for r in await conn.fetch(_BY_STATEMENT, name)}
        return commits, statements, each
    finally:
        await conn.close()


async def _settled(url: str, wait_s: float) -> Reading:
    """Backends report their counters when they go idle, up to ~10 s later (PostgreSQL 15):
    read until two readings a second apart agree, or `wait_s` has passed."""
    last = await _read(url)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = await _read(url)
        if now[:2] == last[:2]:
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
    grown = [(calls - before[2].get(qid, (0, 0.0, ""))[0],
              ms - before[2].get(qid, (0, 0.0, ""))[1], query)
             for qid, (calls, ms, query) in after[2].items()]
    counts.top = sorted((g for g in grown if g[0] > 0), key=lambda g: -g[1])[:_TOP]
