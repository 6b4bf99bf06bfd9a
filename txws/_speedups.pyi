"""
Type stub for the optional C extension L{txws._speedups}; see L{txws._mask}
and L{txws._utf8}.
"""

from typing import final

from typing_extensions import Buffer

def mask(data: Buffer, key: Buffer, /) -> bytes:
    """
    Mask or unmask a WebSocket payload (RFC 6455 section 5.3).

    @param data: the payload, a C-contiguous buffer.
    @param key: the 4-octet masking key, a C-contiguous buffer.
    @return: the masked payload, as new L{bytes} of the same length.
    @raise TypeError: if either argument is not a C-contiguous buffer.
    @raise ValueError: if C{key} is not exactly 4 octets long.
    """

def utf8Validate(data: Buffer, state: int = 0, /) -> int:
    """
    Validate the next piece of a UTF-8 text (RFC 6455 section 8.1, RFC 3629).

    @param data: the piece, a C-contiguous buffer.
    @param state: the state returned for the previous piece; 0 for the first.
    @return: 0 at a character boundary, 1..7 inside a sequence that can still
        be completed, -1 as soon as the bytes cannot begin valid UTF-8.
    @raise TypeError: if C{data} is not a C-contiguous buffer.
    @raise ValueError: if C{state} is not in -1..7.
    """

def isValidUtf8(data: Buffer, /) -> bool:
    """
    @param data: a complete text, a C-contiguous buffer.
    @return: whether it is valid UTF-8 (C{utf8Validate(data) == 0}).
    @raise TypeError: if C{data} is not a C-contiguous buffer.
    """

@final
class FrameAssembler:
    """
    Build one frame's payload from its pieces, unmasking each straight into
    the final L{bytes} (RFC 6455 sections 5.2 and 5.3).
    """

    def __init__(self, length: int, key: Buffer | None = None, /) -> None:
        """
        @param length: the payload length from the frame header.
        @param key: the 4-octet masking key, or L{None} if unmasked.
        @raise ValueError: if C{length} is negative or C{key} is not 4 octets.
        @raise TypeError: if C{key} is not a C-contiguous buffer.
        """

    def feed(self, data: Buffer, /) -> int:
        """
        @param data: the next piece, no longer than what is missing.
        @return: how many octets are still missing.
        @raise ValueError: if C{data} is too long (nothing is written).
        """

    def view(self, start: int, stop: int, /) -> memoryview:
        """
        @return: a read-only view of fed octets C{start..stop-1}, valid even
            after L{take}.
        @raise ValueError: unless C{0 <= start <= stop <=} octets fed.
        """

    def take(self) -> bytes:
        """
        @return: the complete payload; the assembler is empty afterwards.
        @raise ValueError: if octets are missing or it was already taken.
        """
