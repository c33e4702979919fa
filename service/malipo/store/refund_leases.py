"""The reconciler's claims of unsettled refunds: store/leases.py's leases on the refunds
table, each refund answered with its payment (the poll needs both: one round trip)."""

from __future__ import annotations

import asyncpg

from malipo.app.leases import LeasedRefund
from malipo.store.leases import LeasedTable, PostgresLeases
from malipo.store.refunds import refund_fields, refund_from_row
from malipo.store.rows import payment_fields, payment_from_row

_REFUND = "refund_"  # the refund's columns beside its payment's, which share their names


def _leased(row: asyncpg.Record) -> LeasedRefund:
    return LeasedRefund(refund_from_row(row, _REFUND), payment_from_row(row),
                        row["poll_attempts"], row["claimed_until"])


REFUNDS = LeasedTable("refunds", "r", "JOIN payments p ON p.id = r.payment_id",
                      f"{refund_fields('r', _REFUND)}, {payment_fields('p')}", _leased)


class PostgresRefundLeases(PostgresLeases[LeasedRefund]):
    """Unsettled refunds due for a poll, of payments of the claimer's accounts."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool, REFUNDS)
