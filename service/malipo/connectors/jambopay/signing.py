"""JamboPay's callback authentication: there is none to verify, only where it came from.

The callback (NOTES.md section 4) carries no signature and no secret, so nothing in it can be
checked; the connector declares callbacks_need_confirmation and the service asks the status
endpoint before applying any callback. The one check left is the sender's address, against
`callback_allowed_ips` when configured. Outbound, JamboPay authenticates us by bearer token
and app key (client.py); no request is signed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from malipo.domain.errors import CallbackRejected

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """`callback_allowed_ips` parsed once, when the account is read, not on every callback
    (the settings checked each entry already)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def check_source(remote: str, allowed: Sequence[Network]) -> None:
    """The only check an unsigned callback allows: where it came from (when configured)."""
    if not allowed:
        return
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        raise CallbackRejected("callback from an unreadable address") from None
    if not any(address in network for network in allowed):
        raise CallbackRejected("callback from an address outside callback_allowed_ips")
