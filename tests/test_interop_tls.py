"""
Integration tests of C{wss://}: the txws server behind TLS with a
certificate from a throwaway test CA, reached by the txws client (which
verifies the chain and the host name) and by the C{websockets} client.
"""

from __future__ import annotations

from typing import Any

from OpenSSL.SSL import Error as TLSError
from service_identity import VerificationError
from twisted.internet.ssl import optionsForClientTLS

from tests.peers.harness import (
    RecordingClientFactory,
    RecordingClientProtocol,
    RecordingServerFactory,
    bounded,
    dropConnections,
    failureOf,
    listenedPort,
    reactor,
    runPeer,
)
from tests.peers.payloads import ECHO_REPORT, ECHO_SIZES, makePayload
from tests.tlssupport import TestAuthority
from tests.typedtrial import TestCase
from txws.client import connect, connectWS
from txws.options import WebSocketOptions

#: Seconds within which a closing handshake over loopback must complete.
CLOSE_WITHIN = 3.0

#: Options whose closing handshake timeout is far above L{CLOSE_WITHIN}.
PATIENT = WebSocketOptions(closeHandshakeTimeout=60)


class SecureWebSocketTests(TestCase):
    """
    WebSocket over TLS (RFC 6455 sections 3 and 4.1: a C{wss} URI means a
    TLS connection whose server certificate the client verifies).
    """

    def setUp(self) -> None:
        self.authority = TestAuthority()
        # Closing must not depend on the closing handshake timeout: with it
        # far above CLOSE_WITHIN, a close that only ends by timing out fails.
        self.factory = RecordingServerFactory(reactor=reactor, options=PATIENT)
        self.addCleanup(dropConnections, self.factory)

    def listen(self, **certificateNames: Any) -> int:
        """
        Serve the echo factory over TLS with a certificate from the test CA.

        @return: the port.
        """
        options = self.authority.serverOptions(**certificateNames)
        port = reactor.listenSSL(0, self.factory, options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return listenedPort(port)

    def trusting(self, hostname: str) -> Any:
        """
        @return: TLS client options that trust only the test CA.
        """
        return optionsForClientTLS(hostname, trustRoot=self.authority.certificate)

    async def test_echoTrustingTestAuthority(self) -> None:
        """
        Our client, trusting the test CA, echoes text and binary messages of
        every size over C{wss://127.0.0.1} and closes cleanly.
        """
        port = self.listen()
        protocol = await bounded(
            connect(
                f"wss://127.0.0.1:{port}/echo",
                protocolClass=RecordingClientProtocol,
                reactor=reactor,
                contextFactory=self.trusting("127.0.0.1"),
                options=PATIENT,
            )
        )
        assert isinstance(protocol, RecordingClientProtocol)
        self.addCleanup(dropConnections, protocol.factory)
        for size in ECHO_SIZES:
            for isBinary in (False, True):
                payload = makePayload(size, isBinary)
                protocol.sendMessage(payload, isBinary)
                self.assertEqual(await protocol.nextMessage(), (payload, isBinary))
        protocol.sendClose(1000, "done")
        closed = await protocol.closedWithin(CLOSE_WITHIN)
        self.assertEqual((closed.wasClean, closed.code), (True, 1000))
        serverClosed = await self.factory.nextClose()
        self.assertEqual((serverClosed.wasClean, serverClosed.reason), (True, "done"))

    async def test_connectWSByHostName(self) -> None:
        """
        C{connectWS} to C{wss://localhost} with the test CA verifies the
        certificate's DNS name and echoes.
        """
        port = self.listen()
        factory = RecordingClientFactory(
            f"wss://localhost:{port}/echo", reactor=reactor, options=PATIENT
        )
        connector = connectWS(factory, self.trusting("localhost"))
        self.addCleanup(connector.disconnect)
        self.addCleanup(dropConnections, factory)
        protocol = await bounded(factory.opened.get())
        protocol.sendMessage(b"over tls", True)
        self.assertEqual(await protocol.nextMessage(), (b"over tls", True))
        protocol.sendClose(1000)
        self.assertTrue((await protocol.closedWithin(CLOSE_WITHIN)).wasClean)

    async def test_systemTrustStoreRefuses(self) -> None:
        """
        With the default (platform) trust store the test CA is unknown: the
        connection fails with a TLS error and nothing is delivered.
        """
        port = self.listen()
        factory = RecordingClientFactory(f"wss://127.0.0.1:{port}/echo", reactor=reactor)
        await failureOf(connect(factory.url, factory, reactor=reactor), TLSError)
        self.assertTrue(factory.deliveredNothing())
        self.assertEqual(self.factory.opened.pending, [])
        self.assertEqual(self.factory.messages, [])

    async def test_wrongHostNameRefused(self) -> None:
        """
        A certificate from the trusted CA but for another host name fails
        verification, and nothing is delivered.
        """
        port = self.listen(dnsNames=("other.example",), ipAddresses=())
        factory = RecordingClientFactory(f"wss://localhost:{port}/echo", reactor=reactor)
        trusting = self.trusting("localhost")
        d = connect(factory.url, factory, reactor=reactor, contextFactory=trusting)
        await failureOf(d, VerificationError)
        self.assertTrue(factory.deliveredNothing())
        self.assertEqual(self.factory.opened.pending, [])

    async def test_wrongIPAddressRefused(self) -> None:
        """
        Connecting to C{wss://127.0.0.1} fails when the certificate names
        only another address.
        """
        port = self.listen(dnsNames=("localhost",), ipAddresses=("127.0.0.2",))
        factory = RecordingClientFactory(f"wss://127.0.0.1:{port}/echo", reactor=reactor)
        trusting = self.trusting("127.0.0.1")
        d = connect(factory.url, factory, reactor=reactor, contextFactory=trusting)
        await failureOf(d, VerificationError)
        self.assertTrue(factory.deliveredNothing())

    async def test_websocketsClientOverTLS(self) -> None:
        """
        The C{websockets} client, trusting the test CA, echoes messages of
        every size with our server over TLS.
        """
        port = self.listen()
        report = await runPeer(
            self,
            "websockets_client",
            {
                "url": f"wss://127.0.0.1:{port}/echo",
                "scenario": "echo",
                "sizes": ECHO_SIZES,
                "cafile": self.authority.writeCAFile(self),
                "closeWithin": CLOSE_WITHIN,
            },
        )
        self.assertEqual(report.get("results"), ECHO_REPORT, report)
        self.assertIsNot(report["closeSeconds"], None, "the close did not complete in time")
        self.assertEqual(report["rcvd"], [1000, ""])
        closed = await self.factory.nextClose()
        self.assertEqual((closed.wasClean, closed.code), (True, 1000))
