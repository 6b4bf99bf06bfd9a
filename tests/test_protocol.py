"""
Conformance tests for the connection state machine (RFC 6455 sections 5-8),
organised by section.  Each input is fed whole, byte by byte, and split in
two at every offset, through L{StringTransport}s and a L{Clock}.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from tests.typedtrial import SynchronousTestCase
from txws._states import Ours, Theirs, checkInvariants
from txws.frames import parseClosePayload
from txws.protocol import Disconnected, State, WebSocketProtocol, peerToString

from .support import (
    RecordingServer,
    clientFrame,
    closeFrame,
    connectServer,
    framesIn,
    lostCleanly,
    openClient,
    openServer,
    serverFactory,
    serverFrame,
    upgradeRequest,
)

Outcome = tuple[list[tuple[Any, ...]], list[tuple[bool, int, bytes]], bool]


def splits(data: bytes) -> Iterator[list[bytes]]:
    """
    Yield C{data} whole, byte by byte, and split in two at every offset.
    """
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield [data[:i], data[i:]]


def feedServer(chunks: list[bytes], **options: Any) -> Outcome:
    """
    Feed chunks to a fresh open server connection.

    @return: its events after the handshake, the frames it wrote, and
        whether it closed (or half-closed) its transport.
    """
    protocol, transport, _ = openServer(**options)
    for chunk in chunks:
        protocol.dataReceived(chunk)
    return (
        [e for e in protocol.events if e[0] not in ("connect", "open")],
        framesIn(transport.value()),
        transport.disconnecting,
    )


class SplitTestsMixin:
    """
    Assert that an input gives the same outcome however it is split.
    """

    assertEqual: Callable[..., None]

    def assertSameAnySplit(self, data: bytes, **options: Any) -> Outcome:
        reference = feedServer([data], **options)
        for chunks in splits(data):
            self.assertEqual(feedServer(chunks, **options), reference, chunks)
        return reference


def closeCodeOf(frames: list[tuple[bool, int, bytes]]) -> int:
    """
    @return: the code of the last frame, which must be a Close frame.
    """
    _fin, opcode, payload = frames[-1]
    assert opcode == 0x8, frames
    return parseClosePayload(payload)[0]


class PeerTests(SynchronousTestCase):
    """
    C{peer} is written as Autobahn writes it.
    """

    def test_peerToString(self) -> None:
        """
        IPv4, IPv6 and UNIX addresses read C{tcp4:}, C{tcp6:} and C{unix:}
        (Autobahn's C{peer2str}), the port after the last colon.
        """
        cases = [
            (IPv4Address("TCP", "127.0.0.1", 5555), "tcp4:127.0.0.1:5555"),
            (IPv6Address("TCP", "::1", 5555), "tcp6:::1:5555"),
            (UNIXAddress(b"/run/txws.sock"), "unix:/run/txws.sock"),
        ]
        for address, expected in cases:
            self.assertEqual(peerToString(address), expected)


class StateTableTests(SynchronousTestCase):
    """
    The connection states and their transitions (RFC 6455 sections 4 and 7).
    """

    def test_illegalTransitionRaises(self) -> None:
        """
        A transition outside the table is a programming error.
        """
        protocol, _, _ = openServer()
        self.assertRaises(AssertionError, protocol._setState, State.CONNECTING)

    def test_lifecycle(self) -> None:
        """
        A connection goes CONNECTING, OPEN, CLOSING, CLOSED.
        """
        factory = serverFactory()
        protocol, _transport = connectServer(factory)
        self.assertIs(protocol.state, State.CONNECTING)
        protocol.dataReceived(upgradeRequest())
        self.assertIs(protocol.state, State.OPEN)
        protocol.sendClose(1000)
        self.assertIs(protocol.state, State.CLOSING)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIs(protocol.state, State.CLOSED)


def states(protocol: WebSocketProtocol) -> tuple[State, Ours, Theirs]:
    """
    @return: the connection's state and its two side machines, after
        checking the invariants between them.
    """
    checkInvariants(protocol.state, protocol._ours, protocol._theirs)
    return protocol.state, protocol._ours, protocol._theirs


class CloseStateTests(SynchronousTestCase):
    """
    Closing and failing (RFC 6455 sections 7.1.2-7.1.7), driven event by
    event, with L{State} and the L{Ours} / L{Theirs} side machines checked
    after each.
    """

    def test_weCloseFirst(self) -> None:
        """
        sendClose, then the peer's Close, then TCP lost: a clean close.
        """
        protocol, transport, _ = openServer()
        self.assertEqual(states(protocol), (State.OPEN, Ours.ACTIVE, Theirs.READING))
        protocol.sendClose(1000)
        self.assertEqual(states(protocol), (State.CLOSING, Ours.CLOSE_SENT, Theirs.READING))
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(closeFrame(1000))
        self.assertEqual(
            states(protocol), (State.CLOSING, Ours.CLOSE_SENT, Theirs.CLOSE_RECEIVED)
        )
        self.assertTrue(transport.disconnecting)
        lostCleanly(protocol)
        self.assertEqual(states(protocol), (State.CLOSED, Ours.CLOSE_SENT, Theirs.CLOSE_RECEIVED))
        self.assertEqual(protocol.closes(), [(True, 1000, "")])

    def test_theyCloseFirst(self) -> None:
        """
        The peer's Close is answered at once: both sides are done in one
        step, and TCP lost afterwards is a clean close.
        """
        protocol, _transport, _ = openServer()
        protocol.dataReceived(closeFrame(4000, b"bye"))
        self.assertEqual(
            states(protocol), (State.CLOSING, Ours.CLOSE_SENT, Theirs.CLOSE_RECEIVED)
        )
        self.assertEqual(protocol.localCloseCode, 4000)
        lostCleanly(protocol)
        self.assertEqual(protocol.closes(), [(True, 4000, "bye")])

    def test_sendCloseTwice(self) -> None:
        """
        A second sendClose changes nothing and sends nothing.
        """
        protocol, transport, _ = openServer()
        protocol.sendClose(1000)
        sent = transport.value()
        protocol.sendClose(1001)
        self.assertEqual(transport.value(), sent)
        self.assertEqual(states(protocol), (State.CLOSING, Ours.CLOSE_SENT, Theirs.READING))

    def test_failWhileOpen(self) -> None:
        """
        A violation that leaves the input parseable fails the connection and
        keeps reading control frames: the peer's Close still ends the
        handshake, which is not clean.
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(clientFrame(0x1, b"\xff"))
        self.assertEqual(states(protocol), (State.CLOSING, Ours.FAILED, Theirs.READING))
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1007)
        # (Plain ints for applications, though the error carried a CloseCode.)
        self.assertIs(type(protocol.localCloseCode), int)
        protocol.dataReceived(clientFrame(0x9, b"ignored") + closeFrame(1000))
        self.assertEqual(states(protocol), (State.CLOSING, Ours.FAILED, Theirs.CLOSE_RECEIVED))
        self.assertEqual([f[1] for f in framesIn(transport.value())], [0x8])
        lostCleanly(protocol)
        [(wasClean, code, reason)] = protocol.closes()
        self.assertEqual((wasClean, code), (False, 1006))
        self.assertIs(type(code), int)
        self.assertIn("close code 1007", reason)

    def test_failWhileClosing(self) -> None:
        """
        A violation after our Close fails the connection without a second
        Close frame.
        """
        protocol, transport, _ = openServer()
        protocol.sendClose(1000)
        transport.clear()
        protocol.dataReceived(clientFrame(0x1, b"\xff"))
        self.assertEqual(states(protocol), (State.CLOSING, Ours.FAILED, Theirs.READING))
        self.assertEqual(transport.value(), b"")
        self.assertEqual(protocol.localCloseCode, 1000)

    def test_brokenInput(self) -> None:
        """
        Framing that cannot be parsed further stops reading and shuts our
        side of TCP at once.
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(serverFrame(0x1, b"unmasked"))
        self.assertEqual(states(protocol), (State.CLOSING, Ours.FAILED, Theirs.STOPPED))
        self.assertTrue(transport.disconnecting)
        protocol.dataReceived(closeFrame(1000))
        self.assertEqual(states(protocol), (State.CLOSING, Ours.FAILED, Theirs.STOPPED))

    def test_invalidCloseFrame(self) -> None:
        """
        An invalid Close frame stops reading: it is not their Close.
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(closeFrame(1005))
        self.assertEqual(states(protocol), (State.CLOSING, Ours.FAILED, Theirs.STOPPED))
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1002)

    def test_applicationFailsAfterExchange(self) -> None:
        """
        An application error after both Close frames makes the close
        unclean.
        """
        protocol, _transport, _ = openServer()
        protocol.sendClose(1000)
        protocol.dataReceived(closeFrame(1000))
        protocol._applicationFailed(Failure(RuntimeError("late")), "onMessage")
        self.assertEqual(states(protocol), (State.CLOSING, Ours.FAILED, Theirs.CLOSE_RECEIVED))
        lostCleanly(protocol)
        self.assertEqual(protocol.closes()[0][:2], (False, 1006))
        self.flushLoggedErrors(RuntimeError)

    def test_lostWhileOpen(self) -> None:
        """
        TCP lost without a Close is unclean, the side machines untouched.
        """
        protocol, _, _ = openServer()
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(states(protocol), (State.CLOSED, Ours.ACTIVE, Theirs.READING))
        self.assertEqual(protocol.closes()[0][:2], (False, 1006))

    def test_refusedHandshake(self) -> None:
        """
        A refused opening handshake stops reading before the connection
        ends.
        """
        protocol, transport = connectServer(serverFactory())
        protocol.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
        self.assertEqual(states(protocol), (State.CONNECTING, Ours.ACTIVE, Theirs.STOPPED))
        self.assertTrue(transport.disconnecting)

    def test_closeTimeouts(self) -> None:
        """
        Without their Close, the close timeout aborts TCP and the close is
        unclean; after both Close frames it only aborts TCP (the exchange
        was complete, so the close stays clean).
        """
        for theirs, close in [
            (False, (False, 1006, "closing handshake timed out")),
            (True, (True, 1000, "")),
        ]:
            protocol, transport, clock = openServer(closeHandshakeTimeout=5)
            protocol.sendClose(1000)
            if theirs:
                protocol.dataReceived(closeFrame(1000))
            clock.advance(6)
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionLost()))
            self.assertEqual(protocol.closes(), [close])

    def test_illegalChanges(self) -> None:
        """
        Changes outside the side machines' tables are programming errors.
        """
        protocol, _, _ = openServer()
        self.assertRaises(AssertionError, protocol._change, ours=Ours.ACTIVE)
        self.assertRaises(AssertionError, protocol._change, theirs=Theirs.READING)
        protocol.sendClose(1000)
        self.assertRaises(AssertionError, protocol._change, ours=Ours.CLOSE_SENT)

    def test_invariants(self) -> None:
        """
        L{checkInvariants} refuses the combinations that must not occur.
        """
        for state, ours, theirs in [
            (State.CLOSING, Ours.ACTIVE, Theirs.READING),
            (State.OPEN, Ours.CLOSE_SENT, Theirs.READING),
            (State.OPEN, Ours.ACTIVE, Theirs.CLOSE_RECEIVED),
        ]:
            self.assertRaises(AssertionError, checkInvariants, state, ours, theirs)
        checkInvariants(State.CLOSED, Ours.ACTIVE, Theirs.CLOSE_RECEIVED)


