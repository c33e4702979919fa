"""A fake white-label Payment API Gateway: a second reading of gateway-c2b-b2c-api.txt and
NOTES.md section 1, written from the document alone (it imports none of the connector's code,
so a misreading must be made twice, differently, to pass a test).

What it enforces, from the document:
- the signature: HMAC-SHA512, lower-case hex, of `key + value` for every field in the order
  sent, nested objects flattened with a `parent.` prefix, `signature` left out (the intent of
  the PHP sample, whose `$StringForSignature` slip would drop nested fields);
- the field tables of payment_c2b, payment_b2c and status: required fields present, no
  field the document does not list, order_id syntax, amount "with two digits after point";
- each provider id's country, currency, customer_id format, limits, multiples of 5 and
  `extra` fields (RULES, read section by section);
- idempotency on order_id: a repeat gets the identical first answer.
It answers in the document's shapes and sends signed callbacks to callback_url, never for
provider id 14 (the simulator, which stays in progress).

Where the document is silent, the fake's own choices: only the paths
/api/v1/{public_id}/payment_c2b, /payment_b2c and /status exist; errors are HTTP 400
(malformed), 401 (signature, merchant) and 404 (status of an unknown order), each with body
{"status": -1, "result": {...}} (-1: "undefined, for example in an error situation"); a limit
breach is a decline (HTTP 200, status 3); confirm_type 1 asks for an OTP, which C2B sends in a
status request (the document's example) and B2C in a second payment_b2c. Status answers have
the document's status sample's shape: no confirm_type, no bank details (those come only in
the "synchronized response"), extra.customer_redirect where the section says so.

Test control (Python or HTTP):
- outcome per customer_id: `fake.scenarios[customer_id] = Outcome.X` or
  POST /_gateway/scenario {"customer_id", "outcome"}; `fake.default_outcome` otherwise.
  success/fail/cancel complete after `complete_after_s`; decline answers result.code 5 at once;
  otp asks confirm_type 1 (the code is `fake.otp`); redirect shows extra.customer_redirect in
  status (GET on it is the customer confirming); undefined answers status -1, then succeeds;
  pending waits for `complete()`. Nigerian bank-transfer C2B answers with bank details and waits.
- `fake.complete(order_id, status, amount=...)` or POST /_gateway/complete: final state and
  callback (amount overrides the callback's amount, for integrity tests).
- GET /_gateway/orders/{order_id}; chaos switches of FakeProvider (/_control) for callbacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aiohttp import web

from malipo.sandbox.fake_provider import Callback, CallbackMode, DemoSetup, FakeProvider, json_bytes

SIMULATOR = "14"
C2B, B2C = 17, 16  # the document's operation types
# The document's status table: -1 undefined, 0 initiated, 1 in progress, 2 success, 3 failed,
# 4 cancelled. Only -1, 0 and 1 may still change.
OPEN = (-1, 0, 1)

# --- the document's field tables ------------------------------------------------------------

PAYMENT_FIELDS = ("merchant_id", "customer_id", "order_id", "amount", "currency", "country",
                  "callback_url", "provider_id", "extra", "signature")
PAYMENT_REQUIRED = ("merchant_id", "customer_id", "order_id", "amount", "currency",
                    "provider_id", "signature")
# The status request's table names merchant_id, order_id and signature; the C2B example adds
# customer_id and extra.otp for a confirmation.
STATUS_FIELDS = ("merchant_id", "order_id", "customer_id", "extra", "signature")
STATUS_REQUIRED = ("merchant_id", "order_id", "signature")
# Every extra->... the document names.
EXTRA_KEYS = ("otp", "customer_name", "customer_email", "bank_code", "bic", "return_url",
              "customer_doc_type", "customer_doc_number")
DOC_TYPES = ("intl_passport", "driving_license", "national_id")
ORDER_ID = re.compile(r"[a-zA-Z0-9_\-:.]{1,128}")
TWO_DECIMALS = re.compile(r"[0-9]+\.[0-9]{2}")


@dataclass(frozen=True, slots=True)
class Limit:
    minimum: Decimal
    maximum: Decimal | None  # None: "no limit"


def _limit(minimum: str, maximum: str | None = None) -> Limit:
    return Limit(Decimal(minimum), Decimal(maximum) if maximum is not None else None)


@dataclass(frozen=True, slots=True)
class Rules:
    """One provider id as its country section describes it."""

    country: str                 # "" for the simulator: any
    currency: str                # "" for the simulator: any the document lists
    customer: str                # the customer_id the section asks for (a regex)
    c2b: Limit | None            # None: the operation is not offered
    b2c: Limit | None
    c2b_extra: tuple[str, ...] = ()
    b2c_extra: tuple[str, ...] = ()
    multiples_of_5: bool = False
    c2b_flow: str = ""           # "redirect" (customer_redirect in status) or "bank_details"


def _ids(ids: str, rules: Rules) -> dict[str, Rules]:
    return dict.fromkeys(ids.split(), rules)


NAME, EMAIL = "customer_name", "customer_email"
ANY_LIMIT = _limit("0")
# One entry per provider id of the document. Where a section holds several limit tables or
# statements that name no provider id (tabs flattened in the export), the fake enforces only
# what holds under all of them: the lowest minimum, the highest maximum, a multiple or an
# `extra` field only when the whole section asks for it. So it refuses only what the document
# refuses for every id, and a connector's narrower reading of a tab is its own choice.
RULES: Mapping[str, Rules] = {
    # "Simulator, ANY": stays in progress, no callback; no format or limit given.
    **_ids("14", Rules("", "", r".+", ANY_LIMIT, ANY_LIMIT)),
    # Benin: 2290000000000; XOF 100.00 / 100.00 / 1 000 000.00.
    **_ids("9210", Rules("BJ", "XOF", r"229[0-9]{10}", _limit("100", "1000000"),
                         _limit("100", "1000000"))),
    # Burkina Faso: 22600000000; multiples of 5; XOF 200.00 / 200.00 / 1 000 000.00.
    **_ids("9209", Rules("BF", "XOF", r"226[0-9]{8}", _limit("200", "1000000"),
                         _limit("200", "1000000"), multiples_of_5=True)),
    # Cameroon: 237000000000; XAF 500 / 500 / 500000.
    **_ids("802 9062 702 803 9063 703 9131",
           Rules("CM", "XAF", r"237[0-9]{9}", _limit("500", "500000"), _limit("500", "500000"))),
    # DRC: each operator its own rendering; CDF 100 / 100 / 1500000; "no extra parameters".
    **_ids("2197", Rules("CD", "CDF", r"0[0-9]{9}", _limit("100", "1500000"),
                         _limit("100", "1500000"))),
    **_ids("2198", Rules("CD", "CDF", r"[1-9][0-9]{8}", _limit("100", "1500000"),
                         _limit("100", "1500000"))),
    **_ids("2196", Rules("CD", "CDF", r"243[0-9]{9}", _limit("100", "1500000"),
                         _limit("100", "1500000"))),
    **_ids("2199", Rules("CD", "CDF", r"0[0-9]{9}", _limit("100", "1500000"),
                         _limit("100", "1500000"))),
    # Gambia: no number format given; GMD 10 / 10 / no limit.
    **_ids("9227", Rules("GM", "GMD", r"[0-9]+", _limit("10"), _limit("10"))),
    # Ivory Coast: 2250000000000; B2C names the customer. Nine tables (XOF 200 / 1 000 000
    # with multiples of 5 down to XOF 1 / no limit): XOF 1 / 1 / no limit.
    **_ids("2303 2333 699 805 9196 2430 2304 2334 806 9197 2305 2335 804 9198 2306 2336 "
           "9199 2431",
           Rules("CI", "XOF", r"225[0-9]{10}", _limit("1"), _limit("1"), b2c_extra=(NAME,))),
    # Malawi: 265000000000; B2C names the customer; MWK 50.00 / 50.00 / 750000.00.
    **_ids("2087 2088", Rules("MW", "MWK", r"265[0-9]{9}", _limit("50", "750000"),
                              _limit("50", "750000"), b2c_extra=(NAME,))),
    # Nigeria: six tables, NGN 100 / 400000 down to NGN 1 / no limit: NGN 1 / 1 / no limit.
    # Bank transfers answer C2B with the details to pay to; B2C is the "B2C Bank Transfer
    # request example" (provider_id 5026 there, with customer_name, customer_email and
    # bank_code). Cards appear only in the C2B scenario.
    **_ids("2311 706 9122 9143 9231",
           Rules("NG", "NGN", r".+", _limit("1"), _limit("1"),
                 b2c_extra=(NAME, EMAIL, "bank_code"), c2b_flow="bank_details")),
    **_ids("5026", Rules("NG", "NGN", r".+", None, _limit("1"),
                         b2c_extra=(NAME, EMAIL, "bank_code"))),
    **_ids("2312 9230", Rules("NG", "NGN", r".+", _limit("1"), _limit("1"))),
    **_ids("707 9123", Rules("NG", "NGN", r".+", _limit("1"), None)),
    # Egypt: C2B sends customer_name and return_url, then finds customer_redirect in status;
    # EGP 350.00 / 350.00 / 15000.00. The section's sample number (22898200000) is a Togo
    # number, so the country's own 20 + 10 digits is what is checked.
    **_ids("2313 2314 2315",
           Rules("EG", "EGP", r"20[0-9]{10}", _limit("350", "15000"), _limit("350", "15000"),
                 c2b_extra=(NAME, "return_url"), c2b_flow="redirect")),
    # Senegal: 221000000000; XOF 100 / 500000, then twice XOF 200 / 1 000 000 in multiples
    # of 5: XOF 100 / 100 / 1 000 000.
    **_ids("2354 2398 9203 2355 2401 9205 2356 2399 2400",
           Rules("SN", "XOF", r"221[0-9]{9}", _limit("100", "1000000"),
                 _limit("100", "1000000"))),
    # South Africa: 27000000000; no currency or limits given (ZAR, the country's).
    **_ids("2353", Rules("ZA", "ZAR", r"27[0-9]{9}", ANY_LIMIT, ANY_LIMIT)),
    # Sierra Leone: 232000000000; no currency or limits given (SLE, the country's).
    **_ids("2361", Rules("SL", "SLE", r"232[0-9]{9}", ANY_LIMIT, ANY_LIMIT)),
    # Rwanda: 250000000000; C2B name + email and an OTP page from status; B2C name;
    # RWF 100.00 / 100.00 / 10000000.
    **_ids("2351 2352",
           Rules("RW", "RWF", r"250[0-9]{9}", _limit("100", "10000000"),
                 _limit("100", "10000000"), c2b_extra=(NAME, EMAIL), b2c_extra=(NAME,),
                 c2b_flow="redirect")),
    # Tanzania: 255000000000. C2B asks for name + email in one tab and is "standard" in
    # another, B2C's name and the document type belong to tabs too: nothing is required
    # section-wide (a customer_doc_type sent must be one of the three values). Tables from
    # TZS 1000 / 5000000 to TZS 100 / 3000000: TZS 100 / 100 / 5000000. 391-394 are named
    # only by the "2000 TZS for 391-394" B2C minimum.
    **_ids("2109 2111 2308 2323 2339 2403 2110 2112 2307 2322 2340 2108 2113 2309 2338 2404 "
           "2107 2114 2310 2337 2402 391 392 393 394",
           Rules("TZ", "TZS", r"255[0-9]{9}", _limit("100", "5000000"),
                 _limit("100", "5000000"))),
    # Tanzania bank transfer: the account number is the customer_id, with name and BIC;
    # TZS 1000.00 / 7500.00 / 3000000.00.
    **_ids("2405", Rules("TZ", "TZS", r"[0-9]+", _limit("1000", "3000000"),
                         _limit("7500", "3000000"), c2b_extra=(NAME, "bic"),
                         b2c_extra=(NAME, "bic"))),
    # Togo: 228000000000 (and 22898200000 under Egypt); 2357 names the customer both ways,
    # 2358 adds the email for C2B; each id its own table, 2360 has none.
    **_ids("2357", Rules("TG", "XOF", r"228[0-9]{8,9}", _limit("200", "1000000"),
                         _limit("500", "1000000"), c2b_extra=(NAME,), b2c_extra=(NAME,))),
    **_ids("2358", Rules("TG", "XOF", r"228[0-9]{8,9}", _limit("5", "1000000"),
                         _limit("5", "1000000"), c2b_extra=(NAME, EMAIL), b2c_extra=(NAME,))),
    **_ids("2359", Rules("TG", "XOF", r"228[0-9]{8,9}", _limit("100", "1000000"),
                         _limit("100", "500000"))),
    **_ids("2360", Rules("TG", "XOF", r"228[0-9]{8,9}", ANY_LIMIT, ANY_LIMIT)),
    # Uganda: 256709000000. One tab asks C2B for name + email (then an OTP page found in
    # status) and B2C for the name, a second tab says nothing: nothing is required. Tables
    # UGX 500 / 900 / 4000000 and UGX 500 / 500 / 5000000: UGX 500 / 500 / 5000000.
    **_ids("2105 808 2106 809",
           Rules("UG", "UGX", r"256[0-9]{9}", _limit("500", "5000000"),
                 _limit("500", "5000000"), c2b_flow="redirect")),
    # Zambia: 260000000000; ZMW 1.00 / 1.00 / 20000.00.
    **_ids("2118 2332 2370 2119 2371 2372",
           Rules("ZM", "ZMW", r"260[0-9]{9}", _limit("1", "20000"), _limit("1", "20000"))),
    # Kenya: 254000000000; four tables from KES 1 / 250 / 150000 to KES 10 / 10 / 250000:
    # KES 1 / 10 / 250000.
    **_ids("701 2391 700 9125 2390 2392 2393 798",
           Rules("KE", "KES", r"254[0-9]{9}", _limit("1", "250000"), _limit("10", "250000"))),
    # Ghana: 233000000000; the section's first table (10.00 / 10.00 / 1000.00 / 1000.00, no
    # currency named: GHS), then one table each for 980, 981 and 982.
    **_ids("705 704 9127", Rules("GH", "GHS", r"233[0-9]{9}", _limit("10", "1000"),
                                 _limit("10", "1000"))),
    **_ids("980", Rules("GH", "GHS", r"233[0-9]{9}", _limit("1", "2000"), _limit("1", "2000"))),
    **_ids("981", Rules("GH", "GHS", r"233[0-9]{9}", _limit("100"), _limit("10", "25000"))),
    **_ids("982", Rules("GH", "GHS", r"233[0-9]{9}", _limit("100", "25000"),
                        _limit("10", "25000"))),
}
# The document's currency table, for the simulator.
CURRENCIES = ("CDF", "KES", "GMD", "MWK", "NGN", "RWF", "TZS", "UGX", "XOF", "ZMW", "EGP")


# --- the document's signature ---------------------------------------------------------------

def signature_text(data: Mapping[str, Any] | Sequence[Any], prefix: str = "",
                   level: int = 0) -> str:
    """calculateSignature's string: nested arrays under `parent.`, `signature` skipped,
    values as PHP prints them; 16 levels at most, as in the sample."""
    if level >= 16:
        raise ValueError("Recursion level exceeded")
    pairs = data.items() if isinstance(data, Mapping) else enumerate(data)
    text = ""
    for key, value in pairs:
        if isinstance(value, Mapping | list):
            text += signature_text(value, f"{prefix}{key}.", level + 1)  # type: ignore[arg-type]
        elif key != "signature":
            text += f"{prefix}{key}{_php(value)}"
    return text


def _php(value: Any) -> str:
    """PHP's string conversion: true "1", false and null "", 100.0 "100", 100.50 "100.5"."""
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    if isinstance(value, Decimal | float):
        number = Decimal(str(value)).normalize()
        return f"{number:f}" if number != number.to_integral_value() else str(int(number))
    return str(value)


