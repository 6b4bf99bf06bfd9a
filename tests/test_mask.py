"""
Tests for L{txws._mask}: WebSocket payload masking (RFC 6455 section 5.3).
"""

from __future__ import annotations

import array
import importlib
import itertools
import os
import random
import subprocess
import sys
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import requireSpeedups
from tests.typedtrial import SkipTest, SynchronousTestCase
from txws import _mask
from txws._mask import HAVE_SPEEDUPS, mask, maskPython, rotateKey

if TYPE_CHECKING:
    from typing_extensions import Buffer

    class TestCase(SynchronousTestCase):
        """
        Trial's assertions are untyped; give mypy --strict their signatures.
        """

        def assertEqual(self, first: object, second: object, msg: object = None) -> None: ...
        def assertIs(self, first: object, second: object, msg: object = None) -> None: ...
        def assertIsNone(self, obj: object, msg: object = None) -> None: ...
        def assertTrue(self, condition: object, msg: object = None) -> None: ...
        def assertRaises(  # type: ignore[override]  # narrower: no context-manager form
            self,
            exception: type[BaseException],
            f: Callable[..., object],
            /,
            *args: object,
            **kwargs: object,
        ) -> None: ...

    _MixinBase = TestCase
else:
    TestCase = SynchronousTestCase
    _MixinBase = object

MaskFunction = Callable[["Buffer", "Buffer"], bytes]

# RFC 6455 section 5.7: a masked text frame carrying "Hello".
RFC_KEY = bytes.fromhex("37fa213d")
RFC_MASKED_HELLO = bytes.fromhex("7f9f4d5158")

# Around the C loop widths (8 and 32), the GIL-release threshold (64 KiB),
# and a multi-megabyte payload that is not a multiple of 4.
LARGE_SIZES = (255, 256, 257, 4096, 65535, 65536, 65537, 1024 * 1024 + 3, 3 * 1024 * 1024 - 1)

keys = st.binary(min_size=4, max_size=4)


def _importSpeedups() -> ModuleType | None:
    """
    Import the C extension directly, bypassing C{TXWS_NO_EXTENSIONS}.

    @return: the module, or L{None} if it was not built.
    """
    try:
        return importlib.import_module("txws._speedups")
    except ImportError:
        return None


_speedups = _importSpeedups()


def _requireSpeedups(case: SynchronousTestCase) -> MaskFunction:
    """
    Return the C implementation, failing C{case} if it is missing.

    A missing extension is a failure, not a skip, because CI has a compiler;
    only an explicit C{TXWS_NO_EXTENSIONS} turns it into a skip.

    @param case: the test that needs the extension.
    @return: L{txws._speedups.mask}.
    @raise SkipTest: if the extension is missing and C{TXWS_NO_EXTENSIONS}
        is set.
    """
    speedupsMask: MaskFunction = requireSpeedups(case).mask
    return speedupsMask


def _naiveMask(data: bytes | bytearray, key: bytes) -> bytes:
    """
    Mask C{data} with C{key} exactly as RFC 6455 section 5.3 spells it out.

    @param data: the payload.
    @param key: the 4-octet masking key.
    @return: the masked payload.
    """
    return bytes(octet ^ key[i % 4] for i, octet in enumerate(data))


