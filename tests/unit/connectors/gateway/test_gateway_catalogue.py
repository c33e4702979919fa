"""The catalogue carries every provider id of the document, and its rules bite."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from malipo.app.catalogue import Channel, Limits, check_payment
from malipo.connectors.gateway.connector import CATALOGUE
from malipo.domain.payments import Payment
from malipo.domain.status import Direction, Method

MakePayment = Callable[..., Payment]

DOCUMENT_IDS = {
    14, 9210, 9209, 802, 9062, 702, 803, 9063, 703, 9131, 2197, 2198, 2196, 2199, 9227,
    2303, 2333, 699, 805, 9196, 2430, 2304, 2334, 806, 9197, 2305, 2335, 804, 9198, 2306, 2336,
    9199, 2431, 2087, 2088, 2311, 706, 9122, 9143, 9231, 2312, 9230, 707, 9123, 5026, 2313,
    2314, 2315, 2354, 2398, 9203, 2355, 2401, 9205, 2356, 2399, 2400, 2353, 2361, 2351, 2352,
    2109, 2111, 2308, 2323, 2339, 2403, 2110, 2112, 2307, 2322, 2340, 2108, 2113, 2309, 2338,
    2404, 2107, 2114, 2310, 2337, 2402, 2405, 391, 392, 393, 394, 2357, 2358, 2359, 2360, 2105,
    808, 2106, 809, 2118, 2332, 2370, 2119, 2371, 2372, 701, 2391, 700, 9125, 2390, 2392, 2393,
    798, 705, 981, 704, 980, 9127, 982,
}
COUNTRIES = {"BJ", "BF", "CM", "CD", "GM", "CI", "MW", "NG", "EG", "SN", "ZA", "SL", "RW", "TZ",
             "TG", "UG", "ZM", "KE", "GH"}


def test_every_document_id_and_country_is_a_channel() -> None:
    catalogue = CATALOGUE
    assert {int(c.id) for c in catalogue.channels} == DOCUMENT_IDS
    assert {c.country for c in catalogue.channels} - {""} == COUNTRIES
    for channel in catalogue.channels:
        assert channel.currency in catalogue.currencies
        assert channel.limits, channel.id


def _channel(channel_id: str) -> Channel:
    channel = CATALOGUE.channel(channel_id)
    assert channel is not None, channel_id
    return channel


def _limits(channel_id: str, direction: Direction) -> Limits:
    limits = _channel(channel_id).limits_for(direction)
    assert limits is not None, (channel_id, direction)
    return limits


def test_data_points_from_the_document() -> None:
    assert _limits("2351", Direction.PAYOUT).daily_max_minor == 10_000_000
    assert _limits("2351", Direction.COLLECTION).required_fields == (
        "customer.phone_number", "customer.name", "customer.email")
    assert _channel("2351").extra["redirect_c2b"] is True
    assert _limits("2303", Direction.COLLECTION).multiple_of_minor == 5
    assert _limits("2303", Direction.PAYOUT).min_minor == 200
    phone = _channel("2303").phone
    assert phone is not None
    assert (phone.calling_code, phone.national_digits) == ("225", 10)
    assert set(_channel("2402").document_types) == {"intl_passport", "driving_license",
                                                    "national_id"}
    assert _channel("707").method is Method.BANK_CARD
    assert _channel("707").limits_for(Direction.PAYOUT) is None
    assert _channel("2198").extra["phone_render"] == "national"
    assert _limits("2390", Direction.PAYOUT).min_minor == 25000
    assert _limits("2358", Direction.COLLECTION).daily_max_minor == 200_000
    assert _limits("391", Direction.PAYOUT).min_minor == 200_000
    assert _limits("9227", Direction.COLLECTION).max_minor == 0  # "No Limit"
    assert _limits("2311", Direction.PAYOUT).required_fields == (
        "customer.bank_account.account_number", "customer.name", "customer.email",
        "customer.bank_account.bank_code")


@pytest.mark.parametrize(("kwargs", "field", "rule"), [
    ({"channel": "2303", "currency": "XOF", "amount": "150", "phone": "+2250701234567"},
     "amount.amount_minor", "rule min_amount"),
    ({"channel": "2303", "currency": "XOF", "amount": "1000005", "phone": "+2250701234567"},
     "amount.amount_minor", "rule max_amount"),
    ({"channel": "2303", "currency": "XOF", "amount": "1001", "phone": "+2250701234567"},
     "amount.amount_minor", "rule multiple_of"),
    ({"channel": "2303", "currency": "XOF", "amount": "1000", "phone": "+2250701234567",
      "direction": Direction.PAYOUT}, "customer.name", "rule required_field"),
    ({"channel": "2303", "currency": "XOF", "amount": "1000", "phone": "+22507012345"},
     "customer.phone_number", "rule phone_format"),
    ({"channel": "2402", "currency": "TZS", "amount": "5000", "phone": "+255712345678",
      "customer": {"document_type": "passport", "document_number": "1"}},
     "customer.document_type", "rule document_type"),
    ({"channel": "2313", "currency": "EGP", "amount": "500", "phone": "+201012345678",
      "customer": {"name": "A"}}, "provider_fields.return_url", "rule required_field"),
    ({"channel": "2405", "currency": "TZS", "amount": "8000", "phone": "",
      "direction": Direction.PAYOUT, "customer": {"name": "A"}, "bank": {"bic": "CORUTZTZ"}},
     "customer.bank_account.account_number", "rule required_field"),
    ({"channel": "707", "currency": "NGN", "amount": "500", "direction": Direction.PAYOUT},
     "channel", "rule direction"),
    ({"channel": "9999", "currency": "KES"}, "channel", "rule channel"),
    ({"channel": "2390", "currency": "UGX", "amount": "1000"}, "amount.currency", "rule currency"),
])
def test_each_kind_of_rule(make_payment: MakePayment, kwargs: dict[str, object], field: str,
                           rule: str) -> None:
    violations = check_payment(make_payment(**kwargs), CATALOGUE)
    assert any(v.field == field and v.description.startswith(rule) for v in violations), \
        violations


def test_a_valid_payment_breaks_no_rule(make_payment: MakePayment) -> None:
    payment = make_payment(channel="2303", currency="XOF", amount="1000",
                           phone="+2250701234567", direction=Direction.PAYOUT,
                           customer={"name": "Kouassi Yao"})
    assert check_payment(payment, CATALOGUE) == []
