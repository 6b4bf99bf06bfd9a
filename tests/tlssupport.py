"""
Certificates for TLS tests: a throwaway certificate authority that issues
server certificates, as Twisted options for in-process listeners or as PEM
files for real server processes (C{twistd txws --tls-cert ...}); and
L{startServer}, which runs C{twistd -n txws} (or C{python -m txws}) as a
real process and tells its ports.

Design: every key is a fresh P-256 key and every certificate is valid from
an hour ago for a day, so nothing is kept between runs.  An authority may be
an intermediate (C{TestAuthority(issuer=root)}): clients then trust the root
only and the server must send the intermediate as its chain.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.ssl import Certificate, CertificateOptions, PrivateCertificate
from twisted.python.failure import Failure

from tests.typedtrial import SynchronousTestCase, TestCase

__all__ = [
    "ROOT",
    "ServerCredentials",
    "ServerFiles",
    "ServerProcess",
    "TestAuthority",
    "startServer",
]

#: The checkout: on C{PYTHONPATH} of server processes, so that
#: C{twisted/plugins/txws_plugin.py} is found.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Seconds a server process may take to start listening, or to stop.
PROCESS_TIMEOUT = 30.0

reactor: Any = _reactor


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

    def writeCAFile(self, testCase: SynchronousTestCase) -> str:
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
        testCase: SynchronousTestCase,
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


# -- Server processes ----------------------------------------------------------


_LISTENING = re.compile(rb"txws \S+ listening on (?:https?|wss?)://127\.0\.0\.1:(\d+)/")


class ServerProcess(ProcessProtocol):
    """
    A C{twistd txws} process: collects its output (standard output and
    error together), reports its ports and how it ended.

    @ivar output: everything it wrote so far.
    @ivar ports: the ports it announced (C{txws APP listening on URL}), in
        order.
    @ivar ready: fires with L{ports} once C{listeners} were announced; fails
        if the process ends first.
    @ivar ended: fires with C{None} when the process has ended.
    @ivar exitCode: its exit status once ended (C{None} if killed by a
        signal).
    @ivar signal: the signal that killed it, if one did.
    """

    def __init__(self, listeners: int = 1) -> None:
        """
        @param listeners: how many announcements make it ready.
        """
        self.output = b""
        self.ports: list[int] = []
        self.ready: Deferred[list[int]] = Deferred()
        self.ended: Deferred[None] = Deferred()
        self.exitCode: Optional[int] = None
        self.signal: Optional[int] = None
        self._listeners = listeners
        self.transport: Any = None

    def outReceived(self, data: bytes) -> None:
        """
        Collect output and look for announcements.

        @param data: what the process wrote.
        """
        self.output += data
        self.ports = [int(m.group(1)) for m in _LISTENING.finditer(self.output)]
        if len(self.ports) >= self._listeners and not self.ready.called:
            self.ready.callback(self.ports)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        """
        Record how it ended.

        @param reason: its end.
        """
        self.exitCode = getattr(reason.value, "exitCode", None)
        self.signal = getattr(reason.value, "signal", None)
        if not self.ready.called:
            self.ready.errback(
                RuntimeError(f"the server ended before listening:\n{self.text()}")
            )
        self.ended.callback(None)

    def running(self) -> bool:
        """
        @return: whether the process is still running.
        """
        return not self.ended.called

    def text(self) -> str:
        """
        @return: its output, as text.
        """
        return self.output.decode("utf-8", "replace")

    def stop(self, signalName: str = "TERM") -> Deferred[None]:
        """
        Send a signal and wait (bounded) for the process to end.

        @param signalName: C{TERM}, C{INT}, C{KILL}, ...
        @return: a Deferred that fires when it has ended.
        """
        if self.running():
            self.transport.signalProcess(signalName)
        return self.ended.addTimeout(PROCESS_TIMEOUT, reactor)


def startServer(
    testCase: TestCase,
    arguments: list[str],
    *,
    viaModule: bool = False,
    listeners: int = 1,
    cwd: Optional[str] = None,
    env: Optional[dict[str, str]] = None,
    **spawnArguments: Any,
) -> ServerProcess:
    """
    Start C{twistd -n --pidfile= txws ARGUMENTS} (or C{python -m txws
    ARGUMENTS}) with this interpreter, the checkout on C{PYTHONPATH}, in a
    new temporary directory unless C{cwd} is given.  The process is killed
    at the test's end if it still runs.

    @param testCase: the test.
    @param arguments: the plugin's options.
    @param viaModule: run C{python -m txws} instead of twistd.
    @param listeners: how many listeners it announces before it is ready.
    @param cwd: its working directory.
    @param env: extra environment variables.
    @param spawnArguments: more arguments for C{spawnProcess} (C{uid}, ...).
    @return: the process; await its C{ready} (bounded by the caller).
    """
    if viaModule:
        argv = [sys.executable, "-m", "txws", *arguments]
    else:
        argv = [
            sys.executable,
            "-c",
            "from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            "txws",
            *arguments,
        ]
    if cwd is None:
        cwd = os.path.abspath(testCase.mktemp())
        os.makedirs(cwd)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p
    )
    environment.update(env or {})
    process = ServerProcess(listeners)
    reactor.spawnProcess(process, sys.executable, argv, env=environment, path=cwd,
                         **spawnArguments)
    process.ready.addTimeout(PROCESS_TIMEOUT, reactor)

    async def cleanUp() -> None:
        if process.running():
            process.transport.signalProcess("KILL")
            await process.ended

    testCase.addCleanup(cleanUp)
    return process
