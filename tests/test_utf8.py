"""
Tests for L{txws._utf8}: incremental, fail-fast UTF-8 validation of text
messages (RFC 6455 sections 5.6 and 8.1; RFC 3629 section 4).

Every implementation (the C extension and the pure-Python fallback) runs the
same tests.  Two references decide what is right, neither of them the code
under test:

  - L{_referenceState}: a prefix is valid while some completion of it (at
    most 3 more bytes, each first continuation byte drawn from one
    representative per range) decodes with C{bytes.decode}; the set of
    completions that work identifies the state;
  - L{_decoderFailPosition}: CPython's incremental decoder fed byte by byte,
    plus the one rule it lacks (C{ED A0..BF} is a surrogate).
"""

from __future__ import annotations

import array
import codecs
import functools
import itertools
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import requireSpeedups
from tests.typedtrial import SkipTest, SynchronousTestCase
from txws import _mask, _utf8
from txws._utf8 import (
    UTF8_ACCEPT,
    UTF8_INVALID,
    Utf8Validator,
    isValidUtf8,
    isValidUtf8Python,
    utf8Validate,
    utf8ValidatePython,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

    _MixinBase = SynchronousTestCase
else:
    _MixinBase = object

ValidateFunction = Callable[["Buffer", int], int]
CheckFunction = Callable[["Buffer"], bool]




# -- Test vectors (after the Autobahn testsuite's cases 6.x) -------------------

VALID: list[bytes] = [
    b"",
    b"Hello, world",
    "κόσμε".encode(),
    "Hello-µ@ßöäüàá-UTF-8!!".encode(),
    "Grüße aus Köln: naïve café, 1 € ≈ 1.08 $".encode(),
    "日本語のテキスト".encode(),
    "\U0001f600 emoji \U0001f680".encode(),
    # First and last code point of every length, and the edges of the
    # ranges the RFC 3629 table singles out.
    b"\x00",
    b"\x7f",
    b"\xc2\x80",
    b"\xdf\xbf",
    b"\xe0\xa0\x80",
    b"\xe0\xbf\xbf",
    b"\xe1\x80\x80",
    b"\xec\xbf\xbf",
    b"\xed\x80\x80",
    b"\xed\x9f\xbf",  # U+D7FF, the last code point before the surrogates
    b"\xee\x80\x80",  # U+E000, the first after them
    b"\xef\xbf\xbd",  # U+FFFD
    b"\xef\xbf\xbe",  # U+FFFE, a noncharacter but valid UTF-8
    b"\xef\xbf\xbf",  # U+FFFF
    b"\xef\xb7\x90",  # U+FDD0, a noncharacter but valid UTF-8
    b"\xef\xbb\xbf",  # a byte order mark
    b"\xf0\x90\x80\x80",  # U+10000
    b"\xf0\xbf\xbf\xbf",
    b"\xf1\x80\x80\x80",
    b"\xf3\xbf\xbf\xbf",
    b"\xf4\x80\x80\x80",
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF, the last code point
    b"\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
]

INVALID: list[bytes] = [
    # 6.3: "κόσμε" followed by an encoded surrogate and "edited".
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    # Lone and runs of continuation bytes.
    b"\x80",
    b"\xbf",
    b"\x80\xbf",
    b"\x80\xbf\x80",
    b"\x80\xbf\x80\xbf",
    bytes(range(0x80, 0xC0)),
    b"a\x80",
    b"\xc2\x80\x80",
    b"\xe1\x80\x80\x80",
    b"\xf1\x80\x80\x80\x80",
    # 5- and 6-byte forms of the original UTF-8 and lone lead bytes of them.
    b"\xf8\x88\x80\x80\x80",
    b"\xfc\x84\x80\x80\x80\x80",
    b"\xf7\xbf\xbf\xbf",
    b"\xfb\xbf\xbf\xbf\xbf",
    b"\xfd\xbf\xbf\xbf\xbf\xbf",
    # Overlong forms: of "/", the largest ones, and of NUL.
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xf8\x80\x80\x80\xaf",
    b"\xfc\x80\x80\x80\x80\xaf",
    b"\xc1\xbf",
    b"\xe0\x9f\xbf",
    b"\xf0\x8f\xbf\xbf",
    b"\xc0\x80",
    b"\xe0\x80\x80",
    b"\xf0\x80\x80\x80",
    # UTF-16 surrogates, single and paired.
    b"\xed\xa0\x80",
    b"\xed\xad\xbf",
    b"\xed\xae\x80",
    b"\xed\xaf\xbf",
    b"\xed\xb0\x80",
    b"\xed\xbe\x80",
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80",
    b"\xed\xaf\xbf\xed\xbf\xbf",
    # Above U+10FFFF.
    b"\xf4\x90\x80\x80",
    b"\xf4\xbf\xbf\xbf",
    b"\xf5\x80\x80\x80",
    # Bytes that never appear in UTF-8.
    b"\xfe",
    b"\xff",
    b"\xfe\xfe\xff\xff",
    b"valid text, then \xff",
    # A lead byte followed by something other than a continuation.
    b"\xc2\x41",
    b"\xe1\x80\x41",
    b"\xf0\x90\x80\x41",
    b"\xe1\xc0\x80",
    b"\xf1\x80\xc0\x80",
    b"\xc2\xc2\x80",
    # Truncated at the end.
    b"\xc2",
    b"\xdf",
    b"\xe0\xa0",
    b"\xe1\x80",
    b"\xef\xbf",
    b"\xed\x9f",
    b"\xf0\x90\x80",
    b"\xf1\x80\x80",
    b"\xf4\x8f\xbf",
    "κόσμε".encode()[:-1],
    b"1 \xe2\x82",
    # Fail fast after two bytes.
    b"\xed\xa0",
    b"\xf4\x90",
    b"\xe0\x80",
    b"\xf0\x80",
]

# Every lead byte alone, and followed by a space (Autobahn's "lonely start
# characters"), and every byte on its own.
INVALID += [bytes([lead]) for lead in range(0xC0, 0x100)]
INVALID += [bytes([lead, 0x20]) for lead in range(0xC0, 0x100)]
SINGLE_BYTES = [bytes([octet]) for octet in range(0x100)]

VECTORS = VALID + INVALID + SINGLE_BYTES

# A valid, non-ASCII text much longer than one C{_speedups} stream split.
LONG_TEXT = ("Grüße aus Köln: naïve café, 1 € ≈ 1.08 $ \U0001f600 日本語 " * 3000 + "€").encode()


def _decodes(data: bytes) -> bool:
    """
    @param data: a complete text.
    @return: whether C{bytes.decode} accepts it as UTF-8.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# Completions that make any completable prefix valid: the first byte still
# to come has one of five allowed ranges (80..BF, A0..BF, 80..9F, 90..BF,
# 80..8F), each holding 80, 90 or A0; later ones may always be 80.
_COMPLETIONS = [b""] + [
    bytes([first]) + b"\x80" * extra for extra in range(3) for first in (0x80, 0x90, 0xA0)
]

# The completions that work after a prefix ending in each state.
_SIGNATURES = {
    frozenset([b""]): 0,
    frozenset([b"\x80", b"\x90", b"\xa0"]): 1,
    frozenset([b"\x80\x80", b"\x90\x80", b"\xa0\x80"]): 2,
    frozenset([b"\x80\x80\x80", b"\x90\x80\x80", b"\xa0\x80\x80"]): 3,
    frozenset([b"\xa0\x80"]): 4,
    frozenset([b"\x80\x80", b"\x90\x80"]): 5,
    frozenset([b"\x90\x80\x80", b"\xa0\x80\x80"]): 6,
    frozenset([b"\x80\x80\x80"]): 7,
}

# A prefix that leaves the validator in each state, checked by a test.
STATE_PREFIXES = (b"", b"\xc2", b"\xe1", b"\xf1", b"\xe0", b"\xed", b"\xf0", b"\xf4")


def _referenceState(prefix: bytes) -> int:
    """
    Compute the validation state after C{prefix} from complete decodes only.

    @param prefix: the bytes of a text seen so far.
    @return: the state (see L{txws._utf8}), or L{UTF8_INVALID} if no
        completion of C{prefix} is valid UTF-8.
    """
    works = frozenset(c for c in _COMPLETIONS if _decodes(prefix + c))
    if not works:
        return UTF8_INVALID
    return _SIGNATURES[works]


def _failPosition(data: bytes) -> Optional[int]:
    """
    @param data: a text.
    @return: the length of the shortest prefix of C{data} that cannot begin
        valid UTF-8, or L{None} if every prefix can.
    """
    if _referenceState(data) != UTF8_INVALID:
        return None
    low, high = 0, len(data)  # data[:low] can begin UTF-8; data[:high] cannot
    while high - low > 1:
        middle = (low + high) // 2
        if _referenceState(data[:middle]) == UTF8_INVALID:
            high = middle
        else:
            low = middle
    return high


def _decoderFailPosition(data: bytes) -> Optional[int]:
    """
    The same as L{_failPosition}, from CPython's incremental decoder fed one
    byte at a time plus the rule it lacks (C{ED A0..BF} is a surrogate).

    @param data: a text.
    @return: the length of the shortest prefix of C{data} that cannot begin
        valid UTF-8, or L{None} if every prefix can.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    for index in range(len(data)):
        try:
            decoder.decode(data[index : index + 1])
        except UnicodeDecodeError:
            return index + 1
        held = decoder.getstate()[0]
        if len(held) >= 2 and held[0] == 0xED and held[1] >= 0xA0:
            return index + 1
    return None


@functools.cache
def _twoByteStates() -> dict[bytes, int]:
    """
    @return: the reference state after every 2-byte string, from state 0.
    """
    return {bytes([a, b]): _referenceState(bytes([a, b])) for a in range(256) for b in range(256)}


def _pieces(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """
    @param data: a text.
    @param cuts: offsets to split it at (any order, clamped to its length).
    @return: the pieces between the cuts, empty ones included.
    """
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def _splits(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """
    @param data: a text.
    @return: C{(data[:i], data[i:])} for every offset C{i}.
    """
    for index in range(len(data) + 1):
        yield data[:index], data[index:]


# Bytes that exercise every DFA class, valid sequences, and ASCII runs.
_ALPHABET = [
    b"a",
    b"0123456789abcdef",
    *[bytes([octet]) for octet in (0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2)],
    *[bytes([octet]) for octet in (0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xF0, 0xF1, 0xF4, 0xF5, 0xFF)],
    "é".encode(),
    "€".encode(),
    "\U0001f600".encode(),
    "\U0010ffff".encode(),
]

utf8ish = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=60).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from(_ALPHABET), max_size=40).map(b"".join),
)
"""
Byte strings that are often valid UTF-8 and often fail late.
"""

