"""gRPC channels to Malipo: plaintext for local development, TLS or mTLS otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

# Keep idle connections (and long WatchStatus streams) alive through proxies and NATs.
DEFAULT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
)


@dataclass(frozen=True, slots=True)
class Tls:
    """Server verification (`root_certificates`, PEM; None: the system's roots) and, for
    mTLS, the client's own certificate chain and private key (PEM)."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name_override: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("mTLS needs both certificate_chain and private_key")
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def create_channel(target: str, *, tls: Tls | None = None,
                   interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
                   options: Sequence[tuple[str, int | str]] = ()) -> grpc.aio.Channel:
    """A channel to `target` ("host:port"). Without `tls` it is plaintext: local use only,
    since the API key travels in the clear."""
    merged = [*DEFAULT_OPTIONS, *options]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=merged, interceptors=interceptors)
    if tls.server_name_override:
        merged.append(("grpc.ssl_target_name_override", tls.server_name_override))
    return grpc.aio.secure_channel(target, tls.credentials(), options=merged,
                                   interceptors=interceptors)
