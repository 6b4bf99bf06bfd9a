"""
Tests for prepared messages (C{prepareMessage} / C{sendPreparedMessage})
and for the bound on what a connection queues for a peer that does not
read (C{maxBufferedAmount}, C{bufferedAmount}, C{sendBufferOverflowCode}).
"""

from __future__ import annotations

from tests.support import RecordingServer, framesIn, openClient, openServer
from tests.test_backlog import BUFFER, PausingTransport, drainAll, openPausing
from tests.typedtrial import SynchronousTestCase
from txws.frames import PreparedMessage, parseClosePayload, serializeFrame
from txws.protocol import Disconnected, State


class PreparedMessageTests(SynchronousTestCase):
    """
    A prepared message is framed once; server connections write exactly
    those bytes, clients mask their own frame.
    """

    def test_serverWritesThePreparedFrame(self) -> None:
        """
        Two server connections write the very frame the factory prepared.
        """
        first, firstTransport, _ = openServer()
        second, secondTransport, _ = openServer()
        prepared = first.factory.prepareMessage(b'{"hello":"world"}')
        self.assertEqual(prepared.frame, serializeFrame(0x1, b'{"hello":"world"}'))
        first.sendPreparedMessage(prepared)
        second.sendPreparedMessage(prepared)
        self.assertEqual(firstTransport.value(), prepared.frame)
        self.assertEqual(secondTransport.value(), prepared.frame)

    def test_binary(self) -> None:
        """
        A binary prepared message goes out as a binary frame.
        """
        protocol, transport, _ = openServer()
        protocol.sendPreparedMessage(protocol.factory.prepareMessage(b"\xff\x00", isBinary=True))
        self.assertEqual(framesIn(transport.value()), [(True, 0x2, b"\xff\x00")])

    def test_bytesLikePayload(self) -> None:
        """
        A bytearray or memoryview payload is copied into bytes.
        """
        protocol, _, _ = openServer()
        prepared = protocol.factory.prepareMessage(memoryview(bytearray(b"abc")))  # type: ignore[arg-type]
        self.assertIs(type(prepared.payload), bytes)
        self.assertEqual(prepared.payload, b"abc")

    def test_invalidText(self) -> None:
        """
        Text that is not UTF-8 is refused when it is prepared.
        """
        protocol, _, _ = openServer()
        self.assertRaises(ValueError, protocol.factory.prepareMessage, b"\xff")
        self.assertRaises(TypeError, protocol.factory.prepareMessage, "text")

    def test_clientMasks(self) -> None:
        """
        A client does not reuse the unmasked frame: it masks its own.
        """
        protocol, transport, _ = openClient()
        protocol.sendPreparedMessage(PreparedMessage(b"hello", False))
        self.assertEqual(framesIn(transport.value(), masked=True), [(True, 0x1, b"hello")])

    def test_notOpen(self) -> None:
        """
        Sending a prepared message on a closing connection raises
        L{Disconnected}; during a message sent frame by frame, ValueError.
        """
        protocol, _, _ = openServer()
        prepared = protocol.factory.prepareMessage(b"x")
        protocol.beginMessage()
        self.assertRaises(ValueError, protocol.sendPreparedMessage, prepared)
        protocol.endMessage()
        protocol.sendClose(1000)
        self.assertRaises(Disconnected, protocol.sendPreparedMessage, prepared)

    def test_largeFrameGoesInPieces(self) -> None:
        """
        A prepared message over twice the write buffer is written in pieces
        like any large frame, and arrives whole.
        """
        protocol, transport = openPausing()
        payload = b"a" * (5 * BUFFER)
        protocol.sendPreparedMessage(protocol.factory.prepareMessage(payload))
        self.assertEqual(framesIn(drainAll(transport)), [(True, 0x1, payload)])
        self.assertGreater(len(transport.sent), 2)


def openSlow(limit: int, code: int | None = None) -> tuple[RecordingServer, PausingTransport]:
    """
    @return: an open server connection on a transport that pauses it at
        L{BUFFER} bytes, with C{maxBufferedAmount} set to C{limit}.
    """
    protocol, transport = openPausing()
    protocol.factory.options = protocol.factory.options.replace(maxBufferedAmount=limit)
    if code is not None:
        protocol.sendBufferOverflowCode = code
    return protocol, transport