cutLists = st.lists(st.integers(min_value=0, max_value=400), max_size=8)

# The mixins' property tests run once per implementation, each from its own
# test case class.
mixinSettings = settings(suppress_health_check=[HealthCheck.differing_executors])


class ReferenceTests(SynchronousTestCase):
    """
    The test references agree with each other and with the vectors (RFC 3629
    section 4, as RFC 6455 section 8.1 requires).
    """

    def test_vectorsClassified(self) -> None:
        """
        Every valid vector decodes and every invalid one does not.
        """
        for data in VALID:
            self.assertTrue(_decodes(data), data)
        for data in INVALID:
            self.assertFalse(_decodes(data), data)

    def test_referencesAgreeOnVectors(self) -> None:
        """
        The completion-based and decoder-based fail positions agree on every vector.
        """
        for data in VECTORS:
            self.assertEqual(_failPosition(data), _decoderFailPosition(data), data)

    @given(data=utf8ish)
    def test_referencesAgree(self, data: bytes) -> None:
        """
        The completion-based and decoder-based fail positions agree on any bytes.
        """
        self.assertEqual(_failPosition(data), _decoderFailPosition(data))

    def test_statePrefixes(self) -> None:
        """
        Each of the representative prefixes stands for the state of its index.
        """
        self.assertEqual([_referenceState(prefix) for prefix in STATE_PREFIXES], list(range(8)))

    def test_twoByteFailFast(self) -> None:
        """
        The prefixes the brief names are invalid after two bytes, not three.
        """
        for prefix in (b"\xed\xa0", b"\xf4\x90", b"\xe0\x80", b"\xf0\x80", b"\xc0\x80"):
            self.assertEqual(_failPosition(prefix + b"\x80"), 2 if prefix[0] != 0xC0 else 1)


