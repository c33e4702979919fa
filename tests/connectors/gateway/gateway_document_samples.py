"""The gateway document's own sample bodies, copied verbatim from
docs/providers/gateway-c2b-b2c-api.txt (each names its section), and the
signature vectors computed for them outside our code (openssl dgst -sha512 -hmac over the
strings written out by hand from the document's rule).

The samples are kept exactly as printed. Two printing artifacts stop them from being JSON:
the API section's samples mark each top-level field with "- " (the export's bullets), and
the country examples end with a trailing comma; `as_json` removes exactly those two and
nothing else, so what the tests feed to the connector and to the fake is the document's.
"""
# ruff: noqa: E501

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

# gateway-c2b-b2c-api.txt, the simulator paragraph at the top (provider id 14).
SIMULATOR_RESPONSE = r'''{
"order_id": "54321",
"transaction_id": "12345",
"transaction_ref": "",
"status": 1,
"result": {
"code": 0,
"message": "OK"
},
"provider_result": {
"code": -8888,
"message": "Good"
},
"service_id": 1,
"service_version": "1.03/1.14|1.0/1.26|1.0/1.0|1.01/1.01|1.01/1.01||1.01/1.27",
"service_date_time": "2023-05-15 10:00:00.000000",
"confirm_type": 0
}'''


# gateway-c2b-b2c-api.txt, the signature section's PHP sample ($postData and $secretKey).
PHP_SIGNATURE_SAMPLE = r'''$postData = [
'merchant_id' => 'fffed61be9780b97c5e4c65e4e07bb6b',
'provider_id' => 10,
'client_id' => '254000000000',
'country' => 'KE',
'order_id' => 'order_3444298767545',
'amount' => 1000,
'currency' => 'KES',
'callback_url' => 'https://my.callback.url'
];
$secretKey = "cf11635572c1e8d77297207152dc0791ad91f22b32d23c758ce3ba2637202ad8f7290ba41f2243cccf32edde1dfb8bf0f5dea62525309e293b3adb2c76eed6a5";'''


# gateway-c2b-b2c-api.txt, Burkina Faso, Orange 9209: "Example Request".
BF_C2B_REQUEST = r'''{
"merchant_id": "your merchant id",
"customer_id": "2250705145655",
"order_id": "test_161225_01_1",
"amount": "1100",
"currency": "XOF",
"country": "BF",
"callback_url": "your callback url",
"provider_id": "9209",
"signature": "1c594d338bc3f413bd61cb97d697e98ad5772071da533",
"extra": {
"otp": "5647"
},
}'''


# gateway-c2b-b2c-api.txt, Ivory Coast, Orange 9197: "Example Request".
CI_C2B_REQUEST = r'''{
"merchant_id": "your merchant id",
"customer_id": "2250705145655",
"order_id": "test_161225_01_1",
"amount": "1100",
"currency": "XOF",
"country": "CI",
"callback_url": "your callback url",
"provider_id": "9197",
"signature": "1c594d338bc3f413bd61cb97d697e98ad5772071da533",
"extra": {
"otp": "5647"
},
}'''


# gateway-c2b-b2c-api.txt, Ivory Coast, C2B: "Example of a status request".
C2B_STATUS_REQUEST_WITH_OTP = r'''{
"merchant_id":"cdeffe6210c7fdc7402c13b215455bd8ddec02da0c",
"order_id":"55584tty848rt",
"customer_id":"2250768000000",
"extra":{
"otp":"7374"
},
"signature":"d7d6d76bd12bfd24dytu6u6c803be455d81cfe792f00cd8892c26ce7cf5a05beebb9c80843e"
}'''


# gateway-c2b-b2c-api.txt, Nigeria: "B2C Bank Transfer request example".
NG_B2C_REQUEST = r'''{
"merchant_id":"e0fecd91fcb24f348048193b3fb34875ba3722b4",
"order_id":"0900000001",
"customer_id":"16280954971628095497",
"amount":"100.00",
"currency":"NGN",
"provider_id":5026,
"extra":{
"customer_name":"Name Lastname",
"customer_email": "Name@domen.com",
"bank_code":"000001"
},
"signature":"d7d6d76b0e22c6f9d369fa6c24f107053d12bfd24d3b154f2deb6676bf179c123134e1f20879c803be455d81cfe792f00cd8892c26ce7cf5a05beebb9c80843e"
}'''


