"""A fake of Kwik's debit-order API, read afresh from kwik-transactions.txt and NOTES.md section 5.

Documented, and enforced here: the base path /1.0/, HTTP Basic auth with api_key:api_secret,
100 requests per second (more answer 429), POST /payments/submit with `batch_reference` and
`payments[]` (each with customer or customer_id, bank_account or bank_account_id, the amount
and the payment method), GET /transactions with exactly the documented filters, GET
/transactions/record/{reference}, and webhooks shaped `{"transactions": [...]}` whose records
carry the documented fields. Transactions exist only after a collection run: a submitted
payment has no transaction (record answers 404) until `advance()` runs the bank for it.

The documents are silent on the rest; this fake accepts only its own defaults, which the
README's table of provider assumptions lists: the submit items' field names
(`transaction_reference`, `payment_methods_id`, `amount`, `action_date`, ...) and its answer
`{"status": true, "payments": [...]}`; a submission found by our reference at GET
/payments/record/{reference}; status names at GET /lookups/transaction_status; the webhook
secret in the URL's `token` query parameter.

Test hooks: `advance()` runs one bank step for each chosen payment (the first step is the
collection run that creates its transaction) and sends ONE webhook with every changed
transaction; `run()` repeats it until nothing moves; `webhook()` sends records you craft.
Over HTTP: POST /_kwik/config {"webhook_url"}, POST /_kwik/advance {"references"?,
"until_settled"?}, GET /_kwik/state; the base class adds the /_control chaos switches.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from malipo.sandbox.fake_provider import Callback, DemoSetup, FakeProvider

GMT_PLUS_2 = timezone(timedelta(hours=2))
PREFIX = "/1.0"

# Kwik's staging bank accounts and the outcome each one produces (NOTES.md section 5);
# any other account number stays Pending.
STAGING: Mapping[str, str] = {
    "10004301100": "paid", "10004291601": "unpaid", "10004301097": "rejected",
    "00302481206": "cancelled", "00243663005": "disputed", "04047527520": "reversed",
    "04047530660": "accepted", "00302481214": "sent_to_bank",
}
ACCOUNT_FOR: Mapping[str, str] = {o: n for n, o in STAGING.items()} | {"pending": "11111111111"}

# The names a transaction shows on its way to each outcome, in the order a bank goes.
PATHS: Mapping[str, tuple[str, ...]] = {
    "paid": ("Sent to Bank", "Paid"),
    "unpaid": ("Sent to Bank", "Unpaid"),
    "rejected": ("Rejected by Bank",),
    "cancelled": ("Cancelled",),
    "disputed": ("Sent to Bank", "Paid", "Disputed"),
    "reversed": ("Sent to Bank", "Paid", "Reversed"),
    "accepted": ("Sent to Bank", "Accepted by bank"),
    "sent_to_bank": ("Sent to Bank",),
    "pending": ("Pending",),
}
NAMES = ("Paid", "Unpaid", "Rejected by Bank", "Cancelled", "Disputed", "Reversed",
         "Accepted by bank", "Sent to Bank", "Pending")
LOOKUP_ID: Mapping[str, str] = {name: f"loo_status{i:02d}" for i, name in enumerate(NAMES)}
UNPAID_REASONS: Mapping[str, str] = {"Unpaid": "NOT PROVIDED FOR",
                                     "Rejected by Bank": "NO SUCH ACCOUNT"}

# GET /transactions: the documented query parameters, nothing else.
FILTERS = ("transaction_status_lookups_id", "charged_at_start_date", "charged_end_date",
           "status_changed_at_start_date", "status_changed_at_end_date", "payment_methods_id")
DATE_FILTERS = FILTERS[1:5]

# A transaction record's documented fields: (type, maximum length for strings).
RECORD_FIELDS: Mapping[str, tuple[str, int]] = {
    "id": ("string", 32), "created_at": ("timestamp", 0), "updated_at": ("timestamp", 0),
    "charged_at": ("timestamp", 0), "status_changed_at": ("timestamp", 0),
    "payment_methods_id": ("string", 32), "payments_id": ("string", 32),
    "customers_id": ("string", 32), "bank_accounts_id": ("string", 32),
    "mandates_id": ("string", 32), "transaction_reference": ("string", 128),
    "payment_reference": ("string", 35), "submission_batch_reference": ("string", 256),
    "transaction_status_lookups_id": ("string", 32), "amount": ("decimal", 0),
    "payment_data": ("object", 0), "unpaid_reason": ("string", 256),
    "submission_data": ("history", 0),
}
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_DIGITS = re.compile(r"^\d+$")


def kwik_time(moment: datetime | None = None) -> str:
    """Kwik's timestamps: YYYY-MM-DD HH:mm:ss in GMT+2."""
    return (moment or datetime.now(UTC)).astimezone(GMT_PLUS_2).strftime("%Y-%m-%d %H:%M:%S")


