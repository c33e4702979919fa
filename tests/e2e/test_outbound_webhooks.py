# pyright: basic
"""Signed outbound webhooks end to end: WebhookService over gRPC, payments through the
simulator, events POSTed to real aiohttp receivers on 127.0.0.1 that check every signature
with the Standard Webhooks algorithm written out from the specification, not with our signer
(tests/webhook_receiver.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, cast

import asyncpg
import grpc
import pytest
from prometheus_client import REGISTRY

from malipo.config import WebhookConfig
from malipo.payments.v1 import webhooks_pb2
from malipo.payments.v1.webhooks_pb2_grpc import WebhookServiceStub
from malipo.webhooks.signing import new_secret
from tests.e2e.test_payments_api import details
from tests.harness import Running, auth, create_request, running, settings_for
from tests.webhook_receiver import Receiver, eventually, receivers

__all__ = ["receivers"]  # the fixture

if TYPE_CHECKING:
    from malipo.payments.v1.webhooks_pb2_grpc import WebhookServiceAsyncStub

pb = webhooks_pb2
ACTIVE, FAILING = pb.WEBHOOK_ENDPOINT_STATE_ACTIVE, pb.WEBHOOK_ENDPOINT_STATE_FAILING
FAST: dict[str, Any] = {"webhook_poll_s": 0.05, "webhook_timeout_s": 2.0,
                        "webhook_lease_s": 6.0, "webhook_backoff_first_s": 0.05,
                        "webhook_backoff_max_s": 0.2}


@pytest.fixture
async def malipo(database_url: str) -> AsyncIterator[Running]:
    """One Malipo per test: a test that starts its own must be the only deliverer."""
    async with running(settings_for(database_url, **FAST)) as service:
        yield service


@pytest.fixture(autouse=True)
async def no_endpoints_left(database_url: str) -> AsyncIterator[None]:
    """Each test's endpoints end with it (their receivers are gone)."""
    yield
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM webhook_endpoints")
    finally:
        await conn.close()


def posts(outcome: str) -> float:
    """malipo_webhook_posts_total{outcome} of this process (the tests' Malipos run in it)."""
    return REGISTRY.get_sample_value("malipo_webhook_posts_total",
                                     {"outcome": outcome}) or 0.0


def hooks(service: Running) -> WebhookServiceAsyncStub:
    return cast("WebhookServiceAsyncStub", WebhookServiceStub(service.channel))


async def register(service: Running, receiver: Receiver,
                   tenant: str = "acme") -> pb.WebhookEndpoint:
    reply = await hooks(service).CreateWebhookEndpoint(pb.CreateWebhookEndpointRequest(
        idempotency_key=f"hook-{uuid.uuid4()}", url=receiver.url, description="orders team"),
        metadata=auth(tenant))
    receiver.secret = reply.secret
    return reply.endpoint


async def pay(service: Running, count: int, tenant: str = "acme") -> list[str]:
    return [(await service.stub.CreatePayment(create_request(f"w-{uuid.uuid4()}"),
                                              metadata=auth(tenant))).payment.id
            for _ in range(count)]


async def logged(service: Running, after: int, tenant: str = "acme") -> list[int]:
    """The tenant's events after `after`, from the log itself."""
    assert service.app.pool is not None
    rows = await service.app.pool.fetch(
        "SELECT sequence FROM events WHERE tenant = $1 AND sequence > $2 ORDER BY sequence",
        tenant, after)
    return [r["sequence"] for r in rows]


async def settled(service: Running, payment_ids: list[str]) -> bool:
    assert service.app.pool is not None
    done = await service.app.pool.fetchval(
        "SELECT count(DISTINCT payment_id) FROM events WHERE payment_id = ANY($1) "
        "AND new_status = 'SUCCEEDED'", payment_ids)
    return done == len(payment_ids)


