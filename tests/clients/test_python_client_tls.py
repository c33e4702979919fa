# pyright: basic
"""malipo-client's TLS and mTLS channels, against a gRPC server that demands a client
certificate (the service itself terminates TLS elsewhere; this checks the client's side)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from malipo.client import NO_RETRY, MalipoClient, Tls
from malipo.payments.v1 import payment_pb2, payment_service_pb2, payment_service_pb2_grpc

pb = payment_service_pb2


@dataclass
class Pem:
    cert: bytes
    key: bytes


def issue(name: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
          *, server: bool = False) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .issuer_name(issuer[0].subject if issuer else subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=1))
               .not_valid_after(now + dt.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None),
                              critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def pem(pair: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> Pem:
    return Pem(pair[0].public_bytes(serialization.Encoding.PEM),
               pair[1].private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))


class Echo(payment_service_pb2_grpc.PaymentServiceServicer):
    """Answers GetPayment only (with what it saw); the rest stays unimplemented."""

    async def GetPayment(self, request, context):  # type: ignore[override]
        header = str(dict(context.invocation_metadata() or ()).get("authorization", ""))
        peer = bytes(context.auth_context().get("x509_common_name", [b""])[0]).decode()
        return pb.GetPaymentResponse(payment=payment_pb2.Payment(
            id=request.payment_id, metadata={"authorization": header, "peer": peer}))


@dataclass
class TlsServer:
    address: str
    ca: Pem
    client: Pem
    stranger: Pem


@pytest.fixture(scope="module")
async def tls_server() -> AsyncIterator[TlsServer]:
    ca = issue("test-ca", None)
    server_pem = pem(issue("localhost", ca, server=True))
    other_ca = issue("other-ca", None)
    server = grpc.aio.server()
    payment_service_pb2_grpc.add_PaymentServiceServicer_to_server(
        Echo(), server)  # pyright: ignore[reportAbstractUsage]
    credentials = grpc.ssl_server_credentials([(server_pem.key, server_pem.cert)],
                                              root_certificates=pem(ca).cert,
                                              require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    try:
        yield TlsServer(f"127.0.0.1:{port}", pem(ca), pem(issue("acme-backend", ca)),
                        pem(issue("acme-backend", other_ca)))
    finally:
        await server.stop(None)


async def test_mtls_channel_presents_the_client_certificate_and_the_key(
        tls_server: TlsServer) -> None:
    tls = Tls(root_certificates=tls_server.ca.cert, certificate_chain=tls_server.client.cert,
              private_key=tls_server.client.key)
    async with MalipoClient.connect(tls_server.address, "key-acme", tls=tls) as client:
        got = await client.get_payment("pay_1")
    assert got.id == "pay_1"
    assert got.metadata["authorization"] == "Bearer key-acme"
    assert got.metadata["peer"] == "acme-backend"


@pytest.mark.parametrize("who", ["nobody", "stranger"])
async def test_without_a_trusted_client_certificate_the_call_fails(
        tls_server: TlsServer, who: str) -> None:
    chain = tls_server.stranger if who == "stranger" else None
    tls = Tls(root_certificates=tls_server.ca.cert,
              certificate_chain=chain.cert if chain else None,
              private_key=chain.key if chain else None)
    async with MalipoClient.connect(tls_server.address, "key-acme", tls=tls, timeout_s=3,
                                    retry=NO_RETRY) as client:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.get_payment("pay_1")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_server_the_client_does_not_trust_is_refused(tls_server: TlsServer) -> None:
    tls = Tls(root_certificates=pem(issue("other-ca", None)).cert,
              certificate_chain=tls_server.client.cert, private_key=tls_server.client.key)
    async with MalipoClient.connect(tls_server.address, "key-acme", tls=tls, timeout_s=3,
                                    retry=NO_RETRY) as client:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.get_payment("pay_1")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_half_an_mtls_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        Tls(certificate_chain=b"cert").credentials()
