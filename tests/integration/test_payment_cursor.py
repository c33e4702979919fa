"""Every answer's last_event_sequence is a cursor that misses nothing of the payment and is
never older than retention, from its very first answer (the create's) on."""

from datetime import timedelta

import asyncpg

from malipo.app.commands import ChangePayment, CreatePayment
from malipo.app.connector import ProviderAccount
from malipo.app.directory import ConnectorDirectory
from malipo.app.payments import cancel_payment, create_payment
from malipo.app.services import Services
from malipo.connectors import registry
from malipo.domain.payments import Customer
from malipo.domain.status import Direction, Status
from malipo.store.callbacks import PostgresCallbackJournal
from malipo.store.events import log_state, move_batch, purge_events, read_range
from malipo.store.unit_of_work import PostgresUnitOfWorkFactory


def _create(key: str) -> CreatePayment:
    return CreatePayment("acme", key, Direction.COLLECTION, "simulator", 1500, "KES",
                         customer=Customer(phone_number="+254712345605"))  # stays PROCESSING


async def _relay(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        while await move_batch(conn, 100):
            pass


async def test_create_and_change_answers_carry_a_cursor_past_the_purge(
        pool: asyncpg.Pool) -> None:
    simulator = registry.build(ProviderAccount("simulator", "default"))
    svc = Services(PostgresUnitOfWorkFactory(pool), ConnectorDirectory([simulator], {}),
                   PostgresCallbackJournal(pool))
    await create_payment(svc, _create("cursor-old"), None)
    await _relay(pool)
    await purge_events(pool, timedelta(0))  # retention took every event so far
    horizon = (await log_state(pool)).purged_through
    assert horizon > 0

    created = await create_payment(svc, _create("cursor-new"), None)
    # Not older than retention (0 would be OUT_OF_RANGE now), and before all of its events.
    assert created.last_event_sequence >= horizon
    await _relay(pool)
    mine = [e for e in await read_range(pool, created.last_event_sequence, 100)
            if e.payment_id == created.id]
    assert [e.new_status for e in mine] == [Status.PENDING, Status.PROCESSING]

    cancelled = await cancel_payment(svc, ChangePayment("acme", "cursor-cancel", created.id,
                                                        "test"), None)
    assert cancelled.last_event_sequence == mine[-1].sequence  # the read it was decided on
