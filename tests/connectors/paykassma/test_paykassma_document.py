"""The document's own samples (paykassma_document_samples.py, verbatim) fed to both readings: the
connector's parsing, mapping and verification, and the fake's checks and signing.

The postback signature formula, sha1(access_key . private_key . md5(json)), is written out
here with hashlib over JSON texts typed by hand, so neither reading is the judge of the other.
The document's own signatures were made with Paykassma's private keys, which it does not
give: the examples are signed again here with a test key, every other byte as printed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import aiohttp
import paykassma_document_samples as doc
import pytest
from paykassma_support import World, build_payment

from malipo.app.connector import CallContext, InboundCallback, ProviderAccount
from malipo.connectors import exact_json
from malipo.connectors.paykassma import PaykassmaConnector, mapping, signing
from malipo.domain.errors import CallbackRejected
from malipo.domain.money import Money
from malipo.domain.status import Direction, Status
from malipo.sandbox import paykassma as fake_reading

PRIVATE_KEY = "test-postback-private"
DEPOSIT_ACCESS_KEY = "TA25Ea9sjPUFJvIG"          # as printed in the deposit example
WITHDRAWAL_ACCESS_KEY = "FQ9jMwrNSkFbyMNqYFf6Ed4xeKmjHK"  # as printed in the withdrawal one

# The examples' additional_data as PHP json_encode(JSON_UNESCAPED_SLASHES|UNICODE) writes it.
DEPOSIT_ADDITIONAL_JSON = (
    '[{"activated_datetime":"2023-09-27 01:00:52","exchanger_identifier":null,"comment":"",'
    '"amount":"3000","currency_code":"KES","wallet_type":"mpesa","stockpiling_id":4822019,'
    '"transaction_id":"RIR7U1Y6OH","transaction_type":0,"plugin_custom_order_id":"5593665234",'
    '"withdrawal_id":null,"withdrawal_status":null,"account_number":"","account_name":"",'
    '"account_email":"","bank_details":{"bank_code":"","branch_code":""}}]'
)
WITHDRAWAL_ADDITIONAL_JSON = (
    '[{"activated_datetime":"","exchanger_identifier":"","comment":"transaction_id=0",'
    '"amount":"15944","currency_code":"KES","wallet_type":"mpesa","stockpiling_id":null,'
    '"transaction_id":"","transaction_type":null,"plugin_custom_order_id":"",'
    '"withdrawal_id":"1071050","withdrawal_status":1,"account_number":"254790916213",'
    '"account_name":"","account_email":"","bank_details":{"bank_code":null,"branch_code":null}}]'
)
# The withdrawal request example without its signature, written the same way.
WITHDRAWAL_UNSIGNED_JSON = (
    '{"withdrawal_id":"85858053","payment_system":"mpesa","amount":1000,"currency_code":"KES",'
    '"label":"160496026","comment":"withdrawal","account_number":"254724653314","is_test":true}'
)
DOCUMENT_SIGNATURES = {"deposit": "942c4322170f68bb7939050d892f2437d62d9e79",
                       "withdrawal": "d386dd6214876de4e0ec751397473b9f76df4ec1"}
EXAMPLES = {
    "deposit": (doc.DEPOSIT_POSTBACK, DEPOSIT_ACCESS_KEY, DEPOSIT_ADDITIONAL_JSON),
    "withdrawal": (doc.WITHDRAWAL_POSTBACK, WITHDRAWAL_ACCESS_KEY, WITHDRAWAL_ADDITIONAL_JSON),
}


def formula(access_key: str, private_key: str, signed_json: str) -> str:
    """sha1(access_key . private_key . md5(json)), NOTES.md section 2."""
    inner = hashlib.md5(signed_json.encode(), usedforsecurity=False).hexdigest()
    return hashlib.sha1((access_key + private_key + inner).encode(),
                        usedforsecurity=False).hexdigest()


def resigned(kind: str) -> tuple[bytes, str]:
    """The example as printed, its signature replaced by the formula's for PRIVATE_KEY."""
    body, access_key, additional = EXAMPLES[kind]
    expected = formula(access_key, PRIVATE_KEY, additional)
    assert body.count(DOCUMENT_SIGNATURES[kind]) == 1
    return body.replace(DOCUMENT_SIGNATURES[kind], expected).encode(), expected


def connector(access_key: str) -> PaykassmaConnector:
    return PaykassmaConnector(ProviderAccount("paykassma", "main", {
        "postback_access_key": access_key, "postback_private_key": PRIVATE_KEY}))


def inbound(body: bytes) -> InboundCallback:
    return InboundCallback(provider="paykassma", account="main",
                           headers={"content-type": "application/json"}, body=body, query={},
                           remote="127.0.0.1", received_at=datetime.now(UTC))


# --- postbacks: the connector -----------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_connector_verifies_the_documents_postback_by_the_formula(kind: str) -> None:
    body, access_key, _ = EXAMPLES[kind]
    reader = connector(access_key)
    signed, _expected = resigned(kind)
    reader.verify_callback(inbound(signed))  # accepted: same formula, same JSON form
    with pytest.raises(CallbackRejected):  # signed with a key the document keeps to itself
        reader.verify_callback(inbound(body.encode()))
    with pytest.raises(CallbackRejected):
        reader.verify_callback(inbound(signed.replace(b'"amount": "', b'"amount": "1')))


