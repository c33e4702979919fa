"""One sub-package per provider, and the explicit registry of them (registry.py)."""