async def test_endpoint_rpcs_validate_input_and_keep_tenants_apart(
        malipo: Running, receivers: Callable[..., Any]) -> None:
    receiver = await receivers()
    stub = hooks(malipo)
    request = pb.CreateWebhookEndpointRequest(idempotency_key=f"k-{uuid.uuid4()}",
                                              url=receiver.url)
    created = await stub.CreateWebhookEndpoint(request, metadata=auth())
    assert created.endpoint.id.startswith("whe_")
    assert created.secret.startswith("whsec_")
    assert created.endpoint.state == ACTIVE and not created.endpoint.from_config
    replay = await stub.CreateWebhookEndpoint(request, metadata=auth())
    assert (replay.endpoint.id, replay.secret) == (created.endpoint.id, created.secret)
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await stub.CreateWebhookEndpoint(pb.CreateWebhookEndpointRequest(
            idempotency_key=request.idempotency_key, url=receiver.url + "2"), metadata=auth())
    assert reused.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details(reused.value)[0].reason == "IDEMPOTENCY_KEY_REUSED"

    for url in ("http://hooks.example.com/in", "ftp://127.0.0.1/", "https://u:p@x.example/", "",
                "https://169.254.169.254/latest/meta-data/", "https://[fd00::1]/in"):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.CreateWebhookEndpoint(pb.CreateWebhookEndpointRequest(
                idempotency_key=f"k-{uuid.uuid4()}", url=url), metadata=auth())
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in details(bad.value)[1].field_violations] == ["url"]

    listed = (await stub.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(),
                                              metadata=auth())).endpoints
    assert [e.id for e in listed] == [created.endpoint.id]
    assert created.secret not in str(listed)
    theirs = (await stub.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(),
                                              metadata=auth("globex"))).endpoints
    assert list(theirs) == []
    for call in (stub.DeleteWebhookEndpoint(pb.DeleteWebhookEndpointRequest(
                     endpoint_id=created.endpoint.id), metadata=auth("globex")),
                 stub.RedeliverWebhooks(pb.RedeliverWebhooksRequest(
                     endpoint_id=created.endpoint.id, from_sequence=1),
                     metadata=auth("globex"))):
        with pytest.raises(grpc.aio.AioRpcError) as hidden:
            await call
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    for sequence in (0, created.endpoint.delivered_through + 2):
        with pytest.raises(grpc.aio.AioRpcError) as out:
            await stub.RedeliverWebhooks(pb.RedeliverWebhooksRequest(
                endpoint_id=created.endpoint.id, from_sequence=sequence), metadata=auth())
        assert out.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await stub.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest())
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

    await stub.DeleteWebhookEndpoint(pb.DeleteWebhookEndpointRequest(
        endpoint_id=created.endpoint.id), metadata=auth())
    after = await stub.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(), metadata=auth())
    assert list(after.endpoints) == []


async def test_new_events_go_out_without_waiting_for_the_poll(
        database_url: str, receivers: Callable[..., Any]) -> None:
    """The hub hears each relay's NOTIFY and wakes the dispatcher: with a poll a minute
    apart, a payment's events still reach an idle endpoint within seconds."""
    receiver = await receivers()
    slow_poll: dict[str, Any] = {**FAST, "webhook_poll_s": 60.0}
    async with running(settings_for(database_url, **slow_poll)) as svc:
        await asyncio.sleep(0.2)  # the dispatcher's first check is behind it: a poll is 60 s off
        endpoint = await register(svc, receiver)
        ours = await pay(svc, 1)
        await eventually(lambda: settled(svc, ours), "payment settled")
        expected = await logged(svc, endpoint.delivered_through)
        await eventually(lambda: set(expected) <= set(receiver.accepted_sequences()),
                         "its events acknowledged", timeout_s=10.0)


async def test_signed_events_arrive_in_order_after_refused_attempts(
        malipo: Running, receivers: Callable[..., Any]) -> None:
    receiver = await receivers(fail_first=3)
    refused_before = posts("refused")
    endpoint = await register(malipo, receiver)
    ours = await pay(malipo, 3)
    await pay(malipo, 1, tenant="globex")
    await eventually(lambda: settled(malipo, ours), "payments settled")
    expected = await logged(malipo, endpoint.delivered_through)
    await eventually(lambda: set(expected) <= set(receiver.accepted_sequences()),
                     "every event acknowledged")

    assert all(a.verified for a in receiver.attempts)
    assert receiver.accepted_sequences()[:len(expected)] == expected  # in order, no gap
    assert [a.answered for a in receiver.attempts[:3]] == [503, 503, 503]
    assert posts("refused") - refused_before == 3
    # The refused event was retried under the same webhook-id, then accepted.
    assert {a.msg_id for a in receiver.attempts[:4]} == {f"{endpoint.id}_{expected[0]}"}
    assert {a.body["data"]["tenant"] for a in receiver.attempts} == {"acme"}
    by_payment: dict[str, list[str]] = {}
    for a in receiver.accepted:
        data = a.body["data"]
        assert (data["amount_minor"], data["currency"]) == (1000, "KES")
        by_payment.setdefault(data["payment_id"], []).append(data["new_status"])
    assert {p: by_payment[p] for p in ours} == {
        p: ["PENDING", "PROCESSING", "SUCCEEDED"] for p in ours}
    listed = (await hooks(malipo).ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(),
                                                       metadata=auth())).endpoints
    mine = next(e for e in listed if e.id == endpoint.id)
    assert mine.delivered_through >= expected[-1]
    assert (mine.state, mine.attempts, mine.last_error) == (ACTIVE, 0, "")


