"""The explicit registry of connectors: provider name -> class. No plugin discovery.

Adding a provider adds its folder and one line here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

from malipo.app.connector import Connector, ProviderAccount
from malipo.connectors.gateway import GatewayConnector
from malipo.connectors.jambopay import JambopayConnector
from malipo.connectors.kkiapay import KkiapayConnector
from malipo.connectors.kwik import KwikConnector
from malipo.connectors.paykassma import PaykassmaConnector
from malipo.connectors.simulator import SimulatorConnector


class ConnectorFactory(Protocol):
    def __call__(self, account: ProviderAccount) -> Connector: ...


CONNECTORS: Mapping[str, ConnectorFactory] = {
    "simulator": SimulatorConnector,
    "gateway": GatewayConnector,
    "paykassma": PaykassmaConnector,
    "kkiapay": KkiapayConnector,
    "jambopay": JambopayConnector,
    "kwik": KwikConnector,
}


def connector_class(provider: str) -> ConnectorFactory:
    try:
        return CONNECTORS[provider]
    except KeyError:
        raise KeyError(f"no connector named {provider!r}") from None


def build(account: ProviderAccount) -> Connector:
    return connector_class(account.provider)(account)


def known_providers() -> Iterator[str]:
    return iter(CONNECTORS)
