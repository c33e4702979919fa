"""A gateway account's settings (ProviderAccount.settings), with the defaults we chose where
gateway-c2b-b2c-api.txt is silent.

  base_url             required, the brand's API root, e.g. https://api.brand.example
  public_id            required, the path parameter naming the merchant
  merchant_id          required, sent in every body
  secret_key           required, signs requests and verifies callbacks
  previous_secret_key  optional, also accepted on callbacks while a key is rotated
  c2b_path             default /api/v1/{public_id}/payment_c2b (the document gives no paths;
                       NOTES.md section 1 suggests these)
  b2c_path             default /api/v1/{public_id}/payment_b2c
  status_path          default /api/v1/{public_id}/status
  timeout_s            default 30 (seconds per call, capped by the caller's deadline)
  send_country         default true (the document lists `country` without "required")
  redirect_lookup      default true: after a C2B on a redirect_c2b channel, ask status once
                       for extra.customer_redirect
"""

from __future__ import annotations

from dataclasses import dataclass, field

from malipo.app.connector import ProviderAccount
from malipo.connectors.settings import SettingsReader

C2B_PATH = "/api/v1/{public_id}/payment_c2b"
B2C_PATH = "/api/v1/{public_id}/payment_b2c"
STATUS_PATH = "/api/v1/{public_id}/status"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    base_url: str
    public_id: str
    merchant_id: str
    secret_key: str = field(repr=False)
    previous_secret_key: str = field(default="", repr=False)
    c2b_path: str = C2B_PATH
    b2c_path: str = B2C_PATH
    status_path: str = STATUS_PATH
    timeout_s: float = 30.0
    send_country: bool = True
    redirect_lookup: bool = True

    @classmethod
    def from_account(cls, account: ProviderAccount) -> GatewaySettings:
        s = SettingsReader(account)
        return cls(
            base_url=s.text("base_url").rstrip("/"),
            public_id=s.text("public_id"),
            merchant_id=s.text("merchant_id"),
            secret_key=s.secret("secret_key"),
            previous_secret_key=s.secret("previous_secret_key", ""),
            c2b_path=s.text("c2b_path", C2B_PATH),
            b2c_path=s.text("b2c_path", B2C_PATH),
            status_path=s.text("status_path", STATUS_PATH),
            timeout_s=s.number("timeout_s", 30.0),
            send_country=s.flag("send_country", True),
            redirect_lookup=s.flag("redirect_lookup", True),
        )

    def url(self, path: str) -> str:
        return self.base_url + path.format(public_id=self.public_id)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(k for k in (self.secret_key, self.previous_secret_key) if k)
