# pyright: basic
"""malipo-client against the real server: keys, retries that never double, watch()."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import grpc
import pytest

from malipo.api.errors import to_status
from malipo.client import (
    EXPONENTS,
    InexactAmount,
    MalipoClient,
    RetryPolicy,
    UnknownCurrency,
    decimal_of,
    error_details,
    money,
    to_decimal,
    to_minor,
)
from malipo.domain import money as domain_money
from malipo.domain.errors import Unavailable
from malipo.payments.v1 import events_pb2, payment_pb2, payment_service_pb2
from tests.conftest import ROOT
from tests.harness import (
    TENANT_KEYS,
    Running,
    auth,
    create_request,
    free_port,
    running,
    settings_for,
)

pb = payment_service_pb2

def _example() -> Any:
    path = ROOT / "clients" / "python" / "examples" / "create_and_watch.py"
    spec = importlib.util.spec_from_file_location("create_and_watch", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


create_and_watch = _example().create_and_watch


class FailFirst(grpc.aio.UnaryUnaryClientInterceptor):
    """Lets the first call reach the server, then loses its answer with `code` (and the
    trailers `trailing`, e.g. a google.rpc.Status made by the server's own to_status)."""

    def __init__(self, code: grpc.StatusCode | None,
                 trailing: grpc.aio.Metadata | None = None) -> None:
        self.code = code  # None: lose nothing, only count
        self.trailing = trailing or grpc.aio.Metadata()
        self.keys: list[str] = []
        self.sent_at: list[float] = []

    async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]],
                                    client_call_details: grpc.aio.ClientCallDetails,
                                    request: Any) -> Any:
        self.keys.append(getattr(request, "idempotency_key", ""))
        self.sent_at.append(asyncio.get_running_loop().time())
        call = await continuation(client_call_details, request)
        if self.code is not None and len(self.keys) == 1:
            await call  # the server did the work...
            raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), self.trailing,
                                       details="answer lost (test)")  # ...the answer is lost
        return call


def client_for(service: Running, **kwargs: Any) -> MalipoClient:
    return MalipoClient.connect(service.app.grpc_address, TENANT_KEYS["acme"], **kwargs)


def test_money_table_agrees_with_the_service() -> None:
    assert domain_money._EXPONENTS == EXPONENTS
    for code in EXPONENTS:
        for minor in (0, 1, 150000, 999):
            assert to_decimal(minor, code) == domain_money.Money.of(minor, code).to_decimal()


def test_money_conversions_are_exact_or_refused() -> None:
    assert to_minor(Decimal("1500.00"), "KES") == 150000
    assert to_minor("500", "XOF") == 500
    assert str(to_decimal(150000, "KES")) == "1500.00"
    assert str(to_decimal(500, "XOF")) == "500"
    assert decimal_of(money("12.345", "TND")) == Decimal("12.345")
    with pytest.raises(InexactAmount):
        to_minor("10.5", "UGX")
    with pytest.raises(InexactAmount):
        to_minor("1.001", "KES")
    with pytest.raises(UnknownCurrency):
        to_minor("1", "XYZ")
    with pytest.raises(TypeError):
        to_minor(1.5, "KES")  # type: ignore[arg-type]