async def test_a_restart_mid_delivery_loses_nothing_and_keeps_order(
        database_url: str, receivers: Callable[..., Any]) -> None:
    receiver = await receivers(hold_at=4)
    settings = settings_for(database_url, **FAST)
    async with running(settings) as first:
        endpoint = await register(first, receiver)
        before = await pay(first, 2)
        await eventually(lambda: len(receiver.attempts) >= 4, "a delivery in flight")
    held = receiver.attempts[3]  # its answer never reached the stopped Malipo
    receiver.release.set()
    async with running(settings) as second:
        after = await pay(second, 2)
        await eventually(lambda: settled(second, before + after), "payments settled")
        expected = await logged(second, endpoint.delivered_through)
        await eventually(lambda: set(expected) <= set(receiver.accepted_sequences()),
                         "every event acknowledged")
        assert second.app.webhooks is not None and second.app.webhooks.attempts > 0

    assert all(a.verified for a in receiver.attempts)
    sequences = [a.sequence for a in receiver.attempts]
    assert sequences == sorted(sequences)  # never an older event after a newer one
    first_seen = list(dict.fromkeys(a.sequence for a in receiver.accepted))
    assert first_seen[:len(expected)] == expected
    # The one cut off by the restart came again, with the same id for de-duplication.
    assert [a.msg_id for a in receiver.attempts].count(held.msg_id) >= 2


async def test_refused_past_the_retry_budget_turns_failing_until_redelivered(
        database_url: str, receivers: Callable[..., Any]) -> None:
    receiver = await receivers(refuse=True)
    async with running(settings_for(database_url, **FAST,
                                    webhook_retry_for_s=1.0)) as service:
        stub = hooks(service)
        endpoint = await register(service, receiver)
        ours = await pay(service, 2)

        async def failing() -> bool:
            listed = await stub.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(),
                                                     metadata=auth())
            return any(e.id == endpoint.id and e.state == FAILING for e in listed.endpoints)

        await eventually(failing, "endpoint FAILING")
        listed = await stub.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(),
                                                 metadata=auth())
        mine = next(e for e in listed.endpoints if e.id == endpoint.id)
        assert mine.last_error == "HTTP 503" and mine.attempts >= 2
        assert mine.HasField("failing_since")
        assert mine.delivered_through == endpoint.delivered_through
        tried = len(receiver.attempts)
        assert {a.sequence for a in receiver.attempts} == {endpoint.delivered_through + 1}
        await eventually(lambda: settled(service, ours), "payments settled")
        await asyncio.sleep(0.5)  # ten poll intervals: a FAILING endpoint is left alone
        assert len(receiver.attempts) == tried

        receiver.refuse = False
        first = endpoint.delivered_through + 1
        redelivered = await stub.RedeliverWebhooks(pb.RedeliverWebhooksRequest(
            endpoint_id=endpoint.id, from_sequence=first), metadata=auth())
        assert redelivered.endpoint.state == ACTIVE
        assert redelivered.endpoint.delivered_through == first - 1
        expected = await logged(service, endpoint.delivered_through)
        await eventually(lambda: set(expected) <= set(receiver.accepted_sequences()),
                         "every event acknowledged after the redelivery")
        assert receiver.accepted_sequences()[:len(expected)] == expected

        # Again from the second event: the same webhook-ids as the first time.
        ids = [a.msg_id for a in receiver.accepted]
        await stub.RedeliverWebhooks(pb.RedeliverWebhooksRequest(
            endpoint_id=endpoint.id, from_sequence=expected[1]), metadata=auth())
        await eventually(lambda: len(receiver.accepted) >= 2 * len(expected) - 1,
                         "second redelivery")
        assert [a.msg_id for a in receiver.accepted][len(ids):len(ids) + len(expected) - 1] \
            == ids[1:len(expected)]
        assert all(a.verified for a in receiver.attempts)


