"""
Deterministic test messages shared by the test modules and the peer scripts.
"""

from __future__ import annotations

import itertools

__all__ = [
    "ECHO_REPORT",
    "ECHO_SIZES",
    "SPLIT_POINTS",
    "SPLIT_TEXT",
    "makePayload",
    "splitFragments",
]

#: Payload sizes around the frame header's length encodings (RFC 6455
#: section 5.2: 7-bit up to 125, 16-bit up to 65535, 64-bit beyond) and a
#: whole mebibyte (the default message size limit of txws and websockets).
ECHO_SIZES = (0, 125, 126, 65535, 65536, 1024 * 1024)

#: What the C{websockets_client} peer's C{echo} scenario reports when every
#: message of L{ECHO_SIZES} came back intact: C{[kind, size, answer is
#: binary, answer equals the message]}, text first for each size.
ECHO_REPORT = [
    [kind, size, kind == "binary", True] for size in ECHO_SIZES for kind in ("text", "binary")
]

#: Text whose characters take 1, 2, 3 and 4 bytes in UTF-8.
_TEXT_UNIT = "aé€😀"

#: A text message and UTF-8 fragments of it, split inside multi-byte
#: characters (after the first byte of "é", inside "€" and inside "😀").
SPLIT_TEXT = "aé€😀 ünïcødé ✓"
SPLIT_POINTS = (2, 5, 8, 11)


def makePayload(size: int, isBinary: bool) -> bytes:
    """
    Build a message of exactly C{size} bytes.

    @param size: the length in bytes.
    @param isBinary: C{True} for arbitrary bytes, C{False} for valid UTF-8
        text that mixes 1- to 4-byte characters.
    @return: the payload.
    """
    if isBinary:
        block = bytes(range(256))
        return (block * (size // 256 + 1))[:size]
    unit = _TEXT_UNIT.encode("utf-8")
    body = unit * (size // len(unit))
    return body + b"a" * (size - len(body))


def splitFragments() -> list[bytes]:
    """
    @return: the UTF-8 bytes of L{SPLIT_TEXT} cut at L{SPLIT_POINTS}, so
        that several fragments end inside a character.
    """
    data = SPLIT_TEXT.encode("utf-8")
    bounds = [0, *SPLIT_POINTS, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]