def test_client_needs_none_of_the_servers_dependencies() -> None:
    project = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())["project"]
    names = {d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]}
    assert names == {"grpcio", "protobuf", "googleapis-common-protos"}
    code = ("import sys, malipo.client; print(sorted(m for m in sys.modules if m.split('.')[0]"
            " in {'asyncpg', 'aiohttp', 'pydantic', 'pydantic_settings', 'phonenumbers'}"
            " or m.startswith(('malipo.domain', 'malipo.app', 'malipo.api'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


async def test_readme_flow_creates_and_watches_until_final(malipo: Running) -> None:
    events = await create_and_watch(malipo.app.grpc_address, TENANT_KEYS["acme"],
                                    uuid.uuid4().hex)
    assert [(e.old_status, e.new_status) for e in events] == [
        (payment_pb2.STATUS_UNSPECIFIED, payment_pb2.STATUS_PENDING),
        (payment_pb2.STATUS_PENDING, payment_pb2.STATUS_PROCESSING),
        (payment_pb2.STATUS_PROCESSING, payment_pb2.STATUS_SUCCEEDED),
    ]
    assert events[0].amount.amount_minor == 150000


async def test_a_key_is_generated_when_none_is_given(malipo: Running) -> None:
    async with client_for(malipo) as client:
        a = await client.create_payment(create_request(""))
        b = await client.create_payment(create_request(""))
    assert a.idempotency_key.startswith("mc-") and b.idempotency_key.startswith("mc-")
    assert a.id != b.id


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE,
                                  grpc.StatusCode.DEADLINE_EXCEEDED])
async def test_a_lost_answer_is_retried_with_the_same_key_and_pays_once(
        malipo: Running, code: grpc.StatusCode) -> None:
    lose = FailFirst(code)
    retry = RetryPolicy(attempts=3, initial_backoff_s=0.01)
    async with client_for(malipo, interceptors=[lose], retry=retry) as client:
        payment = await client.create_payment(create_request(""))  # the client's own key
    assert len(lose.keys) == 2 and lose.keys[0] == lose.keys[1] == payment.idempotency_key
    listed = await malipo.stub.ListPayments(pb.ListPaymentsRequest(page_size=100),
                                            metadata=auth())
    assert [p.id for p in listed.payments if p.idempotency_key == payment.idempotency_key] \
        == [payment.id]
    assert malipo.connector("simulator").calls_for(payment.id) == 1


async def test_a_retry_waits_for_a_server_that_is_not_up_yet(database_url: str) -> None:
    settings = settings_for(database_url, grpc_listen=f"127.0.0.1:{free_port()}")
    counter = FailFirst(None)
    # One retry: gRPC redials only after its own backoff (about 1 s) and fails calls at once
    # meanwhile, so this succeeds only because a retry waits for the channel to be ready.
    retry = RetryPolicy(attempts=2, initial_backoff_s=0.01, max_backoff_s=0.01)
    client = MalipoClient.connect(settings.grpc_listen, TENANT_KEYS["acme"],
                                  interceptors=[counter], retry=retry)
    try:
        created = asyncio.create_task(client.create_payment(create_request("")))
        while len(counter.keys) < 2 and not created.done():  # the first attempt failed
            await asyncio.sleep(0.01)
        async with running(settings) as service:
            payment = await asyncio.wait_for(created, 15)
            listed = await service.stub.ListPayments(pb.ListPaymentsRequest(page_size=100),
                                                     metadata=auth())
    finally:
        await client.close()
    assert counter.keys == [payment.idempotency_key] * 2
    assert [p.id for p in listed.payments if p.idempotency_key == payment.idempotency_key] \
        == [payment.id]


async def test_a_retry_waits_at_least_the_servers_retry_info_delay(malipo: Running) -> None:
    status = to_status(Unavailable("provider down (test)"))  # RetryInfo: 1 s
    lose = FailFirst(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(*status.trailing_metadata))
    asked = 1.0
    retry = RetryPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.01)
    async with client_for(malipo, interceptors=[lose], retry=retry) as client:
        payment = await client.create_payment(create_request(""))
    assert lose.keys == [payment.idempotency_key] * 2
    # A lower bound only: the backoff alone (at most 0.01 s) would retry far sooner.
    assert lose.sent_at[1] - lose.sent_at[0] >= asked
    assert malipo.connector("simulator").calls_for(payment.id) == 1


async def test_errors_that_retrying_cannot_fix_are_not_retried(malipo: Running) -> None:
    counter = FailFirst(None)
    async with client_for(malipo, interceptors=[counter]) as client:
        k = f"k-{uuid.uuid4()}"
        await client.create_payment(create_request(k))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.create_payment(create_request(k, amount=2000))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert len(counter.keys) == 2  # one call each
    details = error_details(err.value)
    assert details.reason == "IDEMPOTENCY_KEY_REUSED" and details.error_info is not None
    assert details.error_info.domain == "malipo.dev" and details.retry_info is None


