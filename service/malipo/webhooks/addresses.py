"""Where delivery may connect: a resolver that refuses names answering internal addresses.

check_url (app/webhooks.py) refuses internal IP addresses written in a URL; a name can
answer anything, and answer differently later, so it is checked here, on the very addresses
the connection will use. A check by a lookup before the POST would not do: a name that
answers a public address to the check and 169.254.169.254 to the connection (DNS
rebinding) would slip between the two.
"""

from __future__ import annotations

import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from malipo.app.webhooks import internal_kind


class InternalAddress(OSError):
    """A webhook host resolved to an address delivery must not connect to. Names neither
    host nor address: the error reaches the tenant's last_error."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"the host resolves to an internal address ({kind}): refused")
        self.kind = kind


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver, refusing the whole answer when any address in it is internal
    (a name mixing public and private answers is one a connection could be steered by).

    Loopback passes: http:// to this machine is allowed by design (check_url), `localhost`
    is a name, and a name answering 127.0.0.1 reaches nothing http://127.0.0.1 cannot."""

    def __init__(self, inner: AbstractResolver | None = None) -> None:
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            kind = internal_kind(ipaddress.ip_address(answer["host"]))
            if kind and kind != "loopback":
                raise InternalAddress(kind)
        return answers

    async def close(self) -> None:
        await self._inner.close()
