"""Paykassma signing against fixed vectors computed outside Python (coreutils md5sum/sha1sum
and `openssl dgst -sha1 -hmac`), over JSON texts written out by hand."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from malipo.connectors import exact_json
from malipo.connectors.paykassma import settings, signing

ACCESS_KEY = "TA25Ea9sjPUFJvIG"
PRIVATE_KEY = "postback-private"

# The transaction list of a deposit postback, as PHP json_encode(UNESCAPED_SLASHES|UNICODE)
# writes it: "/" and "é" raw, nulls, integers, nested objects.
DEPOSIT_ADDITIONAL = (
    '[{"activated_datetime":"2023-09-27 01:00:52","exchanger_identifier":null,'
    '"comment":"paid via https://m-pesa.example/ké","amount":"3000","currency_code":"KES",'
    '"wallet_type":"mpesa","stockpiling_id":4822019,"transaction_id":"RIR7U1Y6OH",'
    '"transaction_type":0,"plugin_custom_order_id":"pay_01HDEP","withdrawal_id":null,'
    '"withdrawal_status":null,"account_number":"","account_name":"","account_email":"",'
    '"bank_details":{"bank_code":"","branch_code":""}}]'
)
DEPOSIT_HEAD = (
    '"wallet_type":"mpesa","amount":3000,"currency_code":"KES","label":"1507315922",'
    '"converted_amount":{"USD":20.34,"BTC":0.00077816,"BZD":41,"MRO":0},'
    '"direction":"ingoing","created_datetime":"2023-09-26 22:00:54",'
    '"access_key":"TA25Ea9sjPUFJvIG","additional_data":'
)
WITHDRAWAL_ADDITIONAL = (
    '[{"activated_datetime":"","exchanger_identifier":"","comment":"transaction_id=0",'
    '"amount":"15944","currency_code":"KES","wallet_type":"mpesa","stockpiling_id":null,'
    '"transaction_id":"","transaction_type":null,"plugin_custom_order_id":"",'
    '"withdrawal_id":"pay_01HWD","withdrawal_status":1,"account_number":"254790916213",'
    '"account_name":"","account_email":"","bank_details":{"bank_code":null,"branch_code":null}}]'
)
WITHDRAWAL_HEAD = (
    '"wallet_type":"mpesa","amount":15944,"currency_code":"KES","label":"2566752",'
    '"converted_amount":{"USD":110.57,"ETH":0.06574301,"VEF":0},"direction":"outgoing",'
    '"created_datetime":"2023-08-19 16:29:01","access_key":"TA25Ea9sjPUFJvIG",'
    '"additional_data":'
)
# md5sum of DEPOSIT_ADDITIONAL, then sha1sum of ACCESS_KEY . PRIVATE_KEY . md5, per form.
DEPOSIT_ADDITIONAL_MD5 = "3557de60fa54916865270a87b52a5916"
VECTORS = {
    ("deposit", "additional_data"): "bfd7d6b493fcb4500059bb0b5c002411fcb31fbf",
    ("deposit", "body"): "d114b24a156dba07d68a99450d56e690770fc778",
    ("withdrawal", "additional_data"): "25d126eadbf5aa22da016efe97c61d0771f9446a",
    ("withdrawal", "body"): "cd8dce6841ad312adc51701634015ddbc9e18ef5",
}
PARTS = {"deposit": (DEPOSIT_HEAD, DEPOSIT_ADDITIONAL),
         "withdrawal": (WITHDRAWAL_HEAD, WITHDRAWAL_ADDITIONAL)}


def received(kind: str, signature: str, *, pretty: bool = False) -> bytes:
    """The postback as delivered: signature first, then the signed fields."""
    head, additional = PARTS[kind]
    text = '{"signature":"' + signature + '",' + head + additional + "}"
    if pretty:  # formatting on the wire must not matter: the form is re-rendered
        text = text.replace('":', '": ').replace(',"', ',\n  "').replace("{", "{ ")
    return text.encode()


def test_canonical_json_reproduces_php_rendering_byte_for_byte() -> None:
    for text in (DEPOSIT_ADDITIONAL, WITHDRAWAL_ADDITIONAL, "{" + DEPOSIT_HEAD + "[]}"):
        assert signing.canonical_json(exact_json.loads(text)) == text


def test_canonical_json_escaping_rules() -> None:
    rendered = signing.canonical_json({"u": "a/b ké \u2028 \x1f \"q\" \\", "n": Decimal("0.10")})
    assert rendered == '{"u":"a/b ké \\u2028 \\u001f \\"q\\" \\\\","n":0.10}'
    with pytest.raises(TypeError):
        signing.canonical_json({"f": 0.1})


def test_md5_of_the_transaction_list() -> None:
    part = signing.signed_part(exact_json.loads(received("deposit", "x")), "additional_data")
    assert part == DEPOSIT_ADDITIONAL
    assert hashlib.md5(part.encode(), usedforsecurity=False).hexdigest() == DEPOSIT_ADDITIONAL_MD5


@pytest.mark.parametrize(("kind", "form"), sorted(VECTORS))
def test_postback_signature_vectors(kind: str, form: str) -> None:
    body = exact_json.loads(received(kind, "ignored"))
    part = signing.signed_part(body, form)
    assert signing.postback_signature(ACCESS_KEY, PRIVATE_KEY, part) == VECTORS[(kind, form)]


@pytest.mark.parametrize(("kind", "form"), sorted(VECTORS))
def test_postback_verifies_whatever_the_wire_formatting(kind: str, form: str) -> None:
    body = exact_json.loads(received(kind, VECTORS[(kind, form)], pretty=True))
    assert signing.postback_is_authentic(body, ACCESS_KEY, [PRIVATE_KEY], form)
    assert signing.postback_is_authentic(body, ACCESS_KEY, ["old-key", PRIVATE_KEY], form)
    assert not signing.postback_is_authentic(body, ACCESS_KEY, ["other-key"], form)
    other = "body" if form == "additional_data" else "additional_data"
    assert not signing.postback_is_authentic(body, ACCESS_KEY, [PRIVATE_KEY], other)


def test_tampered_postback_fails() -> None:
    sig = VECTORS[("deposit", "additional_data")]
    tampered = received("deposit", sig).replace(b'"amount":"3000"', b'"amount":"30000"')
    body = exact_json.loads(tampered)
    assert not signing.postback_is_authentic(body, ACCESS_KEY, [PRIVATE_KEY], "additional_data")
    unsigned = exact_json.loads(received("deposit", ""))
    assert not signing.postback_is_authentic(unsigned, ACCESS_KEY, [PRIVATE_KEY],
                                             "additional_data")


# The document's withdrawal example, without its signature, key "withdrawal-private".
WITHDRAWAL_REQUEST = (
    '{"withdrawal_id":"85858053","payment_system":"mpesa","amount":1000,"currency_code":"KES",'
    '"label":"160496026","comment":"withdrawal","account_number":"254724653314","is_test":true}'
)
WITHDRAWAL_VECTORS = {
    "sha1_private_md5_json": "fc798e3e69c8c455022bc298a31d2a99ad3ec070",
    "sha1_json_private": "7d890a50ef5a777d7978e678445e62b872ad14e9",
    "hmac_sha1_json": "7c08f955fe5dac35c7ea13a7f0228725bf0fcfbf",
}


def test_every_withdrawal_algorithm_has_a_vector() -> None:
    assert set(WITHDRAWAL_VECTORS) == set(signing.WITHDRAWAL_ALGORITHMS)
    assert settings.DEFAULT_WITHDRAWAL_ALGORITHM == "sha1_private_md5_json"


@pytest.mark.parametrize("algorithm", sorted(WITHDRAWAL_VECTORS))
def test_withdrawal_signature_vectors(algorithm: str) -> None:
    fields = exact_json.loads(WITHDRAWAL_REQUEST)
    signer = signing.withdrawal_signer(algorithm)
    assert signer(fields, "withdrawal-private") == WITHDRAWAL_VECTORS[algorithm]
    # the signature field itself is never part of what is signed
    assert signer({**fields, "signature": "abc"}, "withdrawal-private") == \
        WITHDRAWAL_VECTORS[algorithm]
    assert signer(fields, "another-key") != WITHDRAWAL_VECTORS[algorithm]


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="sha1_private_md5_json"):
        signing.withdrawal_signer("md5")
    with pytest.raises(ValueError, match="additional_data"):
        signing.signed_part({}, "everything")
