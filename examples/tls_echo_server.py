"""
An echo server over TLS (C{wss://}) with a certificate made at startup: a
throwaway certificate authority signs a certificate for C{localhost} and
C{127.0.0.1}, and the authority's certificate is written to a file for
clients to trust.  (For real deployments use a real certificate, e.g. with
C{twistd txws --tls-cert/--tls-key}; see the README.)

    .venv/bin/python examples/tls_echo_server.py [--port 9443] [--ca-file ca.pem]
    .venv/bin/python examples/echo_client.py wss://localhost:PORT/ hi --ca ca.pem

Without C{--ca-file} the CA certificate goes to a temporary directory; its
path is printed.  The client verifies the chain and the host name against
that CA only: connecting to a name the certificate does not hold fails.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import sys
import tempfile
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet.defer import Deferred
from twisted.internet.ssl import CertificateOptions, PrivateCertificate, TLSVersion
from twisted.internet.task import react

from txws import WebSocketServerFactory, WebSocketServerProtocol


class Echo(WebSocketServerProtocol):
    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def _certificate(subject: str, issuer: str, publicKey: Any, signer: Any,
                 extensions: list[tuple[Any, bool]]) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(publicKey)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(signer, hashes.SHA256())


def makeCredentials() -> tuple[bytes, bytes, bytes]:
    """
    @return: the CA certificate, the server's key and its certificate (PEM).
    """
    caKey = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("txws example CA", "txws example CA", caKey.public_key(), caKey,
                      [(x509.BasicConstraints(ca=True, path_length=0), True)])
    serverKey = ec.generate_private_key(ec.SECP256R1())
    names = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    server = _certificate("localhost", "txws example CA", serverKey.public_key(), caKey,
                          [(names, False), (x509.BasicConstraints(ca=False, path_length=None),
                                            True)])
    pem = serialization.Encoding.PEM
    keyPem = serverKey.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    return ca.public_bytes(pem), keyPem, server.public_bytes(pem)


def main(reactor: Any, argv: list[str]) -> Deferred[None]:
    parser = argparse.ArgumentParser(description="A wss:// echo server.")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--ca-file", help="where to write the CA certificate")
    args = parser.parse_args(argv)
    caPem, keyPem, certPem = makeCredentials()
    caFile = args.ca_file or os.path.join(tempfile.mkdtemp(prefix="txws-example-"), "ca.pem")
    with open(caFile, "wb") as f:
        f.write(caPem)
    private = PrivateCertificate.loadPEM(keyPem + certPem)
    tls = CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        raiseMinimumTo=TLSVersion.TLSv1_2,  # nothing older than TLS 1.2
    )
    factory = WebSocketServerFactory(reactor=reactor)
    factory.protocol = Echo
    port = reactor.listenSSL(args.port, factory, tls, interface="127.0.0.1")
    print(f"CA certificate: {caFile}", flush=True)
    print(f"TLS echo server on wss://localhost:{port.getHost().port}/", flush=True)
    return Deferred()


if __name__ == "__main__":
    react(main, [sys.argv[1:]])
