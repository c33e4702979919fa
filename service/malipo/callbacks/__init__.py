"""The provider callback listener (aiohttp) and what it does with each delivery."""