# gateway-c2b-b2c-api.txt, Nigeria: "In the synchronized response, you will get the bank payment details".
NG_C2B_BANK_DETAILS_RESPONSE = r'''{
"order_id": "90900000001",
"transaction_id": "",
"transaction_ref": "",
"status": 1,
"result": {
"code": 0,
"message": "OK"
},
"provider_result": {
"code": -8888,
"message": ""
},
"service_id": 1,
"service_version": "1.03/1.14|1.0/2.0|1.0/1.0|1.01/1.0|1.01/2.0||1.02/1.27",
"service_date_time": "2024-04-20 01:08:42.797957",
"extra": {
"transfer_amount": 100,
"account_name": "Test Ltd / Test Limited",
"account_number": "4000000000",
"bank_name": "Premium Trust Bank"
},
"confirm_type": 0
}'''


# gateway-c2b-b2c-api.txt, API methods, payment_c2b: request sample.
C2B_REQUEST = r'''{- "merchant_id": "e0fecd91fcb24f348048193b3fb34875ba3722b4",
- "customer_id": "0900000001",
- "order_id": "16280954971628095497",
- "amount": "100.00",
- "currency": "KES",
- "country": "KE",
- "provider_id": 14,
- "signature": "d7d6d76b0e22c6f9d369fa6c24f107053d12bfd24d3b154f2deb6676bf179c123134e1f20879c803be455d81cfe792f00cd8892c26ce7cf5a05beebb9c80843e"
}'''


# gateway-c2b-b2c-api.txt, API methods, payment_c2b: response sample.
C2B_RESPONSE = r'''{- "order_id": "16280954971628095497",
- "transaction_id": "732007046722",
- "transaction_ref": "MP.33234.342.CP33",
- "status": 2,
- "result": {
- "code": 0,
- "message": "OK"
}, - "provider_result": {
- "code": 0,
- "message": "OK"
}, - "service_id": 1,
- "service_version": 11.1,
- "service_date_time": "2020-11-25 10:08:32.832969"
}'''


# gateway-c2b-b2c-api.txt, API methods, payment_c2b: callback sample.
CALLBACK = r'''{- "merchant_id": "e0fecd91fcb24f348048193b3fb34875ba3722b4",
- "operation_type": 17,
- "customer_id": "0900000001",
- "amount": 100,
- "order_id": "16280954971628095497",
- "transaction_id": "1234567",
- "transaction_ref": "QR555RQ",
- "status": 2,
- "provider_id": 14,
- "destination_id": "",
- "result": {
- "code": 0,
- "message": "OK"
}, - "signature": "d7d6d76b0e22c6f9d369fa6c24f107053d12bfd24d3b154f2deb6676bf179c123134e1f20879c803be455d81cfe792f00cd8892c26ce7cf5a05beebb9c80843e"
}'''


# gateway-c2b-b2c-api.txt, API methods, payment_b2c: request sample.
B2C_REQUEST = r'''{- "merchant_id": "e0fecd91fcb24f348048193b3fb34875ba3722b4",
- "customer_id": "0900000001",
- "order_id": "16280954971628095497",
- "amount": "100.00",
- "currency": "KES",
- "country": "KE",
- "provider_id": 14,
- "signature": "d7d6d76b0e22c6f9d369fa6c24f107053d12bfd24d3b154f2deb6676bf179c123134e1f20879c803be455d81cfe792f00cd8892c26ce7cf5a05beebb9c80843e"
}'''


# gateway-c2b-b2c-api.txt, API methods, payment_b2c: response sample.
B2C_RESPONSE = r'''{- "order_id": "16280954971628095497",
- "transaction_id": "532007056722",
- "transaction_ref": "",
- "status": 2,
- "result": {
- "code": 0,
- "message": "OK"
}, - "provider_result": {
- "code": 0,
- "message": "OK"
}, - "service_id": 11,
- "service_version": 11.1,
- "service_date_time": "2020-11-25 10:08:32.832969",
- "confirm_type": 0
}'''


