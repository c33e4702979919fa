"""A faithful fake of the white-label Payment API Gateway, for tests and demos.

It enforces what the document says a request must be (signature over the fields in order,
merchant, required fields, order_id syntax, "100.00" amounts, the catalogue's provider ids,
phone renderings and required `extra` fields), is idempotent on order_id (a repeat gets the
identical first answer; a repeat carrying extra.otp while a confirmation is awaited is the
confirmation), answers in the document's shapes, and sends signed callbacks to the request's
callback_url. Provider id 14 behaves as the document's simulator: in progress, no callback.

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
Choices where the document is silent: HTTP 401 for a bad signature or merchant, 400 for a
malformed request, 404 for status of an unknown order; limits breaches are declines.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from aiohttp import web

from malipo.app.catalogue import Channel, ProviderCatalogue
from malipo.connectors.gateway.connector import CATALOGUE
from malipo.connectors.gateway.mapping import EXTRA_FIELDS, ORDER_ID
from malipo.connectors.gateway.signing import signed, verify
from malipo.domain.money import Money
from malipo.domain.status import Direction
from malipo.sandbox.fake_provider import Callback, CallbackMode, FakeProvider, json_bytes

_AMOUNT = re.compile(r"\d+\.\d{2}")
_PATH_OF_EXTRA = {path: key for key, path in EXTRA_FIELDS.items()}
_DIRECTION = {17: Direction.COLLECTION, 16: Direction.PAYOUT}
SIMULATOR = "14"


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


class GatewayFake(FakeProvider):
    name = "gateway"

    def __init__(self, *, merchant_id: str = "merchant-test", secret_key: str = "secret-test",  # noqa: S107
                 public_id: str = "public-test", otp: str = "1234",
                 complete_after_s: float = 0.05, callback_url: str = "",
                 catalogue: ProviderCatalogue | None = None) -> None:
        self.merchant_id, self.secret_key, self.public_id = merchant_id, secret_key, public_id
        self.otp, self.complete_after_s, self.callback_url = otp, complete_after_s, callback_url
        self.catalogue = catalogue or CATALOGUE
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

    async def _read(self, request: web.Request, required: Sequence[str]) -> dict[str, Any]:
        try:
            body = json.loads(await request.read(), parse_float=Decimal)
        except ValueError:
            raise Refused(400, 103, "Body is not JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, 103, "Body is not a JSON object")
        if not verify(body, self.secret_key):  # type: ignore[arg-type]
            raise Refused(401, 100, "Invalid signature")
        if body.get("merchant_id") != self.merchant_id:
            raise Refused(401, 101, "Unknown merchant")
        for name in required:
            if body.get(name) in (None, ""):
                raise Refused(400, 102, f"Missing parameter: {name}")
        if not ORDER_ID.fullmatch(str(body["order_id"])):
            raise Refused(400, 103, "Invalid parameter: order_id")
        return body  # type: ignore[return-value]

    async def _c2b(self, request: web.Request) -> web.Response:
        return await self._payment(request, 17)

    async def _b2c(self, request: web.Request) -> web.Response:
        return await self._payment(request, 16)

    async def _payment(self, request: web.Request, operation_type: int) -> web.Response:
        try:
            body = await self._read(request, ("merchant_id", "customer_id", "order_id", "amount",
                                              "currency", "provider_id"))
            order = self.orders.get(str(body["order_id"]))
            otp = str((body.get("extra") or {}).get("otp", ""))
            if order is not None:
                if otp and order.confirm_type and order.operation_type == operation_type:
                    return web.json_response(self._confirm(order, otp))
                return web.json_response(order.first_response)
            order = self._new_order(body, operation_type)
        except Refused as exc:
            return _refusal(exc)
        self.orders[order.order_id] = order
        order.first_response = self._answer(order, with_extra=order.outcome is not
                                            Outcome.REDIRECT)
        return web.json_response(order.first_response)

    def _new_order(self, body: dict[str, Any], operation_type: int) -> Order:
        amount_text = str(body["amount"])
        if not isinstance(body["amount"], str) or not _AMOUNT.fullmatch(amount_text):
            raise Refused(400, 103, "Invalid parameter: amount (two digits after point)")
        channel = self.catalogue.channel(str(body["provider_id"]))
        direction = _DIRECTION[operation_type]
        if channel is None or channel.limits_for(direction) is None:
            raise Refused(400, 103, "Invalid parameter: provider_id")
        if body["currency"] != channel.currency:
            raise Refused(400, 103, "Invalid parameter: currency")
        self._check_customer(body, channel, direction)
        customer = str(body["customer_id"])
        order = Order(str(body["order_id"]), operation_type, channel.id, customer,
                      Decimal(amount_text), channel.currency, str(body.get("callback_url", "")),
                      self.scenarios.get(customer, self.default_outcome),
                      transaction_id=str(next(self._ids)))
        if not self._within_limits(order, channel, direction):
            order.status, order.result, order.transaction_id = 3, (4, "Amount out of limits"), ""
        elif channel.id == SIMULATOR:
            order.provider_result = (-8888, "Good")
        elif channel.method == "BANK_TRANSFER" and channel.country == "NG" and \
                operation_type == 17:
            order.transaction_id = ""
            order.extra = {"transfer_amount": _number(order.amount), "account_name":
                           "Test Ltd / Test Limited", "account_number": "4000000000",
                           "bank_name": "Premium Trust Bank"}
        elif order.outcome is Outcome.DECLINE:
            order.status, order.result = 3, (5, "Insufficient funds")
        elif order.outcome is Outcome.OTP:
            order.confirm_type = 1
        elif order.outcome is Outcome.REDIRECT or (channel.extra.get("redirect_c2b")
                                                   and operation_type == 17):
            order.outcome = Outcome.REDIRECT
            order.extra = {"customer_redirect": f"{self.base_url}/_gateway/pay/{order.order_id}"}
        elif order.outcome is Outcome.UNDEFINED:
            order.status, order.result = -1, (-1, "Operation status is undefined")
            self._later(order, 2)
        elif order.outcome in (Outcome.SUCCESS, Outcome.FAIL, Outcome.CANCEL):
            self._later(order, {Outcome.SUCCESS: 2, Outcome.FAIL: 3}.get(order.outcome, 4))
        return order

    def _check_customer(self, body: dict[str, Any], channel: Channel, direction: Direction) -> None:
        extra: dict[str, Any] = body.get("extra") or {}
        limits = channel.limits_for(direction)
        for path in limits.required_fields if limits else ():
            key = _PATH_OF_EXTRA.get(path)
            if key and not str(extra.get(key, "")).strip():
                raise Refused(400, 102, f"Missing parameter: extra.{key}")
        doc = extra.get("customer_doc_type")
        if channel.document_types and doc is not None and doc not in channel.document_types:
            raise Refused(400, 103, "Invalid parameter: extra.customer_doc_type")
        fmt, customer = channel.phone, str(body["customer_id"])
        if fmt is None or channel.extra.get("customer_id", {}).get(direction.value):
            return
        if channel.extra.get("phone_render") == "national":
            expected = rf"[1-9]\d{{{fmt.national_digits - 1}}}"
        elif fmt.leading_zero:
            expected = rf"0\d{{{fmt.national_digits}}}"
        else:
            expected = rf"{fmt.calling_code}\d{{{fmt.national_digits}}}"
        if not re.fullmatch(expected, customer):
            raise Refused(400, 103, "Invalid parameter: customer_id")

    def _within_limits(self, order: Order, channel: Channel, direction: Direction) -> bool:
        limits = channel.limits_for(direction)
        try:
            minor = Money.from_decimal(order.amount, order.currency).minor
        except ValueError:
            return False
        if limits is None:
            return False
        return not ((limits.min_minor and minor < limits.min_minor)
                    or (limits.max_minor and minor > limits.max_minor)
                    or (limits.multiple_of_minor and minor % limits.multiple_of_minor))

    def _confirm(self, order: Order, otp: str) -> dict[str, Any]:
        order.confirm_type = 0
        if otp == self.otp:
            self._later(order, 2)
        else:
            self.complete(order.order_id, 3, message="Invalid OTP")
            order.result = (6, "Invalid OTP")
        return self._answer(order)

    async def _status(self, request: web.Request) -> web.Response:
        try:
            body = await self._read(request, ("merchant_id", "order_id"))
        except Refused as exc:
            return _refusal(exc)
        order = self.orders.get(str(body["order_id"]))
        if order is None:
            return _refusal(Refused(404, 104, "Order not found"))
        otp = str((body.get("extra") or {}).get("otp", ""))
        if otp and order.confirm_type:
            return web.json_response(self._confirm(order, otp))
        return web.json_response(self._answer(order))

    def _answer(self, order: Order, *, with_extra: bool = True) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "order_id": order.order_id, "transaction_id": order.transaction_id,
            "transaction_ref": order.transaction_ref, "status": order.status,
            "result": {"code": order.result[0], "message": order.result[1]},
            "provider_result": {"code": order.provider_result[0],
                                "message": order.provider_result[1]},
            "service_id": 1, "service_version": "1.03/1.14|1.0/1.26|1.0/1.0",
            "service_date_time": "2023-05-15 10:00:00.000000",
        }
        if order.extra and with_extra and order.status in (0, 1):
            answer["extra"] = order.extra
        answer["confirm_type"] = order.confirm_type
        return answer

    # --- completion and callbacks -------------------------------------------------------

    def _later(self, order: Order, status: int) -> None:
        async def run() -> None:
            await asyncio.sleep(self.complete_after_s)
            if order.status in (-1, 0, 1):
                self.complete(order.order_id, status)
        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def complete(self, order_id: str, status: int, *, amount: Decimal | str | None = None,
                 message: str = "") -> asyncio.Task[Any] | None:
        """Move an order to `status` and call back (never for the simulator, id 14)."""
        order = self.orders[order_id]
        order.status, order.confirm_type, order.extra = status, 0, {}
        if status == 2:
            order.result = (0, "OK")
        order.transaction_id = order.transaction_id or str(next(self._ids))
        text = message or {2: "OK", 3: "Transaction failed", 4: "Cancelled"}.get(status, "")
        order.provider_result = (0 if status == 2 else status, text)
        if status == 2:
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
        value = Decimal(str(amount)) if amount is not None else order.amount
        code, text = (0, "OK") if status in (1, 2) else (status, order.provider_result[1])
        body = {
            "merchant_id": self.merchant_id, "operation_type": order.operation_type,
            "customer_id": order.customer_id,
            "amount": _number(value) if self.callback_amount_as_number else f"{value:.2f}",
            "order_id": order.order_id, "transaction_id": order.transaction_id,
            "transaction_ref": order.transaction_ref if status == 2 else "", "status": status,
            "provider_id": int(order.provider_id), "destination_id": "",
            "result": {"code": code, "message": text},
        }
        return Callback(order.callback_url or self.callback_url,
                        json_bytes(signed(body, self.secret_key)))

    def forge(self, callback: Callback) -> Callback:
        body = json.loads(callback.body)
        return Callback(callback.url, json_bytes(signed(body, "forged-" + self.secret_key)),
                        dict(callback.headers))

    # --- control ------------------------------------------------------------------------

    async def _pay_page(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["order_id"])
        if order is None or order.outcome is not Outcome.REDIRECT:
            raise web.HTTPNotFound()
        if order.status in (0, 1):
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
        return web.json_response(self._answer(order) | {"outcome": order.outcome.value})


def _number(value: Decimal) -> int | float:
    """A JSON number as the gateway's callbacks carry it (exact for two-decimal amounts)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _refusal(exc: Refused) -> web.Response:
    return web.json_response({"status": -1, "result": {"code": exc.code, "message": exc.message}},
                             status=exc.http)