class SendBufferTests(SynchronousTestCase):
    """
    Once the transport is full, frames wait in the connection, are counted
    by C{bufferedAmount}, and past C{maxBufferedAmount} the connection is
    failed instead of growing.
    """

    def test_framesWaitWhileFull(self) -> None:
        """
        While the transport is full, messages are not handed to it: they
        wait, counted, and go out in order once it drains.
        """
        protocol, transport = openSlow(1 << 20)
        protocol.sendMessage(b"x" * (BUFFER + 1))
        self.assertTrue(transport.producerPaused)
        self.assertEqual(protocol.bufferedAmount, 0)
        written = len(transport.sent)
        protocol.sendMessage(b"second")
        protocol.sendMessage(b"third")
        self.assertEqual(len(transport.sent), written)
        self.assertEqual(protocol.bufferedAmount, 2 * 2 + len(b"second") + len(b"third"))
        frames = framesIn(drainAll(transport))
        self.assertEqual(
            [payload for _, _, payload in frames], [b"x" * (BUFFER + 1), b"second", b"third"]
        )
        self.assertEqual(protocol.bufferedAmount, 0)

    def test_overflowFailsWith1008(self) -> None:
        """
        Past C{maxBufferedAmount}, what waits is dropped and the connection
        fails with 1008; later sends raise L{Disconnected}; what the peer
        eventually reads is what was written before, then the Close.
        """
        protocol, transport = openSlow(1000)
        protocol.sendMessage(b"x" * (BUFFER + 1))
        for _ in range(9):
            protocol.sendMessage(b"y" * 100)
        self.assertEqual(protocol.state, State.OPEN)
        protocol.sendMessage(b"z" * 100)
        self.assertEqual(protocol.state, State.CLOSING)
        self.assertEqual(protocol.localCloseCode, 1008)
        self.assertRaises(Disconnected, protocol.sendMessage, b"late")
        # Only the Close frame waits now.
        self.assertEqual(protocol.bufferedAmount, 4 + len("send buffer limit exceeded"))
        frames = framesIn(drainAll(transport))
        self.assertEqual([opcode for _, opcode, _ in frames], [0x1, 0x8])
        self.assertEqual(parseClosePayload(frames[1][2])[0], 1008)

    def test_overflowCodeOverridden(self) -> None:
        """
        A protocol's C{sendBufferOverflowCode} is the code sent.
        """
        protocol, transport = openSlow(100, code=4008)
        protocol.sendMessage(b"x" * (BUFFER + 1))
        protocol.sendMessage(b"y" * 200)
        frames = framesIn(drainAll(transport))
        self.assertEqual(parseClosePayload(frames[-1][2])[0], 4008)

    def test_preparedMessagesCounted(self) -> None:
        """
        Prepared messages queue and overflow like any other.
        """
        protocol, _ = openSlow(500)
        prepared = protocol.factory.prepareMessage(b"p" * 100)
        protocol.sendMessage(b"x" * (BUFFER + 1))
        for _ in range(4):
            protocol.sendPreparedMessage(prepared)
        self.assertEqual(protocol.bufferedAmount, 4 * len(prepared.frame))
        protocol.sendPreparedMessage(prepared)
        self.assertEqual(protocol.localCloseCode, 1008)

    def test_partLargeFrameKept(self) -> None:
        """
        A large frame partly written when the limit is passed is finished
        before the Close, so the peer still reads valid frames.
        """
        protocol, transport = openSlow(3 * BUFFER)
        large = b"L" * (4 * BUFFER)
        protocol.sendMessage(large)
        self.assertTrue(transport.producerPaused)
        protocol.sendMessage(b"m" * 100)
        self.assertEqual(protocol.localCloseCode, 1008)
        frames = framesIn(drainAll(transport))
        self.assertEqual([opcode for _, opcode, _ in frames], [0x1, 0x8])
        self.assertEqual(frames[0][2], large)

    def test_noLimit(self) -> None:
        """
        With C{maxBufferedAmount} 0 nothing is dropped.
        """
        protocol, transport = openSlow(0)
        protocol.sendMessage(b"x" * (BUFFER + 1))
        for _ in range(100):
            protocol.sendMessage(b"y" * 1000)
        self.assertEqual(protocol.state, State.OPEN)
        self.assertEqual(len(framesIn(drainAll(transport))), 101)

    def test_closeTimeoutEnds(self) -> None:
        """
        The failed connection is aborted by the closing-handshake timeout
        if the peer never reads, and the application hears of it once.
        """
        protocol, transport = openSlow(100)
        protocol.sendMessage(b"x" * (BUFFER + 1))
        protocol.sendMessage(b"y" * 200)
        clock = protocol.factory.reactor
        clock.advance(protocol.factory.options.closeHandshakeTimeout + 2)  # type: ignore[attr-defined]
        self.assertEqual(transport.disconnecting or transport.disconnected, True)
