"""
JSON as the hub reads and writes it: strict UTF-8, finite numbers only,
compact output.

Design: Python's C{json} module accepts more than JSON (C{NaN},
C{Infinity}, numbers that overflow to infinity, UTF-16 and UTF-32 bodies);
what it accepts here would reach browsers whose C{JSON.parse} refuses it.
Both directions go through this module so every path keeps to JSON.

Nesting is bounded by L{MAX_DEPTH} here, not by the interpreter: how deep
C{json} goes before C{RecursionError} depends on the Python version
(CPython 3.11 stops near 1,000 levels, 3.13 decodes 5,000).  The check
costs nothing for a text with fewer opening brackets than the bound (two
C{bytes.count} calls); otherwise strings are cut out (by splitting at the
quotes, or with a regular expression when there are escapes) and the
depth is the running maximum over the brackets left, all in C loops.

Pure module: imports nothing from C{twisted.internet}.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from itertools import accumulate

__all__ = ["MAX_DEPTH", "decodeJSON", "encodeJSON"]

#: The deepest nesting of arrays and objects accepted (RFC 8259 section 9
#: lets a parser set one).
MAX_DEPTH = 512

# A JSON string (which may hold brackets and escaped quotes).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Every byte but the brackets deleted, the rest mapped to signed bytes:
# "[" and "{" to 1, "]" and "}" to -1.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def _outsideStrings(data: bytes) -> bytes:
    """
    @return: C{data} without its strings' contents.
    """
    if b"\\" not in data:
        # No escapes: quotes alternate, opening and closing strings.
        return b"".join(data.split(b'"')[0::2])
    return _STRING.sub(b"", data)


def _depth(data: bytes) -> int:
    """
    @return: the deepest nesting of brackets outside strings in C{data}
        (exact for valid JSON; only compared with L{MAX_DEPTH}).
    """
    steps = _outsideStrings(data).translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(accumulate(array("b", steps)), default=0)


def _refuseConstant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _finiteFloat(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit a double")
    return value


def decodeJSON(data: bytes) -> object:
    """
    @param data: UTF-8 JSON text.
    @return: the value.
    @raise ValueError: for anything that is not JSON in UTF-8 with finite
        numbers, or nested deeper than L{MAX_DEPTH}.
    """
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth(data) > MAX_DEPTH:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(
            data.decode("utf-8"), parse_constant=_refuseConstant, parse_float=_finiteFloat
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def encodeJSON(value: object) -> bytes:
    """
    @param value: a JSON value (finite numbers only: see L{decodeJSON}).
    @return: its compact UTF-8 JSON encoding.
    @raise ValueError: for a non-finite number.
    """
    try:
        return json.dumps(
            value, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from a "\ud800" escape) cannot be UTF-8.
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")
