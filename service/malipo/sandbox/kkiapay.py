"""A faithful fake of KKiaPay's admin API, its widget's transactions and its webhooks.

What it enforces: the three key headers (X-API-KEY, X-PRIVATE-KEY, X-SECRET-KEY) on every
admin call (401 otherwise), a `transactionId` in status and revert bodies (JSON or form, as
the Node.js and Python SDKs send them), What it answers: the
status call's shape as KKiaPay's SDK users see it (`status`, `amount`, `state` echoing the
widget's `data`, `failureCode`, ...), 404 for an unknown transaction.

Webhooks carry `x-kkiapay-secret` and KKiaPay's body (`transactionId`, `isPaymentSucces`,
`stateData`, `event`, ...). Like KKiaPay, a delivery answered outside 2xx (3xx included, no
redirect is followed) is retried 5 times, `retry_delay_s` apart and growing by that much.

Test surface, in Python (`widget_payment`, `settle`, `notify`, `refuse_next_revert`) and over
HTTP for end-to-end tests:
  POST /_test/webhook       {"url": ...}                       where webhooks go
  POST /_test/widget        {"amount", "data", "status", "failure_code", "notify"}
  POST /_test/transactions/{id}/settle {"status", "failure_code", "notify"}
  GET  /_test/transactions/{id}
  POST /_test/revert_refusal {"code", "description"}          refuse the next revert
plus the base's /_control chaos switches and `calls`/`deliveries` records.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from malipo.sandbox.fake_provider import (
    Callback,
    Delivery,
    FakeProvider,
    json_bytes,
)

SOURCES = {"mtn": "MTN BENIN", "moov": "MOOV BENIN"}
FAILURE_MESSAGES = {
    "insufficent_fund": "User account balance is less than requested amount",
    "processing_error": "System is busy or user already has a pending payment request",
}


@dataclass
class FakeTransaction:
    transaction_id: str
    amount: int
    status: str  # SUCCESS | FAILED | PENDING | REVERTED
    state: str | None  # the widget's `data`
    kind: str = "PAYMENT"  # or PAYOUT
    operator: str = "mtn"
    phone: str = "2290197000000"
    failure_code: str = ""
    performed_at: str = ""

    def status_body(self) -> dict[str, Any]:
        failed = self.status == "FAILED"
        return {
            "performed_at": self.performed_at, "performedAt": self.performed_at,
            "type": "DEBIT" if self.kind == "PAYOUT" else "CREDIT",
            "status": self.status, "source": "MOBILE_MONEY",
            "source_common_name": SOURCES.get(self.operator, self.operator),
            "amount": self.amount, "fees": self.amount // 50, "reason": None,
            "failureCode": self.failure_code if failed else None,
            "failureMessage": FAILURE_MESSAGES.get(self.failure_code, "failed") if failed
            else None,
            "state": self.state, "partnerId": None, "feeSupportedBy": "merchant",
            "income": self.amount - self.amount // 50, "transactionId": self.transaction_id,
            "client": {"fullname": "Test Customer", "phone": self.phone, "email": ""},
        }

    def webhook_body(self) -> dict[str, Any]:
        success = self.status == "SUCCESS"
        body: dict[str, Any] = {
            "transactionId": self.transaction_id, "isPaymentSucces": success,
            "account": self.phone, "label": SOURCES.get(self.operator, self.operator),
            "method": "MOBILE_MONEY", "amount": self.amount, "fees": self.amount // 50,
            "partnerId": "", "performedAt": self.performed_at, "stateData": self.state or "",
            "event": "transaction.success" if success else "transaction.failed",
        }
        if not success:
            body["failureCode"] = self.failure_code or "processing_error"
            body["failureMessage"] = FAILURE_MESSAGES.get(self.failure_code, "failed")
        return body


class KkiapayFake(FakeProvider):
    name = "kkiapay"
    webhook_attempts = 6  # the first try and KKiaPay's 5 retries

    def __init__(self, *, public_key: str = "pk_test", private_key: str = "tpk_test",
                 secret_key: str = "tsk_test", webhook_secret: str = "whsec_test",  # noqa: S107 (fake's test keys)
                 webhook_url: str = "", retry_delay_s: float = 0.5) -> None:
        self.keys = {"x-api-key": public_key, "x-private-key": private_key,
                     "x-secret-key": secret_key}
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url
        self.retry_delay_s = retry_delay_s
        self.transactions: dict[str, FakeTransaction] = {}
        self._revert_refusal: tuple[str, str] | None = None
        super().__init__()

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/api/v1/transactions/status", self._status),
            web.post("/api/v1/transactions/revert", self._revert),
            web.post("/_test/webhook", self._t_webhook),
            web.post("/_test/widget", self._t_widget),
            web.post("/_test/transactions/{tid}/settle", self._t_settle),
            web.get("/_test/transactions/{tid}", self._t_get),
            web.post("/_test/revert_refusal", self._t_revert_refusal),
        ]

    # --- the test "widget" and operator outcomes -----------------------------------------

    def widget_payment(self, amount: int, data: str | None, *, status: str = "SUCCESS",
                       failure_code: str = "", operator: str = "mtn",
                       notify: bool = True) -> FakeTransaction:
        """What a customer completing KKiaPay's widget produces: a transaction (and a webhook)."""
        tx = FakeTransaction(self._new_id(), amount, status.upper(), data, operator=operator,
                             failure_code=failure_code, performed_at=_now())
        self.transactions[tx.transaction_id] = tx
        if notify and tx.status != "PENDING":
            self.notify(tx)
        return tx

    def settle(self, transaction_id: str, status: str, *, failure_code: str = "",
               notify: bool = True) -> FakeTransaction:
        tx = self.transactions[transaction_id]
        tx.status, tx.failure_code, tx.performed_at = status.upper(), failure_code, _now()
        if notify:
            self.notify(tx)
        return tx

    def notify(self, tx: FakeTransaction, *,
               body: dict[str, Any] | None = None) -> asyncio.Task[list[Delivery]] | None:
        """Send the webhook for `tx` (or any body, for contradicting claims)."""
        if not self.webhook_url:
            return None
        callback = Callback(self.webhook_url, json_bytes(body or tx.webhook_body()),
                            {"x-kkiapay-secret": self.webhook_secret})
        return self.send_callbacks([callback], attempts=self.webhook_attempts,
                                   retry_delay_s=self.retry_delay_s)

    def refuse_next_revert(self, code: str = "INSUFFICIENT_BALANCE",
                           description: str = "merchant balance too low to revert") -> None:
        self._revert_refusal = (code, description)

    def forge(self, callback: Callback) -> Callback:
        return Callback(callback.url, callback.body, {**callback.headers,
                                                      "x-kkiapay-secret": "not-the-secret"})

    # KKiaPay's schedule: delays grow by the base delay each time; a 3xx is a failure.
    follow_redirects = False

    def pause_after(self, attempt: int, base_s: float) -> float:
        return base_s * attempt

    # --- admin API -----------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        ok = True
        for name, expected in self.keys.items():
            ok &= hmac.compare_digest(request.headers.get(name, "").encode(), expected.encode())
        return ok

    @staticmethod
    async def _fields(request: web.Request) -> dict[str, Any] | None:
        raw = await request.read()
        if request.content_type == "application/x-www-form-urlencoded":
            return dict(parse_qsl(raw.decode()))
        try:
            data = await request.json()
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    async def _admin(self, request: web.Request) -> dict[str, Any] | web.Response:
        if not self._authorised(request):
            return web.json_response({"status": 4001, "reason": "UNAUTHORIZED"}, status=401)
        fields = await self._fields(request)
        if fields is None:
            return web.json_response({"status": 4000, "reason": "BAD_REQUEST"}, status=400)
        return fields

    async def _transaction(self, request: web.Request) -> FakeTransaction | web.Response:
        fields = await self._admin(request)
        if isinstance(fields, web.Response):
            return fields
        tid = str(fields.get("transactionId") or "")
        if not tid:
            return web.json_response({"status": 4000, "reason": "transactionId is required"},
                                     status=400)
        tx = self.transactions.get(tid)
        if tx is None:
            return web.json_response({"status": 4003, "reason": "TRANSACTION_NOT_FOUND"},
                                     status=404)
        return tx

    async def _status(self, request: web.Request) -> web.Response:
        tx = await self._transaction(request)
        return tx if isinstance(tx, web.Response) else web.json_response(tx.status_body())

    async def _revert(self, request: web.Request) -> web.Response:
        tx = await self._transaction(request)
        if isinstance(tx, web.Response):
            return tx
        if self._revert_refusal is not None:
            (code, description), self._revert_refusal = self._revert_refusal, None
            return web.json_response({"code": code, "description": description}, status=400)
        if tx.kind != "PAYMENT" or tx.status != "SUCCESS":
            return web.json_response({"code": "TRANSACTION_NOT_REVERTIBLE",
                                      "description": f"transaction is {tx.status}"}, status=400)
        tx.status = "REVERTED"
        return web.json_response({"code": "SUCCESS", "description": "REFUND_SUCCESS",
                                  "transactionId": tx.transaction_id})

    # --- HTTP test surface ---------------------------------------------------------------

    async def _t_webhook(self, request: web.Request) -> web.Response:
        self.webhook_url = str((await request.json()).get("url", ""))
        return web.json_response({"url": self.webhook_url})

    async def _t_widget(self, request: web.Request) -> web.Response:
        d = await request.json()
        tx = self.widget_payment(int(d["amount"]), d.get("data"),
                                 status=str(d.get("status", "SUCCESS")),
                                 failure_code=str(d.get("failure_code", "")),
                                 notify=bool(d.get("notify", True)))
        return web.json_response(tx.status_body())

    async def _t_settle(self, request: web.Request) -> web.Response:
        d = await request.json()
        tid = request.match_info["tid"]
        if tid not in self.transactions:
            return web.json_response({"reason": "TRANSACTION_NOT_FOUND"}, status=404)
        tx = self.settle(tid, str(d["status"]), failure_code=str(d.get("failure_code", "")),
                         notify=bool(d.get("notify", True)))
        return web.json_response(tx.status_body())

    async def _t_get(self, request: web.Request) -> web.Response:
        tx = self.transactions.get(request.match_info["tid"])
        if tx is None:
            return web.json_response({"reason": "TRANSACTION_NOT_FOUND"}, status=404)
        return web.json_response(tx.status_body())

    async def _t_revert_refusal(self, request: web.Request) -> web.Response:
        d = await request.json()
        self.refuse_next_revert(str(d.get("code", "INSUFFICIENT_BALANCE")),
                                str(d.get("description", "merchant balance too low")))
        return web.json_response({"armed": True})

    @staticmethod
    def _new_id() -> str:
        return str(100000000 + secrets.randbelow(900000000))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