class _BothImplementationsMixin(_MixinBase):
    """
    Behaviour every masking implementation must share (RFC 6455 section 5.3);
    subclasses set L{maskFunction} in C{setUp}.
    """

    maskFunction: MaskFunction

    def test_rfcExample(self) -> None:
        """
        Unmasking the RFC 6455 section 5.7 "Hello" frame payload yields "Hello".
        """
        self.assertEqual(self.maskFunction(RFC_MASKED_HELLO, RFC_KEY), b"Hello")
        self.assertEqual(self.maskFunction(b"Hello", RFC_KEY), RFC_MASKED_HELLO)

    def test_matchesSpecification(self) -> None:
        """
        Every length 0..70 matches the octet-by-octet definition in section 5.3.
        """
        rng = random.Random(5)
        for size in range(71):
            data = rng.randbytes(size)
            key = rng.randbytes(4)
            self.assertEqual(self.maskFunction(data, key), _naiveMask(data, key))

    def test_largeMatchesSpecification(self) -> None:
        """
        Payloads around the 8/32-octet strides and 64 KiB match the definition.
        """
        rng = random.Random(6)
        for size in (255, 256, 257, 65535, 65536, 65537):
            data = rng.randbytes(size)
            key = rng.randbytes(4)
            self.assertEqual(self.maskFunction(data, key), _naiveMask(data, key))

    def test_empty(self) -> None:
        """
        An empty payload masks to empty bytes.
        """
        self.assertEqual(self.maskFunction(b"", RFC_KEY), b"")
        self.assertEqual(self.maskFunction(bytearray(), RFC_KEY), b"")

    def test_zeroKeyIsIdentity(self) -> None:
        """
        A key of four zero octets leaves the payload unchanged.
        """
        self.assertEqual(self.maskFunction(b"payload!", b"\0\0\0\0"), b"payload!")

    def test_leadingZerosPreserved(self) -> None:
        """
        Octets that mask to zero at either end of the payload are kept.
        """
        data = RFC_KEY * 3
        self.assertEqual(self.maskFunction(data, RFC_KEY), b"\0" * 12)
        self.assertEqual(self.maskFunction(b"\0" * 9, RFC_KEY), RFC_KEY * 2 + RFC_KEY[:1])

    def test_returnsBytes(self) -> None:
        """
        The result is always exact L{bytes}, whatever the input type.
        """
        for data in (b"abc", bytearray(b"abc"), memoryview(b"abc")):
            self.assertIs(type(self.maskFunction(data, RFC_KEY)), bytes)

    def test_doesNotModifyInput(self) -> None:
        """
        A mutable input buffer is left untouched.
        """
        data = bytearray(b"mutable payload")
        self.maskFunction(data, RFC_KEY)
        self.assertEqual(data, bytearray(b"mutable payload"))

    def test_bufferInputs(self) -> None:
        """
        Bytes-like keys and data of any C-contiguous layout are masked by octet.
        """
        data = bytes(range(40))
        expected = _naiveMask(data, RFC_KEY)
        self.assertEqual(self.maskFunction(bytearray(data), bytearray(RFC_KEY)), expected)
        self.assertEqual(self.maskFunction(memoryview(data), memoryview(RFC_KEY)), expected)
        self.assertEqual(
            self.maskFunction(memoryview(data).cast("B", (2, 4, 5)), RFC_KEY), expected
        )
        words = array.array("H")
        words.frombytes(data)
        self.assertEqual(self.maskFunction(words, array.array("B", RFC_KEY)), expected)

    def test_offsetSlice(self) -> None:
        """
        A memoryview slice starting at an odd, unaligned offset is masked correctly.
        """
        data = bytes(range(256)) * 4
        for start in (1, 3, 5, 7):
            view = memoryview(data)[start : start + 301]
            self.assertEqual(self.maskFunction(view, RFC_KEY), _naiveMask(bytes(view), RFC_KEY))

    def test_badKeyLength(self) -> None:
        """
        A key that is not exactly 4 octets raises L{ValueError}.
        """
        for key in (b"", b"abc", b"abcde", bytes(8)):
            self.assertRaises(ValueError, self.maskFunction, b"data", key)
            self.assertRaises(ValueError, self.maskFunction, b"", key)

    def test_notBuffer(self) -> None:
        """
        Data or key without the buffer protocol raises L{TypeError}.
        """
        self.assertRaises(TypeError, self.maskFunction, "text", RFC_KEY)
        self.assertRaises(TypeError, self.maskFunction, b"data", "abcd")
        self.assertRaises(TypeError, self.maskFunction, None, RFC_KEY)

    def test_nonContiguous(self) -> None:
        """
        A strided (non-C-contiguous) memoryview raises L{TypeError}.
        """
        self.assertRaises(TypeError, self.maskFunction, memoryview(b"abcdefgh")[::2], RFC_KEY)
        self.assertRaises(TypeError, self.maskFunction, b"data", memoryview(b"abcdefgh")[::2])

    def test_releasesBuffersOnError(self) -> None:
        """
        Every buffer export is released when masking fails.
        """
        data = bytearray(b"data")
        shortKey = bytearray(b"abc")
        self.assertRaises(ValueError, self.maskFunction, data, shortKey)
        self.assertRaises(TypeError, self.maskFunction, data, "abcd")
        data.extend(b"resizable")
        shortKey.extend(b"resizable")
        # memoryview.release() raises BufferError while anything still
        # holds a buffer exported from the view.
        for badKey in (True, False):
            dataView = memoryview(b"payload")
            keyView = memoryview(b"12345678")
            stridedView = memoryview(b"abcdefgh")[::2]
            if badKey:
                self.assertRaises(ValueError, self.maskFunction, dataView, keyView)
                self.assertRaises(TypeError, self.maskFunction, dataView, stridedView)
            else:
                self.assertRaises(TypeError, self.maskFunction, stridedView, keyView[:4])
            for view in (dataView, keyView, stridedView):
                view.release()

    @settings(suppress_health_check=[HealthCheck.differing_executors])
    @given(data=st.binary(max_size=300), key=keys)
    def test_involution(self, data: bytes, key: bytes) -> None:
        """
        Masking twice with the same key gives back the original payload.
        """
        self.assertEqual(self.maskFunction(self.maskFunction(data, key), key), data)


