import json

from malipo.redaction import mask_body, mask_headers, mask_text


def test_phone_numbers_and_secrets_are_masked_in_json() -> None:
    body = json.dumps({"phone_number": "254712345678", "secret": "s3cr3t-value",
                       "note": "call +254 712 345 678", "amount": "100.00",
                       "extra": {"signature": "abcdef", "account_number": "0123456789"}})
    masked = mask_body(body)
    for leaked in ("254712345678", "s3cr3t-value", "712 345", "abcdef", "0123456789"):
        assert leaked not in masked
    assert "100.00" in masked
    assert "678" in masked  # the last digits stay, for support


def test_text_and_headers() -> None:
    assert "abc123" not in mask_text("GET /x?secret=abc123&y=1")
    assert "tok" not in mask_text("Authorization: Bearer tok.en-value")
    assert mask_headers({"X-API-KEY": "k", "Content-Type": "json"}) == {
        "x-api-key": "***", "content-type": "json"}