def signature(data: Mapping[str, Any], secret: str) -> str:
    return hmac.new(secret.encode(), signature_text(data).encode(), hashlib.sha512).hexdigest()


def with_signature(data: Mapping[str, Any], secret: str) -> dict[str, Any]:
    """The payload with `signature` added after the other fields."""
    body = {k: v for k, v in data.items() if k != "signature"}
    return body | {"signature": signature(body, secret)}


def signature_ok(data: Mapping[str, Any], secret: str) -> bool:
    sent = data.get("signature")
    if not isinstance(sent, str):
        return False
    try:
        expected = signature(data, secret)
    except ValueError:  # nested deeper than the sample's 16 levels
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


# --- orders ---------------------------------------------------------------------------------

class Outcome(StrEnum):
    SUCCESS = "success"
    FAIL = "fail"
    CANCEL = "cancel"
    DECLINE = "decline"
    OTP = "otp"
    REDIRECT = "redirect"
    UNDEFINED = "undefined"
    PENDING = "pending"


@dataclass
class Order:
    order_id: str
    operation_type: int
    provider_id: str
    customer_id: str
    amount: Decimal
    currency: str
    callback_url: str
    outcome: Outcome
    status: int = 1
    transaction_id: str = ""
    transaction_ref: str = ""
    confirm_type: int = 0
    result: tuple[int, str] = (0, "OK")
    provider_result: tuple[int, str] = (-8888, "")
    extra: dict[str, Any] = field(default_factory=dict)
    first_response: dict[str, Any] | None = None


