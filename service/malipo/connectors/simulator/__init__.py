"""The simulator provider: every path of the lifecycle, chosen by the request, no network."""

from malipo.connectors.simulator.connector import SimulatorConnector

__all__ = ["SimulatorConnector"]
