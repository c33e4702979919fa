"""What KKiaPay's documents say about the wire, copied as it stands, for the connector and fake.

kkiapay-transactions.txt (the provider document) shows no request, answer or webhook body:
its only facts are that a customer pays in the widget and a merchant-initiated transfer is
made from the dashboard. The wire facts are in NOTES.md section "3. KKiaPay", quoted verbatim
below; the bodies are the smallest ones those lines allow, with nothing they do not name.
"""

from __future__ import annotations

# NOTES.md, "3. KKiaPay", verbatim.
NOTES_ADMIN_API = (
    "base `https://api.kkiapay.me` (sandbox `https://api-sandbox.kkiapay.me`); headers\n"
    "  `X-API-KEY` (public), `X-PRIVATE-KEY`, `X-SECRET-KEY`.\n"
    '  `POST /api/v1/transactions/status {"transactionId"}` verifies a transaction (type, status\n'
    "  SUCCESS/FAILED/PENDING, source MOBILE_MONEY, performed_at, amount...);\n"
    '  `POST /api/v1/transactions/revert {"transactionId"}` refunds/cancels;\n'
    "  payouts are scheduled at `/merchant/payouts/schedule`."
)
NOTES_WEBHOOKS = (
    "Webhooks: a header `x-kkiapay-secret` carries the hash secret set on the dashboard;\n"
    "  any non-2xx answer is retried 5 times, 500 ms apart and growing."
)
# kkiapay-transactions.txt, "Transaction initiated by the merchant", verbatim.
DOCUMENT_MERCHANT_TRANSACTION = (
    "For one reason or another, you may be led as a merchant to initiate a transaction for a "
    "customer. In this case, you will use your KKiaPay dashboard."
)

LIVE_BASE_URL = "https://api.kkiapay.me"
SANDBOX_BASE_URL = "https://api-sandbox.kkiapay.me"
KEY_HEADERS = ("X-API-KEY", "X-PRIVATE-KEY", "X-SECRET-KEY")
STATUS_PATH = "/api/v1/transactions/status"
REVERT_PATH = "/api/v1/transactions/revert"
SECRET_HEADER = "x-kkiapay-secret"
STATUSES = ("SUCCESS", "FAILED", "PENDING")

# The status answer's documented fields, and nothing else (no `state`, no `transactionId`).
STATUS_ANSWER_FIELDS = ("type", "status", "source", "performed_at", "amount")


def status_request(transaction_id: str) -> dict[str, str]:
    """`{"transactionId"}`, the only body the status and revert calls are documented with."""
    return {"transactionId": transaction_id}


def status_answer(status: str = "SUCCESS", amount: int = 5000) -> dict[str, object]:
    """The documented fields only. `type` and `performed_at` values are not given: any text."""
    return {"type": "PAYMENT", "status": status, "source": "MOBILE_MONEY",
            "performed_at": "2026-01-01T10:00:00.000Z", "amount": amount}
