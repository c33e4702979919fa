"""The account settings the KKiaPay connector reads, parsed once, with documented defaults.

Credentials come from the account's `settings` mapping (config or files), never from code.
NOTES.md section 3 gives the base URLs, the key headers and the two admin paths; every choice
it and kkiapay-transactions.txt leave open is marked "assumed" and is a setting, so the
README's provider-assumptions table can name it and an operator can follow the live API.

  public_key, private_key, secret_key   required; sent as X-API-KEY, X-PRIVATE-KEY, X-SECRET-KEY
  sandbox                 "false"; also picks the default base_url and the widget's flag
  base_url                https://api.kkiapay.me (sandbox: https://api-sandbox.kkiapay.me)
  webhook_secret          the dashboard's hash secret; no secret: every webhook is refused
  webhook_secret_previous also accepted while rotating
  currency                "XOF" (assumed: the status answer carries no currency)
  status_path / revert_path   /api/v1/transactions/status, /api/v1/transactions/revert
  timeout_s               "30"
  failed_attempt          "fail" (FAILED) | "retry" (stay ACTION_REQUIRED for a new attempt)
  revert_success_codes    "SUCCESS" (assumed: comma-separated revert `code`s meaning REVERSED)
  reverted_status         "REVERTED" (assumed: the status call's word for a reverted
                          transaction; the documents name only SUCCESS, FAILED, PENDING)
  widget_callback_url     "" (the widget's `callback` redirect, when set)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from malipo.app.connector import ProviderAccount
from malipo.connectors.settings import SettingsReader

LIVE_BASE_URL = "https://api.kkiapay.me"
SANDBOX_BASE_URL = "https://api-sandbox.kkiapay.me"

_FAILED_ATTEMPT = ("fail", "retry")


@dataclass(frozen=True, slots=True)
class KkiapaySettings:
    public_key: str
    private_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    base_url: str
    sandbox: bool
    webhook_secrets: tuple[str, ...] = field(repr=False)
    currency: str = "XOF"
    status_path: str = "/api/v1/transactions/status"
    revert_path: str = "/api/v1/transactions/revert"
    timeout_s: float = 30.0
    failed_attempt: str = "fail"
    revert_success_codes: frozenset[str] = frozenset({"SUCCESS"})
    reverted_status: str = "REVERTED"
    widget_callback_url: str = ""

    @classmethod
    def from_account(cls, account: ProviderAccount) -> KkiapaySettings:
        s = SettingsReader(account)
        sandbox = s.flag("sandbox", False)
        return cls(
            public_key=s.text("public_key"),
            private_key=s.secret("private_key"),
            secret_key=s.secret("secret_key"),
            base_url=s.text("base_url", SANDBOX_BASE_URL if sandbox else LIVE_BASE_URL
                            ).rstrip("/"),
            sandbox=sandbox,
            webhook_secrets=s.secrets("webhook_secret", "webhook_secret_previous"),
            currency=s.text("currency", "XOF"),
            status_path=s.text("status_path", "/api/v1/transactions/status"),
            revert_path=s.text("revert_path", "/api/v1/transactions/revert"),
            timeout_s=s.number("timeout_s", 30.0),
            failed_attempt=s.one_of("failed_attempt", "fail", _FAILED_ATTEMPT),
            revert_success_codes=frozenset(
                code.upper() for code in s.items("revert_success_codes", "SUCCESS")),
            reverted_status=s.text("reverted_status", "REVERTED").strip().upper(),
            widget_callback_url=s.text("widget_callback_url", ""),
        )
