"""A faithful fake of Kwik's debit-order API (kwik-transactions.txt, NOTES.md section 5).

Served under /1.0/ like Kwik: POST /payments/submit, GET /transactions (the documented
filters), GET /transactions/record/{reference}, GET /lookups/{type}. Basic auth is checked on
every call, more than `rate_limit` accepted requests in any one second answer 429 (counted in
`rate_limited`), and the bank account number picks the outcome as on Kwik's staging (the
staging table's numbers; any other number stays Pending).

Test hooks: `advance()` moves transactions one bank step along their path and `run()` does
it until nothing moves; both send ONE batched webhook per step to `webhook_url` with every
changed transaction in `results`. `webhook()` sends any results you craft (malformed ones
included). Over HTTP: POST /_kwik/config {"webhook_url"}, POST /_kwik/advance
{"references": [...]?, "until_settled": bool}, GET /_kwik/state; the base class adds
/_control chaos switches (late, twice, out_of_order, forged, never callbacks; faults).
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from malipo.sandbox.fake_provider import Callback, Delivery, FakeProvider, json_bytes

SAST = timezone(timedelta(hours=2))
PREFIX = "/1.0"

# Kwik's staging accounts -> outcome (docs.kwik.co.za, "Staging Bank Account Numbers").
STAGING: Mapping[str, str] = {
    "00302481214": "sent_to_bank", "10004301097": "rejected", "10004301100": "paid",
    "10004291601": "unpaid", "00302481206": "cancelled", "00243663005": "disputed",
    "04047527520": "reversed", "04047530660": "accepted", "04047527350": "rejected",
    "09050677010": "paid", "53011389310": "unpaid", "09050717030": "cancelled",
    "62001541061": "disputed", "62001909467": "reversed", "62001872440": "paid",
}
# One outcome per test convenience: the first staging number of each.
ACCOUNT_FOR: Mapping[str, str] = {o: n for n, o in reversed(list(STAGING.items()))} | {
    "pending": "11111111111"}

# The statuses a transaction passes through after "Pending", per outcome.
PATHS: Mapping[str, tuple[str, ...]] = {
    "paid": ("Sent to Bank", "Paid"),
    "unpaid": ("Sent to Bank", "Unpaid"),
    "rejected": ("Rejected by Bank",),
    "cancelled": ("Cancelled",),
    "disputed": ("Sent to Bank", "Paid", "Disputed"),
    "reversed": ("Sent to Bank", "Paid", "Reversed"),
    "accepted": ("Sent to Bank", "Accepted by bank"),
    "sent_to_bank": ("Sent to Bank",),
    "pending": (),
}
UNPAID_REASONS: Mapping[str, str] = {"Unpaid": "NOT PROVIDED FOR",
                                     "Rejected by Bank": "NO SUCH ACCOUNT"}
STATUS_NAMES = ("Pending", "Sent to Bank", "Accepted by bank", "Rejected by Bank", "Paid",
                "Unpaid", "Cancelled", "Disputed", "Reversed")
LOOKUP_ID: Mapping[str, str] = {
    n: "loo_ts" + re.sub(r"[^a-z]", "", n.lower()).ljust(10, "x")[:10] for n in STATUS_NAMES}
_AMOUNT = re.compile(r'"__amount__(-?\d+(?:\.\d+)?)__"')
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def sast_now() -> str:
    return datetime.now(UTC).astimezone(SAST).strftime("%Y-%m-%d %H:%M:%S")


def kwik_json(data: Any, status: int = 200) -> web.Response:
    """Kwik answers amounts as JSON numbers; render them from Decimal text, never a float."""
    text = _AMOUNT.sub(r"\1", json_bytes(data).decode())
    return web.Response(body=text.encode(), status=status, content_type="application/json")


class KwikFake(FakeProvider):
    name = "kwik"

    def __init__(self, *, api_key: str = "kwik_test_key",
                 api_secret: str = "kwik_test_secret",  # noqa: S107 - the fake's own test key
                 rate_limit: int = 100, payment_methods: Iterable[str] = ("pam_debit_order",),
                 webhook_url: str = "", secret_param: str = "token",  # noqa: S107
                 ) -> None:
        super().__init__()
        self.api_key, self.api_secret = api_key, api_secret
        self.rate_limit = rate_limit
        self.payment_methods = set(payment_methods)
        self.webhook_url = webhook_url
        self.secret_param = secret_param
        self.transactions: dict[str, dict[str, Any]] = {}   # by transaction_reference
        self.outcomes: dict[str, str] = {}
        self.batches: list[dict[str, Any]] = []              # accepted submit bodies
        self.rate_limited = 0
        self.unauthorized = 0
        self._admitted: deque[float] = deque()
        self._seq = 0

    @property
    def api_url(self) -> str:
        return self.base_url + PREFIX + "/"

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post(PREFIX + "/payments/submit", self._submit),
            web.get(PREFIX + "/transactions", self._list),
            web.get(PREFIX + "/transactions/record/{reference}", self._record),
            web.get(PREFIX + "/lookups", self._lookups),
            web.get(PREFIX + "/lookups/{type}", self._lookups),
            web.post("/_kwik/config", self._config),
            web.post("/_kwik/advance", self._advance_http),
            web.get("/_kwik/state", self._state),
        ]

    # --- gatekeeping: rate limit, then Basic auth ------------------------------------------

    def _gate(self, request: web.Request) -> web.Response | None:
        now = time.monotonic()
        while self._admitted and self._admitted[0] <= now - 1.0:
            self._admitted.popleft()
        if len(self._admitted) >= self.rate_limit:
            self.rate_limited += 1
            return kwik_json({"status": False, "message": "Too many requests"}, 429)
        self._admitted.append(now)
        expected = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode())
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if not (scheme == "Basic" and hmac.compare_digest(given.encode(), expected)):
            self.unauthorized += 1
            return kwik_json({"status": False, "message": "Unauthorized"}, 401)
        return None

    def _next_id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_{self._seq:021d}"

    # --- POST /payments/submit ---------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        if (refused := self._gate(request)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return kwik_json({"status": False, "message": "Body must be application/json"}, 400)
        if not isinstance(body, dict):
            return kwik_json({"status": False, "message": "Body must be an object"}, 400)
        batch_ref = body.get("batch_reference")
        payments = body.get("payments")
        if not isinstance(batch_ref, str) or not 0 < len(batch_ref) <= 256:
            return kwik_json({"status": False, "message": "batch_reference is required"}, 400)
        if not isinstance(payments, list) or not payments:
            return kwik_json({"status": False, "message": "payments must be a list"}, 400)
        self.batches.append(body)
        seen: set[str] = set()
        results = [self._accept(p, batch_ref, seen) for p in payments]
        return kwik_json({"status": True, "batch_reference": batch_ref, "results": results})

    def _accept(self, p: Any, batch_ref: str, seen: set[str]) -> dict[str, Any]:
        problem = self._problem(p, seen)
        ref = str(p.get("transaction_reference", "")) if isinstance(p, dict) else ""
        if problem:
            return {"status": False, "transaction_reference": ref, "message": problem}
        seen.add(ref)
        account = (p.get("bank_account") or {}).get("bank_account_number", "")
        outcome = STAGING.get(account, "pending")
        amount = Decimal(p["amount"])
        payment_id = self._next_id("pay")
        self.outcomes[ref] = outcome
        self.transactions[ref] = {
            "id": self._next_id("tra"), "created_at": sast_now(), "updated_at": None,
            "charged_at": None, "status_changed_at": sast_now(),
            "payment_methods_id": p["payment_methods_id"], "payments_id": payment_id,
            "customers_id": p.get("customer_id") or self._next_id("cus"),
            "bank_accounts_id": p.get("bank_account_id") or self._next_id("ban"),
            "mandates_id": self._next_id("man"), "transaction_reference": ref,
            "payment_reference": "KW" + payment_id[-10:],
            "submission_batch_reference": "SB" + batch_ref[-10:],
            "transaction_status_lookups_id": LOOKUP_ID["Pending"],
            "amount": amount, "payment_data": {k: v for k, v in p.items() if k != "bank_account"},
            "unpaid_reason": None,
            "submission_data": [],
        }
        return {"status": True, "id": payment_id, "transaction_reference": ref,
                "amount": str(amount), "action_date": p["action_date"],
                "payment_methods_id": p["payment_methods_id"]}

    def _problem(self, p: Any, seen: set[str]) -> str:
        if not isinstance(p, dict):
            return "payment must be an object"
        ref = p.get("transaction_reference")
        if not isinstance(ref, str) or not 0 < len(ref) <= 128:
            return "transaction_reference is required (max 128)"
        if ref in self.transactions or ref in seen:
            return "Duplicate transaction_reference"
        if p.get("payment_methods_id") not in self.payment_methods:
            return "Invalid payment_methods_id"
        try:
            amount = Decimal(str(p.get("amount")))
        except InvalidOperation:
            return "amount must be a decimal"
        if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
            return "amount must be positive with at most 2 decimals"
        if not isinstance(p.get("action_date"), str) or not _DATE.match(p["action_date"]):
            return "action_date must be YYYY-MM-DD"
        if not p.get("customer_id") and not isinstance(p.get("customer"), dict):
            return "customer or customer_id is required"
        bank = p.get("bank_account")
        if not p.get("bank_account_id"):
            if not isinstance(bank, dict) or not str(bank.get("bank_account_number", "")).isdigit():
                return "bank_account or bank_account_id is required"
            if not str(bank.get("bank_branch_code", "")).isdigit():
                return "bank_account.bank_branch_code is required"
        return ""

    # --- transactions ------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> web.Response:
        if (refused := self._gate(request)) is not None:
            return refused
        tx = self.transactions.get(request.match_info["reference"])
        if tx is None:
            return kwik_json({"status": False, "message": "Transaction not found"}, 404)
        return kwik_json({"status": True, "transaction": _render(tx)})

    async def _list(self, request: web.Request) -> web.Response:
        if (refused := self._gate(request)) is not None:
            return refused
        q = request.query
        for key in ("charged_at_start_date", "charged_end_date", "status_changed_at_start_date",
                    "status_changed_at_end_date"):
            if key in q and not _DATE.match(q[key]):
                return kwik_json({"status": False, "message": f"{key} must be YYYY-MM-DD"}, 400)

        def keep(tx: Mapping[str, Any]) -> bool:
            charged = (tx["charged_at"] or "")[:10]
            changed = (tx["status_changed_at"] or "")[:10]
            return all((
                q.get("transaction_status_lookups_id", tx["transaction_status_lookups_id"])
                == tx["transaction_status_lookups_id"],
                q.get("payment_methods_id", tx["payment_methods_id"]) == tx["payment_methods_id"],
                "charged_at_start_date" not in q
                or (charged and charged >= q["charged_at_start_date"]),
                "charged_end_date" not in q or (charged and charged <= q["charged_end_date"]),
                changed >= q.get("status_changed_at_start_date", ""),
                "status_changed_at_end_date" not in q or changed <= q["status_changed_at_end_date"],
            ))
        rows = [_render(tx) for tx in self.transactions.values() if keep(tx)]
        return kwik_json({"status": True, "transactions": rows})

    async def _lookups(self, request: web.Request) -> web.Response:
        if (refused := self._gate(request)) is not None:
            return refused
        kind = request.match_info.get("type", "transaction_status")
        rows = [{"id": i, "parent_lookups_id": None, "title": n, "type": "transaction_status"}
                for n, i in LOOKUP_ID.items()] if kind == "transaction_status" else []
        return kwik_json({"status": True, "lookups": rows})

    # --- the bank's side and webhooks --------------------------------------------------------

    def advance(self, references: Iterable[str] | None = None, *,
                webhook: bool = True) -> list[dict[str, Any]]:
        """One bank step for each chosen transaction; one batched webhook for all changes
        (when a webhook URL is configured, as on Kwik's developer section)."""
        changed: list[dict[str, Any]] = []
        for ref in list(references) if references is not None else list(self.transactions):
            tx = self.transactions[ref]
            path = PATHS[self.outcomes[ref]]
            current = _name_of(tx["transaction_status_lookups_id"])
            step = path.index(current) + 1 if current in path else 0
            if step >= len(path):
                continue
            self.set_status(ref, path[step])
            changed.append(_render(tx))
        if changed and webhook and self.webhook_url:
            self.webhook(changed)
        return changed

    def run(self, references: Iterable[str] | None = None, *,
            webhook: bool = True) -> list[list[dict[str, Any]]]:
        """Advance until every transaction has reached the end of its path."""
        refs = list(references) if references is not None else None
        steps: list[list[dict[str, Any]]] = []
        while moved := self.advance(refs, webhook=webhook):
            steps.append(moved)
        return steps

    def set_status(self, reference: str, name: str) -> None:
        tx = self.transactions[reference]
        now = sast_now()
        tx["transaction_status_lookups_id"] = LOOKUP_ID[name]
        tx["status_changed_at"] = tx["updated_at"] = now
        tx["charged_at"] = tx["charged_at"] or now
        tx["unpaid_reason"] = UNPAID_REASONS.get(name, tx["unpaid_reason"])
        tx["submission_data"].append({"date": now, "code": "000000", "message": name.upper()})

    def webhook_body(self, results: Sequence[Any], *, kind: str = "transaction.updated",
                     webhook_id: str | None = None) -> bytes:
        envelope = {"id": webhook_id or self._next_id("whk"), "type": kind, "status": True,
                    "results": list(results), "created_at": sast_now()}
        return _AMOUNT.sub(r"\1", json_bytes(_amounts(envelope)).decode()).encode()

    def webhook(self, results: Sequence[Any], *, kind: str = "transaction.updated",
                webhook_id: str | None = None, attempts: int = 3) -> Any:
        """Send one batched webhook (background task resolving to its deliveries)."""
        if not self.webhook_url:
            raise RuntimeError("KwikFake.webhook_url is not set")
        body = self.webhook_body(results, kind=kind, webhook_id=webhook_id)
        return self.send_callbacks([Callback(self.webhook_url, body)], attempts=attempts)

    def forge(self, callback: Callback) -> Callback:
        parts = urlsplit(callback.url)
        query = [(k, "forged" if k == self.secret_param else v) for k, v in parse_qsl(parts.query)]
        url = urlunsplit(parts._replace(query=urlencode(query)))
        return Callback(url, callback.body, {**callback.headers, "x-forged": "1"})

    async def _config(self, request: web.Request) -> web.Response:
        data = await request.json()
        self.webhook_url = str(data.get("webhook_url", self.webhook_url))
        return await self._state(request)

    async def _advance_http(self, request: web.Request) -> web.Response:
        raw = await request.read()  # already read by the recording middleware: cached
        data = json.loads(raw) if raw.strip() else {}
        refs = data.get("references")
        moved = self.run(refs) if data.get("until_settled") else [self.advance(refs)]
        return kwik_json({"steps": [[t["transaction_reference"] for t in s] for s in moved]})

    async def _state(self, _request: web.Request) -> web.Response:
        return kwik_json({
            "webhook_url": self.webhook_url, "rate_limited": self.rate_limited,
            "unauthorized": self.unauthorized, "batches": len(self.batches),
            "transactions": {r: _name_of(t["transaction_status_lookups_id"])
                             for r, t in self.transactions.items()},
        })

    def deliveries_to(self, url_prefix: str) -> list[Delivery]:
        return [d for d in self.deliveries if d.url.startswith(url_prefix)]


def _name_of(lookup_id: str) -> str:
    return next(n for n, i in LOOKUP_ID.items() if i == lookup_id)


def _amounts(value: Any) -> Any:
    """Mark Decimal amounts so kwik_json can write them as bare JSON numbers."""
    if isinstance(value, Decimal):
        return f"__amount__{value}__"
    if isinstance(value, dict):
        return {k: _amounts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_amounts(v) for v in value]
    return value


def _render(tx: Mapping[str, Any]) -> dict[str, Any]:
    return _amounts({**tx, "submission_data": list(tx["submission_data"])})