async def test_a_bad_request_names_its_fields_in_the_decoded_details(malipo: Running) -> None:
    async with client_for(malipo) as client:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.create_payment(create_request("", currency="XYZ"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(err.value)
    assert details.bad_request is not None
    assert "amount.currency" in [v.field for v in details.bad_request.field_violations]


async def test_watch_survives_a_server_restart_and_resumes_with_no_gap(
        database_url: str) -> None:
    """A tenant of its own: the module's other tests may leave acme's payments in flight on
    this database, and their events could land among the ones this test expects after the
    restart (a CI run failed with a payment id this test did not expect there). An event of
    this test's first payment after the restart still fails it."""
    key = f"key-restart-{uuid.uuid4().hex}"
    settings = settings_for(database_url, grpc_listen=f"127.0.0.1:{free_port()}",
                            api_keys=f"restart={key}")
    target = settings.grpc_listen
    seen: list[events_pb2.StatusEvent] = []
    finals: dict[str, asyncio.Event] = {}

    async def watcher(client: MalipoClient) -> None:
        async for event in client.watch(after_sequence=0, idle_timeout_s=5):
            seen.append(event)
            if event.new_status == payment_pb2.STATUS_SUCCEEDED and event.payment_id in finals:
                finals[event.payment_id].set()

    client = MalipoClient.connect(target, key,
                                  retry=RetryPolicy(attempts=20, initial_backoff_s=0.1))
    task = None
    try:
        async with running(settings):
            first = await client.create_payment(create_request(f"r-{uuid.uuid4()}"))
            finals[first.id] = asyncio.Event()
            task = asyncio.create_task(watcher(client))
            await asyncio.wait_for(finals[first.id].wait(), 10)
        before = len(seen)
        async with running(settings) as second:
            # Created before the watcher is back: its first events come from the replay.
            again = await client.create_payment(create_request(f"r-{uuid.uuid4()}"))
            finals[again.id] = asyncio.Event()
            await asyncio.wait_for(finals[again.id].wait(), 15)
            replay = []
            async for event in MalipoClient(second.channel, key).watch(after_sequence=0):
                replay.append(event)
                if len(replay) == len(seen):
                    break
    finally:
        if task is not None:
            task.cancel()
        await client.close()
    assert before >= 3
    assert {e.payment_id for e in seen[before:]} == {again.id}
    assert [e.sequence for e in seen] == [e.sequence for e in replay]
    assert len({e.sequence for e in seen}) == len(seen)


async def test_watch_gives_up_after_max_reconnects_when_nothing_answers() -> None:
    client = MalipoClient.connect(f"127.0.0.1:{free_port()}", TENANT_KEYS["acme"])
    try:
        with pytest.raises(ConnectionError, match="2 reconnections"):
            async for _ in client.watch(after_sequence=0, max_reconnects=2):
                pass
    finally:
        await client.close()
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


async def test_partial_refunds_through_the_helper(malipo: Running) -> None:
    async with client_for(malipo) as client:
        payment = await client.create_payment(create_request(f"refund-{uuid.uuid4().hex}"))
        settled = await client.wait_final(payment.id)
        assert settled.status == payment_pb2.STATUS_SUCCEEDED
        first = await client.refund_payment(payment_service_pb2.RefundPaymentRequest(
            payment_id=payment.id, amount=money(Decimal("4.00"), "KES")))
        assert first.refund.id.startswith("rf_")
        assert first.refund.amount.amount_minor == 400
        listed = await client.list_refunds(payment.id)
        assert [r.id for r in listed.refunds] == [first.refund.id]
        rest = await client.refund_payment(payment_service_pb2.RefundPaymentRequest(
            payment_id=payment.id))  # no amount: all that remains
        assert rest.refund.amount.amount_minor == settled.amount.amount_minor - 400
