"""
Tests for L{txws._backlog} and how a connection uses it: frames much larger
than the write buffer go out piece by piece as the transport drains, with
everything sent meanwhile waiting behind them in order.
"""

from __future__ import annotations

import os
from typing import Optional

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionLost
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.support import (
    KEY,
    RecordingServer,
    closeFrame,
    connectServer,
    framesIn,
    openClient,
    serverFactory,
    upgradeRequest,
)
from tests.typedtrial import SynchronousTestCase
from txws._backlog import Backlog
from txws.frames import frameHeader, serializeFrame

#: The write buffer of these tests' connections; frames over twice this
#: size go out in pieces of this size plus one byte.
BUFFER = 4096
PIECE = BUFFER + 1


class PausingTransport(StringTransport):
    """
    A transport with Twisted's back-pressure: it pauses its streaming
    producer when more than C{bufferSize} bytes are waiting, and resumes it
    once L{drain} has "sent" them.
    """

    bufferSize = 65536

    def __init__(self) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            hostAddress=IPv4Address("TCP", "127.0.0.1", 9000),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 50000),
        )
        self.sent: list[bytes] = []
        self.producerPaused = False

    def write(self, data: bytes) -> None:
        super().write(data)  # type: ignore[no-untyped-call]
        self.sent.append(bytes(data))
        full = len(self.io.getvalue()) > self.bufferSize
        if self.producer is not None and self.streaming and full and not self.producerPaused:
            self.producerPaused = True
            self.producer.pauseProducing()

    def unregisterProducer(self) -> None:
        super().unregisterProducer()  # type: ignore[no-untyped-call]
        self.producerPaused = False

    def drain(self) -> bytes:
        """
        Send everything waiting and resume the producer if it was paused.

        @return: what was waiting.
        """
        data: bytes = self.value()  # type: ignore[no-untyped-call]
        self.clear()  # type: ignore[no-untyped-call]
        if self.producer is not None and self.producerPaused:
            self.producerPaused = False
            self.producer.resumeProducing()
        return data


def openPausing(writeBufferSize: int = BUFFER) -> tuple[RecordingServer, PausingTransport]:
    transport = PausingTransport()
    protocol, _ = connectServer(serverFactory(writeBufferSize=writeBufferSize), transport=transport)
    protocol.dataReceived(upgradeRequest())
    transport.clear()  # type: ignore[no-untyped-call]
    transport.sent.clear()
    assert isinstance(protocol, RecordingServer)
    return protocol, transport


def drainAll(transport: PausingTransport, limit: int = 10_000) -> bytes:
    out: list[bytes] = []
    for _ in range(limit):
        data = transport.drain()
        if not data and not transport.producerPaused:
            return b"".join(out)
        out.append(data)
    raise AssertionError("the transport never ran dry")


class BacklogTests(SynchronousTestCase):
    """
    L{Backlog.writeSome} writes a large frame in pieces that add up to the
    whole frame, and stops whenever the transport is full.
    """

    def _pieces(self, key: Optional[bytes]) -> None:
        payload = os.urandom(3 * PIECE + 17)
        backlog = Backlog(PIECE)
        backlog.addLargeFrame(0x82, payload, key)
        backlog.addFrame(b"next")
        written: list[bytes] = []
        full = [False]

        def write(data: bytes) -> None:
            written.append(data)
            full[0] = True

        rounds = 0
        while not backlog.writeSome(write, lambda: full[0]):
            full[0] = False
            rounds += 1
        self.assertEqual(rounds, 4)
        self.assertEqual(len(backlog), 0)
        self.assertEqual(b"".join(written[:-1]), serializeFrame(0x2, payload, True, key))
        self.assertEqual(written[-1], b"next")
        self.assertTrue(all(len(piece) <= PIECE + 14 for piece in written))

    def test_serverPieces(self) -> None:
        """
        Unmasked: the pieces are the frame, header first.
        """
        self._pieces(None)

    def test_clientPieces(self) -> None:
        """
        Masked: each piece is masked with the key rotated to its offset, so
        the pieces are the masked frame.
        """
        self._pieces(b"\x01\x02\x03\x04")

    def test_neverFull(self) -> None:
        """
        A transport that never pauses takes everything in one call.
        """
        backlog = Backlog(PIECE)
        payload = os.urandom(5 * PIECE)
        backlog.addLargeFrame(0x82, payload, None)
        written: list[bytes] = []
        self.assertTrue(backlog.writeSome(written.append, lambda: False))
        self.assertEqual(b"".join(written), serializeFrame(0x2, payload))


