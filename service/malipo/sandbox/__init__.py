"""Faithful fakes of every provider (aiohttp servers), used by tests and by `serve --demo`."""