class Refused(Exception):
    def __init__(self, http: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http, self.code, self.message = http, code, message


def _missing(name: str) -> Refused:
    return Refused(400, 102, f"Missing parameter: {name}")


def _invalid(name: str) -> Refused:
    return Refused(400, 103, f"Invalid parameter: {name}")


class GatewayFake(FakeProvider):
    name = "gateway"

    @classmethod
    def for_demo(cls, setup: DemoSetup) -> GatewayFake:
        return cls(merchant_id="demo-merchant", secret_key=setup.key(), public_id="demo",
                   otp="1234", complete_after_s=setup.complete_after_s)

    def demo_settings(self) -> dict[str, str]:
        return {"base_url": self.base_url, "public_id": self.public_id,
                "merchant_id": self.merchant_id, "secret_key": self.secret_key}

    def demo_guide(self) -> list[str]:
        return [f"gateway    {self.base_url}  CreatePayment provider=gateway channel=2390 KES",
                "           phone +254712345678: PROCESSING, then a signed callback: SUCCEEDED"]

    def __init__(self, *, merchant_id: str = "merchant-test", secret_key: str = "secret-test",  # noqa: S107
                 public_id: str = "public-test", otp: str = "1234",
                 complete_after_s: float = 0.05, callback_url: str = "") -> None:
        self.merchant_id, self.secret_key, self.public_id = merchant_id, secret_key, public_id
        self.otp, self.complete_after_s, self.callback_url = otp, complete_after_s, callback_url
        self.orders: dict[str, Order] = {}
        self.scenarios: dict[str, Outcome] = {}
        self.default_outcome = Outcome.SUCCESS
        self.callback_amount_as_number = True  # the document's callback shows "amount": 100
        self.progress_callbacks = False
        self._ids = itertools.count(732007046722)
        super().__init__()

    def routes(self) -> Sequence[web.RouteDef]:
        base = f"/api/v1/{self.public_id}"
        return [
            web.post(f"{base}/payment_c2b", self._c2b), web.post(f"{base}/payment_b2c", self._b2c),
            web.post(f"{base}/status", self._status),
            web.get("/_gateway/pay/{order_id}", self._pay_page),
            web.post("/_gateway/scenario", self._scenario),
            web.post("/_gateway/complete", self._complete),
            web.get("/_gateway/orders/{order_id}", self._order),
        ]

    # --- requests -----------------------------------------------------------------------

    def check(self, raw: bytes, fields: Sequence[str], required: Sequence[str]) -> dict[str, Any]:
        """The document's rules for any request body: JSON object, signature, merchant, the
        operation's field table and `extra` keys, order_id syntax."""
        try:
            body = json.loads(raw, parse_float=Decimal)
        except ValueError:
            raise Refused(400, 103, "Body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, 103, "Body is not a JSON object")
        data: dict[str, Any] = body  # type: ignore[assignment]
        if not signature_ok(data, self.secret_key):
            raise Refused(401, 100, "Invalid signature")
        if data.get("merchant_id") != self.merchant_id:
            raise Refused(401, 101, "Unknown merchant")
        for name in required:
            if data.get(name) in (None, ""):
                raise _missing(name)
        for name in data:
            if name not in fields:
                raise _invalid(name)
        extra = data.get("extra", {})
        if not isinstance(extra, dict):
            raise _invalid("extra")
        for name, value in extra.items():  # type: ignore[misc]
            if name not in EXTRA_KEYS or not isinstance(value, str):
                raise _invalid(f"extra.{name}")
        if not isinstance(data["order_id"], str) or not ORDER_ID.fullmatch(data["order_id"]):
            raise _invalid("order_id")
        return data

    def check_payment(self, raw: bytes, operation_type: int) -> tuple[dict[str, Any], Rules]:
        """A payment_c2b / payment_b2c body against the document and its provider's section."""
        body = self.check(raw, PAYMENT_FIELDS, PAYMENT_REQUIRED)
        amount = body["amount"]
        if not isinstance(amount, str) or not TWO_DECIMALS.fullmatch(amount):
            raise _invalid("amount (a string with two digits after the point)")
        provider = body["provider_id"]
        rules = RULES.get(str(provider)) if isinstance(provider, int | str) else None
        limit = None if rules is None else rules.c2b if operation_type == C2B else rules.b2c
        if rules is None or limit is None:
            raise _invalid("provider_id")
        if body["currency"] != rules.currency and not (
                rules.currency == "" and body["currency"] in CURRENCIES):
            raise _invalid("currency")
        if "country" in body and rules.country and body["country"] != rules.country:
            raise _invalid("country")
        if not isinstance(body["customer_id"], str) or not re.fullmatch(rules.customer,
                                                                         body["customer_id"]):
            raise _invalid("customer_id")
        extra: dict[str, str] = body.get("extra", {})
        for name in rules.c2b_extra if operation_type == C2B else rules.b2c_extra:
            if not extra.get(name, "").strip():
                raise _missing(f"extra.{name}")
        if extra.get("customer_doc_type", DOC_TYPES[0]) not in DOC_TYPES:
            raise _invalid("extra.customer_doc_type")
        return body, rules

    async def _c2b(self, request: web.Request) -> web.Response:
        return await self._payment(request, C2B)

    async def _b2c(self, request: web.Request) -> web.Response:
        return await self._payment(request, B2C)

    async def _payment(self, request: web.Request, operation_type: int) -> web.Response:
        try:
            body, rules = self.check_payment(await request.read(), operation_type)
        except Refused as exc:
            return _refusal(exc)
        order = self.orders.get(body["order_id"])
        if order is None:
            order = self._new_order(body, rules, operation_type)
            self.orders[order.order_id] = order
            order.first_response = self._answer(order, payment=True)
        elif operation_type == B2C == order.operation_type and order.confirm_type \
                and "otp" in body.get("extra", {}):
            # payment_b2c: "send the second payment_b2c request with confirmation data".
            return web.json_response(self._confirm(order, body["extra"]["otp"], payment=True))
        # "requests with identical nonce ... will have identical responses".
        return web.json_response(order.first_response)

    def _new_order(self, body: dict[str, Any], rules: Rules, operation_type: int) -> Order:
        customer = body["customer_id"]
        amount = Decimal(body["amount"])
        order = Order(body["order_id"], operation_type, str(body["provider_id"]), customer,
                      amount, body["currency"], str(body.get("callback_url", "")),
                      self.scenarios.get(customer, self.default_outcome),
                      transaction_id=str(next(self._ids)))
        limit = rules.c2b if operation_type == C2B else rules.b2c
        assert limit is not None
        outside = amount < limit.minimum or (limit.maximum is not None and amount > limit.maximum)
        if outside or (rules.multiples_of_5 and amount % 5):
            order.status, order.result, order.transaction_id = 3, (4, "Amount out of limits"), ""
        elif order.provider_id == SIMULATOR:
            order.provider_result = (-8888, "Good")
        elif rules.c2b_flow == "bank_details" and operation_type == C2B:
            # "In the synchronized response, you will get the bank payment details".
            order.transaction_id = ""
            order.extra = {"transfer_amount": _json_number(amount),
                           "account_name": "Test Ltd / Test Limited",
                           "account_number": "4000000000", "bank_name": "Premium Trust Bank"}
        elif order.outcome is Outcome.DECLINE:
            order.status, order.result = 3, (5, "Insufficient funds")
        elif order.outcome is Outcome.OTP:
            order.confirm_type = 1
        elif order.outcome is Outcome.REDIRECT or (rules.c2b_flow == "redirect"
                                                   and operation_type == C2B):
            order.outcome = Outcome.REDIRECT
            order.extra = {"customer_redirect": f"{self.base_url}/_gateway/pay/{order.order_id}"}
        elif order.outcome is Outcome.UNDEFINED:
            order.status, order.result = -1, (-1, "Operation status is undefined")
            self._later(order, 2)
        elif order.outcome in (Outcome.SUCCESS, Outcome.FAIL, Outcome.CANCEL):
            self._later(order, {Outcome.SUCCESS: 2, Outcome.FAIL: 3}.get(order.outcome, 4))
        return order

    def _confirm(self, order: Order, otp: str, *, payment: bool) -> dict[str, Any]:
        order.confirm_type = 0
        if otp == self.otp:
            self._later(order, 2)
        else:
            self.complete(order.order_id, 3, message="Invalid OTP")
            order.result = (6, "Invalid OTP")
        return self._answer(order, payment=payment)

    async def _status(self, request: web.Request) -> web.Response:
        try:
            body = self.check(await request.read(), STATUS_FIELDS, STATUS_REQUIRED)
        except Refused as exc:
            return _refusal(exc)
        order = self.orders.get(body["order_id"])
        if order is None:
            return _refusal(Refused(404, 104, "Order not found"))
        otp = body.get("extra", {}).get("otp")
        if otp is None:
            return web.json_response(self._answer(order, payment=False))
        # The C2B "Example of a status request" carries customer_id and extra.otp.
        if body.get("customer_id") != order.customer_id:
            return _refusal(_invalid("customer_id"))
        if order.operation_type != C2B or not order.confirm_type:
            return _refusal(_invalid("extra.otp"))
        return web.json_response(self._confirm(order, otp, payment=False))

    def _answer(self, order: Order, *, payment: bool) -> dict[str, Any]:
        """The document's response: the customer_redirect only in status answers, bank
        details and confirm_type only in the payment's own answer."""
        answer: dict[str, Any] = {
            "order_id": order.order_id, "transaction_id": order.transaction_id,
            "transaction_ref": order.transaction_ref, "status": order.status,
            "result": {"code": order.result[0], "message": order.result[1]},
            "provider_result": {"code": order.provider_result[0],
                                "message": order.provider_result[1]},
            "service_id": 1, "service_version": "1.03/1.14|1.0/1.26|1.0/1.0",
            "service_date_time": "2023-05-15 10:00:00.000000",
        }
        redirect = "customer_redirect" in order.extra
        if order.extra and order.status in OPEN and redirect is not payment:
            answer["extra"] = order.extra
        if payment:
            answer["confirm_type"] = order.confirm_type
        return answer

    # --- completion and callbacks -------------------------------------------------------

    def _later(self, order: Order, status: int) -> None:
        async def run() -> None:
            await asyncio.sleep(self.complete_after_s)
            if order.status in OPEN:
                self.complete(order.order_id, status)
        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def complete(self, order_id: str, status: int, *, amount: Decimal | str | None = None,
                 message: str = "") -> asyncio.Task[Any] | None:
        """Move an order to `status` and call back (never for the simulator, id 14)."""
        order = self.orders[order_id]
        order.status, order.confirm_type, order.extra = status, 0, {}
        order.transaction_id = order.transaction_id or str(next(self._ids))
        text = message or {2: "OK", 3: "Transaction failed", 4: "Cancelled"}.get(status, "")
        order.provider_result = (0 if status == 2 else status, text)
        if status == 2:
            order.result = (0, "OK")
            order.transaction_ref = f"MP.{order.transaction_id[-5:]}.CP33"
        if order.provider_id == SIMULATOR or not (order.callback_url or self.callback_url):
            return None
        final = self._callback(order, status, amount)
        armed = self.chaos.callback_count > 0 and \
            self.chaos.next_callback is CallbackMode.OUT_OF_ORDER
        sequence = [self._callback(order, 1, amount), final] if (
            self.progress_callbacks or armed) else [final]
        return self.send_callbacks(sequence)

    def _callback(self, order: Order, status: int, amount: Decimal | str | None) -> Callback:
        """The document's callback, field for field, signed like a request."""
        value = Decimal(str(amount)) if amount is not None else order.amount
        code, text = (0, "OK") if status in (1, 2) else (status, order.provider_result[1])
        body = {
            "merchant_id": self.merchant_id, "operation_type": order.operation_type,
            "customer_id": order.customer_id,
            "amount": _json_number(value) if self.callback_amount_as_number else f"{value:.2f}",
            "order_id": order.order_id, "transaction_id": order.transaction_id,
            "transaction_ref": order.transaction_ref if status == 2 else "", "status": status,
            "provider_id": int(order.provider_id), "destination_id": "",
            "result": {"code": code, "message": text},
        }
        return Callback(order.callback_url or self.callback_url,
                        json_bytes(with_signature(body, self.secret_key)))

    def forge(self, callback: Callback) -> Callback:
        body = json.loads(callback.body)
        return Callback(callback.url, json_bytes(with_signature(body, "forged-" + self.secret_key)),
                        dict(callback.headers))

    # --- control ------------------------------------------------------------------------

    async def _pay_page(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["order_id"])
        if order is None or order.outcome is not Outcome.REDIRECT:
            raise web.HTTPNotFound()
        if order.status in OPEN:
            self.complete(order.order_id, 2)
        return web.Response(text="<p>Payment confirmed</p>", content_type="text/html")

    async def _scenario(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.scenarios[str(data["customer_id"])] = Outcome(data["outcome"])
        return web.json_response({"ok": True})

    async def _complete(self, request: web.Request) -> web.Response:
        data = await request.json()
        if str(data.get("order_id")) not in self.orders:
            raise web.HTTPNotFound()
        self.complete(str(data["order_id"]), int(data["status"]), amount=data.get("amount"))
        return web.json_response({"ok": True})

    async def _order(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            raise web.HTTPNotFound()
        return web.json_response(self._answer(order, payment=False)
                                 | {"outcome": order.outcome.value})


def _json_number(value: Decimal) -> int | float:
    """A JSON number as the document's callback shows it ("amount": 100)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _refusal(exc: Refused) -> web.Response:
    return web.json_response({"status": -1, "result": {"code": exc.code, "message": exc.message}},
                             status=exc.http)