class MaskPythonTests(_BothImplementationsMixin, TestCase):
    """
    Tests for L{maskPython}, the pure-Python RFC 6455 section 5.3 fallback.
    """

    def setUp(self) -> None:
        """
        Test the pure-Python implementation.
        """
        self.maskFunction = maskPython


class SpeedupsTests(_BothImplementationsMixin, TestCase):
    """
    Tests for the C implementation of RFC 6455 section 5.3 masking.

    These fail (they do not skip) when the extension was not built, unless
    C{TXWS_NO_EXTENSIONS} is set: the CI machine has a compiler, so a
    missing extension there is a regression.
    """

    def setUp(self) -> None:
        """
        Find the C extension, or fail (or skip if it was disabled on purpose).
        """
        self.maskFunction = _requireSpeedups(self)

    def test_positionalOnly(self) -> None:
        """
        Keyword arguments and the wrong number of arguments raise L{TypeError}.
        """
        speedupsMask: Callable[..., bytes] = self.maskFunction
        self.assertRaises(TypeError, speedupsMask, data=b"data", key=RFC_KEY)
        self.assertRaises(TypeError, speedupsMask, b"data")
        self.assertRaises(TypeError, speedupsMask, b"data", RFC_KEY, RFC_KEY)

    def test_releasesLargeBuffer(self) -> None:
        """
        The buffer export of a large input (masked without the GIL) is released.
        """
        data = bytearray(os.urandom(1024 * 1024))
        self.assertEqual(
            self.maskFunction(data, RFC_KEY),
            _naiveMask(data[:4096], RFC_KEY) + maskPython(data[4096:], RFC_KEY),
        )
        data.extend(b"resizable again")


