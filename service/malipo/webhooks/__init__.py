"""Signed outbound webhooks: per-tenant endpoints fed from the event log (see delivery.py)."""

from malipo.webhooks.delivery import DeliveryPolicy, WebhookDispatcher
from malipo.webhooks.signing import WebhookSigner, new_secret, parse_secret

__all__ = ["DeliveryPolicy", "WebhookDispatcher", "WebhookSigner", "new_secret", "parse_secret"]
