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

from dataclasses import dataclass

from malipo.app.connector import ProviderAccount
from malipo.domain.errors import FieldViolation, InvalidRequest

LIVE_BASE_URL = "https://api.kkiapay.me"
SANDBOX_BASE_URL = "https://api-sandbox.kkiapay.me"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FAILED_ATTEMPT = frozenset({"fail", "retry"})


def _flag(value: str) -> bool:
    return value.strip().lower() in _TRUE


@dataclass(frozen=True, slots=True)
class KkiapaySettings:
    public_key: str
    private_key: str
    secret_key: str
    base_url: str
    sandbox: bool
    webhook_secrets: tuple[str, ...]
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
        s = account.settings
        sandbox = _flag(s.get("sandbox", "false"))
        secrets = tuple(v for v in (s.get("webhook_secret", ""),
                                    s.get("webhook_secret_previous", "")) if v)
        out = cls(
            public_key=account.setting("public_key"),
            private_key=account.setting("private_key"),
            secret_key=account.setting("secret_key"),
            base_url=s.get("base_url", SANDBOX_BASE_URL if sandbox else LIVE_BASE_URL).rstrip("/"),
            sandbox=sandbox,
            webhook_secrets=secrets,
            currency=s.get("currency", "XOF"),
            status_path=s.get("status_path", "/api/v1/transactions/status"),
            revert_path=s.get("revert_path", "/api/v1/transactions/revert"),
            timeout_s=float(s.get("timeout_s", "30")),
            failed_attempt=s.get("failed_attempt", "fail").strip().lower(),
            revert_success_codes=frozenset(
                c.strip().upper() for c in s.get("revert_success_codes", "SUCCESS").split(",")
                if c.strip()
            ),
            reverted_status=s.get("reverted_status", "REVERTED").strip().upper(),
            widget_callback_url=s.get("widget_callback_url", ""),
        )
        out._check()
        return out

    def _check(self) -> None:
        bad: list[FieldViolation] = []
        if self.failed_attempt not in _FAILED_ATTEMPT:
            bad.append(FieldViolation("settings.failed_attempt", "one of fail, retry"))
        if bad:
            raise InvalidRequest(bad, reason="BAD_PROVIDER_SETTINGS")
