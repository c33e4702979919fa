"""What the load generator sends: the same request shapes for the baselines and for Malipo."""

from __future__ import annotations

import json
import time

from malipo.connectors.simulator.signing import SIGNATURE_HEADER, sign
from malipo.payments.v1 import money_pb2, payment_pb2
from malipo.payments.v1 import payment_service_pb2 as pb


def phone(n: int) -> str:
    # Ends in 05: the simulator's stay_processing path, so no callback or poll of the
    # simulator adds load behind the scenario being measured (README's scenario table).
    return f"+2547{abs(n) % 1_000_000:06d}05"


def create(key: str, n: int) -> pb.CreatePaymentRequest:
    return pb.CreatePaymentRequest(
        idempotency_key=key, provider="simulator",
        amount=money_pb2.Money(amount_minor=1000 + abs(n) % 1000, currency="KES"),
        customer=payment_pb2.Customer(phone_number=phone(n)), description="bench",
        metadata={"order": str(n)},
    )


def callback_body(payment_id: str, reference: str, amount_minor: int, currency: str) -> bytes:
    """The simulator's own callback shape (connectors/simulator/callbacks.py callback_body)."""
    return json.dumps({
        "event_id": f"{payment_id}:SUCCEEDED", "payment_id": payment_id,
        "reference": reference, "status": "SUCCEEDED", "provider_status": "success",
        "failure_reason": "", "failure_message": "", "amount_minor": amount_minor,
        "currency": currency,
    }, separators=(",", ":")).encode()


def callback_headers(secret: str, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
