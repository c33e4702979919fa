"""The account settings the Kwik connector reads, parsed once, with documented defaults.

Documented (kwik-transactions.txt, NOTES.md section 5): base https://api.kwik.co.za/1.0/,
Basic auth api_key:api_secret, 100 requests per second. Everything else below is our
choice where the documents are silent, so an operator can follow Kwik if it differs:

  api_key, api_secret     required (Basic auth)
  base_url                https://api.kwik.co.za/1.0/
  payment_methods_id      "" (or provider_fields.payment_methods_id per payment)
  batch_reference_prefix  "MLP" (POST /payments/submit `batch_reference` = prefix + a ULID)
  batch_window_s / batch_max_size   2.0 / 100 (payments gathered into one submission)
  rate_limit_per_s / rate_limit_window_s   100 / 1.0 (per account)
  timeout_s               30
  payment_record_path     payments/record/{reference}: finds a submission by our reference
                          before its collection run has made a transaction
  status_lookups_path     lookups/transaction_status: lookup id -> status name
  status_lookups          "" (a JSON object id -> name, pinning names)
  lookups_refresh_s       60 (at most one lookups refresh per this many seconds)
  webhook_secret          "" (none: each webhook only triggers a status poll)
  webhook_secret_param / webhook_secret_header   token / x-kwik-webhook-secret
  webhook_allowed_ips     "" (comma-separated; empty: any source)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from malipo.app.connector import ProviderAccount
from malipo.connectors.settings import SettingsReader

DEFAULT_BASE_URL = "https://api.kwik.co.za/1.0/"


@dataclass(frozen=True, slots=True)
class KwikSettings:
    api_key: str
    api_secret: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    payment_methods_id: str = ""
    batch_reference_prefix: str = "MLP"
    batch_window_s: float = 2.0
    batch_max_size: int = 100
    rate_limit_per_s: int = 100
    rate_limit_window_s: float = 1.0
    timeout_s: float = 30.0
    payment_record_path: str = "payments/record/{reference}"
    status_lookups_path: str = "lookups/transaction_status"
    status_lookups: tuple[tuple[str, str], ...] = ()
    lookups_refresh_s: float = 60.0
    webhook_secret: str = field(default="", repr=False)
    webhook_secret_param: str = "token"  # noqa: S105 - a parameter name, not a secret
    webhook_secret_header: str = "x-kwik-webhook-secret"  # noqa: S105 - a header name
    webhook_allowed_ips: frozenset[str] = frozenset()

    @classmethod
    def from_account(cls, account: ProviderAccount) -> KwikSettings:
        s = SettingsReader(account)
        out = cls(
            api_key=s.text("api_key"),
            api_secret=s.secret("api_secret"),
            base_url=s.text("base_url", DEFAULT_BASE_URL),
            payment_methods_id=s.text("payment_methods_id", ""),
            batch_reference_prefix=s.text("batch_reference_prefix", "MLP"),
            batch_window_s=s.number("batch_window_s", 2.0),
            batch_max_size=s.integer("batch_max_size", 100),
            rate_limit_per_s=s.integer("rate_limit_per_s", 100),
            rate_limit_window_s=s.number("rate_limit_window_s", 1.0),
            timeout_s=s.number("timeout_s", 30.0),
            payment_record_path=s.text("payment_record_path", "payments/record/{reference}"),
            status_lookups_path=s.text("status_lookups_path", "lookups/transaction_status"),
            status_lookups=_pinned(s),
            lookups_refresh_s=s.number("lookups_refresh_s", 60.0),
            webhook_secret=s.secret("webhook_secret", ""),
            webhook_secret_param=s.text("webhook_secret_param", "token"),
            webhook_secret_header=s.text("webhook_secret_header", "x-kwik-webhook-secret"),
            webhook_allowed_ips=frozenset(s.items("webhook_allowed_ips")),
        )
        if "{reference}" not in out.payment_record_path:
            raise s.refuse("payment_record_path", "must contain {reference}")
        return out


def _pinned(s: SettingsReader) -> tuple[tuple[str, str], ...]:
    """The `status_lookups` setting: a JSON object of lookup id -> status name."""
    text = s.text("status_lookups", "")
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise s.refuse("status_lookups", "a JSON object of lookup id -> name")
    return tuple((str(k), str(v)) for k, v in data.items())  # type: ignore[misc]
