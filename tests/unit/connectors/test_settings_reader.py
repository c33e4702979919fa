"""The one settings reader every connector uses: each accepted spelling, each error."""

from __future__ import annotations

import math

import pytest

from malipo.app.connector import ProviderAccount
from malipo.connectors.registry import build
from malipo.connectors.settings import (
    FALSE_SPELLINGS,
    TRUE_SPELLINGS,
    BadSetting,
    SettingsReader,
)
from malipo.domain.errors import InvalidRequest


def reader(**values: str) -> SettingsReader:
    return SettingsReader(ProviderAccount("kwik", "main", values))


def refused(call: object) -> BadSetting:
    assert callable(call)
    with pytest.raises(BadSetting) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("word", [*TRUE_SPELLINGS, "TRUE", "True", " yes ", "On"])
def test_true_spellings(word: str) -> None:
    assert reader(f=word).flag("f", default=False) is True


@pytest.mark.parametrize("word", [*FALSE_SPELLINGS, "FALSE", "False", " no ", "Off"])
def test_false_spellings(word: str) -> None:
    assert reader(f=word).flag("f", default=True) is False


def test_the_spellings_are_the_usual_eight() -> None:
    assert set(TRUE_SPELLINGS) == {"true", "1", "yes", "on"}
    assert set(FALSE_SPELLINGS) == {"false", "0", "no", "off"}


@pytest.mark.parametrize("default", [True, False])
def test_an_absent_flag_is_its_default(default: bool) -> None:
    assert reader().flag("f", default=default) is default


@pytest.mark.parametrize("word", ["ture", "", "2", "y", "enabled"])
def test_a_bad_flag_names_the_setting_and_the_account(word: str) -> None:
    error = refused(lambda: reader(send_country=word).flag("send_country", default=True))
    [violation] = error.violations
    assert violation.field == "settings.send_country"
    assert "provider account kwik/main" in violation.description
    assert "true or false" in violation.description
    assert repr(word) in violation.description
    assert error.reason == "BAD_PROVIDER_SETTINGS"
    assert isinstance(error, InvalidRequest)


def test_integers() -> None:
    assert reader(n="100").integer("n", 5) == 100
    assert reader(n=" 7 ").integer("n", 5) == 7
    assert reader().integer("n", 5) == 5


@pytest.mark.parametrize("raw", ["2.0", "", "ten", "1e3"])
def test_a_bad_integer(raw: str) -> None:
    violation = refused(lambda: reader(batch_max_size=raw).integer("batch_max_size", 100)
                        ).violations[0]
    assert violation.field == "settings.batch_max_size"
    assert violation.description.startswith("a whole number, not ")
    assert "provider account kwik/main" in violation.description


def test_numbers() -> None:
    assert reader(t="2.5").number("t", 30.0) == 2.5
    assert reader(t=" 5 ").number("t", 30.0) == 5.0
    assert reader().number("t", 30.0) == 30.0


@pytest.mark.parametrize("raw", ["", "thirty", "nan", "inf", "-inf", "1,5"])
def test_a_bad_number(raw: str) -> None:
    violation = refused(lambda: reader(timeout_s=raw).number("timeout_s", 30.0)).violations[0]
    assert violation.field == "settings.timeout_s"
    assert violation.description.startswith("a number, not ")
    assert math.isfinite(reader().number("timeout_s", 30.0))


def test_one_of_returns_the_listed_spelling() -> None:
    allowed = ("fail", "retry")
    assert reader(a="retry").one_of("a", "fail", allowed) == "retry"
    assert reader(a=" RETRY ").one_of("a", "fail", allowed) == "retry"
    assert reader().one_of("a", "fail", allowed) == "fail"


def test_a_bad_choice_lists_the_choices() -> None:
    violation = refused(lambda: reader(failed_attempt="maybe").one_of(
        "failed_attempt", "fail", ("fail", "retry"))).violations[0]
    assert violation.field == "settings.failed_attempt"
    assert violation.description.startswith("one of fail, retry, not 'maybe'")


def test_a_long_bad_value_is_cut() -> None:
    violation = refused(lambda: reader(f="x" * 500).flag("f", default=True)).violations[0]
    assert "x" * 41 not in violation.description


def test_text_and_secrets_are_read_as_written() -> None:
    r = reader(base_url=" https://x/ ", api_secret=" s3cret\n")
    assert r.text("base_url") == " https://x/ "
    assert r.secret("api_secret") == " s3cret\n"
    assert r.text("missing", "") == ""
    assert r.secret("missing", "d") == "d"


@pytest.mark.parametrize("read", [SettingsReader.text, SettingsReader.secret])
def test_a_missing_required_setting_names_it_and_the_account(read: object) -> None:
    assert callable(read)
    with pytest.raises(KeyError, match=r"kwik/main needs setting 'api_secret'"):
        read(reader(), "api_secret")


def test_items() -> None:
    assert reader(ips=" 10.0.0.5, ,10.0.0.6,").items("ips") == ("10.0.0.5", "10.0.0.6")
    assert reader().items("ips") == ()
    assert reader().items("codes", "SUCCESS") == ("SUCCESS",)


def test_secrets_keeps_the_configured_ones_in_order() -> None:
    r = reader(webhook_secret="new", webhook_secret_previous="old")
    assert r.secrets("webhook_secret", "webhook_secret_previous") == ("new", "old")
    assert reader(webhook_secret_previous="old").secrets(
        "webhook_secret", "webhook_secret_previous") == ("old",)
    assert reader(webhook_secret="").secrets("webhook_secret") == ()


def test_a_connectors_own_check_gets_the_same_error() -> None:
    error = reader().refuse("payment_record_path", "must contain {reference}")
    assert isinstance(error, BadSetting)
    assert error.violations[0].field == "settings.payment_record_path"
    assert str(error) == ("settings.payment_record_path: must contain {reference} "
                          "(provider account kwik/main)")


SECRET = "sk_live_do_not_print"


@pytest.mark.parametrize("provider", ["gateway", "kkiapay", "jambopay", "kwik", "paykassma",
                                      "simulator"])
def test_no_connector_error_or_settings_repr_shows_a_secret(provider: str) -> None:
    """Every connector's settings hold credentials with repr=False; a bad value elsewhere
    names the setting, never a credential."""
    credentials = dict.fromkeys((
        "secret_key", "previous_secret_key", "private_key", "webhook_secret",
        "webhook_secret_previous", "password", "app_key", "api_secret", "pluginapi_secret",
        "withdrawal_private_key", "postback_access_key", "postback_private_key",
        "postback_private_key_previous", "callback_secret", "previous_callback_secrets"), SECRET)
    account = ProviderAccount(provider, "main", {
        **credentials, "base_url": "https://x", "public_id": "p", "merchant_id": "m",
        "public_key": "pk", "username": "u", "api_key": "k"})
    assert SECRET not in repr(build(account).settings)  # pyright: ignore[reportAttributeAccessIssue]
    with pytest.raises(BadSetting) as caught:
        build(ProviderAccount(provider, "main", {**account.settings, "timeout_s": "soon",
                                                 "settle_after_s": "soon"}))
    assert SECRET not in str(caught.value)
