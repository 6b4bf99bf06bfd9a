"""
Decompression bombs against L{txws.deflate.Decompressor} (RFC 7692 section
8.1 leaves the limit to the implementation; RFC 6455 section 10.4 asks for
one).  Each test reproduces the pattern of an advisory published in 2026
against another WebSocket library:

  - a limit checked only on compressed bytes (Autobahn, GHSA-hxp9-w8x3-p566:
    ~22 compressed bytes reach C{onMessage} as 4096 bytes under a 128-byte
    limit; Centrifugo #1162: 64 KB of zeros under a compressed-size limit);
  - output bounded but not drained, truncating instead of refusing
    (C{websockets} #1715: a message one or two bytes over C{max_size} came
    out silently truncated to C{max_size});
  - the exact boundary (websocketpp #1191: C{limit} must pass, C{limit + 1}
    must fail, without growing the output past the limit);
  - the same bomb spread over many fragments;
  - a 1 GiB bomb, refused with bounded memory.

C{tracemalloc} sees zlib's own buffers: CPython's zlib module allocates
them with C{PyMem_RawMalloc}, which it traces.
"""

from __future__ import annotations

import tracemalloc
import zlib
from collections.abc import Callable

from tests.typedtrial import SynchronousTestCase
from txws.deflate import DEFAULT_STEP, Compressor, Decompressor, DeflateError
from txws.frames import CloseCode

KiB = 1024
MiB = 1024 * KiB

#: What an inflater holds besides the output: its 32 KiB window and ~7 KiB
#: of state, with slack for the Python objects of the test.
INFLATER = 48 * KiB

#: Transient memory of one bounded zlib call beyond the output it keeps:
#: CPython assembles the output (at most one step) from blocks, so for an
#: instant both exist, and the unconsumed input tail is copied (at most
#: 16 KiB, twice while the old one is replaced).
TRANSIENT = DEFAULT_STEP + 32 * KiB


def compressed(payload: bytes, windowBits: int = 15) -> bytes:
    """
    A message as a peer compresses it (the trailer removed).
    """
    return Compressor(windowBits).compress(payload)


