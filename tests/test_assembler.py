"""
Tests for L{txws._mask.FrameAssembler}: building one frame's payload from
the pieces in which it arrives, unmasking each straight into the final
bytes (RFC 6455 sections 5.2 and 5.3).

The C class and the pure-Python fallback run the same tests, and a property
test drives both through the same random operations and compares every
outcome, errors included.
"""

from __future__ import annotations

import array
import gc
import itertools
import os
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Optional, Protocol, Union

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import requireSpeedups
from tests.typedtrial import SkipTest, SynchronousTestCase
from txws import _mask
from txws._mask import FrameAssembler, FrameAssemblerPython, maskPython

if TYPE_CHECKING:
    from typing_extensions import Buffer

    _MixinBase = SynchronousTestCase
else:
    _MixinBase = object


class _Assembler(Protocol):
    """
    What both implementations offer.
    """

    def feed(self, data: Buffer, /) -> int: ...
    def view(self, start: int, stop: int, /) -> memoryview: ...
    def take(self) -> bytes: ...
    @property
    def capacity(self) -> int: ...


AssemblerFactory = Callable[..., _Assembler]

# RFC 6455 section 5.7: a masked text frame carrying "Hello".
RFC_KEY = bytes.fromhex("37fa213d")
RFC_MASKED_HELLO = bytes.fromhex("7f9f4d5158")

keys = st.one_of(st.none(), st.binary(min_size=4, max_size=4))
cutLists = st.lists(st.integers(min_value=0, max_value=300), max_size=10)

# The mixins' property tests run once per implementation, each from its own
# test case class.
mixinSettings = settings(suppress_health_check=[HealthCheck.differing_executors])

MiB = 1024 * 1024

# Piece sizes that exercise the growth of both assemblers: single octets,
# small pieces, pieces around the Python one's SMALL_PIECE threshold, and
# large ones (the draw is capped at what is still missing).
pieceSizes = st.one_of(
    st.just(1),
    st.integers(min_value=0, max_value=64),
    st.integers(min_value=4000, max_value=4200),
    st.integers(min_value=1, max_value=20000),
)


def _expected(payload: bytes, key: Optional[bytes]) -> bytes:
    """
    @param payload: a payload as sent.
    @param key: its masking key, or L{None}.
    @return: the payload as received, octet by octet per RFC 6455 section 5.3.
    """
    if key is None:
        return payload
    return bytes(octet ^ key[i % 4] for i, octet in enumerate(payload))


def _assertCapacityFollowsFed(case: SynchronousTestCase, assembler: _Assembler, fed: int) -> None:
    """
    Assert that C{assembler}, fed C{fed} octets, holds at least those and at
    most about twice as many, whatever length was announced.
    """
    capacity = assembler.capacity
    case.assertTrue(fed <= capacity <= 2 * fed + 8, (fed, capacity))


