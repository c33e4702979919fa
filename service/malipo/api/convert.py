"""to_proto / from_proto: the only place protobuf meets the domain."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from google.protobuf import struct_pb2, timestamp_pb2

from malipo.app.catalogue import Channel, ProviderCatalogue
from malipo.app.commands import CreatePayment, RefundPayment, ResolvePayment, ResolveRefund
from malipo.app.connector import Capabilities
from malipo.app.unit_of_work import ExchangeKind, ExchangeRecord, ListQuery
from malipo.domain.errors import FieldViolation, InvalidRequest
from malipo.domain.events import EventFilter, Heartbeat, StatusEvent
from malipo.domain.money import Money
from malipo.domain.payments import BankAccount, Customer, NextAction, NextActionKind, Payment
from malipo.domain.refunds import Refund
from malipo.domain.resolutions import Operator, Resolution
from malipo.domain.review import split_review
from malipo.domain.status import Direction, Method, Status
from malipo.payments.v1 import (
    events_pb2,
    money_pb2,
    payment_pb2,
    payment_service_pb2,
    providers_pb2,
)

_STATUS_TO = {s: getattr(payment_pb2, f"STATUS_{s.value}") for s in Status}
_STATUS_FROM = {v: k for k, v in _STATUS_TO.items()}
_DIRECTION_TO = {d: getattr(payment_pb2, f"DIRECTION_{d.value}") for d in Direction}
_DIRECTION_FROM = {v: k for k, v in _DIRECTION_TO.items()}
_METHOD_TO = {m: getattr(payment_pb2, f"METHOD_{m.value}") for m in Method}
_METHOD_FROM = {v: k for k, v in _METHOD_TO.items()}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """Seconds and nanos by arithmetic: Timestamp.FromDatetime is pure Python, three times
    slower, and ran twice for every payment answered."""
    if value.tzinfo is None:
        value = value.astimezone(UTC)  # naive: local time, as FromDatetime read it here
    delta = value - _EPOCH
    return timestamp_pb2.Timestamp(seconds=delta.days * 86_400 + delta.seconds,
                                   nanos=delta.microseconds * 1000)


def status_from_proto(value: int, field: str = "statuses") -> Status:
    try:
        return _STATUS_FROM[value]
    except KeyError:
        raise InvalidRequest(FieldViolation(field, f"unknown status {value}")) from None


def status_to_proto(status: Status) -> payment_pb2.Status.ValueType:
    return _STATUS_TO[status]


def direction_to_proto(direction: Direction) -> payment_pb2.Direction.ValueType:
    return _DIRECTION_TO[direction]


def customer_from_proto(c: payment_pb2.Customer) -> Customer:
    b = c.bank_account
    return Customer(
        phone_number=c.phone_number.strip(), name=c.name, email=c.email, reference=c.reference,
        bank_account=BankAccount(b.account_number, b.bank_code, b.bic, b.account_type,
                                 b.holder_name),
        document_type=c.document_type, document_number=c.document_number,
    )


def customer_to_proto(c: Customer) -> payment_pb2.Customer:
    b = c.bank_account
    return payment_pb2.Customer(
        phone_number=c.phone_number, name=c.name, email=c.email, reference=c.reference,
        bank_account=payment_pb2.BankAccount(
            account_number=b.account_number, bank_code=b.bank_code, bic=b.bic,
            account_type=b.account_type, holder_name=b.holder_name),
        document_type=c.document_type, document_number=c.document_number,
    )


def _map(values: Mapping[str, str]) -> dict[str, str] | None:
    """A map field's value; None for an empty one, which protobuf skips (an empty dict
    costs a microsecond per field to build nothing)."""
    return dict(values) if values else None


def create_from_proto(
    request: payment_service_pb2.CreatePaymentRequest | payment_service_pb2.CreatePayoutRequest,
    tenant: str, direction: Direction,
) -> CreatePayment:
    method = _METHOD_FROM.get(request.method)
    if method is None:
        raise InvalidRequest(FieldViolation("method", f"unknown method {request.method}"))
    if not request.HasField("amount"):
        raise InvalidRequest(FieldViolation("amount", "required"))
    return CreatePayment(
        tenant=tenant, idempotency_key=request.idempotency_key, direction=direction,
        provider=request.provider, account=request.account, method=method,
        channel=request.channel, country=request.country,
        amount_minor=request.amount.amount_minor, currency=request.amount.currency,
        customer=customer_from_proto(request.customer), description=request.description,
        provider_fields=dict(request.provider_fields), metadata=dict(request.metadata),
    )


def _money(minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=minor, currency=currency)


def money_to_proto(m: Money) -> money_pb2.Money:
    return _money(m.minor, m.currency.code)


def next_action_to_proto(action: NextAction | None, currency: str) -> payment_pb2.NextAction:
    if action is None:
        return payment_pb2.NextAction()
    d = action.details
    match action.kind:
        case NextActionKind.OTP:
            return payment_pb2.NextAction(otp=payment_pb2.OtpRequired(prompt=d.get("prompt", "")))
        case NextActionKind.REDIRECT:
            return payment_pb2.NextAction(redirect=payment_pb2.Redirect(url=d.get("url", "")))
        case NextActionKind.BANK_TRANSFER:
            return payment_pb2.NextAction(bank_transfer=payment_pb2.BankTransferDetails(
                account_number=d.get("account_number", ""), bank_name=d.get("bank_name", ""),
                account_name=d.get("account_name", ""),
                amount=_money(int(d.get("amount_minor", "0") or 0), currency),
                reference=d.get("reference", "")))
        case NextActionKind.CONFIRM:
            confirm = payment_pb2.ConfirmDetails(
                account_name=d.get("account_name", ""),
                amount=_money(int(d.get("amount_minor", "0") or 0), currency),
                description=d.get("description", ""))
            if d.get("expires_at"):
                confirm.expires_at.CopyFrom(timestamp(datetime.fromisoformat(d["expires_at"])))
            return payment_pb2.NextAction(confirm=confirm)
        case NextActionKind.WIDGET:
            return payment_pb2.NextAction(widget=payment_pb2.Widget(
                provider=d.get("provider", ""),
                params={k: v for k, v in d.items() if k != "provider"}))


def payment_to_proto(p: Payment) -> payment_pb2.Payment:
    currency = p.amount.currency.code
    review_code, review_message = split_review(p.review_reason)
    message = payment_pb2.Payment(
        id=p.id, direction=_DIRECTION_TO[p.direction], provider=p.provider, account=p.account,
        method=_METHOD_TO[p.method], channel=p.channel, country=p.country,
        amount=_money(p.amount.minor, currency), customer=customer_to_proto(p.customer),
        provider_fields=_map(p.provider_fields), description=p.description,
        status=_STATUS_TO[p.status], provider_reference=p.provider_reference,
        provider_status=p.provider_status, provider_message=p.provider_message,
        failure_reason=p.failure_reason, failure_message=p.failure_message,
        fulfilment=_map(p.fulfilment), metadata=_map(p.metadata), needs_review=p.needs_review,
        review_reason=review_code, review_message=review_message,
        last_event_sequence=p.last_event_sequence,
        created_at=timestamp(p.created_at), updated_at=timestamp(p.updated_at),
        idempotency_key=p.idempotency_key,
    )
    if p.next_action is not None:
        message.next_action.CopyFrom(next_action_to_proto(p.next_action, currency))
    return message


def list_query_from_proto(
    request: payment_service_pb2.ListPaymentsRequest | payment_service_pb2.ListPayoutsRequest,
    tenant: str, direction: Direction,
) -> ListQuery:
    size = request.page_size or 20
    if not 1 <= size <= 100:
        raise InvalidRequest(FieldViolation("page_size", "between 1 and 100"))
    f = request.filter
    before = decode_page_token(request.page_token) if request.page_token else None
    return ListQuery(
        tenant=tenant, direction=direction, page_size=size,
        statuses=frozenset(status_from_proto(s, "filter.statuses") for s in f.statuses),
        provider=f.provider,
        created_after=f.created_after.ToDatetime(UTC) if f.HasField("created_after") else None,
        created_before=f.created_before.ToDatetime(UTC) if f.HasField("created_before") else None,
        needs_review=f.needs_review, before=before,
    )


def encode_page_token(last: Payment) -> str:
    raw = json.dumps([last.created_at.isoformat(), last.id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str) -> tuple[datetime, str]:
    try:
        at, pid = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(at), str(pid)
    except (ValueError, TypeError):
        raise InvalidRequest(FieldViolation("page_token", "not a token from this API")) from None


def filter_from_proto(f: events_pb2.StatusFilter, tenant: str) -> EventFilter:
    direction = _DIRECTION_FROM.get(f.direction) if f.direction else None
    return EventFilter(
        tenant=tenant, payment_id=f.payment_id, provider=f.provider, direction=direction,
        statuses=frozenset(status_from_proto(s, "filter.statuses") for s in f.statuses),
    )


def event_to_proto(e: StatusEvent) -> payment_service_pb2.WatchStatusResponse:
    return payment_service_pb2.WatchStatusResponse(event=events_pb2.StatusEvent(
        sequence=e.sequence, event_id=e.event_id, payment_id=e.payment_id,
        direction=_DIRECTION_TO[e.direction], provider=e.provider, account=e.account,
        old_status=_STATUS_TO[e.old_status] if e.old_status else payment_pb2.STATUS_UNSPECIFIED,
        new_status=_STATUS_TO[e.new_status], provider_status=e.provider_status,
        amount=money_to_proto(e.amount), reason=e.reason,
        message=e.message, fulfilment=dict(e.fulfilment), needs_review=e.needs_review,
        occurred_at=timestamp(e.occurred_at), provider_reference=e.provider_reference,
        provider_payload=_struct(e.provider_payload) if e.provider_payload else None,
        refund_id=e.refund_id,
    ))


def _struct(data: Mapping[str, object]) -> struct_pb2.Struct:
    """The stored payload is plain JSON already (the store made it so), so it maps as is."""
    out = struct_pb2.Struct()
    out.update(cast("dict[str, Any]", data))
    return out


def heartbeat_to_proto(h: Heartbeat) -> payment_service_pb2.WatchStatusResponse:
    return payment_service_pb2.WatchStatusResponse(heartbeat=events_pb2.Heartbeat(
        sequence=h.sequence, sent_at=timestamp(h.sent_at)))


def provider_to_proto(provider: str, accounts: list[str], caps: Capabilities,
                      catalogue: ProviderCatalogue, country: str) -> providers_pb2.Provider:
    return providers_pb2.Provider(
        name=provider, display_name=catalogue.display_name, accounts=accounts,
        capabilities=providers_pb2.Capabilities(
            collections=caps.collections, payouts=caps.payouts, refunds=caps.refunds,
            partial_refunds=caps.partial_refunds,
            cancellations=caps.cancellations, status_polling=caps.status_polling,
            callbacks=caps.callbacks),
        channels=[channel_to_proto(c) for c in catalogue.channels
                  if not country or c.country == country],
        currencies=list(catalogue.currencies),
    )


def channel_to_proto(c: Channel) -> providers_pb2.Channel:
    message = providers_pb2.Channel(
        id=c.id, name=c.name, country=c.country, currency=c.currency, method=_METHOD_TO[c.method],
        document_types=list(c.document_types),
        limits=[providers_pb2.ChannelLimits(
            direction=_DIRECTION_TO[lim.direction], min=_money(lim.min_minor, c.currency),
            max=_money(lim.max_minor, c.currency),
            daily_max=_money(lim.daily_max_minor, c.currency),
            multiple_of_minor=lim.multiple_of_minor, required_fields=list(lim.required_fields),
        ) for lim in c.limits],
    )
    if c.phone is not None:
        message.phone_format.CopyFrom(providers_pb2.PhoneFormat(
            calling_code=c.phone.calling_code, national_digits=c.phone.national_digits,
            leading_zero=c.phone.leading_zero, example=c.phone.example))
    return message


_EXCHANGE_KIND = {
    ExchangeKind.REQUEST: payment_service_pb2.ProviderExchange.KIND_REQUEST,
    ExchangeKind.CALLBACK: payment_service_pb2.ProviderExchange.KIND_CALLBACK,
    ExchangeKind.RESOLUTION: payment_service_pb2.ProviderExchange.KIND_RESOLUTION,
}


def exchange_to_proto(e: ExchangeRecord) -> payment_service_pb2.ProviderExchange:
    return payment_service_pb2.ProviderExchange(
        kind=_EXCHANGE_KIND[e.kind], operation=e.operation, method=e.method, path=e.path,
        request_body=e.request_body, http_status=e.status, response_body=e.response_body,
        latency_ms=e.latency_ms, at=timestamp(e.at), detail=e.detail,
        resolution=resolution_to_proto(e.resolution) if e.resolution else None,
    )


def refund_from_proto(request: payment_service_pb2.RefundPaymentRequest,
                      tenant: str) -> RefundPayment:
    amount = request.amount if request.HasField("amount") else None
    return RefundPayment(tenant, request.idempotency_key, request.payment_id, request.reason,
                         amount.amount_minor if amount else None,
                         amount.currency if amount else "")


def refund_to_proto(r: Refund) -> payment_pb2.Refund:
    review_code, review_message = split_review(r.review_reason)
    return payment_pb2.Refund(
        id=r.id, payment_id=r.payment_id, amount=money_to_proto(r.amount),
        status=_STATUS_TO[r.status], reason=r.reason, provider_reference=r.provider_reference,
        provider_status=r.provider_status, failure_reason=r.failure_reason,
        failure_message=r.failure_message, idempotency_key=r.idempotency_key,
        created_at=timestamp(r.created_at), updated_at=timestamp(r.updated_at),
        needs_review=r.needs_review, review_reason=review_code, review_message=review_message,
    )


def _resolution_from_proto(value: int) -> Status:
    """PENDING for an unset resolution: the use case refuses it with the allowed outcomes."""
    return status_from_proto(value, "resolution") if value else Status.PENDING


def resolve_from_proto(request: payment_service_pb2.ResolvePaymentRequest,
                       operator: Operator) -> ResolvePayment:
    return ResolvePayment(
        operator=operator.name, key_id=operator.key_id, idempotency_key=request.idempotency_key,
        tenant=request.tenant, payment_id=request.payment_id,
        resolution=_resolution_from_proto(request.resolution),
        reason=request.reason, evidence=request.evidence,
    )


def resolve_refund_from_proto(request: payment_service_pb2.ResolveRefundRequest,
                              operator: Operator) -> ResolveRefund:
    return ResolveRefund(
        operator=operator.name, key_id=operator.key_id, idempotency_key=request.idempotency_key,
        tenant=request.tenant, refund_id=request.refund_id,
        resolution=_resolution_from_proto(request.resolution),
        reason=request.reason, evidence=request.evidence,
    )


def resolution_to_proto(r: Resolution) -> payment_service_pb2.Resolution:
    return payment_service_pb2.Resolution(
        id=r.id, payment_id=r.payment_id, operator=r.operator.name, key_id=r.operator.key_id,
        from_status=_STATUS_TO[r.from_status], to_status=_STATUS_TO[r.to_status],
        review_reason=r.review_reason, reason=r.reason, evidence=r.evidence,
        resolved_at=timestamp(r.resolved_at), refund_id=r.refund_id,
    )
