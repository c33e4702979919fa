import json

from malipo.redaction import mask_body, mask_headers, mask_mapping, mask_text


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


def test_a_number_key_naming_a_category_is_not_masked() -> None:
    masked = mask_mapping({"wallet_type": "mpesa", "card_brand": "VISA",
                           "account_type": "savings", "wallet": "254712345678",
                           "wallet_id": "254712345678", "card_number": "4111111111111111"})
    assert masked == {"wallet_type": "mpesa", "card_brand": "VISA", "account_type": "savings",
                      "wallet": "***678", "wallet_id": "***678", "card_number": "***111"}
    # Digits under a category key are still caught as text.
    assert mask_mapping({"card_type": "ref 254712345678"}) == {"card_type": "ref ***678"}


def test_the_shortest_maskable_texts_are_still_masked() -> None:
    """mask_text tries each pattern only where it could match; these sit on those bounds."""
    assert mask_text("token=ab") == "token=***"
    assert mask_text("Bearer x") == "Bearer ***"
    assert mask_text("254712345") == "***345"
    assert mask_text("25471234") == "25471234"  # 8 digits: not taken for a number


def test_long_keys_are_judged_like_short_ones_without_being_cached() -> None:
    long_secret = "x" * 100 + "_client_secret"
    long_phone = "y" * 100 + "_msisdn"
    assert mask_mapping({long_secret: "s3cr3t", long_phone: "254712345678",
                         "z" * 100: "plain"}) == {
        long_secret: "***", long_phone: "***678", "z" * 100: "plain"}
