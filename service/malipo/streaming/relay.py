"""The single relay that turns committed outbox rows into the gap-free event log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from malipo.domain.events import StatusEvent
from malipo.store.events import (
    OUTBOX_CHANNEL,
    export_position,
    move_batch,
    read_range,
    set_export_position,
    vacuum_outbox,
)
from malipo.store.failures import DATABASE_ERRORS

log = logging.getLogger(__name__)

RELAY_LOCK = 0x6D616C69706F01  # "malipo" + 1: distinct from the migrations lock


Listener = Callable[[Any, int, str, str], None]  # asyncpg's: connection, pid, channel, payload


def waking(callback: Callable[[], None]) -> Listener:
    """A listener that only calls `callback` (no awaiting, no I/O): the NOTIFY is a wake-up,
    its payload unused."""
    def listener(_conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        callback()

    return listener


@contextlib.asynccontextmanager
async def listening(pool: asyncpg.Pool,
                    channels: Mapping[str, Listener]) -> AsyncGenerator[PoolConnectionProxy]:
    """A pool connection that LISTENs on each channel while the block runs.

    One such connection per process, not one per reader: PostgreSQL signals every backend
    that listens on any channel at every NOTIFY, and each runs a transaction to read it.
    The pool does not reset sessions (store.unit_of_work), so the LISTENs are undone here;
    if that cannot be done, the connection is closed rather than handed back still
    listening."""
    async with pool.acquire() as conn:
        added: list[tuple[str, Listener]] = []
        try:
            for channel, callback in channels.items():
                await conn.add_listener(channel, callback)
                added.append((channel, callback))
            yield conn
        finally:
            # Already cleaned up by asyncpg (the proxy is detached): nothing is left to undo.
            with contextlib.suppress(asyncpg.InterfaceError):
                await _unlisten(conn, added)


async def _unlisten(conn: PoolConnectionProxy, added: Sequence[tuple[str, Listener]]) -> None:
    """UNLISTEN, or terminate: a lost connection has nothing to UNLISTEN, but asyncpg keeps
    its callbacks (and warns as it goes back to the pool) until it is terminated."""
    if not conn.is_closed():
        with contextlib.suppress(*DATABASE_ERRORS, asyncio.CancelledError):
            for channel, callback in added:
                await conn.remove_listener(channel, callback)
            return
    conn.terminate()


GATHER_FROM = 4  # events in the last move that mark a burst (see EventRelay._gather_s)
VACUUM_EVERY = 1000  # events moved between two vacuums of the outbox (store.events)
# ... and seconds between two, at least. A vacuum updates the outbox's statistics in
# pg_class, which invalidates every cached plan that names the outbox in every session:
# each pooled connection of every process then plans its event-writing statements again
# (~0.55 ms for a create's claim, per session, measured on PostgreSQL 18). Counted in events
# alone, that cost grows with throughput times sessions; a floor in time bounds it.
VACUUM_INTERVAL_S = 1.0


class EventExporter(Protocol):
    """Publishes committed events elsewhere (NATS); must be idempotent per sequence."""

    async def publish(self, events: Sequence[StatusEvent]) -> None: ...


class EventRelay:
    """Moves committed outbox rows into `events`, giving each a gap-free sequence.

    Why this yields commit order without gaps, where a `bigserial` on the log would not:
    a serial is drawn at insert time, so writer A can take 10 and writer B 11, B commits
    first, and a reader that has seen 11 moves its cursor past 10, which then appears
    behind it and is never read. Here writers only append to `outbox` (its id is just a
    tie-break), and one relay at a time (a session advisory lock; the others stand by and
    retry) assigns sequences:

    - It can only see committed outbox rows, so a row that commits after one of its
      snapshots is numbered after every row in that snapshot: sequence order never
      contradicts commit order.
    - Numbers are head+1..head+n, written in the same transaction that moves the rows,
      deletes them from the outbox and advances `event_log_state.head`, and batches run
      one after another (the state row is locked FOR UPDATE, so even a deposed leader that
      is still mid-batch takes its turn). Every snapshot of the log is therefore exactly
      1..head: no hole a reader could step over, no number rolled back and lost.
    - Per payment, order holds because writers of one payment serialize on its row lock:
      the second writer inserts its outbox row only after the first committed, so it has
      the larger id and is never seen without the first.

    The relay NOTIFYs `malipo_events` as a wake-up; readers read the table. (A payment's
    last_event_sequence is read from the log, store/rows.py, not stamped by the relay.)

    Waking the relay: writers call `nudge()` after committing outbox rows. In the leader's
    process that is a local wake-up; elsewhere it becomes one NOTIFY `malipo_outbox` sent
    after the commit, coalesced (at most one in flight per process). Writers never NOTIFY
    inside their own transaction: that holds PostgreSQL's global notify lock through the
    commit's fsync and serialises every writer's commit. A poll covers anything missed.
    The relay LISTENs for that NOTIFY on its own connection unless `listen=False`: then
    whoever holds the process's listening connection calls `wake()` (the event hub, in
    `malipo serve`), and the relay's connection, which NOTIFYs after every move, no longer
    runs a transaction to read its own NOTIFY back.
    """

    def __init__(self, pool: asyncpg.Pool, *, batch: int = 1000, poll_interval_s: float = 0.5,
                 standby_interval_s: float = 2.0, exporter: EventExporter | None = None,
                 lock_key: int = RELAY_LOCK, gather_s: float = 0.001,
                 vacuum_every: int = VACUUM_EVERY, vacuum_interval_s: float = VACUUM_INTERVAL_S,
                 listen: bool = True) -> None:
        self._pool = pool
        self._listen = listen
        self._batch = batch
        self._poll_s = poll_interval_s
        # Under load, the mover woken by a commit waits this long for the commits right
        # behind it, so one move (one round trip, then each hub's one read) carries a burst
        # rather than an event or two. "Under load": the last move carried GATHER_FROM events
        # or more; a quiet system moves each event at once. One millisecond, not five: every
        # event waits out the gather before any stream sees it, and at 1,000 transitions/s a
        # 5 ms gather took WatchStatus p99 from ~12 ms to ~72 ms, while create and callback
        # throughput did not move beyond run-to-run spread (README, Performance).
        self._gather_s = gather_s
        self._standby_s = standby_interval_s
        self._exporter = exporter
        self._lock_key = lock_key
        self._vacuum_every = vacuum_every
        self._vacuum_interval_s = vacuum_interval_s
        self._unvacuumed = 0  # events moved since the outbox was last vacuumed
        self._vacuumed_at = -math.inf  # monotonic time of this process's last vacuum
        self._wake = asyncio.Event()
        self._export_wake = asyncio.Event()
        self._notify_due = asyncio.Event()
        self.is_leader = False
        self.moved = 0  # events moved by this process, for metrics
        self.exported = 0
        self.vacuums = 0  # of the outbox, by this process

    def wake(self) -> None:
        """Another process committed outbox rows (its NOTIFY, read on the process's
        listening connection when the relay does not LISTEN itself)."""
        self._wake.set()

    def nudge(self) -> None:
        """Committed outbox rows are waiting (app.services.Services.uow, after a commit that
        wrote them)."""
        if self.is_leader:
            self._wake.set()
        else:
            self._notify_due.set()

    async def run(self) -> None:
        """Lead or stand by until cancelled; reconnects after any database failure."""
        notifying = asyncio.create_task(self._notify_leader(), name="malipo-outbox-nudge")
        try:
            await self._lead_or_stand_by()
        finally:
            notifying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await notifying

    async def _notify_leader(self) -> None:
        """Wake the leader in another process: one NOTIFY per burst of local commits."""
        while True:
            await self._notify_due.wait()
            self._notify_due.clear()
            if self.is_leader:
                continue
            try:
                await self._pool.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)
            except DATABASE_ERRORS as exc:  # the leader's poll picks the rows up anyway
                log.debug("outbox nudge failed: %r", exc)

    async def _lead_or_stand_by(self) -> None:
        backoff = 0.1
        while True:
            try:
                led = await self._session()
            except DATABASE_ERRORS as exc:
                log.warning("event relay lost its database connection: %r", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            if not led:
                await asyncio.sleep(self._standby_s)

    def _connection(self) -> AbstractAsyncContextManager[PoolConnectionProxy]:
        if self._listen:
            return listening(self._pool, {OUTBOX_CHANNEL: waking(self.wake)})
        return self._pool.acquire()

    async def _session(self) -> bool:
        """One connection's life: False at once if another process leads."""
        async with self._connection() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                return False
            # The lock is released below before the connection goes back to the pool (the
            # pool does not reset sessions), and a dropped connection releases it
            # server-side: a standby takes over.
            self.is_leader = True
            exporting = (asyncio.create_task(self._export_loop(), name="malipo-nats-export")
                         if self._exporter is not None else None)
            try:
                log.info("event relay is the leader")
                while True:
                    self._wake.clear()
                    moved = await move_batch(conn, self._batch)
                    if moved:
                        self.moved += moved
                        self._unvacuumed += moved
                        self._export_wake.set()
                    if moved < self._batch:
                        if self._vacuum_due():  # between bursts
                            await vacuum_outbox(conn)
                            self._unvacuumed = 0
                            self._vacuumed_at = time.monotonic()
                            self.vacuums += 1
                        await self._sleep(self._wake, self._poll_s)
                        if moved >= GATHER_FROM and self._wake.is_set():
                            await asyncio.sleep(self._gather_s)
            finally:
                self.is_leader = False
                try:
                    await conn.execute("SELECT pg_advisory_unlock($1)", self._lock_key)
                except (*DATABASE_ERRORS, asyncio.CancelledError):
                    # Never hand a connection that may hold the leader lock back to the
                    # pool: closing it releases the lock server-side.
                    conn.terminate()
                if exporting is not None:
                    exporting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await exporting

    def _vacuum_due(self) -> bool:
        return (self._unvacuumed >= self._vacuum_every
                and time.monotonic() - self._vacuumed_at >= self._vacuum_interval_s)

    @staticmethod
    async def _sleep(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await event.wait()

    async def _export_loop(self) -> None:
        """Publish events after the stored export position, then advance it.

        Runs beside the mover so a NATS outage never holds back the log; after a crash the
        overlap is re-sent and JetStream drops it by message id (the sequence)."""
        assert self._exporter is not None
        backoff = 0.5
        while True:
            self._export_wake.clear()
            try:
                async with self._pool.acquire() as conn:
                    position = await export_position(conn)
                    events = await read_range(conn, position, 500)
                if events:
                    await self._exporter.publish(events)
                    async with self._pool.acquire() as conn:
                        await set_export_position(conn, events[-1].sequence)
                    self.exported += len(events)
                    backoff = 0.5
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS or database down: keep the log moving, retry
                log.warning("event export failed, retrying in %.1fs: %r", backoff, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            await self._sleep(self._export_wake, self._poll_s * 4)
