"""KKiaPay's admin API and webhooks, as kkiapay-transactions.txt and NOTES.md section 3 read.

An independent reading, written from the documents only (never from the connector), so a
connector mistake has to be made twice, differently, to pass. What the documents say:
- Three key headers on every admin call: X-API-KEY (public), X-PRIVATE-KEY, X-SECRET-KEY.
- `POST /api/v1/transactions/status {"transactionId"}` answers type, status
  (SUCCESS/FAILED/PENDING), source (MOBILE_MONEY), performed_at, amount: exactly those five
  fields here, nothing more (no echo of the widget's data).
- `POST /api/v1/transactions/revert {"transactionId"}` refunds.
- A customer pays in KKiaPay's widget; a merchant-initiated transfer is a dashboard action,
  so there is no payout endpoint here.
- Webhooks carry the dashboard's hash secret in `x-kkiapay-secret`; a non-2xx answer is
  retried 5 times, 500 ms apart and growing.

Where the documents are silent this fake has one answer, its own default, listed so the
connector's matching setting is visibly an assumption:
- Bodies are JSON objects with exactly the documented key; anything else is 400.
- Missing or wrong keys: 401; an unknown transaction: 404 (bodies `{"status", "reason"}`).
- After a revert the status call says REVERTED; a revert answers `{"code": "SUCCESS", ...}`,
  a refused one 400 with `{"code", "description"}`.
- The webhook body: transactionId, isPaymentSucces (KKiaPay's spelling), amount,
  performedAt, stateData (the widget's data), event, and failureCode/failureMessage on a
  failure. A redirect answer counts as a failure (no redirect is followed).

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
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from malipo.sandbox.fake_provider import Callback, Delivery, DemoSetup, FakeProvider, json_bytes

# The status call's values as NOTES.md names them, and this fake's word after a revert.
SETTLED = ("SUCCESS", "FAILED")
OPEN = "PENDING"
REVERTED = "REVERTED"
KEY_HEADERS = ("X-API-KEY", "X-PRIVATE-KEY", "X-SECRET-KEY")
SECRET_HEADER = "x-kkiapay-secret"  # noqa: S105 (a header name)
OPERATOR_MESSAGES = {
    "insufficent_fund": "User account balance is less than requested amount",
    "processing_error": "System is busy or user already has a pending payment request",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class FakeTransaction:
    """One widget transaction: what KKiaPay holds and answers about it."""

    transaction_id: str
    amount: int  # XOF, whole francs
    status: str  # SUCCESS | FAILED | PENDING | REVERTED
    data: str | None  # what the merchant's page gave the widget; never in the status answer
    failure_code: str = ""
    performed_at: str = ""

    def status_body(self) -> dict[str, Any]:
        """The five documented fields, nothing else."""
        return {"type": "PAYMENT", "status": self.status, "source": "MOBILE_MONEY",
                "performed_at": self.performed_at, "amount": self.amount}

    def webhook_body(self) -> dict[str, Any]:
        paid = self.status == "SUCCESS"
        body: dict[str, Any] = {
            "transactionId": self.transaction_id, "isPaymentSucces": paid,
            "amount": self.amount, "performedAt": self.performed_at,
            "stateData": self.data or "",
            "event": "transaction.success" if paid else "transaction.failed",
        }
        if not paid:
            code = self.failure_code or "processing_error"
            body["failureCode"] = code
            body["failureMessage"] = OPERATOR_MESSAGES.get(code, "transaction failed")
        return body


def _refusal(status: int, reason: str) -> web.Response:
    return web.json_response({"status": status, "reason": reason}, status=status)


class KkiapayFake(FakeProvider):
    name = "kkiapay"
    webhook_attempts = 6  # the first delivery and the 5 documented retries
    follow_redirects = False

    @classmethod
    def for_demo(cls, setup: DemoSetup) -> KkiapayFake:
        return cls(public_key="pk_" + setup.key(), private_key="tpk_" + setup.key(),
                   secret_key="tsk_" + setup.key(), webhook_secret=setup.key(),
                   webhook_url=setup.callback_url, retry_delay_s=setup.retry_delay_s)

    def demo_settings(self) -> dict[str, str]:
        return {"base_url": self.base_url, "sandbox": "true",
                "public_key": self.keys["x-api-key"], "private_key": self.keys["x-private-key"],
                "secret_key": self.keys["x-secret-key"], "webhook_secret": self.webhook_secret}

    def demo_guide(self) -> list[str]:
        return [f"kkiapay    {self.base_url}  CreatePayment provider=kkiapay XOF:",
                "           ACTION_REQUIRED (widget); the customer paying is",
                f"           curl -d '{{\"amount\":5000,\"data\":\"<payment id>\"}}' "
                f"{self.base_url}/_test/widget"]

    def __init__(self, *, public_key: str = "pk_test", private_key: str = "tpk_test",
                 secret_key: str = "tsk_test", webhook_secret: str = "whsec_test",  # noqa: S107 (fake's test keys)
                 webhook_url: str = "", retry_delay_s: float = 0.5) -> None:
        # Lower-case header names: aiohttp's lookup ignores case, demo.py reads them so.
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

    # --- what customers and operators do ------------------------------------------------

    def widget_payment(self, amount: int, data: str | None, *, status: str = "SUCCESS",
                       failure_code: str = "", notify: bool = True) -> FakeTransaction:
        """A customer finishing KKiaPay's widget: a transaction and, once settled, a webhook."""
        tx = FakeTransaction(str(100000000 + secrets.randbelow(900000000)), amount,
                             status.upper(), data, failure_code, _now())
        self.transactions[tx.transaction_id] = tx
        if notify and tx.status in SETTLED:
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
        """Send the webhook for `tx` (or any body, to contradict the status call)."""
        if not self.webhook_url:
            return None
        callback = Callback(self.webhook_url, json_bytes(body or tx.webhook_body()),
                            {SECRET_HEADER: self.webhook_secret})
        return self.send_callbacks([callback], attempts=self.webhook_attempts,
                                   retry_delay_s=self.retry_delay_s)

    def refuse_next_revert(self, code: str = "INSUFFICIENT_BALANCE",
                           description: str = "merchant balance too low to revert") -> None:
        self._revert_refusal = (code, description)

    def forge(self, callback: Callback) -> Callback:
        return Callback(callback.url, callback.body,
                        {**callback.headers, SECRET_HEADER: "not-the-secret"})

    def pause_after(self, attempt: int, base_s: float) -> float:
        """500 ms apart and growing: each pause one base delay longer than the last."""
        return base_s * attempt

    # --- the admin API --------------------------------------------------------------------

    def _keys_match(self, request: web.Request) -> bool:
        matched = True
        for header in KEY_HEADERS:
            given = request.headers.get(header, "").encode()
            matched &= hmac.compare_digest(given, self.keys[header.lower()].encode())
        return matched

    async def _transaction(self, request: web.Request) -> FakeTransaction | web.Response:
        """The documented call shape: the keys, then a JSON `{"transactionId"}` and no more."""
        if not self._keys_match(request):
            return _refusal(401, "UNAUTHORIZED")
        try:
            body: Any = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return _refusal(400, "body must be the JSON object {\"transactionId\"}")
        if not isinstance(body, dict) or set(body) != {"transactionId"}:  # pyright: ignore[reportUnknownArgumentType]
            return _refusal(400, "body must be the JSON object {\"transactionId\"}")
        tid: Any = body["transactionId"]
        if not isinstance(tid, str) or not tid.strip():
            return _refusal(400, "transactionId must be a non-empty string")
        tx = self.transactions.get(tid)
        return tx if tx is not None else _refusal(404, "TRANSACTION_NOT_FOUND")

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
        if tx.status != "SUCCESS":
            return web.json_response({"code": "TRANSACTION_NOT_REVERTIBLE",
                                      "description": f"the transaction is {tx.status}"},
                                     status=400)
        tx.status = REVERTED
        return web.json_response({"code": "SUCCESS", "description": "REFUND_SUCCESS",
                                  "transactionId": tx.transaction_id})

    # --- HTTP test surface ----------------------------------------------------------------

    async def _t_webhook(self, request: web.Request) -> web.Response:
        self.webhook_url = str((await request.json()).get("url", ""))
        return web.json_response({"url": self.webhook_url})

    async def _t_widget(self, request: web.Request) -> web.Response:
        d = await request.json()
        tx = self.widget_payment(int(d["amount"]), d.get("data"),
                                 status=str(d.get("status", "SUCCESS")),
                                 failure_code=str(d.get("failure_code", "")),
                                 notify=bool(d.get("notify", True)))
        return web.json_response({"transactionId": tx.transaction_id, **tx.status_body()})

    async def _t_settle(self, request: web.Request) -> web.Response:
        d = await request.json()
        tid = request.match_info["tid"]
        if tid not in self.transactions:
            return _refusal(404, "TRANSACTION_NOT_FOUND")
        tx = self.settle(tid, str(d["status"]), failure_code=str(d.get("failure_code", "")),
                         notify=bool(d.get("notify", True)))
        return web.json_response({"transactionId": tx.transaction_id, **tx.status_body()})

    async def _t_get(self, request: web.Request) -> web.Response:
        tx = self.transactions.get(request.match_info["tid"])
        if tx is None:
            return _refusal(404, "TRANSACTION_NOT_FOUND")
        return web.json_response({"transactionId": tx.transaction_id, **tx.status_body()})

    async def _t_revert_refusal(self, request: web.Request) -> web.Response:
        d = await request.json()
        self.refuse_next_revert(str(d.get("code", "INSUFFICIENT_BALANCE")),
                                str(d.get("description", "merchant balance too low")))
        return web.json_response({"armed": True})
