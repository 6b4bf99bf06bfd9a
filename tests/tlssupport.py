"""
Certificates for TLS tests: a throwaway certificate authority that issues
server certificates, as Twisted options for in-process listeners or as PEM
files for real server processes (C{twistd txws --tls-cert ...}).

Design: every key is a fresh P-256 key and every certificate is valid from
an hour ago for a day, so nothing is kept between runs.  An authority may be
an intermediate (C{TestAuthority(issuer=root)}): clients then trust the root
only and the server must send the intermediate as its chain.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet.ssl import Certificate, CertificateOptions, PrivateCertificate

from tests.typedtrial import TestCase

__all__ = ["ServerCredentials", "ServerFiles", "TestAuthority"]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@dataclass(frozen=True)
class ServerCredentials:
    """
    A server's key and certificate, in PEM.

    @ivar keyPem: the private key (PKCS#8, unencrypted).
    @ivar certPem: the server certificate.
    @ivar chainPem: the intermediate certificates between it and the root
        (empty when issued by a root).
    """

    keyPem: bytes
    certPem: bytes
    chainPem: bytes


@dataclass(frozen=True)
class ServerFiles:
    """
    Absolute paths of a server's credentials written to disk.

    @ivar key: the private key (mode 0600).
    @ivar cert: the server certificate.
    @ivar chain: the intermediate certificates, or C{None} when there are
        none.
    @ivar ca: the root CA certificate (a C{cafile} for Python's C{ssl}).
    """

    key: str
    cert: str
    chain: Optional[str]
    ca: str


class TestAuthority:
    """
    A throwaway certificate authority that issues server certificates.

    @ivar certificate: the root CA certificate, as Twisted's L{Certificate}
        (a C{trustRoot}).
    @ivar pem: the root CA certificate in PEM (a C{cafile} for Python's
        C{ssl}).
    """

    def __init__(self, issuer: Optional[TestAuthority] = None, name: str = "txws test CA") -> None:
        """
        @param issuer: the authority that signs this one's certificate, for
            an intermediate; C{None} for a self-signed root.
        @param name: the certificate's common name.
        """
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._issuer = issuer
        now = datetime.datetime.now(datetime.timezone.utc)
        signingKey = issuer._key if issuer is not None else self._key
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(issuer._cert.subject if issuer is not None else _name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0),
                critical=True,
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer._key.public_key()),
                critical=False,
            )
        self._cert: x509.Certificate = builder.sign(signingKey, hashes.SHA256())
        self._ownPem = self._cert.public_bytes(serialization.Encoding.PEM)
        root = self
        while root._issuer is not None:
            root = root._issuer
        self.pem = root._ownPem
        self.certificate = Certificate.loadPEM(self.pem)

    def _chainPem(self) -> bytes:
        """
        @return: this authority's certificate and its issuers' up to, not
            including, the root (empty for a root).
        """
        chain = b""
        authority: Optional[TestAuthority] = self
        while authority is not None and authority._issuer is not None:
            chain += authority._ownPem
            authority = authority._issuer
        return chain

    def issueServer(
        self,
        dnsNames: tuple[str, ...] = ("localhost",),
        ipAddresses: tuple[str, ...] = ("127.0.0.1",),
    ) -> ServerCredentials:
        """
        Issue a server certificate.

        @param dnsNames: the certificate's DNS names.
        @param ipAddresses: the certificate's IP addresses.
        @return: the new key, certificate and chain.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names: list[x509.GeneralName] = [x509.DNSName(n) for n in dnsNames]
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ipAddresses]
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(dnsNames[0] if dnsNames else "txws test server"))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        keyPem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return ServerCredentials(
            keyPem=keyPem,
            certPem=cert.public_bytes(serialization.Encoding.PEM),
            chainPem=self._chainPem(),
        )

    def serverOptions(
        self,
        dnsNames: tuple[str, ...] = ("localhost",),
        ipAddresses: tuple[str, ...] = ("127.0.0.1",),
    ) -> CertificateOptions:
        """
        Issue a server certificate and return TLS server options using it.

        @param dnsNames: the certificate's DNS names.
        @param ipAddresses: the certificate's IP addresses.
        @return: options for C{listenSSL} or C{wrapClientTLS}'s peer.
        """
        credentials = self.issueServer(dnsNames, ipAddresses)
        private = PrivateCertificate.loadPEM(credentials.keyPem + credentials.certPem)
        if not credentials.chainPem:
            options: CertificateOptions = private.options()
            return options
        chain = [
            Certificate.loadPEM(pem).original
            for pem in _splitPem(credentials.chainPem)
        ]
        return CertificateOptions(
            privateKey=private.privateKey.original,
            certificate=private.original,
            extraCertChain=chain,
        )

    def writeCAFile(self, testCase: TestCase) -> str:
        """
        Write the root CA certificate to a file in the test's temporary
        directory.

        @return: its path (a C{cafile} for Python's C{ssl} module).
        """
        path: str = testCase.mktemp()
        with open(path, "wb") as f:
            f.write(self.pem)
        return os.path.abspath(path)

    def writeServerFiles(
        self,
        testCase: TestCase,
        dnsNames: tuple[str, ...] = ("localhost",),
        ipAddresses: tuple[str, ...] = ("127.0.0.1",),
    ) -> ServerFiles:
        """
        Issue a server certificate and write it, its key (mode 0600), its
        chain (if any) and the root CA certificate into a new directory in
        the test's temporary directory.

        @param testCase: the test whose C{mktemp} names the directory.
        @param dnsNames: the certificate's DNS names.
        @param ipAddresses: the certificate's IP addresses.
        @return: the absolute paths.
        """
        directory = os.path.abspath(testCase.mktemp())
        os.makedirs(directory)
        credentials = self.issueServer(dnsNames, ipAddresses)

        def write(name: str, data: bytes, mode: int = 0o644) -> str:
            path = os.path.join(directory, name)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return path

        return ServerFiles(
            key=write("server.key", credentials.keyPem, 0o600),
            cert=write("server.pem", credentials.certPem),
            chain=write("chain.pem", credentials.chainPem) if credentials.chainPem else None,
            ca=write("ca.pem", self.pem),
        )


def _splitPem(pem: bytes) -> list[bytes]:
    """
    @param pem: concatenated PEM certificates.
    @return: each certificate's PEM.
    """
    end = b"-----END CERTIFICATE-----"
    return [part + end + b"\n" for part in pem.split(end) if part.strip()]
