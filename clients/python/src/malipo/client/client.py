"""A thin typed helper over the generated PaymentService stub.

What it adds: the API key on every call, a deadline on every unary call, retries of
UNAVAILABLE and DEADLINE_EXCEEDED that reuse the request's idempotency key and wait at least
the server's RetryInfo delay, a generated key when the caller gives none, and `watch()`,
which reconnects and resumes by itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import grpc

from malipo.client.channel import Tls, create_channel
from malipo.client.retry import RetryPolicy, retryable, wait_before_retry, with_retries
from malipo.payments.v1 import events_pb2, payment_pb2, payment_service_pb2, providers_pb2
from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceStub

if TYPE_CHECKING:
    from malipo.payments.v1.payment_service_pb2_grpc import PaymentServiceAsyncStub

pb = payment_service_pb2
R = TypeVar("R")

DEFAULT_TIMEOUT_S = 10.0
FINAL_STATUSES = frozenset({
    payment_pb2.STATUS_SUCCEEDED, payment_pb2.STATUS_FAILED,
    payment_pb2.STATUS_CANCELLED, payment_pb2.STATUS_REVERSED,
})


def new_idempotency_key() -> str:
    """A fresh random key. Prefer your own: see `MalipoClient.create_payment`."""
    return f"mc-{uuid.uuid4()}"


class MalipoClient:
    """PaymentService with the API key, deadlines and safe retries.

    `timeout_s` bounds each attempt; a call retried `retry.attempts` times may take up to
    that many timeouts plus the backoff between them.
    """

    def __init__(self, channel: grpc.aio.Channel, api_key: str, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S,
                 retry: RetryPolicy | None = None) -> None:
        self.channel = channel
        self.stub: PaymentServiceAsyncStub = PaymentServiceStub(channel)
        self.metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {api_key}"),)
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()

    @classmethod
    def connect(cls, target: str, api_key: str, *, tls: Tls | None = None,
                timeout_s: float = DEFAULT_TIMEOUT_S,
                retry: RetryPolicy | None = None,
                interceptors: list[grpc.aio.ClientInterceptor] | None = None) -> MalipoClient:
        """A client on a new channel to `target`; `close()` it (or use `async with`)."""
        return cls(create_channel(target, tls=tls, interceptors=interceptors), api_key,
                   timeout_s=timeout_s, retry=retry)

    async def close(self) -> None:
        await self.channel.close()

    async def __aenter__(self) -> MalipoClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _unary(self, call: Callable[..., Awaitable[R]], request: object) -> R:
        return await with_retries(
            lambda retrying: call(request, metadata=self.metadata, timeout=self.timeout_s,
                                  wait_for_ready=retrying or None), self.retry)

    # Mutations. A caller that gives no idempotency key gets a generated one, reused by every
    # retry of this call. But the key should be yours, derived from your own record (an order
    # id, an invoice number) and stored before the call: if your process dies after sending
    # and before the answer, only a key you kept lets you ask again without paying twice.

    async def create_payment(self, request: pb.CreatePaymentRequest) -> payment_pb2.Payment:
        """Collect from a customer; the payment after the provider's first answer."""
        response = await self._unary(self.stub.CreatePayment, _with_key(request))
        return response.payment

    async def create_payout(self, request: pb.CreatePayoutRequest) -> payment_pb2.Payment:
        response = await self._unary(self.stub.CreatePayout, _with_key(request))
        return response.payout

    async def confirm_payment(self, request: pb.ConfirmPaymentRequest) -> payment_pb2.Payment:
        response = await self._unary(self.stub.ConfirmPayment, _with_key(request))
        return response.payment

    async def refund_payment(self, request: pb.RefundPaymentRequest
                             ) -> pb.RefundPaymentResponse:
        """Refund all that remains, or `request.amount` of it: the refund this call made
        (its own resource and status) and the payment (REVERSED once refunds reach its
        whole amount)."""
        return await self._unary(self.stub.RefundPayment, _with_key(request))

    async def cancel_payment(self, request: pb.CancelPaymentRequest) -> payment_pb2.Payment:
        response = await self._unary(self.stub.CancelPayment, _with_key(request))
        return response.payment

    # Reads (and RefreshPayment, which only asks the provider) are safe to retry as they are.

    async def get_payment(self, payment_id: str) -> payment_pb2.Payment:
        response = await self._unary(self.stub.GetPayment,
                                     pb.GetPaymentRequest(payment_id=payment_id))
        return response.payment

    async def get_payout(self, payout_id: str) -> payment_pb2.Payment:
        response = await self._unary(self.stub.GetPayout,
                                     pb.GetPayoutRequest(payout_id=payout_id))
        return response.payout

    async def refresh_payment(self, payment_id: str) -> payment_pb2.Payment:
        response = await self._unary(self.stub.RefreshPayment,
                                     pb.RefreshPaymentRequest(payment_id=payment_id))
        return response.payment

    async def list_refunds(self, payment_id: str) -> pb.ListRefundsResponse:
        """A payment's refunds, with the amount refunded and what remains."""
        return await self._unary(self.stub.ListRefunds,
                                 pb.ListRefundsRequest(payment_id=payment_id))

    async def list_payments(self, request: pb.ListPaymentsRequest) -> pb.ListPaymentsResponse:
        return await self._unary(self.stub.ListPayments, request)

    async def list_payouts(self, request: pb.ListPayoutsRequest) -> pb.ListPayoutsResponse:
        return await self._unary(self.stub.ListPayouts, request)

    async def list_providers(self, country: str = "") -> list[providers_pb2.Provider]:
        response = await self._unary(self.stub.ListProviders,
                                     pb.ListProvidersRequest(country=country))
        return list(response.providers)

    async def watch(self, status_filter: events_pb2.StatusFilter | None = None, *,
                    after_sequence: int | None = None, idle_timeout_s: float = 60.0,
                    max_reconnects: int | None = None,
                    ) -> AsyncIterator[events_pb2.StatusEvent]:
        """Status events after `after_sequence` (None: from now on), for ever.

        When the stream breaks (server restart, network, no message within
        `idle_timeout_s` although the server sends heartbeats) it reconnects with the last
        sequence seen, so nothing is missed and nothing is repeated. `max_reconnects` bounds
        the failed reconnections in a row (None: never give up). Stop by leaving the loop.
        With `after_sequence=None`, events committed while the first connection is being
        made are not replayed: pass a cursor (0, or a payment's last_event_sequence) to be
        sure to see everything.
        """
        backoff = RetryPolicy(max_backoff_s=2.0)
        cursor = after_sequence
        failures = 0
        while True:
            delay: float | None = None
            request = pb.WatchStatusRequest(filter=status_filter)
            if cursor is not None:
                request.after_sequence = cursor
            call = self.stub.WatchStatus(request, metadata=self.metadata)
            stream = aiter(call)
            try:
                while True:
                    try:
                        response = await asyncio.wait_for(anext(stream), idle_timeout_s)
                    except StopAsyncIteration:
                        break
                    failures = 0
                    if response.HasField("event"):
                        event = response.event
                        if cursor is not None and event.sequence <= cursor:
                            continue
                        cursor = event.sequence
                        yield event
                    elif cursor is None or response.heartbeat.sequence > cursor:
                        # The server examined the log up to here for this stream: resuming
                        # from it skips only events that did not match the filter.
                        cursor = response.heartbeat.sequence
            except grpc.aio.AioRpcError as exc:
                if not retryable(exc):
                    raise
                delay = wait_before_retry(exc, backoff, failures + 1)
            except TimeoutError:
                pass
            finally:
                call.cancel()
            failures += 1
            if max_reconnects is not None and failures > max_reconnects:
                raise ConnectionError(f"WatchStatus: gave up after {max_reconnects} reconnections")
            await asyncio.sleep(delay if delay is not None else backoff.backoff(failures))

    async def wait_final(self, payment_id: str) -> payment_pb2.Payment:
        """Watch one payment until it reaches a final status; the payment then."""
        async for event in self.watch(events_pb2.StatusFilter(payment_id=payment_id),
                                      after_sequence=0):
            if event.new_status in FINAL_STATUSES:
                break
        return await self.get_payment(payment_id)


K = TypeVar("K", pb.CreatePaymentRequest, pb.CreatePayoutRequest, pb.ConfirmPaymentRequest,
            pb.RefundPaymentRequest, pb.CancelPaymentRequest)


def _with_key(request: K) -> K:
    """The request as given, or a copy with a generated key (the caller's stays untouched)."""
    if request.idempotency_key:
        return request
    keyed = type(request)()
    keyed.CopyFrom(request)
    keyed.idempotency_key = new_idempotency_key()
    return keyed
