"""
Type stub for the optional C extension L{txws._speedups}; see L{txws._mask},
L{txws._utf8} and L{txws.frames}.  mypy checks it: L{txws._mask.SPEEDUPS} is
typed as L{txws._mask.Speedups}, which this module must satisfy, so every
function the package calls is declared here with its real signature.
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

def scanFrames(
    data: Buffer, requireMask: bool, maxFramePayload: int, firstByteOk: Buffer, /
) -> tuple[list[tuple[bool, int, bytes]], int]:
    """
    Parse the complete, valid frames at the start of C{data} (RFC 6455
    section 5.2); stop at anything else, which L{txws.frames.parseFrames}
    then describes in Python.

    @param data: received bytes, starting at a frame boundary.
    @param requireMask: whether frames must be masked (a server).
    @param maxFramePayload: the largest payload accepted, 0 for no limit.
    @param firstByteOk: 256 bytes, nonzero for each acceptable first byte.
    @return: C{(frames, offset)}: C{(fin, opcode, payload)} tuples with
        unmasked payloads, and where parsing stopped.
    @raise TypeError: for a non-buffer or the wrong number of arguments.
    @raise ValueError: if C{firstByteOk} is not 256 bytes.
    """

def encodeFrame(firstByte: int, payload: Buffer, key: Buffer | None, /) -> bytes:
    """
    A whole frame with the minimal length encoding (RFC 6455 section 5.2).

    @param firstByte: the first header byte (FIN, RSV bits, opcode).
    @param payload: the unmasked payload.
    @param key: a client's 4-byte masking key, or L{None} (copied as is).
    @return: the frame.
    @raise ValueError: if C{firstByte} is not in C{range(256)} or the key is
        not 4 octets.
    """

@final
class FrameAssembler:
    """
    Build one frame's payload from its pieces, unmasking each straight into
    the final L{bytes} (RFC 6455 sections 5.2 and 5.3).  Nothing is allocated
    for octets that have not arrived: the buffer grows with what is fed
    (twice its size, or what a piece needs if more, never beyond the
    announced length).
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

    @property
    def capacity(self) -> int:
        """
        Octets allocated for the payload so far: at most twice those fed
        (or what the largest piece needed, if more) and never more than the
        announced length, which it equals once complete; 0 after L{take}.
        """
