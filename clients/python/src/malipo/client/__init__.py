"""Malipo's Python client: `MalipoClient` over the generated stubs in malipo.payments.v1."""

from malipo.client.channel import Tls, create_channel
from malipo.client.client import FINAL_STATUSES, MalipoClient, new_idempotency_key
from malipo.client.errors import ErrorDetails, error_details
from malipo.client.money import (
    EXPONENTS,
    InexactAmount,
    UnknownCurrency,
    decimal_of,
    money,
    to_decimal,
    to_minor,
)
from malipo.client.retry import NO_RETRY, RetryPolicy

__all__ = [
    "EXPONENTS", "FINAL_STATUSES", "NO_RETRY", "ErrorDetails", "InexactAmount", "MalipoClient",
    "RetryPolicy", "Tls", "UnknownCurrency", "create_channel", "decimal_of", "error_details",
    "money", "new_idempotency_key", "to_decimal", "to_minor",
]
