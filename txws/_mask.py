"""
WebSocket payload masking (RFC 6455 section 5.3) and payload assembly.

Octet C{i} of a masked payload is octet C{i} of the original XOR
C{key[i % 4]}; the same operation unmasks.  Two implementations produce
identical bytes:

  - C{txws._speedups.mask}, a C extension that XORs 8 octets at a time (4x unrolled)
    through a 64-bit word built from the key, writes straight into the
    result L{bytes} (one pass, one allocation) and releases the GIL for
    payloads of 64 KiB or more;
  - L{maskPython}, the pure-Python fallback, which turns the whole payload
    and a repeated key into two integers and XORs those, so the per-octet
    work stays in C even without a compiler.

L{FrameAssembler} builds one frame's payload from the pieces in which it
arrives (a large frame comes in many reads): it unmasks each piece straight
into place with the key rotated by the piece's offset, offers read-only
views of what is filled (to validate text without a copy) and hands the
payload out once complete.  Its memory follows the octets received, never
the length the header announces: a peer announcing 1 MiB and sending 16
bytes costs 16 bytes, not 1 MiB (issue 11, item 3).  The C class grows one
L{bytes} object geometrically (twice its size, capped at the announced
length, resized in place) and hands that object out without a copy; the
fallback, L{FrameAssemblerPython}, keeps large pieces as they came and
gathers small ones, and joins them once.  Both give identical results and
report what they hold as C{capacity}.

L{SPEEDUPS} is the one switch for every C fast path (here and in
L{txws._utf8}): the extension module when importable, else L{None};
L{HAVE_SPEEDUPS} says which.  Setting the environment variable
C{TXWS_NO_EXTENSIONS} to any non-empty value (e.g. C{TXWS_NO_EXTENSIONS=1})
before this module is first imported forces the fallbacks, as it also skips
building the extension in C{setup.py}.

Measured per-call cost (best of 5 C{timeit} runs, random payload and key,
CPython 3.11.7, gcc 12 -O3, AMD EPYC)::

    payload     C extension     pure Python     ratio
    16 B         0.08 us          1.5 us          ~19x
    1 KiB        0.12 us          4.0 us          ~33x
    64 KiB       1.5 us            240 us        ~160x
    1 MiB         29 us            4.4 ms        ~150x

Below ~1 KiB the C cost is mostly call overhead; above it the C path runs
at memory bandwidth, while the fallback pays for int conversion (~4 ns per
octet).  Re-measure with C{timeit} on C{mask} and C{maskPython}.

Assembling a 1 MiB payload (best of 7 runs, same machine), against a list of
C{mask(piece, rotateKey(key, offset))} joined at the end::

    pieces         assembler (+ view per piece)   list + mask + join
    16 x 64 KiB    33-41 us  (39-46 us)           82-91 us
    256 x 4 KiB    43-48 us  (101-105 us)         178-185 us
    unmasked:      37-54 us                       69-143 us (bytes + join)

Growing with the pieces instead of allocating the announced length up front
cost the C class nothing measurable (16 x 64 KiB with a view per piece:
28 us masked, 29-30 us unmasked, before and after; 256 x 4 KiB: 70-76 us
before and after).  C{view} costs ~0.2 us a call (a memoryview).  The
fallback costs what C{maskPython} costs, ~2.0 ms per masked MiB in 64 KiB
pieces as before, and 42-52 us per unmasked MiB (103-136 us before: a
piece that is L{bytes} is kept, not copied).  In a loop that does nothing
else, glibc may trim and regrow its heap around every masked frame of the
fallback (~500 page faults, ~1 ms of system time per MiB) until its
dynamic trim threshold rises; a real server does not show it: a
C{TXWS_NO_EXTENSIONS=1} echo server receiving and echoing 300 masked
1 MiB frames used 2.5-2.8 ms user and 1.5-1.7 ms system time per frame,
against 3.0-3.3 ms and 1.5-1.7 ms before (with the extension, 0.9-1.2 ms
in all, before and after).
"""

from __future__ import annotations

import operator
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = [
    "HAVE_SPEEDUPS",
    "SPEEDUPS",
    "FrameAssembler",
    "FrameAssemblerPython",
    "Speedups",
    "mask",
    "maskPython",
    "rotateKey",
]

_KEY_LENGTH = 4


class _Assembler(Protocol):
    def feed(self, data: Buffer, /) -> int: ...
    def view(self, start: int, stop: int, /) -> memoryview: ...
    def take(self) -> bytes: ...
    @property
    def capacity(self) -> int: ...


