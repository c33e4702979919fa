"""Paykassma withdrawals against the fake, over HTTP: signature, answers, postbacks."""

from __future__ import annotations

import hashlib
import json

import pytest
from paykassma_support import World, build_payment, open_world

from malipo.app.connector import CallContext
from malipo.domain.errors import InvalidRequest, ProviderRejectedRequest
from malipo.domain.payments import Payment
from malipo.domain.status import Direction, Status


def payout(minor: int = 1594400, phone: str = "0790916213", description: str = "") -> Payment:
    return build_payment(minor, phone, direction=Direction.PAYOUT, description=description)


async def test_withdrawal_success_then_postback(world: World) -> None:
    payment = payout(description="winnings/May")
    update = await world.connector.create_payout(payment, CallContext())

    [call] = world.fake.calls_to("/v2/withdrawal/create")
    assert call.status == 200  # the fake checked the signature
    sent = json.loads(call.body)
    assert list(sent) == ["withdrawal_id", "payment_system", "amount", "currency_code", "label",
                          "comment", "account_number", "is_test", "signature"]
    assert sent["withdrawal_id"] == payment.id
    assert (sent["amount"], sent["account_number"], sent["is_test"]) == (15944, "254790916213",
                                                                         True)
    # sha1(private_key . md5(the request as sent, up to its signature)), written out
    unsigned = call.body[:call.body.index(b',"signature":')] + b"}"
    md5 = hashlib.md5(unsigned, usedforsecurity=False).hexdigest()
    assert sent["signature"] == hashlib.sha1(b"withdrawal-private" + md5.encode(),
                                             usedforsecurity=False).hexdigest()
    assert update.status is Status.PROCESSING
    assert update.provider_reference == payment.id

    world.receiver.track(payment, status=update.status,
                         provider_reference=update.provider_reference)
    balance = world.fake.balance
    deliveries = await world.fake.settle_withdrawal(payment.id, 1)
    assert [d.status for d in deliveries] == [200]
    assert world.receiver.payments[payment.id].status is Status.SUCCEEDED
    assert world.fake.balance == balance - 15944


async def test_withdrawal_rejected_by_postback(world: World) -> None:
    payment = payout()
    update = await world.connector.create_payout(payment, CallContext())
    world.receiver.track(payment, status=update.status,
                         provider_reference=update.provider_reference)
    await world.fake.settle_withdrawal(payment.id, 5)
    failed = world.receiver.payments[payment.id]
    assert failed.status is Status.FAILED
    assert failed.failure_reason == "WITHDRAWAL_REJECTED"
    assert failed.provider_status == "5"


async def test_insufficient_balance_is_failed_insufficient_funds(world: World) -> None:
    world.fake.balance = 20000
    first = await world.connector.create_payout(payout(1500000), CallContext())
    assert first.status is Status.PROCESSING
    # 15,000 still new + 10,000 > 20,000: the document's "new and still incomplete" rule
    second = await world.connector.create_payout(payout(1000000), CallContext())
    assert second.status is Status.FAILED
    assert second.failure_reason == "INSUFFICIENT_FUNDS"
    assert second.failure_message == "Insufficient balance"
    assert second.provider_message == "withdrawals_sum_amount: Insufficient balance"
    assert len(world.fake.withdrawals) == 1


async def test_withdrawal_phone_and_amount_rules(world: World) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await world.connector.create_payout(payout(phone="+255790916213"), CallContext())
    assert caught.value.violations[0].field == "customer.phone_number"
    with pytest.raises(InvalidRequest) as caught:
        await world.connector.create_payout(payout(1594450), CallContext())
    assert caught.value.violations[0].field == "amount.amount_minor"
    assert world.fake.calls == []


@pytest.mark.parametrize("algorithm", ["sha1_json_private", "hmac_sha1_json"])
async def test_signature_algorithm_is_an_assumption_the_fake_checks(algorithm: str) -> None:
    # The document names no algorithm; the fake accepts only the connector's default, so
    # another setting is refused here and nothing is created.
    async with open_world(withdrawal_signature_algorithm=algorithm) as world:
        with pytest.raises(ProviderRejectedRequest):
            await world.connector.create_payout(payout(), CallContext())
        assert world.fake.withdrawals == {}


async def test_wrong_private_key_is_rejected(world: World) -> None:
    world.fake.withdrawal_private_key = "rotated-at-paykassma"
    with pytest.raises(ProviderRejectedRequest) as caught:
        await world.connector.create_payout(payout(), CallContext())
    assert "withdrawal-private" not in str(caught.value)
