"""Which path a simulated payment takes: provider_fields["scenario"], else the phone's last
two digits (documented in the README's table)."""

from __future__ import annotations

from enum import StrEnum

from malipo.domain.payments import Payment


class Scenario(StrEnum):
    SUCCEED = "succeed"              # PROCESSING, then SUCCEEDED after `settle_after_s`
    DECLINE = "decline"              # FAILED at once: INSUFFICIENT_FUNDS
    FAIL_LATER = "fail_later"        # PROCESSING, then FAILED
    OTP = "otp"                      # ACTION_REQUIRED (OTP "123456"), then SUCCEEDED
    TIMEOUT = "timeout"              # the create call times out (UNKNOWN); a poll finds SUCCEEDED
    STAY_PROCESSING = "stay_processing"  # PROCESSING forever, no callback (expiry rule)
    REDIRECT = "redirect"            # ACTION_REQUIRED redirect, SUCCEEDED after settle time
    NO_CALLBACK = "no_callback"      # PROCESSING; only a poll finds SUCCEEDED
    UNAVAILABLE = "unavailable"      # provider down: nothing sent, retried later
    BANK_TRANSFER = "bank_transfer"  # ACTION_REQUIRED with bank details, then SUCCEEDED


BY_SUFFIX: dict[str, Scenario] = {
    "00": Scenario.SUCCEED, "01": Scenario.DECLINE, "02": Scenario.FAIL_LATER,
    "03": Scenario.OTP, "04": Scenario.TIMEOUT, "05": Scenario.STAY_PROCESSING,
    "06": Scenario.REDIRECT, "07": Scenario.NO_CALLBACK, "08": Scenario.UNAVAILABLE,
    "09": Scenario.BANK_TRANSFER,
}


def scenario_of(payment: Payment) -> Scenario:
    named = payment.provider_fields.get("scenario", "")
    if named:
        return Scenario(named)
    digits = "".join(c for c in payment.customer.phone_number if c.isdigit())
    return BY_SUFFIX.get(digits[-2:], Scenario.SUCCEED)
