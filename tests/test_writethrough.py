"""
Tests for L{txws._writethrough}: plain TCP transports are written straight
to the socket when nothing is queued, and everything arrives, in order,
whatever the kernel takes at once.
"""

from __future__ import annotations

import socket

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread

from tests.typedtrial import SynchronousTestCase, TestCase
from txws._writethrough import canWriteThrough, writeThrough
from txws.client import WebSocketClientProtocol, connect
from txws.server import WebSocketServerFactory, WebSocketServerProtocol


class Sender(Protocol):
    """
    Writes its factory's chunks with L{writerFor}'s writer as soon as it
    is connected, and records what the transport had to queue.
    """

    factory: SenderFactory

    def connectionMade(self) -> None:
        transport = self.transport
        self.factory.wroteThrough = canWriteThrough(transport)
        for chunk in self.factory.chunks:
            writeThrough(transport, chunk)
        self.factory.queued = transport._tempDataLen + len(transport.dataBuffer)  # type: ignore[union-attr]
        self.factory.sent.callback(None)


class SenderFactory(ServerFactory):
    protocol = Sender  # type: ignore[assignment]

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.sent: Deferred[None] = Deferred()
        self.wroteThrough = False
        self.queued = 0


def _readAll(sock: socket.socket, size: int) -> bytes:
    received = bytearray()
    sock.settimeout(30)
    while len(received) < size:
        data = sock.recv(1 << 20)
        if not data:
            break
        received += data
    sock.close()
    return bytes(received)


class WriteThroughTCPTests(TestCase):
    """
    Over a real loopback TCP connection.
    """

    async def _send(self, chunks: list[bytes]) -> tuple[SenderFactory, bytes]:
        factory = SenderFactory(chunks)
        port: IListeningPort = reactor.listenTCP(
            0, factory, interface="127.0.0.1"
        )
        self.addCleanup(port.stopListening)
        client = socket.create_connection(("127.0.0.1", port.getHost().port))  # type: ignore[attr-defined]
        await factory.sent
        received = await deferToThread(_readAll, client, sum(map(len, chunks)))
        return factory, received

    async def test_smallWritesGoStraightOut(self) -> None:
        """
        Small writes to an idle connection are sent at once: the transport
        queues nothing, and the peer gets them in order.
        """
        chunks = [b"frame %d;" % i for i in range(100)]
        factory, received = await self._send(chunks)
        self.assertTrue(factory.wroteThrough)
        self.assertEqual(factory.queued, 0)
        self.assertEqual(received, b"".join(chunks))

    async def test_whatTheKernelRefusesIsQueued(self) -> None:
        """
        Far more than the socket takes at once: the rest is queued by the
        transport (so later writes queue behind it) and everything arrives
        whole and in order.
        """
        chunks = [bytes([i]) * (1 << 20) for i in range(16)]
        factory, received = await self._send(chunks)
        self.assertTrue(factory.wroteThrough)
        self.assertGreater(factory.queued, 0)
        self.assertEqual(len(received), 16 << 20)
        self.assertEqual(received, b"".join(chunks))


class WriterChoiceTests(SynchronousTestCase):
    """
    Only Twisted's own plain TCP transports are written through.
    """

    def test_otherTransports(self) -> None:
        """
        Any other transport (TLS, a test transport, a subclass) is written
        with its own C{write}.
        """
        self.assertFalse(canWriteThrough(StringTransport()))


class Replier(WebSocketServerProtocol):
    """
    Answers every message, and records how many bytes the transport had
    to queue for the answer.
    """

    queuedAfterSend: list[int] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)
        self.sendPreparedMessage(self.factory.prepareMessage(b"prepared"))
        transport = self.transport
        Replier.queuedAfterSend.append(
            transport._tempDataLen + len(transport.dataBuffer)  # type: ignore[union-attr]
        )


class Collector(WebSocketClientProtocol):
    """
    Collects what the server sends.
    """

    def onOpen(self) -> None:
        self.received: DeferredQueue[bytes] = DeferredQueue()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.received.put(payload)


class ConnectionWriteThroughTests(TestCase):
    """
    A txws server connection on plain TCP writes its frames through.
    """

    async def test_messagesGoStraightOut(self) -> None:
        """
        C{sendMessage} and C{sendPreparedMessage} on an idle connection
        leave nothing queued in the transport, and the peer gets both.
        """
        factory = WebSocketServerFactory()
        factory.protocol = Replier
        Replier.queuedAfterSend = []
        port: IListeningPort = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        address = port.getHost()
        client = await connect(
            f"ws://127.0.0.1:{address.port}/", protocolClass=Collector  # type: ignore[attr-defined]
        )
        assert isinstance(client, Collector)
        client.sendMessage(b"hello")
        self.assertEqual(await client.received.get(), b"hello")
        self.assertEqual(await client.received.get(), b"prepared")
        self.assertEqual(Replier.queuedAfterSend, [0])
        client.sendClose(1000)
        await factory.closeAll()
