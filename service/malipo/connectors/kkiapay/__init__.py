"""KKiaPay (Benin mobile money): widget payments verified server-side, refunds."""

from .connector import KkiapayConnector

__all__ = ["KkiapayConnector"]
