"""JamboPay's own samples, copied verbatim, for the connector and the fake alike.

The status samples come from jambopay-transaction-status.txt; the document has no callback
or presentment sample, so those are the field lists of NOTES.md section "4. JamboPay utility
payments", quoted verbatim, with the smallest bodies they allow.
"""

from __future__ import annotations

# jambopay-transaction-status.txt, "Sample response for KPLC tokens", verbatim.
STATUS_KPLC = b"""{
    "TransactionId": "1042955",
    "UtilityName": "KPLC Tokens",
    "Status": "Completed",
    "Amount": 20.0000,
    "ReceiptNumber": "211104001042955",
    "TransactionDate": "2021-11-04 19:10",
    "PaidItem": {
        "Token": "11165751758259169338",
        "Units": 0.040000
    }
}"""

# jambopay-transaction-status.txt, "Sample response for airtime", verbatim.
STATUS_AIRTIME = b"""{
    "TransactionId": "5121",
    "UtilityName": "Airtime",
    "Status": "Checking",
    "Amount": 50.0000,
    "ReceiptNumber": null,
    "TransactionDate": "2016-06-16 16:30",
    "PaidItem": {
        "DestinationPhoneNumber": "254703263713",
        "Denomination": 0,
        "Quantity": 1,
        "OperatorName": "ORANGE"
    }
}"""

# jambopay-transaction-status.txt, "Available statuses", verbatim (name, description).
STATUSES = {
    "Checking": "Transaction has been prepared awaiting completion",
    "Completed": "Transaction has been completed successfully",
    "Failed": "Transaction has failed",
    "Cancelled": "Transaction was cancelled",
}

# jambopay-transaction-status.txt: "Method: GET", the URL and its one parameter, verbatim.
STATUS_URL = "{{base_url}}/api/payments/gettransactionstatus?transactionid"
STATUS_PARAMETER = "transactionid"

# NOTES.md section 4, verbatim.
NOTES_PRESENTMENT = (
    '"presentment" `POST .../api/payments/POST` (Stream=kplc,\n'
    "  PhoneNumber, Amount, MeterNumber, optional CallbackUrl) returns a TransactionID and the\n"
    "  meter owner's names;"
)
NOTES_COMMIT = '"commit" `PUT .../api/payments/PUT` (Stream, TransactionID) completes it'
NOTES_CALLBACK = (
    "Callback (if CallbackUrl given): TransactionId, MeterNumber, PhoneNumber, Amount,\n"
    '  TransactionStatus, ThirdPartyRef, Action ("Token Vending" or "Agent Refunded").'
)

PRESENTMENT_FIELDS = ("Stream", "PhoneNumber", "Amount", "MeterNumber")
PRESENTMENT_OPTIONAL = ("CallbackUrl",)
COMMIT_FIELDS = ("Stream", "TransactionID")
CALLBACK_FIELDS = ("TransactionId", "MeterNumber", "PhoneNumber", "Amount", "TransactionStatus",
                   "ThirdPartyRef", "Action")
CALLBACK_ACTIONS = ("Token Vending", "Agent Refunded")


def callback(transaction_id: str = "1042955", *, status: str = "completed",
             action: str = "Token Vending", amount: str = "20.0000") -> bytes:
    """A callback with exactly NOTES.md's fields; the values are the KPLC sample's."""
    return (f'{{"TransactionId": "{transaction_id}", "MeterNumber": "14234567890", '
            f'"PhoneNumber": "254703263713", "Amount": {amount}, '
            f'"TransactionStatus": "{status}", "ThirdPartyRef": "TP{transaction_id}", '
            f'"Action": "{action}"}}').encode()
