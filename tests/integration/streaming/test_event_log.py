"""The relay and the hub against real PostgreSQL: ordering, resume, fan-out, isolation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from malipo.domain.errors import Unavailable
from malipo.domain.events import EventFilter, Heartbeat, StatusEvent
from malipo.domain.status import Direction, Status
from malipo.store.events import OUTBOX_CHANNEL
from malipo.store.rows import last_event_sequence
from malipo.store.unit_of_work import create_pool
from malipo.streaming import EventHub, EventRelay
from malipo.streaming.relay import RELAY_LOCK
from tests.integration.streaming.writers import (
    assert_gap_free,
    collect,
    create_payment,
    insert_outbox,
    payload,
    running,
    transition,
    wait_for,
)


async def test_concurrent_writers_reach_a_subscriber_gap_free_in_commit_order(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    writers, per_writer, payments_per_writer = 20, 100, 5
    payment_ids = [f"{tenant}-w{w}-p{p}" for w in range(writers)
                   for p in range(payments_per_writer)]
    async with writers_pool.acquire() as conn:
        for pid in payment_ids:
            await create_payment(conn, tenant, pid)
    relay, hub = EventRelay(pool, poll_interval_s=0.2), EventHub(pool)
    async with running(relay, hub):
        start = (await pool.fetchval("SELECT head FROM event_log_state"))
        stream = hub.subscribe(EventFilter(tenant=tenant), None)  # before any writer

        async def writer(w: int) -> None:
            # Several payments per writer, and each payment also written by another writer,
            # so one payment's transitions race for its row lock.
            for step in range(per_writer):
                pid = payment_ids[(w * payments_per_writer + step) % len(payment_ids)]
                await transition(writers_pool, tenant, pid, step=w * 1000 + step)

        total = writers * per_writer
        receiving = asyncio.create_task(collect(stream, total, timeout=25))
        await asyncio.gather(*(writer(w) for w in range(writers)))
        events = await receiving

    assert len(events) == total
    assert_gap_free(events)
    assert events[0].sequence == start + 1
    # The log as a whole is 1..head with nothing missing, and the outbox is drained.
    count, low, high = await pool.fetchrow("SELECT count(*), min(sequence), max(sequence) "
                                           "FROM events")
    assert count == high - low + 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    # A payment's last_event_sequence, as reads give it, is its newest event.
    newest: dict[str, int] = {}
    for e in events:
        newest[e.payment_id] = e.sequence
    horizon = await pool.fetchval("SELECT purged_through FROM event_log_state")
    read = dict(await pool.fetch(
        f"SELECT p.id, {last_event_sequence('p')} FROM payments p WHERE tenant = $1", tenant))
    assert read == {pid: newest.get(pid, horizon) for pid in payment_ids}


async def test_per_payment_order_follows_the_row_lock(pool: asyncpg.Pool,
                                                      writers_pool: asyncpg.Pool,
                                                      tenant: str) -> None:
    pid = f"{tenant}-hot"
    async with writers_pool.acquire() as conn:
        await create_payment(conn, tenant, pid)
    relay = EventRelay(pool, poll_interval_s=0.1)
    counter = iter(range(1_000_000))

    async def writer() -> None:
        for _ in range(20):
            # The step is drawn under the row lock, as a real writer decides from the row.
            async with writers_pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT 1 FROM payments WHERE id = $1 FOR UPDATE", pid)
                step = next(counter)
                await conn.execute("INSERT INTO outbox (payload) VALUES ($1)",
                                   payload(tenant, pid, step=step))
                await asyncio.sleep(0.001)

    async with running(relay):
        await asyncio.gather(*(writer() for _ in range(10)))
        async with asyncio.timeout(10):
            while await pool.fetchval("SELECT count(*) FROM outbox"):
                await asyncio.sleep(0.05)
    steps = [int(r["message"]) for r in await pool.fetch(
        "SELECT message FROM events WHERE payment_id = $1 ORDER BY sequence", pid)]
    assert steps == list(range(200))


async def test_resume_from_a_mid_stream_cursor_misses_and_repeats_nothing(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    relay, hub = EventRelay(pool, poll_interval_s=0.1), EventHub(pool)
    async with running(relay, hub):
        before = await pool.fetchval("SELECT head FROM event_log_state")
        await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-{i % 7}", step=i)
                                           for i in range(300)])
        first = hub.subscribe(EventFilter(tenant=tenant), before)
        seen = await collect(first, 120)
        await first.aclose()  # the client disconnects
        cursor = seen[-1].sequence

        # More events commit while the client is away and while it replays.
        more = asyncio.create_task(insert_outbox(
            writers_pool, [payload(tenant, f"{tenant}-{i % 7}", step=i)
                           for i in range(300, 600)]))
        resumed = hub.subscribe(EventFilter(tenant=tenant), cursor)
        rest = await collect(resumed, 480)
        await more
        # Nothing further arrives: no duplicate is waiting behind the seam.
        extra: list[StatusEvent | Heartbeat] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                extra.extend([item async for item in resumed])
    everything = seen + rest
    assert [int(e.message) for e in everything] == list(range(600))
    assert_gap_free(everything)
    assert not [x for x in extra if isinstance(x, StatusEvent)]


async def test_slow_subscriber_stays_bounded_and_fast_ones_get_everything(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    total, buffer_size = 10_000, 256
    relay = EventRelay(pool, poll_interval_s=0.1)
    hub = EventHub(pool, buffer_size=buffer_size)
    flt = EventFilter(tenant=tenant)
    async with running(relay, hub):
        slow = hub.subscribe(flt, None)
        fast = [hub.subscribe(flt, None) for _ in range(3)]
        peak = 0
        slow_got: list[StatusEvent] = []
        producing = True

        async def slow_reader() -> None:
            async for item in slow:
                if isinstance(item, StatusEvent):
                    slow_got.append(item)
                    if len(slow_got) == total:
                        return
                if producing:
                    await asyncio.sleep(0.1)  # one message per 100 ms while events flow

        async def watch_memory() -> None:
            nonlocal peak
            while True:
                peak = max(peak, *hub.buffer_sizes(), 0)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch_memory())
        reading = asyncio.create_task(slow_reader())
        receiving = [asyncio.create_task(collect(s, total, timeout=25)) for s in fast]
        for start in range(0, total, 500):
            await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-{i % 50}", step=i)
                                               for i in range(start, start + 500)])
        fast_results = await asyncio.gather(*receiving)
        slow_during_flow = len(slow_got)
        stats = hub.stats()
        producing = False  # the slow client speeds up: it catches up from the table
        await asyncio.wait_for(reading, 20)
        await wait_for(lambda: hub.stats().catching_up == 0, timeout=5)
        watcher.cancel()

    for got in fast_results:
        assert [int(e.message) for e in got] == list(range(total)), stats
    assert peak <= buffer_size
    assert stats.overflows >= 1
    assert slow_during_flow < total  # it really was behind
    assert [int(e.message) for e in slow_got] == list(range(total))
    assert_gap_free(slow_got)


async def test_two_processes_share_one_leader_and_both_hubs_see_every_event(
        database_url: str, writers_pool: asyncpg.Pool, tenant: str) -> None:
    pool_a = await create_pool(database_url, min_size=1, max_size=5)
    pool_b = await create_pool(database_url, min_size=1, max_size=5)
    try:
        relay_a = EventRelay(pool_a, poll_interval_s=0.1, standby_interval_s=0.1)
        relay_b = EventRelay(pool_b, poll_interval_s=0.1, standby_interval_s=0.1)
        hub_a, hub_b = EventHub(pool_a), EventHub(pool_b)
        both_led = False

        async def watch_leaders() -> None:
            nonlocal both_led
            while True:
                both_led = both_led or (relay_a.is_leader and relay_b.is_leader)
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch_leaders())
        async with running(hub_a, hub_b):
            tasks = {relay_a: asyncio.create_task(relay_a.run()),
                     relay_b: asyncio.create_task(relay_b.run())}
            try:
                await wait_for(lambda: relay_a.is_leader or relay_b.is_leader)
                leader = relay_a if relay_a.is_leader else relay_b
                standby = relay_b if leader is relay_a else relay_a
                await asyncio.sleep(0.3)  # several standby retries
                assert not standby.is_leader
                assert await writers_pool.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND objid = $1 AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())", RELAY_LOCK & 0xFFFFFFFF) == 1
                flt = EventFilter(tenant=tenant)
                on_a, on_b = hub_a.subscribe(flt, None), hub_b.subscribe(flt, None)
                got_a = asyncio.create_task(collect(on_a, 200))
                got_b = asyncio.create_task(collect(on_b, 200))
                await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-p", step=i)
                                                   for i in range(100)])
                await wait_for(lambda: leader.moved >= 100)

                # The leader's process goes away: the standby takes over.
                tasks[leader].cancel()
                await wait_for(lambda: standby.is_leader, timeout=5)
                await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-p", step=i)
                                                   for i in range(100, 200)])
                events_a, events_b = await got_a, await got_b
            finally:
                for task in tasks.values():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        watcher.cancel()
    finally:
        await pool_a.close()
        await pool_b.close()
    assert not both_led
    assert standby.moved >= 1
    assert [int(e.message) for e in events_a] == list(range(200))
    assert [e.sequence for e in events_a] == [e.sequence for e in events_b]
    assert_gap_free(events_a)


async def test_no_filter_crosses_tenants(pool: asyncpg.Pool, writers_pool: asyncpg.Pool) -> None:
    a, b = "iso-a", "iso-b"
    relay, hub = EventRelay(pool, poll_interval_s=0.1), EventHub(pool)
    b_payment = "iso-b-pay"
    filters = [
        EventFilter(tenant=a),
        EventFilter(tenant=a, payment_id=b_payment),  # B's payment id, A's credentials
        EventFilter(tenant=a, provider="gateway"),
        EventFilter(tenant=a, direction=Direction.PAYOUT),
        EventFilter(tenant=a, statuses=frozenset({Status.SUCCEEDED})),
    ]
    async with running(relay, hub):
        before = await pool.fetchval("SELECT head FROM event_log_state")
        live = [hub.subscribe(f, None) for f in filters]
        b_events = [payload(b, b_payment, step=i, direction="PAYOUT", new="SUCCEEDED")
                    for i in range(50)]
        a_events = [payload(a, "iso-a-pay", step=i, provider="kkiapay") for i in range(5)]
        await insert_outbox(writers_pool, b_events + a_events)
        replayed = [hub.subscribe(f, before) for f in filters]

        async def drain(stream: AsyncIterator[StatusEvent | Heartbeat]) -> list[StatusEvent]:
            got: list[StatusEvent] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    async for item in stream:
                        if isinstance(item, StatusEvent):
                            got.append(item)
            return got

        results = await asyncio.gather(*(drain(s) for s in live + replayed))
    for got in results:
        assert all(e.tenant == a for e in got)
    # The unfiltered stream of A saw A's events, live and replayed.
    assert len(results[0]) == 5
    assert len(results[len(filters)]) == 5


async def test_idle_streams_get_heartbeats_with_a_resumable_sequence(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    relay, hub = EventRelay(pool, poll_interval_s=0.1), EventHub(pool, heartbeat_s=0.2)
    async with running(relay, hub):
        stream = hub.subscribe(EventFilter(tenant=tenant), None)
        await insert_outbox(writers_pool, [payload("someone-else", "x-1")])
        head = await _settled_head(pool, hub)
        async with asyncio.timeout(3):
            item = await anext(stream)
            while not (isinstance(item, Heartbeat) and item.sequence == head):
                item = await anext(stream)
    assert isinstance(item, Heartbeat)


async def _settled_head(pool: asyncpg.Pool, hub: EventHub) -> int:
    async with asyncio.timeout(5):
        while True:
            # One snapshot: the head, and nothing left in the outbox to add to it.
            head, waiting = await pool.fetchrow(
                "SELECT (SELECT head FROM event_log_state), (SELECT count(*) FROM outbox)")
            if not waiting and hub.stats().dispatched == head:
                return head
            await asyncio.sleep(0.02)


async def test_close_ends_live_and_catching_up_streams_with_unavailable(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    relay, hub = EventRelay(pool, poll_interval_s=0.1), EventHub(pool)
    async with running(relay, hub):
        await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-1", step=i)
                                           for i in range(10)])
        await _settled_head(pool, hub)
        live = hub.subscribe(EventFilter(tenant=tenant), None)
        replay = hub.subscribe(EventFilter(tenant=tenant), 0)
        first = await anext(replay)
        assert isinstance(first, StatusEvent)
        waiting = asyncio.ensure_future(anext(live))
        await asyncio.sleep(0.05)
        await hub.close()
        with pytest.raises(Unavailable, match="shutting down"):
            await waiting
        with pytest.raises(Unavailable):
            await anext(replay)
        with pytest.raises(Unavailable):
            await anext(hub.subscribe(EventFilter(tenant=tenant), None))
    assert hub.stats().subscribers == 0


async def test_live_streams_of_one_tenant_each_get_exactly_what_their_filter_matches(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    """The hub groups live streams by filter; equal filters share a group, and a stream that
    ends leaves the others of its group streaming."""
    relay, hub = EventRelay(pool, poll_interval_s=0.1), EventHub(pool)
    pay = f"{tenant}-1"
    succeeded = frozenset({Status.SUCCEEDED})
    filters = [
        EventFilter(tenant=tenant),
        EventFilter(tenant=tenant),  # equal to the first: same group
        EventFilter(tenant=tenant, provider="kkiapay"),
        EventFilter(tenant=tenant, statuses=succeeded),
        EventFilter(tenant=tenant, payment_id=pay),
        EventFilter(tenant=tenant, payment_id=pay, statuses=succeeded),
    ]
    mixed = [payload(tenant, pay if i % 2 else f"{tenant}-2", step=i,
                     provider="kkiapay" if i % 3 == 0 else "gateway",
                     new="SUCCEEDED" if i % 4 == 0 else "PROCESSING") for i in range(40)]

    def wanted(flt: EventFilter) -> list[int]:
        return [i for i, p in enumerate(mixed)
                if (not flt.payment_id or p["payment_id"] == flt.payment_id)
                and (not flt.provider or p["provider"] == flt.provider)
                and (not flt.statuses or Status(p["new_status"]) in flt.statuses)]

    async with running(relay, hub):
        await _settled_head(pool, hub)
        streams = [hub.subscribe(f, None) for f in filters]
        leaving = hub.subscribe(EventFilter(tenant=tenant), None)
        await insert_outbox(writers_pool, mixed[:20])
        assert len(await collect(leaving, 1)) == 1
        await leaving.aclose()  # its group keeps the first two streams
        await insert_outbox(writers_pool, mixed[20:])
        results = [await collect(s, len(wanted(f)), timeout=5)
                   for s, f in zip(streams, filters, strict=True)]
    for flt, got in zip(filters, results, strict=True):
        assert [int(e.message) for e in got] == wanted(flt), flt
        assert [e.sequence for e in got] == sorted({e.sequence for e in got})


async def test_a_hub_nobody_watches_skips_events_and_later_streams_still_get_theirs(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    """With no live stream the hub only follows the head (it decodes no event for nobody);
    a stream from a cursor inside that stretch reads it from the table, and one "from now"
    gets exactly what commits after it."""
    relay, hub = EventRelay(pool, poll_interval_s=0.05), EventHub(pool, poll_interval_s=0.05)
    async with running(relay, hub):
        before = int(await pool.fetchval("SELECT head FROM event_log_state"))
        await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-a", step=i)
                                           for i in range(50)])
        target = before + 50
        await wait_for(lambda: hub.stats().dispatched >= target)
        assert hub.stats().delivered == 0  # nobody was there to get them

        live = hub.subscribe(EventFilter(tenant=tenant), None)
        replay = hub.subscribe(EventFilter(tenant=tenant), before)
        await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-a", step=i)
                                           for i in range(50, 60)])
        later, everything = await collect(live, 10), await collect(replay, 60)
        await live.aclose()
        await replay.aclose()
    assert [int(e.message) for e in later] == list(range(50, 60))
    assert [int(e.message) for e in everything] == list(range(60))
    assert_gap_free(everything)


async def _outbox_vacuums(pool: asyncpg.Pool) -> int:
    """Manual vacuums of the outbox (autovacuum counts apart), from the shared statistics
    that VACUUM updates as it ends."""
    return int(await pool.fetchval(
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'outbox'::regclass"))


async def test_the_relay_vacuums_the_outbox_it_empties(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    """Every move reads the outbox from its lowest id, past the index entries of the rows
    earlier moves deleted, until a vacuum clears them; autovacuum comes by once a minute at
    most. The relay vacuums after each `vacuum_every` events moved."""
    vacuums_before = await _outbox_vacuums(pool)
    relay = EventRelay(pool, poll_interval_s=0.05, vacuum_every=100)
    async with running(relay):
        for burst in range(3):
            await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-v", step=i)
                                               for i in range(burst * 40, burst * 40 + 40)])
            await wait_for(lambda burst=burst: relay.moved >= burst * 40 + 40)
        await wait_for(lambda: relay.vacuums >= 1)
        assert relay.vacuums == 1  # 120 events: one vacuum, not one per move
    assert await _outbox_vacuums(pool) == vacuums_before + 1  # PostgreSQL ran it


async def test_the_relay_vacuums_the_outbox_at_most_once_an_interval(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    """A vacuum of the outbox makes every session plan its event-writing statements again
    (PostgreSQL invalidates plans naming a table whose statistics changed), so however fast
    events come, the relay vacuums at most once per `vacuum_interval_s`. Three bursts of 40
    events, each past `vacuum_every`: one vacuum per burst without the floor, one in all
    with it."""
    async def bursts(relay: EventRelay, prefix: str) -> int:
        async with running(relay):
            for burst in range(3):
                await insert_outbox(writers_pool, [
                    payload(tenant, f"{tenant}-{prefix}", step=i)
                    for i in range(burst * 40, burst * 40 + 40)])
                await wait_for(lambda burst=burst: relay.moved >= burst * 40 + 40)
                await wait_for(lambda burst=burst: relay.vacuums >= 1)
            await asyncio.sleep(0.2)  # polls past the last burst: a due vacuum would run
        return relay.vacuums

    assert await bursts(EventRelay(pool, poll_interval_s=0.05, vacuum_every=10,
                                   vacuum_interval_s=0), "f") >= 3
    assert await bursts(EventRelay(pool, poll_interval_s=0.05, vacuum_every=10,
                                   vacuum_interval_s=3600), "i") == 1


async def test_a_relay_that_does_not_listen_is_woken_through_the_hubs_connection(
        pool: asyncpg.Pool, writers_pool: asyncpg.Pool, tenant: str) -> None:
    """`malipo serve` keeps one listening connection per process: PostgreSQL makes every
    listening backend read every NOTIFY in a transaction of its own, and the relay's
    connection read back its own NOTIFY after each move. The hub's connection carries
    other processes' nudges to the relay instead, next to the relay's NOTIFYs to the hub."""
    relay = EventRelay(pool, poll_interval_s=60.0, listen=False)  # only a nudge wakes it
    hub = EventHub(pool)

    async def nudge() -> None:  # as a process that does not lead sends it (EventRelay.nudge)
        await writers_pool.execute("SELECT pg_notify($1, '')", OUTBOX_CHANNEL)

    async with running(relay):
        await wait_for(lambda: relay.is_leader)
        await asyncio.sleep(0.2)  # past the first move as leader, asleep on its poll
        await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-n", step=0)])
        await nudge()
        await asyncio.sleep(0.5)
        unheard = relay.moved  # nobody carries the nudge: the row waits for the poll

    hub.also_listen(OUTBOX_CHANNEL, relay.wake)
    async with running(relay, hub):
        stream = hub.subscribe(EventFilter(tenant=tenant), 0)
        await wait_for(lambda: relay.is_leader)
        await asyncio.sleep(0.2)  # the first move as leader took row 0; now asleep
        moved = relay.moved
        await insert_outbox(writers_pool, [payload(tenant, f"{tenant}-n", step=i)
                                           for i in (1, 2)])
        await nudge()
        await wait_for(lambda: relay.moved >= moved + 2, timeout=5)
        events = await collect(stream, 3, timeout=5)
    assert unheard == 0
    assert [int(e.message) for e in events] == [0, 1, 2]  # the relay's NOTIFYs reached the hub
