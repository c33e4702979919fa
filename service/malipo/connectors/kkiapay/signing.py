"""KKiaPay's webhook authentication: a shared secret in a header, not a signature.

KKiaPay does not sign the body: the `x-kkiapay-secret` header carries the hash secret set on
the dashboard, verbatim (NOTES.md section 3). Anyone who learns it can forge any body, which
is why every webhook is only a trigger for a status call (callbacks.py). The compare is still
constant-time, and a previous secret may be configured while the dashboard's is rotated.
"""

from __future__ import annotations

from collections.abc import Mapping

from malipo.connectors.rotation import any_secret_matches
from malipo.domain.errors import CallbackRejected

SECRET_HEADER = "x-kkiapay-secret"  # noqa: S105 (a header name, not a secret)


def verify(headers: Mapping[str, str], secrets: tuple[str, ...]) -> None:
    """`headers` with lower-case names, as the callback listener records them."""
    if not secrets:
        raise CallbackRejected("no webhook secret is configured for this KKiaPay account")
    received = headers.get(SECRET_HEADER, "")
    if not received or not any_secret_matches(received, secrets):
        raise CallbackRejected("KKiaPay webhook secret header missing or wrong")
