# pyright: basic
"""`malipo serve --demo` end to end: every provider's fake, the chaos switches, the exchange log.

The service is started the way the CLI's `serve --demo` does it (Sandbox.start, then App) with
no accounts and no policies of its own: only the test database and real sockets.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import date

import aiohttp
import asyncpg
import grpc
import pytest

from malipo.config import Settings
from malipo.connectors import registry
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.sandbox.demo import ACCOUNT, Sandbox, fake_classes
from malipo.sandbox.gateway import GatewayFake
from malipo.sandbox.kkiapay import KkiapayFake
from malipo.sandbox.kwik import ACCOUNT_FOR, KwikFake
from malipo.sandbox.paykassma import PaykassmaFake
from tests.harness import TENANT_KEYS, Running, auth, create_request, free_port, running

pb = payment_service_pb2
PHONE = "+254712345678"
SUCCEEDED, PROCESSING = payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_PROCESSING
Demo = tuple[Running, Sandbox]


@pytest.fixture(scope="module")
async def demo(database_url: str) -> AsyncIterator[Demo]:
    settings = Settings(
        database_url=database_url, grpc_listen="127.0.0.1:0",
        http_listen=f"127.0.0.1:{free_port()}",
        api_keys=",".join(f"{t}={k}" for t, k in TENANT_KEYS.items()),
        reconcile_interval_s=0.1)
    sandbox = Sandbox(timeout_s=1.0, hang_s=2.0, complete_after_s=0.2, bank_step_s=0.3,
                      poll_after_s=0.5)
    settings = await sandbox.start(settings)
    try:
        async with running(settings) as service:
            yield service, sandbox
    finally:
        await sandbox.stop()


def key() -> str:
    return f"demo-{uuid.uuid4()}"


async def wait_for(service: Running, payment_id: str, status: int, *, payout: bool = False,
                   timeout: float = 10.0) -> payment_pb2.Payment:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if payout:
            got = (await service.stub.GetPayout(pb.GetPayoutRequest(payout_id=payment_id),
                                                metadata=auth())).payout
        else:
            got = (await service.stub.GetPayment(pb.GetPaymentRequest(payment_id=payment_id),
                                                 metadata=auth())).payment
        if got.status == status or asyncio.get_running_loop().time() > deadline:
            return got
        await asyncio.sleep(0.05)


async def transitions(pool: asyncpg.Pool, payment_id: str) -> list[str]:
    """Every status event committed for the payment (relayed or still in the outbox)."""
    rows = await pool.fetch(
        "SELECT new_status, occurred_at FROM events WHERE payment_id = $1 UNION "
        "SELECT payload->>'new_status', (payload->>'occurred_at')::timestamptz FROM outbox "
        "WHERE payload->>'payment_id' = $1 ORDER BY 2", payment_id)
    return [r["new_status"] for r in rows]


async def exchanges(service: Running, payment_id: str,
                    tenant: str = "acme") -> list[pb.ProviderExchange]:
    answer = await service.stub.ListProviderExchanges(
        pb.ListProviderExchangesRequest(payment_id=payment_id), metadata=auth(tenant))
    return list(answer.exchanges)


async def control(url: str, **switches: object) -> dict[str, object]:
    async with aiohttp.ClientSession() as session, session.post(
            url + "/_control", json=switches) as resp:
        assert resp.status == 200
        return await resp.json()


def gateway_request(k: str) -> pb.CreatePaymentRequest:
    return create_request(k, provider="gateway", channel="2390", amount=10000, phone=PHONE)


async def gateway_payment(service: Running) -> payment_pb2.Payment:
    return (await service.stub.CreatePayment(gateway_request(key()), metadata=auth())).payment


# --- the demo starts with nothing but --demo, and each provider's flow works -----------------

async def test_demo_configures_one_account_per_provider(demo: Demo) -> None:
    service, sandbox = demo
    listed = await service.stub.ListProviders(pb.ListProvidersRequest(), metadata=auth())
    connectors = set(registry.known_providers())
    assert {p.name: list(p.accounts) for p in listed.providers} == {
        p: [ACCOUNT] for p in connectors}
    # Every connector but the in-process simulator has its fake, found without registration.
    assert set(sandbox.fakes) == set(fake_classes()) == connectors - {"simulator"}
    guide = sandbox.guide(service.app.grpc_address)
    for name, fake in sandbox.fakes.items():
        assert fake.base_url in guide, name
    for switch in ("late", "twice", "out_of_order", "forged", "never", "timeout", "error_500"):
        assert switch in guide


async def test_simulator_flow(demo: Demo) -> None:
    service, _ = demo
    created = (await service.stub.CreatePayment(create_request(key(), phone="+254712345600"),
                                                metadata=auth())).payment
    assert (await wait_for(service, created.id, SUCCEEDED)).status == SUCCEEDED


async def test_gateway_flow_settles_by_signed_callback(demo: Demo, pool: asyncpg.Pool) -> None:
    service, sandbox = demo
    before = len(sandbox.fake("gateway", GatewayFake).deliveries)
    created = await gateway_payment(service)
    assert created.status == PROCESSING
    done = await wait_for(service, created.id, SUCCEEDED)
    assert done.status == SUCCEEDED and done.provider_reference
    await _until(lambda: len(sandbox.fake("gateway", GatewayFake).deliveries) > before)
    assert [d.status for d in sandbox.fake("gateway", GatewayFake).deliveries[before:]] == [200]
    assert await transitions(pool, created.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]


async def test_paykassma_flow_settles_by_postback(demo: Demo) -> None:
    service, sandbox = demo
    before = len(sandbox.fake("paykassma", PaykassmaFake).deliveries)
    request = create_request(key(), provider="paykassma", channel="mpesa", amount=300000,
                             phone=PHONE)
    request.customer.reference = "customer-42"
    created = (await service.stub.CreatePayment(request, metadata=auth())).payment
    done = await wait_for(service, created.id, SUCCEEDED)
    assert done.status == SUCCEEDED, done
    # Paykassma stops re-sending only on {"status":"ok"}: one delivery was enough.
    await _until(lambda: len(sandbox.fake("paykassma", PaykassmaFake).deliveries) > before)
    assert [d.status for d in
            sandbox.fake("paykassma", PaykassmaFake).deliveries[before:]] == [200]


async def test_kkiapay_flow_widget_then_webhook(demo: Demo) -> None:
    service, sandbox = demo
    created = (await service.stub.CreatePayment(create_request(
        key(), provider="kkiapay", amount=5000, currency="XOF", phone="+2290197000000"),
        metadata=auth())).payment
    assert created.status == payment_pb2.STATUS_ACTION_REQUIRED
    async with aiohttp.ClientSession() as session, session.post(
            sandbox.fake("kkiapay", KkiapayFake).base_url + "/_test/widget",
            json={"amount": 5000, "data": created.id}) as resp:  # the customer pays
        assert resp.status == 200
    done = await wait_for(service, created.id, SUCCEEDED)
    assert done.status == SUCCEEDED and done.provider_reference


async def test_jambopay_flow_bill_commit(demo: Demo) -> None:
    service, _ = demo
    created = (await service.stub.CreatePayout(pb.CreatePayoutRequest(
        idempotency_key=key(), provider="jambopay", channel="kplc",
        amount=money_pb2.Money(amount_minor=2000, currency="KES"),
        customer=payment_pb2.Customer(phone_number=PHONE),
        provider_fields={"meter_number": "14234567890"}), metadata=auth())).payout
    assert created.status == payment_pb2.STATUS_ACTION_REQUIRED, created
    confirmed = (await service.stub.ConfirmPayment(pb.ConfirmPaymentRequest(
        idempotency_key=key(), payment_id=created.id), metadata=auth())).payment
    done = await wait_for(service, confirmed.id, SUCCEEDED, payout=True)
    assert done.status == SUCCEEDED, done


async def test_kwik_flow_debit_order_paid_by_the_bank(demo: Demo, pool: asyncpg.Pool) -> None:
    service, sandbox = demo
    created = (await service.stub.CreatePayment(pb.CreatePaymentRequest(
        idempotency_key=key(), provider="kwik", method=payment_pb2.METHOD_DEBIT_ORDER,
        amount=money_pb2.Money(amount_minor=50025, currency="ZAR"), country="ZA",
        customer=payment_pb2.Customer(name="Thandi Nkosi", email="t@example.co.za",
                                      bank_account=payment_pb2.BankAccount(
                                          account_number=ACCOUNT_FOR["paid"],
                                          bank_code="051001", holder_name="T NKOSI")),
        provider_fields={"action_date": date.today().isoformat()}), metadata=auth())).payment
    done = await wait_for(service, created.id, SUCCEEDED)
    assert done.status == SUCCEEDED, done
    deliveries = sandbox.fake("kwik", KwikFake).deliveries
    assert deliveries and all(d.status == 200 for d in deliveries)
    assert (await transitions(pool, created.id))[-1] == "SUCCEEDED"


# --- each chaos switch does what the guide says, and the service copes ------------------------

async def test_late_callback_arrives_late_and_changes_nothing_twice(
        demo: Demo, pool: asyncpg.Pool) -> None:
    service, sandbox = demo
    gateway = sandbox.fake("gateway", GatewayFake)
    armed = await control(gateway.base_url, next_callback="late", late_seconds=1.5)
    assert armed["next_callback"] == "late"
    before = len(gateway.deliveries)
    created = await gateway_payment(service)
    await asyncio.sleep(0.8)  # the callback would have come after 0.2 s
    assert len(gateway.deliveries) == before
    # The reconciler's poll does not wait for it.
    assert (await wait_for(service, created.id, SUCCEEDED)).status == SUCCEEDED
    await _until(lambda: len(gateway.deliveries) > before)
    assert await transitions(pool, created.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]


async def test_twice_is_a_duplicate(demo: Demo, pool: asyncpg.Pool) -> None:
    service, sandbox = demo
    await control(sandbox.fake("gateway", GatewayFake).base_url, next_callback="twice")
    before = len(sandbox.fake("gateway", GatewayFake).deliveries)
    created = await gateway_payment(service)
    await _until(lambda: len(sandbox.fake("gateway", GatewayFake).deliveries) >= before + 2)
    first, second = sandbox.fake("gateway", GatewayFake).deliveries[before:before + 2]
    assert first.body == second.body and first.status == second.status == 200
    assert (await wait_for(service, created.id, SUCCEEDED)).status == SUCCEEDED
    assert await transitions(pool, created.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]
    callbacks = [e for e in await exchanges(service, created.id)
                 if e.kind == pb.ProviderExchange.KIND_CALLBACK]
    assert sorted(e.detail for e in callbacks) == ["APPLIED", "DUPLICATE"]


async def test_out_of_order_final_first_then_stale_progress(
        demo: Demo, pool: asyncpg.Pool) -> None:
    service, sandbox = demo
    await control(sandbox.fake("gateway", GatewayFake).base_url, next_callback="out_of_order")
    before = len(sandbox.fake("gateway", GatewayFake).deliveries)
    created = await gateway_payment(service)
    await _until(lambda: len(sandbox.fake("gateway", GatewayFake).deliveries) >= before + 2)
    final, progress = sandbox.fake("gateway", GatewayFake).deliveries[before:before + 2]
    assert b'"status":2' in final.body and b'"status":1' in progress.body
    await asyncio.sleep(0.3)
    # The late "in progress" never overwrites SUCCEEDED.
    assert (await wait_for(service, created.id, SUCCEEDED)).status == SUCCEEDED
    assert await transitions(pool, created.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]


async def test_forged_callback_is_refused_and_the_provider_is_asked(
        demo: Demo, pool: asyncpg.Pool) -> None:
    service, sandbox = demo
    await control(sandbox.fake("gateway", GatewayFake).base_url, next_callback="forged")
    before = len(sandbox.fake("gateway", GatewayFake).deliveries)
    created = await gateway_payment(service)
    await _until(lambda: len(sandbox.fake("gateway", GatewayFake).deliveries) > before)
    assert sandbox.fake("gateway", GatewayFake).deliveries[before].status == 401
    assert (await wait_for(service, created.id, SUCCEEDED)).status == SUCCEEDED
    assert await transitions(pool, created.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]
    refused = [e for e in await exchanges(service, created.id)
               if e.kind == pb.ProviderExchange.KIND_CALLBACK]
    assert [e.detail.split(":")[0] for e in refused] == ["REJECTED"]
    assert refused[0].request_body == ""  # an unverified body is not replayed to support


async def test_never_called_back_the_reconciler_finds_out(
        demo: Demo, pool: asyncpg.Pool) -> None:
    service, sandbox = demo
    await control(sandbox.fake("gateway", GatewayFake).base_url, next_callback="never")
    before = len(sandbox.fake("gateway", GatewayFake).deliveries)
    created = await gateway_payment(service)
    assert (await wait_for(service, created.id, SUCCEEDED)).status == SUCCEEDED
    assert len(sandbox.fake("gateway", GatewayFake).deliveries) == before
    ops = [e.operation for e in await exchanges(service, created.id)]
    assert ops[0] != ops[-1] and len(ops) >= 2  # the create, then at least one status poll
    assert await transitions(pool, created.id) == ["PENDING", "PROCESSING", "SUCCEEDED"]


@pytest.mark.parametrize("fault", ["timeout", "error_500_after"])
async def test_lost_answer_is_unknown_then_reconciled(
        demo: Demo, pool: asyncpg.Pool, fault: str) -> None:
    service, sandbox = demo
    await control(sandbox.fake("gateway", GatewayFake).base_url, next_response=fault,
                  next_callback="never")
    created = await gateway_payment(service)
    # The provider took it but we could not tell: never FAILED without evidence.
    assert created.status == payment_pb2.STATUS_UNKNOWN, created
    assert (await wait_for(service, created.id, SUCCEEDED)).status == SUCCEEDED
    assert await transitions(pool, created.id) == [
        "PENDING", "UNKNOWN", "SUCCEEDED"]
    first = (await exchanges(service, created.id))[0]
    assert first.http_status == (0 if fault == "timeout" else 500)


async def test_refused_with_500_is_unknown_and_never_succeeds_unseen(
        demo: Demo, pool: asyncpg.Pool) -> None:
    service, sandbox = demo
    await control(sandbox.fake("gateway", GatewayFake).base_url, next_response="error_500")
    created = await gateway_payment(service)
    assert created.status == payment_pb2.STATUS_UNKNOWN, created
    # the fake refused it before processing
    assert created.id not in sandbox.fake("gateway", GatewayFake).orders
    await asyncio.sleep(1.5)
    now = await wait_for(service, created.id, SUCCEEDED, timeout=0)
    # Whatever the reconciler concluded, it did not invent a success the provider never had.
    assert now.status != SUCCEEDED or created.id in sandbox.fake("gateway", GatewayFake).orders
    assert (await transitions(pool, created.id))[:2] == ["PENDING", "UNKNOWN"]


# --- the exchange log ------------------------------------------------------------------------

async def test_exchange_log_in_order_masked_and_tenant_scoped(demo: Demo) -> None:
    service, _ = demo
    created = await gateway_payment(service)
    await wait_for(service, created.id, SUCCEEDED)
    await service.stub.RefreshPayment(pb.RefreshPaymentRequest(payment_id=created.id),
                                      metadata=auth())
    log = await exchanges(service, created.id)
    kinds = [e.kind for e in log]
    assert kinds[0] == pb.ProviderExchange.KIND_REQUEST
    assert pb.ProviderExchange.KIND_CALLBACK in kinds
    assert kinds[-1] == pb.ProviderExchange.KIND_REQUEST  # the refresh came last
    first = log[0]
    assert first.method == "POST" and first.path.endswith("/payment_c2b")
    assert first.http_status == 200 and first.latency_ms > 0
    assert created.id in first.request_body
    stamps = [e.at.ToDatetime() for e in log]
    assert stamps == sorted(stamps)

    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await exchanges(service, created.id, tenant="globex")
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND


async def test_no_secret_or_number_in_any_exchange_log(demo: Demo, pool: asyncpg.Pool) -> None:
    """Scan every exchange of every payment the demo made: each provider's flow, run here
    again so the scan never depends on which tests ran before it in this process (pytest-xdist
    may send them elsewhere), and whatever chaos the module's other tests left."""
    for flow in (test_simulator_flow, test_paykassma_flow_settles_by_postback,
                 test_kkiapay_flow_widget_then_webhook, test_jambopay_flow_bill_commit):
        await flow(demo)
    for flow_with_pool in (test_gateway_flow_settles_by_signed_callback,
                           test_kwik_flow_debit_order_paid_by_the_bank):
        await flow_with_pool(demo, pool)
    service, _ = demo
    secrets = {v for account in service.app.settings.accounts
               for k, v in account.settings.items()
               if re.search(r"key|secret|password|token", k) and len(v) >= 8}
    assert len(secrets) >= 10
    numbers = {"254712345678", "712345678", "2290197000000", "14234567890",
               ACCOUNT_FOR["paid"]}
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM payments WHERE tenant = 'acme'")]
    assert len(ids) >= 6
    seen = 0
    for payment_id in ids:
        for e in await exchanges(service, payment_id):
            text = " ".join((e.path, e.request_body, e.response_body, e.detail))
            seen += 1
            for secret in secrets:
                assert secret not in text, (payment_id, e.operation)
            for number in numbers:
                assert number not in text, (payment_id, e.operation, number)
    # At least each HTTP provider's request and the callback or poll that settled it.
    assert seen >= 10


