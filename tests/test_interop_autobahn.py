"""
Integration tests of the txws server against the Autobahn|Python client
(C{autobahn.twisted.websocket}), both running in this process on the real
reactor, over loopback.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred

from tests.peers.autobahn_peers import AutobahnRecorder, AutobahnRecorderFactory
from tests.peers.harness import (
    RecordingServerFactory,
    bounded,
    dropConnections,
    listenedPort,
    reactor,
)
from tests.peers.payloads import ECHO_SIZES, SPLIT_TEXT, makePayload
from tests.typedtrial import TestCase


class AutobahnClientTests(TestCase):
    """
    The Autobahn client against the txws server (RFC 6455 sections 5 and 7:
    framing, fragmentation, control frames and the closing handshake).
    """

    def setUp(self) -> None:
        self.server = RecordingServerFactory(reactor=reactor)
        self.addCleanup(dropConnections, self.server)
        port = reactor.listenTCP(0, self.server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.client = AutobahnRecorderFactory(f"ws://127.0.0.1:{listenedPort(port)}/echo")
        self.connector: Any = reactor.connectTCP("127.0.0.1", listenedPort(port), self.client)
        self.addCleanup(self.dropClient)

    def dropClient(self) -> Deferred[Any] | None:
        """
        Abort the Autobahn connection if it is still there, and wait for its
        C{onClose}.
        """
        if self.client.closed.called:
            return None
        self.connector.disconnect()
        return bounded(self.client.closed)

    async def open(self) -> AutobahnRecorder:
        """
        @return: the Autobahn connection, once open.
        """
        return await bounded(self.client.opened)

    async def test_echoSizes(self) -> None:
        """
        Text and binary messages at every length-encoding boundary up to 1 MiB
        come back intact and with their type.
        """
        protocol = await self.open()
        for size in ECHO_SIZES:
            for isBinary in (False, True):
                payload = makePayload(size, isBinary)
                protocol.sendMessage(payload, isBinary)  # type: ignore[no-untyped-call]
                echoed = await bounded(self.client.messages.get())
                self.assertEqual(echoed, (payload, isBinary))
        self.assertEqual(
            [(len(p), b) for p, b in self.server.messages],
            [(size, kind) for size in ECHO_SIZES for kind in (False, True)],
        )

    async def test_fragmentedUtf8(self) -> None:
        """
        A text message Autobahn sends in 3-byte fragments (which cut UTF-8
        characters) is reassembled and echoed as one message.
        """
        protocol = await self.open()
        payload = SPLIT_TEXT.encode("utf-8")
        protocol.sendMessage(payload, False, fragmentSize=3)  # type: ignore[no-untyped-call]
        self.assertEqual(await bounded(self.client.messages.get()), (payload, False))
        self.assertEqual(self.server.messages, [(payload, False)])

    async def test_pings(self) -> None:
        """
        Pings in both directions are answered with pongs carrying their
        payload.
        """
        protocol = await self.open()
        server = await self.server.nextOpen()
        protocol.sendPing(b"from autobahn")
        self.assertEqual(await bounded(self.client.pongs.get()), b"from autobahn")
        server.sendPing(b"from txws")
        self.assertEqual(await bounded(self.server.pongs.get()), b"from txws")

    async def test_clientInitiatedClose(self) -> None:
        """
        Autobahn's C{sendClose} completes the closing handshake cleanly on
        both sides, with its code and reason reaching our C{onClose}.
        """
        protocol = await self.open()
        protocol.sendClose(1000, "autobahn done")
        closed = await bounded(self.client.closed)
        self.assertEqual((closed.wasClean, closed.code), (True, 1000))
        serverClosed = await self.server.nextClose()
        self.assertEqual(
            (serverClosed.wasClean, serverClosed.code, serverClosed.reason),
            (True, 1000, "autobahn done"),
        )

    async def test_serverInitiatedClose(self) -> None:
        """
        Our C{sendClose(4000, "bye")} reaches Autobahn's C{onClose} as a clean
        close with that code and reason, and ours is clean too.
        """
        await self.open()
        server = await self.server.nextOpen()
        server.sendClose(4000, "bye")
        closed = await bounded(self.client.closed)
        self.assertEqual((closed.wasClean, closed.code, closed.reason), (True, 4000, "bye"))
        serverClosed = await self.server.nextClose()
        # Autobahn answers a Close with 1000 unless echoCloseCodeReason is
        # set; onClose reports the peer's code.
        self.assertEqual((serverClosed.wasClean, serverClosed.code), (True, 1000))
