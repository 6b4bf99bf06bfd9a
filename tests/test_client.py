"""
Tests for L{txws.client}: the client's opening handshake (RFC 6455 section
4.1), its checks of the server's answer, L{connect} and L{connectWS}, and a
client talking to a server in memory.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionRefusedError, TimeoutError
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test.iosim import connectedServerAndClient

from tests.typedtrial import SynchronousTestCase
from txws.client import WebSocketClientFactory, connect, connectWS
from txws.handshake import ConnectionResponse, ResponseError
from txws.protocol import State

from .support import (
    KEY,
    RecordingClient,
    RecordingServer,
    acceptFor,
    clientFactory,
    framesIn,
    serverFactory,
    serverFrame,
)


def connectClient(
    factory: WebSocketClientFactory,
) -> tuple[RecordingClient, StringTransport]:
    """
    @return: a client protocol connected to a L{StringTransport}, its
        request written.
    """
    protocol: object = factory.buildProtocol(IPv4Address("TCP", "10.0.0.1", 80))
    assert isinstance(protocol, RecordingClient)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "10.0.0.1", 80))
    cast(Protocol, protocol).makeConnection(transport)  # (Twisted's, unannotated)
    return protocol, transport


class ClientHandshakeTests(SynchronousTestCase):
    """
    RFC 6455 section 4.1: the client's requirements.
    """

    def test_request(self) -> None:
        """
        The request is a GET with Host, Upgrade, Connection, a fresh 16-byte
        key and version 13.
        """
        factory = clientFactory()
        factory.protocols = ["chat"]
        factory.origin = "https://app.example"
        _, transport = connectClient(factory)
        request = transport.value()
        self.assertTrue(request.startswith(b"GET /chat HTTP/1.1\r\n"))
        for line in (
            b"Host: server.example.com",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Key: AQEBAQEBAQEBAQEBAQEBAQ==",
            b"Sec-WebSocket-Version: 13",
            b"Sec-WebSocket-Protocol: chat",
            b"Origin: https://app.example",
        ):
            self.assertIn(b"\r\n" + line + b"\r\n", request)
        self.assertTrue(request.endswith(b"\r\n\r\n"))

    def test_accepted(self) -> None:
        """
        A correct 101 opens the connection; C{onConnect} sees the response.
        """
        protocol, transport = connectClient(clientFactory())
        protocol.dataReceived(acceptFor(transport.value()))
        self.assertIs(protocol.state, State.OPEN)
        self.assertEqual([e[0] for e in protocol.events], ["connect", "open"])
        response = protocol.events[0][1]
        assert isinstance(response, ConnectionResponse)
        self.assertEqual(response.peer, "tcp4:10.0.0.1:80")

    def test_wrongAcceptNeverDeliversData(self) -> None:
        """
        A wrong C{Sec-WebSocket-Accept} fails the connection at once; a
        frame that followed is never delivered.
        """
        protocol, transport = connectClient(clientFactory())
        waiting = protocol.whenOpen()
        answer = (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: InvalidHashValue==\r\n\r\n"
        )
        protocol.dataReceived(answer + serverFrame(0x1, b"data"))
        self.assertTrue(transport.disconnecting or transport.disconnected)
        protocol.dataReceived(serverFrame(0x1, b"more"))
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(protocol.messages(), [])
        self.assertNotIn(("open",), protocol.events)
        error = self.failureResultOf(waiting, ResponseError).value
        assert isinstance(error, ResponseError)
        self.assertEqual((error.status, error.reason), (101, "wrong Sec-WebSocket-Accept"))
        self.assertEqual(protocol.closes()[0][:2], (False, 1006))

    def test_refusedWithStatus(self) -> None:
        """
        Any status but 101 fails with that status.
        """
        protocol, _ = connectClient(clientFactory())
        waiting = protocol.whenOpen()
        protocol.dataReceived(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        protocol.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(waiting, ResponseError).value
        assert isinstance(error, ResponseError)
        self.assertEqual(error.status, 403)

    def test_invalidAnswers(self) -> None:
        """
        Missing Upgrade or Connection, an extension or a subprotocol that
        was not offered, or an invalid permessage-deflate answer all fail
        the handshake.
        """
        base = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        for extra, dropped in (
            ("Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n", ""),
            ("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16\r\n", ""),
            ("Sec-WebSocket-Extensions: permessage-deflate; foo\r\n", ""),
            ("Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n", ""),
            ("Sec-WebSocket-Protocol: other\r\n", ""),
            ("", "Upgrade: websocket\r\n"),
            ("", "Connection: Upgrade\r\n"),
        ):
            protocol, transport = connectClient(clientFactory())
            accept = acceptFor(transport.value()).split(b"\r\n")[3].decode() + "\r\n"
            answer = (base.replace(dropped, "") if dropped else base) + accept + extra + "\r\n"
            protocol.dataReceived(answer.encode())
            self.assertIsNot(protocol.state, State.OPEN, (extra, dropped))
            self.assertTrue(transport.disconnecting or transport.disconnected)

    def test_openTimeout(self) -> None:
        """
        No answer within the open timeout fails with C{TimeoutError}.
        """
        clock = Clock()
        protocol, transport = connectClient(clientFactory(clock, openHandshakeTimeout=5))
        waiting = protocol.whenOpen()
        clock.advance(5)
        self.assertTrue(transport.disconnecting or transport.disconnected)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.failureResultOf(waiting, TimeoutError)

    def test_whenOpenAfterOpen(self) -> None:
        """
        C{whenOpen} on an open connection has already fired.
        """
        protocol, transport = connectClient(clientFactory())
        protocol.dataReceived(acceptFor(transport.value()))
        self.assertIs(self.successResultOf(protocol.whenOpen()), protocol)


class ConnectTests(SynchronousTestCase):
    """
    L{connect} and L{connectWS} on a memory reactor.
    """

    def test_connectWS(self) -> None:
        """
        C{connectWS} connects TCP to the URL's host and port, or TLS for
        C{wss://}.
        """
        reactor = MemoryReactorClock()
        factory = WebSocketClientFactory("ws://127.0.0.1:9000/", reactor=reactor)
        connectWS(factory)
        self.assertEqual(reactor.tcpClients[0][:2], ("127.0.0.1", 9000))
        secure = WebSocketClientFactory("wss://example.com/", reactor=reactor)
        connectWS(secure)
        self.assertEqual(reactor.sslClients[0][:2], ("example.com", 443))

    def test_connectRefused(self) -> None:
        """
        C{connect} fails with C{ConnectionRefusedError} when TCP fails.
        """
        reactor = MemoryReactorClock()
        d = connect("ws://127.0.0.1:9/", reactor=reactor)
        reactor.advance(0)
        connector = reactor.connectors[0]
        factory = reactor.tcpClients[0][2]
        factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
        reactor.advance(1)
        self.failureResultOf(d, ConnectionRefusedError)

    def test_connectOpens(self) -> None:
        """
        C{connect} fires with the protocol once the handshake completes.
        """
        reactor = MemoryReactorClock()
        d = connect("ws://127.0.0.1:9000/path", reactor=reactor, protocolClass=RecordingClient)
        reactor.advance(0)
        factory = reactor.tcpClients[0][2]
        protocol: Any = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 9000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 9000))
        protocol.makeConnection(transport)
        self.assertNoResult(d)
        protocol.dataReceived(acceptFor(transport.value()))
        result = self.successResultOf(d)
        self.assertIsInstance(result, RecordingClient)
        self.assertIs(result.state, State.OPEN)


class InMemoryTests(SynchronousTestCase):
    """
    A txws client and a txws server connected in memory.
    """

    def pair(self, **server: Any) -> tuple[RecordingServer, RecordingClient, Any]:
        sFactory = serverFactory(**server)
        cFactory = clientFactory()
        clientProtocol: object
        serverProtocol: object
        clientProtocol, serverProtocol, pump = connectedServerAndClient(
            lambda: sFactory.buildProtocol(None), lambda: cFactory.buildProtocol(None)
        )
        assert isinstance(serverProtocol, RecordingServer)
        assert isinstance(clientProtocol, RecordingClient)
        return serverProtocol, clientProtocol, pump

    def test_roundTrip(self) -> None:
        """
        Messages of every length class and both kinds cross both ways.
        """
        server, client, pump = self.pair()
        self.assertIs(client.state, State.OPEN)
        sizes = (0, 125, 126, 65535, 65536, 1 << 20)
        for size in sizes:
            client.sendMessage(b"c" * size, isBinary=True)
            server.sendMessage(("s" * size).encode())
        pump.flush()
        self.assertEqual(server.messages(), [(b"c" * n, True) for n in sizes])
        self.assertEqual(client.messages(), [(b"s" * n, False) for n in sizes])

    def test_pingPong(self) -> None:
        """
        A client ping gets the server's automatic pong.
        """
        server, client, pump = self.pair()
        client.sendPing(b"are you there")
        pump.flush()
        self.assertIn(("pong", b"are you there"), client.events)
        self.assertIn(("ping", b"are you there"), server.events)

    def test_cleanCloseBothSides(self) -> None:
        """
        A client-initiated close ends cleanly on both sides, the server
        closing TCP.
        """
        server, client, pump = self.pair()
        client.sendClose(1000, "done")
        pump.flush()
        self.assertEqual(server.closes(), [(True, 1000, "done")])
        self.assertEqual(client.closes(), [(True, 1000, "")])

    def test_serverFailureReachesClient(self) -> None:
        """
        A server-side limit closes with 1009, which the client sees.
        """
        server, client, pump = self.pair(maxMessagePayloadSize=10)
        client.sendMessage(b"x" * 11, isBinary=True)
        pump.flush()
        self.assertEqual(client.remoteCloseCode, 1009)
        self.assertEqual(server.messages(), [])
        self.assertEqual(server.closes()[0][:2], (False, 1006))

    def test_masksOnTheWire(self) -> None:
        """
        Frames from the client carry the mask bit and the injected key.
        """
        server, client, pump = self.pair()
        transport: Any = client.transport
        pump.flush()
        client.sendMessage(b"abc")
        wire = b"".join(transport.stream)
        self.assertEqual(wire[1] & 0x80, 0x80)
        self.assertEqual(wire[2:6], KEY)
        self.assertEqual(framesIn(wire, masked=True), [(True, 0x1, b"abc")])
        del server