class BaseFramingTests(SplitTestsMixin, SynchronousTestCase):
    """
    RFC 6455 section 5.2: base framing, as a server receives it.
    """

    def test_textMessage(self) -> None:
        """
        A masked text frame is delivered as one text message.
        """
        events, frames, closed = self.assertSameAnySplit(clientFrame(0x1, b"Hello"))
        self.assertEqual(events, [("message", b"Hello", False)])
        self.assertEqual((frames, closed), ([], False))

    def test_binaryMessage(self) -> None:
        """
        A masked binary frame is delivered as one binary message.
        """
        events, _, _ = self.assertSameAnySplit(clientFrame(0x2, bytes(range(256))))
        self.assertEqual(events, [("message", bytes(range(256)), True)])

    def test_emptyMessages(self) -> None:
        """
        Empty text and binary messages are delivered.
        """
        events, _, _ = self.assertSameAnySplit(clientFrame(0x1) + clientFrame(0x2))
        self.assertEqual(events, [("message", b"", False), ("message", b"", True)])

    def test_extendedLengths(self) -> None:
        """
        Messages of 125, 126, 65535 and 65536 bytes (7, 16 and 64-bit
        lengths) are delivered intact, even fed byte by byte.
        """
        for size in (125, 126, 65535, 65536):
            payload = bytes(i % 251 for i in range(size))
            frame = clientFrame(0x2, payload)
            for chunks in ([frame], [frame[i : i + 7] for i in range(0, len(frame), 7)]):
                events, frames, _ = feedServer(chunks)
                self.assertEqual(events, [("message", payload, True)])
                self.assertEqual(frames, [])

    def test_manyFramesInOneRead(self) -> None:
        """
        Several frames in one read are delivered in order.
        """
        data = b"".join(clientFrame(0x1, str(i).encode()) for i in range(50))
        events, _, _ = feedServer([data])
        self.assertEqual(events, [("message", str(i).encode(), False) for i in range(50)])

    def test_reservedBits(self) -> None:
        """
        RSV1, RSV2 or RSV3 set without a negotiated extension fails the
        connection with 1002 and delivers nothing.
        """
        for rsv in (0x40, 0x20, 0x10, 0x70):
            events, frames, _ = self.assertSameAnySplit(clientFrame(0x1, b"x", rsv=rsv))
            self.assertEqual(closeCodeOf(frames), 1002)
            self.assertEqual([e for e in events if e[0] == "message"], [])

    def test_reservedOpcodes(self) -> None:
        """
        Reserved data (3-7) and control (11-15) opcodes fail with 1002.
        """
        for opcode in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
            _, frames, _ = feedServer([clientFrame(opcode, b"x")])
            self.assertEqual(closeCodeOf(frames), 1002, opcode)

    def test_unmaskedClientFrame(self) -> None:
        """
        Section 5.1: a server fails a connection whose client sends an
        unmasked frame (1002).
        """
        events, frames, _ = feedServer([serverFrame(0x1, b"Hello")])
        self.assertEqual(closeCodeOf(frames), 1002)
        self.assertEqual([e for e in events if e[0] == "message"], [])

    def test_nonMinimalLength(self) -> None:
        """
        A length in the 16-bit form below 126 fails with 1002.
        """
        frame = bytes([0x82, 0x80 | 126, 0, 5]) + b"\x00\x00\x00\x00" + b"hello"
        _, frames, _ = feedServer([frame])
        self.assertEqual(closeCodeOf(frames), 1002)

    def test_validBeforeViolationInSameRead(self) -> None:
        """
        A valid message that arrived before a violating frame, in the same
        read, is delivered before the connection fails.
        """
        data = clientFrame(0x1, b"first") + clientFrame(0x1, b"x", rsv=0x40)
        events, frames, _ = self.assertSameAnySplit(data)
        self.assertEqual(events[0], ("message", b"first", False))
        self.assertEqual(closeCodeOf(frames), 1002)

    def test_inputAfterFailureDiscarded(self) -> None:
        """
        After a framing violation nothing more is delivered, and our side
        of the TCP connection is shut (a Close frame first, never a bare
        drop).
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(clientFrame(0x1, b"x", rsv=0x40) + clientFrame(0x1, b"late"))
        protocol.dataReceived(clientFrame(0x1, b"later"))
        self.assertEqual(protocol.messages(), [])
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1002)
        self.assertTrue(transport.disconnecting)


class FragmentationTests(SplitTestsMixin, SynchronousTestCase):
    """
    RFC 6455 section 5.4: fragmentation.
    """

    def test_fragmentedText(self) -> None:
        """
        Three fragments make one message.
        """
        data = (
            clientFrame(0x1, b"Hel", fin=False)
            + clientFrame(0x0, b"l", fin=False)
            + clientFrame(0x0, b"o")
        )
        events, _, _ = self.assertSameAnySplit(data)
        self.assertEqual(events, [("message", b"Hello", False)])

    def test_emptyFragments(self) -> None:
        """
        Empty fragments are allowed, including the final one.
        """
        data = (
            clientFrame(0x2, b"", fin=False)
            + clientFrame(0x0, b"ab", fin=False)
            + clientFrame(0x0, b"")
        )
        events, _, _ = feedServer([data])
        self.assertEqual(events, [("message", b"ab", True)])

    def test_controlInterleaved(self) -> None:
        """
        A ping between fragments is answered at once, and the message is
        delivered whole afterwards.
        """
        data = (
            clientFrame(0x1, b"frag", fin=False)
            + clientFrame(0x9, b"p")
            + clientFrame(0x0, b"ment")
        )
        events, frames, _ = self.assertSameAnySplit(data)
        self.assertEqual(events, [("ping", b"p"), ("message", b"fragment", False)])
        self.assertEqual(frames, [(True, 0xA, b"p")])

    def test_continuationWithoutStart(self) -> None:
        """
        A continuation frame with no message in progress fails with 1002.
        """
        _, frames, _ = self.assertSameAnySplit(clientFrame(0x0, b"x"))
        self.assertEqual(closeCodeOf(frames), 1002)

    def test_newMessageDuringFragmented(self) -> None:
        """
        A text or binary frame while a fragmented message is incomplete
        fails with 1002.
        """
        data = clientFrame(0x1, b"a", fin=False) + clientFrame(0x1, b"b")
        events, frames, _ = self.assertSameAnySplit(data)
        self.assertEqual(closeCodeOf(frames), 1002)
        self.assertEqual([e for e in events if e[0] == "message"], [])

    def test_fragmentedControlFrame(self) -> None:
        """
        Section 5.5: a control frame without FIN fails with 1002.
        """
        _, frames, _ = feedServer([clientFrame(0x9, b"x", fin=False)])
        self.assertEqual(closeCodeOf(frames), 1002)


class ControlFrameTests(SplitTestsMixin, SynchronousTestCase):
    """
    RFC 6455 section 5.5: control frames.
    """

    def test_pingAnsweredWithSamePayload(self) -> None:
        """
        A ping of up to 125 bytes gets a pong with the same payload.
        """
        payload = bytes(range(125))
        events, frames, _ = self.assertSameAnySplit(clientFrame(0x9, payload))
        self.assertEqual(frames, [(True, 0xA, payload)])
        self.assertEqual(events, [("ping", payload)])

    def test_pingTooLong(self) -> None:
        """
        A ping with a 126-byte payload fails with 1002 and gets no pong.
        """
        _, frames, _ = feedServer([clientFrame(0x9, b"x" * 126)])
        self.assertEqual([f[1] for f in frames], [0x8])
        self.assertEqual(closeCodeOf(frames), 1002)

    def test_unsolicitedPong(self) -> None:
        """
        An unsolicited pong is reported and otherwise ignored.
        """
        events, frames, _ = feedServer([clientFrame(0xA, b"beat")])
        self.assertEqual((events, frames), ([("pong", b"beat")], []))

    def test_sendPing(self) -> None:
        """
        C{sendPing} writes an unmasked ping; payloads over 125 bytes are
        refused locally.
        """
        protocol, transport, _ = openServer()
        protocol.sendPing(b"abc")
        self.assertEqual(framesIn(transport.value()), [(True, 0x9, b"abc")])
        self.assertRaises(ValueError, protocol.sendPing, b"x" * 126)


class Utf8Tests(SplitTestsMixin, SynchronousTestCase):
    """
    RFC 6455 sections 5.6 and 8.1: text must be valid UTF-8, checked as
    soon as each byte arrives.
    """

    def test_invalidText(self) -> None:
        """
        A text message that is not UTF-8 fails with 1007, not delivered.
        """
        for bad in (b"\xff", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf", b"abc\xe2\x82"):
            events, frames, _ = feedServer([clientFrame(0x1, bad)])
            self.assertEqual(closeCodeOf(frames), 1007, bad)
            self.assertEqual([e for e in events if e[0] == "message"], [])

    def test_multibyteSplitAcrossFragments(self) -> None:
        """
        Valid characters split across fragments are accepted.
        """
        text = "κόσμε ✓ 𝄞".encode()
        data = b"".join(
            clientFrame(0x1 if i == 0 else 0x0, text[i : i + 1], fin=i == len(text) - 1)
            for i in range(len(text))
        )
        events, _, _ = feedServer([data])
        self.assertEqual(events, [("message", text, False)])

    def test_failFastBetweenFragments(self) -> None:
        """
        The connection fails when the fragment with the invalid byte
        arrives, before the message is complete.
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(clientFrame(0x1, "κόσμε".encode(), fin=False))
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(clientFrame(0x0, b"\xf4\x90\x80\x80", fin=False))
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1007)

    def test_failFastWithinFrame(self) -> None:
        """
        Within one frame whose payload arrives in chunks, the connection
        fails as soon as the invalid chunk arrives.
        """
        for bad in (b"\xf4\x90", b"\xed\xa0", b"\xff"):
            protocol, transport, _ = openServer()
            frame = clientFrame(0x1, b"valid" + bad + b"rest of the message")
            header = len(frame) - len(b"valid" + bad + b"rest of the message")
            protocol.dataReceived(frame[: header + 5])
            self.assertEqual(transport.value(), b"")
            protocol.dataReceived(frame[header + 5 : header + 5 + len(bad)])
            self.assertEqual(closeCodeOf(framesIn(transport.value())), 1007, bad)

    def test_truncatedAtEnd(self) -> None:
        """
        A message ending inside a multi-byte character fails with 1007.
        """
        data = clientFrame(0x1, b"\xe2\x82", fin=False) + clientFrame(0x0, b"")
        _, frames, _ = self.assertSameAnySplit(data)
        self.assertEqual(closeCodeOf(frames), 1007)

    def test_sendInvalidTextRefused(self) -> None:
        """
        Sending invalid UTF-8 as text is a local error, not a frame.
        """
        protocol, transport, _ = openServer()
        self.assertRaises(ValueError, protocol.sendMessage, b"\xff")
        self.assertEqual(transport.value(), b"")


