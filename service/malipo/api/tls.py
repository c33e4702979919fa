"""TLS for the gRPC server and the callback listener, from PEM files named in config.

A certificate and key turn TLS on; a client CA bundle on top turns on mutual TLS: a client
must present a certificate signed by that CA, or the handshake fails before any RPC runs.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc


def server_credentials(cert: Path, key: Path, client_ca: Path | None) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None)


def ssl_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context
