"""A Paykassma account's settings (ProviderAccount.settings), with the defaults we chose where
paykassma-mpesa.txt is silent.

  api_url                         "https://api.{server}": deposits and withdrawals
  plugin_url                      "https://plugin.{server}": the hosted payment window
  pluginapi_secret                the deposit's `secret` query parameter
  withdrawal_private_key          key of the withdrawal signature
  postback_access_key, postback_private_key   postback signature keys
  postback_private_key_previous   default "": also accepted while keys rotate
  withdrawal_signature_algorithm  default "sha1_private_md5_json": the document says only
                                  "Signature generated with private_key" (signing.py)
  postback_signed_form            default "additional_data": which JSON the postback md5
                                  covers; their pages differ ("body": the whole postback)
  is_test                         default false: the withdrawal `is_test` flag
  lang                            default "en": payment-window language
  payment_url_success_id / payment_url_fail_id / payment_url_pending_id   default "": pages
  unknown_postback_answer         default "retry"; "ok" (connector.callback_answer)
  timeout_s                       default 30 (seconds per call, capped by the deadline)

The credentials default to "" so that an account serving only part of the flows (postbacks
without the API, the window without withdrawals) still starts; a flow whose credential is
missing refuses with `require`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from malipo.app.connector import ProviderAccount
from malipo.connectors.paykassma.signing import SIGNED_FORMS, WITHDRAWAL_ALGORITHMS
from malipo.connectors.settings import SettingsReader

DEFAULT_WITHDRAWAL_ALGORITHM = "sha1_private_md5_json"
DEFAULT_SIGNED_FORM = "additional_data"
UNKNOWN_ANSWERS = ("retry", "ok")
PAGE_IDS = ("payment_url_success_id", "payment_url_fail_id", "payment_url_pending_id")


@dataclass(frozen=True, slots=True)
class PaykassmaSettings:
    account: str = ""
    api_url: str = ""
    plugin_url: str = ""
    pluginapi_secret: str = field(default="", repr=False)
    withdrawal_private_key: str = field(default="", repr=False)
    postback_access_key: str = field(default="", repr=False)
    postback_private_key: str = field(default="", repr=False)
    postback_private_key_previous: str = field(default="", repr=False)
    withdrawal_signature_algorithm: str = DEFAULT_WITHDRAWAL_ALGORITHM
    postback_signed_form: str = DEFAULT_SIGNED_FORM
    is_test: bool = False
    lang: str = "en"
    page_ids: Mapping[str, str] = field(default_factory=dict[str, str])
    unknown_postback_answer: str = "retry"
    timeout_s: float = 30.0

    @classmethod
    def from_account(cls, account: ProviderAccount) -> PaykassmaSettings:
        s = SettingsReader(account)
        return cls(
            account=account.name,
            api_url=s.text("api_url", "").rstrip("/"),
            plugin_url=s.text("plugin_url", ""),
            pluginapi_secret=s.secret("pluginapi_secret", ""),
            withdrawal_private_key=s.secret("withdrawal_private_key", ""),
            postback_access_key=s.secret("postback_access_key", ""),
            postback_private_key=s.secret("postback_private_key", ""),
            postback_private_key_previous=s.secret("postback_private_key_previous", ""),
            withdrawal_signature_algorithm=s.one_of(
                "withdrawal_signature_algorithm", DEFAULT_WITHDRAWAL_ALGORITHM,
                WITHDRAWAL_ALGORITHMS),
            postback_signed_form=s.one_of("postback_signed_form", DEFAULT_SIGNED_FORM,
                                          SIGNED_FORMS),
            is_test=s.flag("is_test", False),
            lang=s.text("lang", "en"),
            page_ids={key: value for key in PAGE_IDS if (value := s.text(key, ""))},
            unknown_postback_answer=s.one_of("unknown_postback_answer", "retry",
                                             UNKNOWN_ANSWERS),
            timeout_s=s.number("timeout_s", 30.0),
        )

    def require(self, name: str) -> str:
        """A credential a flow cannot go without: a clear error, before any call, when unset."""
        value = getattr(self, name)
        if not value:
            raise KeyError(f"provider account paykassma/{self.account} needs setting {name!r}")
        return value

    @property
    def postback_private_keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.postback_private_key,
                                 self.postback_private_key_previous) if k)
