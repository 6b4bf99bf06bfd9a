"""
Deterministic test messages shared by the test modules and the peer scripts.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from typing import AnyStr

__all__ = [
    "DEFLATE_WORKLOAD",
    "ECHO_REPORT",
    "ECHO_SIZES",
    "LIGHT_DEFLATE_WORKLOAD",
    "SPLIT_POINTS",
    "SPLIT_TEXT",
    "corpus",
    "intactResults",
    "jsonText",
    "makePayload",
    "randomBytes",
    "slidingMessage",
    "splitFragments",
    "workloadMessages",
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


def jsonText(size: int, seed: int = 0) -> bytes:
    """
    Compressible JSON of exactly C{size} bytes of UTF-8 (records that
    repeat their keys, with accented and 3-byte characters, padded with
    spaces before the closing bracket), different for every C{seed}.

    @param size: the length in bytes, at least 2 (C{[]}).
    @param seed: which variant.
    @return: the UTF-8 bytes of a valid JSON array.
    """
    if size < 2:
        raise ValueError("JSON text needs at least 2 bytes")
    rng = random.Random(seed)
    records: list[bytes] = []
    length = 2
    while True:
        record = json.dumps(
            {
                "id": seed * 100000 + len(records),
                "name": rng.choice(("Zoë", "Jürgen", "Ana", "Chloé", "Björk")),
                "price": f"{rng.randrange(1, 99999) / 100:.2f} €",
                "tags": rng.sample(("news", "sport", "météo", "tech", "arts"), 2),
                "ok": rng.random() < 0.5,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        extra = len(record) + (1 if records else 0)
        if length + extra > size:
            break
        records.append(record)
        length += extra
    return b"[" + b",".join(records) + b" " * (size - length) + b"]"


def randomBytes(size: int, seed: int = 0) -> bytes:
    """
    @return: C{size} incompressible (pseudo-random, reproducible) bytes.
    """
    return random.Random(seed).randbytes(size)


def corpus(kind: str, size: int = 262144) -> bytes:
    """
    Test data like the Autobahn testsuite's compression data sets (its
    files are not redistributable here): C{"json"} (text, like
    C{data1.json}), C{"prose"} (German-like text sent as binary, like
    Goethe's Faust), C{"bitmap"} (an 8-bit greyscale image with gradients
    and noise, like C{lena512.bmp}).

    @param kind: one of the three.
    @param size: its length in bytes.
    @return: the data (valid UTF-8 for the two text kinds).
    """
    rng = random.Random(kind)
    if kind == "json":
        return jsonText(size, seed=7)
    if kind == "prose":
        words = ("Habe", "nun", "ach", "Philosophie", "Juristerei", "und", "Medizin",
                 "leider", "auch", "Theologie", "durchaus", "studiert", "mit", "heißem",
                 "Bemühn", "Da", "steh", "ich", "nun", "armer", "Tor", "bin", "so", "klug",
                 "als", "wie", "zuvor", "Würde", "Größe", "Übermut")
        out = bytearray()
        while len(out) < size:
            line = " ".join(rng.choice(words) for _ in range(rng.randrange(4, 12)))
            out += line.encode("utf-8") + b".\n"
        return bytes(out[:size]).decode("utf-8", "ignore").encode("utf-8").ljust(size, b" ")
    if kind == "bitmap":
        side = 512
        image = bytearray()
        for y in range(side):
            image += bytes(
                (x * 255 // side + y * 255 // side) // 2 + rng.randrange(0, 24) & 0xFF
                for x in range(side)
            )
        return bytes((image * (size // len(image) + 1))[:size])
    raise ValueError(f"unknown corpus {kind!r}")


def slidingMessage(data: AnyStr, start: int, size: int) -> tuple[AnyStr, int]:
    """
    The Autobahn testsuite's message series (C{case12_x_x.sendOne}): each
    message is the next C{size} bytes (or, for text, characters) of the
    data, wrapping around.

    @return: the message and where the next one starts.
    """
    end = (start + size) % len(data)
    message = data[start:end] if end > start else data[start:] + data[:end]
    return message, end


#: The echo workload of the permessage-deflate interop tests, as
#: C{(kind, size, count)}: compressible JSON text of 1 KiB and 64 KiB,
#: random binary close to 1 MiB (compressed with a 9-bit window, as zlib
#: then cannot store a block raw, random data grows by 2.3%, by 3.9% with
#: memory level 1: its frame must stay within a 1 MiB frame limit), empty
#: text and
#: binary messages, 50 different JSON messages in a row (context takeover
#: carried from one to the next), and short messages below txws's
#: compression threshold.
DEFLATE_WORKLOAD = (
    ("json", 1024, 1),
    ("json", 65536, 1),
    ("random", 960 * 1024, 1),
    ("emptyText", 0, 1),
    ("emptyBinary", 0, 1),
    ("json", 600, 50),
    ("json", 40, 3),
)


#: A light workload, for the large matrices of parameters: a compressible
#: message, an empty one, a short one, and ten in a row.
LIGHT_DEFLATE_WORKLOAD = (
    ("json", 2048, 1),
    ("emptyText", 0, 1),
    ("json", 40, 1),
    ("json", 700, 10),
)


def intactResults(workload: Sequence[tuple[str, int, int]]) -> list[list[object]]:
    """
    @return: the C{results} the C{websockets_client} peer's C{deflateEcho}
        scenario reports when every echo of C{workload} was intact.
    """
    return [[kind, size, count, count] for kind, size, count in workload]


def workloadMessages(kind: str, size: int, count: int) -> list[tuple[bytes, bool]]:
    """
    @param kind: C{"json"}, C{"random"}, C{"emptyText"} or C{"emptyBinary"}.
    @return: C{count} messages C{(payload, isBinary)} of that kind and size,
        each different from the others.
    """
    if kind == "json":
        return [(jsonText(size, seed), False) for seed in range(count)]
    if kind == "random":
        return [(randomBytes(size, seed), True) for seed in range(count)]
    if kind in ("emptyText", "emptyBinary"):
        return [(b"", kind == "emptyBinary")] * count
    raise ValueError(f"unknown message kind {kind!r}")
