"""The fake's second reading of JamboPay's documents, held against the document's samples.

The connector reads the same samples in tests/unit/connectors/jambopay; here the fake's
answers and callbacks must have the samples' shape, and its checks must accept exactly the
documented requests."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from jambopay_document_samples import (
    CALLBACK_ACTIONS,
    CALLBACK_FIELDS,
    COMMIT_FIELDS,
    NOTES_COMMIT,
    NOTES_PRESENTMENT,
    PRESENTMENT_FIELDS,
    STATUS_AIRTIME,
    STATUS_KPLC,
    STATUS_PARAMETER,
    STATUS_URL,
    STATUSES,
)
from jambopay_support import Listener, PayoutFactory, account_for

from malipo.app.connector import CallContext
from malipo.connectors.jambopay import JambopayConnector
from malipo.domain.errors import ProviderRejectedRequest
from malipo.domain.status import Status
from malipo.sandbox import jambopay
from malipo.sandbox.jambopay import JambopayFake


def shape(value: Any) -> Any:
    """Keys in order and JSON types, not values: what a sample fixes about every answer."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    return type(value).__name__


def exact(body: bytes) -> Any:
    return json.loads(body, parse_float=str)  # keep "20.0000" as the document wrote it


async def token(http: aiohttp.ClientSession, fake: JambopayFake) -> dict[str, str]:
    async with http.post(fake.api_base + "/token", data={
            "grant_type": "agency", "username": fake.username,
            "password": fake.password}) as resp:
        bearer = (await resp.json())["access_token"]
    return {"Authorization": f"Bearer {bearer}", "app_key": fake.app_key}


async def present(http: aiohttp.ClientSession, fake: JambopayFake, headers: dict[str, str],
                  form: dict[str, str]) -> tuple[int, Any]:
    async with http.post(fake.api_base + "/api/payments/POST", data=form,
                         headers=headers) as resp:
        return resp.status, await resp.json()


async def commit(http: aiohttp.ClientSession, fake: JambopayFake, headers: dict[str, str],
                 form: dict[str, str]) -> tuple[int, Any]:
    async with http.put(fake.api_base + "/api/payments/PUT", data=form,
                        headers=headers) as resp:
        return resp.status, await resp.json()


async def status(http: aiohttp.ClientSession, fake: JambopayFake, headers: dict[str, str],
                 txid: str) -> bytes:
    async with http.get(fake.api_base + "/api/payments/gettransactionstatus",
                        params={STATUS_PARAMETER: txid}, headers=headers) as resp:
        assert resp.status == 200
        return await resp.read()


KPLC = {"Stream": "kplc", "PhoneNumber": "254712345678", "Amount": "20.00",
        "MeterNumber": "14234567890"}
AIRTIME = {"Stream": "credit", "PhoneNumber": "254712345678", "Amount": "50.00",
           "OperatorCode": "4"}


def test_the_fake_names_the_documented_statuses_and_paths() -> None:
    assert set(jambopay.STATUSES) == set(STATUSES)
    assert "/api/payments/gettransactionstatus" in STATUS_URL
    assert all(name in NOTES_PRESENTMENT for name in PRESENTMENT_FIELDS)
    assert all(name in NOTES_COMMIT for name in COMMIT_FIELDS)


async def test_status_answers_have_the_samples_shape(fake: JambopayFake) -> None:
    async with aiohttp.ClientSession() as http:
        headers = await token(http, fake)
        code, kplc = await present(http, fake, headers, KPLC)
        assert code == 200
        assert (await commit(http, fake, headers, {"Stream": "kplc",
                                                   "TransactionID": kplc["TransactionID"]}))[0] \
            == 200
        kplc_status = exact(await status(http, fake, headers, kplc["TransactionID"]))
        code, airtime = await present(http, fake, headers, AIRTIME)
        assert code == 200
        airtime_status = exact(await status(http, fake, headers, airtime["TransactionID"]))
    assert shape(kplc_status) == shape(exact(STATUS_KPLC))
    assert kplc_status["Status"] == "Completed"
    assert kplc_status["Amount"] == "20.0000"  # four places, as the sample writes it
    assert len(kplc_status["PaidItem"]["Units"].split(".")[1]) == 6
    assert shape(airtime_status) == shape(exact(STATUS_AIRTIME))
    assert airtime_status["Status"] == "Checking"
    assert airtime_status["ReceiptNumber"] is None


async def test_callback_has_exactly_the_documented_fields(
        fake: JambopayFake, listener: Listener) -> None:
    async with aiohttp.ClientSession() as http:
        headers = await token(http, fake)
        _, kplc = await present(http, fake, headers, {**KPLC, "CallbackUrl": listener.url})
        await commit(http, fake, headers, {"Stream": "kplc",
                                           "TransactionID": kplc["TransactionID"]})
    [received] = await listener.wait_for(1)
    body = json.loads(received.body)
    assert tuple(body) == CALLBACK_FIELDS
    assert body["Action"] in CALLBACK_ACTIONS
    assert body["TransactionId"] == kplc["TransactionID"]


async def test_only_documented_requests_are_accepted(fake: JambopayFake) -> None:
    async with aiohttp.ClientSession() as http:
        headers = await token(http, fake)
        code, kplc = await present(http, fake, headers, KPLC)  # no CallbackUrl: optional
        assert code == 200
        for extra in ({"PaidBy": "Wanjiku"}, {"Reference": "po_1"}):
            assert (await present(http, fake, headers, {**KPLC, **extra}))[0] == 400, extra
            assert (await commit(http, fake, headers, {
                "Stream": "kplc", "TransactionID": kplc["TransactionID"], **extra}))[0] == 400
        missing = {k: v for k, v in KPLC.items() if k != "MeterNumber"}
        assert (await present(http, fake, headers, missing))[0] == 400
        assert (await commit(http, fake, headers, {"TransactionID": kplc["TransactionID"]}))[0] \
            == 400
        assert (await commit(http, fake, headers, {"Stream": "kplc",
                                                   "TransactionID": kplc["TransactionID"]}))[0] \
            == 200


@pytest.mark.parametrize("setting", [
    {"grant_type": "client_credentials"},
    {"app_key_header": "X-App-Key"},
    {"airtime_stream": "airtime"},
    {"token_url": "/oauth/token"},
])
async def test_the_fake_accepts_only_its_own_default_where_the_documents_are_silent(
    fake: JambopayFake, listener: Listener, payout: PayoutFactory, setting: dict[str, str],
) -> None:
    # Each assumption is a connector setting; a connector that assumes otherwise than the
    # fake's one reading fails, so a shared assumption is visible, not silently agreed.
    if "token_url" in setting:
        setting = {"token_url": fake.api_base + setting["token_url"]}
    conn = JambopayConnector(account_for(fake, listener, **setting))
    try:
        update = await conn.create_payout(payout(channel="airtime_safaricom", amount_minor=5000),
                                          CallContext())
    except ProviderRejectedRequest:  # the token or the app key refused
        refused = True
    else:  # the presentment refused: the payout fails before any money moves
        refused = update.status is Status.FAILED and update.failure_message == "Invalid stream"
    finally:
        await conn.close()
    assert refused
    assert not fake.transactions
