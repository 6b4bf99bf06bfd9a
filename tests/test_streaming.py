"""
Tests of Autobahn's frame-streaming API on txws connections: receiving
through C{onMessageBegin}, C{onMessageFrameBegin}, C{onMessageFrameData},
C{onMessageFrameEnd} and C{onMessageEnd} (fragmented, streamed in pieces,
compressed, refused), and sending with C{beginMessageFrame} and
C{sendMessageFrameData}; plus the L{StreamingReassembler} they rest on.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.testing import StringTransport

from tests.support import (
    KEY,
    RecordingServer,
    clientFrame,
    connectServer,
    framesIn,
    openClient,
    serverFactory,
    upgradeRequest,
)
from tests.test_reassembly import deflated
from tests.typedtrial import SynchronousTestCase
from txws._mask import mask
from txws._reassembly import (
    BEGIN,
    DATA,
    END,
    FRAME_BEGIN,
    FRAME_END,
    StreamingReassembler,
)
from txws.deflate import Decompressor
from txws.frames import FrameError
from txws.protocol import Disconnected


class Streamer(RecordingServer):
    """
    A server that records the frame-streaming callbacks instead of messages.
    """

    def onMessageBegin(self, isBinary: bool) -> None:
        self.events.append(("begin", isBinary))

    def onMessageFrameBegin(self, length: int) -> None:
        self.events.append(("frameBegin", length))

    def onMessageFrameData(self, payload: bytes) -> None:
        self.events.append(("data", payload))

    def onMessageFrameEnd(self) -> None:
        self.events.append(("frameEnd",))

    def onMessageEnd(self) -> None:
        self.events.append(("end",))


class Collector(RecordingServer):
    """
    A server overriding one streaming callback and calling the base class's:
    the defaults still assemble the message for C{onMessage}.
    """

    def onMessageFrameData(self, payload: bytes) -> None:
        self.events.append(("piece", payload))
        super().onMessageFrameData(payload)


_DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate\r\n"


def openStreamer(
    protocolClass: type[RecordingServer] = Streamer, extra: str = "", **options: Any
) -> tuple[RecordingServer, StringTransport]:
    """
    @return: an open server connection of C{protocolClass} and its cleared
        transport.
    """
    protocol, transport = connectServer(serverFactory(protocolClass=protocolClass, **options))
    protocol.dataReceived(upgradeRequest(extra=extra))
    assert transport.value().startswith(b"HTTP/1.1 101 ")
    transport.clear()
    assert isinstance(protocol, RecordingServer)
    return protocol, transport


def callbacks(protocol: RecordingServer) -> list[tuple[Any, ...]]:
    """
    @return: the recorded callbacks but C{open}.
    """
    return [e for e in protocol.events if e[0] not in ("open", "connect")]


class StreamingReceiveTests(SynchronousTestCase):
    """
    Messages received through the frame-streaming callbacks.
    """

    def test_oneFrame(self) -> None:
        """
        A message of one frame: begin, frame begin, its data, frame end,
        end; C{onMessage} is not called.
        """
        protocol, _ = openStreamer()
        protocol.dataReceived(clientFrame(0x1, b"hello"))
        self.assertEqual(
            callbacks(protocol),
            [("begin", False), ("frameBegin", 5), ("data", b"hello"), ("frameEnd",), ("end",)],
        )

    def test_fragmentsAndControlFrames(self) -> None:
        """
        Each fragment is reported as it arrives, a ping between them is
        answered in between.
        """
        protocol, transport = openStreamer()
        protocol.dataReceived(clientFrame(0x2, b"ab", fin=False))
        self.assertEqual(callbacks(protocol)[-1], ("frameEnd",))
        protocol.dataReceived(clientFrame(0x9, b"p") + clientFrame(0x0, b"", fin=False))
        protocol.dataReceived(clientFrame(0x0, b"cd"))
        self.assertEqual(
            [e for e in callbacks(protocol) if e[0] != "ping"],
            [
                ("begin", True),
                ("frameBegin", 2),
                ("data", b"ab"),
                ("frameEnd",),
                ("frameBegin", 0),
                ("frameEnd",),
                ("frameBegin", 2),
                ("data", b"cd"),
                ("frameEnd",),
                ("end",),
            ],
        )
        self.assertEqual(framesIn(transport.value()), [(True, 0xA, b"p")])

    def test_streamedPieces(self) -> None:
        """
        A frame whose payload arrives over several reads is reported piece
        by piece, as it arrives.
        """
        protocol, _ = openStreamer()
        wire = clientFrame(0x1, "é".encode() * 100)
        protocol.dataReceived(wire[:50])
        self.assertEqual(callbacks(protocol)[:2], [("begin", False), ("frameBegin", 200)])
        protocol.dataReceived(wire[50:120])
        protocol.dataReceived(wire[120:])
        pieces = [e[1] for e in callbacks(protocol) if e[0] == "data"]
        self.assertGreaterEqual(len(pieces), 3)
        self.assertEqual(b"".join(pieces), "é".encode() * 100)
        self.assertEqual(callbacks(protocol)[-2:], [("frameEnd",), ("end",)])

    def test_compressed(self) -> None:
        """
        A compressed message is reported inflated; the frame's length is its
        compressed length.
        """
        protocol, _ = openStreamer(extra=_DEFLATE_OFFER)
        text = b"streaming " * 200
        data = deflated(text)
        protocol.dataReceived(
            clientFrame(0x1, data[:10], fin=False, rsv=0x40) + clientFrame(0x0, data[10:])
        )
        events = callbacks(protocol)
        self.assertEqual(events[:2], [("begin", False), ("frameBegin", 10)])
        self.assertIn(("frameBegin", len(data) - 10), events)
        self.assertEqual(b"".join(e[1] for e in events if e[0] == "data"), text)
        self.assertEqual(events[-1], ("end",))

    def test_compressedStreamed(self) -> None:
        """
        A compressed frame arriving in pieces is reported inflated once it
        is complete.
        """
        protocol, _ = openStreamer(extra=_DEFLATE_OFFER)
        text = bytes(range(256)) * 40
        wire = clientFrame(0x2, deflated(text), rsv=0x40)
        for i in range(0, len(wire), 100):
            protocol.dataReceived(wire[i : i + 100])
        events = callbacks(protocol)
        self.assertEqual(b"".join(e[1] for e in events if e[0] == "data"), text)
        self.assertEqual(events[-2:], [("frameEnd",), ("end",)])

    def test_invalidText(self) -> None:
        """
        Text is checked before it is given: an invalid piece is never
        reported, and the connection closes with 1007.
        """
        protocol, transport = openStreamer()
        protocol.dataReceived(clientFrame(0x1, b"ok", fin=False))
        protocol.dataReceived(clientFrame(0x0, b"\xff"))
        self.assertNotIn(("data", b"\xff"), callbacks(protocol))
        self.assertEqual(framesIn(transport.value())[0][2][:2], (1007).to_bytes(2, "big"))
        self.assertNotIn(("end",), callbacks(protocol))

    def test_limit(self) -> None:
        """
        The message size limit applies to the message's total.
        """
        protocol, transport = openStreamer(maxMessagePayloadSize=10)
        protocol.dataReceived(clientFrame(0x2, b"x" * 6, fin=False))
        protocol.dataReceived(clientFrame(0x0, b"x" * 6))
        self.assertEqual(framesIn(transport.value())[0][2][:2], (1009).to_bytes(2, "big"))
        self.assertEqual([e for e in callbacks(protocol) if e[0] == "data"], [("data", b"x" * 6)])

    def test_defaultsAssembleMessage(self) -> None:
        """
        Overriding one callback and calling the base class's keeps
        C{onMessage} working, with the whole message.
        """
        protocol, _ = openStreamer(Collector)
        protocol.dataReceived(clientFrame(0x1, b"ab", fin=False) + clientFrame(0x0, b"cd"))
        self.assertEqual(protocol.messages(), [(b"abcd", False)])
        self.assertEqual(
            [e for e in protocol.events if e[0] == "piece"],
            [
                ("piece", b"ab"),
                ("piece", b"cd"),
            ],
        )

    def test_callbackRaises(self) -> None:
        """
        A streaming callback that raises closes the connection with 1011,
        and no further callback is made.
        """

        class Failing(Streamer):
            def onMessageFrameBegin(self, length: int) -> None:
                raise RuntimeError("no")

        protocol, transport = openStreamer(Failing)
        protocol.dataReceived(clientFrame(0x1, b"hello"))
        self.assertEqual(framesIn(transport.value())[0][2][:2], (1011).to_bytes(2, "big"))
        self.assertEqual(callbacks(protocol), [("begin", False)])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class StreamingReassemblerTests(SynchronousTestCase):
    """
    The events of L{StreamingReassembler} directly.
    """

    def test_events(self) -> None:
        """
        Whole, fragmented and streamed frames give their events in order,
        and no message.
        """
        reassembler = StreamingReassembler()
        reassembler.message(0x2, b"x")
        self.assertTrue(reassembler.begin(0x1, 3))
        self.assertTrue(reassembler.checksText)
        reassembler.piece(b"ab")
        reassembler.piece(b"c")
        reassembler.end(False, b"abc")
        reassembler.frame(True, 0x0, b"d")
        self.assertEqual(
            reassembler.events,
            [
                (BEGIN, True),
                (FRAME_BEGIN, 1),
                (DATA, b"x"),
                (FRAME_END, None),
                (END, None),
                (BEGIN, False),
                (FRAME_BEGIN, 3),
                (DATA, b"ab"),
                (DATA, b"c"),
                (FRAME_END, None),
                (FRAME_BEGIN, 1),
                (DATA, b"d"),
                (FRAME_END, None),
                (END, None),
            ],
        )

    def test_compressedStreamedEnd(self) -> None:
        """
        A streamed compressed frame is inflated at its end; a non-final one
        ends its frame only.
        """
        reassembler = StreamingReassembler(0, 0, Decompressor())
        data = deflated(b"hello world")
        self.assertTrue(reassembler.begin(0x1, len(data), True))
        self.assertFalse(reassembler.checksText)
        reassembler.end(False, data)
        reassembler.begin(0x0, 0)
        reassembler.end(True, b"")
        self.assertEqual(
            reassembler.events,
            [
                (BEGIN, False),
                (FRAME_BEGIN, len(data)),
                (DATA, b"hello world"),
                (FRAME_END, None),
                (FRAME_BEGIN, 0),
                (FRAME_END, None),
                (END, None),
            ],
        )

    def test_discarding(self) -> None:
        """
        After an error, events are dropped and nothing is reported.
        """
        reassembler = StreamingReassembler(0, 0, Decompressor())
        reassembler.frame(False, 0x1, b"a")
        self.assertRaises(FrameError, reassembler.frame, True, 0x0, b"\xff")
        self.assertEqual(reassembler.events, [])
        reassembler.frame(True, 0x1, b"x")
        reassembler.compressed(True, 0x1, deflated(b"x"))
        self.assertFalse(reassembler.begin(0x1, 1))
        reassembler.end(True, b"x")
        self.assertEqual(reassembler.events, [])

    def test_truncatedText(self) -> None:
        """
        Text ending inside a UTF-8 sequence fails at the end (1007).
        """
        reassembler = StreamingReassembler()
        reassembler.frame(False, 0x1, "é".encode()[:1])
        with self.assertRaises(FrameError) as caught:
            reassembler.frame(True, 0x0, b"")
        self.assertEqual(getattr(caught.exception, "code", None), 1007)


class StreamingSendTests(SynchronousTestCase):
    """
    Frames sent with C{beginMessageFrame} and C{sendMessageFrameData}.
    """

    def test_serverFrames(self) -> None:
        """
        A frame's header announces its length, its payload follows in
        pieces; the return value says what the frame still lacks, or
        (negative) what was left over.
        """
        protocol, transport = openStreamer(RecordingServer)
        protocol.beginMessage(isBinary=True)
        protocol.beginMessageFrame(5)
        self.assertEqual(protocol.sendMessageFrameData(b"ab"), 3)
        self.assertEqual(protocol.sendMessageFrameData(b"cdefg"), -2)
        protocol.beginMessageFrame(2)
        self.assertEqual(protocol.sendMessageFrameData(b"hi"), 0)
        protocol.endMessage()
        self.assertEqual(
            framesIn(transport.value()),
            [(False, 0x2, b"abcde"), (False, 0x0, b"hi"), (True, 0x0, b"")],
        )

    def test_clientMasksAcrossPieces(self) -> None:
        """
        A client's streamed frame is masked with one key across its pieces.
        """
        protocol, transport, _ = openClient()
        protocol.beginMessage()
        protocol.beginMessageFrame(7)
        protocol.sendMessageFrameData(b"hel")
        protocol.sendMessageFrameData(b"lo, ")
        protocol.endMessage()
        wire = transport.value()
        self.assertEqual(wire[:6], bytes((0x01, 0x87)) + KEY)
        self.assertEqual(mask(wire[6:13], KEY), b"hello, ")
        self.assertEqual(framesIn(wire, masked=True)[0], (False, 0x1, b"hello, "))

    def test_controlFramesWait(self) -> None:
        """
        A ping sent, or a pong answering the peer, while a frame lacks
        payload waits for the frame's end.
        """
        protocol, transport = openStreamer(RecordingServer)
        protocol.beginMessage()
        protocol.beginMessageFrame(4)
        protocol.sendMessageFrameData(b"ab")
        protocol.sendPing(b"mine")
        protocol.dataReceived(clientFrame(0x9, b"theirs"))
        protocol.sendMessageFrameData(b"cd")
        protocol.endMessage()
        self.assertEqual(
            framesIn(transport.value()),
            [(False, 0x1, b"abcd"), (True, 0x9, b"mine"), (True, 0xA, b"theirs"), (True, 0x0, b"")],
        )

    def test_closePadsIncompleteFrame(self) -> None:
        """
        A Close while a frame is incomplete completes the frame with zero
        bytes first (its message stays unfinished).
        """
        protocol, transport = openStreamer(RecordingServer)
        protocol.beginMessage()
        protocol.beginMessageFrame(6)
        protocol.sendMessageFrameData(b"ab")
        protocol.sendClose(1000)
        frames = framesIn(transport.value())
        self.assertEqual(frames[0], (False, 0x1, b"ab\x00\x00\x00\x00"))
        self.assertEqual(frames[1][:2], (True, 0x8))

    def test_closeDropsHugeIncompleteFrame(self) -> None:
        """
        When completing the frame would take more than 16 MiB, the
        connection is dropped instead.
        """
        protocol, transport = openStreamer(RecordingServer)
        protocol.beginMessage(isBinary=True)
        protocol.beginMessageFrame(1 << 40)
        protocol.sendClose(1000)
        self.assertTrue(transport.disconnecting)

    def test_misuse(self) -> None:
        """
        Frame calls out of order, invalid lengths and invalid text raise.
        """
        protocol, _ = openStreamer(RecordingServer)
        self.assertRaises(ValueError, protocol.beginMessageFrame, 1)
        protocol.beginMessage()
        self.assertRaises(ValueError, protocol.sendMessageFrameData, b"x")
        self.assertRaises(ValueError, protocol.beginMessageFrame, -1)
        self.assertRaises(ValueError, protocol.beginMessageFrame, 1 << 63)
        protocol.beginMessageFrame(2)
        self.assertRaises(ValueError, protocol.beginMessageFrame, 1)
        self.assertRaises(ValueError, protocol.sendMessageFrame, b"x")
        self.assertRaises(ValueError, protocol.endMessage)
        protocol.sendMessageFrameData(b"ok")
        protocol.endMessage()
        protocol.beginMessage()
        protocol.beginMessageFrame(2)
        self.assertRaises(ValueError, protocol.sendMessageFrameData, b"\xff\xfe")
        protocol.connectionLost()
        self.assertRaises(Disconnected, protocol.beginMessageFrame, 1)
        self.assertRaises(Disconnected, protocol.sendMessageFrameData, b"x")

    def test_compression(self) -> None:
        """
        With permessage-deflate, a message whose first frame is begun with
        C{beginMessageFrame} goes uncompressed; a compressed message cannot
        continue with one.
        """
        protocol, transport = openStreamer(RecordingServer, extra=_DEFLATE_OFFER)
        protocol.beginMessage()
        protocol.beginMessageFrame(3)
        protocol.sendMessageFrameData(b"abc")
        protocol.endMessage()
        self.assertEqual(framesIn(transport.value()), [(False, 0x1, b"abc"), (True, 0x0, b"")])
        protocol.beginMessage()
        protocol.sendMessageFrame(b"compressed " * 10)
        self.assertRaises(ValueError, protocol.beginMessageFrame, 3)
