"""Kwik's account settings: every choice the documents leave open has its documented default."""

from __future__ import annotations

import pytest

from malipo.app.connector import ProviderAccount
from malipo.connectors.kwik.settings import KwikSettings
from malipo.domain.errors import InvalidRequest


def settings(**values: str) -> KwikSettings:
    return KwikSettings.from_account(
        ProviderAccount("kwik", "main", {"api_key": "k", "api_secret": "s", **values}))


def test_defaults_are_the_documented_ones() -> None:
    s = settings()
    assert s.base_url == "https://api.kwik.co.za/1.0/"
    assert (s.rate_limit_per_s, s.rate_limit_window_s) == (100, 1.0)
    assert s.payment_record_path == "payments/record/{reference}"
    assert s.status_lookups_path == "lookups/transaction_status"
    assert (s.webhook_secret, s.webhook_secret_param) == ("", "token")
    assert (s.batch_window_s, s.batch_max_size) == (2.0, 100)


def test_pinned_names_and_allow_list_are_read() -> None:
    s = settings(status_lookups='{"loo_1": "Paid"}', webhook_allowed_ips=" 10.0.0.5, ,10.0.0.6")
    assert dict(s.status_lookups) == {"loo_1": "Paid"}
    assert s.webhook_allowed_ips == frozenset({"10.0.0.5", "10.0.0.6"})


@pytest.mark.parametrize(("key", "value"), [("payment_record_path", "payments/record"),
                                            ("status_lookups", '["Paid"]')])
def test_unusable_settings_are_refused(key: str, value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        settings(**{key: value})
    assert caught.value.violations[0].field == f"settings.{key}"


def test_credentials_are_required() -> None:
    with pytest.raises(KeyError):
        KwikSettings.from_account(ProviderAccount("kwik", "main", {"api_key": "k"}))