class ClosingTests(SplitTestsMixin, SynchronousTestCase):
    """
    RFC 6455 section 7: the closing handshake.
    """

    def test_peerInitiated(self) -> None:
        """
        The server echoes the peer's code, closes TCP first, and reports a
        clean close with the peer's code and reason.
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(closeFrame(1000, b"done"))
        self.assertEqual(framesIn(transport.value()), [(True, 0x8, b"\x03\xe8")])
        self.assertTrue(transport.disconnecting)
        self.assertIs(protocol.state, State.CLOSING)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(protocol.closes(), [(True, 1000, "done")])

    def test_emptyClose(self) -> None:
        """
        An empty Close is answered with an empty Close; the code reported is
        1005, which never goes on the wire.
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(closeFrame(None))
        self.assertEqual(framesIn(transport.value()), [(True, 0x8, b"")])
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(protocol.closes(), [(True, 1005, "")])

    def test_invalidClosePayloads(self) -> None:
        """
        A one-byte payload or an invalid code fails with 1002; an invalid
        UTF-8 reason with 1007.
        """
        cases = [
            (serverFrame(0x8, b"\x03")[:0] + clientFrame(0x8, b"\x03"), 1002),
            (closeFrame(999), 1002),
            (closeFrame(1005), 1002),
            (closeFrame(1006), 1002),
            (closeFrame(1015), 1002),
            (closeFrame(2000), 1002),
            (closeFrame(5000), 1002),
            (closeFrame(1000, b"\xff"), 1007),
        ]
        for frame, code in cases:
            _, frames, _ = feedServer([frame])
            self.assertEqual(closeCodeOf(frames), code, frame)

    def test_validCloseCodes(self) -> None:
        """
        Registered and private codes are echoed.
        """
        for code in (1000, 1001, 1002, 1003, 1007, 1011, 1014, 3000, 3999, 4000, 4999):
            _, frames, _ = feedServer([closeFrame(code)])
            self.assertEqual(closeCodeOf(frames), code)

    def test_serverInitiated(self) -> None:
        """
        After C{sendClose} the server waits for the peer's Close, then
        closes TCP; the close is clean.
        """
        protocol, transport, _ = openServer()
        protocol.sendClose(4000, "bye")
        self.assertEqual(framesIn(transport.value()), [(True, 0x8, b"\x0f\xa0bye")])
        self.assertFalse(transport.disconnecting)
        protocol.dataReceived(closeFrame(4000, b"bye"))
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(protocol.closes(), [(True, 4000, "bye")])

    def test_messagesAfterOurCloseStillDelivered(self) -> None:
        """
        Messages the peer sent before seeing our Close are still delivered.
        """
        protocol, _, _ = openServer()
        protocol.sendClose(1000)
        protocol.dataReceived(clientFrame(0x1, b"in flight"))
        self.assertEqual(protocol.messages(), [(b"in flight", False)])

    def test_nothingAfterPeerClose(self) -> None:
        """
        Frames after the peer's Close are ignored.
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(closeFrame(1000) + clientFrame(0x1, b"late") + clientFrame(0x9))
        self.assertEqual(protocol.messages(), [])
        self.assertEqual([f[1] for f in framesIn(transport.value())], [0x8])

    def test_closeTimeout(self) -> None:
        """
        Without the peer's Close within the close timeout, the connection
        is aborted and reported unclean (1006).
        """
        protocol, transport, clock = openServer(closeHandshakeTimeout=5)
        protocol.sendClose(1000)
        clock.advance(4.9)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.2)
        self.assertTrue(transport.disconnected or transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(protocol.closes()[0][:2], (False, 1006))

    def test_reservedCodesNeverSent(self) -> None:
        """
        1005, 1006 and 1015 and out-of-range codes cannot be sent.
        """
        protocol, transport, _ = openServer()
        for code in (1005, 1006, 1015, 999, 5000):
            self.assertRaises(ValueError, protocol.sendClose, code)
        self.assertRaises(ValueError, protocol.sendClose, 1000, "x" * 124)
        self.assertRaises(ValueError, protocol.sendClose, None, "reason without code")
        self.assertEqual(transport.value(), b"")

    def test_abruptLoss(self) -> None:
        """
        TCP lost without a Close: C{onClose(False, 1006, ...)}, once.
        """
        protocol, _, _ = openServer()
        protocol.connectionLost(Failure(ConnectionLost()))
        protocol.connectionLost(Failure(ConnectionLost()))
        closes = protocol.closes()
        self.assertEqual(len(closes), 1)
        self.assertEqual(closes[0][:2], (False, 1006))

    def test_sendAfterClose(self) -> None:
        """
        Sending after the closing handshake started raises L{Disconnected}.
        """
        protocol, _, _ = openServer()
        protocol.sendClose()
        self.assertRaises(Disconnected, protocol.sendMessage, b"x")
        self.assertRaises(Disconnected, protocol.sendPing)

    def test_failureIsUnclean(self) -> None:
        """
        A connection we failed is reported unclean even when the peer
        answers our Close.
        """
        protocol, transport, _ = openServer()
        protocol.dataReceived(clientFrame(0x1, b"\xff"))
        protocol.dataReceived(closeFrame(1007))
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        wasClean, code, reason = protocol.closes()[0]
        self.assertEqual((wasClean, code), (False, 1006))
        self.assertIn("1007", reason)


class LimitTests(SynchronousTestCase):
    """
    Size limits, enforced while reading and before buffering (1009).
    """

    def test_frameTooLargeFromHeader(self) -> None:
        """
        A frame announcing more than the frame limit fails from its header
        alone.
        """
        protocol, transport, _ = openServer(maxFramePayloadSize=1000)
        frame = clientFrame(0x2, b"x" * 1001)
        protocol.dataReceived(frame[:8])
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1009)

    def test_messageTooLargeAcrossFragments(self) -> None:
        """
        Fragments adding up to more than the message limit fail with 1009.
        """
        _, frames, _ = feedServer(
            [clientFrame(0x2, b"x" * 600, fin=False), clientFrame(0x0, b"x" * 600)],
            maxMessagePayloadSize=1000,
        )
        self.assertEqual(closeCodeOf(frames), 1009)

    def test_streamedFrameOverMessageLimit(self) -> None:
        """
        A frame whose announced length would take the message over its
        limit fails before its payload is buffered.
        """
        protocol, transport, _ = openServer(maxMessagePayloadSize=1000)
        protocol.dataReceived(clientFrame(0x2, b"x" * 600, fin=False))
        protocol.dataReceived(clientFrame(0x0, b"y" * 600)[:8])
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1009)
        self.assertFalse(protocol._reassembler.inMessage)
        partial = protocol._partial
        assert partial is not None
        self.assertIsNone(partial.assembler)

    def test_unlimited(self) -> None:
        """
        0 disables the limits.
        """
        events, _, _ = feedServer(
            [clientFrame(0x2, b"x" * 3_000_000)], maxFramePayloadSize=0, maxMessagePayloadSize=0
        )
        self.assertEqual(len(events[0][1]), 3_000_000)

    def test_atTheLimit(self) -> None:
        """
        A message of exactly the limit is accepted.
        """
        events, _, _ = feedServer([clientFrame(0x2, b"x" * 1000)], maxMessagePayloadSize=1000)
        self.assertEqual(events, [("message", b"x" * 1000, True)])


class KeepaliveTests(SynchronousTestCase):
    """
    Automatic pings and pongs.
    """

    def test_pingEveryInterval(self) -> None:
        """
        A ping goes out after the interval; its pong keeps the connection.
        """
        protocol, transport, clock = openServer(autoPingInterval=20, autoPingTimeout=10)
        clock.advance(20)
        [(_fin, opcode, payload)] = framesIn(transport.value())
        self.assertEqual(opcode, 0x9)
        transport.clear()
        protocol.dataReceived(clientFrame(0xA, payload))
        clock.advance(15)
        self.assertEqual(transport.value(), b"")
        clock.advance(5)
        self.assertEqual([f[1] for f in framesIn(transport.value())], [0x9])

    def test_noPongCloses1011(self) -> None:
        """
        Without a pong within the timeout the connection closes with 1011.
        """
        protocol, transport, clock = openServer(autoPingInterval=20, autoPingTimeout=10)
        clock.advance(20)
        transport.clear()
        protocol.dataReceived(clientFrame(0x1, b"traffic is not a pong"))
        clock.advance(10)
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1011)

    def test_wrongPongIgnored(self) -> None:
        """
        A pong with another payload does not count.
        """
        protocol, transport, clock = openServer(autoPingInterval=20, autoPingTimeout=10)
        clock.advance(20)
        transport.clear()
        protocol.dataReceived(clientFrame(0xA, b"other"))
        clock.advance(10)
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1011)

    def test_anyTrafficOption(self) -> None:
        """
        With C{autoPingRestartOnAnyTraffic}, any data proves liveness.
        """
        protocol, transport, clock = openServer(
            autoPingInterval=20, autoPingTimeout=10, autoPingRestartOnAnyTraffic=True
        )
        clock.advance(20)
        transport.clear()
        protocol.dataReceived(clientFrame(0x1, b"alive"))
        clock.advance(10)
        self.assertEqual(transport.value(), b"")

    def test_noPingsAfterClose(self) -> None:
        """
        Keepalive stops once closing starts.
        """
        protocol, transport, clock = openServer(autoPingInterval=20, autoPingTimeout=10)
        protocol.sendClose(1000)
        transport.clear()
        clock.advance(25)
        self.assertEqual(transport.value(), b"")


class FailureLoggingTests(SynchronousTestCase):
    """
    A failed connection is logged once, with the peer and the reason.
    """

    def test_loggedOnceWithPeer(self) -> None:
        """
        A protocol violation produces exactly one log event naming the peer,
        the reason and the close code, even if the peer keeps misbehaving.
        """
        from twisted.logger import ILogObserver, globalLogPublisher

        events: list[dict[str, Any]] = []

        @implementer(ILogObserver)
        class Collect:
            def __call__(self, event: dict[str, Any]) -> None:
                events.append(event)

        observer = Collect()
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        protocol, _, _ = openServer()
        protocol.dataReceived(clientFrame(0x1, b"\xff"))
        protocol.dataReceived(clientFrame(0x1, b"\xfe"))
        protocol.connectionLost(Failure(ConnectionLost()))
        failures = [e for e in events if "Failing WebSocket" in e.get("log_format", "")]
        self.assertEqual(len(failures), 1)
        self.assertEqual(
            (failures[0]["peer"], failures[0]["code"]), ("tcp4:127.0.0.1:50000", 1007)
        )
        self.assertIn("UTF-8", failures[0]["reason"])


class ApplicationErrorTests(SynchronousTestCase):
    """
    Callbacks that raise are logged and close with 1011 without details.
    """

    def test_onMessageRaises(self) -> None:
        """
        An exception in C{onMessage} closes with 1011 and an empty reason.
        """

        class Broken(RecordingServer):
            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                raise RuntimeError("secret detail")

        factory = serverFactory(protocolClass=Broken)
        protocol, transport = connectServer(factory)
        protocol.dataReceived(upgradeRequest())
        transport.clear()
        protocol.dataReceived(clientFrame(0x1, b"x") + clientFrame(0x1, b"y"))
        [(_fin, _opcode, payload)] = framesIn(transport.value())
        self.assertEqual(payload, b"\x03\xf3")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_deferredFailure(self) -> None:
        """
        A Deferred returned by C{onMessage} that fails closes with 1011.
        """
        from twisted.internet.defer import fail

        class Async(RecordingServer):
            def onMessage(self, payload: bytes, isBinary: bool) -> Any:
                return fail(ValueError("boom"))

        factory = serverFactory(protocolClass=Async)
        protocol, transport = connectServer(factory)
        protocol.dataReceived(upgradeRequest())
        transport.clear()
        protocol.dataReceived(clientFrame(0x1, b"x"))
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1011)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_onCloseRaises(self) -> None:
        """
        An exception in C{onClose} is logged and goes no further.
        """

        class Broken(RecordingServer):
            def onClose(self, wasClean: bool, code: int, reason: str) -> None:
                raise RuntimeError("late")

        factory = serverFactory(protocolClass=Broken)
        protocol, _ = connectServer(factory)
        protocol.dataReceived(upgradeRequest())
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


@implementer(IPushProducer)
class FakeProducer:
    """
    Records pause and resume calls.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class FlowControlTests(SynchronousTestCase):
    """
    Back-pressure in both directions.
    """

    def test_registeredWithTransport(self) -> None:
        """
        An open connection registers a streaming producer with its
        transport.
        """
        _, transport, _ = openServer()
        self.assertIsNotNone(transport.producer)
        self.assertTrue(transport.streaming)

    def test_fullWriteBufferPausesReadingAndProducer(self) -> None:
        """
        When the transport's buffer fills, reading stops and the
        application's producer is paused; both resume when it drains.
        """
        protocol, transport, _ = openServer()
        producer = FakeProducer()
        protocol.registerProducer(producer, True)
        assert transport.producer is not None
        transport.producer.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        self.assertEqual(producer.calls, ["pause"])
        protocol.dataReceived(clientFrame(0x1, b"held"))
        self.assertEqual(protocol.messages(), [])
        transport.producer.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(producer.calls, ["pause", "resume"])
        self.assertEqual(protocol.messages(), [(b"held", False)])

    def test_applicationPause(self) -> None:
        """
        An application that pauses in C{onMessage} gets no further message
        from the same read until it resumes, and then gets them in order.
        """

        class Pausing(RecordingServer):
            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                super().onMessage(payload, isBinary)
                self.pauseProducing()

        factory = serverFactory(protocolClass=Pausing)
        protocol, transport = connectServer(factory)
        protocol.dataReceived(upgradeRequest())
        assert isinstance(protocol, Pausing)
        data = b"".join(clientFrame(0x1, str(i).encode()) for i in range(3))
        protocol.dataReceived(data[:-2])
        protocol.dataReceived(data[-2:])
        self.assertEqual(protocol.messages(), [(b"0", False)])
        self.assertEqual(transport.producerState, "paused")
        protocol.resumeProducing()
        self.assertEqual(protocol.messages(), [(b"0", False), (b"1", False)])
        protocol.resumeProducing()
        protocol.resumeProducing()
        self.assertEqual([m[0] for m in protocol.messages()], [b"0", b"1", b"2"])

    def test_writeBufferSizeApplied(self) -> None:
        """
        The transport's high-water mark (and that of a transport it wraps,
        as TLS wraps TCP) becomes the C{writeBufferSize} option, so that one
        large message does not pause reading.
        """

        class Inner:
            bufferSize = 65536

        class Wrapper(StringTransport):
            transport = Inner()
            bufferSize = 65536

        factory = serverFactory(writeBufferSize=300_000)
        protocol: Any = factory.buildProtocol(None)
        transport = Wrapper()  # type: ignore[no-untyped-call]
        protocol.makeConnection(transport)
        protocol.dataReceived(upgradeRequest())
        self.assertEqual((transport.bufferSize, transport.transport.bufferSize), (300_000, 300_000))

    def test_transportReleasedOnClose(self) -> None:
        """
        Once our Close frame is written the connection unregisters from the
        transport (a TLS transport's C{loseConnection} waits for that).
        """
        protocol, transport, _ = openServer()
        protocol.sendClose(1000)
        self.assertIsNone(transport.producer)

    def test_producerStoppedWhenConnectionLost(self) -> None:
        """
        As with Twisted's transports, a registered producer is stopped when
        the connection goes away.
        """
        protocol, _, _ = openServer()
        producer = FakeProducer()
        protocol.registerProducer(producer, True)
        protocol.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(producer.calls, ["stop"])

    def test_pullProducerRefused(self) -> None:
        """
        Only streaming producers can be registered.
        """
        protocol, _, _ = openServer()
        self.assertRaises(ValueError, protocol.registerProducer, FakeProducer(), False)

    def test_heldInputBounded(self) -> None:
        """
        A peer that keeps sending while reading is paused cannot make the
        connection hold input without bound.
        """
        protocol, transport, _ = openServer(maxPendingInput=1024)
        protocol.pauseProducing()
        for _ in range(400):
            protocol.dataReceived(clientFrame(0x2, b"x" * 1000))
            if transport.disconnecting:
                break
        self.assertTrue(transport.disconnecting)
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1008)