class SpeedupsAgreementTests(TestCase):
    """
    The C and Python RFC 6455 section 5.3 implementations give identical bytes.

    Like L{SpeedupsTests}, these fail rather than skip when the extension is
    missing and C{TXWS_NO_EXTENSIONS} is not set.
    """

    speedupsMask: MaskFunction

    def setUp(self) -> None:
        """
        Find the C extension, or fail (or skip if it was disabled on purpose).
        """
        self.speedupsMask = _requireSpeedups(self)

    def assertAgree(self, data: Buffer, key: Buffer) -> None:
        """
        Assert that both implementations mask C{data} with C{key} identically.

        @param data: the payload.
        @param key: the 4-octet masking key.
        """
        self.assertEqual(self.speedupsMask(data, key), maskPython(data, key))

    def test_smallLengths(self) -> None:
        """
        Every length 0..70 agrees, with a fresh random key each time.
        """
        rng = random.Random(1)
        for size in range(71):
            self.assertAgree(rng.randbytes(size), rng.randbytes(4))

    def test_largeSizes(self) -> None:
        """
        Large payloads, on both sides of the GIL-release threshold, agree.
        """
        rng = random.Random(2)
        for size in LARGE_SIZES:
            self.assertAgree(rng.randbytes(size), rng.randbytes(4))

    @given(data=st.binary(max_size=2000), key=keys)
    def test_bytes(self, data: bytes, key: bytes) -> None:
        """
        Arbitrary bytes payloads and keys agree.
        """
        self.assertAgree(data, key)

    @given(data=st.binary(max_size=500), key=keys)
    def test_bytearrayAndMemoryview(self, data: bytes, key: bytes) -> None:
        """
        Bytearray and memoryview payloads and keys agree with the bytes result.
        """
        expected = maskPython(data, key)
        self.assertEqual(self.speedupsMask(bytearray(data), bytearray(key)), expected)
        self.assertEqual(self.speedupsMask(memoryview(data), memoryview(key)), expected)

    @given(
        data=st.binary(min_size=0, max_size=600),
        start=st.integers(min_value=0, max_value=600),
        length=st.integers(min_value=0, max_value=600),
        key=keys,
    )
    def test_memoryviewSlices(self, data: bytes, start: int, length: int, key: bytes) -> None:
        """
        Memoryview slices at arbitrary (often odd) offsets agree.
        """
        view = memoryview(bytearray(data))[start : start + length]
        self.assertAgree(view, key)

    @settings(max_examples=20, deadline=None)
    @given(size=st.integers(min_value=65536 - 8, max_value=65536 + 200), key=keys)
    def test_aroundThreshold(self, size: int, key: bytes) -> None:
        """
        Sizes straddling the 64 KiB GIL-release threshold agree.
        """
        self.assertAgree(os.urandom(size), key)


