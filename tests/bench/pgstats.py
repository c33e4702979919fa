"""PostgreSQL's own count of the work a scenario caused in its database: transactions committed
(pg_stat_database), WAL written (pg_stat_wal: the whole cluster, idle but for the scenario) and
statements executed (pg_stat_statements, when it is loaded), per request, and for the
statements that took longest their WAL and buffers per call. Ratios say how fast; these say
how much durable work each request cost, and where a statement's time goes (index entries
and row locks show as WAL records and dirtied buffers)."""

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
# Plans are counted only with pg_stat_statements.track_planning on (the bench's own server
# sets it): every plan PostgreSQL makes again, after a vacuum or ANALYZE changed a table's
# statistics, or for the first runs of a statement in a session, shows here.
_STATEMENTS = ("SELECT coalesce(sum(calls), 0), coalesce(sum(plans), 0), "
               "current_setting('pg_stat_statements.track_planning', true)::bool "
               "FROM pg_stat_statements "
               "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)")
_WAL = "SELECT wal_bytes FROM pg_stat_wal"
_BY_STATEMENT = ("SELECT queryid, calls, total_exec_time, wal_records, wal_bytes, "
                 "shared_blks_hit + shared_blks_read AS blocks, shared_blks_dirtied, query "
                 "FROM pg_stat_statements "
                 "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)")
_TOP = 6  # statements listed per scenario, by execution time


@dataclass(frozen=True)
class Statement:
    """pg_stat_statements' cumulative counters of one statement."""

    calls: int
    exec_ms: float
    wal_records: int
    wal_bytes: int
    blocks: int  # shared buffers read or hit
    dirtied: int
    query: str

    def minus(self, before: Statement | None) -> Statement:
        if before is None:
            return self
        return Statement(self.calls - before.calls, self.exec_ms - before.exec_ms,
                         self.wal_records - before.wal_records,
                         self.wal_bytes - before.wal_bytes, self.blocks - before.blocks,
                         self.dirtied - before.dirtied, self.query)


@dataclass(frozen=True)
class Reading:
    commits: float
    wal_bytes: float
    statements: float | None
    plans: float | None  # None: planning is not tracked
    each: dict[int, Statement]


@dataclass
class Counts:
    commits: float = 0.0
    wal_bytes: float = 0.0
    statements: float | None = None
    plans: float | None = None
    samples: dict[str, Any] = field(default_factory=dict)
    # The statements that took PostgreSQL longest over the block.
    top: list[Statement] = field(default_factory=list)

    def per_request(self, requests: int) -> dict[str, float | None]:
        if requests <= 0:
            return {}
        return {"commits": round(self.commits / requests, 2),
                "wal_bytes": round(self.wal_bytes / requests),
                "statements": None if self.statements is None
                else round(self.statements / requests, 2),
                "plans": None if self.plans is None else round(self.plans / requests, 3)}

    def top_per_request(self, requests: int) -> list[dict[str, Any]]:
        """Each top statement's calls and execution microseconds per request, and its WAL
        and buffers per call."""
        if requests <= 0:
            return []
        return [{"calls": round(s.calls / requests, 2),
                 "exec_us": round(s.exec_ms * 1000 / requests, 1),
                 "wal_records_per_call": round(s.wal_records / s.calls, 1),
                 "wal_bytes_per_call": round(s.wal_bytes / s.calls),
                 "blocks_per_call": round(s.blocks / s.calls, 1),
                 "dirtied_per_call": round(s.dirtied / s.calls, 1),
                 "query": " ".join(s.query.split())[:100]}
                for s in self.top]


async def _read(url: str) -> Reading:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(url)
    try:
        commits = float(await conn.fetchval(_COMMITS, name) or 0)
        wal_bytes = float(await conn.fetchval(_WAL) or 0)
        statements: float | None = None
        plans: float | None = None
        each: dict[int, Statement] = {}
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            calls, planned, tracked = await conn.fetchrow(_STATEMENTS, name)
            statements = float(calls)
            plans = float(planned) if tracked else None
            each = {r["queryid"]: Statement(r["calls"], r["total_exec_time"],
                                            r["wal_records"], int(r["wal_bytes"]),
                                            r["blocks"], r["shared_blks_dirtied"], r["query"])
                    for r in await conn.fetch(_BY_STATEMENT, name)}
        return Reading(commits, wal_bytes, statements, plans, each)
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
        if (now.commits, now.statements) == (last.commits, last.statements):
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
    counts.commits = after.commits - before.commits
    counts.wal_bytes = after.wal_bytes - before.wal_bytes
    if before.statements is not None and after.statements is not None:
        counts.statements = after.statements - before.statements
    if before.plans is not None and after.plans is not None:
        counts.plans = after.plans - before.plans
    grown = [s.minus(before.each.get(qid)) for qid, s in after.each.items()]
    counts.top = sorted((g for g in grown if g.calls > 0), key=lambda g: -g.exec_ms)[:_TOP]