async def test_two_processes_never_deliver_one_endpoint_at_once(
        database_url: str, receivers: Callable[..., Any]) -> None:
    receiver = await receivers(delay_s=0.02)
    settings = settings_for(database_url, **FAST)
    async with running(settings) as a, running(settings_for(database_url, **FAST)) as b:
        endpoint = await register(a, receiver)
        ours = await pay(a, 3) + await pay(b, 3)
        await eventually(lambda: settled(a, ours), "payments settled")
        expected = await logged(a, endpoint.delivered_through)
        await eventually(lambda: set(expected) <= set(receiver.accepted_sequences()),
                         "every event acknowledged")
        assert a.app.webhooks is not None and b.app.webhooks is not None
        assert a.app.webhooks.attempts + b.app.webhooks.attempts == len(receiver.attempts)
    assert receiver.max_in_flight == 1
    assert receiver.accepted_sequences()[:len(expected)] == expected
    assert all(a.verified for a in receiver.attempts)


async def test_config_file_endpoints_sign_with_their_secret_and_leave_with_the_config(
        database_url: str, receivers: Callable[..., Any]) -> None:
    receiver = await receivers(secret=new_secret())
    configured = [WebhookConfig(tenant="globex", url=receiver.url, secret=receiver.secret)]
    async with running(settings_for(database_url, **FAST, webhooks=configured)) as service:
        stub = hooks(service)
        [endpoint] = (await stub.ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(),
                                                      metadata=auth("globex"))).endpoints
        assert endpoint.from_config and endpoint.url == receiver.url
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.DeleteWebhookEndpoint(pb.DeleteWebhookEndpointRequest(
                endpoint_id=endpoint.id), metadata=auth("globex"))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        theirs = await pay(service, 1, tenant="globex")
        await eventually(lambda: settled(service, theirs), "payment settled")
        expected = await logged(service, endpoint.delivered_through, tenant="globex")
        await eventually(lambda: set(expected) <= set(receiver.accepted_sequences()),
                         "every event acknowledged")
        assert all(a.verified for a in receiver.attempts)
    async with running(settings_for(database_url, **FAST)) as service:
        left = await hooks(service).ListWebhookEndpoints(pb.ListWebhookEndpointsRequest(),
                                                         metadata=auth("globex"))
        assert list(left.endpoints) == []


async def test_a_config_endpoint_moved_to_another_url_is_delivered_only_there(
        database_url: str, receivers: Callable[..., Any]) -> None:
    """A URL edited in the config file: the old endpoint leaves with the old entry, the new
    one (its id hashes the URL) takes the events committed after the restart."""
    secret = new_secret()
    old, new = await receivers(secret=secret), await receivers(secret=secret)
    await configured_and_paid(database_url, old)
    await configured_and_paid(database_url, new)
    assert not set(old.accepted_sequences()) & set(new.accepted_sequences())
    assert all(a.verified for a in old.attempts + new.attempts)


async def configured_and_paid(database_url: str, receiver: Receiver) -> None:
    """A Malipo whose config file names only `receiver`: its payment's events reach it."""
    configured = [WebhookConfig(tenant="globex", url=receiver.url, secret=receiver.secret)]
    async with running(settings_for(database_url, **FAST, webhooks=configured)) as service:
        [endpoint] = (await hooks(service).ListWebhookEndpoints(
            pb.ListWebhookEndpointsRequest(), metadata=auth("globex"))).endpoints
        assert endpoint.url == receiver.url
        theirs = await pay(service, 1, tenant="globex")
        await eventually(lambda: settled(service, theirs), "payment settled")
        expected = await logged(service, endpoint.delivered_through, tenant="globex")
        await eventually(lambda: set(expected) <= set(receiver.accepted_sequences()),
                         "every event acknowledged")
