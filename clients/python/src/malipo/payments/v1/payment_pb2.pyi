import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from malipo.payments.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_PENDING: _ClassVar[Status]
    STATUS_PROCESSING: _ClassVar[Status]
    STATUS_ACTION_REQUIRED: _ClassVar[Status]
    STATUS_SUCCEEDED: _ClassVar[Status]
    STATUS_FAILED: _ClassVar[Status]
    STATUS_CANCELLED: _ClassVar[Status]
    STATUS_REVERSED: _ClassVar[Status]
    STATUS_UNKNOWN: _ClassVar[Status]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_COLLECTION: _ClassVar[Direction]
    DIRECTION_PAYOUT: _ClassVar[Direction]

class Method(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METHOD_UNSPECIFIED: _ClassVar[Method]
    METHOD_MOBILE_MONEY: _ClassVar[Method]
    METHOD_BANK_TRANSFER: _ClassVar[Method]
    METHOD_BANK_CARD: _ClassVar[Method]
    METHOD_DEBIT_ORDER: _ClassVar[Method]
    METHOD_BILL_PAYMENT: _ClassVar[Method]
    METHOD_AIRTIME: _ClassVar[Method]
    METHOD_HOSTED: _ClassVar[Method]
STATUS_UNSPECIFIED: Status
STATUS_PENDING: Status
STATUS_PROCESSING: Status
STATUS_ACTION_REQUIRED: Status
STATUS_SUCCEEDED: Status
STATUS_FAILED: Status
STATUS_CANCELLED: Status
STATUS_REVERSED: Status
STATUS_UNKNOWN: Status
DIRECTION_UNSPECIFIED: Direction
DIRECTION_COLLECTION: Direction
DIRECTION_PAYOUT: Direction
METHOD_UNSPECIFIED: Method
METHOD_MOBILE_MONEY: Method
METHOD_BANK_TRANSFER: Method
METHOD_BANK_CARD: Method
METHOD_DEBIT_ORDER: Method
METHOD_BILL_PAYMENT: Method
METHOD_AIRTIME: Method
METHOD_HOSTED: Method

class BankAccount(_message.Message):
    __slots__ = ("account_number", "bank_code", "bic", "account_type", "holder_name")
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BANK_CODE_FIELD_NUMBER: _ClassVar[int]
    BIC_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_TYPE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_NAME_FIELD_NUMBER: _ClassVar[int]
    account_number: str
    bank_code: str
    bic: str
    account_type: str
    holder_name: str
    def __init__(self, account_number: _Optional[str] = ..., bank_code: _Optional[str] = ..., bic: _Optional[str] = ..., account_type: _Optional[str] = ..., holder_name: _Optional[str] = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("phone_number", "name", "email", "reference", "bank_account", "document_type", "document_number")
    PHONE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    BANK_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    phone_number: str
    name: str
    email: str
    reference: str
    bank_account: BankAccount
    document_type: str
    document_number: str
    def __init__(self, phone_number: _Optional[str] = ..., name: _Optional[str] = ..., email: _Optional[str] = ..., reference: _Optional[str] = ..., bank_account: _Optional[_Union[BankAccount, _Mapping]] = ..., document_type: _Optional[str] = ..., document_number: _Optional[str] = ...) -> None: ...

class NextAction(_message.Message):
    __slots__ = ("otp", "redirect", "bank_transfer", "confirm", "widget")
    OTP_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_FIELD_NUMBER: _ClassVar[int]
    BANK_TRANSFER_FIELD_NUMBER: _ClassVar[int]
    CONFIRM_FIELD_NUMBER: _ClassVar[int]
    WIDGET_FIELD_NUMBER: _ClassVar[int]
    otp: OtpRequired
    redirect: Redirect
    bank_transfer: BankTransferDetails
    confirm: ConfirmDetails
    widget: Widget
    def __init__(self, otp: _Optional[_Union[OtpRequired, _Mapping]] = ..., redirect: _Optional[_Union[Redirect, _Mapping]] = ..., bank_transfer: _Optional[_Union[BankTransferDetails, _Mapping]] = ..., confirm: _Optional[_Union[ConfirmDetails, _Mapping]] = ..., widget: _Optional[_Union[Widget, _Mapping]] = ...) -> None: ...

class OtpRequired(_message.Message):
    __slots__ = ("prompt",)
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    def __init__(self, prompt: _Optional[str] = ...) -> None: ...

class Redirect(_message.Message):
    __slots__ = ("url",)
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...

class BankTransferDetails(_message.Message):
    __slots__ = ("account_number", "bank_name", "account_name", "amount", "reference")
    ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BANK_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    account_number: str
    bank_name: str
    account_name: str
    amount: _money_pb2.Money
    reference: str
    def __init__(self, account_number: _Optional[str] = ..., bank_name: _Optional[str] = ..., account_name: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reference: _Optional[str] = ...) -> None: ...

class ConfirmDetails(_message.Message):
    __slots__ = ("account_name", "amount", "description", "expires_at")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    amount: _money_pb2.Money
    description: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, account_name: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., description: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Widget(_message.Message):
    __slots__ = ("provider", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    params: _containers.ScalarMap[str, str]
    def __init__(self, provider: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Payment(_message.Message):
    __slots__ = ("id", "direction", "provider", "account", "method", "channel", "country", "amount", "customer", "provider_fields", "description", "status", "provider_reference", "provider_status", "provider_message", "failure_reason", "failure_message", "next_action", "fulfilment", "metadata", "needs_review", "review_reason", "last_event_sequence", "created_at", "updated_at", "idempotency_key", "review_message")
    class ProviderFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class FulfilmentEntry(_message.Message):
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
    ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELDS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NEXT_ACTION_FIELD_NUMBER: _ClassVar[int]
    FULFILMENT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    NEEDS_REVIEW_FIELD_NUMBER: _ClassVar[int]
    REVIEW_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REVIEW_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    direction: Direction
    provider: str
    account: str
    method: Method
    channel: str
    country: str
    amount: _money_pb2.Money
    customer: Customer
    provider_fields: _containers.ScalarMap[str, str]
    description: str
    status: Status
    provider_reference: str
    provider_status: str
    provider_message: str
    failure_reason: str
    failure_message: str
    next_action: NextAction
    fulfilment: _containers.ScalarMap[str, str]
    metadata: _containers.ScalarMap[str, str]
    needs_review: bool
    review_reason: str
    last_event_sequence: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    idempotency_key: str
    review_message: str
    def __init__(self, id: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., provider: _Optional[str] = ..., account: _Optional[str] = ..., method: _Optional[_Union[Method, str]] = ..., channel: _Optional[str] = ..., country: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., customer: _Optional[_Union[Customer, _Mapping]] = ..., provider_fields: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., provider_reference: _Optional[str] = ..., provider_status: _Optional[str] = ..., provider_message: _Optional[str] = ..., failure_reason: _Optional[str] = ..., failure_message: _Optional[str] = ..., next_action: _Optional[_Union[NextAction, _Mapping]] = ..., fulfilment: _Optional[_Mapping[str, str]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., needs_review: _Optional[bool] = ..., review_reason: _Optional[str] = ..., last_event_sequence: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., review_message: _Optional[str] = ...) -> None: ...

class Refund(_message.Message):
    __slots__ = ("id", "payment_id", "amount", "status", "reason", "provider_reference", "provider_status", "failure_reason", "failure_message", "idempotency_key", "created_at", "updated_at", "needs_review", "review_reason", "review_message")
    ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    FAILURE_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    NEEDS_REVIEW_FIELD_NUMBER: _ClassVar[int]
    REVIEW_REASON_FIELD_NUMBER: _ClassVar[int]
    REVIEW_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    payment_id: str
    amount: _money_pb2.Money
    status: Status
    reason: str
    provider_reference: str
    provider_status: str
    failure_reason: str
    failure_message: str
    idempotency_key: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    needs_review: bool
    review_reason: str
    review_message: str
    def __init__(self, id: _Optional[str] = ..., payment_id: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., status: _Optional[_Union[Status, str]] = ..., reason: _Optional[str] = ..., provider_reference: _Optional[str] = ..., provider_status: _Optional[str] = ..., failure_reason: _Optional[str] = ..., failure_message: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., needs_review: _Optional[bool] = ..., review_reason: _Optional[str] = ..., review_message: _Optional[str] = ...) -> None: ...