class Speedups(Protocol):
    """
    The C extension C{txws._speedups} as this package uses it.  Its stub
    (C{_speedups.pyi}) must satisfy this interface, which mypy checks where
    L{_importSpeedups} returns the module; every use of L{SPEEDUPS} is then
    typed by the stub.
    """

    def mask(self, data: Buffer, key: Buffer, /) -> bytes: ...
    def utf8Validate(self, data: Buffer, state: int = 0, /) -> int: ...
    def isValidUtf8(self, data: Buffer, /) -> bool: ...
    def scanFrames(
        self, data: Buffer, requireMask: bool, maxFramePayload: int, firstByteOk: Buffer, /
    ) -> tuple[list[tuple[bool, int, bytes]], int]: ...
    def encodeFrame(self, firstByte: int, payload: Buffer, key: Buffer | None, /) -> bytes: ...
    @property
    def FrameAssembler(self) -> Callable[[int, Buffer | None], _Assembler]: ...


def maskPython(data: Buffer, key: Buffer, /) -> bytes:
    """
    Mask or unmask a WebSocket payload (RFC 6455 section 5.3) in pure Python.

    Octet C{i} of the result is C{data[i] ^ key[i % 4]}.  This is the
    reference implementation the C extension is tested against, and the one
    L{mask} uses when the extension is unavailable.

    @param data: the payload; any C-contiguous object supporting the buffer
        protocol (L{bytes}, L{bytearray}, L{memoryview}, ...).
    @param key: the 4-octet masking key, as a C-contiguous buffer.
    @return: the masked payload, as new L{bytes} of the same length.
    @raise TypeError: if either argument does not support the buffer
        protocol or is not C-contiguous.
    @raise ValueError: if C{key} is not exactly 4 octets long.
    """
    with memoryview(data) as dataView, memoryview(key) as keyView:
        if not dataView.c_contiguous:
            raise TypeError("mask() data must be a C-contiguous buffer")
        if not keyView.c_contiguous:
            raise TypeError("mask() key must be a C-contiguous buffer")
        if keyView.nbytes != _KEY_LENGTH:
            raise ValueError(
                f"mask() key must be exactly {_KEY_LENGTH} bytes, not {keyView.nbytes}"
            )
        size = dataView.nbytes
        if size == 0:
            return b""
        keyBytes = keyView.tobytes()
        repeated = keyBytes * (size >> 2) + keyBytes[: size & 3]
        # A memoryview has no __bytes__, so int.from_bytes reads its raw
        # octets whatever its item format or shape.
        masked = int.from_bytes(dataView, "little") ^ int.from_bytes(repeated, "little")
        return masked.to_bytes(size, "little")


def _importSpeedups(environ: Mapping[str, str]) -> Speedups | None:
    """
    Import the C extension, unless the environment forbids it.

    This is the one place that decides between C and Python: L{txws._utf8}
    and the rest of this module take their implementations from
    L{SPEEDUPS}.

    @param environ: the process environment (normally L{os.environ}).
    @return: the C{txws._speedups} module, or L{None} if
        C{TXWS_NO_EXTENSIONS} is set to a non-empty value or the extension
        cannot be imported.
    """
    if environ.get("TXWS_NO_EXTENSIONS"):
        return None
    try:
        from txws import _speedups
    except ImportError:
        return None
    return _speedups


def _loadSpeedups(environ: Mapping[str, str]) -> Callable[[Buffer, Buffer], bytes] | None:
    """
    Find the C implementation of masking, unless the environment forbids it.

    @param environ: the process environment (normally L{os.environ}).
    @return: C{txws._speedups.mask}, or L{None} if C{TXWS_NO_EXTENSIONS} is
        set to a non-empty value or the extension cannot be imported.
    """
    speedups = _importSpeedups(environ)
    if speedups is None:
        return None
    speedupsMask: Callable[[Buffer, Buffer], bytes] = speedups.mask
    return speedupsMask


SPEEDUPS: Speedups | None = _importSpeedups(os.environ)
"""
The C{txws._speedups} extension module if it is in use, else L{None}.
"""

HAVE_SPEEDUPS: bool = SPEEDUPS is not None
"""
Whether L{mask}, L{FrameAssembler} and L{txws._utf8}'s validators are the C
extension (C{True}) or the pure-Python fallbacks (C{False}).
"""

