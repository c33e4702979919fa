"""Which path a simulated payment takes (provider_fields["scenario"], else the phone's last
two digits: the README's table) and what the simulated provider answers on that path."""

from __future__ import annotations

from enum import StrEnum

from malipo.domain.payments import NextAction, NextActionKind, Payment, ProviderUpdate
from malipo.domain.status import Status

OTP_CODE = "123456"


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


class RefundScenario(StrEnum):
    """provider_fields["refund_scenario"]: how the simulated provider answers refunds."""

    ANSWER = "answer"    # answers at once (the default)
    TIMEOUT = "timeout"  # makes the refund, but the first answer is lost (UNKNOWN here)


def refund_scenario_of(payment: Payment) -> RefundScenario:
    return RefundScenario(payment.provider_fields.get("refund_scenario") or "answer")


def scenario_of(payment: Payment) -> Scenario:
    named = payment.provider_fields.get("scenario", "")
    if named:
        return Scenario(named)
    digits = "".join(c for c in payment.customer.phone_number if c.isdigit())
    return BY_SUFFIX.get(digits[-2:], Scenario.SUCCEED)


def answer(p: Payment, *, settled: bool, confirmed: bool = False, refunded: bool = False,
           cancelled: bool = False) -> ProviderUpdate:
    """The provider's view of `p` now; `settled`: its settle time has passed."""
    scenario = scenario_of(p)
    ref = "SIM-" + p.id.split("_", 1)[1]
    if refunded:
        return ProviderUpdate(Status.REVERSED, ref, "refunded", failure_reason="REFUNDED")
    if cancelled:
        return ProviderUpdate(Status.CANCELLED, ref, "cancelled", failure_reason="CANCELLED")
    if scenario is Scenario.DECLINE:
        return ProviderUpdate(Status.FAILED, ref, "declined", "Insufficient funds",
                              failure_reason="INSUFFICIENT_FUNDS",
                              failure_message="Insufficient funds")
    if scenario is Scenario.OTP and not confirmed:
        return ProviderUpdate(Status.ACTION_REQUIRED, ref, "otp_sent",
                              next_action=NextAction(NextActionKind.OTP, {
                                  "prompt": f"Enter the code sent by SMS ({OTP_CODE})"}))
    if scenario is Scenario.REDIRECT and not settled:
        return ProviderUpdate(Status.ACTION_REQUIRED, ref, "redirect", next_action=NextAction(
            NextActionKind.REDIRECT, {"url": f"https://simulator.invalid/pay/{p.id}"}))
    if scenario is Scenario.BANK_TRANSFER and not settled:
        return ProviderUpdate(Status.ACTION_REQUIRED, ref, "awaiting_transfer",
                              next_action=NextAction(NextActionKind.BANK_TRANSFER, {
                                  "account_number": "0123456789", "bank_name": "Sim Bank",
                                  "account_name": "Malipo Simulator",
                                  "amount_minor": str(p.amount.minor), "reference": ref}))
    if scenario is Scenario.STAY_PROCESSING or not settled:
        return ProviderUpdate(Status.PROCESSING, ref, "in_progress")
    if scenario is Scenario.FAIL_LATER:
        return ProviderUpdate(Status.FAILED, ref, "failed", "Declined by the customer",
                              failure_reason="DECLINED_BY_CUSTOMER",
                              failure_message="Declined by the customer")
    return ProviderUpdate(Status.SUCCEEDED, ref, "success")
