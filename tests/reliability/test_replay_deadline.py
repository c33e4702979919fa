# pyright: basic
"""A retried create whose first attempt is still unanswered answers within the caller's
deadline (found by test_postgres_fault_proxy.py: after the faults, same-key retries with a
10 s deadline got DEADLINE_EXCEEDED instead of their PENDING payment).

The replay waits for the first attempt's provider answer, but no longer than the caller
allows. When that attempt runs in another process (or died), the wait polls the database
with growing pauses; the last pause used to run up to 0.2 s past the point where it should
answer, and the point itself was only 50 ms before the deadline, so the answer came too late.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest

from malipo.config import AccountConfig, PolicyConfig
from malipo.payments.v1 import payment_pb2
from tests.harness import auth, create_request, running, settings_for
from tests.reliability.faultproxy import FaultProxy

pytestmark = pytest.mark.reliability


async def test_replay_of_an_unanswered_create_elsewhere_answers_before_the_deadline(
        database_url: str) -> None:
    provider = FaultProxy("127.0.0.1", 9, mode="blackhole")  # accepts, never answers
    await provider.start()
    account = AccountConfig(provider="gateway", name="default", settings={
        "base_url": f"http://127.0.0.1:{provider.port}", "public_id": "public-test",
        "merchant_id": "merchant-test", "secret_key": "secret-test", "timeout_s": "3"})
    # A long grace: no reconciler resumes the payment while the test runs.
    policy = PolicyConfig(start_after_s=0.3, interval_s=0.3, backoff=1.0, max_interval_s=1.0,
                          submit_grace_s=30.0, submit_give_up_s=60.0)
    request = create_request(f"replay-{uuid.uuid4()}", provider="gateway", channel="2390",
                             phone="+254712345678", amount=10000)

    def settings():
        return settings_for(database_url, accounts=[account], policies={"gateway": policy})

    try:
        async with running(settings()) as first, running(settings()) as second:
            # The first attempt hangs on the provider (no caller deadline: the connector's
            # 3 s bounds it) in the first process.
            hanging = asyncio.ensure_future(first.stub.CreatePayment(request, metadata=auth()))
            assert first.app.pool is not None
            payment_id = None
            for _ in range(100):
                payment_id = await first.app.pool.fetchval(
                    "SELECT id FROM payments WHERE idempotency_key = $1",
                    request.idempotency_key)
                if payment_id:
                    break
                await asyncio.sleep(0.02)
            assert payment_id
            # The retry lands on the second process, where nothing is in flight for it.
            for deadline in (1.0, 1.5):
                started = time.monotonic()
                try:
                    got = await second.stub.CreatePayment(request, metadata=auth(),
                                                          timeout=deadline)
                except grpc.aio.AioRpcError as err:
                    pytest.fail(f"{err.code()} after {time.monotonic() - started:.2f} s")
                waited = time.monotonic() - started
                assert got.payment.id == payment_id
                assert got.payment.status == payment_pb2.STATUS_PENDING
                assert waited > deadline / 2, "it did not wait for the first answer"
            hanging.cancel()
    finally:
        await provider.stop()