class _Utf8ValidateMixin(_MixinBase):
    """
    Behaviour every C{utf8Validate} implementation shares (RFC 6455 section
    8.1); subclasses set L{validate} in C{setUp}.
    """

    validate: ValidateFunction

    def assertStatesAlong(self, data: bytes, start: int = UTF8_ACCEPT) -> None:
        """
        Assert that feeding C{data} one byte at a time passes through the
        reference state after every byte, and that feeding it whole and
        split at every offset ends in the reference state.

        @param data: a text.
        @param start: the state to start from.
        """
        prefix = STATE_PREFIXES[start]
        state = start
        for index in range(len(data)):
            state = self.validate(data[index : index + 1], state)
            self.assertEqual(state, _referenceState(prefix + data[: index + 1]), (data, index))
        self.assertEqual(self.validate(data, start), state, data)
        for first, second in _splits(data):
            self.assertEqual(self.validate(second, self.validate(first, start)), state, data)

    def test_validVectors(self) -> None:
        """
        Valid texts end at a character boundary, whole, byte by byte and split anywhere.
        """
        for data in VALID:
            self.assertEqual(self.validate(data, UTF8_ACCEPT), UTF8_ACCEPT, data)
            self.assertStatesAlong(data)

    def test_invalidVectors(self) -> None:
        """
        Invalid texts never end at a boundary, and fail at the reference position.
        """
        for data in INVALID:
            self.assertNotEqual(self.validate(data, UTF8_ACCEPT), UTF8_ACCEPT, data)
            self.assertStatesAlong(data)

    def test_singleBytesFromEveryState(self) -> None:
        """
        Every byte from every state leads to the reference state.
        """
        for state, prefix in enumerate(STATE_PREFIXES):
            for data in SINGLE_BYTES:
                self.assertEqual(
                    self.validate(data, state), _referenceState(prefix + data), (state, data)
                )

    def test_everyTwoBytes(self) -> None:
        """
        All 65536 two-byte texts lead from state 0 to the reference state.
        """
        for data, expected in _twoByteStates().items():
            if self.validate(data, UTF8_ACCEPT) != expected:
                self.fail(f"{data!r}: {self.validate(data, UTF8_ACCEPT)} != {expected}")

    def test_failFastAfterTwoBytes(self) -> None:
        """
        Surrogate, overlong and too-large sequences are rejected at their second byte.
        """
        for data in (b"\xed\xa0", b"\xed\xbf", b"\xf4\x90", b"\xe0\x80", b"\xe0\x9f", b"\xf0\x80"):
            self.assertEqual(self.validate(data, UTF8_ACCEPT), UTF8_INVALID, data)
            self.assertEqual(
                self.validate(data[1:], self.validate(data[:1], UTF8_ACCEPT)), UTF8_INVALID, data
            )
        for data in (b"\xed", b"\xf4", b"\xe0", b"\xf0"):
            self.assertGreater(self.validate(data, UTF8_ACCEPT), UTF8_ACCEPT, data)

    def test_emptyKeepsState(self) -> None:
        """
        An empty piece leaves every state as it is.
        """
        for state in range(-1, 8):
            self.assertEqual(self.validate(b"", state), state)

    def test_invalidIsSticky(self) -> None:
        """
        Once invalid, always invalid, whatever follows.
        """
        for data in (b"", b"abc", b"\x80", "é".encode()):
            self.assertEqual(self.validate(data, UTF8_INVALID), UTF8_INVALID)

    def test_defaultState(self) -> None:
        """
        Without a state the piece is validated from a character boundary.
        """
        validate: Callable[..., int] = self.validate
        self.assertEqual(validate(b"\xe2\x82"), 1)
        self.assertEqual(validate(b"\x82"), UTF8_INVALID)

    def test_badState(self) -> None:
        """
        A state outside -1..7 raises L{ValueError}; a non-integer L{TypeError}.
        """
        for state in (-2, 8, 255, 2**70, -(2**70)):
            self.assertRaises(ValueError, self.validate, b"abc", state)
        for bad in ("0", 1.0, None, b"\x00"):
            self.assertRaises(TypeError, self.validate, b"abc", bad)
        self.assertEqual(self.validate(b"\x80", True), UTF8_ACCEPT)

    def test_notBuffer(self) -> None:
        """
        Data without the buffer protocol, or not C-contiguous, raises L{TypeError}.
        """
        for state in (UTF8_ACCEPT, 1, UTF8_INVALID):
            self.assertRaises(TypeError, self.validate, "text", state)
            self.assertRaises(TypeError, self.validate, None, state)
            self.assertRaises(TypeError, self.validate, memoryview(b"abcdefgh")[::2], state)

    def test_bufferTypes(self) -> None:
        """
        Any C-contiguous buffer is validated by its octets.
        """
        text = "naïve café ≈ €".encode()
        for data in (bytearray(text), memoryview(text), memoryview(b"x" + text)[1:]):
            self.assertEqual(self.validate(data, UTF8_ACCEPT), UTF8_ACCEPT)
            self.assertEqual(self.validate(data[:-1], UTF8_ACCEPT), 1)
        words = array.array("H")
        words.frombytes("éé".encode())
        self.assertEqual(self.validate(words, UTF8_ACCEPT), UTF8_ACCEPT)
        self.assertEqual(self.validate(memoryview(b"\xc3\xa9\xc3\xa9").cast("B", (2, 2)), 0), 0)
        self.assertEqual(self.validate(bytearray(b"\xed\xa0"), UTF8_ACCEPT), UTF8_INVALID)

    def test_releasesBuffer(self) -> None:
        """
        The buffer export of the data is released, also when it is invalid.
        """
        for data in (bytearray(b"ascii"), bytearray(b"\xc3\xa9"), bytearray(b"\xff"), bytearray()):
            self.validate(data, UTF8_ACCEPT)
            self.validate(data, UTF8_INVALID)
            data.extend(b"resizable")
        view = memoryview(b"\xe2\x82\xac")
        self.validate(view, 3)
        view.release()

    def test_asciiRunsAroundOneByte(self) -> None:
        """
        A byte after or inside ASCII runs of every length up to 70 is checked.
        """
        for length in range(71):
            for position in range(0, length + 1, 3):
                for inserted, expected in ((b"\xff", UTF8_INVALID), (b"\xc3\xa9", 0), (b"\xe2", 2)):
                    data = b"a" * position + inserted + b"b" * (length - position)
                    if inserted == b"\xe2" and position < length:
                        expected = UTF8_INVALID
                    self.assertEqual(self.validate(data, UTF8_ACCEPT), expected, (length, position))

    def test_longText(self) -> None:
        """
        A long valid text is valid; one bad byte anywhere in it, notably near
        where the C code splits it into streams, makes it invalid.
        """
        size = len(LONG_TEXT)
        self.assertEqual(self.validate(LONG_TEXT, UTF8_ACCEPT), UTF8_ACCEPT)
        self.assertEqual(self.validate(LONG_TEXT[:-1], UTF8_ACCEPT), 1)
        self.assertEqual(self.validate(LONG_TEXT[-1:], 1), UTF8_ACCEPT)
        positions = {0, 1, size // 2, size - 1}
        for quarter in (1, 2, 3):
            positions.update(range(size * quarter // 4 - 6, size * quarter // 4 + 6))
        for position in sorted(positions):
            for bad in (0xFF, 0x80, 0xC0):
                data = bytearray(LONG_TEXT)
                data[position] = bad
                self.assertEqual(
                    self.validate(data, UTF8_ACCEPT), _referenceLongState(data), (position, bad)
                )

    def test_longTextWithLeadBytes(self) -> None:
        """
        A lead byte cut off by the next character, near where the C code
        splits a text into streams, makes the text invalid.
        """
        base = "é".encode() * 1000
        size = len(base)
        for quarter in (1, 2, 3):
            for position in range(size * quarter // 4 - 8, size * quarter // 4 + 8):
                for lead in (b"\xc3", b"\xe2", b"\xf0", b"a\xc3", b"a\xe2\x82"):
                    data = bytearray(base)
                    data[position : position + len(lead)] = lead
                    self.assertEqual(
                        self.validate(data, UTF8_ACCEPT),
                        _referenceLongState(data),
                        (position, lead),
                    )

    def test_longAsciiWithOneBadByte(self) -> None:
        """
        One bad byte at any offset of a long, mostly ASCII text is found.
        """
        base = "é".encode() + b"a" * 4000
        for position in range(2, len(base), 7):
            for bad in (b"\xff", b"\x80", b"\xc3", b"\xed\xa0"):
                data = bytearray(base)
                data[position : position + len(bad)] = bad
                self.assertEqual(self.validate(data, UTF8_ACCEPT), UTF8_INVALID, (position, bad))

    def test_longContinuationRuns(self) -> None:
        """
        Runs of continuation bytes across a stream split are rejected.
        """
        for offset in range(8):
            data = bytearray(b"\xc3\xa9" * 400)
            middle = len(data) // 2 - 4 + offset
            data[middle : middle + 5] = b"\x80" * 5
            self.assertEqual(self.validate(data, UTF8_ACCEPT), UTF8_INVALID, offset)
        fourByte = "\U0001f600".encode() * 300
        for offset in range(4):
            self.assertEqual(
                self.validate(fourByte[offset:], UTF8_ACCEPT), _referenceState(fourByte[offset:])
            )

    def test_longTextEveryStartState(self) -> None:
        """
        A long text is validated correctly after any pending sequence.
        """
        for state, prefix in enumerate(STATE_PREFIXES):
            for tail in (b"\x80", b"\x90", b"\xa0", b"a"):
                data = tail + b"\x80\x80" + LONG_TEXT
                self.assertEqual(self.validate(data, state), _referenceLongState(prefix + data))

    @mixinSettings
    @given(data=utf8ish, state=st.integers(min_value=0, max_value=7))
    def test_matchesReference(self, data: bytes, state: int) -> None:
        """
        For any bytes and start state the result is the reference state.
        """
        self.assertEqual(self.validate(data, state), _referenceState(STATE_PREFIXES[state] + data))

    @mixinSettings
    @given(data=utf8ish, cuts=cutLists)
    def test_piecesMatchWhole(self, data: bytes, cuts: list[int]) -> None:
        """
        Validating any split of a text piece by piece ends where validating it whole does.
        """
        state = UTF8_ACCEPT
        for piece in _pieces(data, cuts):
            state = self.validate(piece, state)
        self.assertEqual(state, self.validate(data, UTF8_ACCEPT))
        self.assertEqual(state == UTF8_ACCEPT, _decodes(data))

    @settings(
        max_examples=40,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
    )
    @given(
        head=st.binary(max_size=600),
        middle=utf8ish,
        tail=st.binary(max_size=600),
        ascii=st.booleans(),
    )
    def test_longRandom(self, head: bytes, middle: bytes, tail: bytes, ascii: bool) -> None:
        """
        Long texts (taking the C code's multi-stream path) match the reference.
        """
        filler = b"x" * 300 if ascii else "é€".encode() * 60
        data = filler + middle + filler + head.decode("latin-1").encode() + tail
        self.assertEqual(self.validate(data, UTF8_ACCEPT), _referenceLongState(data))


def _referenceLongState(data: bytes | bytearray) -> int:
    """
    L{_referenceState} for long texts: decode everything but the last few
    bytes strictly, then the reference on what is left.

    @param data: a text.
    @return: its validation state.
    """
    data = bytes(data)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(data[:-8])
    except UnicodeDecodeError:
        return UTF8_INVALID
    held = decoder.getstate()[0]
    return _referenceState(held + data[-8:] if len(data) >= 8 else data)


class Utf8ValidatePythonTests(_Utf8ValidateMixin, SynchronousTestCase):
    """
    Tests for L{utf8ValidatePython}, the pure-Python incremental validator
    (RFC 6455 section 8.1).
    """

    def setUp(self) -> None:
        """
        Test the pure-Python implementation.
        """
        self.validate = utf8ValidatePython


class Utf8ValidateSpeedupsTests(_Utf8ValidateMixin, SynchronousTestCase):
    """
    Tests for L{txws._speedups.utf8Validate}, the C incremental validator
    (RFC 6455 section 8.1).

    These fail (they do not skip) when the extension was not built, unless
    C{TXWS_NO_EXTENSIONS} is set.
    """

    def setUp(self) -> None:
        """
        Find the C extension, or fail (or skip if it was disabled on purpose).
        """
        self.validate = requireSpeedups(self).utf8Validate

    def test_positionalOnly(self) -> None:
        """
        Keyword arguments and the wrong number of arguments raise L{TypeError}.
        """
        validate: Callable[..., int] = self.validate
        self.assertRaises(TypeError, validate, data=b"abc")
        self.assertRaises(TypeError, validate, b"abc", state=0)
        self.assertRaises(TypeError, validate)
        self.assertRaises(TypeError, validate, b"abc", 0, 0)

    def test_hugeInput(self) -> None:
        """
        Several MiB (validated without the GIL) give the same answers.
        """
        data = LONG_TEXT * 20
        self.assertEqual(self.validate(data, UTF8_ACCEPT), UTF8_ACCEPT)
        self.assertEqual(self.validate(data + b"\xed\xa0", UTF8_ACCEPT), UTF8_INVALID)
        self.assertEqual(self.validate(data + b"\xf0\x90", UTF8_ACCEPT), 2)


class _IsValidUtf8Mixin(_MixinBase):
    """
    Behaviour every C{isValidUtf8} implementation shares (RFC 6455 section
    8.1); subclasses set L{check} in C{setUp}.
    """

    check: CheckFunction

    def test_vectors(self) -> None:
        """
        Valid vectors are accepted and invalid ones rejected.
        """
        for data in VALID:
            self.assertIs(self.check(data), True, data)
        for data in INVALID:
            self.assertIs(self.check(data), False, data)
        for data in SINGLE_BYTES:
            self.assertIs(self.check(data), data[0] < 0x80, data)

    def test_longText(self) -> None:
        """
        A long text is valid, and invalid with a truncated or bad last character.
        """
        self.assertTrue(self.check(LONG_TEXT))
        self.assertFalse(self.check(LONG_TEXT[:-1]))
        self.assertFalse(self.check(LONG_TEXT + b"\xed\xa0\x80"))

    def test_bufferTypes(self) -> None:
        """
        Any C-contiguous buffer is checked by its octets.
        """
        text = "κόσμε".encode()
        self.assertTrue(self.check(bytearray(text)))
        self.assertTrue(self.check(memoryview(b"x" + text)[1:]))
        self.assertFalse(self.check(memoryview(text)[1:]))
        self.assertFalse(self.check(bytearray(b"\xc0\x80")))

    def test_notBuffer(self) -> None:
        """
        Data without the buffer protocol, or not C-contiguous, raises L{TypeError}.
        """
        self.assertRaises(TypeError, self.check, "text")
        self.assertRaises(TypeError, self.check, None)
        self.assertRaises(TypeError, self.check, memoryview(b"abcdefgh")[::2])

    @mixinSettings
    @given(data=utf8ish)
    def test_matchesDecode(self, data: bytes) -> None:
        """
        For any bytes the answer is whether C{bytes.decode} succeeds.
        """
        self.assertEqual(self.check(data), _decodes(data))


class IsValidUtf8PythonTests(_IsValidUtf8Mixin, SynchronousTestCase):
    """
    Tests for L{isValidUtf8Python}, the pure-Python whole-text check (RFC
    6455 section 8.1).
    """

    def setUp(self) -> None:
        """
        Test the pure-Python implementation.
        """
        self.check = isValidUtf8Python


class IsValidUtf8SpeedupsTests(_IsValidUtf8Mixin, SynchronousTestCase):
    """
    Tests for L{txws._speedups.isValidUtf8}, the C whole-text check (RFC 6455
    section 8.1); they fail when the extension did not build.
    """

    def setUp(self) -> None:
        """
        Find the C extension, or fail (or skip if it was disabled on purpose).
        """
        self.check = requireSpeedups(self).isValidUtf8


class _Utf8ValidatorMixin(_MixinBase):
    """
    Behaviour of L{Utf8Validator} over each C{utf8Validate} implementation
    (RFC 6455 section 8.1: fail as soon as invalid UTF-8 is seen); subclasses
    patch L{txws._utf8.utf8Validate} in C{setUp}.
    """

    def assertFailsAt(self, pieces: Sequence[bytes], data: bytes) -> None:
        """
        Assert that a fresh validator fed C{pieces} (the last one final)
        reports C{False} first for the piece that makes the prefix invalid,
        and that the final answer is whether C{data} decodes.

        @param pieces: the pieces, which join to C{data}.
        @param data: the whole text.
        """
        failAt = _failPosition(data)
        validator = Utf8Validator()
        seen = 0
        results = []
        for index, piece in enumerate(pieces):
            seen += len(piece)
            result = validator.feed(piece, index == len(pieces) - 1)
            results.append(result)
            if failAt is not None and seen >= failAt:
                self.assertFalse(result, (pieces, index))
            elif index < len(pieces) - 1:
                self.assertTrue(result, (pieces, index))
        self.assertEqual(results[-1], _decodes(data), pieces)

    def test_vectorsWhole(self) -> None:
        """
        Fed whole and final, each vector is accepted exactly when it decodes.
        """
        for data in VECTORS:
            self.assertEqual(Utf8Validator().feed(data, True), _decodes(data), data)

    def test_vectorsByteByByte(self) -> None:
        """
        Fed one byte at a time, each vector fails at the first byte that rules it out.
        """
        for data in VECTORS:
            if data:
                self.assertFailsAt([data[i : i + 1] for i in range(len(data))], data)

    def test_vectorsEverySplit(self) -> None:
        """
        Split in two at every offset, each vector fails in the right piece.
        """
        for data in VECTORS:
            for first, second in _splits(data):
                self.assertFailsAt([first, second], data)

    def test_twoByteFailFast(self) -> None:
        """
        The second byte of a surrogate, overlong or too-large sequence fails.
        """
        for data in (b"\xed\xa0", b"\xf4\x90", b"\xe0\x80", b"\xf0\x80"):
            validator = Utf8Validator()
            self.assertTrue(validator.feed(data[:1]))
            self.assertFalse(validator.feed(data[1:]))

    def test_finalInsideSequence(self) -> None:
        """
        A message that ends inside a sequence is invalid only once final.
        """
        validator = Utf8Validator()
        self.assertTrue(validator.feed(b"1 \xe2\x82"))
        self.assertTrue(validator.feed(b""))
        self.assertFalse(validator.feed(b"", True))
        completed = Utf8Validator()
        self.assertTrue(completed.feed(b"1 \xe2\x82"))
        self.assertTrue(completed.feed(b"\xac", True))

    def test_emptyMessage(self) -> None:
        """
        An empty message is valid.
        """
        self.assertTrue(Utf8Validator().feed(b"", True))

    def test_failureIsSticky(self) -> None:
        """
        After reporting C{False}, the validator keeps reporting C{False}.
        """
        validator = Utf8Validator()
        self.assertFalse(validator.feed(b"\xff"))
        self.assertFalse(validator.feed(b"valid"))
        self.assertFalse(validator.feed(b"", True))

    def test_memoryviewPieces(self) -> None:
        """
        Pieces may be read-only memoryviews, as L{txws._mask.FrameAssembler.view} returns.
        """
        text = memoryview("Grüße".encode()).toreadonly()
        validator = Utf8Validator()
        self.assertTrue(validator.feed(text[:3]))
        self.assertTrue(validator.feed(text[3:], True))

    def test_slots(self) -> None:
        """
        A validator has no instance dictionary: one lives per text message.
        """
        validator = Utf8Validator()
        self.assertFalse(hasattr(validator, "__dict__"))
        self.assertRaises(AttributeError, setattr, validator, "extra", 1)

    @mixinSettings
    @given(data=utf8ish, cuts=cutLists)
    def test_arbitraryPieces(self, data: bytes, cuts: list[int]) -> None:
        """
        For any split of any bytes, the piece that makes the prefix invalid is
        the first reported invalid, and the final answer is whether it decodes.
        """
        self.assertFailsAt(_pieces(data, cuts), data)


class Utf8ValidatorPythonTests(_Utf8ValidatorMixin, SynchronousTestCase):
    """
    Tests for L{Utf8Validator} over the pure-Python validator (RFC 6455
    section 8.1).
    """

    def setUp(self) -> None:
        """
        Make L{Utf8Validator} use the pure-Python implementation.
        """
        self.patch(_utf8, "utf8Validate", utf8ValidatePython)


class Utf8ValidatorSpeedupsTests(_Utf8ValidatorMixin, SynchronousTestCase):
    """
    Tests for L{Utf8Validator} over the C validator (RFC 6455 section 8.1);
    they fail when the extension did not build.
    """

    def setUp(self) -> None:
        """
        Make L{Utf8Validator} use the C implementation.
        """
        self.patch(_utf8, "utf8Validate", requireSpeedups(self).utf8Validate)


class Utf8AgreementTests(SynchronousTestCase):
    """
    The C and Python validators (RFC 6455 section 8.1) return the same state
    for every input; these fail when the extension did not build.
    """

    def setUp(self) -> None:
        """
        Find the C extension, or fail (or skip if it was disabled on purpose).
        """
        speedups = requireSpeedups(self)
        self.validate: ValidateFunction = speedups.utf8Validate
        self.check: CheckFunction = speedups.isValidUtf8

    def test_everyTwoBytesFromEveryState(self) -> None:
        """
        All two-byte texts from all 9 states give the same state.
        """
        for state in range(-1, 8):
            for first in range(256):
                for second in range(0, 256, 1 if state <= 0 else 7):
                    data = bytes([first, second])
                    if self.validate(data, state) != utf8ValidatePython(data, state):
                        self.fail(f"{data!r} from {state}")

    @given(data=utf8ish, state=st.integers(min_value=-1, max_value=7))
    def test_sameState(self, data: bytes, state: int) -> None:
        """
        Any bytes from any state give the same state, and the same whole-text answer.
        """
        self.assertEqual(self.validate(data, state), utf8ValidatePython(data, state))
        self.assertEqual(self.check(data), isValidUtf8Python(data))


class Utf8SelectionTests(SynchronousTestCase):
    """
    Tests for how L{txws._utf8} picks its implementation (RFC 6455 section
    8.1 validation), through the switch in L{txws._mask}.
    """

    def test_usesSpeedupsWhenBuilt(self) -> None:
        """
        Without C{TXWS_NO_EXTENSIONS}, a built extension is what the module uses.
        """
        if os.environ.get("TXWS_NO_EXTENSIONS"):
            raise SkipTest("TXWS_NO_EXTENSIONS is set")
        speedups = requireSpeedups(self)
        self.assertIs(_mask.SPEEDUPS, speedups)
        self.assertIs(utf8Validate, speedups.utf8Validate)
        self.assertIs(isValidUtf8, speedups.isValidUtf8)

    def test_selectionConsistent(self) -> None:
        """
        The module uses the Python fallbacks exactly when the switch says so.
        """
        self.assertEqual(utf8Validate is utf8ValidatePython, not _mask.HAVE_SPEEDUPS)
        self.assertEqual(isValidUtf8 is isValidUtf8Python, not _mask.HAVE_SPEEDUPS)

    def test_environmentForcesFallback(self) -> None:
        """
        Importing with C{TXWS_NO_EXTENSIONS=1} selects the Python validators.
        """
        script = (
            "from txws import _utf8, _mask; print(_mask.HAVE_SPEEDUPS,"
            " _utf8.utf8Validate is _utf8.utf8ValidatePython,"
            " _utf8.isValidUtf8 is _utf8.isValidUtf8Python,"
            " _utf8.Utf8Validator().feed(b'\\xed\\xa0'))"
        )
        env = dict(os.environ, TXWS_NO_EXTENSIONS="1")
        output = subprocess.run(
            [sys.executable, "-c", script], env=env, check=True, capture_output=True, text=True
        ).stdout
        self.assertEqual(output.split(), ["False", "True", "True", "False"])
