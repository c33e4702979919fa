"""PaymentService: convert at the edge, call the use case, convert back.

Every method runs behind the gRPC edge (api/edge.py), which authenticated the caller
(`caller_tenant()`), applied the limits and turns every error into a rich status."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Protocol, cast

import grpc

from malipo.api import convert
from malipo.api.edge import caller_operator, caller_tenant
from malipo.api.errors import Context
from malipo.api.presend import SendingBytes
from malipo.app import exchanges, payments, refunds, review
from malipo.app.commands import ChangePayment, ConfirmPayment
from malipo.app.services import Services
from malipo.domain.errors import MalipoError
from malipo.domain.events import EventFilter, Heartbeat, StatusEvent
from malipo.domain.status import Direction
from malipo.payments.v1 import payment_service_pb2 as pb
from malipo.payments.v1 import payment_service_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["PaymentService"].full_name


class EventSource(Protocol):
    def subscribe(self, event_filter: EventFilter, after_sequence: int | None,
                  /) -> AsyncIterator[StatusEvent | Heartbeat]: ...


class _EventMessages:
    """Each recent event's message, built and serialised once however many streams send it.

    The hub hands the same event to every matching stream; converting it per stream was a
    fifth of the server's time with ten streams per event. Keyed by sequence (unique in the
    log this process serves); a replayed event is the same event. Kept as wire bytes, which
    the WatchStatus registration sends as they are (api/presend.py): a tenth of the memory
    of the message they come from."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._by_sequence: dict[int, bytes] = {}

    def get(self, event: StatusEvent) -> bytes:
        message = self._by_sequence.get(event.sequence)
        if message is None:
            message = convert.event_to_proto(event).SerializeToString()
            self._by_sequence[event.sequence] = message
            if len(self._by_sequence) > self._size:  # drop the oldest entry (insertion order)
                del self._by_sequence[next(iter(self._by_sequence))]
        return message


def _deadline(context: Context) -> float | None:
    # grpc returns None when the caller set no deadline (its stubs say float).
    remaining: float | None = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining  # pyright: ignore[reportUnnecessaryComparison]


