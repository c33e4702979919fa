import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from malipo.payments.v1 import money_pb2 as _money_pb2
from malipo.payments.v1 import payment_pb2 as _payment_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatusEvent(_message.Message):
    __slots__ = ("sequence", "event_id", "payment_id", "direction", "provider", "account", "old_status", "new_status", "provider_status", "amount", "reason", "message", "fulfilment", "needs_review", "occurred_at", "provider_reference", "provider_payload", "refund_id")
    class FulfilmentEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OLD_STATUS_FIELD_NUMBER: _ClassVar[int]
    NEW_STATUS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_STATUS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FULFILMENT_FIELD_NUMBER: _ClassVar[int]
    NEEDS_REVIEW_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    REFUND_ID_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    event_id: str
    payment_id: str
    direction: _payment_pb2.Direction
    provider: str
    account: str
    old_status: _payment_pb2.Status
    new_status: _payment_pb2.Status
    provider_status: str
    amount: _money_pb2.Money
    reason: str
    message: str
    fulfilment: _containers.ScalarMap[str, str]
    needs_review: bool
    occurred_at: _timestamp_pb2.Timestamp
    provider_reference: str
    provider_payload: _struct_pb2.Struct
    refund_id: str
    def __init__(self, sequence: _Optional[int] = ..., event_id: _Optional[str] = ..., payment_id: _Optional[str] = ..., direction: _Optional[_Union[_payment_pb2.Direction, str]] = ..., provider: _Optional[str] = ..., account: _Optional[str] = ..., old_status: _Optional[_Union[_payment_pb2.Status, str]] = ..., new_status: _Optional[_Union[_payment_pb2.Status, str]] = ..., provider_status: _Optional[str] = ..., amount: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., reason: _Optional[str] = ..., message: _Optional[str] = ..., fulfilment: _Optional[_Mapping[str, str]] = ..., needs_review: _Optional[bool] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., provider_reference: _Optional[str] = ..., provider_payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., refund_id: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sequence", "sent_at")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    sent_at: _timestamp_pb2.Timestamp
    def __init__(self, sequence: _Optional[int] = ..., sent_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StatusFilter(_message.Message):
    __slots__ = ("payment_id", "provider", "direction", "statuses")
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    payment_id: str
    provider: str
    direction: _payment_pb2.Direction
    statuses: _containers.RepeatedScalarFieldContainer[_payment_pb2.Status]
    def __init__(self, payment_id: _Optional[str] = ..., provider: _Optional[str] = ..., direction: _Optional[_Union[_payment_pb2.Direction, str]] = ..., statuses: _Optional[_Iterable[_Union[_payment_pb2.Status, str]]] = ...) -> None: ...
