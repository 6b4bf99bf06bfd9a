"""
Tests for L{txws._reassembly}: messages from data frames, the fragmentation
rules, the message size limit and UTF-8 (RFC 6455 sections 5.4, 5.6, 8.1).

No Twisted here: the module is pure, and so are these tests.  Every vector
is a sequence of frames put on the wire (masked, as a client sends them),
then parsed and reassembled the way a connection does it: fed whole, byte
by byte and split at every offset, which drives the single-frame fast path,
fragments and frames streamed in pieces alike; each must give the same
messages and the same close code.  Hypothesis adds random messages, random
fragmentations and random garbage.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import sys
import unittest
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from txws._mask import FrameAssembler
from txws._reassembly import Message, Reassembler, invalidText, tooLarge, truncatedText
from txws.deflate import Decompressor
from txws.frames import CloseCode, FrameError, parseFrames, serializeFrame

KEY = b"\x37\xfa\x21\x3d"

#: A frame as a vector writes it: C{(fin, opcode, payload)}.
Frame = tuple[bool, int, bytes]

#: What reassembling gives: the messages, then the close code of the error
#: that stopped it (or C{None}).
Outcome = tuple[list[Message], Optional[int]]


def wire(frames: Iterable[Frame]) -> bytes:
    """
    @return: C{frames} as a client puts them on the wire.
    """
    return b"".join(serializeFrame(opcode, payload, fin, KEY) for fin, opcode, payload in frames)


class _Streamed:
    """
    A frame whose payload is arriving, as a connection keeps it.
    """

    def __init__(self, fin: bool, opcode: int, key: Optional[bytes], length: int) -> None:
        self.fin = fin
        self.opcode = opcode
        self.remaining = length
        self.offset = 0
        self.assembler: Optional[FrameAssembler] = FrameAssembler(length, key)


def reassemble(chunks: Iterable[bytes], limit: int = 0) -> Outcome:
    """
    Parse and reassemble received chunks as L{txws.protocol} does: the
    complete frames of each chunk through L{Reassembler.message} or
    L{Reassembler.frame}, a frame still arriving through L{Reassembler.begin},
    L{Reassembler.piece} and L{Reassembler.end}.  Control frames are
    skipped.

    @return: the messages, and the code of the first error (then stop).
    """
    reassembler = Reassembler(limit)
    messages: list[Message] = []
    buf = b""
    streamed: Optional[_Streamed] = None

    def feed(data: bytes) -> bytes:
        nonlocal streamed
        assert streamed is not None
        take = min(streamed.remaining, len(data))
        start = streamed.offset
        streamed.offset += take
        streamed.remaining -= take
        assembler = streamed.assembler
        if assembler is not None and take:
            assembler.feed(data[:take])
            if streamed.opcode < 0x8 and reassembler.checksText:
                reassembler.piece(assembler.view(start, start + take))
        if not streamed.remaining:
            done, streamed = streamed, None
            if assembler is not None and done.opcode < 0x8:
                whole = reassembler.end(done.fin, assembler.take())
                if whole is not None:
                    messages.append(whole)
        return data[take:]

    try:
        for chunk in chunks:
            data = chunk
            if streamed is not None:
                data = feed(data)
                if not data:
                    continue
            data = buf + data
            frames, consumed, pending, error = parseFrames(data, True)
            for fin, opcode, payload in frames:
                if opcode >= 0x8:
                    continue
                if fin and opcode:
                    message = reassembler.message(opcode, payload)
                    if message is not None:
                        messages.append((message, opcode == 0x2))
                else:
                    whole = reassembler.frame(fin, opcode, payload)
                    if whole is not None:
                        messages.append(whole)
            if error is not None:
                raise error
            buf = b""
            if pending is not None:
                fin, opcode, key, length = pending
                streamed = _Streamed(fin, opcode, key, length)
                if opcode < 0x8 and not reassembler.begin(opcode, length):
                    streamed.assembler = None
                feed(data[consumed:])
            else:
                buf = data[consumed:]
    except FrameError as e:
        return messages, e.code
    return messages, None


def splits(data: bytes) -> Iterable[list[bytes]]:
    """
    @return: C{data} whole, byte by byte, and split in two at every offset
        (in a long input: at every offset of its first and last 300 bytes,
        where the headers are, and every 997th in between, which keeps the
        one 64-bit-length vector from costing minutes without the C
        extension).
    """
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        if i < 300 or len(data) - i < 300 or i % 997 == 0:
            yield [data[:i], data[i:]]


TEXT, BINARY, CONT, PING = 0x1, 0x2, 0x0, 0x9
EURO = "\N{EURO SIGN}".encode()

#: C{(name, frames, limit, messages, close code)}.
VECTORS: list[tuple[str, list[Frame], int, list[Message], Optional[int]]] = [
    ("text", [(True, TEXT, b"Hello")], 0, [(b"Hello", False)], None),
    ("binary", [(True, BINARY, b"\x00\xff")], 0, [(b"\x00\xff", True)], None),
    ("empty messages", [(True, TEXT, b""), (True, BINARY, b"")], 0,
     [(b"", False), (b"", True)], None),
    ("two messages", [(True, TEXT, b"a"), (True, BINARY, b"b")], 0,
     [(b"a", False), (b"b", True)], None),
    ("fragmented text", [(False, TEXT, b"Hel"), (False, CONT, b"l"), (True, CONT, b"o")], 0,
     [(b"Hello", False)], None),
    ("fragmented binary, empty fragments",
     [(False, BINARY, b""), (False, CONT, b"ab"), (True, CONT, b"")], 0,
     [(b"ab", True)], None),
    ("control interleaved",
     [(False, TEXT, b"He"), (True, PING, b"p"), (True, CONT, b"llo")], 0,
     [(b"He" + b"llo", False)], None),
    ("large frames", [(True, BINARY, b"x" * 300), (True, TEXT, b"y" * 70000)], 0,
     [(b"x" * 300, True), (b"y" * 70000, False)], None),
    ("continuation without a message", [(True, CONT, b"x")], 0, [],
     CloseCode.PROTOCOL_ERROR),
    ("unfinished continuation without a message", [(False, CONT, b"x")], 0, [],
     CloseCode.PROTOCOL_ERROR),
    ("new message while fragmented",
     [(True, TEXT, b"ok"), (False, TEXT, b"a"), (True, BINARY, b"b")], 0,
     [(b"ok", False)], CloseCode.PROTOCOL_ERROR),
    ("new fragment while fragmented", [(False, BINARY, b"a"), (False, TEXT, b"b")], 0, [],
     CloseCode.PROTOCOL_ERROR),
    ("invalid text", [(True, BINARY, b"\xff"), (True, TEXT, b"a\xffb")], 0,
     [(b"\xff", True)], CloseCode.INVALID_PAYLOAD),
    ("invalid text in a fragment", [(False, TEXT, b"ok"), (False, CONT, b"\xc0\xaf")], 0, [],
     CloseCode.INVALID_PAYLOAD),
    ("multibyte across fragments",
     [(False, TEXT, EURO[:1]), (False, CONT, EURO[1:2]), (True, CONT, EURO[2:])], 0,
     [(EURO, False)], None),
    ("text ends inside a sequence", [(False, TEXT, b"a"), (True, CONT, EURO[:2])], 0, [],
     CloseCode.INVALID_PAYLOAD),
    ("single frame ends inside a sequence", [(True, TEXT, EURO[:2])], 0, [],
     CloseCode.INVALID_PAYLOAD),
    ("surrogate fails fast", [(False, TEXT, b"\xed\xa0"), (True, CONT, b"\x80")], 0, [],
     CloseCode.INVALID_PAYLOAD),
    ("at the limit", [(True, BINARY, b"x" * 10), (False, TEXT, b"12345"),
                      (True, CONT, b"67890")], 10,
     [(b"x" * 10, True), (b"1234567890", False)], None),
    ("over the limit", [(True, BINARY, b"x" * 11)], 10, [], CloseCode.MESSAGE_TOO_BIG),
    ("over the limit across fragments", [(False, TEXT, b"123456"), (True, CONT, b"78901")], 10,
     [], CloseCode.MESSAGE_TOO_BIG),
    ("large frame over the limit", [(True, BINARY, b"x"), (True, BINARY, b"y" * 200)], 100,
     [(b"x", True)], CloseCode.MESSAGE_TOO_BIG),
]


class VectorTests(unittest.TestCase):
    """
    Every vector, fed whole, byte by byte and split at every offset.
    """

    def test_vectors(self) -> None:
        """
        Each vector gives its messages and close code however it is split.
        """
        for name, frames, limit, messages, code in VECTORS:
            data = wire(frames)
            for chunks in splits(data):
                with self.subTest(name, cuts=[len(c) for c in chunks][:3]):
                    self.assertEqual(reassemble(chunks, limit), (messages, code))

    def test_errorCodesAreCloseCodes(self) -> None:
        """
        The errors carry L{CloseCode} members, and the reason strings each
        rule has.
        """
        self.assertIs(type(tooLarge(5).code), CloseCode)
        self.assertEqual(tooLarge(5).reason, "message exceeds the limit of 5 bytes")
        self.assertEqual(invalidText().code, CloseCode.INVALID_PAYLOAD)
        self.assertEqual(invalidText().reason, "text message is not valid UTF-8")
        self.assertEqual(truncatedText().code, CloseCode.INVALID_PAYLOAD)
        self.assertEqual(truncatedText().reason, "text message ends inside a UTF-8 sequence")


class ReassemblerTests(unittest.TestCase):
    """
    The L{Reassembler} interface, call by call.
    """

    def test_messageFastPath(self) -> None:
        """
        A whole message comes back as the very payload object.
        """
        payload = b"hello"
        self.assertIs(Reassembler().message(TEXT, payload), payload)

    def test_inMessage(self) -> None:
        """
        L{Reassembler.inMessage} is true between a message's first and last
        frame.
        """
        reassembler = Reassembler()
        self.assertFalse(reassembler.inMessage)
        self.assertIsNone(reassembler.frame(False, BINARY, b"a"))
        self.assertTrue(reassembler.inMessage)
        self.assertEqual(reassembler.frame(True, CONT, b"b"), (b"ab", True))
        self.assertFalse(reassembler.inMessage)

    def test_messageWhileFragmented(self) -> None:
        """
        A whole text frame while a message is incomplete is a protocol error.
        """
        reassembler = Reassembler()
        reassembler.frame(False, TEXT, b"a")
        with self.assertRaises(FrameError) as caught:
            reassembler.message(TEXT, b"b")
        self.assertEqual(caught.exception.code, CloseCode.PROTOCOL_ERROR)
        self.assertTrue(reassembler.discarding)

    def test_discardAfterError(self) -> None:
        """
        After raising, every data frame is dropped.
        """
        reassembler = Reassembler(3)
        self.assertRaises(FrameError, reassembler.message, BINARY, b"abcd")
        self.assertTrue(reassembler.discarding)
        self.assertIsNone(reassembler.message(TEXT, b"\xff"))
        self.assertIsNone(reassembler.frame(True, CONT, b"x"))
        self.assertFalse(reassembler.begin(TEXT, 1000))
        reassembler.piece(b"\xff")
        self.assertIsNone(reassembler.end(True, b"\xff"))
        self.assertFalse(reassembler.checksText)

    def test_discard(self) -> None:
        """
        L{Reassembler.discard} drops the message in progress.
        """
        reassembler = Reassembler()
        reassembler.frame(False, TEXT, b"abc")
        reassembler.discard()
        self.assertFalse(reassembler.inMessage)
        self.assertTrue(reassembler.discarding)
        self.assertIsNone(reassembler.frame(True, CONT, b"d"))

    def test_streamedText(self) -> None:
        """
        A streamed text frame is checked piece by piece, and fails at the
        first piece that cannot be valid UTF-8.
        """
        reassembler = Reassembler()
        self.assertTrue(reassembler.begin(TEXT, 4))
        self.assertTrue(reassembler.checksText)
        reassembler.piece(b"ab")
        self.assertRaises(FrameError, reassembler.piece, b"\xff")
        self.assertTrue(reassembler.discarding)

    def test_streamedBinary(self) -> None:
        """
        A streamed binary frame needs no pieces and ends the message.
        """
        reassembler = Reassembler()
        self.assertTrue(reassembler.begin(BINARY, 2))
        self.assertFalse(reassembler.checksText)
        self.assertIsNone(reassembler.end(False, b"ab"))
        self.assertTrue(reassembler.begin(CONT, 1))
        self.assertEqual(reassembler.end(True, b"c"), (b"abc", True))

    def test_streamedOverLimitRefusedFromHeader(self) -> None:
        """
        L{Reassembler.begin} refuses a frame that would take the message
        over the limit before any of its payload exists.
        """
        reassembler = Reassembler(10)
        reassembler.frame(False, BINARY, b"x" * 6)
        with self.assertRaises(FrameError) as caught:
            reassembler.begin(CONT, 5)
        self.assertEqual(caught.exception.code, CloseCode.MESSAGE_TOO_BIG)

    def test_limitChangeable(self) -> None:
        """
        The limit is an attribute (a connection sets it once open).
        """
        reassembler = Reassembler()
        reassembler.limit = 2
        self.assertRaises(FrameError, reassembler.message, BINARY, b"abc")

    def test_noTwisted(self) -> None:
        """
        The module, and the modules of the package it imports, import
        nothing from Twisted.
        """
        seen: set[str] = set()
        todo = ["txws._reassembly"]
        while todo:
            name = todo.pop()
            seen.add(name)
            spec = importlib.util.find_spec(name)
            assert spec is not None and spec.origin is not None
            tree = ast.parse(Path(spec.origin).read_text())
            for node in ast.walk(tree):
                names = (
                    [a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                )
                for imported in names:
                    self.assertFalse(imported.startswith("twisted"), (name, imported))
                    if imported.startswith("txws.") and imported not in seen:
                        todo.append(imported)
        self.assertIn("txws.frames", seen)


# -- Hypothesis ----------------------------------------------------------------

texts = st.text(max_size=40).map(lambda s: (s.encode("utf-8"), False))
binaries = st.binary(max_size=300).map(lambda b: (b, True))
messageLists = st.lists(st.one_of(texts, binaries), max_size=5)


@st.composite
def fragmented(draw: st.DrawFn) -> tuple[list[Message], list[Frame]]:
    """
    Messages and a random fragmentation of them, pings in between.
    """
    messages = draw(messageLists)
    frames: list[Frame] = []
    for payload, isBinary in messages:
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=3)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for i, piece in enumerate(pieces):
            opcode = (BINARY if isBinary else TEXT) if i == 0 else CONT
            frames.append((i == len(pieces) - 1, opcode, piece))
            if draw(st.booleans()):
                frames.append((True, PING, b""))
    return messages, frames


def cut(data: bytes, offsets: Sequence[int]) -> list[bytes]:
    points = sorted({o % (len(data) + 1) for o in offsets})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


anyFrames = st.lists(
    st.tuples(
        st.booleans(),
        st.sampled_from([CONT, TEXT, BINARY, PING]),
        st.one_of(st.binary(max_size=20), st.sampled_from([EURO, EURO[:2], b"\xed\xa0\x80"])),
    ),
    max_size=8,
)


class PropertyTests(unittest.TestCase):
    """
    Random messages, fragmentations and splits.
    """

    @settings(max_examples=200, deadline=None)
    @given(fragmented(), st.lists(st.integers(min_value=0), max_size=6))
    def test_roundTrip(
        self, case: tuple[list[Message], list[Frame]], offsets: list[int]
    ) -> None:
        """
        Any fragmentation of valid messages, split anywhere, gives them back.
        """
        messages, frames = case
        self.assertEqual(reassemble(cut(wire(frames), offsets)), (messages, None))

    @settings(max_examples=300, deadline=None)
    @given(anyFrames, st.integers(0, 40), st.lists(st.integers(min_value=0), max_size=6))
    def test_splitInvariant(self, frames: list[Frame], limit: int, offsets: list[int]) -> None:
        """
        Arbitrary data frames give the same messages and error, whole or split
        anywhere; an error is always 1002, 1007 or 1009.
        """
        data = wire(frames)
        whole = reassemble([data], limit)
        self.assertEqual(reassemble(cut(data, offsets), limit), whole)
        self.assertIn(
            whole[1],
            {None, CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_PAYLOAD, CloseCode.MESSAGE_TOO_BIG},
        )


def deflated(data: bytes, windowBits: int = 15) -> bytes:
    """
    @return: C{data} compressed as a permessage-deflate message (raw
        deflate, sync-flushed, without the trailing C{00 00 ff ff}).
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -windowBits)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflating(limit: int = 0, maxFragments: int = 0) -> Reassembler:
    """
    @return: a reassembler of a connection that negotiated
        permessage-deflate.
    """
    return Reassembler(limit, maxFragments, Decompressor(15, False, limit))


