"""A fake of Paykassma's M-Pesa API, written from paykassma-mpesa.txt and NOTES.md section 2
alone: a second reading of the document, so it shares no code with the connector.

What it enforces, and where the document says so:
- "Payment creation": POST /api/v1/payment/create/mpesa?secret=... with exactly amount,
  phone_number (12 digits), currency, label (<= 190), custom_transaction_id (<= 190, "Must be
  unique"). Answer {"status":"ok","data":{"order_id","message"}}.
- "Withdrawal request": POST /v2/withdrawal/create with withdrawal_id (generated when absent,
  as the table says), payment_system, amount (int), currency_code, is_test (boolean), label,
  account_number (12 digits), signature, and the example's optional comment. Answer
  {"status":"ok"}; "Insufficient balance" (structured message) when the new and still
  incomplete withdrawals plus this one exceed the balance.
- Every refusal is the document's {"status":"fail","message":...}. The document gives no HTTP
  codes for them: 401 for a wrong secret or signature, 400 for a refused field, 200 for the
  insufficient-balance decline (shown as an ordinary answer).
- Postbacks (deposit "ingoing", withdrawal "outgoing") in the examples' shape and key order,
  signed sha1(access_key . private_key . md5(JSON)) (NOTES.md), re-sent until the answer is
  HTTP 200 with JSON {"status":"ok"} (the document's "Warning"). Withdrawal statuses are the
  document's table only: 1 SUCCESS, 5 FAIL.

Where the document is silent this fake takes one reading and accepts nothing else (the
connector's settings name the same defaults, so a changed setting is refused here):
- the JSON the postback md5 covers: the `additional_data` list only;
- the withdrawal signature: sha1(private_key . md5(JSON of the request without signature));
- "JSON" is PHP's json_encode(JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) of the data in
  the order sent.

A test drives it in-process (complete_deposit, settle_withdrawal, pay_in_window) or over HTTP:
  POST /_paykassma/config  {"postback_url": ..., "auto_postback": true, "balance": 5000}
  POST /_paykassma/deposits/{custom_transaction_id}/complete  {"amount": 3000}  (optional)
  POST /_paykassma/withdrawals/{withdrawal_id}/settle  {"status": 1}  (1 SUCCESS, 5 FAIL)
  GET  /_paykassma/state
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from malipo.sandbox.fake_provider import Callback, Delivery, DemoSetup, FakeProvider

DEPOSIT_FIELDS = ("amount", "phone_number", "currency", "label", "custom_transaction_id")
WITHDRAWAL_REQUIRED = ("payment_system", "amount", "currency_code", "is_test", "label",
                       "account_number", "signature")
WITHDRAWAL_OPTIONAL = ("withdrawal_id", "comment")
WITHDRAWAL_STATUSES = {1: "SUCCESS", 5: "FAIL"}
_MSISDN = re.compile(r"^254\d{9}$")  # "MSISDN (12-digit cell phone number)", Kenya's 254
_OK = b'{"status":"ok"}'
# A few of the dozens of currencies a real postback converts into (KES per unit of each).
_RATES = {"USD": Decimal("0.00678"), "EUR": Decimal("0.00641"), "INR": Decimal("0.5648"),
          "TZS": Decimal("16.98"), "BTC": Decimal("0.00000026"), "USDT": Decimal("0.0067812")}


# --- PHP's json_encode(JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE) --------------------

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
            "\t": "\\t", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _php_string(text: str) -> str:
    out: list[str] = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)  # "/" and non-ASCII stay as they are (the two flags)
    return '"' + "".join(out) + '"'


def _php_float(value: Decimal) -> str:
    """A float as PHP 7.1+ writes it: shortest digits, "e" below 1e-4, ".0" when whole."""
    sign, digits, exponent = value.normalize().as_tuple()
    text = "".join(str(d) for d in digits)
    point = len(text) + int(exponent)
    if point < -3 or point > 17:
        power = point - 1
        rendered = f"{text[0]}.{text[1:] or '0'}e{'+' if power >= 0 else '-'}{abs(power)}"
    elif point <= 0:
        rendered = "0." + "0" * -point + text
    elif point >= len(text):
        rendered = text + "0" * (point - len(text)) + ".0"
    else:
        rendered = text[:point] + "." + text[point:]
    return ("-" if sign else "") + rendered


def php_json(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return _php_float(value)
    if isinstance(value, str):
        return _php_string(value)
    if isinstance(value, Mapping):
        pairs = value.items()  # type: ignore[union-attr]
        return "{" + ",".join(f"{_php_string(str(k))}:{php_json(v)}" for k, v in pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(php_json(v) for v in value) + "]"  # type: ignore[union-attr]
    raise TypeError(f"no JSON form for {type(value).__name__}")


def read_json(raw: bytes | str) -> Any:
    """Numbers with a fraction stay exact decimals, so re-encoding writes what was sent."""
    return json.loads(raw, parse_float=Decimal)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def postback_signature(postback: Mapping[str, Any], access_key: str, private_key: str) -> str:
    """sha1(access_key . private_key . md5(json of the postback's additional_data))."""
    return _sha1(access_key + private_key + _md5(php_json(postback["additional_data"])))


def withdrawal_signature(request: Mapping[str, Any], private_key: str) -> str:
    """sha1(private_key . md5(json of the request without its signature))."""
    unsigned = {k: v for k, v in request.items() if k != "signature"}
    return _sha1(private_key + _md5(php_json(unsigned)))


def paykassma_accepts(status: int, answer: bytes) -> bool:
    """Paykassma stops re-sending only on HTTP 200 with JSON {"status":"ok"}."""
    try:
        return status == 200 and json.loads(answer) == {"status": "ok"}
    except ValueError:
        return False


@dataclass
class FakeDeposit:
    order_id: str
    custom_transaction_id: str
    amount: int | Decimal
    currency: str
    label: str
    phone_number: str
    completed: bool = False


@dataclass
class FakeWithdrawal:
    withdrawal_id: str
    amount: int
    currency: str
    label: str
    account_number: str
    comment: str = ""
    status: int | None = None  # None: new, not yet processed


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _text_field(body: Mapping[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        return f"The {name} field is required."
    return f"The {name} may not be greater than {limit} characters." if len(value) > limit else ""


class PaykassmaFake(FakeProvider):
    name = "paykassma"

    @classmethod
    def for_demo(cls, setup: DemoSetup) -> PaykassmaFake:
        fake = cls(secret=setup.key(), withdrawal_private_key=setup.key(),
                   postback_access_key=setup.key(), postback_private_key=setup.key(),
                   retry_delay_s=setup.retry_delay_s)
        # The postback URL is a back-office setting at Paykassma, not part of a request.
        fake.postback_url, fake.auto_postback = setup.callback_url, True
        return fake

    def demo_settings(self) -> dict[str, str]:
        return {"api_url": self.base_url, "pluginapi_secret": self.secret,
                "withdrawal_private_key": self.withdrawal_private_key,
                "postback_access_key": self.postback_access_key,
                "postback_private_key": self.postback_private_key,
                "plugin_url": self.base_url + "/plugin", "is_test": "true"}

    def demo_guide(self) -> list[str]:
        return [f"paykassma  {self.base_url}  CreatePayment provider=paykassma channel=mpesa",
                "           KES phone +254712345678: the postback makes it SUCCEEDED"]

    # Test credentials of a fake, not secrets of any real account.
    def __init__(self, *, secret: str = "pluginapi-secret",  # noqa: S107
                 withdrawal_private_key: str = "withdrawal-private",
                 postback_access_key: str = "TA25Ea9sjPUFJvIG",
                 postback_private_key: str = "postback-private", balance: int = 1_000_000,
                 min_amount: int = 1, max_amount: int = 250_000, postback_attempts: int = 8,
                 retry_delay_s: float = 0.02) -> None:
        self.secret = secret
        self.withdrawal_private_key = withdrawal_private_key
        self.postback_access_key = postback_access_key
        self.postback_private_key = postback_private_key
        self.balance = balance
        self.min_amount, self.max_amount = min_amount, max_amount
        self.postback_attempts, self.retry_delay_s = postback_attempts, retry_delay_s
        self.postback_url = ""
        self.auto_postback = False
        # Answer in the document's own non-JSON dialect: {'status': 'fail', ...} and
        # { "status": "ok", } exactly as its examples print them.
        self.document_dialect = False
        self.deposits: dict[str, FakeDeposit] = {}
        self.withdrawals: dict[str, FakeWithdrawal] = {}
        super().__init__()

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/api/v1/payment/create/mpesa", self._create_deposit),
            web.post("/v2/withdrawal/create", self._create_withdrawal),
            web.post("/_paykassma/config", self._config),
            web.post("/_paykassma/deposits/{id}/complete", self._complete),
            web.post("/_paykassma/withdrawals/{id}/settle", self._settle),
            web.get("/_paykassma/state", self._state),
        ]

    # --- the API --------------------------------------------------------------------------

    def _fail(self, message: str | dict[str, list[str]], status: int) -> web.Response:
        if self.document_dialect and isinstance(message, str):
            text = "{ 'status': 'fail', 'message': '" + message.replace("'", "") + "' }"
            return web.Response(status=status, text=text, content_type="application/json")
        return web.json_response({"status": "fail", "message": message}, status=status)

    def _amount_problem(self, amount: object, *, whole: bool) -> str:
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
            return "The amount must be a number."
        if whole and not isinstance(amount, int):
            return "The amount must be an integer."
        if not self.min_amount <= amount <= self.max_amount:
            return f"The amount must be between {self.min_amount} and {self.max_amount}."
        return ""

    async def _body(self, request: web.Request) -> dict[str, Any] | None:
        try:
            body = read_json(await request.read())
        except ValueError:
            return None
        return body if isinstance(body, dict) else None  # type: ignore[return-value]

    async def _create_deposit(self, request: web.Request) -> web.Response:
        if request.query.get("secret") != self.secret:
            return self._fail("Access denied", 401)
        body = await self._body(request)
        if body is None:
            return self._fail("The request body must be a JSON object.", 400)
        unknown = [k for k in body if k not in DEPOSIT_FIELDS]
        problem = f"The {unknown[0]} field is not allowed." if unknown else ""
        problem = problem or self._amount_problem(body.get("amount"), whole=False)
        phone = body.get("phone_number")
        if not problem and not (isinstance(phone, str) and _MSISDN.match(phone)):
            problem = "The phone number must be a 12-digit MSISDN."
        if not problem and body.get("currency") != "KES":
            problem = "The selected currency is invalid."
        problem = (problem or _text_field(body, "label", 190)
                   or _text_field(body, "custom_transaction_id", 190))
        custom = str(body.get("custom_transaction_id"))
        if not problem and custom in self.deposits:
            problem = "The custom transaction id must be unique."
        if problem:
            return self._fail(problem, 400)
        deposit = FakeDeposit(secrets.token_hex(8), custom, body["amount"], "KES",
                              body["label"], str(phone))
        self.deposits[custom] = deposit
        if self.auto_postback and self.postback_url:
            self.complete_deposit(custom)
        return web.json_response({"status": "ok", "data": {
            "order_id": deposit.order_id, "message": "Success. Request accepted for processing"}})

    async def _create_withdrawal(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return self._fail("The request body must be a JSON object.", 400)
        signature = body.get("signature")
        if not isinstance(signature, str) or signature != withdrawal_signature(
                body, self.withdrawal_private_key):
            return self._fail("Invalid signature", 401)
        missing = [k for k in WITHDRAWAL_REQUIRED if k not in body]
        unknown = [k for k in body if k not in WITHDRAWAL_REQUIRED + WITHDRAWAL_OPTIONAL]
        problem = (f"The {missing[0]} field is required." if missing else
                   f"The {unknown[0]} field is not allowed." if unknown else "")
        problem = problem or self._amount_problem(body.get("amount"), whole=True)
        account = body.get("account_number")
        if not problem and body.get("payment_system") != "mpesa":
            problem = "The selected payment system is invalid."
        if not problem and body.get("currency_code") != "KES":
            problem = "The selected currency code is invalid."
        if not problem and not (isinstance(account, str) and _MSISDN.match(account)):
            problem = "The account number must be a 12-digit MSISDN."
        if not problem and not isinstance(body.get("is_test"), bool):
            problem = "The is test field must be true or false."
        problem = problem or _text_field(body, "label", 190)
        wid = body.get("withdrawal_id", secrets.token_hex(4))
        if not problem and not (isinstance(wid, str) and wid):
            problem = "The withdrawal id must be a string."
        if not problem and wid in self.withdrawals:
            problem = "The withdrawal id has already been taken."
        if problem:
            return self._fail(problem, 400)
        amount: int = body["amount"]
        waiting = sum(w.amount for w in self.withdrawals.values() if w.status is None)
        if self.balance < waiting + amount:
            return self._fail({"withdrawals_sum_amount": ["Insufficient balance"]}, 200)
        self.withdrawals[wid] = FakeWithdrawal(wid, amount, "KES", body["label"], str(account),
                                               str(body.get("comment", "")))
        if self.auto_postback and self.postback_url:
            self.settle_withdrawal(wid, 1)
        if self.document_dialect:
            return web.Response(text='{ "status": "ok", }', content_type="application/json")
        return web.json_response({"status": "ok"})

    # --- postbacks ------------------------------------------------------------------------

    def signed(self, postback: dict[str, Any]) -> Callback:
        """The postback with a fresh signature in front, as the examples order it."""
        unsigned = {k: v for k, v in postback.items() if k != "signature"}
        signature = postback_signature(unsigned, self.postback_access_key,
                                       self.postback_private_key)
        body = php_json({"signature": signature, **unsigned})
        return Callback(self.postback_url, body.encode())

    def _envelope(self, direction: str, amount: int | Decimal, label: str,
                  item: dict[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = {}
        for code, rate in _RATES.items():
            places = Decimal("0.00000001") if rate < 1 / Decimal(100) else Decimal("0.01")
            converted[code] = (rate * amount).quantize(places)
        converted["KES"] = amount
        return {"wallet_type": "mpesa", "amount": amount, "currency_code": "KES",
                "label": label, "converted_amount": converted, "direction": direction,
                "created_datetime": _now(), "access_key": self.postback_access_key,
                "additional_data": [item]}

    def deposit_postback(self, custom_transaction_id: str, *,
                         amount: int | None = None) -> Callback:
        deposit = self.deposits[custom_transaction_id]
        paid = deposit.amount if amount is None else amount
        receipt = secrets.token_hex(5).upper()
        item: dict[str, Any] = {
            "activated_datetime": _now(), "exchanger_identifier": None, "comment": "",
            "amount": str(paid), "currency_code": "KES", "wallet_type": "mpesa",
            "stockpiling_id": int(deposit.order_id[:7], 16), "transaction_id": receipt,
            "transaction_type": 0, "plugin_custom_order_id": deposit.custom_transaction_id,
            "withdrawal_id": None, "withdrawal_status": None, "account_number": "",
            "account_name": "", "account_email": "",
            "bank_details": {"bank_code": "", "branch_code": ""}}
        return self.signed(self._envelope("ingoing", paid, deposit.label, item))

    def withdrawal_postback(self, withdrawal_id: str, status: int) -> Callback:
        if status not in WITHDRAWAL_STATUSES:
            raise ValueError(f"the document's withdrawal statuses are {WITHDRAWAL_STATUSES}")
        wd = self.withdrawals[withdrawal_id]
        item: dict[str, Any] = {
            "activated_datetime": "", "exchanger_identifier": "",
            "comment": wd.comment or "transaction_id=0", "amount": str(wd.amount),
            "currency_code": "KES", "wallet_type": "mpesa", "stockpiling_id": None,
            "transaction_id": "", "transaction_type": None, "plugin_custom_order_id": "",
            "withdrawal_id": wd.withdrawal_id, "withdrawal_status": status,
            "account_number": wd.account_number, "account_name": "", "account_email": "",
            "bank_details": {"bank_code": None, "branch_code": None}}
        return self.signed(self._envelope("outgoing", wd.amount, wd.label, item))

    def forge(self, callback: Callback) -> Callback:
        body = read_json(callback.body)
        body["signature"] = _sha1("forged")
        return Callback(callback.url, php_json(body).encode(), callback.headers)

    def post(self, callback: Callback) -> asyncio.Task[list[Delivery]]:
        """Send with Paykassma's re-sending, honouring any armed chaos mode."""
        return self.send_callbacks([callback], accept=paykassma_accepts,
                                   attempts=self.postback_attempts,
                                   retry_delay_s=self.retry_delay_s)

    def pay_in_window(self, custom_transaction_id: str, amount: int, label: str,
                      phone_number: str) -> asyncio.Task[list[Delivery]]:
        """The customer pays in the payment window (plugin link): Paykassma now has the
        deposit and posts it back."""
        self.deposits[custom_transaction_id] = FakeDeposit(
            secrets.token_hex(8), custom_transaction_id, amount, "KES", label, phone_number)
        return self.complete_deposit(custom_transaction_id)

    def complete_deposit(self, custom_transaction_id: str, *,
                         amount: int | None = None) -> asyncio.Task[list[Delivery]]:
        self.deposits[custom_transaction_id].completed = True
        return self.post(self.deposit_postback(custom_transaction_id, amount=amount))

    def settle_withdrawal(self, withdrawal_id: str,
                          status: int = 1) -> asyncio.Task[list[Delivery]]:
        callback = self.withdrawal_postback(withdrawal_id, status)
        wd = self.withdrawals[withdrawal_id]
        if wd.status is None and status == 1:
            self.balance -= wd.amount
        wd.status = status
        return self.post(callback)

    # --- HTTP control ---------------------------------------------------------------------

    async def _config(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.postback_url = str(data.get("postback_url", self.postback_url))
        self.auto_postback = bool(data.get("auto_postback", self.auto_postback))
        self.balance = int(data.get("balance", self.balance))
        return await self._state(request)

    async def _complete(self, request: web.Request) -> web.Response:
        data = await request.json() if request.can_read_body else {}
        custom = request.match_info["id"]
        if custom not in self.deposits:
            return web.json_response({"error": "no such deposit"}, status=404)
        amount = data.get("amount")
        self.complete_deposit(custom, amount=None if amount is None else int(amount))
        return web.json_response({"status": "sending"})

    async def _settle(self, request: web.Request) -> web.Response:
        data = await request.json() if request.can_read_body else {}
        wid = request.match_info["id"]
        if wid not in self.withdrawals:
            return web.json_response({"error": "no such withdrawal"}, status=404)
        status = int(data.get("status", 1))
        if status not in WITHDRAWAL_STATUSES:
            return web.json_response({"error": "status is 1 (SUCCESS) or 5 (FAIL)"}, status=400)
        self.settle_withdrawal(wid, status)
        return web.json_response({"status": "sending"})

    async def _state(self, _request: web.Request) -> web.Response:
        return web.json_response({
            "postback_url": self.postback_url, "auto_postback": self.auto_postback,
            "balance": self.balance,
            "deposits": [{**asdict(d), "amount": str(d.amount)} for d in self.deposits.values()],
            "withdrawals": [asdict(w) for w in self.withdrawals.values()],
            "deliveries": [{"url": d.url, "status": d.status} for d in self.deliveries]})
