# pyright: basic
"""Start the real service in this process on real sockets, and talk to it over gRPC."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

from malipo.bootstrap import App
from malipo.config import AccountConfig, PolicyConfig, Settings
from malipo.payments.v1 import money_pb2, payment_pb2, payment_service_pb2
from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub

if TYPE_CHECKING:
    from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceAsyncStub

TENANT_KEYS = {"acme": "key-acme-0123456789", "globex": "key-globex-0123456789"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def auth(tenant: str = "acme") -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TENANT_KEYS[tenant]}"),)


@dataclass
class Running:
    app: App
    channel: grpc.aio.Channel
    stub: PaymentServiceAsyncStub

    @property
    def callback_base(self) -> str:
        return f"http://{self.app.http_address}"

    def connector(self, provider: str, account: str = "default") -> Any:
        assert self.app.connectors is not None
        return self.app.connectors.get(provider, account)


def settings_for(database_url: str, *, accounts: Sequence[AccountConfig] | None = None,
                 policies: Mapping[str, PolicyConfig] | None = None,
                 **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "grpc_listen": "127.0.0.1:0",
        "http_listen": f"127.0.0.1:{free_port()}",
        "api_keys": ",".join(f"{t}={k}" for t, k in TENANT_KEYS.items()),
        "accounts": list(accounts or [AccountConfig(provider="simulator",
                                                    settings={"settle_after_s": "0.3"})]),
        "policies": dict(policies or {"simulator": PolicyConfig(
            start_after_s=0.2, interval_s=0.2, backoff=1.0, max_interval_s=1.0,
            submit_grace_s=1.0, submit_give_up_s=30.0)}),
        "reconcile_interval_s": 0.1, "heartbeat_s": 1.0,
    }
    return Settings(**{**values, **extra})


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    app = App(settings)
    await app.start()
    channel = grpc.aio.insecure_channel(app.grpc_address)
    try:
        yield Running(app, channel, PaymentServiceStub(channel))
    finally:
        await channel.close()
        await app.stop(grace_s=1.0)


def create_request(key: str, *, phone: str = "+254712345600", amount: int = 1000,
                   currency: str = "KES", provider: str = "simulator",
                   **fields: Any) -> payment_service_pb2.CreatePaymentRequest:
    return payment_service_pb2.CreatePaymentRequest(
        idempotency_key=key, provider=provider,
        amount=money_pb2.Money(amount_minor=amount, currency=currency),
        customer=payment_pb2.Customer(phone_number=phone), **fields,
    )