class SendingTests(SynchronousTestCase):
    """
    Outgoing frames: minimal lengths, fragmentation, masking direction.
    """

    def test_sizes(self) -> None:
        """
        Messages of every length class come out as one valid frame each.
        """
        protocol, transport, _ = openServer()
        for size in (0, 125, 126, 65535, 65536, 1 << 20):
            transport.clear()
            protocol.sendMessage(b"y" * size, isBinary=True)
            self.assertEqual(framesIn(transport.value()), [(True, 0x2, b"y" * size)])

    def test_fragmentSize(self) -> None:
        """
        C{fragmentSize} splits a message into continuation frames.
        """
        protocol, transport, _ = openServer()
        protocol.sendMessage(b"abcdefgh", fragmentSize=3)
        self.assertEqual(
            framesIn(transport.value()),
            [(False, 0x1, b"abc"), (False, 0x0, b"def"), (True, 0x0, b"gh")],
        )

    def test_streamedMessage(self) -> None:
        """
        C{beginMessage}, C{sendMessageFrame}, C{endMessage} send one
        fragmented message; other messages are refused meanwhile.
        """
        protocol, transport, _ = openServer()
        protocol.beginMessage(isBinary=True)
        protocol.sendMessageFrame(b"ab")
        self.assertRaises(ValueError, protocol.sendMessage, b"x")
        protocol.sendPing(b"p")
        protocol.sendMessageFrame(b"cd")
        protocol.endMessage()
        self.assertEqual(
            framesIn(transport.value()),
            [(False, 0x2, b"ab"), (True, 0x9, b"p"), (False, 0x0, b"cd"), (True, 0x0, b"")],
        )

    def test_payloadMustBeBytes(self) -> None:
        """
        A str payload is a TypeError (encode text first).
        """
        protocol, _, _ = openServer()
        self.assertRaises(TypeError, protocol.sendMessage, "text")

    def test_clientMasksWithInjectedKey(self) -> None:
        """
        Section 5.3: client frames are masked with a key from the factory's
        random source.
        """
        protocol, transport, _ = openClient()
        protocol.sendMessage(b"Hello")
        self.assertEqual(transport.value(), b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58")


class UntestedPathsTests(SynchronousTestCase):
    """
    Paths no other test takes: unsolicited pongs, the internal-error close,
    bytes-like payloads, local misuse (RFC 6455 sections 5.5.3 and 7.1.7).
    """

    def test_sendPong(self) -> None:
        """
        C{sendPong} writes an unsolicited pong; over 125 bytes is refused, and
        so is a connection that is not open.
        """
        protocol, transport, _ = openServer()
        protocol.sendPong(b"beat")
        protocol.sendPong()
        self.assertEqual(framesIn(transport.value()), [(True, 0xA, b"beat"), (True, 0xA, b"")])
        self.assertRaises(ValueError, protocol.sendPong, b"x" * 126)
        protocol.sendClose(1000)
        self.assertRaises(Disconnected, protocol.sendPong, b"late")

    def test_internalErrorCloses1011(self) -> None:
        """
        An exception inside the connection's own code escapes no further than
        C{dataReceived}: it is logged, reading stops, and the connection
        closes with 1011 without details.
        """
        protocol, transport, _ = openServer()

        def broken(opcode: int, payload: bytes) -> None:
            raise ZeroDivisionError("a bug")

        protocol._handleControl = broken  # type: ignore[method-assign]
        protocol.dataReceived(clientFrame(0x9, b"ping"))
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        frames = framesIn(transport.value())
        self.assertEqual(frames, [(True, 0x8, (1011).to_bytes(2, "big") + b"internal error")])
        self.assertEqual(states(protocol), (State.CLOSING, Ours.FAILED, Theirs.STOPPED))
        self.assertTrue(transport.disconnecting)
        protocol.dataReceived(clientFrame(0x1, b"ignored"))
        self.assertEqual(protocol.messages(), [])

    def test_internalErrorDuringHandshake(self) -> None:
        """
        An internal error while connecting stops reading, sends nothing.
        """
        protocol, transport = connectServer(serverFactory())

        def broken(data: bytes) -> None:
            raise ZeroDivisionError("a bug")

        protocol._handshakeData = broken  # type: ignore[method-assign]
        protocol.dataReceived(upgradeRequest())
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual(states(protocol), (State.CONNECTING, Ours.FAILED, Theirs.STOPPED))
        self.assertEqual(transport.value(), b"")

    def test_bytesLikePayloads(self) -> None:
        """
        C{bytearray} and C{memoryview} payloads are sent as their bytes, by
        every sending method; invalid text is refused in any of them.
        """
        protocol, transport, _ = openServer()
        protocol.sendMessage(bytearray(b"array"), isBinary=True)  # type: ignore[arg-type]
        protocol.sendMessage(memoryview(b"view"))  # type: ignore[arg-type]
        protocol.sendMessage(memoryview(b"fragments"), fragmentSize=4)  # type: ignore[arg-type]
        protocol.sendPing(bytearray(b"p"))  # type: ignore[arg-type]
        protocol.beginMessage()
        protocol.sendMessageFrame(memoryview(b"st"))  # type: ignore[arg-type]
        protocol.sendMessageFrame(bytearray(b"ream"))  # type: ignore[arg-type]
        protocol.endMessage()
        self.assertEqual(
            framesIn(transport.value()),
            [
                (True, 0x2, b"array"),
                (True, 0x1, b"view"),
                (False, 0x1, b"frag"),
                (False, 0x0, b"ment"),
                (True, 0x0, b"s"),
                (True, 0x9, b"p"),
                (False, 0x1, b"st"),
                (False, 0x0, b"ream"),
                (True, 0x0, b""),
            ],
        )
        self.assertRaises(ValueError, protocol.sendMessage, bytearray(b"\xff"))
        self.assertRaises(ValueError, protocol.sendMessage, memoryview(b"\xc0\xaf"))

    def test_misuse(self) -> None:
        """
        Local misuse raises at once and sends nothing.
        """
        protocol, transport, _ = openServer()
        self.assertRaises(ValueError, protocol.sendMessageFrame, b"x")
        self.assertRaises(ValueError, protocol.endMessage)
        self.assertRaises(TypeError, protocol.sendMessage, 5)
        protocol.beginMessage()
        self.assertRaises(ValueError, protocol.beginMessage)
        self.assertRaises(ValueError, protocol.sendMessage, b"other")
        prepared = protocol.factory.prepareMessage(b"p")
        self.assertRaises(ValueError, protocol.sendPreparedMessage, prepared)
        self.assertRaises(ValueError, protocol.sendMessageFrame, b"\xff")
        self.assertEqual(transport.value(), b"")
        truncated, _, _ = openServer()
        truncated.beginMessage()
        truncated.sendMessageFrame(b"\xe2\x82")
        self.assertRaises(ValueError, truncated.endMessage)
        self.assertRaises(ValueError, protocol.sendClose, 1005)
        self.assertRaises(ValueError, protocol.sendClose, None, "reason without a code")

    def test_notOpen(self) -> None:
        """
        Before the handshake, sending raises L{Disconnected}; sendClose while
        connecting drops the connection.
        """
        protocol, transport = connectServer(serverFactory())
        for send in (
            lambda: protocol.sendMessage(b"x"),
            lambda: protocol.sendPing(),
            lambda: protocol.beginMessage(),
        ):
            self.assertRaises(Disconnected, send)
        protocol.sendClose(1000)
        self.assertTrue(transport.disconnecting)

    def test_stopProducing(self) -> None:
        """
        C{stopProducing} closes an open connection with 1001, and drops one
        still in its handshake.
        """
        protocol, transport, _ = openServer()
        protocol.stopProducing()
        self.assertEqual(closeCodeOf(framesIn(transport.value())), 1001)
        connecting, connectingTransport = connectServer(serverFactory())
        connecting.stopProducing()
        self.assertTrue(connectingTransport.disconnecting)

    def test_noImportCycle(self) -> None:
        """
        The protocol module imports neither the factory nor the server
        module: it sees its factory as a L{txws._hosting.ConnectionHost}.
        """
        import ast
        import inspect

        import txws.protocol

        tree = ast.parse(inspect.getsource(txws.protocol))
        imported = {
            node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        self.assertNotIn("txws.factory", imported)
        self.assertNotIn("txws.server", imported)


class ClientFramingTests(SynchronousTestCase):
    """
    The client's side of sections 5 and 7.
    """

    def test_maskedServerFrame(self) -> None:
        """
        Section 5.1: a client fails a connection whose server masks frames.
        """
        protocol, transport, _ = openClient()
        protocol.dataReceived(clientFrame(0x1, b"masked"))
        self.assertEqual(protocol.messages(), [])
        [(_fin, _opcode, payload)] = framesIn(transport.value(), masked=True)
        self.assertEqual(parseClosePayload(payload)[0], 1002)

    def test_receivesUnmasked(self) -> None:
        """
        Unmasked server frames are delivered, split anywhere.
        """
        data = serverFrame(0x1, b"Hel", fin=False) + serverFrame(0x0, b"lo")
        for chunks in splits(data):
            protocol, _, _ = openClient()
            for chunk in chunks:
                protocol.dataReceived(chunk)
            self.assertEqual(protocol.messages(), [(b"Hello", False)])

    def test_clientWaitsForServerToClose(self) -> None:
        """
        After the closing handshake the client leaves closing TCP to the
        server, and aborts only after the close timeout.
        """
        protocol, transport, clock = openClient(closeHandshakeTimeout=3)
        protocol.sendClose(1000)
        protocol.dataReceived(serverFrame(0x8, b"\x03\xe8"))
        self.assertFalse(transport.disconnecting)
        clock.advance(3)
        self.assertTrue(transport.disconnecting or transport.disconnected)

    def test_serverInitiatedCloseEchoed(self) -> None:
        """
        The client echoes a server's Close, masked, and reports it clean.
        """
        protocol, transport, _ = openClient()
        protocol.dataReceived(serverFrame(0x8, b"\x03\xe9going"))
        self.assertEqual(framesIn(transport.value(), masked=True), [(True, 0x8, b"\x03\xe9")])
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(protocol.closes(), [(True, 1001, "going")])


class CloseAllTests(SynchronousTestCase):
    """
    The factory's C{closeAll}.
    """

    def test_closeAll(self) -> None:
        """
        Every open connection gets a 1001 Close; the Deferred fires when all
        are gone, and only then.
        """
        clock = Clock()
        factory = serverFactory(clock)
        connections = []
        for port in (1, 2):
            protocol, transport = connectServer(factory, port)
            protocol.dataReceived(upgradeRequest())
            transport.clear()
            connections.append((protocol, transport))
        pendingProtocol, pendingTransport = connectServer(factory, 3)
        d = factory.closeAll()
        self.assertNoResult(d)
        for protocol, transport in connections:
            self.assertEqual(closeCodeOf(framesIn(transport.value())), 1001)
            protocol.dataReceived(closeFrame(1001))
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertNoResult(d)
        self.assertTrue(pendingTransport.disconnecting or pendingTransport.disconnected)
        pendingProtocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(factory.connectionCount, 0)

    def test_closeAllEmpty(self) -> None:
        """
        With no connections the Deferred has already fired.
        """
        self.assertIsNone(self.successResultOf(serverFactory().closeAll()))
