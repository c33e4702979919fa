"""A faithful fake of JamboPay's utility API (KPLC tokens and airtime) for tests and demos.

Routes live under `/jambopayservices` (so `base_url` = `fake.api_base`): the token endpoint,
presentment `POST /api/payments/POST`, commit `PUT /api/payments/PUT` and the status GET,
with the shapes of JamboPay's documents (status: both the KPLC and the airtime sample).
It enforces form-encoded bodies with exactly the documented fields (NOTES.md section 4), the
app key header and bearer tokens; an uncommitted presentment expires after
`presentment_ttl_s` (status Cancelled, commit refused with 1051). It imports nothing of the
connector: statuses, streams and field lists below are its own reading of the documents, and
where they are silent (grant type, airtime stream, app key header) it accepts one value only.

Control, besides the base's chaos switches (`POST /_control`, JSON):
  {"commit_mode": "complete"|"pending"}  complete at commit, or stay Checking until settled
  {"settle": {"transaction_id": "...", "outcome": "completed"|"failed"|"cancelled"|"refunded"}}
  {"presentment_ttl_s": 0.5}  {"revoke_tokens": true}  {"float_balance": "100.00"}
Callbacks go to each presentment's CallbackUrl when a transaction settles; a forged one
claims the opposite of the truth (there is no signature to break).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from malipo.sandbox.fake_provider import Callback, Delivery, DemoSetup, FakeProvider

PREFIX = "/jambopayservices"
# The transaction-status document's "Available statuses", and the streams: "kplc" is the
# document's; airtime is "another stream" (NOTES.md) with no name given, so this fake answers
# to "credit" only, like its grant type "agency" and its app key header "app_key".
STATUSES = ("Checking", "Completed", "Failed", "Cancelled")
GRANT_TYPE = "agency"
KPLC_STREAM = "kplc"
AIRTIME_STREAM = "credit"
APP_KEY_HEADER = "app_key"
# NOTES.md section 4: presentment (Stream, PhoneNumber, Amount, MeterNumber, optional
# CallbackUrl), commit (Stream, TransactionID). Airtime names its operator instead of a meter
# (OperatorCode: this fake's reading, the documents give no airtime presentment).
PRESENTMENT = {KPLC_STREAM: {"Stream", "PhoneNumber", "Amount", "MeterNumber"},
               AIRTIME_STREAM: {"Stream", "PhoneNumber", "Amount", "OperatorCode"}}
PRESENTMENT_OPTIONAL = {"CallbackUrl"}
COMMIT = {"Stream", "TransactionID"}
OPERATORS = {"1": "AIRTEL", "2": "TELKOM", "4": "SAFARICOM"}
PRICE_PER_UNIT = Decimal(500)  # the document's sample: KES 20.0000 bought 0.040000 units
FOUR = Decimal("0.0001")
DENIED = {"Message": "Authorization has been denied for this request."}


@dataclass
class FakeTransaction:
    id: str
    stream: str
    phone: str
    amount: Decimal
    callback_url: str
    created: float
    meter: str = ""
    operator_code: str = ""
    names: str = ""
    status: str = "Checking"
    committed: bool = False
    receipt: str | None = None
    token: str | None = None
    units: Decimal | None = None
    date: str = ""

    @property
    def kplc(self) -> bool:
        return bool(self.meter)


def decimal_json(data: Any) -> bytes:
    """JSON with decimals written as numbers ("Amount": 20.0000), as JamboPay writes them."""
    marks: dict[str, str] = {}

    def walk(value: Any) -> Any:
        if isinstance(value, Decimal):
            key = f"@@decimal{len(marks)}@@"
            marks[key] = format(value, "f")
            return key
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}  # type: ignore[misc]
        if isinstance(value, list):
            return [walk(v) for v in value]  # type: ignore[misc]
        return value

    text = json.dumps(walk(data), ensure_ascii=False)
    for key, number in marks.items():
        text = text.replace(f'"{key}"', number)
    return text.encode()


def _reply(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=decimal_json(data), status=status, content_type="application/json")


def _error(code: int | None, message: str, status: int = 400) -> web.Response:
    body: dict[str, Any] = {"Message": message}
    if code is not None:
        body["ErrorCode"] = code
    return _reply(body, status)


class JambopayFake(FakeProvider):
    name = "jambopay"

    @classmethod
    def for_demo(cls, setup: DemoSetup) -> JambopayFake:
        return cls(username="demo@malipo.test", password=setup.key(), app_key=setup.key())

    def demo_settings(self) -> dict[str, str]:
        return {"base_url": self.api_base, "username": self.username, "password": self.password,
                "app_key": self.app_key}

    def demo_guide(self) -> list[str]:
        return [f"jambopay   {self.base_url}  CreatePayout provider=jambopay channel=kplc",
                "           KES provider_fields meter_number=14234567890: ACTION_REQUIRED",
                "           (commit), then ConfirmPayment: SUCCEEDED with the token"]

    def __init__(self, *, username: str = "agent@malipo.test",
                 password: str = "fake-password",  # noqa: S107 - the fake's own test credential
                 app_key: str = "fake-app-key", presentment_ttl_s: float = 300.0,
                 token_ttl_s: int = 86399, float_balance: Decimal = Decimal(1_000_000)) -> None:
        self.username, self.password, self.app_key = username, password, app_key
        self.presentment_ttl_s = presentment_ttl_s
        self.token_ttl_s = token_ttl_s
        self.float_balance = float_balance
        self.commit_mode = "complete"
        self.invalid_meters: set[str] = {"00000000000"}
        self.transactions: dict[str, FakeTransaction] = {}
        self.tokens: dict[str, float] = {}  # bearer -> monotonic expiry
        self._next_id = 1042955
        super().__init__()

    @property
    def api_base(self) -> str:
        return self.base_url + PREFIX

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post(PREFIX + "/token", self._token),
            web.post(PREFIX + "/api/payments/POST", self._present),
            web.put(PREFIX + "/api/payments/PUT", self._commit),
            web.get(PREFIX + "/api/payments/gettransactionstatus", self._status),
        ]

    # --- test controls ----------------------------------------------------------------

    def revoke_tokens(self) -> None:
        self.tokens.clear()

    def settle(self, transaction_id: str, outcome: str) -> asyncio.Task[list[Delivery]] | None:
        """Finish a committed transaction the way the third party did; send its callback."""
        txn = self.transactions[transaction_id]
        if outcome == "completed":
            self._complete(txn)
        elif outcome in ("failed", "cancelled"):
            txn.status = "Failed" if outcome == "failed" else "Cancelled"
            self.float_balance += txn.amount
        elif outcome == "refunded":
            txn.status = "Cancelled"  # vended, then the agent float was reversed
            self.float_balance += txn.amount
        else:
            raise ValueError(f"unknown outcome {outcome!r}")
        return self.send_callback(txn)

    def callback_body(self, txn: FakeTransaction, *, forged: bool = False) -> bytes:
        completed = txn.status == "Completed"
        if forged:
            completed = not completed
        return decimal_json({
            "TransactionId": txn.id, "MeterNumber": txn.meter, "PhoneNumber": txn.phone,
            "Amount": txn.amount.quantize(FOUR),
            "TransactionStatus": "completed" if completed else "cancelled",
            "ThirdPartyRef": f"TP{txn.id}",
            "Action": "Token Vending" if completed else "Agent Refunded",
        })

    def send_callback(self, txn: FakeTransaction) -> asyncio.Task[list[Delivery]] | None:
        if not txn.callback_url:
            return None
        return self.send_callbacks([Callback(txn.callback_url, self.callback_body(txn))])

    def forge(self, callback: Callback) -> Callback:
        data = json.loads(callback.body)
        txn = self.transactions[str(data["TransactionId"])]
        return Callback(callback.url, self.callback_body(txn, forged=True), callback.headers)

    async def _control_post(self, request: web.Request) -> web.Response:
        data = await request.json()
        if isinstance(data, dict):
            if "commit_mode" in data:
                self.commit_mode = str(data["commit_mode"])
            if "presentment_ttl_s" in data:
                self.presentment_ttl_s = float(data["presentment_ttl_s"])
            if data.get("revoke_tokens"):
                self.revoke_tokens()
            if "float_balance" in data:
                self.float_balance = Decimal(str(data["float_balance"]))
            if "settle" in data:
                self.settle(str(data["settle"]["transaction_id"]), str(data["settle"]["outcome"]))
        return await super()._control_post(request)

    # --- endpoints --------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (form.get("grant_type") != GRANT_TYPE or form.get("username") != self.username
                or form.get("password") != self.password):
            return web.json_response({"error": "invalid_grant", "error_description":
                                      "The user name or password is incorrect."}, status=400)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = time.monotonic() + self.token_ttl_s
        return web.json_response({"access_token": token, "token_type": "bearer",
                                  "expires_in": self.token_ttl_s, "userName": self.username})

    def _denied(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self.tokens.get(token.strip())
        if scheme.lower() != "bearer" or expiry is None or expiry < time.monotonic():
            return _reply(DENIED, 401)
        if request.headers.get(APP_KEY_HEADER) != self.app_key:
            return _reply(DENIED, 401)
        if request.method != "GET" and request.content_type != "application/x-www-form-urlencoded":
            return _error(None, "The request entity's media type is not supported.", 415)
        return None

    async def _present(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        form = await request.post()
        stream, phone = str(form.get("Stream", "")), str(form.get("PhoneNumber", ""))
        if stream not in PRESENTMENT:
            return _error(None, "Invalid stream")
        if problem := _fields_problem(set(form), PRESENTMENT[stream], PRESENTMENT_OPTIONAL):
            return _error(None, problem)
        try:
            amount = Decimal(str(form.get("Amount", "")))
        except InvalidOperation:
            return _error(None, "Invalid amount")
        if amount <= 0:
            return _error(None, "Invalid amount")
        if not (phone.isdigit() and phone.startswith("254") and len(phone) == 12):
            return _error(None, "Invalid phone number")
        txn = FakeTransaction(self._new_id(), stream, phone, amount,
                              str(form.get("CallbackUrl", "")), time.monotonic())
        if stream == KPLC_STREAM:
            txn.meter = str(form.get("MeterNumber", ""))
            if not txn.meter.isdigit() or txn.meter in self.invalid_meters:
                return _error(None, "Invalid meter number")
            txn.names = "JOHN DOE KAMAU"
            body: dict[str, Any] = {
                "Customer": {"ReferenceNumber": f"KP{txn.id}", "Names": txn.names,
                             "Address": "NAIROBI"},
                "TransactionID": txn.id, "Amount": amount.quantize(FOUR),
                "MeterNumber": txn.meter}
        else:
            txn.operator_code = str(form.get("OperatorCode", ""))
            if txn.operator_code not in OPERATORS:
                return _error(None, "Invalid operator code")
            body = {"TransactionID": txn.id, "PhoneNumber": phone,
                    "OperatorName": OPERATORS[txn.operator_code], "Amount": amount.quantize(FOUR)}
        self.transactions[txn.id] = txn
        return _reply(body)

    async def _commit(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        form = await request.post()
        if problem := _fields_problem(set(form), COMMIT, set()):
            return _error(None, problem)
        txn = self.transactions.get(str(form.get("TransactionID", "")))
        if txn is None or txn.stream != form.get("Stream"):
            return _error(1051, "Invalid transaction id")
        self._expire(txn)
        if txn.committed:
            return _error(1053, "Transaction is already completed")
        if txn.status != "Checking":
            return _error(1051, "Invalid transaction id: the transaction has expired")
        if self.float_balance < txn.amount:
            return _error(1060, "Low agent balance")
        self.float_balance -= txn.amount
        txn.committed = True
        if self.commit_mode == "complete":
            self._complete(txn)
            self.send_callback(txn)
        return _reply(self._commit_body(txn))

    async def _status(self, request: web.Request) -> web.Response:
        if (denied := self._denied(request)) is not None:
            return denied
        txn = self.transactions.get(request.query.get("transactionid", ""))
        if txn is None:
            return _error(1051, "Invalid transaction id")
        self._expire(txn)
        body: dict[str, Any] = {
            "TransactionId": txn.id, "UtilityName": "KPLC Tokens" if txn.kplc else "Airtime",
            "Status": txn.status, "Amount": txn.amount.quantize(FOUR),
            "ReceiptNumber": txn.receipt, "TransactionDate": txn.date or _now()}
        if txn.kplc:
            body["PaidItem"] = {"Token": txn.token, "Units": txn.units}
        else:
            body["PaidItem"] = {"DestinationPhoneNumber": txn.phone, "Denomination": 0,
                                "Quantity": 1, "OperatorName": OPERATORS[txn.operator_code]}
        return _reply(body)

    # --- state --------------------------------------------------------------------------

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _expire(self, txn: FakeTransaction) -> None:
        if (not txn.committed and txn.status == "Checking"
                and time.monotonic() - txn.created > self.presentment_ttl_s):
            txn.status = "Cancelled"

    def _complete(self, txn: FakeTransaction) -> None:
        txn.status, txn.date = "Completed", _now()
        txn.receipt = datetime.now().strftime("%y%m%d") + "00" + txn.id
        if txn.kplc:
            txn.token = "".join(str(secrets.randbelow(10)) for _ in range(20))
            txn.units = (txn.amount / PRICE_PER_UNIT).quantize(Decimal("0.000001"))

    def _commit_body(self, txn: FakeTransaction) -> dict[str, Any]:
        amount = txn.amount.quantize(FOUR)
        if not txn.kplc:
            return {"PhoneNumber": txn.phone, "Amount": amount, "TransactionID": txn.id,
                    "ReceiptNumber": txn.receipt}
        tokens = [] if txn.token is None else [{
            "Amount": amount, "ReceiptNumber": txn.receipt, "Tarrif": "DOMESTIC",
            "Tax": Decimal("0.00"), "Token": txn.token, "Units": txn.units, "UnitType": "kWh"}]
        return {"Customer": {"ReferenceNumber": f"KP{txn.id}", "Names": txn.names,
                             "Address": "NAIROBI"},
                "Charges": [], "Tokens": tokens, "TransactionID": txn.id,
                "ReceiptNumber": txn.receipt, "Amount": amount, "MeterNumber": txn.meter}


def _fields_problem(given: set[str], required: set[str], optional: set[str]) -> str:
    """Exactly the documented fields: all required ones, no others."""
    if missing := sorted(required - given):
        return f"Missing field(s): {', '.join(missing)}"
    if unknown := sorted(given - required - optional):
        return f"Unknown field(s): {', '.join(unknown)}"
    return ""


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M")


__all__ = ["FakeTransaction", "JambopayFake", "decimal_json"]
