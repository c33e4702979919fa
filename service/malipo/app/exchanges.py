"""Reading the provider exchange log: what support opens when "charged but failed" comes in."""

from __future__ import annotations

from collections.abc import Sequence

from malipo.app.commands import check_payment_id
from malipo.app.services import Services
from malipo.app.unit_of_work import ExchangeRecord
from malipo.domain.errors import NotFound


async def list_provider_exchanges(svc: Services, tenant: str,
                                  payment_id: str) -> Sequence[ExchangeRecord]:
    """The payment's requests and callbacks, oldest first; another tenant's id is NotFound."""
    check_payment_id(payment_id)
    async with svc.uow() as uow:
        payment = await uow.payments.get(payment_id, tenant=tenant)
        if payment is None:
            raise NotFound(f"payment {payment_id} not found")
        return await uow.exchanges.for_payment(payment)
