"""JamboPay utility payments (Kenya): KPLC tokens and airtime, presentment then commit."""

from malipo.connectors.jambopay.connector import JambopayConnector

__all__ = ["JambopayConnector"]
