"""Request fingerprints: stored with every idempotency key, so their form must never drift."""

from dataclasses import asdict, replace

from malipo.app.commands import ChangePayment, ConfirmPayment, CreatePayment, fingerprint
from malipo.domain.payments import BankAccount, Customer, plain
from malipo.domain.status import Direction, Method


def _full_create() -> CreatePayment:
    return CreatePayment(
        tenant="acme", idempotency_key="k-1", direction=Direction.PAYOUT, provider="gateway",
        amount_minor=125_000, currency="XOF", account="benin", method=Method.MOBILE_MONEY,
        channel="mtn", country="BJ", customer=Customer(phone_number="+22990000001",
                                                       name="Ada", email="ada@example.com"),
        description="order 7", provider_fields={"b": "2", "a": "1"},
        metadata={"order": "7", "z": ""},
    )


def test_fingerprints_are_what_asdict_gave_so_stored_keys_still_match() -> None:
    commands = (_full_create(), CreatePayment("t", "k", Direction.COLLECTION, "sim", 1, "KES"),
                ConfirmPayment("t", "k", "pay_1", otp="1234"),
                ChangePayment("t", "k", "pay_1", reason="customer asked"))
    for command in commands:
        assert command.fingerprint() == fingerprint(asdict(command))


def test_the_key_itself_is_not_part_of_the_fingerprint_but_every_field_is() -> None:
    base = _full_create()
    assert replace(base, idempotency_key="k-2").fingerprint() == base.fingerprint()
    assert replace(base, metadata={"order": "8", "z": ""}).fingerprint() != base.fingerprint()
    assert replace(base, customer=Customer(phone_number="+22990000002", name="Ada",
                                           email="ada@example.com")).fingerprint() \
        != base.fingerprint()


def test_plain_is_asdict_without_the_copies() -> None:
    customer = Customer(phone_number="+254712345600", name="Wanjiru",
                        bank_account=BankAccount(account_number="0123456789", bank_code="01"))
    assert plain(customer) == asdict(customer)
    assert plain(_full_create()) == asdict(_full_create())


def test_the_canonical_form_is_the_one_stored_keys_were_made_with() -> None:
    """Pinned: the digest stored keys carry for this request, as json.dumps (sorted keys, no
    spaces, str() for enums) made it before the encoder was kept. Any faster encoder must give
    the same bytes."""
    assert _full_create().fingerprint() == (
        "11bd697eaf2c9516f005a06f3fd3c440d8a0e31bab7914231fada946c790d2a0")
