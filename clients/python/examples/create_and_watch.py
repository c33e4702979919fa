"""Create a KES 1,500.00 collection and watch it until it is final (the README's example).

python clients/python/examples/create_and_watch.py 127.0.0.1:50051 "$MALIPO_API_KEY"
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from decimal import Decimal

from malipo.client import FINAL_STATUSES, MalipoClient, money
from malipo.payments.v1.events_pb2 import StatusEvent, StatusFilter
from malipo.payments.v1.payment_pb2 import Customer, Status
from malipo.payments.v1.payment_service_pb2 import CreatePaymentRequest


async def create_and_watch(target: str, api_key: str, order_id: str) -> list[StatusEvent]:
    seen: list[StatusEvent] = []
    # snippet:start
    async with MalipoClient.connect(target, api_key) as client:
        payment = await client.create_payment(CreatePaymentRequest(
            idempotency_key=f"order-{order_id}",  # yours, stored with the order
            provider="simulator",
            amount=money(Decimal("1500.00"), "KES"),
            customer=Customer(phone_number="+254712345600"),
        ))
        watch = StatusFilter(payment_id=payment.id)
        async for event in client.watch(watch, after_sequence=0):
            print(f"#{event.sequence} {Status.Name(event.old_status)} -> "
                  f"{Status.Name(event.new_status)}")
            seen.append(event)
            if event.new_status in FINAL_STATUSES:
                break
    # snippet:end
    return seen


if __name__ == "__main__":
    asyncio.run(create_and_watch(sys.argv[1], sys.argv[2], uuid.uuid4().hex))
