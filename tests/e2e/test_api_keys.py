# pyright: basic
"""API keys as an adopting team rotates them: several keys per tenant, a keys file re-read
when it changes and on SIGHUP (no restart), a development key only on the embedded database,
and no simulator served to anyone who did not configure it."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from malipo.bootstrap import App
from malipo.config import ConfigError, Settings
from malipo.payments.v1 import payment_service_pb2
from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub
from tests.harness import create_request, running, settings_for
from tests.reliability.process import MALIPO, free_port


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


async def answers(stub: Any, key: str) -> grpc.StatusCode:
    try:
        await stub.ListPayments(payment_service_pb2.ListPaymentsRequest(page_size=1),
                                metadata=bearer(key), timeout=5)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def eventually(stub: Any, key: str, code: grpc.StatusCode) -> None:
    async with asyncio.timeout(15):
        while await answers(stub, key) != code:
            await asyncio.sleep(0.05)


async def test_a_tenant_with_two_keys_is_one_tenant(database_url: str) -> None:
    settings = settings_for(database_url, api_keys="shop=old-key-0001,shop=new-key-0002")
    async with running(settings) as service:
        created = await service.stub.CreatePayment(create_request(f"rot-{uuid.uuid4()}"),
                                                   metadata=bearer("old-key-0001"))
        seen = await service.stub.GetPayment(
            payment_service_pb2.GetPaymentRequest(payment_id=created.payment.id),
            metadata=bearer("new-key-0002"))
        assert seen.payment.id == created.payment.id
        assert await answers(service.stub, "other-key") == grpc.StatusCode.UNAUTHENTICATED


async def test_one_key_for_two_tenants_is_refused_at_start(database_url: str) -> None:
    with pytest.raises(ConfigError, match="two tenants"):
        async with running(settings_for(database_url, api_keys="a=same-key,b=same-key")):
            pass


async def test_the_keys_file_is_reread_when_it_changes(database_url: str,
                                                       tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# rotated by the secret store\nshop=key-one-0001\n")
    settings = settings_for(database_url, api_keys="", api_keys_file=keys,
                            api_keys_reload_s=0.05)
    async with running(settings) as service:
        assert await answers(service.stub, "key-one-0001") == grpc.StatusCode.OK
        keys.write_text("shop=key-one-0001\nshop=key-two-0002\n")  # the new key first
        await eventually(service.stub, "key-two-0002", grpc.StatusCode.OK)
        keys.write_text("shop=key-two-0002\n")                        # then the old one goes
        await eventually(service.stub, "key-one-0001", grpc.StatusCode.UNAUTHENTICATED)
        keys.write_text("shop\n")                                      # a broken file...
        await asyncio.sleep(0.5)
        # ...changes nothing
        assert await answers(service.stub, "key-two-0002") == grpc.StatusCode.OK
        keys.write_text("")                                            # nor does an empty one
        await asyncio.sleep(0.5)
        assert await answers(service.stub, "key-two-0002") == grpc.StatusCode.OK


async def test_sighup_reloads_the_keys_of_a_running_server(database_url: str,
                                                           tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("shop=key-one-0001\n")
    grpc_port = free_port()
    env = {"DATABASE_URL": database_url, "MALIPO_API_KEYS_FILE": str(keys),
           "MALIPO_API_KEYS_RELOAD_S": "3600",  # only the signal can reload within the test
           "MALIPO_GRPC_LISTEN": f"127.0.0.1:{grpc_port}",
           "MALIPO_HTTP_LISTEN": f"127.0.0.1:{free_port()}"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(MALIPO, "serve", env={**_path_env(), **env},
                                                    stdout=out, stderr=out)
    try:
        async with asyncio.timeout(30):
            while b"Malipo gRPC" not in log.read_bytes():
                assert proc.returncode is None, log.read_text()
                await asyncio.sleep(0.05)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = PaymentServiceStub(channel)
            assert await answers(stub, "key-one-0001") == grpc.StatusCode.OK
            keys.write_text("shop=key-two-0002\n")
            assert await answers(stub, "key-two-0002") == grpc.StatusCode.UNAUTHENTICATED
            proc.send_signal(signal.SIGHUP)
            await eventually(stub, "key-two-0002", grpc.StatusCode.OK)
            assert await answers(stub, "key-one-0001") == grpc.StatusCode.UNAUTHENTICATED
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert "key-one-0001" not in log.read_text() and "key-two-0002" not in log.read_text()


def _path_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items()
            if not k.startswith("MALIPO_") and k != "DATABASE_URL"}


async def test_no_keys_against_a_real_database_refuses_to_start(database_url: str) -> None:
    app = App(settings_for(database_url, api_keys=""))
    with pytest.raises(ConfigError, match="no API keys"):
        await app.start()
    await app.stop()
    assert not app.dev_key


def test_the_simulator_is_served_only_to_whom_it_is_configured_for() -> None:
    settings = Settings(accounts=[])
    assert settings.provider_accounts() == []  # a real deployment with no accounts: none
    (dev,) = settings.provider_accounts(["dev"])  # the embedded development default
    assert dev.provider == "simulator"
    assert dev.allows("dev") and not dev.allows("shop")


async def test_with_no_accounts_a_real_database_serves_no_simulator(database_url: str) -> None:
    settings = settings_for(database_url, api_keys="shop=key-one-0001").model_copy(
        update={"accounts": []})
    async with running(settings) as service:
        assert service.app.connectors is not None
        assert list(service.app.connectors) == []
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await service.stub.CreatePayment(create_request(f"none-{uuid.uuid4()}"),
                                             metadata=bearer("key-one-0001"))
        assert raised.value.code() in (grpc.StatusCode.NOT_FOUND,
                                       grpc.StatusCode.FAILED_PRECONDITION,
                                       grpc.StatusCode.INVALID_ARGUMENT)


async def test_a_reloaded_tenant_key_may_not_be_an_operator_key(database_url: str,
                                                                 tmp_path: Path) -> None:
    """The start-up rule holds on reload too: the clashing set is refused, the old one stays."""
    keys = tmp_path / "keys"
    keys.write_text("shop=key-one-0001\n")
    settings = settings_for(database_url, api_keys="", api_keys_file=keys,
                            api_keys_reload_s=3600, operator_keys="alice=operator-key-0009")
    async with running(settings) as service:
        keys.write_text("shop=key-one-0001\nshop=operator-key-0009\n")
        assert service.app.reload_keys() is False
        assert await answers(service.stub, "operator-key-0009") != grpc.StatusCode.OK
        assert await answers(service.stub, "key-one-0001") == grpc.StatusCode.OK