def test_connector_parses_the_documents_deposit_postback() -> None:
    [event] = connector(DEPOSIT_ACCESS_KEY).parse_callback(inbound(doc.DEPOSIT_POSTBACK.encode()))
    assert event.payment_id == "5593665234"  # plugin_custom_order_id
    assert event.direction == Direction.COLLECTION.value
    update = event.update
    assert update.status is Status.SUCCEEDED
    assert update.amount == Money.of(300000, "KES")
    assert update.customer_number == ""  # the example names no payer number: nothing to match
    assert update.fulfilment["mpesa_receipt"] == "RIR7U1Y6OH"
    assert event.event_key == "ingoing:4822019"
    converted = event.raw["converted_amount"]
    assert isinstance(converted, dict)
    assert (converted["BTC"], converted["DOGE"], converted["BZD"], converted["MRO"]) == (
        "0.00077816", "339.50676297", 41, 0)  # exact text, never a float
    assert len(converted) == len(json.loads(doc.DEPOSIT_POSTBACK)["converted_amount"])


def test_connector_parses_the_documents_withdrawal_postback() -> None:
    [event] = connector(WITHDRAWAL_ACCESS_KEY).parse_callback(
        inbound(doc.WITHDRAWAL_POSTBACK.encode()))
    assert (event.payment_id, event.direction) == ("1071050", Direction.PAYOUT.value)
    update = event.update
    assert (update.status, update.provider_status) == (Status.SUCCEEDED, "1")
    assert update.amount == Money.of(1594400, "KES")
    assert update.customer_number == "254790916213"
    assert update.provider_message == "transaction_id=0"


# --- postbacks: the fake ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_fake_signs_the_documents_postback_by_the_formula(kind: str) -> None:
    body, access_key, additional = EXAMPLES[kind]
    parsed = fake_reading.read_json(body)
    assert fake_reading.php_json(parsed["additional_data"]) == additional
    assert fake_reading.postback_signature(parsed, access_key, PRIVATE_KEY) == formula(
        access_key, PRIVATE_KEY, additional)


async def test_fake_postbacks_have_the_documents_shape(world: World) -> None:
    payment = build_payment(300000)
    await world.connector.create_payment(payment, CallContext())
    payout = build_payment(1594400, "0790916213", direction=Direction.PAYOUT)
    await world.connector.create_payout(payout, CallContext())
    for ours, example in ((world.fake.deposit_postback(payment.id), doc.DEPOSIT_POSTBACK),
                          (world.fake.withdrawal_postback(payout.id, 1),
                           doc.WITHDRAWAL_POSTBACK)):
        made, printed = json.loads(ours.body), json.loads(example)
        assert list(made) == list(printed)
        assert list(made["additional_data"][0]) == list(printed["additional_data"][0])
        assert made["wallet_type"] == printed["wallet_type"] == "mpesa"


# --- requests and answers ---------------------------------------------------------------------

def test_connector_builds_the_documents_requests() -> None:
    deposit = build_payment(100000, "254712344321", reference="test")
    body = mapping.deposit_body(deposit) | {"custom_transaction_id": "01abc0095689"}
    assert list(body.items()) == list(json.loads(doc.DEPOSIT_REQUEST).items())
    payout = build_payment(100000, "254724653314", direction=Direction.PAYOUT,
                           reference="160496026", description="withdrawal")
    fields = mapping.withdrawal_fields(payout, is_test=True) | {"withdrawal_id": "85858053"}
    printed = json.loads(doc.WITHDRAWAL_REQUEST)
    del printed["signature"]
    assert list(fields.items()) == list(printed.items())


def test_withdrawal_signature_of_the_documents_request() -> None:
    # The document names no algorithm; both readings take sha1(private_key . md5(json)).
    key = "withdrawal-private"
    inner = hashlib.md5(WITHDRAWAL_UNSIGNED_JSON.encode(), usedforsecurity=False).hexdigest()
    expected = hashlib.sha1((key + inner).encode(), usedforsecurity=False).hexdigest()
    printed = fake_reading.read_json(doc.WITHDRAWAL_REQUEST)
    assert fake_reading.withdrawal_signature(printed, key) == expected
    assert signing.withdrawal_signer("sha1_private_md5_json")(
        exact_json.loads(doc.WITHDRAWAL_REQUEST), key) == expected
    assert expected != printed["signature"]  # the document's was made with its own key


