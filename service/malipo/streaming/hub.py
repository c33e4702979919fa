"""Fan-out of the event log to WatchStatus subscribers: one reader per process, many streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import asyncpg

from malipo.domain.errors import FieldViolation, InvalidRequest, OutOfRange, Unavailable
from malipo.domain.events import EventFilter, Heartbeat, StatusEvent
from malipo.store.events import EVENTS_CHANNEL, Conn, log_state, read_new, read_page
from malipo.store.failures import DATABASE_ERRORS
from malipo.streaming.relay import Listener, listening, waking

log = logging.getLogger(__name__)


def _wake(sub: _Subscriber) -> None:
    waiter = sub.waiter
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class _Mode(Enum):
    LIVE = "live"          # indexed: the hub's reader pushes matching events into the buffer
    CATCHUP = "catchup"    # reads the table at its own pace (replay, or after an overflow)
    WAITING = "waiting"    # the hub has not read the log head yet (process start)


@dataclass(eq=False, slots=True)
class _Subscriber:
    filter: EventFilter
    # Sequence up to which every matching event is in the buffer or was yielded; None only
    # for a "from now" subscription taken before the hub knew the head.
    position: int | None
    mode: _Mode
    # Events not yet taken by the stream. A list, taken whole (swapped for a new one) by the
    # stream: an empty list is 56 bytes where an empty deque is 624, and taking a batch
    # costs one swap rather than a popleft per event.
    buffer: list[StatusEvent] = field(default_factory=list[StatusEvent])
    # Set while the stream waits; whoever changes its state (buffer, mode, heartbeat_due,
    # closed) resolves it. A bare future: cheaper than an Event at 10k streams.
    waiter: asyncio.Future[None] | None = None
    last_sent: float = 0.0  # loop time of the last message yielded
    heartbeat_due: bool = False
    closed: bool = False


@dataclass(frozen=True, slots=True)
class HubStats:
    subscribers: int
    live: int
    catching_up: int
    head: int          # log head as of the hub's last read
    dispatched: int    # highest sequence handed to live subscribers
    lag: int           # head - dispatched
    max_buffered: int  # largest subscriber buffer right now (bounded by buffer_size)
    overflows: int     # times a subscriber fell back to reading the table
    delivered: int     # events placed in subscriber buffers


class EventHub:
    """Reads each new event once and hands it to matching subscribers.

    NOTIFY `malipo_events` (plus a poll) only wakes the reader; it reads (dispatched, head]
    from the table, or, with no live stream to hand events to, only moves to the head the
    NOTIFY names. Subscribers are indexed by payment id (when their filter names one) or
    by tenant, so an event costs work only for the subscribers that could want it.

    Each subscriber has a buffer of at most `buffer_size` events (plus the batch its stream
    took from it and is still sending). When it is full the subscriber leaves the live index
    and reads the table from its own position, in pages, then rejoins: memory never grows
    with a slow reader and the dispatcher never waits. Live subscribers are grouped by
    filter within their key, so equal filters cost one `matches` per event.

    Seam between table and live (no gap, no duplicate): everything here runs on one event
    loop, so a subscriber whose table read reached sequence p joins the index only if
    p >= dispatched, in the same step as it reads `dispatched` with no await in between;
    later dispatches carry only sequences > dispatched, and it skips any <= p. If the hub
    has moved past p meanwhile, it reads the table again first.
    """

    def __init__(self, pool: asyncpg.Pool, *, buffer_size: int = 1024, heartbeat_s: float = 15.0,
                 poll_interval_s: float = 1.0, page_size: int = 500, scan_window: int = 10_000,
                 read_batch: int = 1000) -> None:
        self._pool = pool
        self._buffer_size = buffer_size
        self._heartbeat_s = heartbeat_s
        self._poll_s = poll_interval_s
        self._page_size = min(page_size, buffer_size)
        self._scan_window = scan_window
        self._read_batch = read_batch
        self._subs: set[_Subscriber] = set()
        # key -> filter -> live subscribers: streams with equal filters (a service's
        # replicas, dashboards) share one `matches` per event.
        self._by_tenant: dict[str, dict[EventFilter, set[_Subscriber]]] = {}
        self._by_payment: dict[str, dict[EventFilter, set[_Subscriber]]] = {}
        self._dispatched: int | None = None
        self._head = 0
        self._notified_head = 0  # the newest head a relay's NOTIFY named
        self._wake = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []
        self._also_listen: dict[str, Listener] = {}
        self._closed = False
        self._overflows = 0
        self._delivered = 0

    # -- the servicer's API ------------------------------------------------------------------

    def subscribe(self, filter: EventFilter,
                  after_sequence: int | None) -> AsyncGenerator[StatusEvent | Heartbeat]:
        """Events matching `filter` after `after_sequence` (None: from now), then live ones.

        Registered on call, before the first `anext`: a "from now" stream includes every
        event committed after this returns. Raises (while iterating) OutOfRange when the
        cursor is older than retention and Unavailable when the hub closes."""
        if after_sequence is None:
            sub = _Subscriber(filter, self._dispatched, _Mode.WAITING)
            if self._dispatched is not None:
                self._join(sub)
        else:
            sub = _Subscriber(filter, max(after_sequence, 0), _Mode.CATCHUP)
        sub.last_sent = asyncio.get_running_loop().time()
        self._subs.add(sub)
        return self._stream(sub)

    def on_new_events(self, callback: Callable[[], None]) -> None:
        """Call `callback` (no awaiting, no I/O) whenever a relay says it moved events into the
        log: whoever else reads the log (the webhook dispatcher) need not poll for them."""
        self._listeners.append(callback)

    def also_listen(self, channel: str, callback: Callable[[], None]) -> None:
        """LISTEN on `channel` too, on the hub's connection, and call `callback` (no
        awaiting, no I/O) for each NOTIFY: one listening connection per process (see
        streaming.relay.listening). Call before `run`."""
        self._also_listen[channel] = waking(callback)

    async def close(self) -> None:
        """End every stream with Unavailable (clients resume from their last sequence)."""
        self._closed = True
        for sub in list(self._subs):
            sub.closed = True
            _wake(sub)
        self._wake.set()

    def stats(self) -> HubStats:
        live = sum(1 for s in self._subs if s.mode is _Mode.LIVE)
        dispatched = self._dispatched or 0
        return HubStats(
            subscribers=len(self._subs),
            live=live,
            catching_up=sum(1 for s in self._subs if s.mode is _Mode.CATCHUP),
            head=self._head,
            dispatched=dispatched,
            lag=max(self._head - dispatched, 0),
            max_buffered=max((len(s.buffer) for s in self._subs), default=0),
            overflows=self._overflows,
            delivered=self._delivered,
        )

    def buffer_sizes(self) -> list[int]:
        return [len(s.buffer) for s in self._subs]

    @property
    def ready(self) -> bool:
        return self._dispatched is not None

    # -- the reader ----------------------------------------------------------------------------

    async def run(self) -> None:
        """LISTEN and dispatch until cancelled or closed; reconnects after database failures."""
        ticking = asyncio.create_task(self._tick_heartbeats(), name="malipo-heartbeats")
        try:
            await self._listen()
        finally:
            ticking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticking

    async def _listen(self) -> None:
        backoff = 0.1
        while not self._closed:
            try:
                channels = {**self._also_listen, EVENTS_CHANNEL: self._on_notify}
                async with listening(self._pool, channels) as conn:
                    if self._dispatched is None:
                        # LISTEN first, then the head: nothing committed after it is lost.
                        self._start_at((await log_state(conn)).head)
                    backoff = 0.1
                    while not self._closed:
                        self._wake.clear()
                        await self._read_and_dispatch(conn)
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self._poll_s):
                                await self._wake.wait()
            except DATABASE_ERRORS as exc:
                log.warning("event hub lost its database connection: %r", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():  # the relay's new head (store/migrations/0010)
            self._notified_head = max(self._notified_head, int(payload))
        self._wake.set()
        for callback in self._listeners:
            callback()

    async def _tick_heartbeats(self) -> None:
        # One timer for all streams, not one per stream: re-arming 10k timers on every
        # delivery cost more than the delivery itself.
        loop = asyncio.get_running_loop()
        tick = min(self._heartbeat_s / 4, 1.0)
        while True:
            await asyncio.sleep(tick)
            due = loop.time() - self._heartbeat_s
            for sub in self._subs:
                if sub.last_sent <= due and sub.mode is not _Mode.CATCHUP and not sub.buffer:
                    sub.heartbeat_due = True
                    _wake(sub)

    def _start_at(self, head: int) -> None:
        self._dispatched = self._head = head
        for sub in list(self._subs):
            if sub.mode is _Mode.WAITING:
                if sub.position is None:
                    sub.position = head
                self._join(sub)  # falls back to CATCHUP if behind
                _wake(sub)

    async def _read_and_dispatch(self, conn: Conn) -> None:
        assert self._dispatched is not None
        if not self._by_tenant and not self._by_payment:
            # No live stream to hand events to: only the head moves (a stream that starts
            # later starts there, or reads the table from its cursor). The relay's NOTIFY
            # names the new head, committed before it was delivered; a poll (or an older
            # relay's empty NOTIFY) reads it. Nothing is decoded for nobody.
            head = self._notified_head
            if head <= self._dispatched:
                head = (await log_state(conn)).head
            if not self._by_tenant and not self._by_payment:  # nobody joined during the read
                self._head = max(self._head, head)
                self._dispatched = max(self._dispatched, head)
                return
        while True:
            events, head = await read_new(conn, self._dispatched, self._read_batch)
            self._head = max(self._head, head)
            if events:
                self._dispatch(events)
            if len(events) < self._read_batch:
                return

    def _dispatch(self, events: list[StatusEvent]) -> None:
        # Synchronous from the first event to `_dispatched = ...`: joins happen between
        # batches, never inside one (see the class docstring).
        limit = self._buffer_size
        by_tenant, by_payment = self._by_tenant, self._by_payment
        live = _Mode.LIVE
        overflowed: list[_Subscriber] = []
        delivered = 0
        for event in events:
            seq = event.sequence
            for groups in (by_tenant.get(event.tenant), by_payment.get(event.payment_id)):
                if groups is None:
                    continue
                for flt, subs in groups.items():
                    if not flt.matches(event):
                        continue
                    for sub in subs:
                        if sub.mode is not live:
                            continue
                        position = sub.position
                        if position is not None and seq <= position:
                            continue
                        buffer = sub.buffer
                        if len(buffer) >= limit:
                            # Leave live mode now, so no later event of this batch lands
                            # behind the one dropped here; the table has them all.
                            sub.mode = _Mode.CATCHUP
                            overflowed.append(sub)
                        else:
                            buffer.append(event)
                            sub.position = seq
                            delivered += 1
                        waiter = sub.waiter  # _wake(sub), inlined: this is the hot loop
                        if waiter is not None and not waiter.done():
                            waiter.set_result(None)
        self._dispatched = events[-1].sequence
        self._delivered += delivered
        for sub in overflowed:
            self._unindex(sub)
            self._overflows += 1

    # -- subscriber bookkeeping ----------------------------------------------------------------

    def _join(self, sub: _Subscriber) -> bool:
        """Go live if the hub has dispatched nothing this subscriber has not covered."""
        if self._dispatched is None:
            sub.mode = _Mode.WAITING
            return False
        if sub.position is None or sub.position < self._dispatched:
            sub.mode = _Mode.CATCHUP
            return False
        sub.mode = _Mode.LIVE
        flt = sub.filter
        index, key = ((self._by_payment, flt.payment_id) if flt.payment_id
                      else (self._by_tenant, flt.tenant))
        index.setdefault(key, {}).setdefault(flt, set()).add(sub)
        return True

    def _unindex(self, sub: _Subscriber) -> None:
        flt = sub.filter
        index, key = ((self._by_payment, flt.payment_id) if flt.payment_id
                      else (self._by_tenant, flt.tenant))
        groups = index.get(key)
        subs = groups.get(flt) if groups is not None else None
        if groups is not None and subs is not None:
            subs.discard(sub)
            if not subs:
                del groups[flt]
                if not groups:
                    del index[key]

    def _forget(self, sub: _Subscriber) -> None:
        self._unindex(sub)
        self._subs.discard(sub)
        sub.buffer.clear()

    # -- one stream ----------------------------------------------------------------------------

    async def _stream(self, sub: _Subscriber) -> AsyncGenerator[StatusEvent | Heartbeat]:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if sub.closed or self._closed:
                    raise Unavailable("server shutting down")
                if sub.buffer:
                    # Take the whole buffer (the dispatcher starts a new one) and yield it
                    # with no bookkeeping per event: what waits for this stream is then at
                    # most this batch and a full buffer, 2 x buffer_size events.
                    batch, sub.buffer = sub.buffer, []
                    for event in batch:
                        if sub.closed:
                            raise Unavailable("server shutting down")
                        yield event
                    sub.last_sent = loop.time()
                    sub.heartbeat_due = False  # not idle after all
                    continue
                if sub.heartbeat_due:
                    sub.heartbeat_due = False
                    if sub.position is not None:
                        yield Heartbeat(self._examined(sub), datetime.now(UTC))
                        sub.last_sent = loop.time()
                    continue
                if sub.mode is _Mode.CATCHUP:
                    if await self._catch_up(sub) or sub.mode is not _Mode.CATCHUP:
                        continue
                    if loop.time() - sub.last_sent < self._heartbeat_s:
                        continue
                    # A long scan with no match: keep the stream alive, with progress.
                    yield Heartbeat(self._examined(sub), datetime.now(UTC))
                    sub.last_sent = loop.time()
                else:
                    sub.waiter = waiter = loop.create_future()
                    try:
                        await waiter  # an event, a heartbeat tick, or close()
                    finally:
                        sub.waiter = None
        finally:
            self._forget(sub)

    async def _catch_up(self, sub: _Subscriber) -> bool:
        """Read one page from the table into the buffer; True if it brought events."""
        assert sub.position is not None
        async with self._pool.acquire() as conn:
            page = await read_page(conn, sub.filter, sub.position,
                                   limit=self._page_size, window=self._scan_window)
        if sub.position < page.purged_through:
            raise OutOfRange(
                f"events after {sub.position} are past retention; the oldest kept is "
                f"{page.purged_through + 1}", oldest_sequence=page.purged_through + 1)
        if sub.position > page.head:
            # Not a cursor this log gave out (another database, or a restore): skipping to
            # it would silently drop the events in between.
            raise InvalidRequest(FieldViolation(
                "after_sequence", f"{sub.position} is ahead of the event log (at {page.head})"))
        sub.buffer.extend(page.events)
        sub.position = page.examined
        if page.examined >= page.head:
            self._join(sub)  # else the hub moved on during the read: read again
        return bool(page.events)

    def _examined(self, sub: _Subscriber) -> int:
        """Highest sequence this stream has looked at, for heartbeats (a resume cursor)."""
        assert sub.position is not None
        if sub.mode is _Mode.LIVE and not sub.buffer and self._dispatched is not None:
            return max(sub.position, self._dispatched)
        return sub.position