class PaymentServicer(pb_grpc.PaymentServiceServicer):
    def __init__(self, services: Services, events: EventSource | None) -> None:
        self._svc = services
        self._events = events
        self._event_messages = _EventMessages()

    async def CreatePayment(self, request: pb.CreatePaymentRequest,
                            context: Context) -> pb.CreatePaymentResponse:
        tenant = caller_tenant()
        cmd = convert.create_from_proto(request, tenant, Direction.COLLECTION)
        payment = await payments.create_payment(self._svc, cmd, _deadline(context))
        return pb.CreatePaymentResponse(payment=convert.payment_to_proto(payment))

    async def CreatePayout(self, request: pb.CreatePayoutRequest,
                           context: Context) -> pb.CreatePayoutResponse:
        tenant = caller_tenant()
        cmd = convert.create_from_proto(request, tenant, Direction.PAYOUT)
        payout = await payments.create_payment(self._svc, cmd, _deadline(context))
        return pb.CreatePayoutResponse(payout=convert.payment_to_proto(payout))

    async def ConfirmPayment(self, request: pb.ConfirmPaymentRequest,
                             context: Context) -> pb.ConfirmPaymentResponse:
        tenant = caller_tenant()
        cmd = ConfirmPayment(tenant, request.idempotency_key, request.payment_id, request.otp,
                             request.provider_transaction_id)
        payment = await payments.confirm_payment(self._svc, cmd, _deadline(context))
        return pb.ConfirmPaymentResponse(payment=convert.payment_to_proto(payment))

    async def GetPayment(self, request: pb.GetPaymentRequest,
                         context: Context) -> pb.GetPaymentResponse:
        tenant = caller_tenant()
        payment = await payments.get_payment(self._svc, tenant, request.payment_id,
                                             Direction.COLLECTION)
        return pb.GetPaymentResponse(payment=convert.payment_to_proto(payment))

    async def GetPayout(self, request: pb.GetPayoutRequest,
                        context: Context) -> pb.GetPayoutResponse:
        tenant = caller_tenant()
        payout = await payments.get_payment(self._svc, tenant, request.payout_id,
                                            Direction.PAYOUT)
        return pb.GetPayoutResponse(payout=convert.payment_to_proto(payout))

    async def ListPayments(self, request: pb.ListPaymentsRequest,
                           context: Context) -> pb.ListPaymentsResponse:
        tenant = caller_tenant()
        query = convert.list_query_from_proto(request, tenant, Direction.COLLECTION)
        page = await payments.list_payments(self._svc, query)
        token = convert.encode_page_token(page[-1]) if len(page) == query.page_size else ""
        return pb.ListPaymentsResponse(payments=[convert.payment_to_proto(p) for p in page],
                                       next_page_token=token)

    async def ListPayouts(self, request: pb.ListPayoutsRequest,
                          context: Context) -> pb.ListPayoutsResponse:
        tenant = caller_tenant()
        query = convert.list_query_from_proto(request, tenant, Direction.PAYOUT)
        page = await payments.list_payments(self._svc, query)
        token = convert.encode_page_token(page[-1]) if len(page) == query.page_size else ""
        return pb.ListPayoutsResponse(payouts=[convert.payment_to_proto(p) for p in page],
                                      next_page_token=token)

    async def RefundPayment(self, request: pb.RefundPaymentRequest,
                            context: Context) -> pb.RefundPaymentResponse:
        cmd = convert.refund_from_proto(request, caller_tenant())
        done = await refunds.refund_payment(self._svc, cmd, _deadline(context))
        return pb.RefundPaymentResponse(
            payment=convert.payment_to_proto(done.payment),
            refund=convert.refund_to_proto(done.refund) if done.refund else None)

    async def ListRefunds(self, request: pb.ListRefundsRequest,
                          context: Context) -> pb.ListRefundsResponse:
        found = await refunds.list_refunds(self._svc, caller_tenant(), request.payment_id)
        return pb.ListRefundsResponse(
            refunds=[convert.refund_to_proto(r) for r in found.refunds],
            refunded=convert.money_to_proto(found.refunded),
            remaining=convert.money_to_proto(found.remaining))

    async def ResolvePayment(self, request: pb.ResolvePaymentRequest,
                             context: Context) -> pb.ResolvePaymentResponse:
        cmd = convert.resolve_from_proto(request, caller_operator())
        done = await review.resolve_payment(self._svc, cmd)
        return pb.ResolvePaymentResponse(payment=convert.payment_to_proto(done.payment),
                                         resolution=convert.resolution_to_proto(done.resolution))

    async def ResolveRefund(self, request: pb.ResolveRefundRequest,
                            context: Context) -> pb.ResolveRefundResponse:
        cmd = convert.resolve_refund_from_proto(request, caller_operator())
        done = await review.resolve_refund(self._svc, cmd)
        return pb.ResolveRefundResponse(payment=convert.payment_to_proto(done.payment),
                                        refund=convert.refund_to_proto(done.refund),
                                        resolution=convert.resolution_to_proto(done.resolution))

    async def CancelPayment(self, request: pb.CancelPaymentRequest,
                            context: Context) -> pb.CancelPaymentResponse:
        tenant = caller_tenant()
        cmd = ChangePayment(tenant, request.idempotency_key, request.payment_id, request.reason)
        payment = await payments.cancel_payment(self._svc, cmd, _deadline(context))
        return pb.CancelPaymentResponse(payment=convert.payment_to_proto(payment))

    async def RefreshPayment(self, request: pb.RefreshPaymentRequest,
                             context: Context) -> pb.RefreshPaymentResponse:
        tenant = caller_tenant()
        payment = await payments.refresh_payment(self._svc, tenant, request.payment_id,
                                                 _deadline(context))
        return pb.RefreshPaymentResponse(payment=convert.payment_to_proto(payment))

    async def ListProviders(self, request: pb.ListProvidersRequest,
                            context: Context) -> pb.ListProvidersResponse:
        tenant = caller_tenant()
        grouped: dict[str, list[str]] = {}
        usable = self._svc.connectors.for_tenant(tenant)
        for c in usable:
            grouped.setdefault(c.provider, []).append(c.account.name)
        providers = []
        for name, accounts in sorted(grouped.items()):
            first = next(c for c in usable if c.provider == name)
            providers.append(convert.provider_to_proto(
                name, sorted(accounts), first.capabilities, first.catalogue(), request.country))
        return pb.ListProvidersResponse(providers=providers)

    async def ListProviderExchanges(self, request: pb.ListProviderExchangesRequest,
                                    context: Context) -> pb.ListProviderExchangesResponse:
        tenant = caller_tenant()
        found = await exchanges.list_provider_exchanges(self._svc, tenant, request.payment_id)
        return pb.ListProviderExchangesResponse(
            exchanges=[convert.exchange_to_proto(e) for e in found])

    async def WatchStatus(  # pyright: ignore[reportIncompatibleMethodOverride]
            self, request: pb.WatchStatusRequest,
            context: Context) -> AsyncIterator[pb.WatchStatusResponse | bytes]:
        """Events go out as the wire bytes of their WatchStatusResponse, serialised once for
        every stream (_EventMessages); `add_to_server` registers the method to send them."""
        tenant = caller_tenant()
        event_filter = convert.filter_from_proto(request.filter, tenant)
        if self._events is None:
            raise MalipoError("status streaming is not running", reason="UNAVAILABLE")
        after = request.after_sequence if request.HasField("after_sequence") else None
        async for item in self._events.subscribe(event_filter, after):
            if isinstance(item, Heartbeat):
                yield convert.heartbeat_to_proto(item)
            else:
                yield self._event_messages.get(item)


def add_to_server(servicer: pb_grpc.PaymentServiceServicer, server: grpc.aio.Server) -> None:
    """The generated registration of PaymentService (`servicer`: a PaymentServicer, as the
    edge wraps it), with WatchStatus sending the bytes it yields as they are."""
    sending_bytes = SendingBytes(server, SERVICE_NAME, methods=("WatchStatus",))
    # The generated function calls only the two registering methods SendingBytes has.
    pb_grpc.add_PaymentServiceServicer_to_server(servicer,
                                                 cast("grpc.aio.Server", sending_bytes))
