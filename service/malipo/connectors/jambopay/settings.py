"""The account settings the JamboPay connector reads, parsed once, with documented defaults.

Credentials come from the account's `settings` mapping (config or files), never from code.
jambopay-transaction-status.txt gives the status call (path, `transactionid`, the app key
header and a bearer token, not their names); NOTES.md section 4 adds the presentment and
commit. Every choice they leave open is marked "assumed" and is a setting, so the README's
provider-assumptions table can name it and an operator can follow the live API.

  base_url                required (JamboPay's services root)
  username, password, app_key   required; the agency credentials and the app key
  token_url               "{base_url}/token" (assumed: the documents name no token endpoint)
  grant_type              "agency" (assumed: the token request's grant_type)
  app_key_header          "app_key" (assumed: the document says "the app key in the header")
  kplc_stream             "kplc" (NOTES.md: Stream=kplc)
  airtime_stream          "credit" (assumed: NOTES.md says only "Airtime is another stream")
  timeout_s               "30"
  token_ttl_s             "3600" (assumed, used when the token answer gives no expires_in)
  token_refresh_margin_s  "60"
  presentment_ttl_s       "0" (assumed: a presentment's lifetime is not documented; 0 shows
                          no expires_at)
  callback_allowed_ips    "" (comma-separated, CIDR allowed; the callback is unsigned)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from malipo.app.connector import ProviderAccount
from malipo.connectors.settings import SettingsReader


@dataclass(frozen=True, slots=True)
class JambopaySettings:
    """What the connector reads from ProviderAccount.settings, parsed once."""

    base_url: str
    token_url: str
    username: str
    password: str = field(repr=False)
    app_key: str = field(repr=False)
    grant_type: str = "agency"
    app_key_header: str = "app_key"
    kplc_stream: str = "kplc"
    airtime_stream: str = "credit"
    timeout_s: float = 30.0
    token_ttl_s: float = 3600.0
    token_refresh_margin_s: float = 60.0
    presentment_ttl_s: float = 0.0
    callback_allowed_ips: tuple[str, ...] = ()

    @classmethod
    def from_account(cls, account: ProviderAccount) -> JambopaySettings:
        s = SettingsReader(account)
        base = s.text("base_url").rstrip("/")
        return cls(
            base_url=base,
            token_url=s.text("token_url", base + "/token"),
            username=s.text("username"),
            password=s.secret("password"),
            app_key=s.secret("app_key"),
            grant_type=s.text("grant_type", "agency"),
            app_key_header=s.text("app_key_header", "app_key"),
            kplc_stream=s.text("kplc_stream", "kplc"),
            airtime_stream=s.text("airtime_stream", "credit"),
            timeout_s=s.number("timeout_s", 30.0),
            token_ttl_s=s.number("token_ttl_s", 3600.0),
            token_refresh_margin_s=s.number("token_refresh_margin_s", 60.0),
            presentment_ttl_s=s.number("presentment_ttl_s", 0.0),
            callback_allowed_ips=_networks(s, "callback_allowed_ips"),
        )


def _networks(s: SettingsReader, key: str) -> tuple[str, ...]:
    """Addresses or CIDR networks, each checked now: a typo would otherwise surface as an
    error on the first callback, long after start-up."""
    entries = s.items(key)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise s.refuse(key, f"IP addresses or CIDR networks, not {entry[:40]!r}") from None
    return entries
