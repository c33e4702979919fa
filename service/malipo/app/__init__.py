"""Use cases and the ports they need (unit of work, connectors, clock)."""