@pytest.mark.parametrize(("answer", "status", "reference", "message"), [
    (doc.DEPOSIT_OK, Status.PROCESSING, "e5c0637c10d326f7",
     "Success. Request accepted for processing"),
    (doc.WITHDRAWAL_OK, Status.PROCESSING, "85858053", ""),
    (doc.DEPOSIT_FAIL, Status.FAILED, "", "MESSAGE"),
    (doc.WITHDRAWAL_FAIL, Status.FAILED, "", "MESSAGE"),
    (doc.INSUFFICIENT_BALANCE, Status.FAILED, "",
     "withdrawals_sum_amount: Insufficient balance"),
])
def test_connector_reads_the_documents_answers(answer: str, status: Status, reference: str,
                                               message: str) -> None:
    update = mapping.read_answer(mapping.lenient_json(answer.encode()), reference="85858053")
    assert update.status is status
    assert update.provider_message == message
    if status is Status.PROCESSING:
        assert update.provider_reference == reference
    else:
        assert update.failure_message
    if answer == doc.INSUFFICIENT_BALANCE:
        assert update.failure_reason == "INSUFFICIENT_FUNDS"


async def test_fake_takes_the_documents_deposit_request_as_printed(world: World) -> None:
    async with aiohttp.ClientSession() as session, session.post(
            f"{world.fake.base_url}/api/v1/payment/create/mpesa",
            params={"secret": world.fake.secret}, data=doc.DEPOSIT_REQUEST,
            headers={"Content-Type": "application/json"}) as resp:
        answer = await resp.json()
    printed = json.loads(doc.DEPOSIT_OK)
    assert resp.status == 200
    assert list(answer) == list(printed)
    assert list(answer["data"]) == list(printed["data"])
    assert answer["data"]["message"] == printed["data"]["message"]
    assert world.fake.deposits["01abc0095689"].amount == 1000


async def test_fake_takes_the_documents_withdrawal_request_signed_by_its_key(
        world: World) -> None:
    key = world.fake.withdrawal_private_key
    inner = hashlib.md5(WITHDRAWAL_UNSIGNED_JSON.encode(), usedforsecurity=False).hexdigest()
    ours = hashlib.sha1((key + inner).encode(), usedforsecurity=False).hexdigest()
    url = f"{world.fake.base_url}/v2/withdrawal/create"
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=doc.WITHDRAWAL_REQUEST, headers=headers) as resp:
            refused = resp.status, await resp.json()
        resigned_body = doc.WITHDRAWAL_REQUEST.replace(
            "2266a77c54925494335c12d365bdbf67f7e6e9c6", ours)
        async with session.post(url, data=resigned_body, headers=headers) as resp:
            accepted = resp.status, await resp.json()
    assert refused == (401, {"status": "fail", "message": "Invalid signature"})
    assert accepted == (200, {"status": "ok"})
    assert world.fake.withdrawals["85858053"].amount == 1000


async def test_fake_answers_in_the_documents_dialect(world: World) -> None:
    # The printed answers are not JSON (a trailing comma, single quotes); the connector reads
    # them as what they mean.
    world.fake.document_dialect = True
    ctx = CallContext()
    accepted = await world.connector.create_payout(
        build_payment(100000, "254724653314", direction=Direction.PAYOUT), ctx)
    world.fake.max_amount = 10
    refused = await world.connector.create_payment(build_payment(100000), ctx)
    message = "The amount must be between 1 and 10."
    assert [e.response_body for e in ctx.exchanges] == [
        doc.WITHDRAWAL_OK, doc.WITHDRAWAL_FAIL.replace("MESSAGE", message)]
    assert accepted.status is Status.PROCESSING
    assert (refused.status, refused.failure_message) == (Status.FAILED, message)


def test_fake_writes_json_the_way_php_json_encode_does() -> None:
    # JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE: "/" and "é" raw, U+2028 and control
    # characters escaped; floats in PHP 7.1+'s form (the connector's differs below 1e-6:
    # signing.py).
    value = fake_reading.read_json(
        '{"u":"a/b ké \\u2028 \\u001f \\"q\\" \\\\","f":[2.6e-7,41.0,0.0001,20.34],"n":null}')
    assert fake_reading.php_json(value) == (
        '{"u":"a/b ké \\u2028 \\u001f \\"q\\" \\\\","f":[2.6e-7,41.0,0.0001,20.34],"n":null}')


@pytest.mark.parametrize(("drop", "add", "status"), [
    (("withdrawal_id", "comment"), {}, 200),  # optional per the table / absent from it
    ((), {"callback_url": "https://x.example"}, 400),  # not a documented field
    (("is_test",), {}, 400),  # required
])
async def test_fake_takes_exactly_the_documented_withdrawal_fields(
        world: World, drop: tuple[str, ...], add: dict[str, str], status: int) -> None:
    body = {k: v for k, v in json.loads(doc.WITHDRAWAL_REQUEST).items()
            if k not in drop and k != "signature"} | add
    unsigned = json.dumps(body, separators=(",", ":"))  # ASCII values: PHP writes the same
    inner = hashlib.md5(unsigned.encode(), usedforsecurity=False).hexdigest()
    body["signature"] = hashlib.sha1((world.fake.withdrawal_private_key + inner).encode(),
                                     usedforsecurity=False).hexdigest()
    async with aiohttp.ClientSession() as session, session.post(
            f"{world.fake.base_url}/v2/withdrawal/create", json=body) as resp:
        answer = await resp.json()
    assert resp.status == status
    assert answer["status"] == ("ok" if status == 200 else "fail")
    assert len(world.fake.withdrawals) == (1 if status == 200 else 0)
