"""The simulator remembers a bounded number of payments: a sandbox left running under load
must not grow without end, and a payment it forgot is answered from its scenario."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from malipo.app.connector import CallContext, ProviderAccount
from malipo.connectors.simulator import client
from malipo.connectors.simulator.connector import SimulatorConnector
from malipo.domain.errors import ProviderNotFound
from malipo.domain.ids import new_payment_id
from malipo.domain.money import Money
from malipo.domain.payments import Customer, Payment
from malipo.domain.status import Direction, Method, Status


def a_payment(phone: str) -> Payment:
    now = datetime.now(UTC)
    return Payment(id=new_payment_id(), tenant="acme", direction=Direction.COLLECTION,
                   provider="simulator", account="default", method=Method.MOBILE_MONEY,
                   amount=Money.of(1500, "KES"), idempotency_key=new_payment_id(),
                   created_at=now, updated_at=now, customer=Customer(phone_number=phone))


async def test_memory_is_bounded_and_a_forgotten_payment_still_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "KEEP", 10)
    sim = SimulatorConnector(ProviderAccount("simulator", "default"))
    first = a_payment("+254712345605")  # ends in 05: stays PROCESSING
    created = await sim.create_payment(first, CallContext())
    for _ in range(25):
        await sim.create_payment(a_payment("+254712345605"), CallContext())

    assert len(sim.client.records) == 10 and len(sim.client.calls) == 10
    assert first.id not in sim.client.records and sim.calls_for(first.id) == 0
    # Forgotten, but it was created: answered from its scenario, not "no such payment".
    known = replace(first, status=created.status or Status.PROCESSING,
                    provider_reference=created.provider_reference)
    update = await sim.fetch_status(known, CallContext())
    assert (update.status, update.provider_reference) == (Status.PROCESSING,
                                                          created.provider_reference)
    # A PENDING payment it does not know never reached it.
    with pytest.raises(ProviderNotFound):
        await sim.fetch_status(a_payment("+254712345605"), CallContext())