def _pieces(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """
    @param data: a payload.
    @param cuts: offsets to split it at (any order, clamped to its length).
    @return: the pieces between the cuts, empty ones included.
    """
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


class _AssemblerMixin(_MixinBase):
    """
    Behaviour both assemblers share (RFC 6455 sections 5.2 and 5.3);
    subclasses set L{assemblerClass} in C{setUp}.
    """

    assemblerClass: AssemblerFactory

    def assemble(
        self, pieces: Sequence[Buffer], key: Optional[bytes], length: Optional[int] = None
    ) -> bytes:
        """
        Feed C{pieces} to a new assembler, checking what C{feed} returns and
        that C{view} shows each piece unmasked, and take the payload.

        @param pieces: the payload as it arrives.
        @param key: the masking key, or L{None}.
        @param length: the announced length (default: the pieces' total).
        @return: what C{take} returns.
        """
        sizes = [memoryview(piece).nbytes for piece in pieces]
        total = sum(sizes) if length is None else length
        wire = b"".join(memoryview(piece).tobytes() for piece in pieces)
        expected = _expected(wire, key)
        assembler = self.assemblerClass(total, key)
        offset = 0
        for piece, size in zip(pieces, sizes, strict=True):
            self.assertEqual(assembler.feed(piece), total - offset - size)
            self.assertEqual(
                assembler.view(offset, offset + size).tobytes(), expected[offset : offset + size]
            )
            offset += size
            _assertCapacityFollowsFed(self, assembler, offset)
        payload = assembler.take()
        self.assertIs(type(payload), bytes)
        self.assertEqual(assembler.capacity, 0)
        return payload

    def test_rfcExample(self) -> None:
        """
        The RFC 6455 section 5.7 masked "Hello" unmasks whole and in pieces.
        """
        self.assertEqual(self.assemble([RFC_MASKED_HELLO], RFC_KEY), b"Hello")
        pieces = [RFC_MASKED_HELLO[:1], RFC_MASKED_HELLO[1:3], RFC_MASKED_HELLO[3:]]
        self.assertEqual(self.assemble(pieces, RFC_KEY), b"Hello")

    def test_unmasked(self) -> None:
        """
        Without a key the pieces are copied as they are.
        """
        self.assertEqual(self.assemble([b"Hel", b"", b"lo"], None), b"Hello")
        self.assertEqual(self.assemblerClass(5).feed(b"Hello"), 0)

    def test_everySplit(self) -> None:
        """
        Three pieces split at every pair of offsets unmask like the whole.
        """
        payload = bytes(range(1, 32))
        expected = _expected(payload, RFC_KEY)
        for i in range(len(payload) + 1):
            for j in range(i, len(payload) + 1):
                pieces = [payload[:i], payload[i:j], payload[j:]]
                self.assertEqual(self.assemble(pieces, RFC_KEY), expected, (i, j))

    def test_byteByByte(self) -> None:
        """
        One octet at a time, the key phase follows the offset.
        """
        payload = os.urandom(67)
        key = os.urandom(4)
        pieces = [payload[i : i + 1] for i in range(len(payload))]
        self.assertEqual(self.assemble(pieces, key), _expected(payload, key))

    def test_largePayload(self) -> None:
        """
        1 MiB arrives in 64 KiB and in 4 KiB pieces, and odd-sized ones.
        """
        payload = random.Random(3).randbytes(1024 * 1024)
        key = b"\x01\x82\x43\xc4"
        expected = maskPython(payload, key)
        for size in (65536, 4096, 65535, 4099):
            view = memoryview(payload)
            pieces = [view[i : i + size] for i in range(0, len(payload), size)]
            self.assertEqual(self.assemble(pieces, key), expected, size)
            self.assertEqual(self.assemble(pieces, None), payload, size)

    def test_announcedIsNotAllocated(self) -> None:
        """
        An assembler announced at 1 MiB that received 16 octets holds about
        16 octets: memory follows what arrives, not what the header claims
        (issue 11, item 3).  Measured with C{tracemalloc}, which sees the
        C extension's L{bytes} allocations as well as Python's.
        """
        for key in (None, RFC_KEY):
            tracemalloc.start()
            self.addCleanup(tracemalloc.stop)
            before = tracemalloc.get_traced_memory()[0]
            assembler = self.assemblerClass(MiB, key)
            self.assertEqual(assembler.feed(os.urandom(16)), MiB - 16)
            held = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
            self.assertLess(held, 4096, key)
            self.assertTrue(16 <= assembler.capacity <= 40, assembler.capacity)

    def test_completeHasExactCapacity(self) -> None:
        """
        However the payload arrived, the assembler holds no more than it
        announced once complete; a payload fed as one piece is held as
        one allocation of its size.
        """
        payload = os.urandom(10000)
        for pieces in ([payload], [payload[:1], payload[1:]], _pieces(payload, [3, 700, 5000])):
            assembler = self.assemblerClass(len(payload))
            for piece in pieces:
                assembler.feed(piece)
            self.assertTrue(10000 <= assembler.capacity <= 10000 + 8, assembler.capacity)
            self.assertEqual(assembler.take(), payload)

    def test_manySmallPieces(self) -> None:
        """
        70,000 one-octet pieces (more than one gathering buffer's worth in
        the Python assembler) cost about an octet each, and unmask right.
        """
        payload = os.urandom(70000)
        key = os.urandom(4)
        assembler = self.assemblerClass(len(payload), key)
        view = memoryview(payload)
        for i in range(len(payload)):
            assembler.feed(view[i : i + 1])
        _assertCapacityFollowsFed(self, assembler, len(payload))
        self.assertEqual(assembler.view(0, len(payload)).tobytes(), maskPython(payload, key))
        self.assertEqual(assembler.take(), maskPython(payload, key))

    def test_viewsAcrossGrowth(self) -> None:
        """
        Views held while the assembler grows (the buffer under them cannot
        be resized then) keep their contents, and a view across pieces
        shows them joined.
        """
        payload = os.urandom(50000)
        expected = _expected(payload, RFC_KEY)
        assembler = self.assemblerClass(len(payload), RFC_KEY)
        held = []
        offset = 0
        for size in (10, 3, 5000, 1, 1, 20000, 7, 24978):
            assembler.feed(payload[offset : offset + size])
            held.append((offset, assembler.view(offset, offset + size)))
            offset += size
            held.append((0, assembler.view(0, offset)))
        self.assertEqual(offset, len(payload))
        self.assertEqual(assembler.take(), expected)
        for start, view in held:
            self.assertEqual(view.tobytes(), expected[start : start + len(view)])

    def test_zeroLength(self) -> None:
        """
        An empty payload is complete at once, masked or not.
        """
        for key in (None, RFC_KEY):
            assembler = self.assemblerClass(0, key)
            self.assertEqual(assembler.feed(b""), 0)
            self.assertEqual(assembler.view(0, 0).tobytes(), b"")
            self.assertEqual(assembler.take(), b"")
            self.assertRaises(ValueError, self.assemblerClass(0, key).feed, b"x")

    def test_negativeLength(self) -> None:
        """
        A negative length raises L{ValueError}; a non-integer one L{TypeError}.
        """
        self.assertRaises(ValueError, self.assemblerClass, -1)
        self.assertRaises(ValueError, self.assemblerClass, -1, RFC_KEY)
        for bad in (1.5, "3", None, b"3"):
            self.assertRaises(TypeError, self.assemblerClass, bad)

    def test_keyTypes(self) -> None:
        """
        Any 4-octet C-contiguous buffer is a key.
        """
        for key in (bytearray(RFC_KEY), memoryview(b"x" + RFC_KEY)[1:], array.array("B", RFC_KEY)):
            assembler = self.assemblerClass(5, key)
            assembler.feed(RFC_MASKED_HELLO)
            self.assertEqual(assembler.take(), b"Hello")

    def test_badKey(self) -> None:
        """
        A key that is not 4 octets raises L{ValueError}; not a buffer, L{TypeError}.
        """
        for key in (b"", b"abc", b"abcde", bytes(8)):
            self.assertRaises(ValueError, self.assemblerClass, 4, key)
        for badKey in ("abcd", 1234, memoryview(b"abcdefgh")[::2]):
            self.assertRaises(TypeError, self.assemblerClass, 4, badKey)

    def test_overfeed(self) -> None:
        """
        More octets than are missing raise L{ValueError} and change nothing.
        """
        assembler = self.assemblerClass(4, RFC_KEY)
        self.assertRaises(ValueError, assembler.feed, b"\0" * 5)
        self.assertEqual(assembler.feed(b"\0\0"), 2)
        self.assertRaises(ValueError, assembler.feed, b"\0\0\0")
        self.assertRaises(ValueError, assembler.take)
        self.assertEqual(assembler.feed(b"\0\0"), 0)
        self.assertRaises(ValueError, assembler.feed, b"\0")
        self.assertEqual(assembler.feed(b""), 0)
        self.assertEqual(assembler.take(), RFC_KEY)

    def test_takeEarly(self) -> None:
        """
        Taking an incomplete payload raises L{ValueError}; it can be finished.
        """
        assembler = self.assemblerClass(3)
        self.assertRaises(ValueError, assembler.take)
        assembler.feed(b"ab")
        self.assertRaises(ValueError, assembler.take)
        assembler.feed(b"c")
        self.assertEqual(assembler.take(), b"abc")

    def test_emptyAfterTake(self) -> None:
        """
        After L{take} the assembler is empty: nothing to feed, view or take.
        """
        assembler = self.assemblerClass(3, RFC_KEY)
        assembler.feed(b"abc")
        assembler.take()
        self.assertRaises(ValueError, assembler.take)
        self.assertEqual(assembler.feed(b""), 0)
        self.assertRaises(ValueError, assembler.feed, b"a")
        self.assertEqual(assembler.view(0, 0).tobytes(), b"")
        self.assertRaises(ValueError, assembler.view, 0, 1)

    def test_dataTypes(self) -> None:
        """
        Pieces may be any C-contiguous buffer, taken by octet.
        """
        payload = bytes(range(40))
        expected = _expected(payload, RFC_KEY)
        words = array.array("H")
        words.frombytes(payload[10:20])
        pieces: list[Buffer] = [
            bytearray(payload[:3]),
            memoryview(b"x" + payload[3:10])[1:],
            words,
            memoryview(payload[20:32]).cast("B", (3, 4)),
            memoryview(payload[32:]).toreadonly(),
        ]
        self.assertEqual(self.assemble(pieces, RFC_KEY), expected)
        self.assertEqual(self.assemble(pieces, None), payload)

    def test_notBuffer(self) -> None:
        """
        A piece without the buffer protocol, or not C-contiguous, raises L{TypeError}.
        """
        for key in (None, RFC_KEY):
            assembler = self.assemblerClass(8, key)
            self.assertRaises(TypeError, assembler.feed, "text")
            self.assertRaises(TypeError, assembler.feed, None)
            self.assertRaises(TypeError, assembler.feed, memoryview(b"abcdefgh")[::2])
            self.assertEqual(assembler.feed(b"abcdefgh"), 0)

    def test_doesNotModifyInput(self) -> None:
        """
        A mutable piece is left untouched and its buffer is released.
        """
        for key in (None, RFC_KEY):
            data = bytearray(b"mutable!")
            assembler = self.assemblerClass(8, key)
            self.assertRaises(ValueError, self.assemblerClass(7, key).feed, data)
            assembler.feed(data)
            self.assertEqual(data, bytearray(b"mutable!"))
            data.extend(b"resizable")

    def test_viewIsReadOnly(self) -> None:
        """
        A view is read-only, is not the payload object, and is no buffer
        export of the assembler itself.
        """
        assembler = self.assemblerClass(4)
        assembler.feed(b"ab")
        view = assembler.view(0, 2)
        self.assertTrue(view.readonly)
        self.assertRaises(TypeError, view.__setitem__, 0, 0x41)
        self.assertNotIsInstance(view.obj, bytes)
        self.assertRaises(TypeError, memoryview, assembler)

    def test_viewBounds(self) -> None:
        """
        A view must lie within the octets fed so far.
        """
        assembler = self.assemblerClass(10)
        assembler.feed(b"abcd")
        self.assertEqual(assembler.view(1, 3).tobytes(), b"bc")
        self.assertEqual(assembler.view(4, 4).tobytes(), b"")
        for start, stop in ((-1, 2), (0, 5), (3, 2), (0, 10), (5, 5)):
            self.assertRaises(ValueError, assembler.view, start, stop)
        for bad in (None, 1.0, "1"):
            self.assertRaises(TypeError, assembler.view, bad, 2)
            self.assertRaises(TypeError, assembler.view, 0, bad)

    def test_viewOutlivesTake(self) -> None:
        """
        A view keeps its contents after later pieces, L{take}, and after the
        assembler and the payload are gone.
        """
        payload = os.urandom(1000)
        expected = _expected(payload, RFC_KEY)
        assembler = self.assemblerClass(1000, RFC_KEY)
        assembler.feed(payload[:600])
        early = assembler.view(100, 600)
        assembler.feed(payload[600:])
        late = assembler.view(0, 1000)
        taken = assembler.take()
        self.assertEqual(taken, expected)
        del assembler, taken
        gc.collect()
        noise = [os.urandom(1000) for _ in range(50)]
        self.assertEqual(early.tobytes(), expected[100:600])
        self.assertEqual(late.tobytes(), expected)
        self.assertEqual(len(noise), 50)

    def test_positionalOnly(self) -> None:
        """
        Arguments are positional, and the wrong number raises L{TypeError}.
        """
        factory: Callable[..., _Assembler] = self.assemblerClass
        self.assertRaises(TypeError, factory, length=3)
        self.assertRaises(TypeError, factory, 3, key=None)
        self.assertRaises(TypeError, factory)
        self.assertRaises(TypeError, factory, 3, None, None)
        assembler: Callable[..., object] = self.assemblerClass(3).feed
        self.assertRaises(TypeError, assembler, data=b"abc")

    @mixinSettings
    @given(payload=st.binary(max_size=300), key=keys, cuts=cutLists)
    def test_arbitraryPieces(self, payload: bytes, key: Optional[bytes], cuts: list[int]) -> None:
        """
        Any payload, key and split gives exactly the unmasked payload.
        """
        self.assertEqual(self.assemble(_pieces(payload, cuts), key), _expected(payload, key))

    @mixinSettings
    @given(payload=st.binary(max_size=300), key=keys, cuts=cutLists)
    def test_arbitraryMemoryviewPieces(
        self, payload: bytes, key: Optional[bytes], cuts: list[int]
    ) -> None:
        """
        Memoryview slices of a bytearray, at any offsets, work like bytes.
        """
        buffer = bytearray(b"?" + payload)
        view = memoryview(buffer)[1:]
        bounds = [0, *sorted(min(cut, len(payload)) for cut in cuts), len(payload)]
        pieces = [view[start:end] for start, end in itertools.pairwise(bounds)]
        self.assertEqual(self.assemble(pieces, key), _expected(payload, key))


class FrameAssemblerPythonTests(_AssemblerMixin, SynchronousTestCase):
    """
    Tests for L{FrameAssemblerPython}, the pure-Python RFC 6455 section 5.3
    payload assembler.
    """

    def setUp(self) -> None:
        """
        Test the pure-Python implementation.
        """
        self.assemblerClass = FrameAssemblerPython


class FrameAssemblerSpeedupsTests(_AssemblerMixin, SynchronousTestCase):
    """
    Tests for L{txws._speedups.FrameAssembler}, the C RFC 6455 section 5.3
    payload assembler.

    These fail (they do not skip) when the extension was not built, unless
    C{TXWS_NO_EXTENSIONS} is set.
    """

    def setUp(self) -> None:
        """
        Find the C extension, or fail (or skip if it was disabled on purpose).
        """
        self.assemblerClass = requireSpeedups(self).FrameAssembler

    def test_viewExposesAssemblerNotPayload(self) -> None:
        """
        A view's underlying object is the assembler, so the payload bytes
        object is never reachable before L{take}.
        """
        assembler = self.assemblerClass(4)
        assembler.feed(b"ab")
        self.assertIs(assembler.view(0, 2).obj, assembler)

    def test_capacityDoubles(self) -> None:
        """
        The C buffer grows to twice its size, or to what a piece needs if
        more, capped at the announced length.
        """
        assembler = self.assemblerClass(1000)
        self.assertEqual(assembler.capacity, 0)
        steps = [
            (10, 10),
            (1, 20),
            (9, 20),
            (1, 40),
            (30, 80),
            (100, 160),
            (200, 351),
            (300, 702),
            (300, 1000),
            (49, 1000),
        ]
        fed = 0
        for size, capacity in steps:
            assembler.feed(b"x" * size)
            fed += size
            self.assertEqual((fed, assembler.capacity), (fed, capacity))
        self.assertEqual(assembler.take(), b"x" * 1000)
        self.assertEqual(assembler.capacity, 0)

    def test_notSubclassable(self) -> None:
        """
        The C type is final, like the stub says.
        """
        cls = self.assemblerClass
        self.assertRaises(TypeError, type, "Sub", (cls,), {})


Operation = Union[tuple[str, int], tuple[str, int, int], tuple[str]]

operations = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.integers(min_value=0, max_value=40)),
        st.tuples(st.just("view"), st.integers(-2, 60), st.integers(-2, 60)),
        st.tuples(st.just("take")),
    ),
    max_size=12,
)


