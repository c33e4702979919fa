"""The Kwik document's own sample bodies, copied verbatim (kwik-transactions.txt).

The samples elide parts with "{ ... }" and ", ..." (they are not JSON as printed);
`filled()` replaces exactly those elisions, with the examples the same document gives in
its field table, and nothing else, so every other byte is the document's.
"""

from __future__ import annotations

# kwik-transactions.txt, Transactions > List > Response Body
LIST_ANSWER = """{
  "status": true,
  "transactions": [{
    "id": "tra_abc123...",
    "created_at": "2024-12-28 22:14:47",
    "updated_at": null,
    "charged_at": "2024-02-03 08:14:35",
    "status_changed_at": "2024-02-04 16:45:23",
    "payment_methods_id": "pam_abc123...",
    "payments_id": "pay_abc123...",
    "customers_id": "cus_lpzgQpM56pm-FC01L4qSb",
    "bank_accounts_id": "ban_bV4BP2PcdJFgu9lVawE0_",
    "mandates_id": "man_GxHu2gBsBWnddf0-Sh5Cm",
    "transaction_reference": "INV0045",
    "payment_reference": "FAHE03053406",
    "submission_batch_reference": "ABBO61857139",
    "transaction_status_lookups_id": "loo_abc123...",
    "amount": 500.25,
    "payment_data": { ... },
    "unpaid_reason": null,
    "submission_data": [{ ... }]
  }, ...]
}"""

# kwik-transactions.txt, Transactions > Record > Response Body
RECORD_ANSWER = """{
  "status": true,
  "transaction": {
    "id": "tra_abc123...",
    "created_at": "2024-12-28 22:14:47",
    "updated_at": null,
    "charged_at": "2024-02-03 08:14:35",
    "status_changed_at": "2024-02-04 16:45:23",
    "payment_methods_id": "pam_abc123...",
    "payments_id": "pay_abc123...",
    "customers_id": "cus_lpzgQpM56pm-FC01L4qSb",
    "bank_accounts_id": "ban_bV4BP2PcdJFgu9lVawE0_",
    "mandates_id": "man_GxHu2gBsBWnddf0-Sh5Cm",
    "transaction_reference": "INV0045",
    "payment_reference": "FAHE03053406",
    "submission_batch_reference": "ABBO61857139",
    "transaction_status_lookups_id": "loo_abc123...",
    "amount": 500.25,
    "payment_data": { ... },
    "unpaid_reason": null,
    "submission_data": [{ ... }]
  }
}"""

# kwik-transactions.txt, Webhooks > Response Body
WEBHOOK_BODY = """{
  "transactions": [{
    "id": "tra_abc123...",
    "created_at": "2024-12-28 22:14:47",
    "updated_at": null,
    "charged_at": "2024-02-03 08:14:35",
    "status_changed_at": "2024-02-04 16:45:23",
    "payment_methods_id": "pam_abc123...",
    "payments_id": "pay_abc123...",
    "customers_id": "cus_lpzgQpM56pm-FC01L4qSb",
    "bank_accounts_id": "ban_bV4BP2PcdJFgu9lVawE0_",
    "mandates_id": "man_GxHu2gBsBWnddf0-Sh5Cm",
    "transaction_reference": "INV0045",
    "payment_reference": "FAHE03053406",
    "submission_batch_reference": "ABBO61857139",
    "transaction_status_lookups_id": "loo_abc123...",
    "amount": 500.25,
    "payment_data": { ... },
    "unpaid_reason": null,
    "submission_data": [{ ... }]
  }]
}"""
# kwik-transactions.txt, Transactions > List > Response Parameters, *.submission_data examples
SUBMISSION_DATA_DEBICHECK = ('[{"status": "PAID", "message": null, "bank_code": 0, '
                             '"timestamp": "2025-01-20T03:30:03.737Z"}]')
SUBMISSION_DATA_EFT = ('[{"date":"2025-04-07 07:35:02","code":"000080","message":'
                       '"** WARNING ONLY - ACCOUNT TYPE CHANGE - 0 TO 1 ***"}]')

# kwik-transactions.txt, Transactions > List > Query Parameters, the Example column
LIST_QUERY_EXAMPLES = {
    "transaction_status_lookups_id": "loo_abc123...",
    "charged_at_start_date": "2024-06-14",
    "charged_end_date": "2024-10-26",
    "status_changed_at_start_date": "2024-07-06",
    "status_changed_at_end_date": "2024-08-04",
    "payment_methods_id": "pam_abc123...",
}

# kwik-transactions.txt, Record > Path Parameters, the Example column
RECORD_REFERENCE = "INV0045"

def filled(sample: str, *, submission_data: str = SUBMISSION_DATA_EFT) -> str:
    """The sample with its elisions replaced (and only those): parseable JSON."""
    elisions = (
        ('"payment_data": { ... }', '"payment_data": {}'),
        ('"submission_data": [{ ... }]', '"submission_data": ' + submission_data),
        ("}, ...]", "}]"),
    )
    out = sample
    for elided, concrete in elisions:
        out = out.replace(elided, concrete)
    if "..." in out.replace("abc123...", ""):
        raise ValueError("an elision of the document was left unfilled")
    return out
