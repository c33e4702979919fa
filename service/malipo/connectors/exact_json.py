"""Provider JSON read with exact decimals: an amount never passes through a float.

Every connector parses provider bodies with `loads` and stores what the provider said with
`plain`, so `ProviderUpdate.raw` keeps each decimal's positional text ("0.00000026", never
"2.6E-7") and stays JSON-storable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def loads(body: bytes | str) -> Any:
    """JSON with every non-integer number as a Decimal, keys in the order sent."""
    return json.loads(body, parse_float=Decimal)


def plain(value: Any) -> Any:
    """A JSON-safe copy: decimals become their exact positional text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}  # type: ignore[misc]
    if isinstance(value, list):
        return [plain(v) for v in value]  # type: ignore[misc]
    return value
