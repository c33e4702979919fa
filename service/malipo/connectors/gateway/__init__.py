"""The white-label Payment API Gateway connector (see connector.py)."""

from malipo.connectors.gateway.connector import GatewayConnector

__all__ = ["GatewayConnector"]
