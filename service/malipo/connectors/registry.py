"""The explicit registry of connectors: provider name -> class. No plugin discovery."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Protocol

from malipo.app.connector import Connector, ProviderAccount


class ConnectorFactory(Protocol):
    def __call__(self, account: ProviderAccount) -> Connector: ...


# provider name -> "module:class". Each connector's __init__ exports exactly that class.
CONNECTORS: Mapping[str, str] = {
    "simulator": "malipo.connectors.simulator:SimulatorConnector",
    "gateway": "malipo.connectors.gateway:GatewayConnector",
    "paykassma": "malipo.connectors.paykassma:PaykassmaConnector",
    "kkiapay": "malipo.connectors.kkiapay:KkiapayConnector",
    "jambopay": "malipo.connectors.jambopay:JambopayConnector",
    "kwik": "malipo.connectors.kwik:KwikConnector",
}


def connector_class(provider: str) -> ConnectorFactory:
    try:
        module_name, _, class_name = CONNECTORS[provider].partition(":")
    except KeyError:
        raise KeyError(f"no connector named {provider!r}") from None
    factory: ConnectorFactory = getattr(importlib.import_module(module_name), class_name)
    return factory


def build(account: ProviderAccount) -> Connector:
    return connector_class(account.provider)(account)


def known_providers() -> Iterator[str]:
    return iter(CONNECTORS)
