"""The provider's raw payload on events: carried by every change an update causes, masked and
size-capped before it is stored, and handed to subscribers as a protobuf Struct."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from google.protobuf import json_format

from malipo.api.convert import event_to_proto
from malipo.connectors.paykassma import callbacks
from malipo.domain.events import StatusEvent
from malipo.domain.money import Money
from malipo.domain.payments import ChangeKind, Payment, ProviderUpdate, apply_update
from malipo.domain.status import Direction, Method, Status
from malipo.store.rows import PROVIDER_PAYLOAD_LIMIT, event_payload, stored_provider_payload

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PHONE = "254790916213"

# A slice of the document's converted_amount map: integers, two and eight decimals, zeros,
# and codes that look like words (TOP, ALL) to prove no currency trips a masking rule.
CONVERTED = ('{"USD":110.57,"INR":9195,"BTC":0.0042204,"MRO":0,"TOP":264.32,"ALL":10757.78,'
             '"IRR":4674289.85,"DOGE":1728.85705323,"KES":15944,"USDT20":0,"XAU":0.06,'
             '"TINY":0.00000026}')


def _withdrawal_postback() -> bytes:
    item = ('{"activated_datetime":"","comment":"paid to ' + PHONE + '","amount":"15944",'
            '"currency_code":"KES","wallet_type":"mpesa","withdrawal_id":"po_01",'
            '"withdrawal_status":1,"account_number":"' + PHONE + '","account_name":"",'
            '"bank_details":{"bank_code":null,"branch_code":null}}')
    return ('{"signature":"d386dd6214876de4e0ec751397473b9f76df4ec1","wallet_type":"mpesa",'
            '"amount":15944,"currency_code":"KES","label":"2566752","converted_amount":'
            + CONVERTED + ',"direction":"outgoing","created_datetime":"2023-08-19 16:29:01",'
            '"access_key":"FQ9jMwrNSkFbyMNqYFf6Ed4xeKmjHK","additional_data":[' + item + "]}"
            ).encode()


def payment(status: Status = Status.PROCESSING) -> Payment:
    return Payment(id="po_01", tenant="t", direction=Direction.PAYOUT, provider="paykassma",
                   account="default", method=Method.MOBILE_MONEY,
                   amount=Money.of(1594400, "KES"), idempotency_key="k", created_at=NOW,
                   updated_at=NOW, status=status)


def test_every_change_an_update_causes_carries_its_raw_payload() -> None:
    raw = {"status": "paid", "n": 1}
    moved = apply_update(payment(), ProviderUpdate(Status.SUCCEEDED, raw=raw), NOW)
    flagged = apply_update(payment(), ProviderUpdate(
        Status.SUCCEEDED, amount=Money.of(1, "KES"), raw=raw), NOW)
    stale = apply_update(payment(Status.SUCCEEDED), ProviderUpdate(Status.PROCESSING, raw=raw),
                         NOW)
    assert (moved.kind, flagged.kind, stale.kind) == (
        ChangeKind.TRANSITION, ChangeKind.REVIEW, ChangeKind.IGNORED)
    assert moved.provider_payload == flagged.provider_payload == raw
    assert apply_update(payment(), ProviderUpdate(Status.SUCCEEDED), NOW).provider_payload == {}


def test_postback_is_stored_masked_with_converted_amount_exact() -> None:
    [event] = callbacks.events(callbacks.read_postback(_withdrawal_postback()))
    stored = stored_provider_payload(event.update.raw)
    sent = json.loads(_withdrawal_postback(), parse_float=Decimal)
    exact = {k: format(v, "f") if isinstance(v, Decimal) else v
             for k, v in sent["converted_amount"].items()}
    assert stored["converted_amount"] == exact
    assert stored["converted_amount"]["TINY"] == "0.00000026"  # never 2.6E-7
    assert stored["converted_amount"]["BTC"] == "0.0042204"
    item = stored["additional_data"][0]
    assert item["account_number"] == "***213"
    assert item["comment"] == "paid to ***213"
    assert stored["access_key"] == "***"
    assert "signature" not in stored
    text = json.dumps(stored)
    assert PHONE not in text
    assert "FQ9jMwrNSkFbyMNqYFf6Ed4xeKmjHK" not in text
    assert (stored["amount"], stored["label"], item["withdrawal_status"]) == (15944, "2566752", 1)


def test_nested_secrets_and_numbers_are_masked() -> None:
    stored = stored_provider_payload({
        "data": {"token": "tok_live_abc", "msisdn": 254712345678,
                 "receipts": [{"pin": "1234", "note": "call +254 712 345 678"}]},
        "details": ("api_key=sk_live_1", "ok")})
    assert stored["data"]["token"] == "***"
    assert stored["data"]["msisdn"] == "***678"
    assert stored["data"]["receipts"] == [{"pin": "***", "note": "call ***678"}]
    assert stored["details"] == ["api_key=***", "ok"]


def test_values_become_plain_json_that_jsonb_and_a_struct_can_hold() -> None:
    stored = stored_provider_payload({
        "big": 2**60, "small": -42, "ratio": 0.5, "nan": float("nan"),
        "amount": Decimal("1E+3"), "nul": "a\x00b", "when": NOW, "flag": True, "none": None})
    # Past 2^53 an integer becomes text, and 19 digits of text are masked like any number.
    assert stored == {"big": "***976", "small": -42, "ratio": 0.5, "nan": "nan",
                      "amount": "1000", "nul": "a\ufffdb", "when": str(NOW), "flag": True,
                      "none": None}
    json.dumps(stored, allow_nan=False)  # storable as jsonb


def test_oversized_payload_becomes_a_note_instead_of_failing() -> None:
    raw = {"rates": {f"C{i:05d}": "1.2345678" for i in range(2000)}, "status": "ok"}
    stored = stored_provider_payload(raw)
    assert stored["truncated"] is True
    assert stored["json_bytes"] > PROVIDER_PAYLOAD_LIMIT
    assert stored["keys"] == ["rates", "status"]
    just_fits = {"pad": "x" * (PROVIDER_PAYLOAD_LIMIT - len('{"pad":""}'))}
    assert stored_provider_payload(just_fits) == just_fits
    assert stored_provider_payload({"pad": just_fits["pad"] + "x"})["truncated"] is True


def test_outbox_row_and_proto_carry_the_payload() -> None:
    before, after = payment(), payment(Status.SUCCEEDED)
    row = event_payload(before, after, reason="", actor="callback:paykassma",
                        provider_payload={"converted_amount": {"USD": Decimal("110.57"),
                                                               "KES": 15944},
                                          "account_number": PHONE})
    assert row["provider_payload"] == {"converted_amount": {"USD": "110.57", "KES": 15944},
                                       "account_number": "***213"}
    assert event_payload(None, before, reason="", actor="tenant:t")["provider_payload"] == {}
    event = StatusEvent(
        sequence=7, event_id="e", tenant="t", payment_id="po_01", direction=Direction.PAYOUT,
        provider="paykassma", account="default", old_status=Status.PROCESSING,
        new_status=Status.SUCCEEDED, provider_status="1", provider_reference="po_01",
        amount=after.amount, reason="", message="", fulfilment={}, needs_review=False,
        occurred_at=NOW, provider_payload=row["provider_payload"])
    proto = event_to_proto(event).event
    assert json_format.MessageToDict(proto.provider_payload) == row["provider_payload"]
    bare = event_to_proto(replace(event, provider_payload={}))
    assert not bare.event.HasField("provider_payload")
