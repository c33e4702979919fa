# pyright: basic
"""Items 18 and 19: TLS/mTLS (an untrusted client CA is refused), rate, concurrency and
message-size limits answered RESOURCE_EXHAUSTED with RetryInfo; audit actor on every event."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

import aiohttp
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from malipo.bootstrap import App
from malipo.payments.v1 import payment_service_pb2
from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub
from tests.harness import auth, create_request, running, settings_for
from tests.reliability.certs import CertificateAuthority

pytestmark = pytest.mark.reliability
pb = payment_service_pb2


def _channel(app: App, ca: Path, client: tuple[Path, Path] | None) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client[1].read_bytes() if client else None,
        certificate_chain=client[0].read_bytes() if client else None)
    return grpc.aio.secure_channel(app.grpc_address, creds,
                                   options=[("grpc.ssl_target_name_override", "localhost")])


async def test_mtls_accepts_trusted_clients_and_refuses_an_untrusted_ca(
        database_url: str, tmp_path: Path) -> None:
    ours, theirs = CertificateAuthority(tmp_path, "ours"), CertificateAuthority(tmp_path, "evil")
    server = ours.issue("localhost", server=True)
    good, bad = ours.issue("client", server=False), theirs.issue("client", server=False)
    settings = settings_for(database_url, tls_cert=server.cert, tls_key=server.key,
                            tls_client_ca=ours.issued.cert,
                            http_tls_client_ca=ours.issued.cert)
    async with running(settings) as service:
        app = service.app
        async with _channel(app, ours.issued.cert, (good.cert, good.key)) as channel:
            made = await PaymentServiceStub(channel).CreatePayment(
                create_request(f"tls-{uuid.uuid4()}"), metadata=auth(), timeout=10)
            assert made.payment.id
        for client in ((bad.cert, bad.key), None):
            async with _channel(app, ours.issued.cert, client) as channel:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await PaymentServiceStub(channel).ListProviders(
                        pb.ListProvidersRequest(), metadata=auth(), timeout=5)
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # Plain text to the TLS port never reaches a handler either.
        async with grpc.aio.insecure_channel(app.grpc_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await PaymentServiceStub(channel).ListProviders(
                    pb.ListProvidersRequest(), metadata=auth(), timeout=5)
        # The callback listener: TLS, and a client certificate from our CA required.
        url = f"https://localhost:{app.http_address.rsplit(':', 1)[1]}/healthz"
        for client, ok in (((good.cert, good.key), True), ((bad.cert, bad.key), False)):
            context = ssl.create_default_context(cafile=ours.issued.cert)
            context.load_cert_chain(*client)
            async with aiohttp.ClientSession() as http:
                if ok:
                    async with http.get(url, ssl=context) as answer:
                        assert answer.status == 200
                else:
                    with pytest.raises(aiohttp.ClientError):
                        async with http.get(url, ssl=context) as answer:
                            await answer.read()
        assert settings.callback_base().startswith("https://")


def _retry_delay(error: grpc.aio.AioRpcError) -> float:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    infos = [error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()]
    found: dict[str, object] = {}
    for detail in status.details:
        for info in infos:
            if detail.Is(info.DESCRIPTOR):
                detail.Unpack(info)
                found[info.DESCRIPTOR.name] = info
    assert found["ErrorInfo"].reason == "RATE_LIMITED"  # type: ignore[attr-defined]
    retry = found["RetryInfo"].retry_delay  # type: ignore[attr-defined]
    return retry.seconds + retry.nanos / 1e9


async def test_per_tenant_rate_limit_is_resource_exhausted_with_retry_info(
        database_url: str) -> None:
    settings = settings_for(database_url, rate_limit_per_s=2.0, rate_limit_burst=3)
    async with running(settings) as service:
        request = pb.ListProvidersRequest()
        for _ in range(3):
            await service.stub.ListProviders(request, metadata=auth("acme"))
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await service.stub.ListProviders(request, metadata=auth("acme"))
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert 0 < _retry_delay(limited.value) <= 0.5
        # Another tenant has its own bucket.
        await service.stub.ListProviders(request, metadata=auth("globex"))
        # A refused create stores nothing and calls no provider.
        key = f"limited-{uuid.uuid4()}"
        with pytest.raises(grpc.aio.AioRpcError):
            await service.stub.CreatePayment(create_request(key), metadata=auth("acme"))
        assert service.app.pool is not None
        assert await service.app.pool.fetchval(
            "SELECT count(*) FROM payments WHERE idempotency_key = $1", key) == 0
        await asyncio.sleep(0.6)
        await service.stub.ListProviders(request, metadata=auth("acme"))


async def test_concurrent_rpc_cap_and_message_size(database_url: str) -> None:
    settings = settings_for(database_url, max_concurrent_rpcs=2, max_message_bytes=64 * 1024)
    async with running(settings) as service:
        assert service.app.edge is not None
        service.app.edge.in_flight = 2    # two calls are being served right now
        with pytest.raises(grpc.aio.AioRpcError) as busy:
            await service.stub.ListProviders(pb.ListProvidersRequest(), metadata=auth())
        assert busy.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _retry_delay(busy.value) > 0
        service.app.edge.in_flight = 0
        await service.stub.ListProviders(pb.ListProvidersRequest(), metadata=auth())
        key = f"huge-{uuid.uuid4()}"
        huge = create_request(key, description="x" * (100 * 1024))
        with pytest.raises(grpc.aio.AioRpcError) as too_big:
            await service.stub.CreatePayment(huge, metadata=auth())
        assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert service.app.pool is not None
        assert await service.app.pool.fetchval(
            "SELECT count(*) FROM payments WHERE idempotency_key = $1", key) == 0


async def test_every_state_change_is_audited_with_actor_and_time(database_url: str) -> None:
    async with running(settings_for(database_url)) as service:
        made = (await service.stub.CreatePayment(create_request(f"audit-{uuid.uuid4()}"),
                                                 metadata=auth())).payment
        assert service.app.pool is not None
        for _ in range(100):
            rows = await service.app.pool.fetch(
                "SELECT new_status, actor, occurred_at FROM events WHERE payment_id = $1 "
                "ORDER BY sequence", made.id)
            if rows and rows[-1]["new_status"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.05)
        assert [r["new_status"] for r in rows][-1] == "SUCCEEDED"
        assert rows[0]["actor"] == "tenant:acme"
        assert all(r["actor"] and r["occurred_at"] for r in rows)
        assert await service.app.pool.fetchval("SELECT count(*) FROM events WHERE actor = ''") == 0


async def test_operator_calls_take_only_their_own_rate_bucket(database_url: str) -> None:
    """An operator key is rate limited as "operator:<name>", once per call; it must not drain
    the bucket shared by calls without a valid key (each operator call used to take a token
    from both)."""
    settings = settings_for(database_url, rate_limit_per_s=0.5, rate_limit_burst=3,
                            operator_keys="ops=operator-key-limits-0001")
    operator = (("authorization", "Bearer operator-key-limits-0001"),)
    resolve = payment_service_pb2.ResolvePaymentRequest(payment_id="pay_none")

    async def code(call: object) -> grpc.StatusCode:
        try:
            await call  # type: ignore[misc]
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    async with running(settings) as service:
        for _ in range(3):
            assert await code(service.stub.ResolvePayment(resolve, metadata=operator)) != (
                grpc.StatusCode.RESOURCE_EXHAUSTED)
        assert await code(service.stub.ResolvePayment(resolve, metadata=operator)) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED)
        # The anonymous bucket is whole: three calls without a key are refused as such.
        for _ in range(3):
            assert await code(service.stub.ListProviders(
                payment_service_pb2.ListProvidersRequest())) == grpc.StatusCode.UNAUTHENTICATED
