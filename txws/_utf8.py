"""
Incremental, fail-fast UTF-8 validation of text messages.

Design: CPython's incremental UTF-8 decoder is C code and rejects an invalid
sequence at its first bad byte, with one exception: after C{ED} it buffers a
second byte in C{A0..BF} (a UTF-16 surrogate, never valid) until a third
arrives.  L{Utf8Validator} closes that gap by checking the buffered prefix,
which is at most three bytes, so RFC 6455 section 8.1's "fail the connection
as soon as invalid UTF-8 is seen" holds at every byte.  Pure ASCII input,
the common case, skips the decoder entirely (C{bytes.isascii} is a word-wide
scan).
"""

from __future__ import annotations

import codecs

__all__ = ["Utf8Validator", "isValidUtf8"]

_Decoder = codecs.getincrementaldecoder("utf-8")


class Utf8Validator:
    """
    Validate a text message fed in pieces.
    """

    __slots__ = ("_decoder", "_pending")

    def __init__(self) -> None:
        self._decoder = _Decoder()
        self._pending = False

    def feed(self, data: bytes, final: bool = False) -> bool:
        """
        Validate the next piece of a message.

        @param data: the piece.
        @param final: whether it ends the message (an incomplete sequence at
            the end is then invalid).
        @return: C{False} as soon as the bytes so far cannot begin valid
            UTF-8; C{True} otherwise.
        """
        if not self._pending and data.isascii():
            return True
        try:
            self._decoder.decode(data, final)
        except UnicodeDecodeError:
            return False
        held = self._decoder.getstate()[0]
        self._pending = bool(held)
        return not (len(held) >= 2 and held[0] == 0xED and held[1] >= 0xA0)


def isValidUtf8(data: bytes) -> bool:
    """
    @param data: a complete text payload.
    @return: whether it is valid UTF-8.
    """
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