# gateway-c2b-b2c-api.txt, API methods, status: request sample.
STATUS_REQUEST = r'''{- "merchant_id": "e0fecd91fcb24f348048193b3fb34875ba3722b4",
- "order_id": "16280954971628095497",
- "signature": "d7d6d76b0e22c6f9d369fa6c24f107053d12bfd24d3b154f2deb6676bf179c123134e1f20879c803be455d81cfe792f00cd8892c26ce7cf5a05beebb9c80843e"
}'''


# gateway-c2b-b2c-api.txt, API methods, status: response sample.
STATUS_RESPONSE = r'''{- "order_id": "16280954971628095497",
- "transaction_id": "732007046722",
- "transaction_ref": "MP.33234.342.CP33",
- "status": 2,
- "result": {
- "code": 0,
- "message": "OK"
}, - "provider_result": {
- "code": 0,
- "message": "OK"
}, - "service_id": 1,
- "service_version": 11.1,
- "service_date_time": "2020-11-25 10:08:32.832969"
}'''


# openssl dgst -sha512 -hmac $secretKey over
# "merchant_idfffed61be9780b97c5e4c65e4e07bb6bprovider_id10client_id254000000000countryKE"
# "order_idorder_3444298767545amount1000currencyKEScallback_urlhttps://my.callback.url"
PHP_SAMPLE_DIGEST = (
    "a724c9ebe2b15fca52cf5ad427164db7acef0f7c3f4ea1b3c8a3d07706ac4c2e"
    "6d0125a452d86e220f5c21686f6239434a490279e61641d33de5fb213e4ef8f2"
)
# The same key over CI_C2B_REQUEST, nested field included and signature left out:
# "merchant_idyour merchant idcustomer_id2250705145655order_idtest_161225_01_1amount1100"
# "currencyXOFcountryCIcallback_urlyour callback urlprovider_id9197extra.otp5647"
CI_REQUEST_DIGEST = (
    "aedd8014d67711214abb096cb49c923d1af9317db104c2927578bbb0a369d38f"
    "90135eff89021f879f32c2e58cd2b2b8c4d5f5c3319b1f74858f84ce44bd702f"
)
# The same key over C2B_STATUS_REQUEST_WITH_OTP:
# "merchant_idcdeffe6210c7fdc7402c13b215455bd8ddec02da0corder_id55584tty848rt"
# "customer_id2250768000000extra.otp7374"
STATUS_WITH_OTP_DIGEST = (
    "966c60f888e26b9cb7c3ad2c2b483b6cbc4a4551cdc89bde92345c7db92c5adc"
    "5695653a8366050417fb806625661b33f53f41328273c266d510502ab30a1963"
)

_BULLET = re.compile(r'(^|\{|, )- (?=")', re.MULTILINE)
_TRAILING_COMMA = re.compile(r",(\s*\})")
_PHP_ITEM = re.compile(r"^'(\w+)' => (?:'([^']*)'|(\d+)),?$", re.MULTILINE)


def as_json(sample: str) -> dict[str, Any]:
    """A sample as the JSON it stands for: fields in the printed order, decimals exact."""
    text = _TRAILING_COMMA.sub(r"\1", _BULLET.sub(r"\1", sample))
    return json.loads(text, parse_float=Decimal)


def as_bytes(body: dict[str, Any]) -> bytes:
    return json.dumps(body, default=str).encode()


def php_post_data() -> dict[str, str | int]:
    """$postData of the PHP sample, in its order (strings stay strings, numbers numbers)."""
    return {m[1]: m[2] if m[3] is None else int(m[3])
            for m in _PHP_ITEM.finditer(PHP_SIGNATURE_SAMPLE)}


def php_secret_key() -> str:
    found = re.search(r'\$secretKey = "([0-9a-f]+)";', PHP_SIGNATURE_SAMPLE)
    assert found is not None
    return found[1]
