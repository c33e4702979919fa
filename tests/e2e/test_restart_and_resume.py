# pyright: basic
"""Nothing accepted is lost across restarts; interrupted submissions resume exactly once."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from malipo.app.services import Services
from malipo.app.unit_of_work import Schedule
from malipo.domain.ids import new_payment_id
from malipo.domain.money import Money
from malipo.domain.payments import Customer, Payment
from malipo.domain.status import Direction, Method, Status
from malipo.payments.v1 import payment_pb2, payment_service_pb2
from malipo.reconciler.loop import Reconciler
from malipo.store.leases import PostgresPollLeases
from malipo.store.unit_of_work import create_pool
from tests.harness import auth, create_request, running, settings_for

pb = payment_service_pb2


async def test_restart_keeps_payments_and_keys(database_url: str) -> None:
    k = f"restart-{uuid.uuid4()}"
    async with running(settings_for(database_url)) as first:
        created = (await first.stub.CreatePayment(create_request(k), metadata=auth())).payment
    async with running(settings_for(database_url)) as second:
        got = (await second.stub.GetPayment(pb.GetPaymentRequest(payment_id=created.id),
                                            metadata=auth())).payment
        assert got.id == created.id
        replay = (await second.stub.CreatePayment(create_request(k), metadata=auth())).payment
        assert replay.id == created.id
        assert second.connector("simulator").calls_for(created.id) == 0


async def _insert_interrupted(services: Services) -> Payment:
    """What a crash between accepting a payment and calling the provider leaves behind."""
    past = datetime.now(UTC) - timedelta(seconds=5)
    payment = Payment(
        id=new_payment_id(), tenant="acme", direction=Direction.COLLECTION,
        provider="simulator", account="default", method=Method.UNSPECIFIED,
        amount=Money.of(2500, "KES"), idempotency_key=f"crash-{uuid.uuid4()}",
        created_at=past, updated_at=past,
        customer=Customer(phone_number="+254712345600"))
    async with services.uow() as uow:
        await uow.payments.add(payment, actor="test", schedule=Schedule(past))
    return payment


async def test_crash_between_accept_and_provider_call_is_completed_once(
        database_url: str) -> None:
    async with running(settings_for(database_url)) as service:
        assert service.app.services is not None
        payment = await _insert_interrupted(service.app.services)
        sim = service.connector("simulator")
        for _ in range(100):
            got = (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment.id),
                                                 metadata=auth())).payment
            if got.status == payment_pb2.STATUS_SUCCEEDED:
                break
            await asyncio.sleep(0.05)
        assert got.status == payment_pb2.STATUS_SUCCEEDED
        # The simulator can be asked by our id, so resume asks first and submits once.
        assert sim.calls_for(payment.id, "create") == 1


async def test_two_reconcilers_never_poll_the_same_payment_at_once(database_url: str) -> None:
    async with running(settings_for(database_url, reconcile_interval_s=3600)) as service:
        services = service.app.services
        assert services is not None and service.app.pool is not None
        ids = [(await service.stub.CreatePayment(create_request(f"r-{uuid.uuid4()}",
                                                                phone="+254712345605"),
                                                 metadata=auth())).payment.id
               for _ in range(20)]
        await service.app.pool.execute(
            "UPDATE payments SET next_poll_at = now() - interval '1 second' WHERE id = ANY($1)",
            ids)
        pool_b = await create_pool(service.app.database_url, min_size=1, max_size=5)
        assert pool_b is not None
        try:
            a = Reconciler(services, PostgresPollLeases(service.app.pool), batch=20)
            b = Reconciler(services, PostgresPollLeases(pool_b), batch=20)
            claimed = await asyncio.gather(a.tick(), b.tick())
        finally:
            await pool_b.close()
        assert sum(claimed) >= 20  # ours, plus any left due by earlier tests of this module
        sim = service.connector("simulator")
        assert all(sim.calls_for(pid, "status") == 1 for pid in ids)


async def test_expiry_rule_fails_a_payment_that_never_settles(database_url: str) -> None:
    settings = settings_for(database_url)
    quick_expiry = replace(settings.policies["simulator"], expire_after_s=1.0)
    settings = settings.model_copy(update={"policies": {"simulator": quick_expiry}})
    async with running(settings) as service:
        p = (await service.stub.CreatePayment(create_request(f"x-{uuid.uuid4()}",
                                                             phone="+254712345605"),
                                              metadata=auth())).payment
        for _ in range(100):
            got = (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=p.id),
                                                 metadata=auth())).payment
            if got.status == payment_pb2.STATUS_FAILED:
                break
            await asyncio.sleep(0.05)
        assert got.status == payment_pb2.STATUS_FAILED
        assert got.failure_reason == "EXPIRED"
        assert Status.FAILED.value == "FAILED"

