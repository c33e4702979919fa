"""Kwik debit orders (South Africa, ZAR)."""

from malipo.connectors.kwik.connector import KwikConnector

__all__ = ["KwikConnector"]
