"""JamboPay's callback_allowed_ips are checked when the account is read, not on the first
callback (the callback itself is unsigned: the source address is all there is to check)."""

from __future__ import annotations

import pytest

from malipo.app.connector import ProviderAccount
from malipo.connectors.jambopay.settings import JambopaySettings
from malipo.connectors.settings import BadSetting

_REQUIRED = {"base_url": "https://jambopay.test", "username": "u", "password": "p",
             "app_key": "k"}


def _read(allowed: str) -> JambopaySettings:
    return JambopaySettings.from_account(ProviderAccount(
        "jambopay", "default", {**_REQUIRED, "callback_allowed_ips": allowed}))


def test_addresses_and_networks_are_kept_as_written() -> None:
    assert _read(" 10.0.0.1, 192.168.0.0/16 ,2001:db8::/32,").callback_allowed_ips == (
        "10.0.0.1", "192.168.0.0/16", "2001:db8::/32")


@pytest.mark.parametrize("bad", ["10.0.0.256", "192.168.0.0/33", "jambopay.co.ke"])
def test_a_bad_entry_is_refused_naming_the_setting(bad: str) -> None:
    with pytest.raises(BadSetting) as refused:
        _read(f"10.0.0.1,{bad}")
    assert "settings.callback_allowed_ips" in str(refused.value)
    assert bad in str(refused.value)
