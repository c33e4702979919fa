from malipo.payments.v1 import money_pb2 as _money_pb2
from malipo.payments.v1 import payment_pb2 as _payment_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChannelLimits(_message.Message):
    __slots__ = ("direction", "min", "max", "daily_max", "multiple_of_minor", "required_fields")
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    DAILY_MAX_FIELD_NUMBER: _ClassVar[int]
    MULTIPLE_OF_MINOR_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELDS_FIELD_NUMBER: _ClassVar[int]
    direction: _payment_pb2.Direction
    min: _money_pb2.Money
    max: _money_pb2.Money
    daily_max: _money_pb2.Money
    multiple_of_minor: int
    required_fields: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, direction: _Optional[_Union[_payment_pb2.Direction, str]] = ..., min: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., max: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., daily_max: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., multiple_of_minor: _Optional[int] = ..., required_fields: _Optional[_Iterable[str]] = ...) -> None: ...

class PhoneFormat(_message.Message):
    __slots__ = ("calling_code", "national_digits", "leading_zero", "example")
    CALLING_CODE_FIELD_NUMBER: _ClassVar[int]
    NATIONAL_DIGITS_FIELD_NUMBER: _ClassVar[int]
    LEADING_ZERO_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    calling_code: str
    national_digits: int
    leading_zero: bool
    example: str
    def __init__(self, calling_code: _Optional[str] = ..., national_digits: _Optional[int] = ..., leading_zero: _Optional[bool] = ..., example: _Optional[str] = ...) -> None: ...

class Channel(_message.Message):
    __slots__ = ("id", "name", "country", "currency", "method", "limits", "phone_format", "document_types")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    PHONE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    country: str
    currency: str
    method: _payment_pb2.Method
    limits: _containers.RepeatedCompositeFieldContainer[ChannelLimits]
    phone_format: PhoneFormat
    document_types: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., country: _Optional[str] = ..., currency: _Optional[str] = ..., method: _Optional[_Union[_payment_pb2.Method, str]] = ..., limits: _Optional[_Iterable[_Union[ChannelLimits, _Mapping]]] = ..., phone_format: _Optional[_Union[PhoneFormat, _Mapping]] = ..., document_types: _Optional[_Iterable[str]] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("collections", "payouts", "refunds", "cancellations", "status_polling", "callbacks", "partial_refunds")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    PAYOUTS_FIELD_NUMBER: _ClassVar[int]
    REFUNDS_FIELD_NUMBER: _ClassVar[int]
    CANCELLATIONS_FIELD_NUMBER: _ClassVar[int]
    STATUS_POLLING_FIELD_NUMBER: _ClassVar[int]
    CALLBACKS_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_REFUNDS_FIELD_NUMBER: _ClassVar[int]
    collections: bool
    payouts: bool
    refunds: bool
    cancellations: bool
    status_polling: bool
    callbacks: bool
    partial_refunds: bool
    def __init__(self, collections: _Optional[bool] = ..., payouts: _Optional[bool] = ..., refunds: _Optional[bool] = ..., cancellations: _Optional[bool] = ..., status_polling: _Optional[bool] = ..., callbacks: _Optional[bool] = ..., partial_refunds: _Optional[bool] = ...) -> None: ...

class Provider(_message.Message):
    __slots__ = ("name", "display_name", "accounts", "capabilities", "channels", "currencies")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTS_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    CURRENCIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    display_name: str
    accounts: _containers.RepeatedScalarFieldContainer[str]
    capabilities: Capabilities
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    currencies: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., display_name: _Optional[str] = ..., accounts: _Optional[_Iterable[str]] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ..., currencies: _Optional[_Iterable[str]] = ...) -> None: ...
