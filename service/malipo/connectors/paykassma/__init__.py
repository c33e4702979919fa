"""Paykassma M-Pesa connector (see connector.py for the settings it reads)."""

from malipo.connectors.paykassma.connector import PaykassmaConnector

__all__ = ["PaykassmaConnector"]
