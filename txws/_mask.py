"""
WebSocket payload masking (RFC 6455 section 5.3).

Octet C{i} of a masked payload is octet C{i} of the original XOR
C{key[i % 4]}; the same operation unmasks.  Two implementations produce
identical bytes:

  - L{txws._speedups.mask}, a C extension that XORs 8 octets at a time (4x unrolled)
    through a 64-bit word built from the key, writes straight into the
    result L{bytes} (one pass, one allocation) and releases the GIL for
    payloads of 64 KiB or more;
  - L{maskPython}, the pure-Python fallback, which turns the whole payload
    and a repeated key into two integers and XORs those, so the per-octet
    work stays in C even without a compiler.

L{mask} is the C function when the extension is importable, else
L{maskPython}; L{HAVE_SPEEDUPS} says which.  Setting the environment
variable C{TXWS_NO_EXTENSIONS} to any non-empty value (e.g.
C{TXWS_NO_EXTENSIONS=1}) before this module is first imported forces the
fallback, as it also skips building the extension in C{setup.py}.

Measured per-call cost (best of 5 C{timeit} runs, random payload and key,
CPython 3.11.7, gcc 12 -O3, AMD EPYC):

    payload     C extension     pure Python     ratio
    16 B         0.08 us          1.5 us          ~19x
    1 KiB        0.12 us          4.0 us          ~33x
    64 KiB       1.5 us            240 us        ~160x
    1 MiB         29 us            4.4 ms        ~150x

Below ~1 KiB the C cost is mostly call overhead; above it the C path runs
at memory bandwidth, while the fallback pays for int conversion (~4 ns per
octet).  Re-measure with C{timeit} on C{mask} and C{maskPython}.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["HAVE_SPEEDUPS", "mask", "maskPython", "rotateKey"]

_KEY_LENGTH = 4


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


def _loadSpeedups(environ: Mapping[str, str]) -> Callable[[Buffer, Buffer], bytes] | None:
    """
    Find the C implementation of masking, unless the environment forbids it.

    @param environ: the process environment (normally L{os.environ}).
    @return: L{txws._speedups.mask}, or L{None} if C{TXWS_NO_EXTENSIONS} is
        set to a non-empty value or the extension cannot be imported.
    """
    if environ.get("TXWS_NO_EXTENSIONS"):
        return None
    try:
        from txws._speedups import mask as speedupsMask
    except ImportError:
        return None
    return speedupsMask


_speedupsMask = _loadSpeedups(os.environ)

HAVE_SPEEDUPS: bool = _speedupsMask is not None
"""
Whether L{mask} is the C extension (C{True}) or L{maskPython} (C{False}).
"""

mask: Callable[[Buffer, Buffer], bytes] = _speedupsMask if _speedupsMask is not None else maskPython
"""
Mask or unmask a WebSocket payload (RFC 6455 section 5.3): the C extension
when available, else L{maskPython}; both return identical bytes.

Called as C{mask(data, key)}, both arguments positional.

@param data: the payload; any C-contiguous object supporting the buffer
    protocol (L{bytes}, L{bytearray}, L{memoryview}, ...).
@param key: the 4-octet masking key, as a C-contiguous buffer.
@return: the masked payload, as new L{bytes} of the same length.
@raise TypeError: if either argument does not support the buffer protocol or
    is not C-contiguous.
@raise ValueError: if C{key} is not exactly 4 octets long.
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