class FrameAssemblerAgreementTests(SynchronousTestCase):
    """
    The C and Python assemblers (RFC 6455 sections 5.2 and 5.3) behave
    identically under any sequence of calls; these fail when the extension
    did not build.
    """

    def setUp(self) -> None:
        """
        Find the C extension, or fail (or skip if it was disabled on purpose).
        """
        self.speedupsClass: AssemblerFactory = requireSpeedups(self).FrameAssembler

    @staticmethod
    def applyCalls(
        assembler: _Assembler, source: bytes, calls: Sequence[Operation]
    ) -> list[object]:
        """
        Apply C{calls} to C{assembler}, feeding consecutive slices of C{source}.

        @return: each call's result, or the type of the exception it raised.
        """
        outcomes: list[object] = []
        offset = 0
        for call in calls:
            try:
                if call[0] == "feed":
                    size = call[1]  # type: ignore[misc]
                    outcomes.append(assembler.feed(source[offset : offset + size]))
                    offset += size
                elif call[0] == "view":
                    start, stop = call[1], call[2]  # type: ignore[misc]
                    outcomes.append(assembler.view(start, stop).tobytes())
                else:
                    outcomes.append(assembler.take())
            except (TypeError, ValueError) as error:
                outcomes.append(type(error))
        return outcomes

    @given(
        length=st.integers(min_value=0, max_value=50),
        key=keys,
        source=st.binary(min_size=100, max_size=100),
        calls=operations,
    )
    def test_sameOutcomes(
        self, length: int, key: Optional[bytes], source: bytes, calls: list[Operation]
    ) -> None:
        """
        Every call returns the same value, or raises the same exception type.
        """
        self.assertEqual(
            self.applyCalls(self.speedupsClass(length, key), source, calls),
            self.applyCalls(FrameAssemblerPython(length, key), source, calls),
        )

    @staticmethod
    def grow(
        case: SynchronousTestCase,
        assembler: _Assembler,
        payload: bytes,
        key: Optional[bytes],
        sizes: Sequence[int],
        keepViews: Sequence[bool],
    ) -> list[object]:
        """
        Feed C{payload} in pieces of C{sizes} (each capped at what is
        missing; a last piece brings what remains), checking after each
        piece the view of everything so far and the capacity, and keeping
        some pieces' views alive while later pieces arrive.

        @return: what every call returned, the payload taken, then the kept
            views' contents.
        """
        expected = _expected(payload, key)
        outcomes: list[object] = []
        kept: list[memoryview] = []
        offset = 0
        for index, size in enumerate(sizes):
            if offset == len(payload):
                break
            piece = payload[offset : offset + size]
            outcomes.append(assembler.feed(piece))
            pieceView = assembler.view(offset, offset + len(piece))
            offset += len(piece)
            _assertCapacityFollowsFed(case, assembler, offset)
            outcomes.append(pieceView.tobytes())
            case.assertEqual(assembler.view(0, offset).tobytes(), expected[:offset])
            if index < len(keepViews) and keepViews[index]:
                kept.append(pieceView)
        outcomes.append(assembler.feed(payload[offset:]))
        taken = assembler.take()
        case.assertEqual(taken, expected)
        outcomes.append(taken)
        outcomes.append(assembler.capacity)
        outcomes.extend(view.tobytes() for view in kept)
        return outcomes

    @settings(max_examples=60, deadline=None)
    @given(
        size=st.integers(min_value=0, max_value=60000),
        key=keys,
        sizes=st.lists(pieceSizes, max_size=30),
        keepViews=st.lists(st.booleans(), max_size=30),
    )
    def test_sameGrowth(
        self, size: int, key: Optional[bytes], sizes: list[int], keepViews: list[bool]
    ) -> None:
        """
        Payloads up to 60,000 octets fed in any split (one-octet pieces,
        small ones, ones around the Python assembler's C{SMALL_PIECE}, large
        ones, the whole length at once), with views kept alive while both
        buffers grow, give the same results from C and Python, each holding
        no more than about twice what it was fed.
        """
        payload = random.Random(size).randbytes(size)
        self.assertEqual(
            self.grow(self, self.speedupsClass(size, key), payload, key, sizes, keepViews),
            self.grow(self, FrameAssemblerPython(size, key), payload, key, sizes, keepViews),
        )

    def test_sameGrowthExactAndOctets(self) -> None:
        """
        The two extremes of L{test_sameGrowth}, always run: 100,000 octets
        fed whole, and 5,000 fed one at a time.
        """
        for size, sizes in ((100000, [100000]), (5000, [1] * 5000)):
            for key in (None, RFC_KEY):
                payload = random.Random(size).randbytes(size)
                self.assertEqual(
                    self.grow(self, self.speedupsClass(size, key), payload, key, sizes, [True]),
                    self.grow(self, FrameAssemblerPython(size, key), payload, key, sizes, [True]),
                )


