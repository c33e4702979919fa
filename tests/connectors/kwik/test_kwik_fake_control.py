"""The fake's HTTP control surface, as the end-to-end phase will drive it from outside."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp

from malipo.app.connector import CallContext
from malipo.connectors.kwik import KwikConnector
from malipo.domain.payments import Payment
from malipo.domain.status import Status
from malipo.sandbox.kwik import KwikFake

PaymentFactory = Callable[..., Payment]


async def test_configure_advance_and_read_state_over_http(
    fake: KwikFake, connector: KwikConnector, make_payment: PaymentFactory, receiver: Any,
) -> None:
    receiver.connector = connector
    payment = make_payment("paid")
    ctx = CallContext()
    await connector.create_payment(payment, ctx)
    async with aiohttp.ClientSession() as http:
        async with http.post(fake.base_url + "/_kwik/config",
                             json={"webhook_url": receiver.url}) as resp:
            assert (await resp.json())["webhook_url"] == receiver.url
        async with http.post(fake.base_url + "/_kwik/advance",
                             json={"until_settled": True}) as resp:
            assert (await resp.json())["steps"] == [[payment.id], [payment.id]]
        await asyncio.gather(*fake._tasks)
        async with http.get(fake.base_url + "/_kwik/state") as resp:
            state = await resp.json()
    assert state["transactions"] == {payment.id: "Paid"}
    assert state["rate_limited"] == 0
    assert [e.update.status for e in receiver.events] == [Status.PROCESSING, Status.SUCCEEDED]
    # what the use case will store: masked, no full account number, no credentials
    submit = next(e for e in ctx.exchanges if e.operation == "kwik.submit")
    assert payment.customer.bank_account.account_number not in submit.request_body
    assert "kwik_secret" not in submit.request_body