async def test_retention_purges_old_exchanges_and_journal(demo: Demo, pool: asyncpg.Pool) -> None:
    from datetime import UTC, datetime, timedelta

    from malipo.store.retention import purge_exchange_log

    service, _ = demo
    created = await gateway_payment(service)
    await wait_for(service, created.id, SUCCEEDED)
    assert await exchanges(service, created.id)
    kept = await pool.fetchval("SELECT count(*) FROM provider_exchanges")
    nothing = await purge_exchange_log(pool, datetime.now(UTC) - timedelta(days=1))
    assert (nothing.exchanges, nothing.callback_deliveries) == (0, 0)
    assert await pool.fetchval("SELECT count(*) FROM provider_exchanges") == kept
    await pool.execute("UPDATE provider_exchanges SET at = at - interval '40 days' "
                       "WHERE payment_id = $1", created.id)
    await pool.execute("UPDATE callback_journal SET received_at = received_at - interval "
                       "'40 days' WHERE id IN (SELECT journal_id FROM callback_events "
                       "WHERE payment_id = $1)", created.id)
    purged = await purge_exchange_log(pool, datetime.now(UTC) - timedelta(days=30))
    assert purged.exchanges >= 1 and purged.callback_deliveries >= 1
    assert purged.callback_events >= 1
    assert await exchanges(service, created.id) == []
    assert await pool.fetchval("SELECT count(*) FROM provider_exchanges") == kept - purged.exchanges


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
