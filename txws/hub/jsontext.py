"""
JSON as the hub reads and writes it: strict UTF-8, finite numbers only,
compact output.

Design: Python's C{json} module accepts more than JSON (C{NaN},
C{Infinity}, numbers that overflow to infinity, UTF-16 and UTF-32 bodies)
and fails with C{RecursionError} on deep nesting; what it accepts here
would reach browsers whose C{JSON.parse} refuses it.  Both directions go
through this module so every path keeps to JSON.

Pure module: imports nothing from C{twisted.internet}.
"""

from __future__ import annotations

import json
import math

__all__ = ["decodeJSON", "encodeJSON"]


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
        numbers, or nested too deeply to decode.
    """
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
