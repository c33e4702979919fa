"""Reading the provider exchange log: what support opens when "charged but failed" comes in."""

from __future__ import annotations

from collections.abc import Sequence

from malipo.app.commands import check_payment_id
from malipo.app.services import Services
from malipo.app.unit_of_work import ExchangeKind, ExchangeRecord
from malipo.domain.errors import NotFound
from malipo.domain.resolutions import Resolution


async def list_provider_exchanges(svc: Services, tenant: str,
                                  payment_id: str) -> Sequence[ExchangeRecord]:
    """The payment's requests, callbacks and operators' resolutions, oldest first; another
    tenant's id is NotFound. Resolutions share the timeline: they were decided on what the
    exchanges around them say, and support reads both together."""
    check_payment_id(payment_id)
    async with svc.uow() as uow:
        payment = await uow.payments.get(payment_id, tenant=tenant)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        exchanges = await uow.exchanges.for_payment(payment)
        resolutions = await uow.resolutions.for_payment(payment_id)
    # A stable sort: exchanges keep their order, a resolution follows what it saw.
    return sorted([*exchanges, *map(_as_exchange, resolutions)], key=lambda e: e.at)


def _as_exchange(r: Resolution) -> ExchangeRecord:
    if r.refund_id:
        operation, detail = "resolve_refund", f"refund {r.refund_id}: "
    else:
        operation, detail = "resolve", ""
    return ExchangeRecord(ExchangeKind.RESOLUTION, operation, "", "", "", 0, "", 0.0,
                          r.resolved_at, f"{detail}{r.from_status} -> {r.to_status}",
                          resolution=r)
