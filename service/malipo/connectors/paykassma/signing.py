"""Paykassma signatures: postbacks (documented) and withdrawal requests (not documented).

Postbacks. Paykassma's public postback page gives
    sha1(postback_access_key . postback_private_key . md5(JSON))
with JSON written by PHP's json_encode(JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE).
Which data that JSON covers differs between versions of the page: one says
`$transactions->toJson(...)`, a later one `$transactions$additionalDataArray->toJson(...)`.
So the signed part is a named, configurable form (SIGNED_FORMS):
  "additional_data"  the JSON of the `additional_data` array (the "transaction list"; the
                     newest page). Default.
  "body"             the whole postback object without its `signature` key, keys in the
                     order received.
`canonical_json` is PHP's rendering: no spaces, "/" and non-ASCII unescaped, U+2028/U+2029
still escaped (PHP only leaves them raw with JSON_UNESCAPED_LINE_TERMINATORS), numbers
written as received (parsed by exact_json as Decimal, never float, so 0.00077816 stays that
text). Known gap, only for the non-default "body" form, whose JSON covers converted_amount:
PHP writes a float below 1e-4 as "2.6e-7" / "1.0e-5" and drops trailing zeros, where
str(Decimal) gives "2.6E-7" / "0.00001" / "20.340". The document's examples have no such
value (the smallest is 0.00077816), so nothing settles which text Paykassma hashes.

Withdrawals. The document says only "Signature generated with private_key"; its example is
40 hex digits, the length of a SHA-1 digest. WITHDRAWAL_ALGORITHMS lists the candidates; the
default (settings.py) "sha1_private_md5_json" = sha1(private_key . md5(canonical JSON of the
request without `signature`)) mirrors the only signing scheme Paykassma documents (the
postback one, which has no access key on this side). If Paykassma support confirms another,
set the account's `withdrawal_signature_algorithm`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from malipo.connectors.rotation import any_secret_matches

SIGNED_FORMS = ("additional_data", "body")


def _string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def canonical_json(value: Any) -> str:
    """PHP json_encode(value, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise TypeError("floats are not allowed in signed JSON: parse with exact_json.loads")
    if isinstance(value, Mapping):
        items = ",".join(f"{_string(str(k))}:{canonical_json(v)}"
                         for k, v in value.items())  # type: ignore[union-attr]
        return "{" + items + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"  # type: ignore[union-attr]
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def signed_part(postback: Mapping[str, Any], form: str) -> str:
    """The canonical JSON a postback's signature covers, in the named form."""
    if form == "additional_data":
        return canonical_json(postback.get("additional_data", []))
    if form == "body":
        return canonical_json({k: v for k, v in postback.items() if k != "signature"})
    raise ValueError(f"unknown postback signed form {form!r}; one of {SIGNED_FORMS}")


def postback_signature(access_key: str, private_key: str, signed_json: str) -> str:
    inner = hashlib.md5(signed_json.encode(), usedforsecurity=False).hexdigest()
    return hashlib.sha1((access_key + private_key + inner).encode(),
                        usedforsecurity=False).hexdigest()


def postback_is_authentic(postback: Mapping[str, Any], access_key: str,
                          private_keys: Sequence[str], form: str) -> bool:
    """True when the postback's signature matches one of the (rotating) private keys."""
    received = postback.get("signature")
    if not isinstance(received, str) or not received:
        return False
    signed = signed_part(postback, form)
    return any_secret_matches(received.lower(), private_keys,
                              lambda key: postback_signature(access_key, key, signed))


# --- withdrawal requests -----------------------------------------------------------------

WithdrawalSigner = Callable[[Mapping[str, Any], str], str]


def _without_signature(fields: Mapping[str, Any]) -> str:
    return canonical_json({k: v for k, v in fields.items() if k != "signature"})


def sha1_private_md5_json(fields: Mapping[str, Any], private_key: str) -> str:
    inner = hashlib.md5(_without_signature(fields).encode(), usedforsecurity=False).hexdigest()
    return hashlib.sha1((private_key + inner).encode(), usedforsecurity=False).hexdigest()


def sha1_json_private(fields: Mapping[str, Any], private_key: str) -> str:
    return hashlib.sha1((_without_signature(fields) + private_key).encode(),
                        usedforsecurity=False).hexdigest()


def hmac_sha1_json(fields: Mapping[str, Any], private_key: str) -> str:
    return hmac.new(private_key.encode(), _without_signature(fields).encode(),
                    hashlib.sha1).hexdigest()


WITHDRAWAL_ALGORITHMS: Mapping[str, WithdrawalSigner] = {
    "sha1_private_md5_json": sha1_private_md5_json,
    "sha1_json_private": sha1_json_private,
    "hmac_sha1_json": hmac_sha1_json,
}


def withdrawal_signer(name: str) -> WithdrawalSigner:
    try:
        return WITHDRAWAL_ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown withdrawal signature algorithm {name!r}; one of "
                         f"{', '.join(WITHDRAWAL_ALGORITHMS)}") from None