mask: Callable[[Buffer, Buffer], bytes] = maskPython if SPEEDUPS is None else SPEEDUPS.mask
"""
Mask or unmask a WebSocket payload (RFC 6455 section 5.3): the C extension
when available, else L{maskPython}; both return identical bytes.

Called as C{mask(data, key)}, both arguments positional: C{data} is the
payload, any C-contiguous object supporting the buffer protocol (L{bytes},
L{bytearray}, L{memoryview}, ...), and C{key} the 4-octet masking key, as a
C-contiguous buffer.  It returns the masked payload, as new L{bytes} of the
same length; it raises C{TypeError} if either argument does not support the
buffer protocol or is not C-contiguous, and C{ValueError} if C{key} is not
exactly 4 octets long.
"""


def rotateKey(key: bytes, offset: int) -> bytes:
    """
    Return the masking key as it applies to a chunk of a masked payload.

    A payload unmasked in pieces must not restart the key at every piece:
    the octet at C{offset} in the payload was XORed with C{key[offset % 4]}.
    So for a chunk starting C{offset} octets into the payload,
    C{mask(chunk, rotateKey(key, offset))} equals the corresponding slice
    of C{mask(payload, key)}.

    @param key: the frame's 4-octet masking key.
    @param offset: how many payload octets precede the chunk.
    @return: C{key[o:] + key[:o]} where C{o = offset % 4}.
    @raise ValueError: if C{key} is not exactly 4 octets long, or C{offset}
        is negative.
    """
    if len(key) != _KEY_LENGTH:
        raise ValueError(f"masking key must be exactly {_KEY_LENGTH} bytes, not {len(key)}")
    if offset < 0:
        raise ValueError(f"payload offset must not be negative, not {offset}")
    rotation = offset % _KEY_LENGTH
    return key[rotation:] + key[:rotation]


