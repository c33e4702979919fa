"""Apply SQL migrations in order, once, under an advisory lock (safe with many replicas)."""

from __future__ import annotations

from datetime import datetime
from importlib import resources

import asyncpg

_LOCK_ID = 0x6D616C69706F  # "malipo"


def _migrations() -> list[tuple[str, str]]:
    folder = resources.files("malipo.store") / "migrations"
    files = sorted(p.name for p in folder.iterdir() if p.name.endswith(".sql"))
    return [(name, (folder / name).read_text(encoding="utf-8")) for name in files]


async def status(conn: asyncpg.Connection) -> list[tuple[str, datetime | None]]:
    """Every migration this version ships, with when it was applied (None: pending)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: dict[str, datetime] = {}
    if exists:
        done = {r["name"]: r["applied_at"]
                for r in await conn.fetch("SELECT name, applied_at FROM schema_migrations")}
    return [(name, done.get(name)) for name, _sql in _migrations()]


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply what is missing; return the names applied now."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in _migrations():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied_now.append(name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
    return applied_now
