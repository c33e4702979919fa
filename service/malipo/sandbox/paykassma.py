"""A faithful fake of Paykassma's M-Pesa API (paykassma-mpesa.txt), for tests and demos.

Enforces what the document states: the deposit `secret` query parameter (a wrong one gets
404 "Not found", as Paykassma's API pages say), the fields and their limits, 12-digit
2547XXXXXXXX numbers, unique custom_transaction_id, the withdrawal signature (with the
algorithm the account is configured for) and "Insufficient balance" when the balance is
below new and still incomplete withdrawals. Answers use the document's shapes.

Postbacks go to `postback_url` (at Paykassma it is set in the back office, not per request),
signed sha1(access_key . private_key . md5(JSON)), and are re-sent until the answer is HTTP
200 with JSON {"status":"ok"}. A test drives it in-process (complete_deposit,
settle_withdrawal) or over HTTP:
  POST /_paykassma/config  {"postback_url": ..., "auto_postback": true, "balance": 5000}
  POST /_paykassma/deposits/{custom_transaction_id}/complete  {"amount": 3000}  (optional)
  POST /_paykassma/withdrawals/{withdrawal_id}/settle  {"status": 1}  (1 SUCCESS, 5 FAIL)
  GET  /_paykassma/state
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web

from malipo.connectors.paykassma import signing
from malipo.sandbox.fake_provider import Callback, Delivery, FakeProvider

_MSISDN = re.compile(r"^254[17]\d{8}$")
# Rates for the converted_amount map: a few of the dozens the real postback carries, with
# the document's mix of integers, two-decimal and eight-decimal values.
_RATES = {"USD": Decimal("0.00678"), "EUR": Decimal("0.00641"), "INR": Decimal("0.5647"),
          "NGN": Decimal("5.285"), "TZS": Decimal("16.98"), "UGX": Decimal("25.55"),
          "BTC": Decimal("0.00000026"), "USDT": Decimal("0.00678121")}


def paykassma_accepts(status: int, answer: bytes) -> bool:
    """Paykassma stops re-sending only on HTTP 200 with JSON {"status":"ok"}."""
    try:
        return status == 200 and signing.parse_ordered(answer) == {"status": "ok"}
    except ValueError:
        return False


@dataclass
class FakeDeposit:
    order_id: str
    custom_transaction_id: str
    amount: int
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


def _number(value: Decimal) -> int | Decimal:
    return int(value) if value == value.to_integral_value() else value.normalize()


class PaykassmaFake(FakeProvider):
    name = "paykassma"

    # Test credentials of a fake, not secrets of any real account.
    def __init__(self, *, secret: str = "pluginapi-secret",  # noqa: S107
                 withdrawal_private_key: str = "withdrawal-private",
                 postback_access_key: str = "TA25Ea9sjPUFJvIG",
                 postback_private_key: str = "postback-private",
                 withdrawal_algorithm: str = signing.DEFAULT_WITHDRAWAL_ALGORITHM,
                 signed_form: str = signing.DEFAULT_SIGNED_FORM, balance: int = 1_000_000,
                 min_amount: int = 1, max_amount: int = 250_000, postback_attempts: int = 8,
                 retry_delay_s: float = 0.02) -> None:
        self.secret = secret
        self.withdrawal_private_key = withdrawal_private_key
        self.postback_access_key = postback_access_key
        self.postback_private_key = postback_private_key
        self.withdrawal_algorithm = withdrawal_algorithm
        self.signed_form = signed_form
        self.balance = balance
        self.min_amount, self.max_amount = min_amount, max_amount
        self.postback_attempts, self.retry_delay_s = postback_attempts, retry_delay_s
        self.postback_url = ""
        self.auto_postback = False
        self.single_quoted_fail = False  # answer fails in the document's ' dialect
        self.deposits: dict[str, FakeDeposit] = {}
        self.withdrawals: dict[str, FakeWithdrawal] = {}
        super().__init__()

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/api/v1/payment/create/{wallet}", self._create_deposit),
            web.post("/v2/withdrawal/create", self._create_withdrawal),
            web.post("/_paykassma/config", self._config),
            web.post("/_paykassma/deposits/{id}/complete", self._complete),
            web.post("/_paykassma/withdrawals/{id}/settle", self._settle),
            web.get("/_paykassma/state", self._state),
        ]

    # --- the API --------------------------------------------------------------------------

    def _fail(self, message: object, status: int = 200) -> web.Response:
        if self.single_quoted_fail and isinstance(message, str):
            text = "{'status': 'fail', 'message': '" + message.replace("'", "") + "'}"
            return web.Response(status=status, text=text, content_type="application/json")
        return web.json_response({"status": "fail", "message": message}, status=status)

    def _check_amount(self, amount: object) -> str:
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal):
            return "The amount must be a number."
        if amount != int(amount):
            return "The amount must be an integer."
        if not self.min_amount <= amount <= self.max_amount:
            return f"The amount must be between {self.min_amount} and {self.max_amount}."
        return ""

    async def _create_deposit(self, request: web.Request) -> web.Response:
        if request.query.get("secret") != self.secret:
            return web.json_response({"message": "Not found"}, status=404)
        if request.match_info["wallet"] != "mpesa":
            return web.json_response({"message": "Not found"}, status=404)
        try:
            body = signing.parse_ordered(await request.read())
        except ValueError:
            return self._fail("Invalid JSON", 400)
        if not isinstance(body, dict):
            return self._fail("Invalid JSON", 400)
        problem = self._check_amount(body.get("amount"))
        phone, label = str(body.get("phone_number", "")), str(body.get("label", ""))
        custom = str(body.get("custom_transaction_id", ""))
        if not problem and not _MSISDN.match(phone):
            problem = "The phone number format is invalid."
        if not problem and body.get("currency") != "KES":
            problem = "The selected currency is invalid."
        if not problem and not 0 < len(label) <= 190:
            problem = "The label field is required."
        if not problem and not 0 < len(custom) <= 190:
            problem = "The custom transaction id field is required."
        if not problem and custom in self.deposits:
            problem = "The custom transaction id must be unique."
        if problem:
            return self._fail(problem, 422)
        deposit = FakeDeposit(secrets.token_hex(8), custom, int(body["amount"]), "KES", label,
                              phone)
        self.deposits[custom] = deposit
        if self.auto_postback and self.postback_url:
            self.complete_deposit(custom)
        return web.json_response({"status": "ok", "data": {
            "order_id": deposit.order_id, "message": "Success. Request accepted for processing"}})

    async def _create_withdrawal(self, request: web.Request) -> web.Response:
        try:
            body = signing.parse_ordered(await request.read())
        except ValueError:
            return self._fail("Invalid JSON", 400)
        if not isinstance(body, dict):
            return self._fail("Invalid JSON", 400)
        if not signing.withdrawal_signature_matches(body, self.withdrawal_private_key,
                                                    self.withdrawal_algorithm):
            return self._fail("Invalid signature", 401)
        required = ("withdrawal_id", "payment_system", "amount", "currency_code", "label",
                    "account_number", "is_test")
        missing = [k for k in required if k not in body]
        problem = f"The {missing[0]} field is required." if missing else ""
        problem = problem or self._check_amount(body.get("amount"))
        wid = str(body.get("withdrawal_id", ""))
        if not problem and body.get("payment_system") != "mpesa":
            problem = "The selected payment system is invalid."
        if not problem and not _MSISDN.match(str(body.get("account_number"))):
            problem = "The account number format is invalid."
        if not problem and not isinstance(body.get("is_test"), bool):
            problem = "The is test field must be true or false."
        if not problem and wid in self.withdrawals:
            problem = "The withdrawal id has already been taken."
        if problem:
            return self._fail(problem, 422)
        amount = int(body["amount"])
        pending = sum(w.amount for w in self.withdrawals.values() if w.status is None)
        if self.balance < pending + amount:
            return self._fail({"withdrawals_sum_amount": ["Insufficient balance"]})
        self.withdrawals[wid] = FakeWithdrawal(wid, amount, str(body["currency_code"]),
                                               str(body["label"]), str(body["account_number"]),
                                               str(body.get("comment", "")))
        if self.auto_postback and self.postback_url:
            self.settle_withdrawal(wid, 1)
        return web.json_response({"status": "ok"})

    # --- postbacks ------------------------------------------------------------------------

    def _signed(self, body: dict[str, Any]) -> Callback:
        signed = signing.signed_part(body, self.signed_form)
        body["signature"] = signing.postback_signature(
            self.postback_access_key, self.postback_private_key, signed)
        ordered = {"signature": body.pop("signature"), **body}
        return Callback(self.postback_url, signing.canonical_json(ordered).encode())

    def _envelope(self, direction: str, amount: int, currency: str, label: str,
                  item: dict[str, Any]) -> dict[str, Any]:
        converted: dict[str, Any] = {code: _number((rate * amount).quantize(
            Decimal("0.00000001") if rate < Decimal("0.0001") else Decimal("0.01")))
            for code, rate in _RATES.items()}
        converted["KES"] = amount
        return {"signature": "", "wallet_type": "mpesa", "amount": amount,
                "currency_code": currency, "label": label, "converted_amount": converted,
                "direction": direction,
                "created_datetime": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "access_key": self.postback_access_key, "additional_data": [item]}

    def deposit_postback(self, custom_transaction_id: str, *, amount: int | None = None,
                         comment: str = "") -> Callback:
        dep = self.deposits[custom_transaction_id]
        paid = dep.amount if amount is None else amount
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        receipt = hashlib.sha1(dep.order_id.encode(), usedforsecurity=False).hexdigest()[:10]
        item: dict[str, Any] = {
            "activated_datetime": now, "exchanger_identifier": None, "comment": comment,
            "amount": str(paid), "currency_code": dep.currency, "wallet_type": "mpesa",
            "stockpiling_id": int(dep.order_id[:6], 16), "transaction_id": receipt.upper(),
            "transaction_type": 0, "plugin_custom_order_id": dep.custom_transaction_id,
            "withdrawal_id": None, "withdrawal_status": None, "account_number": "",
            "account_name": "", "account_email": "",
            "bank_details": {"bank_code": "", "branch_code": ""}}
        return self._signed(self._envelope("ingoing", paid, dep.currency, dep.label, item))

    def withdrawal_postback(self, withdrawal_id: str, status: int) -> Callback:
        wd = self.withdrawals[withdrawal_id]
        item: dict[str, Any] = {
            "activated_datetime": "", "exchanger_identifier": "",
            "comment": wd.comment or "transaction_id=0", "amount": str(wd.amount),
            "currency_code": wd.currency, "wallet_type": "mpesa", "stockpiling_id": None,
            "transaction_id": "", "transaction_type": None, "plugin_custom_order_id": "",
            "withdrawal_id": wd.withdrawal_id, "withdrawal_status": status,
            "account_number": wd.account_number, "account_name": "", "account_email": "",
            "bank_details": {"bank_code": None, "branch_code": None}}
        return self._signed(self._envelope("outgoing", wd.amount, wd.currency, wd.label, item))

    def forge(self, callback: Callback) -> Callback:
        body = signing.parse_ordered(callback.body)
        body["signature"] = hashlib.sha1(b"forged", usedforsecurity=False).hexdigest()
        return Callback(callback.url, signing.canonical_json(body).encode(), callback.headers)

    def post(self, callback: Callback) -> asyncio.Task[list[Delivery]]:
        """Send with Paykassma's re-sending, honouring any armed chaos mode."""
        return self.send_callbacks([callback], accept=paykassma_accepts,
                                   attempts=self.postback_attempts,
                                   retry_delay_s=self.retry_delay_s)

    def complete_deposit(self, custom_transaction_id: str, *,
                         amount: int | None = None) -> asyncio.Task[list[Delivery]]:
        self.deposits[custom_transaction_id].completed = True
        return self.post(self.deposit_postback(custom_transaction_id, amount=amount))

    def settle_withdrawal(self, withdrawal_id: str,
                          status: int = 1) -> asyncio.Task[list[Delivery]]:
        wd = self.withdrawals[withdrawal_id]
        if wd.status is None and status == 1:
            self.balance -= wd.amount
        wd.status = status
        return self.post(self.withdrawal_postback(withdrawal_id, status))

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
        self.settle_withdrawal(wid, int(data.get("status", 1)))
        return web.json_response({"status": "sending"})

    async def _state(self, _request: web.Request) -> web.Response:
        return web.json_response({
            "postback_url": self.postback_url, "auto_postback": self.auto_postback,
            "balance": self.balance,
            "deposits": [asdict(d) for d in self.deposits.values()],
            "withdrawals": [asdict(w) for w in self.withdrawals.values()],
            "deliveries": [{"url": d.url, "status": d.status} for d in self.deliveries]})