class FrameAssemblerPython:
    """
    Build one frame's payload from the pieces in which it arrives (RFC 6455
    sections 5.2 and 5.3), unmasking each piece with the key rotated by its
    offset, in pure Python.

    This is the reference the C C{txws._speedups.FrameAssembler} is tested
    against, and what L{FrameAssembler} is without the extension.  It holds
    what arrived, never the announced length: pieces of L{SMALL_PIECE}
    octets or more are kept as L{bytes} (a L{bytes} piece as it is, without
    a copy), smaller ones are gathered in a C{bytearray} (so a peer sending
    one octet at a time costs one octet each, not an object each), turned
    into one more L{bytes} piece when it reaches 64 KiB; L{take} joins them
    (a payload that arrived in one L{bytes} piece is returned as it is).
    """

    __slots__ = ("_filled", "_key", "_length", "_pieces", "_small", "_taken")

    SMALL_PIECE = 4096
    """Pieces shorter than this are copied into the gathering C{bytearray}."""

    _GATHERED = 65536
    """The gathering C{bytearray} becomes a L{bytes} piece at this size."""

    def __init__(self, length: int, key: Buffer | None = None, /) -> None:
        """
        @param length: the payload length from the frame header.
        @param key: the frame's 4-octet masking key (a C-contiguous buffer),
            or L{None} for an unmasked frame.
        @raise ValueError: if C{length} is negative or C{key} is not exactly
            4 octets long.
        @raise TypeError: if C{length} is not an integer or C{key} is neither
            L{None} nor a C-contiguous buffer.
        """
        length = operator.index(length)
        if length < 0:
            raise ValueError(f"FrameAssembler() length must not be negative, not {length}")
        keyBytes = None
        if key is not None:
            with memoryview(key) as keyView:
                if not keyView.c_contiguous:
                    raise TypeError("FrameAssembler() key must be a C-contiguous buffer")
                if keyView.nbytes != _KEY_LENGTH:
                    raise ValueError(
                        f"FrameAssembler() key must be exactly {_KEY_LENGTH} bytes, "
                        f"not {keyView.nbytes}"
                    )
                keyBytes = keyView.tobytes()
        self._key = keyBytes
        self._pieces: list[bytes] = []
        self._small = bytearray()
        self._length = length
        self._filled = 0
        self._taken = False

    @property
    def capacity(self) -> int:
        """
        Octets held for the payload so far: those fed, plus the gathering
        C{bytearray}'s over-allocation (at most about 8 KiB); never the
        announced length before it arrives; 0 after L{take}.
        """
        return self._filled - len(self._small) + self._small.__alloc__()

    def _gather(self) -> None:
        """
        Close the gathering C{bytearray}: its octets become a L{bytes} piece
        and a new, empty one takes its place (views handed out keep the
        old one, never again written).
        """
        if self._small:
            self._pieces.append(bytes(self._small))
        self._small = bytearray()

    def feed(self, data: Buffer, /) -> int:
        """
        Append the next piece of the payload, unmasking it if there is a key.

        @param data: the piece; any C-contiguous buffer no longer than what
            is missing.
        @return: how many octets are still missing.
        @raise TypeError: if C{data} is not a C-contiguous buffer.
        @raise ValueError: if C{data} is longer than what is missing
            (nothing is written then).
        """
        with memoryview(data) as view:
            if not view.c_contiguous:
                raise TypeError("feed() data must be a C-contiguous buffer")
            size = view.nbytes
            start = self._filled
            missing = self._length - start
            if size > missing:
                raise ValueError(f"feed() got {size} bytes but only {missing} are missing")
            if not size:
                return missing
            octets: Buffer
            if self._key is not None:
                octets = maskPython(view, rotateKey(self._key, start))
            elif type(data) is bytes:
                octets = data
            else:
                octets = view.cast("B")
            if size >= self.SMALL_PIECE:
                self._gather()
                self._pieces.append(octets if type(octets) is bytes else bytes(octets))
            else:
                try:
                    self._small += octets
                except BufferError:
                    # A view still exports it, so it cannot grow.
                    self._gather()
                    self._small += octets
                if len(self._small) >= self._GATHERED:
                    self._gather()
            self._filled = start + size
            return missing - size

    def view(self, start: int, stop: int, /) -> memoryview:
        """
        A read-only view of payload octets C{start} to C{stop - 1}, already
        fed; it stays valid, with the same contents, after L{take}.

        A range within the last piece fed (what a caller checking each piece
        asks for) costs no copy; a range across pieces joins them first.

        @param start: the first octet's offset in the payload.
        @param stop: the offset just past the last octet.
        @return: a read-only L{memoryview} of C{stop - start} octets.
        @raise ValueError: unless C{0 <= start <= stop <=} the octets fed.
        """
        start = operator.index(start)
        stop = operator.index(stop)
        if not 0 <= start <= stop <= self._filled:
            raise ValueError(
                f"view() range {start}..{stop} is not within the {self._filled} octets fed"
            )
        small = self._small
        base = self._filled - len(small)
        if start == stop:
            return memoryview(b"")
        if start >= base:
            return memoryview(small)[start - base : stop - base].toreadonly()
        pieces = self._pieces
        if start < base - len(pieces[-1]) or stop > base:
            # Across pieces: join them into one.
            self._gather()
            pieces[:] = [b"".join(pieces)]
            base = self._filled
        last = pieces[-1]
        first = base - len(last)
        return memoryview(last)[start - first : stop - first]

    def take(self) -> bytes:
        """
        Hand out the complete payload; the assembler is empty afterwards.

        @return: the payload, as L{bytes} of exactly the announced length.
        @raise ValueError: if octets are still missing, or the payload was
            already taken.
        """
        if self._taken:
            raise ValueError("take(): the payload was already taken")
        if self._filled < self._length:
            raise ValueError(
                f"take(): {self._length - self._filled} of {self._length} octets are still missing"
            )
        self._gather()
        payload = b"".join(self._pieces)
        # Views handed out keep their pieces alive and unchanged.
        self._pieces = []
        self._length = self._filled = 0
        self._taken = True
        return payload


if TYPE_CHECKING:
    # Both classes have the same interface; type-check against the Python one.
    FrameAssembler = FrameAssemblerPython
else:
    FrameAssembler = FrameAssemblerPython if SPEEDUPS is None else SPEEDUPS.FrameAssembler
"""
Build one frame's payload from its pieces (RFC 6455 sections 5.2 and 5.3):
C{txws._speedups.FrameAssembler} when the extension is in use, else
L{FrameAssemblerPython}; both give identical results.

C{FrameAssembler(length, key=None)} allocates nothing yet; C{feed(data)}
copies or unmasks the next piece into place, growing the buffer with what
arrives (never beyond C{length}), and returns how many octets are still
missing; C{view(start, stop)} is a read-only L{memoryview} of octets already
fed (to validate a text piece without a copy); C{take()} returns the complete
payload as L{bytes}; C{capacity} is how many octets are allocated now.
"""
