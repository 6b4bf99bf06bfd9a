"""
The RFC 6455 wire format: opcodes, close codes, frame headers, close payloads.

Design: this module is pure.  It takes bytes and returns plain values; it does
no I/O, keeps no state between calls and imports nothing from
C{twisted.internet}.  The receive path calls L{parseFrames} once per chunk of
input and gets back a list of C{(fin, opcode, payload)} tuples: one call and
one small tuple per frame is what keeps the hot path close to the cost of an
inlined loop (see STYLE.md).  A peer's violation is never raised out of
L{parseFrames}; it is returned as a L{FrameError} after the frames that
preceded it, so the caller delivers those first and then fails the connection
with the error's close code.

@see: U{RFC 6455 section 5<https://www.rfc-editor.org/rfc/rfc6455#section-5>}
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from enum import IntEnum
from typing import Optional

from txws._mask import SPEEDUPS, mask, rotateKey

__all__ = [
    "CloseCode",
    "FrameError",
    "Opcode",
    "ParsedFrame",
    "PendingFrame",
    "PreparedMessage",
    "buildClosePayload",
    "encodeFrame",
    "encodeFramePiece",
    "encodeFramePython",
    "frameHeader",
    "isControl",
    "isSendableCloseCode",
    "isValidReceivedCloseCode",
    "parseClosePayload",
    "parseFrames",
    "parseFramesPython",
    "serializeFrame",
]


class Opcode(IntEnum):
    """
    Frame opcodes (RFC 6455 section 5.2); every other value is reserved.
    """

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


class CloseCode(IntEnum):
    """
    Close status codes (RFC 6455 section 7.4.1 and the IANA registry).
    """

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RECEIVED = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015


class FrameError(Exception):
    """
    The peer broke a rule of RFC 6455; the connection must be failed.

    @ivar code: the close code to send (1002, 1007, 1009, ...).
    @ivar reason: a short, human readable explanation (never peer data).
    """

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"FrameError({self.code}, {self.reason!r})"


#: A complete frame: C{(fin, opcode, payload)}, the payload already unmasked.
#: A data frame with RSV1 set (possible only when C{allowedRsv} allows it,
#: i.e. with permessage-deflate) reports C{opcode | 0x40}: one value carries
#: both, so the receive path tests the bit only where it tests for a control
#: frame (C{opcode >= 0x8}).
ParsedFrame = tuple[bool, int, bytes]

#: A frame whose header has arrived but whose payload has not:
#: C{(fin, opcode, maskKey or None, payloadLength)}, C{opcode} as in
#: L{ParsedFrame}.
PendingFrame = tuple[bool, int, Optional[bytes], int]

_DATA_OPCODES = frozenset({0x0, 0x1, 0x2})
_CONTROL_OPCODES = frozenset({0x8, 0x9, 0xA})
_unpackLength16 = struct.Struct("!H").unpack_from
_unpackLength64 = struct.Struct("!Q").unpack_from
_packLength16 = struct.Struct("!BBH").pack
_packLength64 = struct.Struct("!BBQ").pack

#: Close codes a peer may put on the wire (section 7.4.1, IANA registry).
_REGISTERED_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def isControl(opcode: int) -> bool:
    """
    @param opcode: a frame opcode.
    @return: C{True} for close, ping and pong (RFC 6455 section 5.5).
    """
    return opcode >= 0x8


def isValidReceivedCloseCode(code: int) -> bool:
    """
    Is C{code} acceptable in a Close frame received from a peer?

    Registered codes are accepted except 1005, 1006 and 1015, which are
    reserved for reporting and never appear on the wire; 3000-3999 (libraries,
    frameworks) and 4000-4999 (private use) are accepted as well.

    @param code: the code read from the Close frame.
    @return: whether the code is valid on the wire.
    """
    return code in _REGISTERED_CLOSE_CODES or 3000 <= code <= 4999


def isSendableCloseCode(code: int) -> bool:
    """
    Is C{code} one this endpoint may send?  The same set as
    L{isValidReceivedCloseCode}: 1005, 1006 and 1015 never go on the wire.

    @param code: the code the application wants to send.
    @return: whether it may be sent.
    """
    return isValidReceivedCloseCode(code)


def _firstByteTable(allowedRsv: int) -> bytes:
    """
    For every possible first header byte, 1 if it is acceptable: RSV bits
    within C{allowedRsv}, a defined opcode, and for control frames FIN set
    and no RSV bit.  One table lookup replaces four tests per frame.
    """
    table = bytearray(256)
    for b0 in range(256):
        opcode = b0 & 0x0F
        rsv = b0 & 0x70
        if rsv & ~allowedRsv:
            continue
        if opcode in _CONTROL_OPCODES:
            table[b0] = b0 & 0x80 and not rsv
        elif opcode in _DATA_OPCODES:
            table[b0] = 1
    return bytes(table)


_FIRST_BYTE_OK = {0: _firstByteTable(0)}


def _addFirstByteTable(allowedRsv: int) -> bytes:
    table = _FIRST_BYTE_OK[allowedRsv] = _firstByteTable(allowedRsv)
    return table

#: C{txws._speedups.scanFrames} when the extension is in use: the complete,
#: valid frames at the start of the input, parsed and unmasked in C.
_scanFrames: Optional[
    Callable[[bytes, bool, int, bytes], tuple[list[ParsedFrame], int]]
] = None if SPEEDUPS is None else SPEEDUPS.scanFrames

#: Payloads at least this long are unmasked from a memoryview of the input,
#: which saves copying them once; shorter ones are cheaper to slice.
_VIEW_THRESHOLD = 2048


def _headerError(b0: int, b1: int, requireMask: bool, allowedRsv: int) -> FrameError:
    opcode = b0 & 0x0F
    if b0 & 0x70 & ~allowedRsv:
        return FrameError(CloseCode.PROTOCOL_ERROR, "reserved bits set without an extension")
    if opcode not in _DATA_OPCODES and opcode not in _CONTROL_OPCODES:
        return FrameError(CloseCode.PROTOCOL_ERROR, f"reserved opcode {opcode}")
    if opcode >= 0x8 and not b0 & 0x80:
        return FrameError(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
    if opcode >= 0x8 and b0 & 0x70:
        return FrameError(CloseCode.PROTOCOL_ERROR, "reserved bits set on a control frame")
    if requireMask:
        return FrameError(CloseCode.PROTOCOL_ERROR, "client frame is not masked")
    return FrameError(CloseCode.PROTOCOL_ERROR, "server frame is masked")


def parseFrames(
    data: bytes,
    requireMask: bool,
    maxFramePayload: int = 0,
    allowedRsv: int = 0,
) -> tuple[list[ParsedFrame], int, Optional[PendingFrame], Optional[FrameError]]:
    """
    Parse as many frames as C{data} holds.

    Stateless rules are checked here: RSV bits, reserved opcodes, masking
    direction, minimal length encoding, control frame size and fragmentation,
    and the frame size limit.  Rules that need the connection's state
    (continuations, message size, UTF-8) belong to the caller.

    @param data: received bytes, starting at a frame boundary.
    @param requireMask: C{True} on a server (client frames must be masked),
        C{False} on a client (server frames must not be masked).
    @param maxFramePayload: largest acceptable payload length, 0 for no limit.
        A larger frame is refused from its header alone, before its payload
        is buffered.
    @param allowedRsv: RSV bits (as the 0x70 mask of the first byte) that a
        negotiated extension allows.
    @return: C{(frames, consumed, pending, error)}: the complete frames in
        order; how many bytes of C{data} they (and C{pending}'s header) used;
        the header of a frame whose payload is still incomplete, if parsing
        stopped there; and the violation that stopped parsing, if any.  At
        most one of C{pending} and C{error} is set.  Bytes after C{consumed}
        are an incomplete header, to be kept and prefixed to the next chunk.
    """
    firstByteOk = _FIRST_BYTE_OK.get(allowedRsv) or _addFirstByteTable(allowedRsv)
    if _scanFrames is None:
        return _parseFrom(data, 0, [], requireMask, maxFramePayload, allowedRsv, firstByteOk)
    # The C scanner takes the complete, valid frames; whatever stopped it (a
    # pending frame, an incomplete header, a violation) is described by the
    # Python loop, the one owner of those results.
    frames, pos = _scanFrames(data, requireMask, maxFramePayload, firstByteOk)
    if pos == len(data):
        return frames, pos, None, None
    return _parseFrom(data, pos, frames, requireMask, maxFramePayload, allowedRsv, firstByteOk)


def parseFramesPython(
    data: bytes,
    requireMask: bool,
    maxFramePayload: int = 0,
    allowedRsv: int = 0,
) -> tuple[list[ParsedFrame], int, Optional[PendingFrame], Optional[FrameError]]:
    """
    L{parseFrames} in pure Python: the reference the C scanner is tested
    against, and what runs without the extension.
    """
    firstByteOk = _FIRST_BYTE_OK.get(allowedRsv) or _addFirstByteTable(allowedRsv)
    return _parseFrom(data, 0, [], requireMask, maxFramePayload, allowedRsv, firstByteOk)


def _parseFrom(
    data: bytes,
    pos: int,
    frames: list[ParsedFrame],
    requireMask: bool,
    maxFramePayload: int,
    allowedRsv: int,
    firstByteOk: bytes,
) -> tuple[list[ParsedFrame], int, Optional[PendingFrame], Optional[FrameError]]:
    """
    The frame loop of L{parseFrames}, from offset C{pos}, appending to
    C{frames}.
    """
    append = frames.append
    end = len(data)
    maskBit = 0x80 if requireMask else 0
    view: Optional[memoryview] = None
    while end - pos >= 2:
        b0 = data[pos]
        b1 = data[pos + 1]
        if not firstByteOk[b0] or b1 & 0x80 != maskBit:
            return frames, pos, None, _headerError(b0, b1, requireMask, allowedRsv)
        length = b1 & 0x7F
        start = pos + 2
        if length > 125:
            if b0 & 0x08:
                return frames, pos, None, FrameError(
                    CloseCode.PROTOCOL_ERROR, "control frame payload over 125 bytes"
                )
            if length == 126:
                if end - start < 2:
                    break
                length = _unpackLength16(data, start)[0]
                start += 2
                if length < 126:
                    return frames, pos, None, FrameError(
                        CloseCode.PROTOCOL_ERROR, "non-minimal 16-bit length"
                    )
            else:
                if end - start < 8:
                    break
                length = _unpackLength64(data, start)[0]
                start += 8
                if length >> 63:
                    return frames, pos, None, FrameError(
                        CloseCode.PROTOCOL_ERROR, "64-bit length has its top bit set"
                    )
                if length < 0x10000:
                    return frames, pos, None, FrameError(
                        CloseCode.PROTOCOL_ERROR, "non-minimal 64-bit length"
                    )
            if maxFramePayload and length > maxFramePayload:
                return frames, pos, None, FrameError(
                    CloseCode.MESSAGE_TOO_BIG,
                f"frame payload of {length} bytes exceeds the limit of {maxFramePayload}",
                )
        elif maxFramePayload and length > maxFramePayload:
            return frames, pos, None, FrameError(
                CloseCode.MESSAGE_TOO_BIG,
                f"frame payload of {length} bytes exceeds the limit of {maxFramePayload}",
            )
        if maskBit:
            keyStart = start
            start += 4
            if start > end:
                break
            stop = start + length
            if stop > end:
                return frames, start, (b0 > 127, b0 & 0x4F, data[keyStart:start], length), None
            if length >= _VIEW_THRESHOLD:
                if view is None:
                    view = memoryview(data)
                append((b0 > 127, b0 & 0x4F, mask(view[start:stop], data[keyStart:start])))
            elif length:
                append((b0 > 127, b0 & 0x4F, mask(data[start:stop], data[keyStart:start])))
            else:
                append((b0 > 127, b0 & 0x4F, b""))
        else:
            stop = start + length
            if stop > end:
                return frames, start, (b0 > 127, b0 & 0x4F, None, length), None
            append((b0 > 127, b0 & 0x4F, data[start:stop]))
        pos = stop
    return frames, pos, None, None


def frameHeader(
    opcode: int,
    length: int,
    fin: bool = True,
    maskKey: Optional[bytes] = None,
    rsv: int = 0,
) -> bytes:
    """
    Serialize a frame header with the minimal length encoding that RFC 6455
    section 5.2 requires (7 bits up to 125, 16 bits up to 65535, else 64).

    @param opcode: the frame's opcode.
    @param length: the payload length.
    @param fin: whether this is the final frame of its message.
    @param maskKey: 4 bytes to announce as the masking key (clients), or
        C{None} (servers).
    @param rsv: RSV bits as the 0x70 mask of the first byte.
    @return: the header bytes (2 to 14 bytes).
    """
    b0 = (0x80 if fin else 0) | rsv | opcode
    maskBit = 0x80 if maskKey is not None else 0
    if length < 126:
        header = bytes((b0, maskBit | length))
    elif length < 0x10000:
        header = _packLength16(b0, maskBit | 126, length)
    else:
        header = _packLength64(b0, maskBit | 127, length)
    if maskKey is not None:
        return header + maskKey
    return header


def encodeFramePiece(
    firstByte: int, payload: bytes, maskKey: Optional[bytes], start: int, stop: int
) -> bytes:
    """
    The bytes of a frame that carry C{payload[start:stop]}: the header
    first when C{start} is 0, the slice masked with the key rotated to its
    offset (RFC 6455 section 5.3) when C{maskKey} is given.  The pieces of
    a frame, concatenated in order, are L{encodeFrame}'s result; this is
    the one frame encoder, which a frame too large to write at once is
    written with piece by piece (L{txws._backlog}).

    @param firstByte: the first header byte (FIN, RSV bits, opcode).
    @param payload: the whole unmasked payload.
    @param maskKey: the client's 4-byte masking key, or C{None}.
    @param start: the offset of the piece in the payload.
    @param stop: the offset just past it.
    @return: the piece's bytes.
    """
    piece = memoryview(payload)[start:stop]
    if maskKey is not None and stop > start:
        piece = memoryview(mask(piece, rotateKey(maskKey, start)))
    if start:
        return bytes(piece)
    header = frameHeader(
        firstByte & 0x0F, len(payload), bool(firstByte & 0x80), maskKey, firstByte & 0x70
    )
    return b"".join((header, piece))


def encodeFramePython(firstByte: int, payload: bytes, maskKey: Optional[bytes]) -> bytes:
    """
    L{encodeFrame} in pure Python (L{encodeFramePiece} of the whole
    payload): the reference for the C version and what runs without the
    extension.
    """
    return encodeFramePiece(firstByte, payload, maskKey, 0, len(payload))


encodeFrame: Callable[[int, bytes, Optional[bytes]], bytes] = (
    encodeFramePython if SPEEDUPS is None else SPEEDUPS.encodeFrame
)
"""
C{encodeFrame(firstByte, payload, maskKey)}: a whole frame whose first
header byte (FIN, RSV bits, opcode) is C{firstByte}, with the payload masked
by C{maskKey} (a client's frame) or copied (C{None}).  The C version builds
it in one allocation (~0.08 us for 1 KiB, against ~0.3 us).
"""


def serializeFrame(
    opcode: int,
    payload: bytes,
    fin: bool = True,
    maskKey: Optional[bytes] = None,
    rsv: int = 0,
) -> bytes:
    """
    Serialize a whole frame, masking its payload when C{maskKey} is given.

    @param opcode: the frame's opcode.
    @param payload: the unmasked payload.
    @param fin: whether this is the final frame of its message.
    @param maskKey: the client's 4-byte masking key, or C{None} on a server.
    @param rsv: RSV bits as the 0x70 mask of the first byte.
    @return: the frame's bytes.
    """
    return encodeFrame((0x80 if fin else 0) | rsv | opcode, payload, maskKey)


class PreparedMessage:
    """
    A message framed once to be sent to many connections (Autobahn's
    prepared messages): the server's unmasked frame is built when the
    message is prepared, and every server connection writes the same bytes.
    Client connections mask each frame anew, as they must.

    With permessage-deflate, connections that compress every message
    with a fresh context share its compressed frame too, built the first
    time one of them sends it (L{txws.deflate.compressedFrame}).

    @ivar payload: the message's payload.
    @ivar isBinary: whether it is a binary message.
    @ivar frame: the whole unmasked frame (FIN set) a server sends.
    @ivar doNotCompress: send it uncompressed even where
        permessage-deflate is in use.
    @ivar compressed: the compressed frames built so far, by compression
        settings: C{(frame, payload, firstByte)} (for L{txws.deflate}).
    """

    __slots__ = ("compressed", "doNotCompress", "frame", "isBinary", "payload")

    def __init__(self, payload: bytes, isBinary: bool, doNotCompress: bool = False) -> None:
        """
        @param payload: the message (for text, valid UTF-8 bytes: the caller
            checks).
        @param isBinary: whether it is a binary message.
        @param doNotCompress: see L{doNotCompress}.
        """
        self.payload = payload
        self.isBinary = isBinary
        self.doNotCompress = doNotCompress
        self.frame = encodeFrame(0x82 if isBinary else 0x81, payload, None)
        self.compressed: Optional[dict[tuple[int, int, int], tuple[bytes, bytes, int]]] = None


def buildClosePayload(code: Optional[int] = None, reason: str = "") -> bytes:
    """
    Build the payload of a Close frame (RFC 6455 section 5.5.1).

    @param code: the status code, or C{None} for an empty payload.
    @param reason: a reason, at most 123 bytes once UTF-8 encoded; only
        allowed with a code.
    @return: the payload bytes.
    @raise ValueError: if the code may not be sent, or the reason is too long
        or given without a code.
    """
    if code is None:
        if reason:
            raise ValueError("a close reason requires a close code")
        return b""
    if not isSendableCloseCode(code):
        raise ValueError(f"close code {code} may not be sent")
    encoded = reason.encode("utf-8")
    if len(encoded) > 123:
        raise ValueError("close reason is longer than 123 bytes in UTF-8")
    return code.to_bytes(2, "big") + encoded


def parseClosePayload(payload: bytes) -> tuple[int, str]:
    """
    Parse the payload of a received Close frame.

    @param payload: the unmasked payload (at most 125 bytes).
    @return: C{(code, reason)}; an empty payload gives C{(1005, "")}.
    @raise FrameError: 1002 for a one-byte payload or an invalid code, 1007
        for a reason that is not valid UTF-8.
    """
    if not payload:
        return int(CloseCode.NO_STATUS_RECEIVED), ""
    if len(payload) == 1:
        raise FrameError(CloseCode.PROTOCOL_ERROR, "close frame payload of one byte")
    code = int.from_bytes(payload[:2], "big")
    if not isValidReceivedCloseCode(code):
        raise FrameError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(CloseCode.INVALID_PAYLOAD, "close reason is not valid UTF-8") from None
    return code, reason