class FrameAssemblerSelectionTests(SynchronousTestCase):
    """
    Tests for how L{txws._mask} picks its RFC 6455 section 5.3 assembler.
    """

    def test_usesSpeedupsWhenBuilt(self) -> None:
        """
        Without C{TXWS_NO_EXTENSIONS}, a built extension provides L{FrameAssembler}.
        """
        if os.environ.get("TXWS_NO_EXTENSIONS"):
            raise SkipTest("TXWS_NO_EXTENSIONS is set")
        self.assertIs(FrameAssembler, requireSpeedups(self).FrameAssembler)

    def test_selectionConsistent(self) -> None:
        """
        L{FrameAssembler} is the Python class exactly when the switch says so.
        """
        self.assertEqual(FrameAssembler is FrameAssemblerPython, not _mask.HAVE_SPEEDUPS)

    def test_environmentForcesFallback(self) -> None:
        """
        Importing with C{TXWS_NO_EXTENSIONS=1} selects L{FrameAssemblerPython}.
        """
        script = (
            "from txws import _mask; a = _mask.FrameAssembler(2, b'abcd'); a.feed(b'\\0\\0');"
            " print(_mask.FrameAssembler is _mask.FrameAssemblerPython, a.take() == b'ab')"
        )
        env = dict(os.environ, TXWS_NO_EXTENSIONS="1")
        output = subprocess.run(
            [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
        ).stdout
        self.assertEqual(output.split(), ["True", "True"])
