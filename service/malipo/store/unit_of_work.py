"""The PostgreSQL unit of work: one connection, one transaction, commit on success."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from malipo.store.exchange_log import PostgresExchangeLog
from malipo.store.idempotency_keys import PostgresIdempotencyKeys
from malipo.store.payments import PostgresPayments
from malipo.store.refunds import PostgresRefunds
from malipo.store.resolutions import PostgresResolutions


async def init_connection(conn: asyncpg.Connection) -> None:
    """jsonb travels as Python dicts; decided once per connection.

    JIT off: PostgreSQL compiles any plan its estimate calls expensive. No hot statement here
    is, but a support read of a payment's callbacks (store/exchange_log.py) over 300,000
    deliveries spent 380 of its 430 ms compiling, on every call. A SET rather than a startup
    parameter, which poolers such as PgBouncer refuse."""
    await conn.set_type_codec("jsonb", encoder=_dumps, decoder=json.loads, schema="pg_catalog")
    await conn.execute("SET jit = off")


# One encoder for every jsonb value: json.dumps with options builds a new encoder per call,
# ~0.75 us more for each of the ~7 jsonb values a create writes.
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release without asyncpg's reset query (UNLISTEN *, unlock all, RESET ALL, CLOSE ALL).

    That query cost a round trip on every release. asyncpg still rolls back an open
    transaction and drops listener callbacks first; nothing here leaves other session state
    behind, and the two holders of session state (the relay's advisory lock, LISTEN) undo
    it themselves before they release."""
    del conn


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                     init=init_connection, reset=_keep_session,
                                     command_timeout=30)
    assert pool is not None
    return pool


class _LazyTransaction:
    """The unit of work's connection (store.statements.Statements): BEGIN goes out just
    before the first write or lock. Plain reads before it run on their own: under READ
    COMMITTED every statement takes its own snapshot anyway, so they see what they would
    have seen inside the transaction, and read-only units of work (GetPayment, ListPayments,
    a callback finding its payment) save the BEGIN and COMMIT round trips."""

    def __init__(self, conn: PoolConnectionProxy) -> None:
        self._conn = conn
        self.tx: Any = None
        self._sealed = False

    async def _begin(self) -> None:
        if self.tx is None:
            if self._sealed:
                raise RuntimeError("a unit of work that wrote one statement alone cannot "
                                   "write again: it would not be atomic")
            tx = self._conn.transaction()
            await tx.start()
            self.tx = tx

    def _alone(self) -> None:
        """A statement that is a whole unit of work by itself. Outside a transaction it runs
        in its own implicit one (a single statement is atomic), saving BEGIN and COMMIT;
        the unit of work then refuses further writes. Inside one, it simply joins it."""
        if self.tx is None:
            self._sealed = True

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        return await self._conn.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> asyncpg.Record | None:
        return await self._conn.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return await self._conn.fetchval(sql, *args)

    async def execute_tx(self, sql: str, *args: Any) -> str:
        await self._begin()
        return await self._conn.execute(sql, *args)

    async def executemany_tx(self, sql: str, args: Any) -> None:
        await self._begin()
        await self._conn.executemany(sql, args)

    async def fetchrow_tx(self, sql: str, *args: Any) -> asyncpg.Record | None:
        await self._begin()
        return await self._conn.fetchrow(sql, *args)

    async def fetchval_tx(self, sql: str, *args: Any) -> Any:
        await self._begin()
        return await self._conn.fetchval(sql, *args)

    async def fetchval_alone(self, sql: str, *args: Any) -> Any:
        self._alone()
        return await self._conn.fetchval(sql, *args)

    async def fetchrow_alone(self, sql: str, *args: Any) -> asyncpg.Record | None:
        self._alone()
        return await self._conn.fetchrow(sql, *args)


class PostgresUnitOfWork:
    payments: PostgresPayments
    keys: PostgresIdempotencyKeys
    exchanges: PostgresExchangeLog
    refunds: PostgresRefunds
    resolutions: PostgresResolutions

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: PoolConnectionProxy | None = None
        self._lazy: _LazyTransaction | None = None
        self.committed_events = False

    async def __aenter__(self) -> Self:
        conn = await self._pool.acquire()
        self._conn = conn
        self._lazy = _LazyTransaction(conn)
        self.payments = PostgresPayments(self._lazy)
        self.keys = PostgresIdempotencyKeys(self._lazy)
        self.exchanges = PostgresExchangeLog(self._lazy)
        self.refunds = PostgresRefunds(self._lazy)
        self.resolutions = PostgresResolutions(self._lazy)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        assert self._conn is not None
        assert self._lazy is not None
        # A statement run alone (fetchval_alone) committed by itself; a transaction below.
        wrote_events = self.payments.wrote_events or self.refunds.wrote_events
        committed_events = self._lazy.tx is None and wrote_events
        try:
            if self._lazy.tx is not None:
                if exc_type is None:
                    await self._lazy.tx.commit()
                    committed_events = wrote_events
                else:
                    await self._lazy.tx.rollback()
        finally:
            await self._pool.release(self._conn)
            self._conn = None
            self._lazy = None
            self.committed_events = committed_events


class PostgresUnitOfWorkFactory:
    """Units of work on one pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def __call__(self) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(self.pool)
