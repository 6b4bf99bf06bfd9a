"""
Tests for L{txws.frames}: the RFC 6455 wire format (section 5 framing,
section 7.4 close codes), organised by RFC section.

The receive path calls L{parseFrames} once per chunk.  L{_Receiver} below
emulates that caller: it keeps the bytes after C{consumed} and prefixes them
to the next chunk, and when a C{pending} header is returned it collects the
announced payload itself, unmasks it once, and resumes parsing after it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
from collections.abc import Sequence
from typing import Optional, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.typedtrial import SynchronousTestCase
from txws._mask import mask
from txws.frames import (
    CloseCode,
    FrameError,
    Opcode,
    ParsedFrame,
    PendingFrame,
    buildClosePayload,
    frameHeader,
    isControl,
    isSendableCloseCode,
    isValidReceivedCloseCode,
    parseClosePayload,
    parseFrames,
    serializeFrame,
)

_E = TypeVar("_E", bound=BaseException)

#: Trial's test case (mypy is told trial's untyped assertions are fine in
#: pyproject.toml).
TestCase = SynchronousTestCase


def _brief(value: object) -> object:
    """
    Replace every byte string longer than 64 bytes inside C{value} (through
    tuples and lists) by a short digest of its type, length and content.

    @param value: a value to compare.
    @return: an equivalent value, equal to another's exactly when the
        originals are equal, but with a small repr.
    """
    if isinstance(value, (bytes, bytearray)) and len(value) > 64:
        digest = hashlib.sha256(value).hexdigest()[:16]
        return f"<{type(value).__name__} of {len(value)} bytes, sha256 {digest}...>"
    if isinstance(value, tuple):
        return tuple(_brief(item) for item in value)
    if isinstance(value, list):
        return [_brief(item) for item in value]
    return value


class FramesTestCase(TestCase):
    """
    A test case whose L{assertEqual} compares large payloads by digest.

    unittest renders a failed comparison of lists or tuples as a C{difflib}
    diff of their reprs, which for a 64 KiB payload takes minutes (and under
    hypothesis' shrinking, hours); comparing L{_brief} forms keeps a failure
    as fast to report as a success.
    """

    def assertEqual(self, first: object, second: object, msg: object = None) -> None:
        """
        Assert C{first == second}, reporting large payloads by digest.

        @param first: the actual value.
        @param second: the expected value.
        @param msg: a message for the failure.
        """
        SynchronousTestCase.assertEqual(self, _brief(first), _brief(second), msg)


ParseResult = tuple[list[ParsedFrame], int, Optional[PendingFrame], Optional[FrameError]]

# RFC 6455 section 5.7, "Examples".
RFC_KEY = bytes.fromhex("37fa213d")
RFC_UNMASKED_HELLO = bytes.fromhex("810548656c6c6f")
RFC_MASKED_HELLO = bytes.fromhex("818537fa213d7f9f4d5158")
RFC_FRAGMENT_HEL = bytes.fromhex("010348656c")
RFC_FRAGMENT_LO = bytes.fromhex("80026c6f")
RFC_UNMASKED_PING = bytes.fromhex("890548656c6c6f")
RFC_MASKED_PONG = bytes.fromhex("8a8537fa213d7f9f4d5158")
PAYLOAD_256 = bytes(range(256))
PAYLOAD_64K = bytes(range(256)) * 256
RFC_BINARY_256 = bytes.fromhex("827e0100") + PAYLOAD_256
RFC_BINARY_64K = bytes.fromhex("827f0000000000010000") + PAYLOAD_64K

#: C{(name, wire bytes, requireMask, expected frames)} for every section 5.7
#: example, plus masked variants of the two long binary frames.
VECTORS: list[tuple[str, bytes, bool, list[ParsedFrame]]] = [
    ("unmasked text", RFC_UNMASKED_HELLO, False, [(True, Opcode.TEXT, b"Hello")]),
    ("masked text", RFC_MASKED_HELLO, True, [(True, Opcode.TEXT, b"Hello")]),
    (
        "fragmented text",
        RFC_FRAGMENT_HEL + RFC_FRAGMENT_LO,
        False,
        [(False, Opcode.TEXT, b"Hel"), (True, Opcode.CONTINUATION, b"lo")],
    ),
    ("unmasked ping", RFC_UNMASKED_PING, False, [(True, Opcode.PING, b"Hello")]),
    ("masked pong", RFC_MASKED_PONG, True, [(True, Opcode.PONG, b"Hello")]),
    ("256-byte binary", RFC_BINARY_256, False, [(True, Opcode.BINARY, PAYLOAD_256)]),
    ("64 KiB binary", RFC_BINARY_64K, False, [(True, Opcode.BINARY, PAYLOAD_64K)]),
    (
        "masked 256-byte binary",
        bytes.fromhex("82fe0100") + RFC_KEY + mask(PAYLOAD_256, RFC_KEY),
        True,
        [(True, Opcode.BINARY, PAYLOAD_256)],
    ),
    (
        "masked 64 KiB binary",
        bytes.fromhex("82ff0000000000010000") + RFC_KEY + mask(PAYLOAD_64K, RFC_KEY),
        True,
        [(True, Opcode.BINARY, PAYLOAD_64K)],
    ),
]


class _Receiver:
    """
    The caller of L{parseFrames}, as the connection implements it.

    @ivar frames: the complete frames received so far.
    @ivar error: the violation that stopped parsing, if any.
    @ivar pendings: every C{pending} header L{parseFrames} returned.
    """

    def __init__(self, requireMask: bool, maxFramePayload: int = 0) -> None:
        self.requireMask = requireMask
        self.maxFramePayload = maxFramePayload
        self.frames: list[ParsedFrame] = []
        self.error: Optional[FrameError] = None
        self.pendings: list[PendingFrame] = []
        self._buffer = b""
        self._pending: Optional[PendingFrame] = None
        self._collected: list[bytes] = []
        self._have = 0

    def feed(self, chunk: bytes) -> None:
        """
        Receive one chunk of the stream.

        @param chunk: the bytes.
        """
        if self.error is not None:
            return
        self._buffer += chunk
        while True:
            if self._pending is not None:
                fin, opcode, key, length = self._pending
                piece = self._buffer[: length - self._have]
                self._collected.append(piece)
                self._have += len(piece)
                self._buffer = self._buffer[len(piece) :]
                if self._have < length:
                    return
                payload = b"".join(self._collected)
                if key is not None:
                    payload = mask(payload, key)
                self.frames.append((fin, opcode, payload))
                self._pending = None
                self._collected = []
                self._have = 0
            frames, consumed, pending, error = parseFrames(
                self._buffer, self.requireMask, self.maxFramePayload
            )
            self.frames.extend(frames)
            self._buffer = self._buffer[consumed:]
            if error is not None:
                self.error = error
                return
            if pending is None:
                return
            # A pending frame has a header (at least 2 bytes) and a payload
            # not yet complete; anything else would make this loop spin.
            if consumed < 2 or pending[3] <= 0:
                raise AssertionError(f"impossible pending {pending!r} after {consumed} bytes")
            self.pendings.append(pending)
            self._pending = pending

    @property
    def idle(self) -> bool:
        """
        Whether the stream ended exactly at a frame boundary.
        """
        return not self._buffer and self._pending is None


def _receive(chunks: Sequence[bytes], requireMask: bool, maxFramePayload: int = 0) -> _Receiver:
    """
    Feed C{chunks} to a fresh L{_Receiver}.

    @param chunks: the stream, in pieces.
    @param requireMask: as for L{parseFrames}.
    @param maxFramePayload: as for L{parseFrames}.
    @return: the receiver.
    """
    receiver = _Receiver(requireMask, maxFramePayload)
    for chunk in chunks:
        receiver.feed(chunk)
    return receiver


def _splitOffsets(length: int) -> list[int]:
    """
    Offsets at which to split a stream of C{length} bytes: every offset for
    short streams; for long ones every offset in the first and last 40
    bytes and every 997th in between (splitting a 64 KiB frame at each of
    its 65,546 offsets copies gigabytes for no extra coverage).

    @param length: the stream's length.
    @return: sorted offsets from 0 to C{length} inclusive.
    """
    if length <= 1024:
        return list(range(length + 1))
    return sorted({*range(40), *range(0, length, 997), *range(length - 40, length + 1)})


def _maskedHeaderLength(length: int, masked: bool) -> int:
    """
    @param length: a payload length.
    @param masked: whether a masking key follows.
    @return: the size of the minimal header for that payload.
    """
    size = 2 if length < 126 else 4 if length < 0x10000 else 10
    return size + (4 if masked else 0)


class OpcodeTests(FramesTestCase):
    """
    Opcodes (RFC 6455 section 5.2; control frames section 5.5).
    """

    def test_values(self) -> None:
        """
        The opcodes have the values the RFC assigns.
        """
        self.assertEqual(
            {op.name: int(op) for op in Opcode},
            {
                "CONTINUATION": 0x0,
                "TEXT": 0x1,
                "BINARY": 0x2,
                "CLOSE": 0x8,
                "PING": 0x9,
                "PONG": 0xA,
            },
        )

    def test_isControl(self) -> None:
        """
        Close, ping and pong are control opcodes; data opcodes are not.
        """
        self.assertEqual(
            [op for op in Opcode if isControl(op)], [Opcode.CLOSE, Opcode.PING, Opcode.PONG]
        )

    def test_parsedOpcodeIsComparable(self) -> None:
        """
        A parsed frame's opcode compares equal to the L{Opcode} member.
        """
        frames = parseFrames(RFC_UNMASKED_PING, False)[0]
        self.assertEqual(frames[0][1], Opcode.PING)


class CloseCodeTests(FramesTestCase):
    """
    Close status codes (RFC 6455 section 7.4.1).
    """

    def test_values(self) -> None:
        """
        The named codes have the values of section 7.4.1 and the IANA registry.
        """
        self.assertEqual(
            {code.name: int(code) for code in CloseCode},
            {
                "NORMAL": 1000,
                "GOING_AWAY": 1001,
                "PROTOCOL_ERROR": 1002,
                "UNSUPPORTED_DATA": 1003,
                "NO_STATUS_RECEIVED": 1005,
                "ABNORMAL_CLOSURE": 1006,
                "INVALID_PAYLOAD": 1007,
                "POLICY_VIOLATION": 1008,
                "MESSAGE_TOO_BIG": 1009,
                "MANDATORY_EXTENSION": 1010,
                "INTERNAL_ERROR": 1011,
                "SERVICE_RESTART": 1012,
                "TRY_AGAIN_LATER": 1013,
                "BAD_GATEWAY": 1014,
                "TLS_HANDSHAKE": 1015,
            },
        )


class FrameErrorTests(FramesTestCase):
    """
    L{FrameError}, the one way a peer's violation is reported (RFC 6455
    section 7.1.7, "Fail the WebSocket Connection").
    """

    def test_attributes(self) -> None:
        """
        The close code and reason are exposed as attributes.
        """
        error = FrameError(1002, "bad")
        self.assertEqual((error.code, error.reason), (1002, "bad"))
        self.assertIsInstance(error, Exception)

    def test_repr(self) -> None:
        """
        The repr shows the code and reason.
        """
        self.assertEqual(repr(FrameError(1009, "too big")), "FrameError(1009, 'too big')")


class ExampleVectorTests(FramesTestCase):
    """
    The examples of RFC 6455 section 5.7, received whole, byte by byte and
    split at every offset (TCP is a stream: section 5.2's framing does not
    align with C{recv} boundaries).
    """

    def test_wholeFrames(self) -> None:
        """
        Each example parses in one call into exactly its frames.
        """
        for name, wire, requireMask, expected in VECTORS:
            self.assertEqual(
                parseFrames(wire, requireMask), (expected, len(wire), None, None), name
            )

    def test_byteByByte(self) -> None:
        """
        Each example fed one byte at a time yields the same frames.
        """
        for name, wire, requireMask, expected in VECTORS:
            receiver = _receive([wire[i : i + 1] for i in range(len(wire))], requireMask)
            self.assertEqual(receiver.frames, expected, name)
            self.assertIsNone(receiver.error, name)
            self.assertTrue(receiver.idle, name)

    def test_splitAtEveryOffset(self) -> None:
        """
        Each example split in two at any offset yields the same frames.
        """
        for name, wire, requireMask, expected in VECTORS:
            for offset in _splitOffsets(len(wire)):
                receiver = _receive([wire[:offset], wire[offset:]], requireMask)
                self.assertEqual(receiver.frames, expected, f"{name} split at {offset}")
                self.assertIsNone(receiver.error)
                self.assertTrue(receiver.idle)

    def test_prefixInvariant(self) -> None:
        """
        Parsing any prefix returns a prefix of the frames, and the rest of
        the stream from C{consumed} (after the C{pending} payload, if any)
        yields exactly the remaining frames; C{pending} describes the next
        frame's header truthfully.
        """
        for name, wire, requireMask, expected in VECTORS:
            for offset in _splitOffsets(len(wire)):
                where = f"{name} split at {offset}"
                frames, consumed, pending, error = parseFrames(wire[:offset], requireMask)
                self.assertIsNone(error, where)
                self.assertTrue(0 <= consumed <= offset, where)
                self.assertEqual(frames, expected[: len(frames)], where)
                rest = wire[consumed:]
                if pending is not None:
                    fin, opcode, key, length = pending
                    self.assertTrue(consumed + length > offset, where)
                    nextFin, nextOpcode, nextPayload = expected[len(frames)]
                    self.assertEqual((fin, opcode, length), (nextFin, nextOpcode, len(nextPayload)))
                    self.assertEqual(key, RFC_KEY if requireMask else None, where)
                    payload = rest[:length] if key is None else mask(rest[:length], key)
                    self.assertEqual(payload, nextPayload, where)
                    frames = [*frames, (fin, opcode, payload)]
                    rest = rest[length:]
                else:
                    self.assertTrue(offset - consumed < 14, where)
                remaining = parseFrames(rest, requireMask)
                self.assertEqual(frames + remaining[0], expected, where)
                self.assertEqual(remaining[1:], (len(rest), None, None), where)

    def test_allVectorsInOneBuffer(self) -> None:
        """
        Frames of the same direction back to back in one buffer all parse.
        """
        for requireMask in (False, True):
            vectors = [v for v in VECTORS if v[2] is requireMask]
            wire = b"".join(v[1] for v in vectors)
            expected = [frame for v in vectors for frame in v[3]]
            self.assertEqual(parseFrames(wire, requireMask), (expected, len(wire), None, None))

    def test_pendingUnmaskedHeader(self) -> None:
        """
        With only the header of the 256-byte example, C{pending} announces
        C{(fin, opcode, None, 256)} and C{consumed} covers the header.
        """
        self.assertEqual(
            parseFrames(RFC_BINARY_256[:4], False), ([], 4, (True, Opcode.BINARY, None, 256), None)
        )

    def test_pendingMaskedHeader(self) -> None:
        """
        A masked header's C{pending} carries the masking key.
        """
        wire = RFC_MASKED_HELLO[:7]
        self.assertEqual(parseFrames(wire, True), ([], 6, (True, Opcode.TEXT, RFC_KEY, 5), None))

    def test_pending64BitHeader(self) -> None:
        """
        The 64 KiB example's header announces its 64-bit length.
        """
        self.assertEqual(
            parseFrames(RFC_BINARY_64K[:100], False),
            ([], 10, (True, Opcode.BINARY, None, 65536), None),
        )

    def test_pendingNotFinal(self) -> None:
        """
        C{pending} reports a clear FIN bit as C{False}.
        """
        wire = frameHeader(Opcode.TEXT, 300, fin=False)
        self.assertEqual(parseFrames(wire, False), ([], 4, (False, Opcode.TEXT, None, 300), None))

    def test_framesBeforePending(self) -> None:
        """
        Complete frames before an incomplete one are returned with it.
        """
        wire = RFC_UNMASKED_PING + RFC_BINARY_256[:10]
        self.assertEqual(
            parseFrames(wire, False),
            ([(True, Opcode.PING, b"Hello")], 11, (True, Opcode.BINARY, None, 256), None),
        )

    def test_incompleteHeaders(self) -> None:
        """
        An incomplete header returns nothing and consumes nothing, whether
        it stops in the first two bytes, the extended length or the key.
        """
        masked64 = bytes.fromhex("82ff0000000000010000") + RFC_KEY
        for wire, requireMask in [
            (b"", False),
            (b"\x81", False),
            (RFC_BINARY_256[:3], False),
            (RFC_BINARY_64K[:9], False),
            (RFC_MASKED_HELLO[:5], True),
            (masked64[:13], True),
        ]:
            self.assertEqual(parseFrames(wire, requireMask), ([], 0, None, None), repr(wire))

    def test_emptyPayloads(self) -> None:
        """
        Zero-length frames, masked or not, parse completely.
        """
        self.assertEqual(parseFrames(b"\x89\x00", False), ([(True, 9, b"")], 2, None, None))
        self.assertEqual(
            parseFrames(b"\x81\x80" + RFC_KEY, True), ([(True, 1, b"")], 6, None, None)
        )


class PayloadLengthTests(FramesTestCase):
    """
    The payload length field and its minimal encoding (RFC 6455 section
    5.2: "the minimal number of bytes MUST be used to encode the length").
    """

    def test_serializedHeaders(self) -> None:
        """
        Lengths up to 125 use 7 bits, 126 to 65535 the 16-bit form (127
        included, unlike the seed article's sender), larger the 64-bit form.
        """
        for length, header in [
            (0, "8200"),
            (1, "8201"),
            (125, "827d"),
            (126, "827e007e"),
            (127, "827e007f"),
            (65535, "827effff"),
            (65536, "827f0000000000010000"),
            (2**20, "827f0000000000100000"),
            (2**32 + 5, "827f0000000100000005"),
        ]:
            self.assertEqual(frameHeader(Opcode.BINARY, length).hex(), header, str(length))

    def test_serializedFrames(self) -> None:
        """
        L{serializeFrame} writes the same minimal header before the payload.
        """
        for length in (0, 125, 126, 127, 65535, 65536, 2**20):
            payload = b"x" * length
            wire = serializeFrame(Opcode.BINARY, payload)
            self.assertEqual(wire, frameHeader(Opcode.BINARY, length) + payload)
            self.assertEqual(len(wire) - length, _maskedHeaderLength(length, False))

    def test_maskedHeaders(self) -> None:
        """
        A masking key sets the MASK bit and follows the extended length.
        """
        key = b"\x01\x02\x03\x04"
        self.assertEqual(frameHeader(Opcode.TEXT, 5, maskKey=key).hex(), "818501020304")
        self.assertEqual(frameHeader(Opcode.TEXT, 300, maskKey=key).hex(), "81fe012c01020304")
        self.assertEqual(
            frameHeader(Opcode.TEXT, 65536, maskKey=key).hex(), "81ff000000000001000001020304"
        )

    def test_finAndRsvBits(self) -> None:
        """
        A clear FIN and the given RSV bits land in the first byte.
        """
        self.assertEqual(frameHeader(Opcode.TEXT, 0, fin=False).hex(), "0100")
        self.assertEqual(frameHeader(Opcode.CONTINUATION, 0, fin=True).hex(), "8000")
        self.assertEqual(frameHeader(Opcode.TEXT, 0, rsv=0x40).hex(), "c100")

    def test_boundaryLengthsRoundTrip(self) -> None:
        """
        Frames at each length boundary parse back to their payloads.
        """
        for length in (0, 125, 126, 127, 65535, 65536, 2**20):
            payload = os.urandom(length)
            for key in (None, b"\xaa\x00\xff\x11"):
                wire = serializeFrame(Opcode.BINARY, payload, maskKey=key)
                self.assertEqual(
                    parseFrames(wire, key is not None),
                    ([(True, Opcode.BINARY, payload)], len(wire), None, None),
                )

    def test_nonMinimal16Bit(self) -> None:
        """
        A 16-bit length below 126 is a protocol error (1002).
        """
        for length in (0, 5, 125):
            wire = struct.pack("!BBH", 0x82, 126, length) + b"x" * length
            frames, consumed, pending, error = parseFrames(wire, False)
            self.assertEqual((frames, consumed, pending), ([], 0, None))
            assert error is not None
            self.assertEqual(error.code, 1002)

    def test_nonMinimal64Bit(self) -> None:
        """
        A 64-bit length below 65536 is a protocol error (1002), even one
        above 125.
        """
        for length in (0, 125, 126, 65535):
            wire = struct.pack("!BBQ", 0x82, 127, length)
            frames, consumed, pending, error = parseFrames(wire, False)
            self.assertEqual((frames, consumed, pending), ([], 0, None))
            assert error is not None
            self.assertEqual(error.code, 1002)

    def test_nonMinimalMasked(self) -> None:
        """
        Non-minimal lengths are refused on masked frames too.
        """
        for wire in (
            struct.pack("!BBH", 0x82, 0xFE, 5) + RFC_KEY + b"x" * 5,
            struct.pack("!BBQ", 0x82, 0xFF, 300) + RFC_KEY,
        ):
            error = parseFrames(wire, True)[3]
            assert error is not None
            self.assertEqual(error.code, 1002)

    def test_64BitTopBitSet(self) -> None:
        """
        A 64-bit length with its most significant bit set is a protocol
        error (1002), with or without a frame size limit.
        """
        for length in (2**63, 2**64 - 1):
            for limit in (0, 1000):
                wire = struct.pack("!BBQ", 0x82, 127, length)
                frames, consumed, pending, error = parseFrames(wire, False, limit)
                self.assertEqual((frames, consumed, pending), ([], 0, None))
                assert error is not None
                self.assertEqual(error.code, 1002)

    def test_largest63BitLengthIsPending(self) -> None:
        """
        Without a limit, the largest legal 64-bit length is announced as
        pending, not refused.
        """
        wire = struct.pack("!BBQ", 0x82, 127, 2**63 - 1)
        self.assertEqual(parseFrames(wire, False), ([], 10, (True, 2, None, 2**63 - 1), None))


class MaskingTests(FramesTestCase):
    """
    Client-to-server masking (RFC 6455 sections 5.1 and 5.3).
    """

    def test_unmasksWithGivenKeys(self) -> None:
        """
        A masked payload is unmasked with the key in its header, for keys
        that exercise each byte position.
        """
        payload = b"The quick brown fox jumps over the lazy dog"
        for key in (
            b"\x00\x00\x00\x00",
            b"\xff\xff\xff\xff",
            b"\x01\x02\x03\x04",
            RFC_KEY,
            b"\x80\x00\x00\x01",
        ):
            wire = frameHeader(Opcode.TEXT, len(payload), maskKey=key) + bytes(
                b ^ key[i % 4] for i, b in enumerate(payload)
            )
            self.assertEqual(parseFrames(wire, True)[0], [(True, Opcode.TEXT, payload)])

    def test_rfcMaskedBytes(self) -> None:
        """
        Serializing "Hello" with the RFC's key gives the section 5.7 bytes.
        """
        self.assertEqual(serializeFrame(Opcode.TEXT, b"Hello", maskKey=RFC_KEY), RFC_MASKED_HELLO)
        self.assertEqual(serializeFrame(Opcode.PONG, b"Hello", maskKey=RFC_KEY), RFC_MASKED_PONG)

    def test_serverFramesUnmasked(self) -> None:
        """
        Without a key the payload goes out as is (sections 5.7 examples).
        """
        self.assertEqual(serializeFrame(Opcode.TEXT, b"Hello"), RFC_UNMASKED_HELLO)
        self.assertEqual(serializeFrame(Opcode.PING, b"Hello"), RFC_UNMASKED_PING)
        self.assertEqual(serializeFrame(Opcode.TEXT, b"Hel", fin=False), RFC_FRAGMENT_HEL)
        self.assertEqual(serializeFrame(Opcode.CONTINUATION, b"lo"), RFC_FRAGMENT_LO)
        self.assertEqual(serializeFrame(Opcode.BINARY, PAYLOAD_256), RFC_BINARY_256)
        self.assertEqual(serializeFrame(Opcode.BINARY, PAYLOAD_64K), RFC_BINARY_64K)

    def test_eachFrameItsOwnKey(self) -> None:
        """
        Consecutive masked frames are unmasked each with its own key.
        """
        wire = serializeFrame(Opcode.TEXT, b"abcde", maskKey=b"\x01\x02\x03\x04") + serializeFrame(
            Opcode.BINARY, b"fghij", maskKey=b"\x50\x60\x70\x80"
        )
        self.assertEqual(
            parseFrames(wire, True)[0], [(True, Opcode.TEXT, b"abcde"), (True, 2, b"fghij")]
        )

    def test_unmaskedClientFrame(self) -> None:
        """
        A server (C{requireMask=True}) refuses an unmasked frame with 1002.
        """
        for wire in (RFC_UNMASKED_HELLO, RFC_UNMASKED_PING, RFC_BINARY_256[:4]):
            frames, consumed, pending, error = parseFrames(wire, True)
            self.assertEqual((frames, consumed, pending), ([], 0, None))
            assert error is not None
            self.assertEqual(error.code, 1002)

    def test_maskedServerFrame(self) -> None:
        """
        A client (C{requireMask=False}) refuses a masked frame with 1002.
        """
        for wire in (RFC_MASKED_HELLO, RFC_MASKED_PONG, RFC_MASKED_HELLO[:2]):
            frames, consumed, pending, error = parseFrames(wire, False)
            self.assertEqual((frames, consumed, pending), ([], 0, None))
            assert error is not None
            self.assertEqual(error.code, 1002)


class BaseFramingRuleTests(FramesTestCase):
    """
    Stateless rules of the base framing protocol (RFC 6455 section 5.2):
    RSV bits and reserved opcodes.
    """

    def _assertProtocolError(self, wire: bytes, requireMask: bool = False, **kw: int) -> None:
        """
        Assert that C{wire} is refused with 1002 at offset 0.

        @param wire: the bytes.
        @param requireMask: as for L{parseFrames}.
        @param kw: more arguments for L{parseFrames}.
        """
        frames, consumed, pending, error = parseFrames(wire, requireMask, **kw)
        self.assertEqual((frames, consumed, pending), ([], 0, None), wire.hex())
        self.assertIsInstance(error, FrameError)
        assert error is not None
        self.assertEqual(error.code, 1002, wire.hex())

    def test_rsvBitsWithoutExtension(self) -> None:
        """
        Any RSV bit set without a negotiated extension is a protocol error.
        """
        for rsv in (0x10, 0x20, 0x40, 0x70):
            self._assertProtocolError(bytes((0x81 | rsv, 0x00)))
            self._assertProtocolError(bytes((0x81 | rsv, 0x80)) + RFC_KEY, True)

    def test_rsvBitsAllowedByExtension(self) -> None:
        """
        RSV bits an extension allows are accepted on data frames (RSV1
        reported as C{0x40} added to the opcode); others are still refused.
        """
        self.assertEqual(
            parseFrames(b"\xc1\x01x", False, allowedRsv=0x40),
            ([(True, 0x41, b"x")], 3, None, None),
        )
        self.assertEqual(
            parseFrames(b"\x40\x01x\x80\x00", False, allowedRsv=0x40),
            ([(False, 0x40, b"x"), (True, 0x0, b"")], 5, None, None),
        )
        self.assertEqual(
            parseFrames(b"\xc2\x7e\x01\x00", False, allowedRsv=0x40),
            ([], 4, (True, 0x42, None, 256), None),
        )
        self._assertProtocolError(b"\xa1\x01x", allowedRsv=0x40)

    def test_rsvBitsOnControlFrame(self) -> None:
        """
        Control frames may not carry RSV bits even when an extension allows
        them on data frames.
        """
        self._assertProtocolError(b"\xc9\x00", allowedRsv=0x40)

    def test_reservedOpcodes(self) -> None:
        """
        Opcodes 3-7 and 0xB-0xF are refused with 1002.
        """
        for opcode in (*range(0x3, 0x8), *range(0xB, 0x10)):
            self._assertProtocolError(bytes((0x80 | opcode, 0x00)))
            self._assertProtocolError(bytes((opcode, 0x00)))
            self._assertProtocolError(bytes((0x80 | opcode, 0x80)) + RFC_KEY, True)

    def test_reservedOpcodeHeaderOnly(self) -> None:
        """
        A reserved opcode is refused from the first two bytes alone.
        """
        self._assertProtocolError(b"\x83\x7e")

    def test_framesBeforeViolationReturned(self) -> None:
        """
        Frames preceding a violation in the same buffer are returned, and
        C{consumed} points at the first byte of the bad frame.
        """
        good = RFC_FRAGMENT_HEL + RFC_UNMASKED_PING
        for bad in (b"\x83\x00", b"\xc1\x00", RFC_MASKED_HELLO, b"\x09\x00", b"\x82\x7e\x00\x05"):
            frames, consumed, pending, error = parseFrames(good + bad + RFC_FRAGMENT_LO, False)
            self.assertEqual(
                frames, [(False, Opcode.TEXT, b"Hel"), (True, Opcode.PING, b"Hello")], bad.hex()
            )
            self.assertEqual(consumed, len(good))
            self.assertIsNone(pending)
            assert error is not None
            self.assertEqual(error.code, 1002)


class ControlFrameTests(FramesTestCase):
    """
    Control frames (RFC 6455 section 5.5): at most 125 bytes of payload and
    never fragmented.
    """

    def test_maximumPayload(self) -> None:
        """
        A control frame with exactly 125 bytes of payload is accepted.
        """
        for opcode in (Opcode.CLOSE, Opcode.PING, Opcode.PONG):
            wire = serializeFrame(opcode, b"\x03\xe8" + b"a" * 123)
            self.assertEqual(parseFrames(wire, False)[0], [(True, opcode, wire[2:])])

    def test_payloadOver125(self) -> None:
        """
        A control frame announcing 126 or more bytes is refused with 1002,
        from its header alone.
        """
        for opcode in (Opcode.CLOSE, Opcode.PING, Opcode.PONG):
            for wire in (
                frameHeader(opcode, 126),
                frameHeader(opcode, 126) + b"x" * 126,
                frameHeader(opcode, 65536),
                bytes((0x80 | opcode, 0x7E)),
            ):
                frames, consumed, pending, error = parseFrames(wire, False)
                self.assertEqual((frames, consumed, pending), ([], 0, None))
                assert error is not None
                self.assertEqual(error.code, 1002)

    def test_notFinal(self) -> None:
        """
        A control frame without FIN is refused with 1002.
        """
        for opcode in (Opcode.CLOSE, Opcode.PING, Opcode.PONG):
            for wire, requireMask in (
                (bytes((opcode, 0x00)), False),
                (bytes((opcode, 0x80)) + RFC_KEY, True),
            ):
                frames, consumed, pending, error = parseFrames(wire, requireMask)
                self.assertEqual((frames, consumed, pending), ([], 0, None))
                assert error is not None
                self.assertEqual(error.code, 1002)

    def test_interleavedBetweenFragments(self) -> None:
        """
        A control frame between two fragments of a message parses (section
        5.4: control frames MAY be injected in the middle of a message).
        """
        wire = RFC_FRAGMENT_HEL + RFC_UNMASKED_PING + RFC_FRAGMENT_LO
        self.assertEqual(
            parseFrames(wire, False)[0],
            [(False, 1, b"Hel"), (True, 9, b"Hello"), (True, 0, b"lo")],
        )


class FrameSizeLimitTests(FramesTestCase):
    """
    The frame size limit (RFC 6455 section 10.4: implementations SHOULD
    impose a limit on frame sizes), reported as 1009 (section 7.4.1).
    """

    def _assertTooBig(self, wire: bytes, requireMask: bool, limit: int, consumed: int = 0) -> None:
        """
        Assert that C{wire} is refused with 1009 at C{consumed}.

        @param wire: the bytes.
        @param requireMask: as for L{parseFrames}.
        @param limit: C{maxFramePayload}.
        @param consumed: where the refused frame starts.
        """
        result = parseFrames(wire, requireMask, limit)
        self.assertEqual(result[1:3], (consumed, None))
        error = result[3]
        assert error is not None
        self.assertEqual(error.code, 1009)

    def test_refusedFromHeaderAlone(self) -> None:
        """
        An oversized frame is refused as soon as its header arrives, before
        any of its payload.
        """
        self._assertTooBig(frameHeader(Opcode.BINARY, 1000), False, 999)
        self._assertTooBig(frameHeader(Opcode.BINARY, 1000, maskKey=RFC_KEY), True, 999)
        self._assertTooBig(frameHeader(Opcode.BINARY, 2**40), False, 2**20)
        self._assertTooBig(frameHeader(Opcode.TEXT, 100), False, 99)

    def test_refusedWholeFrame(self) -> None:
        """
        An oversized frame whose payload has fully arrived is refused too.
        """
        self._assertTooBig(serializeFrame(Opcode.BINARY, b"x" * 300), False, 299)

    def test_atLimitAccepted(self) -> None:
        """
        A frame of exactly the limit is accepted.
        """
        wire = serializeFrame(Opcode.BINARY, b"x" * 300)
        self.assertEqual(parseFrames(wire, False, 300)[0], [(True, 2, b"x" * 300)])
        self.assertEqual(parseFrames(wire[:4], False, 300), ([], 4, (True, 2, None, 300), None))

    def test_zeroMeansNoLimit(self) -> None:
        """
        A limit of 0 accepts any legal length.
        """
        self.assertEqual(
            parseFrames(frameHeader(Opcode.BINARY, 2**40), False, 0),
            ([], 10, (True, 2, None, 2**40), None),
        )

    def test_framesBeforeOversizedReturned(self) -> None:
        """
        Frames before the oversized one are returned and C{consumed} points
        at the oversized frame.
        """
        first = serializeFrame(Opcode.TEXT, b"ok")
        wire = first + frameHeader(Opcode.BINARY, 50)
        result = parseFrames(wire, False, 10)
        self.assertEqual(result[0], [(True, 1, b"ok")])
        self._assertTooBig(wire, False, 10, consumed=len(first))

    def test_receiverStopsAtLimit(self) -> None:
        """
        A receiver fed byte by byte learns of the violation on the header's
        last byte, having buffered none of the payload.
        """
        wire = serializeFrame(Opcode.BINARY, b"x" * 1000)
        receiver = _Receiver(False, 500)
        for i in range(4):
            self.assertIsNone(receiver.error)
            receiver.feed(wire[i : i + 1])
        assert receiver.error is not None
        self.assertEqual(receiver.error.code, 1009)
        self.assertEqual(receiver.pendings, [])


class ClosePayloadTests(FramesTestCase):
    """
    The Close frame's body: a 2-byte code then a UTF-8 reason (RFC 6455
    section 5.5.1; codes in section 7.4).
    """

    def test_parseEmpty(self) -> None:
        """
        An empty body means no status code was received (1005).
        """
        self.assertEqual(parseClosePayload(b""), (1005, ""))

    def test_parseOneByte(self) -> None:
        """
        A one-byte body is a protocol error.
        """
        self.assertEqual(self.assertRaises(FrameError, parseClosePayload, b"\x03").code, 1002)

    def test_parseCodeOnly(self) -> None:
        """
        A body of just a code gives an empty reason.
        """
        self.assertEqual(parseClosePayload(b"\x03\xe8"), (1000, ""))

    def test_parseReason(self) -> None:
        """
        The reason is decoded as UTF-8.
        """
        self.assertEqual(
            parseClosePayload(b"\x0f\xa0" + "au revoir \u00e9\u20ac".encode()),
            (4000, "au revoir \u00e9\u20ac"),
        )

    def test_parseInvalidCodes(self) -> None:
        """
        Codes never valid on the wire are a protocol error (1002).
        """
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
            error = self.assertRaises(
                FrameError, parseClosePayload, code.to_bytes(2, "big") + b"bye"
            )
            self.assertEqual(error.code, 1002, str(code))

    def test_parseValidCodes(self) -> None:
        """
        Registered codes, 3000-3999 and 4000-4999 are accepted.
        """
        for code in (*range(1000, 1004), *range(1007, 1015), 3000, 3999, 4000, 4999):
            self.assertEqual(
                parseClosePayload(code.to_bytes(2, "big") + b"r"), (code, "r"), str(code)
            )

    def test_parseInvalidUTF8(self) -> None:
        """
        A reason that is not valid UTF-8 is refused with 1007.
        """
        for reason in (b"\xff", b"\xc3", b"abc\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"):
            error = self.assertRaises(FrameError, parseClosePayload, b"\x03\xe8" + reason)
            self.assertEqual(error.code, 1007, reason.hex())

    def test_buildEmpty(self) -> None:
        """
        No code gives an empty body.
        """
        self.assertEqual(buildClosePayload(), b"")
        self.assertEqual(buildClosePayload(None), b"")

    def test_buildCodeAndReason(self) -> None:
        """
        The code is big-endian, followed by the UTF-8 reason.
        """
        self.assertEqual(buildClosePayload(1000), b"\x03\xe8")
        self.assertEqual(buildClosePayload(CloseCode.GOING_AWAY, "bye"), b"\x03\xe9bye")
        self.assertEqual(buildClosePayload(4999, "\u00e9"), b"\x13\x87\xc3\xa9")

    def test_buildRoundTrip(self) -> None:
        """
        Every sendable code with a reason parses back.
        """
        for code in (*range(1000, 1004), *range(1007, 1015), 3000, 3999, 4000, 4999):
            self.assertEqual(parseClosePayload(buildClosePayload(code, "why")), (code, "why"))

    def test_buildRefusesUnsendableCodes(self) -> None:
        """
        Codes reserved for reporting or out of range may not be sent.
        """
        for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535, 65536, -1):
            self.assertRaises(ValueError, buildClosePayload, code)

    def test_buildReasonLength(self) -> None:
        """
        A reason of 123 UTF-8 bytes fits (a 125-byte control payload); one
        more byte, counted in UTF-8 not characters, is refused.
        """
        self.assertEqual(len(buildClosePayload(1000, "a" * 123)), 125)
        self.assertRaises(ValueError, buildClosePayload, 1000, "a" * 124)
        self.assertEqual(len(buildClosePayload(1000, "\u00e9" * 61 + "a")), 125)
        self.assertRaises(ValueError, buildClosePayload, 1000, "\u00e9" * 62)

    def test_buildReasonWithoutCode(self) -> None:
        """
        A reason without a code is refused.
        """
        self.assertRaises(ValueError, buildClosePayload, None, "why")

    def test_fitsInControlFrame(self) -> None:
        """
        The longest close payload travels in a valid Close frame.
        """
        payload = buildClosePayload(1001, "z" * 123)
        wire = serializeFrame(Opcode.CLOSE, payload, maskKey=RFC_KEY)
        frames = parseFrames(wire, True)[0]
        self.assertEqual(parseClosePayload(frames[0][2]), (1001, "z" * 123))


class CloseCodeValidityTests(FramesTestCase):
    """
    Which status codes may appear on the wire (RFC 6455 sections 7.4.1 and
    7.4.2, and the IANA registry).
    """

    def test_validReceived(self) -> None:
        """
        Every code from 0 to 65535 is valid exactly when it is registered
        and not reserved for reporting, or in 3000-4999.
        """
        registered = {1000, 1001, 1002, 1003, *range(1007, 1015)}
        for code in range(65536):
            expected = code in registered or 3000 <= code <= 4999
            self.assertIs(isValidReceivedCloseCode(code), expected, str(code))

    def test_sendableMatchesReceived(self) -> None:
        """
        An endpoint may send the codes it would accept.
        """
        for code in range(900, 5100):
            self.assertIs(isSendableCloseCode(code), isValidReceivedCloseCode(code))

    def test_reportingCodesNeverOnWire(self) -> None:
        """
        1005, 1006 and 1015 are neither valid nor sendable.
        """
        for code in (CloseCode.NO_STATUS_RECEIVED, CloseCode.ABNORMAL_CLOSURE, 1015):
            self.assertFalse(isValidReceivedCloseCode(code))
            self.assertFalse(isSendableCloseCode(code))


@st.composite
def _frames(draw: st.DrawFn, masked: Optional[bool] = None) -> tuple[ParsedFrame, Optional[bytes]]:
    """
    A frame obeying section 5.5's control frame rules, and an optional
    masking key.

    @param draw: hypothesis' draw function.
    @param masked: whether to mask, or L{None} to choose at random.
    @return: C{((fin, opcode, payload), maskKey)}.
    """
    opcode = draw(st.sampled_from(list(Opcode)))
    if isControl(opcode):
        fin = True
        payload = draw(st.binary(max_size=125))
    else:
        fin = draw(st.booleans())
        payload = draw(
            st.one_of(
                st.binary(max_size=300),
                st.integers(min_value=65530, max_value=65540).map(lambda n: b"\xa5" * n),
            )
        )
    if masked is None:
        masked = draw(st.booleans())
    key = draw(st.binary(min_size=4, max_size=4)) if masked else None
    return (fin, opcode, payload), key


class RoundTripPropertyTests(FramesTestCase):
    """
    C{parse(serialize(x)) == x} for any legal frame (RFC 6455 section 5.2),
    checked with hypothesis.
    """

    @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(_frames())
    def test_roundTrip(self, frameAndKey: tuple[ParsedFrame, Optional[bytes]]) -> None:
        """
        A serialized frame parses back to itself, consuming every byte.
        """
        (fin, opcode, payload), key = frameAndKey
        wire = serializeFrame(opcode, payload, fin, key)
        self.assertEqual(
            parseFrames(wire, key is not None), ([(fin, opcode, payload)], len(wire), None, None)
        )

    @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(_frames())
    def test_headerPending(self, frameAndKey: tuple[ParsedFrame, Optional[bytes]]) -> None:
        """
        The header alone of a non-empty frame parses to C{pending} carrying
        its FIN bit, opcode, key and length.
        """
        (fin, opcode, payload), key = frameAndKey
        header = frameHeader(opcode, len(payload), fin, key)
        expected: ParseResult
        if payload:
            expected = ([], len(header), (fin, opcode, key, len(payload)), None)
        else:
            expected = ([(fin, opcode, b"")], len(header), None, None)
        self.assertEqual(parseFrames(header, key is not None), expected)

    @settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
    @given(
        st.booleans().flatmap(
            lambda masked: st.tuples(
                st.just(masked), st.lists(_frames(masked), min_size=1, max_size=6)
            )
        ),
        st.lists(st.integers(min_value=0, max_value=2**20), max_size=8),
    )
    def test_streamInChunks(
        self,
        stream: tuple[bool, list[tuple[ParsedFrame, Optional[bytes]]]],
        cuts: list[int],
    ) -> None:
        """
        A sequence of frames cut into arbitrary chunks is received intact.
        """
        masked, frames = stream
        wire = b"".join(serializeFrame(op, p, fin, key) for (fin, op, p), key in frames)
        offsets = sorted({0, len(wire), *(c % (len(wire) + 1) for c in cuts)})
        chunks = [wire[a:b] for a, b in itertools.pairwise(offsets)]
        receiver = _receive(chunks, masked)
        self.assertEqual(receiver.frames, [frame for frame, _ in frames])
        self.assertIsNone(receiver.error)
        self.assertTrue(receiver.idle)


class ParseFramesFuzzTests(FramesTestCase):
    """
    L{parseFrames} on arbitrary input: "parse never raises" (RFC 6455
    section 7.1.7 failures are reported, never thrown).
    """

    def _check(self, data: bytes, requireMask: bool, limit: int, allowedRsv: int) -> None:
        """
        Assert the invariants of one L{parseFrames} call.

        @param data: the input.
        @param requireMask: as for L{parseFrames}.
        @param limit: C{maxFramePayload}.
        @param allowedRsv: as for L{parseFrames}.
        """
        frames, consumed, pending, error = parseFrames(data, requireMask, limit, allowedRsv)
        self.assertTrue(0 <= consumed <= len(data))
        self.assertFalse(pending is not None and error is not None)
        if error is not None:
            self.assertIsInstance(error, FrameError)
            self.assertIn(error.code, {1002, 1009})
        if pending is not None:
            fin, opcode, key, length = pending
            self.assertTrue(consumed + length > len(data))
            self.assertIs(key is not None, requireMask)
            if limit:
                self.assertTrue(length <= limit)
        if pending is None and error is None:
            self.assertTrue(len(data) - consumed < 14)
        for fin, opcode, payload in frames:
            self.assertIn(opcode & 0x0F, set(Opcode))
            if opcode & 0x40:
                self.assertTrue(allowedRsv & 0x40 and not isControl(opcode & 0x0F))
            self.assertEqual(opcode & ~0x4F, 0)
            if isControl(opcode & 0x0F):
                self.assertTrue(fin and len(payload) <= 125)
            if limit:
                self.assertTrue(len(payload) <= limit)
        # What was consumed as whole frames parses again to the same frames.
        if pending is None:
            again = parseFrames(data[:consumed], requireMask, limit, allowedRsv)
            self.assertEqual(again[0], frames)

    @settings(max_examples=500)
    @given(
        st.binary(max_size=200),
        st.booleans(),
        st.sampled_from([0, 1, 5, 125, 126, 65536]),
        st.sampled_from([0, 0x40, 0x70]),
    )
    def test_randomBytes(self, data: bytes, requireMask: bool, limit: int, allowedRsv: int) -> None:
        """
        Random bytes never raise and always satisfy the result invariants.
        """
        self._check(data, requireMask, limit, allowedRsv)

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(_frames(), max_size=5),
        st.binary(max_size=30),
        st.booleans(),
        st.sampled_from([0, 10, 200]),
    )
    def test_framesThenGarbage(
        self,
        frames: list[tuple[ParsedFrame, Optional[bytes]]],
        garbage: bytes,
        requireMask: bool,
        limit: int,
    ) -> None:
        """
        Plausible frames (of either direction) followed by random bytes
        never raise and satisfy the invariants.
        """
        wire = b"".join(serializeFrame(op, p, fin, key) for (fin, op, p), key in frames)
        self._check(wire + garbage, requireMask, limit, 0)
