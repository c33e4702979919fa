"""api.convert.timestamp computes seconds and nanos itself: it must agree with protobuf's own
Timestamp.FromDatetime on every kind of datetime the service hands it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf import timestamp_pb2

from malipo.api.convert import timestamp

_CASES = [
    datetime(2026, 12, 6, 23, 40, 1, 123456, tzinfo=UTC),
    datetime(2026, 12, 6, 23, 40, 1, 999999, tzinfo=timezone(timedelta(hours=3))),
    datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),  # before the epoch: nanos >= 0
    datetime(1901, 3, 4, 5, 6, 7, 1, tzinfo=UTC),
    datetime(2026, 6, 1, 12, 0, 0),  # naive: local time
]


@pytest.mark.parametrize("value", _CASES, ids=str)
def test_timestamp_agrees_with_protobuf(value: datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(value.astimezone(UTC))
    assert timestamp(value) == expected