class PublicInterfaceTests(TestCase):
    """
    Tests for how L{txws._mask} picks its RFC 6455 section 5.3 implementation.
    """

    def test_haveSpeedupsConsistent(self) -> None:
        """
        C{HAVE_SPEEDUPS} is true exactly when L{mask} is not the Python fallback.
        """
        self.assertEqual(HAVE_SPEEDUPS, mask is not maskPython)

    def test_usesSpeedupsWhenBuilt(self) -> None:
        """
        Without C{TXWS_NO_EXTENSIONS}, a built extension is what L{mask} uses.
        """
        if os.environ.get("TXWS_NO_EXTENSIONS"):
            raise SkipTest("TXWS_NO_EXTENSIONS is set")
        if _speedups is None:
            self.fail("txws._speedups did not build (set TXWS_NO_EXTENSIONS to accept that)")
        self.assertTrue(HAVE_SPEEDUPS)
        self.assertIs(mask, _speedups.mask)

    def test_loadSpeedupsHonoursEnvironment(self) -> None:
        """
        A non-empty C{TXWS_NO_EXTENSIONS} makes the loader decline the extension.
        """
        self.assertIsNone(_mask._loadSpeedups({"TXWS_NO_EXTENSIONS": "1"}))
        expected = None if _speedups is None else _speedups.mask
        self.assertIs(_mask._loadSpeedups({}), expected)
        self.assertIs(_mask._loadSpeedups({"TXWS_NO_EXTENSIONS": ""}), expected)

    def test_importSpeedupsHonoursEnvironment(self) -> None:
        """
        The one switch every fast path goes through declines the extension
        when C{TXWS_NO_EXTENSIONS} is non-empty.
        """
        self.assertIsNone(_mask._importSpeedups({"TXWS_NO_EXTENSIONS": "1"}))
        self.assertIs(_mask._importSpeedups({}), _speedups)
        self.assertIs(_mask._importSpeedups({"TXWS_NO_EXTENSIONS": ""}), _speedups)

    def test_speedupsModuleConsistent(self) -> None:
        """
        C{SPEEDUPS} is the module in use, and L{mask} comes from it.
        """
        self.assertEqual(HAVE_SPEEDUPS, _mask.SPEEDUPS is not None)
        if _mask.SPEEDUPS is None:
            self.assertIs(mask, maskPython)
        else:
            self.assertIs(_mask.SPEEDUPS, _speedups)
            self.assertIs(mask, _mask.SPEEDUPS.mask)

    def test_environmentForcesFallback(self) -> None:
        """
        Importing with C{TXWS_NO_EXTENSIONS=1} selects L{maskPython}.
        """
        script = (
            "from txws import _mask; print(_mask.HAVE_SPEEDUPS, _mask.mask is _mask.maskPython)"
        )
        env = dict(os.environ, TXWS_NO_EXTENSIONS="1")
        output = subprocess.run(
            [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
        ).stdout
        self.assertEqual(output.split(), ["False", "True"])

    def test_maskExample(self) -> None:
        """
        The selected L{mask} unmasks the RFC 6455 section 5.7 "Hello" example.
        """
        self.assertEqual(mask(RFC_MASKED_HELLO, RFC_KEY), b"Hello")


class RotateKeyTests(TestCase):
    """
    Tests for L{rotateKey}: unmasking one RFC 6455 section 5.3 payload in chunks.
    """

    def test_rotation(self) -> None:
        """
        The key is rotated left by the offset modulo 4.
        """
        self.assertEqual(rotateKey(b"abcd", 0), b"abcd")
        self.assertEqual(rotateKey(b"abcd", 1), b"bcda")
        self.assertEqual(rotateKey(b"abcd", 2), b"cdab")
        self.assertEqual(rotateKey(b"abcd", 3), b"dabc")
        self.assertEqual(rotateKey(b"abcd", 4), b"abcd")
        self.assertEqual(rotateKey(b"abcd", 4 * 10**9 + 3), b"dabc")

    def test_everySplitPoint(self) -> None:
        """
        Unmasking in two chunks equals one-shot unmasking at every split point.
        """
        payload = mask(b"Hello, chunked WebSocket world!", RFC_KEY)
        whole = mask(payload, RFC_KEY)
        for split in range(len(payload) + 1):
            first = mask(payload[:split], rotateKey(RFC_KEY, 0))
            second = mask(payload[split:], rotateKey(RFC_KEY, split))
            self.assertEqual(first + second, whole)

    def test_everyPairOfSplitPoints(self) -> None:
        """
        Unmasking in three chunks equals one-shot unmasking for every pair of splits.
        """
        payload = bytes(range(13))
        whole = maskPython(payload, RFC_KEY)
        for i in range(len(payload) + 1):
            for j in range(i, len(payload) + 1):
                chunks = [(0, payload[:i]), (i, payload[i:j]), (j, payload[j:])]
                result = b"".join(
                    maskPython(chunk, rotateKey(RFC_KEY, offset)) for offset, chunk in chunks
                )
                self.assertEqual(result, whole)

    @given(payload=st.binary(max_size=200), cuts=st.lists(st.integers(0, 200)), key=keys)
    def test_arbitraryChunks(self, payload: bytes, cuts: list[int], key: bytes) -> None:
        """
        Any chunking of any payload unmasks to the one-shot result.
        """
        bounds = [0, *sorted(min(cut, len(payload)) for cut in cuts), len(payload)]
        result = b"".join(
            mask(payload[start:end], rotateKey(key, start))
            for start, end in itertools.pairwise(bounds)
        )
        self.assertEqual(result, mask(payload, key))

    def test_badKeyLength(self) -> None:
        """
        A key that is not exactly 4 octets raises L{ValueError}.
        """
        self.assertRaises(ValueError, rotateKey, b"abc", 1)
        self.assertRaises(ValueError, rotateKey, b"abcde", 1)

    def test_negativeOffset(self) -> None:
        """
        A negative payload offset raises L{ValueError}.
        """
        self.assertRaises(ValueError, rotateKey, b"abcd", -1)
