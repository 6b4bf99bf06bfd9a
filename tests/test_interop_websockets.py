"""
Integration tests of txws against the C{websockets} library over loopback:
the C{websockets} client against the txws echo server, and the txws client
against a C{websockets} server (both peers run in subprocesses,
C{tests/peers/websockets_client.py} and C{tests/peers/websockets_server.py}).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.error import ConnectionRefusedError

from tests.peers.harness import (
    RecordingClientFactory,
    RecordingClientProtocol,
    RecordingServerFactory,
    bounded,
    failureOf,
    listenedPort,
    reactor,
    runPeer,
    startPeer,
)
from tests.peers.payloads import ECHO_REPORT, ECHO_SIZES, SPLIT_TEXT, makePayload, splitFragments
from tests.typedtrial import TestCase
from txws.client import connect, connectWS
from txws.handshake import ResponseError
from txws.options import WebSocketOptions


def _spec(url: str, scenario: str, **parameters: Any) -> str:
    """
    @return: the JSON argument of the C{websockets_client} peer script.
    """
    return json.dumps({"url": url, "scenario": scenario, **parameters})


class WebSocketsClientTests(TestCase):
    """
    The C{websockets} client against the txws server (RFC 6455 sections 5
    and 7: framing, fragmentation, control frames and closing).
    """

    def setUp(self) -> None:
        self.factory = RecordingServerFactory(reactor=reactor)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.url = f"ws://127.0.0.1:{listenedPort(self.port)}/echo"

    def runClient(self, scenario: str, **parameters: Any) -> Any:
        """
        Run a scenario of the C{websockets} client against our server.
        """
        return runPeer(
            self, "websockets_client", {"url": self.url, "scenario": scenario, **parameters}
        )

    async def test_echoSizes(self) -> None:
        """
        Text and binary messages at every length-encoding boundary up to 1 MiB
        come back intact, with their type, and the close is clean.
        """
        report = await self.runClient("echo", sizes=ECHO_SIZES)
        self.assertEqual(report.get("results"), ECHO_REPORT, report)
        self.assertEqual(report["rcvd"], [1000, ""])
        closed = await self.factory.nextClose()
        self.assertEqual((closed.wasClean, closed.code, closed.reason), (True, 1000, "echo done"))
        self.assertEqual(
            [(len(p), b) for p, b in self.factory.messages],
            [(size, kind) for size in ECHO_SIZES for kind in (False, True)],
        )

    async def test_fragmentedUtf8(self) -> None:
        """
        A text message whose fragments end inside multi-byte UTF-8 characters
        is reassembled, validated and echoed as one message.
        """
        report = await self.runClient("fragments")
        self.assertEqual(report.get("text"), SPLIT_TEXT, report)
        self.assertEqual(report["binary"], b"".join(splitFragments()).hex())
        self.assertEqual(
            self.factory.messages,
            [(SPLIT_TEXT.encode("utf-8"), False), (b"".join(splitFragments()), True)],
        )

    async def test_pingPong(self) -> None:
        """
        Pings (empty, short and 125 bytes) are answered by pongs that
        websockets matches to them by payload.
        """
        report = await self.runClient("ping")
        self.assertEqual(report.get("pongs"), 3, report)
        self.assertEqual(report["after"], "after pings")

    async def test_clientInitiatedClose(self) -> None:
        """
        The client's close code and reason reach C{onClose} with C{wasClean}
        true, and the client gets the code echoed.
        """
        report = await self.runClient("clientClose", code=4001, reason="client says bye ✓")
        self.assertEqual(report.get("sent"), [4001, "client says bye ✓"], report)
        self.assertEqual(report["rcvd"], [4001, ""])
        closed = await self.factory.nextClose()
        self.assertEqual(
            (closed.wasClean, closed.code, closed.reason), (True, 4001, "client says bye ✓")
        )

    async def test_serverInitiatedClose(self) -> None:
        """
        C{sendClose(4000, "bye")} on our side reaches websockets as 4000/"bye"
        and the closing handshake completes cleanly on our side.
        """
        peer = startPeer(self, "websockets_client", _spec(self.url, "awaitClose"))
        protocol = await self.factory.nextOpen()
        protocol.sendClose(4000, "bye")
        report = await peer.nextReport()
        self.assertEqual(report.get("rcvd"), [4000, "bye"], report)
        self.assertEqual(report["sent"], [4000, "bye"])
        closed = await self.factory.nextClose()
        self.assertEqual((closed.wasClean, closed.code), (True, 4000))

    async def test_oversizedMessageFails(self) -> None:
        """
        A message over C{maxMessagePayloadSize} makes us fail the connection
        with 1009, which websockets receives; our C{onClose} says unclean.
        """
        self.factory.setProtocolOptions(maxMessagePayloadSize=1000)
        report = await self.runClient("tooBig", size=1001)
        self.assertEqual((report.get("rcvd") or [None])[0], 1009, report)
        self.assertEqual(self.factory.messages, [])
        closed = await self.factory.nextClose()
        self.assertEqual((closed.wasClean, closed.code), (False, 1006))

    async def test_abruptDrop(self) -> None:
        """
        A TCP connection dropped without a Close frame is reported as
        C{onClose(False, 1006, ...)}.
        """
        report = await self.runClient("drop")
        self.assertEqual(report.get("answer"), "about to drop", report)
        closed = await self.factory.nextClose()
        self.assertEqual((closed.wasClean, closed.code), (False, 1006))


class WebSocketsServerTests(TestCase):
    """
    The txws client against the C{websockets} server (RFC 6455 section 4.1:
    the client's checks of the opening handshake; section 7: closing).
    """

    async def startServer(self, script: str = "websockets_server") -> int:
        """
        Start a server script and return its port.
        """
        peer = startPeer(self, script)
        report = await peer.nextReport()
        port: int = report["port"]
        return port

    async def openClient(self, url: str, **kwargs: Any) -> RecordingClientProtocol:
        """
        Connect with L{connect} and make sure the connection ends with the
        test.
        """
        protocol = await bounded(
            connect(url, protocolClass=RecordingClientProtocol, reactor=reactor, **kwargs)
        )
        assert isinstance(protocol, RecordingClientProtocol)
        self.addCleanup(self.dropClient, protocol)
        return protocol

    def dropClient(self, protocol: RecordingClientProtocol) -> Any:
        """
        Abort a connection that is still alive and wait for its C{onClose}.
        """
        if protocol.transport is not None and not protocol.closed.called:
            protocol.transport.abortConnection()  # type: ignore[attr-defined]
        return protocol.whenClosed()

    async def test_echoSizes(self) -> None:
        """
        Text and binary messages at every length-encoding boundary up to 1 MiB
        come back intact from a websockets echo server, and closing is clean.
        """
        port = await self.startServer()
        protocol = await self.openClient(f"ws://127.0.0.1:{port}/echo")
        for size in ECHO_SIZES:
            for isBinary in (False, True):
                payload = makePayload(size, isBinary)
                protocol.sendMessage(payload, isBinary)
                self.assertEqual(await protocol.nextMessage(), (payload, isBinary))
        protocol.sendClose(1000, "done")
        closed = await protocol.whenClosed()
        self.assertEqual((closed.wasClean, closed.code), (True, 1000))

    async def test_connectWS(self) -> None:
        """
        Autobahn's C{connectWS} with a client factory reaches the websockets
        server and echoes.
        """
        port = await self.startServer()
        factory = RecordingClientFactory(f"ws://127.0.0.1:{port}/echo", reactor=reactor)
        connector = connectWS(factory)
        self.addCleanup(connector.disconnect)
        protocol = await bounded(factory.opened.get())
        protocol.sendMessage("héllo".encode(), False)
        self.assertEqual(await protocol.nextMessage(), ("héllo".encode(), False))
        protocol.sendClose(1000)
        closed = await protocol.whenClosed()
        self.assertTrue(closed.wasClean)

    async def test_subprotocol(self) -> None:
        """
        The server's choice among our offered subprotocols is accepted and
        exposed on the protocol and its response.
        """
        port = await self.startServer()
        protocol = await self.openClient(
            f"ws://127.0.0.1:{port}/echo", protocols=["other", "chat.v1", "chat.v2"]
        )
        self.assertEqual(protocol.websocket_protocol_in_use, "chat.v2")
        assert protocol.response is not None
        self.assertEqual(protocol.response.protocol, "chat.v2")
        protocol.sendClose(1000)
        await protocol.whenClosed()

    async def test_serverInitiatedClose(self) -> None:
        """
        The websockets server's close code and reason reach our C{onClose}
        with C{wasClean} true.
        """
        port = await self.startServer()
        protocol = await self.openClient(
            f"ws://127.0.0.1:{port}/close?code=4002&reason=server%20bye"
        )
        closed = await protocol.whenClosed()
        self.assertEqual((closed.wasClean, closed.code, closed.reason), (True, 4002, "server bye"))

    async def test_wrongAcceptHeader(self) -> None:
        """
        An answer with C{Sec-WebSocket-Accept: InvalidHashValue==} fails
        C{connect} with L{ResponseError}, and the data frame sent behind it
        is never delivered.
        """
        peer = startPeer(self, "raw_http_server")
        port = (await peer.nextReport())["port"]
        delivered: list[bytes] = []

        class Spy(RecordingClientProtocol):
            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                delivered.append(payload)

        factory = RecordingClientFactory(f"ws://127.0.0.1:{port}/", reactor=reactor)
        factory.protocol = Spy
        error = await failureOf(connect(factory.url, factory, reactor=reactor), ResponseError)
        self.assertEqual(error.status, 101)
        self.assertIn("Sec-WebSocket-Accept", error.reason)
        hangUp = await peer.nextReport()
        self.assertIn(hangUp["hangUp"], ("eof", "reset"))
        self.assertEqual(delivered, [])
        self.assertEqual(factory.connectionCount, 0)

    async def test_forbidden(self) -> None:
        """
        A server that refuses the upgrade with 403 fails C{connect} with
        L{ResponseError} carrying status 403.
        """
        port = await self.startServer()
        d = connect(f"ws://127.0.0.1:{port}/forbidden", reactor=reactor)
        error = await failureOf(d, ResponseError)
        self.assertEqual(error.status, 403)

    async def test_connectionRefused(self) -> None:
        """
        Connecting to a closed port fails C{connect} with
        C{ConnectionRefusedError}.
        """
        factory = RecordingServerFactory(reactor=reactor)
        listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
        port = listenedPort(listening)
        await listening.stopListening()
        d = connect(f"ws://127.0.0.1:{port}/", reactor=reactor)
        await failureOf(d, ConnectionRefusedError)

    async def test_oversizedAnswerFails(self) -> None:
        """
        An echo over our client's C{maxMessagePayloadSize} fails the
        connection with 1009 (seen by the server, which closes cleanly), and
        is not delivered.
        """
        port = await self.startServer()
        protocol = await self.openClient(
            f"ws://127.0.0.1:{port}/echo",
            options=WebSocketOptions(maxMessagePayloadSize=100),
        )
        protocol.sendMessage(b"x" * 101, True)
        closed = await protocol.whenClosed()
        self.assertEqual((closed.wasClean, closed.code), (False, 1006))
        self.assertEqual(protocol.localCloseCode, 1009)
        self.assertEqual(protocol.messages.pending, [])
