"""The callback journal's de-duplication: a duplicate is a duplicate, except of an event that
named a payment we did not know (its re-send must be processed again)."""

import asyncio
from datetime import UTC, datetime

import asyncpg

from malipo.app.journal import CallbackJournal, Delivery
from malipo.store.callbacks import PostgresCallbackJournal


async def _claim(journal: CallbackJournal, key: str) -> bool:
    delivery = await journal.record(Delivery("paykassma", "main", datetime.now(UTC), "", {},
                                             b"{}"))
    return await journal.claim_event("paykassma", "main", key, delivery, "pay_1", "", {})


async def test_an_applied_event_is_a_duplicate_when_resent(pool: asyncpg.Pool) -> None:
    journal = PostgresCallbackJournal(pool)
    assert await _claim(journal, "applied-1")
    await journal.mark_event("paykassma", "main", "applied-1", "APPLIED")
    assert not await _claim(journal, "applied-1")
    assert not await _claim(journal, "applied-1")


async def test_an_event_for_an_unknown_payment_is_claimed_again(pool: asyncpg.Pool) -> None:
    journal = PostgresCallbackJournal(pool)
    assert await _claim(journal, "unknown-1")
    await journal.mark_event("paykassma", "main", "unknown-1", "UNKNOWN_PAYMENT")
    assert await _claim(journal, "unknown-1")  # the re-send is processed
    assert not await _claim(journal, "unknown-1")  # while that one is in hand: duplicate
    await journal.mark_event("paykassma", "main", "unknown-1", "APPLIED")
    assert not await _claim(journal, "unknown-1")
    latest = await pool.fetchval("SELECT max(id) FROM callback_journal")
    row = await pool.fetchrow("SELECT journal_id, outcome FROM callback_events "
                              "WHERE event_key = 'unknown-1'")
    assert row is not None
    assert row["outcome"] == "APPLIED"
    assert row["journal_id"] < latest  # points at the delivery that was processed


async def test_concurrent_outcomes_are_each_written_to_their_own_delivery(
        pool: asyncpg.Pool) -> None:
    """Outcomes marked together (one statement for many deliveries) land on the right rows,
    with their events' outcomes."""
    journal = PostgresCallbackJournal(pool)
    outcomes = ["APPLIED", "IGNORED", "MISMATCH", "DUPLICATE"]
    deliveries = []
    for i in range(40):
        delivery = await journal.record(Delivery("paykassma", "main", datetime.now(UTC), "",
                                                  {}, f"{{\"n\":{i}}}".encode()))
        assert await journal.claim_event("paykassma", "main", f"batch-{i}", delivery,
                                         f"pay_{i}", "", {})
        deliveries.append(delivery)

    await asyncio.gather(*(
        journal.mark_delivery(d, outcomes[i % 4], f"detail {i}",
                              event=("paykassma", "main", f"batch-{i}") if i % 2 else ("", "", ""))
        for i, d in enumerate(deliveries)))

    rows = await pool.fetch("SELECT id, outcome, detail FROM callback_journal "
                            "WHERE id = ANY($1::bigint[]) ORDER BY id", deliveries)
    assert [(r["outcome"], r["detail"]) for r in rows] == [
        (outcomes[i % 4], f"detail {i}") for i in range(40)]
    events = dict(await pool.fetch("SELECT event_key, outcome FROM callback_events "
                                   "WHERE event_key LIKE 'batch-%'"))
    # Odd deliveries named their event; even ones left it as claimed.
    assert events == {f"batch-{i}": outcomes[i % 4] if i % 2 else "RECEIVED"
                      for i in range(40)}
