"""
Integration tests of the TLS policy of C{twistd txws}: a real C{twistd -n
txws --app echo} process with two TLS listeners on 127.0.0.1, one given as a
full C{ssl:} string, one using C{--tls-cert}/C{--tls-key}/C{--tls-chain},
with certificates from a CA generated in the test.  Clients that verify the
host name connect with TLS 1.2 and 1.3 and echo; a client limited to TLS 1.1
is refused by the server; SIGTERM closes an open connection with 1001 and
the process exits 0.

Design: the clients are Python's C{ssl} module and the C{websockets} sync
client, run in threads so the test's reactor keeps serving the process.  A
TLS 1.1 client is first shown to complete a handshake with a permissive
server of this process (so the refusal is the txws server's, not the
client's OpenSSL).
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import Any, Optional

from twisted.internet.threads import deferToThread
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.tlssupport import ServerFiles, ServerProcess, TestAuthority, startServer
from tests.typedtrial import TestCase

#: Seconds a client step may take.
CLIENT_TIMEOUT = 10.0

#: Lets a client (or the control server) offer TLS 1.1 and its ciphers.
_LEGACY_CIPHERS = "DEFAULT:@SECLEVEL=0"


def _clientContext(
    cafile: str, version: ssl.TLSVersion, legacy: bool = False
) -> ssl.SSLContext:
    """
    @return: a client context that verifies the chain against C{cafile}
        and the host name, limited to one protocol version.
    """
    context = ssl.create_default_context(cafile=cafile)
    if legacy:
        context.set_ciphers(_LEGACY_CIPHERS)
    context.minimum_version = version
    context.maximum_version = version
    return context


def _echo(port: int, context: ssl.SSLContext) -> tuple[str, str]:
    """
    Connect to C{wss://127.0.0.1:PORT/ws} checking the name C{localhost},
    echo one message, close.

    @return: the negotiated TLS version and the echoed text.
    """
    with connect(
        f"wss://127.0.0.1:{port}/ws",
        ssl=context,
        server_hostname="localhost",
        open_timeout=CLIENT_TIMEOUT,
        close_timeout=CLIENT_TIMEOUT,
    ) as websocket:
        sslSocket: Any = websocket.socket
        version = sslSocket.version()
        websocket.send("tls héllo")
        reply = websocket.recv(timeout=CLIENT_TIMEOUT)
    assert isinstance(reply, str)
    return version, reply


def _handshake(port: int, context: ssl.SSLContext) -> str:
    """
    A bare TLS handshake with C{127.0.0.1:PORT} as C{localhost}.

    @return: the negotiated version.
    @raise ssl.SSLError: if the handshake fails.
    """
    with (
        socket.create_connection(("127.0.0.1", port), timeout=CLIENT_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        version = tls.version()
    assert version is not None
    return version


class _PermissiveServer:
    """
    A TLS server in a thread of this process that accepts TLS 1.1: the
    control showing that the TLS 1.1 client can complete a handshake.
    """

    def __init__(self, files: ServerFiles) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(files.cert, files.key)
        context.set_ciphers(_LEGACY_CIPHERS)
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(CLIENT_TIMEOUT)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serveOnce, daemon=True)
        self._thread.start()

    def _serveOnce(self) -> None:
        try:
            connection, _ = self._listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(CLIENT_TIMEOUT)
            try:
                with self._context.wrap_socket(connection, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    def close(self) -> None:
        self._listener.close()
        self._thread.join(CLIENT_TIMEOUT)


class TLSPolicyTests(TestCase):
    """
    Every TLS listener accepts TLS 1.2 and 1.3 and refuses older versions,
    whether it is given as a full C{ssl:} string or with C{--tls-cert}.
    """

    authority: TestAuthority
    direct: ServerFiles
    convenient: ServerFiles
    server: Optional[ServerProcess] = None

    async def setUp(self) -> None:  # type: ignore[override]
        self.authority = TestAuthority()
        self.direct = self.authority.writeServerFiles(self)
        # The convenience listener's certificate comes from an intermediate
        # CA: clients trust only the root, so the chain must be sent.
        intermediate = TestAuthority(issuer=self.authority, name="txws test intermediate")
        self.convenient = intermediate.writeServerFiles(self)
        assert self.convenient.chain is not None
        server = startServer(
            self,
            [
                "--app", "echo",
                "--listen",
                f"ssl:0:interface=127.0.0.1:privateKey={self.direct.key}"
                f":certKey={self.direct.cert}",
                "--listen", "ssl:0:interface=127.0.0.1",
                "--tls-cert", self.convenient.cert,
                "--tls-key", self.convenient.key,
                "--tls-chain", self.convenient.chain,
                "--close-timeout", "5",
            ],
            listeners=2,
        )
        self.ports = await server.ready
        self.server = server

    @property
    def cafile(self) -> str:
        return self.direct.ca

    async def test_modernVersionsAccepted(self) -> None:
        """
        On both listeners, clients that verify the chain and the host name
        echo over TLS 1.2 and TLS 1.3.
        """
        for port in self.ports:
            for version, name in ((ssl.TLSVersion.TLSv1_2, "TLSv1.2"),
                                  (ssl.TLSVersion.TLSv1_3, "TLSv1.3")):
                result = await deferToThread(_echo, port, _clientContext(self.cafile, version))
                self.assertEqual(result, (name, "tls héllo"), (port, name))

    async def test_oldVersionsRefusedByServer(self) -> None:
        """
        A client limited to TLS 1.1 (which completes a handshake with a
        permissive server) is refused by both listeners with a protocol
        version alert; so is one limited to TLS 1.0.
        """
        legacy = _clientContext(self.cafile, ssl.TLSVersion.TLSv1_1, legacy=True)
        control = _PermissiveServer(self.direct)
        try:
            controlVersion = await deferToThread(_handshake, control.port, legacy)
        except ssl.SSLError as e:
            raise self.skipTest(
                f"this OpenSSL cannot speak TLS 1.1 even with {_LEGACY_CIPHERS}: {e}; the "
                "server's refusal could not be told from the client's"
            ) from None
        finally:
            control.close()
        self.assertEqual(controlVersion, "TLSv1.1")
        for port in self.ports:
            for version in (ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1):
                context = _clientContext(self.cafile, version, legacy=True)
                with self.assertRaises(ssl.SSLError) as caught:
                    await deferToThread(_handshake, port, context)
                self.assertIn("PROTOCOL_VERSION", caught.exception.reason or "", caught.exception)
        # The listeners still serve after refusing.
        result = await deferToThread(
            _echo, self.ports[0], _clientContext(self.cafile, ssl.TLSVersion.TLSv1_3)
        )
        self.assertEqual(result, ("TLSv1.3", "tls héllo"))

    async def test_untrustedRefusedByClient(self) -> None:
        """
        A client that does not trust the test CA refuses the server (the
        certificates really are checked by these clients).
        """
        other = TestAuthority().writeCAFile(self)
        context = _clientContext(other, ssl.TLSVersion.TLSv1_3)
        with self.assertRaises(ssl.SSLCertVerificationError):
            await deferToThread(_handshake, self.ports[1], context)

    async def test_sigtermClosesWith1001(self) -> None:
        """
        SIGTERM with an open echo connection on each listener: each client
        sees close code 1001 and the process exits 0.
        """
        assert self.server is not None
        server = self.server
        stopped = threading.Event()

        def holdOpen(port: int, opened: threading.Event) -> Optional[int]:
            context = _clientContext(self.cafile, ssl.TLSVersion.TLSv1_2)
            with connect(
                f"wss://127.0.0.1:{port}/ws",
                ssl=context,
                server_hostname="localhost",
                open_timeout=CLIENT_TIMEOUT,
            ) as websocket:
                websocket.send("still here")
                websocket.recv(timeout=CLIENT_TIMEOUT)
                opened.set()
                stopped.wait(CLIENT_TIMEOUT)
                try:
                    websocket.recv(timeout=CLIENT_TIMEOUT)
                except ConnectionClosed as closed:
                    return None if closed.rcvd is None else closed.rcvd.code
            return None

        opened = [threading.Event() for _ in self.ports]
        clients = [deferToThread(holdOpen, p, o) for p, o in zip(self.ports, opened, strict=True)]
        for event in opened:
            self.assertTrue(await deferToThread(event.wait, CLIENT_TIMEOUT))
        server.transport.signalProcess("TERM")
        stopped.set()
        codes = [await client for client in clients]
        await server.stop()
        self.assertEqual(codes, [1001, 1001])
        self.assertEqual((server.exitCode, server.signal), (0, None), server.text())
        self.assertNotIn("Traceback", server.text())
