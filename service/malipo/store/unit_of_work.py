"""The PostgreSQL unit of work: one connection, one transaction, commit on success."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from malipo.store.payments import PostgresExchangeLog, PostgresIdempotencyKeys, PostgresPayments


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb travels as Python dicts; decided once per connection."""
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=json.loads, schema="pg_catalog")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                     init=init_connection, command_timeout=30)
    assert pool is not None
    return pool


class PostgresUnitOfWork:
    payments: PostgresPayments
    keys: PostgresIdempotencyKeys
    exchanges: PostgresExchangeLog

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: PoolConnectionProxy | None = None
        self._tx: Any = None

    async def __aenter__(self) -> Self:
        conn = await self._pool.acquire()
        self._conn = conn
        self._tx = conn.transaction()
        await self._tx.start()
        raw: Any = conn
        self.payments = PostgresPayments(raw)
        self.keys = PostgresIdempotencyKeys(raw)
        self.exchanges = PostgresExchangeLog(raw)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._conn is not None
        try:
            if exc_type is None:
                await self._tx.commit()
            else:
                await self._tx.rollback()
        finally:
            await self._pool.release(self._conn)
            self._conn = None


class PostgresUnitOfWorkFactory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def __call__(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool)