class ConnectionBacklogTests(SynchronousTestCase):
    """
    A connection writes frames larger than twice its write buffer as its
    transport drains, holding back reading and later frames meanwhile.
    """

    def test_largeFramePieceByPiece(self) -> None:
        """
        Only the first piece is handed over at once; each drain brings the
        next; the peer gets the frame intact.  Reading is paused meanwhile
        and resumes once the frame is out.
        """
        protocol, transport = openPausing()
        payload = os.urandom(20 * BUFFER)
        protocol.sendMessage(payload, isBinary=True)
        self.assertEqual(transport.sent, [frameHeader(0x2, len(payload)) + payload[:PIECE]])
        self.assertEqual(transport.producerState, "paused")
        wire = transport.drain()
        self.assertEqual(len(transport.sent), 2)
        wire += drainAll(transport)
        self.assertEqual(framesIn(wire), [(True, 0x2, payload)])
        self.assertTrue(all(len(piece) <= PIECE + 10 for piece in transport.sent))
        self.assertEqual(transport.producerState, "producing")

    def test_smallFramesUnchanged(self) -> None:
        """
        Frames up to twice the write buffer are written whole, at once.
        """
        protocol, transport = openPausing()
        payload = os.urandom(2 * BUFFER)
        protocol.sendMessage(payload, isBinary=True)
        self.assertEqual(transport.sent, [serializeFrame(0x2, payload)])

    def test_laterFramesWaitInOrder(self) -> None:
        """
        Messages, pings and pongs sent while a large frame is going out
        follow it, in the order they were sent.
        """
        protocol, transport = openPausing()
        large = os.urandom(10 * BUFFER)
        protocol.sendMessage(large, isBinary=True)
        protocol.sendMessage(b"after", isBinary=False)
        protocol.sendPing(b"p")
        protocol.sendMessage(os.urandom(3 * BUFFER), isBinary=True)
        wire = drainAll(transport)
        frames = framesIn(wire)
        self.assertEqual(
            [(fin, op, len(p)) for fin, op, p in frames],
            [(True, 0x2, len(large)), (True, 0x1, 5), (True, 0x9, 1), (True, 0x2, 3 * BUFFER)],
        )
        self.assertEqual(frames[0][2], large)

    def test_closeAfterLargeFrame(self) -> None:
        """
        A close started mid-frame sends its Close frame after the large
        frame, and the connection stays the transport's producer until
        everything is out.
        """
        protocol, transport = openPausing()
        large = os.urandom(10 * BUFFER)
        protocol.sendMessage(large, isBinary=True)
        protocol.sendClose(1000, "bye")
        self.assertIsNotNone(transport.producer)
        wire = drainAll(transport)
        frames = framesIn(wire)
        self.assertEqual(frames[0], (True, 0x2, large))
        self.assertEqual(frames[1][:2], (True, 0x8))
        self.assertIsNone(transport.producer)
        protocol.dataReceived(closeFrame(1000))
        self.assertTrue(transport.disconnecting)

    def test_connectionLostMidFrame(self) -> None:
        """
        Losing the connection mid-frame drops the rest quietly.
        """
        protocol, _ = openPausing()
        protocol.sendMessage(os.urandom(10 * BUFFER), isBinary=True)
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(protocol.events[-1][0], "close")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_withoutBackPressure(self) -> None:
        """
        On a transport that never pauses its producer the whole frame is
        written at once, in pieces.
        """
        protocol, transport = connectServer(serverFactory(writeBufferSize=BUFFER))
        protocol.dataReceived(upgradeRequest())
        transport.clear()
        payload = os.urandom(10 * BUFFER)
        protocol.sendMessage(payload, isBinary=True)
        self.assertEqual(framesIn(transport.value()), [(True, 0x2, payload)])

    def test_clientMasksPieces(self) -> None:
        """
        A client's large frame is masked across its pieces as one frame.
        """
        transport = PausingTransport()
        protocol, _, _ = openClient(transport=transport, writeBufferSize=BUFFER)
        payload = os.urandom(10 * BUFFER)
        protocol.sendMessage(payload, isBinary=True)
        wire = drainAll(transport)
        self.assertEqual(wire, serializeFrame(0x2, payload, True, KEY))
        self.assertEqual(framesIn(wire, masked=True), [(True, 0x2, payload)])
