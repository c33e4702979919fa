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


def _plain_read(sql: str) -> bool:
    head = sql.lstrip()[:6].upper()
    return head == "SELECT" and "FOR UPDATE" not in sql.upper() and "FOR SHARE" not in sql.upper()


class _LazyTransaction:
    """The unit of work's connection: BEGIN goes out just before the first statement that
    writes or locks (anything but a plain SELECT). Plain reads before it run on their own:
    under READ COMMITTED every statement takes its own snapshot anyway, so they see what
    they would have seen inside the transaction, and read-only units of work (GetPayment,
    ListPayments, a callback finding its payment) save the BEGIN and COMMIT round trips."""

    def __init__(self, conn: PoolConnectionProxy) -> None:
        self._conn = conn
        self.tx: Any = None

    async def _begin_for(self, sql: str) -> None:
        if self.tx is None and not _plain_read(sql):
            tx = self._conn.transaction()
            await tx.start()
            self.tx = tx

    async def execute(self, sql: str, *args: Any) -> str:
        await self._begin_for(sql)
        return await self._conn.execute(sql, *args)

    async def executemany(self, sql: str, args: Any) -> None:
        await self._begin_for(sql)
        await self._conn.executemany(sql, args)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        await self._begin_for(sql)
        return await self._conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        await self._begin_for(sql)
        return await self._conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        await self._begin_for(sql)
        return await self._conn.fetchval(sql, *args)


class PostgresUnitOfWork:
    payments: PostgresPayments
    keys: PostgresIdempotencyKeys
    exchanges: PostgresExchangeLog

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: PoolConnectionProxy | None = None
        self._lazy: _LazyTransaction | None = None

    async def __aenter__(self) -> Self:
        conn = await self._pool.acquire()
        self._conn = conn
        self._lazy = _LazyTransaction(conn)
        raw: Any = self._lazy
        self.payments = PostgresPayments(raw)
        self.keys = PostgresIdempotencyKeys(raw)
        self.exchanges = PostgresExchangeLog(raw)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._conn is not None
        assert self._lazy is not None
        try:
            if self._lazy.tx is not None:
                if exc_type is None:
                    await self._lazy.tx.commit()
                else:
                    await self._lazy.tx.rollback()
        finally:
            await self._pool.release(self._conn)
            self._conn = None
            self._lazy = None


class PostgresUnitOfWorkFactory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def __call__(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool)