class CompressedMessageTests(unittest.TestCase):
    """
    Compressed messages (RFC 7692 section 6): RSV1 on the first frame only,
    inflated as they come, the size limit on the inflated bytes and UTF-8
    checked after inflation.
    """

    def assertFails(self, code: int, call: Callable[[], object]) -> None:
        with self.assertRaises(FrameError) as caught:
            call()
        self.assertEqual(caught.exception.code, code)

    def test_wholeMessage(self) -> None:
        """
        One frame with RSV1 set is a whole compressed message, text or
        binary.
        """
        reassembler = inflating()
        text = "héllo wörld ".encode() * 50
        self.assertEqual(reassembler.compressed(True, 0x1, deflated(text)), (text, False))
        self.assertEqual(
            reassembler.compressed(True, 0x2, deflated(b"\x00\xff")), (b"\x00\xff", True)
        )
        # Between compressed messages, uncompressed ones (RSV1 clear) are fine.
        self.assertEqual(reassembler.message(0x1, b"plain"), b"plain")
        self.assertFalse(reassembler.inMessage)

    def test_fragmented(self) -> None:
        """
        A compressed message split over frames, the first with RSV1: every
        fragment is inflated as it comes, small outputs are stored together.
        """
        text = ("".join(chr(0x400 + i % 200) for i in range(3000))).encode()
        data = deflated(text)
        reassembler = inflating()
        cuts = [0, 1, 7, len(data) // 2, len(data) - 1, len(data)]
        pieces = [data[a:b] for a, b in itertools.pairwise(cuts)]
        self.assertIsNone(reassembler.compressed(False, 0x1, pieces[0]))
        self.assertTrue(reassembler.inMessage)
        self.assertFalse(reassembler.checksText)
        for piece in pieces[1:-1]:
            self.assertIsNone(reassembler.frame(False, 0x0, piece))
        self.assertEqual(reassembler.frame(True, 0x0, pieces[-1]), (text, False))
        # An empty final fragment ends a compressed message too.
        reassembler.compressed(False, 0x2, deflated(b"abc" * 100))
        self.assertEqual(reassembler.frame(True, 0x0, b""), (b"abc" * 100, True))

    def test_streamed(self) -> None:
        """
        Compressed frames whose payload arrives in pieces are inflated when
        complete; their pieces are not UTF-8 checked (they are compressed),
        and a streamed continuation of a compressed message is inflated too.
        """
        text = b"streamed " * 400
        data = deflated(text)
        reassembler = inflating(limit=len(text))
        self.assertTrue(reassembler.begin(0x1, len(data) // 2, True))
        self.assertFalse(reassembler.checksText)
        self.assertIsNone(reassembler.end(False, data[: len(data) // 2]))
        # The continuation's announced length is compressed bytes: not
        # checked against the limit (the inflated size is).
        self.assertTrue(reassembler.begin(0x0, len(text) * 2))
        self.assertEqual(reassembler.end(True, data[len(data) // 2 :]), (text, False))

    def test_limitOnInflatedBytes(self) -> None:
        """
        The limit applies to the inflated message: exactly the limit is
        accepted, one byte more fails with 1009, whole or fragmented, and
        the reassembler then discards.
        """
        limit = 100_000
        exact = deflated(b"a" * limit)
        self.assertEqual(inflating(limit).compressed(True, 0x2, exact), (b"a" * limit, True))
        over = deflated(b"a" * (limit + 1))
        reassembler = inflating(limit)
        self.assertFails(1009, lambda: reassembler.compressed(True, 0x2, over))
        self.assertTrue(reassembler.discarding)
        self.assertIsNone(reassembler.compressed(True, 0x1, exact))
        # A bomb spread over many fragments.
        bomb = deflated(b"\x00" * (10 * limit))
        reassembler = inflating(limit)
        reassembler.compressed(False, 0x2, bomb[:10])

        def rest() -> None:
            for start in range(10, len(bomb), 10):
                reassembler.frame(False, 0x0, bomb[start : start + 10])

        self.assertFails(1009, rest)

    def test_invalidText(self) -> None:
        """
        Text is checked as it is inflated: invalid UTF-8 fails with 1007,
        whole or in fragments, and a text ending inside a sequence too.
        """
        bad = deflated(b"ok \xff\xfe")
        self.assertFails(1007, lambda: inflating().compressed(True, 0x1, bad))
        reassembler = inflating()
        self.assertFails(1007, lambda: reassembler.compressed(False, 0x1, bad))
        self.assertTrue(reassembler.discarding)
        reassembler = inflating()
        reassembler.compressed(False, 0x1, deflated("é".encode()[:1]))
        self.assertFails(1007, lambda: reassembler.frame(True, 0x0, b""))

    def test_invalidData(self) -> None:
        """
        Bytes that do not inflate fail with 1007.
        """
        self.assertFails(1007, lambda: inflating().compressed(True, 0x2, b"\xff\xff\xff\xff"))

    def test_rsv1Rules(self) -> None:
        """
        RSV1 on a continuation frame, without the extension, or on a new
        frame while a message is incomplete, is a protocol error (1002).
        """
        self.assertFails(1002, lambda: inflating().compressed(True, 0x0, b"\x00"))
        self.assertFails(1002, lambda: inflating().begin(0x0, 10, True))
        self.assertFails(1002, lambda: Reassembler().compressed(True, 0x1, deflated(b"x")))
        reassembler = inflating()
        reassembler.frame(False, 0x1, b"part")
        self.assertFails(1002, lambda: reassembler.compressed(True, 0x1, deflated(b"x")))


class FragmentMemoryTests(unittest.TestCase):
    """
    Memory follows a message's bytes whatever its fragmentation (issue 11
    item 2), and C{maxFragments} bounds the frames of one message.
    """

    def test_oneByteFragments(self) -> None:
        """
        64 KiB sent as one-byte fragments holds under 1.5 bytes per byte
        while in progress (one object per fragment held ~56), and comes out
        whole.
        """
        reassembler = Reassembler()
        reassembler.frame(False, 0x2, b"a")
        for _ in range(65535):
            reassembler.frame(False, 0x0, b"b")
        held = sum(sys.getsizeof(chunk) for chunk in reassembler._chunks)
        self.assertLess(held, 1.5 * 65536 + 1024)
        self.assertEqual(reassembler.frame(True, 0x0, b""), (b"a" + b"b" * 65535, True))

    def test_largeFragmentsKept(self) -> None:
        """
        Large fragments are kept as they are (one join at the end), small
        ones between them stored together; a message of one short fragment
        comes out as C{bytes}.
        """
        big = b"x" * 10000
        reassembler = Reassembler()
        reassembler.frame(False, 0x2, big)
        reassembler.frame(False, 0x0, b"1")
        reassembler.frame(False, 0x0, b"2")
        reassembler.frame(False, 0x0, big)
        self.assertIs(reassembler._chunks[0], big)
        self.assertEqual(len(reassembler._chunks), 3)
        self.assertEqual(reassembler.frame(True, 0x0, b"3"), (big + b"12" + big + b"3", True))
        reassembler.frame(False, 0x1, b"ab")
        payload, isBinary = reassembler.frame(True, 0x0, b"") or (b"", True)
        self.assertIs(type(payload), bytes)
        self.assertEqual((payload, isBinary), (b"ab", False))

    def test_maxFragments(self) -> None:
        """
        A message with more frames than C{maxFragments} fails with 1009,
        fragments complete or streamed, compressed or not; exactly the limit
        is fine.
        """
        reassembler = Reassembler(0, 3)
        reassembler.frame(False, 0x1, b"a")
        reassembler.frame(False, 0x0, b"b")
        self.assertEqual(reassembler.frame(True, 0x0, b"c"), (b"abc", False))
        reassembler.frame(False, 0x1, b"a")
        reassembler.frame(False, 0x0, b"b")
        reassembler.begin(0x0, 1)
        reassembler.end(False, b"c")
        with self.assertRaises(FrameError) as caught:
            reassembler.begin(0x0, 1)
        self.assertEqual(caught.exception.code, 1009)
        self.assertIn("more than 3 fragments", caught.exception.reason)
        compressed = inflating(maxFragments=1)
        compressed.compressed(False, 0x1, deflated(b"a"))
        with self.assertRaises(FrameError) as caught:
            compressed.frame(True, 0x0, b"")
        self.assertEqual(caught.exception.code, 1009)