def record_problems(record: Any) -> list[str]:
    """What in `record` the document's transaction table does not allow (empty: none).
    Values may be null; the document shows null for updated_at and unpaid_reason."""
    if not isinstance(record, dict):
        return ["a transaction record is a JSON object"]
    problems = [f"undocumented field {k}" for k in record if k not in RECORD_FIELDS]
    for name, (kind, longest) in RECORD_FIELDS.items():
        if name not in record:
            problems.append(f"missing field {name}")
            continue
        value = record[name]
        if value is None:
            continue
        if kind == "string" and not (isinstance(value, str) and len(value) <= longest):
            problems.append(f"{name} is not a string of at most {longest}")
        elif kind == "timestamp" and not (isinstance(value, str) and _STAMP.match(value)):
            problems.append(f"{name} is not YYYY-MM-DD HH:mm:ss")
        elif kind == "decimal" and (isinstance(value, bool) or
                                    not isinstance(value, int | Decimal)):
            problems.append(f"{name} is not a decimal number")
        elif kind == "object" and not isinstance(value, dict):
            problems.append(f"{name} is not an object")
        elif kind == "history" and not (isinstance(value, list) and
                                        all(isinstance(v, dict) for v in value)):
            problems.append(f"{name} is not a list of objects")
    return problems


def dump(value: Any) -> bytes:
    """JSON as Kwik writes it: amounts are bare numbers (500.25), written from Decimal text."""
    return _text(value).encode()


