import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from malipo.payments.v1 import events_pb2 as _events_pb2
from malipo.payments.v1 import money_pb2 as _money_pb2
from malipo.payments.v1 import payment_pb2 as _payment_pb2
from malipo.payments.v1 import providers_pb2 as _providers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreatePaymentRequest(_message.Message):
    __slots__ = ("idempotency_key", "provider", "account", "method", "channel", "country", "amount", "customer", "description", "provider_fields", "metadata")
    class ProviderFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    provider: str
    account: str
    method: _payment_pb2.Method
    channel: str
    country: str
    amount: _money_pb2.Money
    customer: _payment_pb2.Customer
    description: str
    provider_fields: _containers.ScalarMap[str, str]
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, idempotency_key: _Optional[str] = ..., provider: _Optional[str] = ..., account: _Optional[str] = ..., method: _Optional[_Union[_payment_pb2.Method, str]] = ..., channel: _Optional[str] = ..., country: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., customer: _Optional[_Union[_payment_pb2.Customer, _Mapping]] = ..., description: _Optional[str] = ..., provider_fields: _Optional[_Mapping[str, str]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreatePaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class CreatePayoutRequest(_message.Message):
    __slots__ = ("idempotency_key", "provider", "account", "method", "channel", "country", "amount", "customer", "description", "provider_fields", "metadata")
    class ProviderFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELDS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    provider: str
    account: str
    method: _payment_pb2.Method
    channel: str
    country: str
    amount: _money_pb2.Money
    customer: _payment_pb2.Customer
    description: str
    provider_fields: _containers.ScalarMap[str, str]
    metadata: _containers.ScalarMap[str, str]
    def __init__(self, idempotency_key: _Optional[str] = ..., provider: _Optional[str] = ..., account: _Optional[str] = ..., method: _Optional[_Union[_payment_pb2.Method, str]] = ..., channel: _Optional[str] = ..., country: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., customer: _Optional[_Union[_payment_pb2.Customer, _Mapping]] = ..., description: _Optional[str] = ..., provider_fields: _Optional[_Mapping[str, str]] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreatePayoutResponse(_message.Message):
    __slots__ = ("payout",)
    PAYOUT_FIELD_NUMBER: _ClassVar[int]
    payout: _payment_pb2.Payment
    def __init__(self, payout: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class ConfirmPaymentRequest(_message.Message):
    __slots__ = ("idempotency_key", "payment_id", "otp", "provider_transaction_id")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    OTP_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    payment_id: str
    otp: str
    provider_transaction_id: str
    def __init__(self, idempotency_key: _Optional[str] = ..., payment_id: _Optional[str] = ..., otp: _Optional[str] = ..., provider_transaction_id: _Optional[str] = ...) -> None: ...

class ConfirmPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class GetPaymentRequest(_message.Message):
    __slots__ = ("payment_id",)
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    def __init__(self, payment_id: _Optional[str] = ...) -> None: ...

class GetPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class GetPayoutRequest(_message.Message):
    __slots__ = ("payout_id",)
    PAYOUT_ID_FIELD_NUMBER: _ClassVar[int]
    payout_id: str
    def __init__(self, payout_id: _Optional[str] = ...) -> None: ...

class GetPayoutResponse(_message.Message):
    __slots__ = ("payout",)
    PAYOUT_FIELD_NUMBER: _ClassVar[int]
    payout: _payment_pb2.Payment
    def __init__(self, payout: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class ListFilter(_message.Message):
    __slots__ = ("statuses", "provider", "created_after", "created_before", "needs_review")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NEEDS_REVIEW_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[_payment_pb2.Status]
    provider: str
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    needs_review: bool
    def __init__(self, statuses: _Optional[_Iterable[_Union[_payment_pb2.Status, str]]] = ..., provider: _Optional[str] = ..., created_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., needs_review: _Optional[bool] = ...) -> None: ...

class ListPaymentsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: ListFilter
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[_Union[ListFilter, _Mapping]] = ...) -> None: ...

class ListPaymentsResponse(_message.Message):
    __slots__ = ("payments", "next_page_token")
    PAYMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    payments: _containers.RepeatedCompositeFieldContainer[_payment_pb2.Payment]
    next_page_token: str
    def __init__(self, payments: _Optional[_Iterable[_Union[_payment_pb2.Payment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListPayoutsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "filter")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    filter: ListFilter
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., filter: _Optional[_Union[ListFilter, _Mapping]] = ...) -> None: ...

class ListPayoutsResponse(_message.Message):
    __slots__ = ("payouts", "next_page_token")
    PAYOUTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    payouts: _containers.RepeatedCompositeFieldContainer[_payment_pb2.Payment]
    next_page_token: str
    def __init__(self, payouts: _Optional[_Iterable[_Union[_payment_pb2.Payment, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RefundPaymentRequest(_message.Message):
    __slots__ = ("idempotency_key", "payment_id", "reason", "amount")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    payment_id: str
    reason: str
    amount: _money_pb2.Money
    def __init__(self, idempotency_key: _Optional[str] = ..., payment_id: _Optional[str] = ..., reason: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class RefundPaymentResponse(_message.Message):
    __slots__ = ("payment", "refund")
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    refund: _payment_pb2.Refund
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ..., refund: _Optional[_Union[_payment_pb2.Refund, _Mapping]] = ...) -> None: ...

class CancelPaymentRequest(_message.Message):
    __slots__ = ("idempotency_key", "payment_id", "reason")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    payment_id: str
    reason: str
    def __init__(self, idempotency_key: _Optional[str] = ..., payment_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class RefreshPaymentRequest(_message.Message):
    __slots__ = ("payment_id",)
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    def __init__(self, payment_id: _Optional[str] = ...) -> None: ...

class RefreshPaymentResponse(_message.Message):
    __slots__ = ("payment",)
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ...) -> None: ...

class WatchStatusRequest(_message.Message):
    __slots__ = ("after_sequence", "filter")
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    filter: _events_pb2.StatusFilter
    def __init__(self, after_sequence: _Optional[int] = ..., filter: _Optional[_Union[_events_pb2.StatusFilter, _Mapping]] = ...) -> None: ...

class WatchStatusResponse(_message.Message):
    __slots__ = ("event", "heartbeat")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    event: _events_pb2.StatusEvent
    heartbeat: _events_pb2.Heartbeat
    def __init__(self, event: _Optional[_Union[_events_pb2.StatusEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[_events_pb2.Heartbeat, _Mapping]] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ("country",)
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    country: str
    def __init__(self, country: _Optional[str] = ...) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[_providers_pb2.Provider]
    def __init__(self, providers: _Optional[_Iterable[_Union[_providers_pb2.Provider, _Mapping]]] = ...) -> None: ...

class ListProviderExchangesRequest(_message.Message):
    __slots__ = ("payment_id",)
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    def __init__(self, payment_id: _Optional[str] = ...) -> None: ...

class ListProviderExchangesResponse(_message.Message):
    __slots__ = ("exchanges",)
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    exchanges: _containers.RepeatedCompositeFieldContainer[ProviderExchange]
    def __init__(self, exchanges: _Optional[_Iterable[_Union[ProviderExchange, _Mapping]]] = ...) -> None: ...

class ListRefundsRequest(_message.Message):
    __slots__ = ("payment_id",)
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    def __init__(self, payment_id: _Optional[str] = ...) -> None: ...

class ListRefundsResponse(_message.Message):
    __slots__ = ("refunds", "refunded", "remaining")
    REFUNDS_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    refunds: _containers.RepeatedCompositeFieldContainer[_payment_pb2.Refund]
    refunded: _money_pb2.Money
    remaining: _money_pb2.Money
    def __init__(self, refunds: _Optional[_Iterable[_Union[_payment_pb2.Refund, _Mapping]]] = ..., refunded: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., remaining: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class ResolvePaymentRequest(_message.Message):
    __slots__ = ("idempotency_key", "tenant", "payment_id", "resolution", "reason", "evidence")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    tenant: str
    payment_id: str
    resolution: _payment_pb2.Status
    reason: str
    evidence: str
    def __init__(self, idempotency_key: _Optional[str] = ..., tenant: _Optional[str] = ..., payment_id: _Optional[str] = ..., resolution: _Optional[_Union[_payment_pb2.Status, str]] = ..., reason: _Optional[str] = ..., evidence: _Optional[str] = ...) -> None: ...

class ResolvePaymentResponse(_message.Message):
    __slots__ = ("payment", "resolution")
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    resolution: Resolution
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ..., resolution: _Optional[_Union[Resolution, _Mapping]] = ...) -> None: ...

class ResolveRefundRequest(_message.Message):
    __slots__ = ("idempotency_key", "tenant", "refund_id", "resolution", "reason", "evidence")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    tenant: str
    refund_id: str
    resolution: _payment_pb2.Status
    reason: str
    evidence: str
    def __init__(self, idempotency_key: _Optional[str] = ..., tenant: _Optional[str] = ..., refund_id: _Optional[str] = ..., resolution: _Optional[_Union[_payment_pb2.Status, str]] = ..., reason: _Optional[str] = ..., evidence: _Optional[str] = ...) -> None: ...

class ResolveRefundResponse(_message.Message):
    __slots__ = ("payment", "refund", "resolution")
    PAYMENT_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    payment: _payment_pb2.Payment
    refund: _payment_pb2.Refund
    resolution: Resolution
    def __init__(self, payment: _Optional[_Union[_payment_pb2.Payment, _Mapping]] = ..., refund: _Optional[_Union[_payment_pb2.Refund, _Mapping]] = ..., resolution: _Optional[_Union[Resolution, _Mapping]] = ...) -> None: ...

class Resolution(_message.Message):
    __slots__ = ("id", "payment_id", "operator", "key_id", "from_status", "to_status", "review_reason", "reason", "evidence", "resolved_at", "refund_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_STATUS_FIELD_NUMBER: _ClassVar[int]
    TO_STATUS_FIELD_NUMBER: _ClassVar[int]
    REVIEW_REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    payment_id: str
    operator: str
    key_id: str
    from_status: _payment_pb2.Status
    to_status: _payment_pb2.Status
    review_reason: str
    reason: str
    evidence: str
    resolved_at: _timestamp_pb2.Timestamp
    refund_id: str
    def __init__(self, id: _Optional[str] = ..., payment_id: _Optional[str] = ..., operator: _Optional[str] = ..., key_id: _Optional[str] = ..., from_status: _Optional[_Union[_payment_pb2.Status, str]] = ..., to_status: _Optional[_Union[_payment_pb2.Status, str]] = ..., review_reason: _Optional[str] = ..., reason: _Optional[str] = ..., evidence: _Optional[str] = ..., resolved_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refund_id: _Optional[str] = ...) -> None: ...

class ProviderExchange(_message.Message):
    __slots__ = ("kind", "operation", "method", "path", "request_body", "http_status", "response_body", "latency_ms", "at", "detail", "resolution")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[ProviderExchange.Kind]
        KIND_REQUEST: _ClassVar[ProviderExchange.Kind]
        KIND_CALLBACK: _ClassVar[ProviderExchange.Kind]
        KIND_RESOLUTION: _ClassVar[ProviderExchange.Kind]
    KIND_UNSPECIFIED: ProviderExchange.Kind
    KIND_REQUEST: ProviderExchange.Kind
    KIND_CALLBACK: ProviderExchange.Kind
    KIND_RESOLUTION: ProviderExchange.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_BODY_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    kind: ProviderExchange.Kind
    operation: str
    method: str
    path: str
    request_body: str
    http_status: int
    response_body: str
    latency_ms: float
    at: _timestamp_pb2.Timestamp
    detail: str
    resolution: Resolution
    def __init__(self, kind: _Optional[_Union[ProviderExchange.Kind, str]] = ..., operation: _Optional[str] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., request_body: _Optional[str] = ..., http_status: _Optional[int] = ..., response_body: _Optional[str] = ..., latency_ms: _Optional[float] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ..., resolution: _Optional[_Union[Resolution, _Mapping]] = ...) -> None: ...
