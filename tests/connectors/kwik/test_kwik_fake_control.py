"""The fake's HTTP control surface, as the end-to-end phase will drive it from outside."""

from __future__ import annotations

import asyncio
import base64
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


async def test_the_fake_refuses_requests_the_documents_do_not_show(fake: KwikFake) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(
        f"{fake.api_key}:{fake.api_secret}".encode()).decode()}
    item = {"transaction_reference": "INV0045", "payment_methods_id": "pam_debit_order",
            "amount": "500.25", "action_date": "2025-03-01", "customer_id": "cus_1",
            "bank_account_id": "ban_1"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async def submit(body: dict[str, Any]) -> tuple[int, Any]:
            async with http.post(fake.api_url + "payments/submit", json=body) as resp:
                return resp.status, await resp.json()

        status, _ = await submit({"batch_reference": "B1", "payments": [item], "extra": 1})
        assert status == 400
        both = {**item, "transaction_reference": "INV0047", "customer": {"person_name": "T"}}
        three_decimals = {**item, "transaction_reference": "INV0046", "amount": "1.005"}
        status, body = await submit({"batch_reference": "B2",
                                     "payments": [item, both, three_decimals]})
        assert status == 200
        assert [p.get("message", "") for p in body["payments"]] == [
            "", "exactly one of customer and customer_id",
            "amount must be a positive ZAR amount with at most 2 decimals"]
        async with http.get(fake.api_url + "lookups/bank_names") as resp:
            assert resp.status == 404  # only the default lookups path is served
    assert list(fake.payments) == ["INV0045"]
    assert fake.transactions == {}  # no collection run yet
