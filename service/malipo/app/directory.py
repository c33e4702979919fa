"""Which connector serves a (provider, account) for a tenant."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from malipo.app.connector import Connector
from malipo.app.policies import PollPolicy
from malipo.domain.errors import FieldViolation, InvalidRequest, NotFound
from malipo.domain.payments import Payment


class ConnectorDirectory:
    def __init__(self, connectors: Iterable[Connector],
                 policies: Mapping[str, PollPolicy] | None = None) -> None:
        self._by_key: dict[tuple[str, str], Connector] = {}
        for c in connectors:
            self._by_key[(c.provider, c.account.name)] = c
        self._policies = dict(policies or {})

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_key.values())

    def all(self) -> list[Connector]:
        return list(self._by_key.values())

    def policy(self, provider: str) -> PollPolicy:
        return self._policies.get(provider, PollPolicy())

    def for_tenant(self, tenant: str) -> list[Connector]:
        return [c for c in self._by_key.values() if c.account.allows(tenant)]

    def resolve(self, provider: str, account: str, tenant: str) -> Connector:
        """The connector for a new payment; unknown names are the caller's input error."""
        if not provider:
            raise InvalidRequest(FieldViolation("provider", "required"))
        candidates = [c for c in self.for_tenant(tenant) if c.provider == provider]
        if not candidates:
            raise InvalidRequest(FieldViolation("provider", f"unknown provider {provider!r}; "
                                                "see ListProviders"), reason="UNKNOWN_PROVIDER")
        if not account:
            return sorted(candidates, key=lambda c: c.account.name)[0]
        for c in candidates:
            if c.account.name == account:
                return c
        raise InvalidRequest(FieldViolation("account", f"unknown account {account!r} for "
                                            f"{provider}"), reason="UNKNOWN_ACCOUNT")

    def for_payment(self, payment: Payment) -> Connector:
        connector = self._by_key.get((payment.provider, payment.account))
        if connector is None:
            raise NotFound(f"provider account {payment.provider}/{payment.account} is not "
                           "configured any more")
        return connector

    def get(self, provider: str, account: str) -> Connector | None:
        return self._by_key.get((provider, account))

    async def close(self) -> None:
        for c in self._by_key.values():
            await c.close()