def gibibyteOfZeros() -> bytes:
    """
    1 GiB of zeros compressed to ~1 MiB, built in milliseconds: after the
    first MiB, zlib's output for each further MiB of zeros repeats.
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    zeros = bytes(MiB)
    first = c.compress(zeros) + c.flush(zlib.Z_SYNC_FLUSH)
    second = c.compress(zeros) + c.flush(zlib.Z_SYNC_FLUSH)
    third = c.compress(zeros) + c.flush(zlib.Z_SYNC_FLUSH)
    assert second == third
    return (first + second * 1023)[:-4]


def peakWhile(f: Callable[[], object]) -> int:
    """
    The peak of traced memory above what was allocated before, while C{f}
    runs.
    """
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        try:
            f()
        finally:
            peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before


class CompressedSizeOnlyTests(SynchronousTestCase):
    """
    The limit applies to the inflated size, not to the compressed bytes
    (the Autobahn and Centrifugo advisories).
    """

    def test_autobahnAdvisory(self) -> None:
        """
        4096 bytes in ~22 compressed bytes under a 128-byte limit: 1009.
        """
        data = compressed(b"A" * 4096)
        self.assertLess(len(data), 40)
        e = self.assertRaises(DeflateError, Decompressor(maxSize=128).decompress, data)
        self.assertEqual(e.code, CloseCode.MESSAGE_TOO_BIG)

    def test_zerosUnderCompressedLimit(self) -> None:
        """
        100 KiB of zeros, ~100 compressed bytes, against a 64 KiB limit:
        1009 before more than the limit plus one step is allocated.
        """
        data = compressed(bytes(100 * KiB))
        self.assertLess(len(data), 200)
        limit = 64 * KiB
        d = Decompressor(maxSize=limit)
        produced: list[int] = []

        def run() -> None:
            for chunk in d.stream(data, True):
                produced.append(len(chunk))

        peak = [0]

        def measured() -> None:
            e = self.assertRaises(DeflateError, run)
            self.assertEqual(e.code, 1009)

        peak[0] = peakWhile(measured)
        self.assertLessEqual(sum(produced), limit)
        self.assertLess(peak[0], limit + TRANSIENT + INFLATER)


class DrainingTests(SynchronousTestCase):
    """
    Output is bounded per zlib call and everything zlib holds back is
    drained: a message within the limit comes out whole, byte for byte,
    one byte over is refused (the C{websockets} and websocketpp advisories).
    """

    limit = 64 * KiB

    def messages(self) -> list[bytes]:
        # Zeros stop zlib mid-match when the output bound is reached; the
        # repeated byte is the websockets reproduction; mixed text has
        # literals and matches of every length.
        text = (b"The quick brown fox jumps over the lazy dog. " * 2000)[: self.limit]
        return [bytes(self.limit), b"\x01" * self.limit, text]

    def test_exactlyTheLimit(self) -> None:
        """
        A message of exactly the limit inflates whole, in one frame or many,
        for steps that divide it or not.
        """
        for message in self.messages():
            data = compressed(message)
            for step in (1000, 4096, self.limit - 1, self.limit, DEFAULT_STEP * 4):
                d = Decompressor(maxSize=self.limit, step=step)
                self.assertEqual(d.decompress(data), message)
                chunks = [x for i in range(0, len(data), 7) for x in d.feed(data[i : i + 7], False)]
                chunks += d.feed(b"", True)
                self.assertEqual(b"".join(chunks), message)
                self.assertTrue(all(len(x) <= step for x in chunks))

    def test_oneByteOver(self) -> None:
        """
        One byte over the limit: 1009, never a truncated message.
        """
        for message in self.messages():
            data = compressed(message + message[-1:])
            for step in (1000, self.limit, DEFAULT_STEP * 4):
                e = self.assertRaises(
                    DeflateError, Decompressor(maxSize=self.limit, step=step).decompress, data
                )
                self.assertEqual(e.code, 1009)
                d = Decompressor(maxSize=self.limit, step=step)
                e = self.assertRaises(DeflateError, d.feed, data, True)
                self.assertEqual(e.code, 1009)

    def test_twoBytesOver(self) -> None:
        """
        The C{websockets} reproduction: C{b"\\x01" * (limit + 1)} and
        C{+ 2} are refused.
        """
        for extra in (1, 2):
            data = compressed(b"\x01" * (self.limit + extra))
            e = self.assertRaises(
                DeflateError, Decompressor(maxSize=self.limit).decompress, data
            )
            self.assertEqual(e.code, 1009)

    def test_sizesAroundTheStep(self) -> None:
        """
        Without a limit, messages just under, at and over multiples of the
        step come out whole.
        """
        step = 4096
        for size in (step - 1, step, step + 1, 2 * step, 3 * step + 5):
            message = bytes(size)
            d = Decompressor(step=step)
            self.assertEqual(d.decompress(compressed(message)), message)

    def test_limitCountsTheWholeMessage(self) -> None:
        """
        The limit is on the message, not the frame: with context takeover
        and across messages, each message starts from zero.
        """
        c = Compressor()
        d = Decompressor(maxSize=1000)
        for _ in range(5):
            self.assertEqual(d.decompress(c.compress(b"x" * 1000)), b"x" * 1000)
        e = self.assertRaises(DeflateError, d.decompress, c.compress(b"x" * 1001))
        self.assertEqual(e.code, 1009)


class FragmentedBombTests(SynchronousTestCase):
    """
    The same bombs spread over many fragments.
    """

    def test_oneByteFrames(self) -> None:
        """
        100 KiB of zeros in one-byte frames under a 64 KiB limit: 1009, and
        no more than the limit plus one byte is ever produced.
        """
        data = compressed(bytes(100 * KiB))
        limit = 64 * KiB
        d = Decompressor(maxSize=limit)
        produced = 0
        with self.assertRaises(DeflateError) as cm:
            for i in range(len(data)):
                for chunk in d.feed(data[i : i + 1], False):
                    produced += len(chunk)
            d.feed(b"", True)
        self.assertEqual(cm.exception.code, 1009)
        self.assertLessEqual(produced, limit)

    def test_eachFrameUnderTheLimit(self) -> None:
        """
        Frames that each inflate to less than the limit, a message that
        does not: 1009.
        """
        c = Compressor()
        pieces = [bytes(40 * KiB), bytes(40 * KiB)]
        frames = [c.compressFragment(pieces[0], False), c.compressFragment(pieces[1], True)]
        d = Decompressor(maxSize=64 * KiB)
        self.assertEqual(sum(map(len, d.feed(frames[0], False))), 40 * KiB)
        e = self.assertRaises(DeflateError, d.feed, frames[1], True)
        self.assertEqual(e.code, 1009)

    def test_manyMediumFrames(self) -> None:
        """
        The 1 GiB bomb in 4 KiB frames under a 1 MiB limit: 1009 within the
        first few frames.
        """
        data = gibibyteOfZeros()
        d = Decompressor(maxSize=MiB)
        fed = 0

        def run() -> None:
            nonlocal fed
            for i in range(0, len(data), 4 * KiB):
                fed += 1
                d.feed(data[i : i + 4 * KiB], False)

        e = self.assertRaises(DeflateError, run)
        self.assertEqual(e.code, 1009)
        self.assertLess(fed, 4)


class GibibyteBombTests(SynchronousTestCase):
    """
    A 1 GiB bomb (~1 MiB compressed) against the 1 MiB default limit of
    C{websockets}: refused, with memory bounded by the limit plus one step
    plus the inflater.
    """

    def test_refusedWithBoundedMemory(self) -> None:
        """
        Traced memory while inflating stays under the 1 MiB limit plus
        L{TRANSIENT} (96 KiB) plus L{INFLATER} (48 KiB), one frame or
        streamed (measured: 1 MiB + 136 KiB).
        """
        data = gibibyteOfZeros()
        self.assertLess(len(data), 1100 * KiB)
        bound = MiB + TRANSIENT + INFLATER

        def whole() -> None:
            e = self.assertRaises(DeflateError, Decompressor(maxSize=MiB).decompress, data)
            self.assertEqual(e.code, 1009)

        self.assertLess(peakWhile(whole), bound)

        def streamed() -> None:
            d = Decompressor(maxSize=MiB)
            e = self.assertRaises(DeflateError, lambda: [len(x) for x in d.stream(data, True)])
            self.assertEqual(e.code, 1009)

        self.assertLess(peakWhile(streamed), bound)

    def test_smallLimitSmallMemory(self) -> None:
        """
        With a 16 KiB limit the same bomb costs under 16 KiB plus one call
        of 16 KiB (the step is bounded by the limit) plus the tails and the
        inflater.
        """
        data = gibibyteOfZeros()

        def run() -> None:
            self.assertRaises(DeflateError, Decompressor(maxSize=16 * KiB).decompress, data)

        self.assertLess(peakWhile(run), 16 * KiB + 16 * KiB + 32 * KiB + INFLATER)