def _text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(json.dumps(str(k)) + ":" + _text(v)
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def answer(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=dump(data), status=status, content_type="application/json")


def refused(message: str, status: int = 400) -> web.Response:
    return answer({"status": False, "message": message}, status)


def _decimal(value: Any) -> Decimal | None:
    """A ZAR amount: a JSON number or decimal text, positive, at most two decimals."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        return None
    return amount


class KwikFake(FakeProvider):
    name = "kwik"

    @classmethod
    def for_demo(cls, setup: DemoSetup) -> KwikFake:
        token = setup.key()
        fake = cls(api_key=setup.key(), api_secret=setup.key(),
                   webhook_url=f"{setup.callback_url}?token={token}")
        fake.demo_token = token
        return fake

    def demo_settings(self) -> dict[str, str]:
        return {"base_url": self.api_url, "api_key": self.api_key, "api_secret": self.api_secret,
                "payment_methods_id": "pam_debit_order", "webhook_secret": self.demo_token,
                "batch_window_s": "0.2"}

    def demo_guide(self) -> list[str]:
        return [f"kwik       {self.base_url}  CreatePayment provider=kwik ZAR method=DEBIT_ORDER",
                "           bank account 10004301100 (branch 051001) and",
                "           provider_fields action_date=YYYY-MM-DD: the bank pays it in steps"]

    def demo_step(self) -> None:
        self.advance()  # the banks move debit orders along: Sent to Bank, then Paid

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
        self.demo_token = ""  # the webhook URL's token, when the sandbox built this fake
        self.payments: dict[str, dict[str, Any]] = {}       # submitted, by our reference
        self.transactions: dict[str, dict[str, Any]] = {}   # collected, by our reference
        self.outcomes: dict[str, str] = {}
        self.batches: list[dict[str, Any]] = []             # accepted submit bodies
        self.rate_limited = 0
        self.unauthorized = 0
        self._window: deque[float] = deque()

    @property
    def api_url(self) -> str:
        return self.base_url + PREFIX + "/"

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post(PREFIX + "/payments/submit", self._submit),
            web.get(PREFIX + "/payments/record/{reference}", self._payment_record),
            web.get(PREFIX + "/transactions", self._transactions),
            web.get(PREFIX + "/transactions/record/{reference}", self._transaction_record),
            web.get(PREFIX + "/lookups/transaction_status", self._lookups),
            web.post("/_kwik/config", self._config),
            web.post("/_kwik/advance", self._advance_http),
            web.get("/_kwik/state", self._state),
        ]

    def _admit(self, request: web.Request) -> web.Response | None:
        """100 requests in any second, then Basic base64(api_key:api_secret)."""
        now = time.monotonic()
        while self._window and now - self._window[0] >= 1.0:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            self.rate_limited += 1
            return refused("Too many requests", 429)
        self._window.append(now)
        wanted = "Basic " + base64.b64encode(
            (self.api_key + ":" + self.api_secret).encode()).decode()
        if not hmac.compare_digest(request.headers.get("Authorization", "").encode(),
                                   wanted.encode()):
            self.unauthorized += 1
            return refused("Unauthorized", 401)
        return None

    @staticmethod
    def _new_id(prefix: str) -> str:
        """Like the document's ids (cus_lpzgQpM56pm-FC01L4qSb): unique across fakes too."""
        return f"{prefix}_{secrets.token_urlsafe(16)[:21]}"

    # --- POST /payments/submit ---------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.Response:
        if (denied := self._admit(request)) is not None:
            return denied
        try:
            body = json.loads(await request.read(), parse_float=Decimal)
        except ValueError:
            return refused("The body must be JSON")
        if not isinstance(body, dict) or set(body) != {"batch_reference", "payments"}:
            return refused("The body holds batch_reference and payments only")
        batch = body["batch_reference"]
        items = body["payments"]
        if not isinstance(batch, str) or not 0 < len(batch) <= 256:
            return refused("batch_reference is required")
        if not isinstance(items, list) or not items:
            return refused("payments must be a non-empty list")
        self.batches.append(body)
        taken: set[str] = set()
        return answer({"status": True, "batch_reference": batch,
                       "payments": [self._take(item, batch, taken) for item in items]})

    def _take(self, item: Any, batch: str, taken: set[str]) -> dict[str, Any]:
        problem = self._item_problem(item, taken)
        if problem:
            reference = item.get("transaction_reference") if isinstance(item, dict) else None
            return {"status": False, "transaction_reference": reference, "message": problem}
        reference = str(item["transaction_reference"])
        taken.add(reference)
        account = item["bank_account"]["bank_account_number"] if "bank_account" in item else ""
        self.outcomes[reference] = STAGING.get(account, "pending")
        payment = {
            "id": self._new_id("pay"), "created_at": kwik_time(),
            "transaction_reference": reference, "batch_reference": batch,
            "payment_methods_id": item["payment_methods_id"],
            "amount": _decimal(item["amount"]), "action_date": item["action_date"],
            "customers_id": item.get("customer_id") or self._new_id("cus"),
            "bank_accounts_id": item.get("bank_account_id") or self._new_id("ban"),
        }
        self.payments[reference] = payment
        return {"status": True, **payment}

    def _item_problem(self, item: Any, taken: set[str]) -> str:
        if not isinstance(item, dict):
            return "each payment is an object"
        reference = item.get("transaction_reference")
        if not isinstance(reference, str) or not 0 < len(reference) <= 128:
            return "transaction_reference is required (String(128))"
        if reference in self.payments or reference in taken:
            return "transaction_reference already used"
        if item.get("payment_methods_id") not in self.payment_methods:
            return "payment_methods_id is not one of this account's payment methods"
        if _decimal(item.get("amount")) is None:
            return "amount must be a positive ZAR amount with at most 2 decimals"
        day = item.get("action_date")
        if not isinstance(day, str) or not _DAY.match(day):
            return "action_date must be YYYY-MM-DD"
        if ("customer" in item) == ("customer_id" in item):
            return "exactly one of customer and customer_id"
        if ("bank_account" in item) == ("bank_account_id" in item):
            return "exactly one of bank_account and bank_account_id"
        bank = item.get("bank_account")
        if bank is not None and not (
                isinstance(bank, dict) and _DIGITS.match(str(bank.get("bank_account_number")))
                and _DIGITS.match(str(bank.get("bank_branch_code")))):
            return "bank_account needs bank_account_number and bank_branch_code digits"
        return ""

    async def _payment_record(self, request: web.Request) -> web.Response:
        if (denied := self._admit(request)) is not None:
            return denied
        payment = self.payments.get(request.match_info["reference"])
        if payment is None:
            return refused("Payment not found", 404)
        return answer({"status": True, "payment": payment})

    # --- transactions ------------------------------------------------------------------

    async def _transaction_record(self, request: web.Request) -> web.Response:
        if (denied := self._admit(request)) is not None:
            return denied
        record = self.transactions.get(request.match_info["reference"])
        if record is None:
            return refused("Transaction not found", 404)
        return answer({"status": True, "transaction": _copy(record)})

    async def _transactions(self, request: web.Request) -> web.Response:
        if (denied := self._admit(request)) is not None:
            return denied
        query = request.query
        unknown = sorted(set(query) - set(FILTERS))
        if unknown:
            return refused(f"Unknown query parameter {unknown[0]}")
        for key in DATE_FILTERS:
            if key in query and not _DAY.match(query[key]):
                return refused(f"{key} must be YYYY-MM-DD")
        rows = [_copy(r) for r in self.transactions.values() if _matches(r, query)]
        return answer({"status": True, "transactions": rows})

    async def _lookups(self, request: web.Request) -> web.Response:
        if (denied := self._admit(request)) is not None:
            return denied
        return answer({"status": True, "lookups": [
            {"id": i, "title": n, "type": "transaction_status"} for n, i in LOOKUP_ID.items()]})

    # --- the bank's side, and webhooks -------------------------------------------------

    def advance(self, references: Iterable[str] | None = None, *,
                webhook: bool = True) -> list[dict[str, Any]]:
        """One bank step for each chosen payment; one webhook with every changed record."""
        changed: list[dict[str, Any]] = []
        chosen = list(self.payments) if references is None else list(references)
        for reference in chosen:
            path = PATHS[self.outcomes[reference]]
            record = self.transactions.get(reference)
            done = 0 if record is None else path.index(self._name(record)) + 1
            if done >= len(path):
                continue
            if record is None:
                record = self._collect(reference)
            self.set_status(reference, path[done])
            changed.append(_copy(record))
        if changed and webhook and self.webhook_url:
            self.webhook(changed)
        return changed

    def run(self, references: Iterable[str] | None = None, *,
            webhook: bool = True) -> list[list[dict[str, Any]]]:
        chosen = None if references is None else list(references)
        steps: list[list[dict[str, Any]]] = []
        while moved := self.advance(chosen, webhook=webhook):
            steps.append(moved)
        return steps

    def _collect(self, reference: str) -> dict[str, Any]:
        """The collection run: the transaction appears, with the payment's snapshot."""
        payment = self.payments[reference]
        now = kwik_time()
        record: dict[str, Any] = {
            "id": self._new_id("tra"), "created_at": now, "updated_at": None,
            "charged_at": now, "status_changed_at": now,
            "payment_methods_id": payment["payment_methods_id"], "payments_id": payment["id"],
            "customers_id": payment["customers_id"],
            "bank_accounts_id": payment["bank_accounts_id"], "mandates_id": None,
            "transaction_reference": reference,
            "payment_reference": "KWK" + payment["id"][-12:],
            "submission_batch_reference": payment["batch_reference"],
            "transaction_status_lookups_id": LOOKUP_ID["Pending"],
            "amount": payment["amount"], "payment_data": dict(payment),
            "unpaid_reason": None, "submission_data": [],
        }
        self.transactions[reference] = record
        return record

    def set_status(self, reference: str, name: str) -> None:
        record = self.transactions[reference]
        now = kwik_time()
        record["transaction_status_lookups_id"] = LOOKUP_ID[name]
        record["status_changed_at"] = record["updated_at"] = now
        if name in UNPAID_REASONS:
            record["unpaid_reason"] = UNPAID_REASONS[name]
        # The EFT shape of submission_data from the document's table.
        record["submission_data"].append({"date": now, "code": "000000", "message": name.upper()})

    @staticmethod
    def _name(record: Mapping[str, Any]) -> str:
        wanted = record["transaction_status_lookups_id"]
        return next(n for n, i in LOOKUP_ID.items() if i == wanted)

    def webhook_body(self, records: Sequence[Any]) -> bytes:
        """The document's webhook body: the records as an array under `transactions`."""
        return dump({"transactions": list(records)})

    def webhook(self, records: Sequence[Any], *, attempts: int = 3) -> Any:
        """Send one webhook (a background task resolving to its deliveries)."""
        if not self.webhook_url:
            raise RuntimeError("KwikFake.webhook_url is not set")
        return self.send_callbacks([Callback(self.webhook_url, self.webhook_body(records))],
                                   attempts=attempts)

    def forge(self, callback: Callback) -> Callback:
        parts = urlsplit(callback.url)
        query = [(k, "forged" if k == self.secret_param else v) for k, v in parse_qsl(parts.query)]
        return Callback(urlunsplit(parts._replace(query=urlencode(query))), callback.body,
                        dict(callback.headers))

    async def _config(self, request: web.Request) -> web.Response:
        data = json.loads(await request.read() or b"{}")
        self.webhook_url = str(data.get("webhook_url", self.webhook_url))
        return await self._state(request)

    async def _advance_http(self, request: web.Request) -> web.Response:
        raw = await request.read()
        data = json.loads(raw) if raw.strip() else {}
        references = data.get("references")
        moved = self.run(references) if data.get("until_settled") else [self.advance(references)]
        return answer({"steps": [[r["transaction_reference"] for r in step] for step in moved]})

    async def _state(self, _request: web.Request) -> web.Response:
        return answer({
            "webhook_url": self.webhook_url, "rate_limited": self.rate_limited,
            "unauthorized": self.unauthorized, "batches": len(self.batches),
            "payments": sorted(self.payments),
            "transactions": {r: self._name(t) for r, t in self.transactions.items()},
        })


def _matches(record: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    """The documented filters; dates compare as YYYY-MM-DD text, in Kwik's own time."""
    charged = str(record["charged_at"] or "")[:10]
    changed = str(record["status_changed_at"] or "")[:10]
    same = ("transaction_status_lookups_id", "payment_methods_id")
    if any(key in query and record[key] != query[key] for key in same):
        return False
    bounds = (("charged_at_start_date", charged, 1), ("charged_end_date", charged, -1),
              ("status_changed_at_start_date", changed, 1),
              ("status_changed_at_end_date", changed, -1))
    for key, day, side in bounds:
        if key in query and not (day and (day >= query[key] if side > 0 else day <= query[key])):
            return False
    return True


def _copy(record: Mapping[str, Any]) -> dict[str, Any]:
    return {**record, "submission_data": [dict(s) for s in record["submission_data"]]}
