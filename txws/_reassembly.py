"""
Messages from data frames: fragmentation, the message size limit and UTF-8
(RFC 6455 sections 5.4, 5.6 and 8.1).

Design: this module is pure.  A L{Reassembler} takes the data frames that
L{txws.frames.parseFrames} returns (and the pieces of a frame whose payload
arrives over several reads) and returns whole messages, or raises
L{txws.frames.FrameError} carrying the L{CloseCode} to fail the connection
with; the connection maps that one exception type to its Close frame in one
place.  It imports nothing from Twisted, keeps no I/O and no timers, and
every rule is written once here:

  - fragmentation (L{Reassembler._start}): a continuation frame needs a
    message to continue; a new data frame may not start while one is
    incomplete;
  - the message size limit (L{Reassembler._admit}): checked against the size
    a frame I{announces}, so a streamed frame is refused from its header,
    before its payload is buffered;
  - UTF-8 (L{invalidText}, L{truncatedText}): text is checked as it arrives
    (fail fast, section 8.1), a whole message at once, a fragmented or
    streamed one piece by piece;
  - the limit on frames per message (L{Reassembler._count});
  - permessage-deflate (RFC 7692 section 6): a frame with RSV1 set
    (L{Reassembler.compressed}) starts a compressed message, whose frames
    are inflated by the connection's L{txws.deflate.Decompressor} as they
    come; the size limit then applies to the inflated bytes, enforced by
    the decompressor while it inflates (so a few compressed bytes never
    yield more than the limit), and text is checked as it is inflated.

Memory follows the payload, whatever the fragmentation: short fragments
are appended to one C{bytearray} (L{Reassembler._append}), so a message of
one-byte fragments holds about 1.1 bytes per byte, not the ~56 that one
object per fragment would cost.

The common case, a whole message in one frame, is L{Reassembler.message}:
one call doing just the checks that can fail for it.  Everything else goes
through L{Reassembler.frame} (a complete fragment) or L{Reassembler.begin},
L{Reassembler.piece} and L{Reassembler.end} (a frame streamed in pieces).
After raising, or after L{Reassembler.discard}, a reassembler drops every
data frame (the connection is being failed; RFC 6455 section 7.1.7).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from txws._utf8 import Utf8Validator, isValidUtf8
from txws.frames import CloseCode, FrameError

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from txws.deflate import Decompressor

__all__ = [
    "BEGIN",
    "DATA",
    "END",
    "FRAME_BEGIN",
    "FRAME_END",
    "Event",
    "Message",
    "Reassembler",
    "StreamingReassembler",
    "invalidText",
    "tooLarge",
    "truncatedText",
]

#: A whole message: C{(payload, isBinary)}.
Message = tuple[bytes, bool]

#: What a L{StreamingReassembler} reports, in order: C{(BEGIN, isBinary)},
#: then for each frame C{(FRAME_BEGIN, length)}, C{(DATA, payload)} for
#: each piece, C{(FRAME_END, None)}; and C{(END, None)} after the last.
Event = tuple[int, object]
BEGIN = 1
FRAME_BEGIN = 2
DATA = 3
FRAME_END = 4
END = 5

_TEXT = 0x1
_DISCARDING = -1
#: The chunks between messages: shared and never appended to
#: (L{Reassembler._start} gives every message its own list), so an idle
#: connection holds no list.
_NO_CHUNKS: list[bytes | bytearray] = []
_BINARY = 0x2
_NO_EVENTS: list[Event] = []
#: Fragment payloads (and inflated chunks) shorter than this are appended
#: to a shared C{bytearray} instead of being kept as objects of their own.
_COALESCE_BELOW = 4096


def tooLarge(limit: int) -> FrameError:
    """
    @param limit: the message size limit.
    @return: the error for a message over it (1009).
    """
    return FrameError(CloseCode.MESSAGE_TOO_BIG, f"message exceeds the limit of {limit} bytes")


def invalidText() -> FrameError:
    """
    @return: the error for text that cannot be valid UTF-8 (1007).
    """
    return FrameError(CloseCode.INVALID_PAYLOAD, "text message is not valid UTF-8")


def truncatedText() -> FrameError:
    """
    @return: the error for a text message ending inside a UTF-8 sequence
        (1007).
    """
    return FrameError(CloseCode.INVALID_PAYLOAD, "text message ends inside a UTF-8 sequence")


class Reassembler:
    """
    Turns one connection's data frames into messages.

    @ivar limit: the largest message payload accepted, 0 for no limit.
    @ivar maxFragments: the most frames a message may have, 0 for no limit.
    @ivar decompressor: the connection's permessage-deflate
        L{txws.deflate.Decompressor}, or C{None} when the extension is not
        in use (then no frame reaches L{compressed}).
    """

    __slots__ = (
        "_chunks",
        "_compressed",
        "_fragments",
        "_opcode",
        "_size",
        "_utf8",
        "decompressor",
        "events",
        "limit",
        "maxFragments",
    )

    def __init__(
        self, limit: int = 0, maxFragments: int = 0, decompressor: Optional[Decompressor] = None
    ) -> None:
        """
        @param limit: the largest message payload accepted (the
            C{maxMessagePayloadSize} option), 0 for no limit.
        @param maxFragments: the most frames a message may have (the
            C{maxMessageFragments} option), 0 for no limit.
        @param decompressor: see L{decompressor}.
        """
        self.limit = limit
        self.maxFragments = maxFragments
        self.decompressor = decompressor
        # The opcode of the message in progress, 0 between messages, or
        # _DISCARDING: one slot tested by the fast path for both.
        self._opcode = 0
        self._chunks: list[bytes | bytearray] = _NO_CHUNKS
        self._size = 0
        self._fragments = 0
        self._compressed = False
        self._utf8: Optional[Utf8Validator] = None
        #: What a L{StreamingReassembler} has to report (always empty here).
        self.events: list[Event] = _NO_EVENTS

    @property
    def inMessage(self) -> bool:
        """
        Whether a fragmented message has begun and not ended.
        """
        return self._opcode > 0

    @property
    def discarding(self) -> bool:
        """
        Whether data frames are dropped (after an error or L{discard}).
        """
        return self._opcode < 0

    @property
    def checksText(self) -> bool:
        """
        Whether the pieces of the frame being streamed must be passed to
        L{piece} (a text message, not compressed, not discarded).
        """
        return self._utf8 is not None and not self._compressed

    def discard(self) -> None:
        """
        Drop the message in progress and every data frame from now on.
        """
        self._reset()
        self._opcode = _DISCARDING

    def message(self, opcode: int, payload: bytes) -> Optional[bytes]:
        """
        A data frame with FIN set, RSV1 clear and opcode TEXT or BINARY:
        normally a whole message on its own.

        @param opcode: C{0x1} (text) or C{0x2} (binary).
        @param payload: the unmasked payload.
        @return: the message's payload, or C{None} while discarding.
        @raise FrameError: if the frame breaks a rule.
        """
        if self._opcode:
            whole = self.frame(True, opcode, payload)
            return None if whole is None else whole[0]
        # L{_admit}, inlined: this is the one call a message's fast path
        # makes, and a second call would cost it ~5%.
        limit = self.limit
        if limit and len(payload) > limit:
            raise self._failing(tooLarge(limit))
        if opcode == 0x1 and not isValidUtf8(payload):
            raise self._failing(invalidText())
        return payload

    def compressed(self, fin: bool, opcode: int, payload: bytes) -> Optional[Message]:
        """
        A complete data frame with RSV1 set: the first frame of a compressed
        message (RFC 7692 section 6.1).

        @param fin: the frame's FIN bit.
        @param opcode: its opcode without the RSV1 bit: C{0x1} or C{0x2}
            (a continuation frame with RSV1 set is refused).
        @param payload: the unmasked, compressed payload.
        @return: the message this frame ends, else C{None}.
        @raise FrameError: if the frame breaks a rule, 1009 if it inflates
            beyond the limit, 1007 if it does not inflate or its text is not
            UTF-8.
        """
        if self._opcode < 0:
            return None
        decompressor = self._startCompressed(opcode)
        if not fin:
            self._inflate(decompressor, payload, False)
            return None
        # The common case: a whole compressed message in one frame.
        try:
            inflated = decompressor.decompress(payload)
        except FrameError as e:
            raise self._failing(e) from None
        if opcode == _TEXT and not isValidUtf8(inflated):
            raise self._failing(invalidText())
        self._reset()
        return inflated, opcode == _BINARY

    def frame(self, fin: bool, opcode: int, payload: bytes) -> Optional[Message]:
        """
        Any complete data frame with RSV1 clear.

        @param fin: the frame's FIN bit.
        @param opcode: C{0x0} (continuation), C{0x1} or C{0x2}.
        @param payload: the unmasked payload.
        @return: the message this frame ends, else C{None}.
        @raise FrameError: if the frame breaks a rule.
        """
        if self._opcode < 0:
            return None
        if opcode or not self._opcode:
            # (A continuation of a message in progress needs no call.)
            self._start(opcode)
        self._count()
        if self._compressed:
            assert self.decompressor is not None
            self._inflate(self.decompressor, payload, fin)
        else:
            self._admit(self._size + len(payload))
            utf8 = self._utf8
            if utf8 is not None and not utf8.feed(payload):
                raise self._failing(invalidText())
            self._append(payload)
        return self._finish() if fin else None

    def begin(self, opcode: int, length: int, compressed: bool = False) -> bool:
        """
        A data frame whose header has arrived and whose C{length} payload
        bytes will come in pieces (L{piece}, then L{end}).

        @param opcode: C{0x0}, C{0x1} or C{0x2}.
        @param length: the payload length the header announces.
        @param compressed: whether the frame has RSV1 set.
        @return: whether to collect the payload (C{False} while discarding).
        @raise FrameError: if the frame breaks a rule; the size limit is
            checked here, before any of the payload is buffered (for a
            compressed message, on the inflated size at L{end}).
        """
        if self._opcode < 0:
            return False
        if compressed:
            self._startCompressed(opcode)
            return True
        self._start(opcode)
        self._count()
        if not self._compressed:
            self._admit(self._size + length)
        return True

    def piece(self, data: Buffer) -> None:
        """
        The next unmasked piece of the streamed frame's payload, validated at
        once if the message is text (and not compressed: see L{checksText}).

        @param data: the piece.
        @raise FrameError: if the text cannot be valid UTF-8.
        """
        utf8 = self._utf8
        if utf8 is not None and not utf8.feed(data):
            raise self._failing(invalidText())

    def end(self, fin: bool, payload: bytes) -> Optional[Message]:
        """
        The streamed frame is complete.

        @param fin: its FIN bit.
        @param payload: its whole unmasked payload (already passed to
            L{piece} unless compressed).
        @return: the message this frame ends, else C{None}.
        @raise FrameError: if a text message ends inside a UTF-8 sequence,
            or, compressed, as L{compressed}.
        """
        if self._opcode < 0:
            return None
        if self._compressed:
            assert self.decompressor is not None
            self._inflate(self.decompressor, payload, fin)
        else:
            self._append(payload)
        return self._finish() if fin else None

    # -- The rules, once each ------------------------------------------------

    def _start(self, opcode: int) -> None:
        """
        The fragmentation rules (RFC 6455 section 5.4).
        """
        if opcode:
            if self._opcode:
                raise self._failing(
                    FrameError(
                        CloseCode.PROTOCOL_ERROR,
                        "new data frame while a fragmented message is incomplete",
                    )
                )
            self._opcode = opcode
            self._chunks = []
            self._size = 0
            self._fragments = 0
            self._utf8 = Utf8Validator() if opcode == _TEXT else None
        elif not self._opcode:
            raise self._failing(
                FrameError(
                    CloseCode.PROTOCOL_ERROR, "continuation frame without a message to continue"
                )
            )

    def _startCompressed(self, opcode: int) -> Decompressor:
        """
        The rules of RFC 7692 section 6.1 for a frame with RSV1 set: it
        starts a message (never a continuation), and only on a connection
        that negotiated the extension.
        """
        decompressor = self.decompressor
        if decompressor is None:
            raise self._failing(
                FrameError(CloseCode.PROTOCOL_ERROR, "RSV1 set without permessage-deflate")
            )
        if not opcode:
            raise self._failing(
                FrameError(CloseCode.PROTOCOL_ERROR, "RSV1 set on a continuation frame")
            )
        self._start(opcode)
        self._compressed = True
        self._count()
        return decompressor

    def _count(self) -> None:
        """
        The limit on frames per message.
        """
        self._fragments += 1
        limit = self.maxFragments
        if limit and self._fragments > limit:
            raise self._failing(
                FrameError(
                    CloseCode.MESSAGE_TOO_BIG, f"message has more than {limit} fragments"
                )
            )

    def _admit(self, size: int) -> None:
        """
        The message size limit: C{size} is what the message would hold.
        """
        limit = self.limit
        if limit and size > limit:
            raise self._failing(tooLarge(limit))

    def _append(self, data: bytes) -> None:
        """
        Keep a fragment's payload.  Short ones are appended to one
        C{bytearray} rather than kept as objects of their own (which cost
        ~33 bytes each), so a message's memory stays within a small factor
        of its payload whatever its fragmentation: one-byte fragments hold
        ~1.1 bytes each, not ~56.
        """
        chunks = self._chunks
        if len(data) < _COALESCE_BELOW:
            if chunks and type(chunks[-1]) is bytearray:
                chunks[-1] += data
            else:
                chunks.append(bytearray(data))
        else:
            chunks.append(data)
        self._size += len(data)

    def _inflate(self, decompressor: Decompressor, data: bytes, fin: bool) -> None:
        """
        Inflate a compressed frame, checking text as it streams out (so
        invalid UTF-8 stops the inflation at once); the decompressor
        enforces the limit on the inflated size (1009).
        """
        utf8 = self._utf8
        try:
            for chunk in decompressor.stream(data, fin):
                if utf8 is not None and not utf8.feed(chunk):
                    raise invalidText()
                self._append(chunk)
        except FrameError as e:
            raise self._failing(e) from None

    def _finish(self) -> Message:
        utf8 = self._utf8
        if utf8 is not None and not utf8.feed(b"", True):
            raise self._failing(truncatedText())
        chunks = self._chunks
        if len(chunks) == 1:
            only = chunks[0]
            payload = only if type(only) is bytes else bytes(only)
        else:
            payload = b"".join(chunks)
        isBinary = self._opcode == _BINARY
        self._reset()
        return payload, isBinary

    def _reset(self) -> None:
        self._opcode = 0
        self._chunks = _NO_CHUNKS
        self._size = 0
        self._fragments = 0
        self._compressed = False
        self._utf8 = None

    def _failing(self, error: FrameError) -> FrameError:
        """
        Discard from now on, and hand back C{error} to raise.
        """
        self.discard()
        return error


class StreamingReassembler(Reassembler):
    """
    A L{Reassembler} that keeps no message: it reports each message's
    beginning, each frame's beginning, payload and end, and the message's
    end as L{events}, for Autobahn's frame-streaming callbacks
    (C{onMessageBegin}, C{onMessageFrameBegin}, C{onMessageFrameData},
    C{onMessageFrameEnd}, C{onMessageEnd}).  Every rule still applies
    (fragmentation, UTF-8 as the payload streams, the size limit on what the
    message totals, inflated for a compressed one); the caller takes the
    events after each call and clears the list.  Nothing is returned as a
    message.
    """

    __slots__ = ("_frameLength",)

    def __init__(
        self, limit: int = 0, maxFragments: int = 0, decompressor: Optional[Decompressor] = None
    ) -> None:
        super().__init__(limit, maxFragments, decompressor)
        self.events = []
        self._frameLength = 0

    @property
    def checksText(self) -> bool:
        """
        Whether the pieces of the frame being streamed must be passed to
        L{piece}: always, for an uncompressed message (they are reported).
        """
        return self._opcode > 0 and not self._compressed

    def message(self, opcode: int, payload: bytes) -> None:
        """
        A data frame with FIN set and RSV1 clear: reported as a message of
        one frame.
        """
        self.frame(True, opcode, payload)

    def frame(self, fin: bool, opcode: int, payload: bytes) -> None:
        """
        Any complete data frame with RSV1 clear: reported.
        """
        if self._opcode < 0:
            return None
        self._frameLength = len(payload)
        if super().frame(fin, opcode, payload) is None:
            self.events.append((FRAME_END, None))
        return None

    def compressed(self, fin: bool, opcode: int, payload: bytes) -> None:
        """
        A complete data frame with RSV1 set: inflated as it is reported.
        """
        if self._opcode < 0:
            return None
        self._frameLength = len(payload)
        decompressor = self._startCompressed(opcode)
        self._inflate(decompressor, payload, fin)
        self._endFrame(fin)
        return None

    def begin(self, opcode: int, length: int, compressed: bool = False) -> bool:
        """
        A frame whose payload will come in pieces: its beginning reported.
        """
        self._frameLength = length
        return super().begin(opcode, length, compressed)

    def piece(self, data: Buffer) -> None:
        """
        The next piece of an uncompressed streamed frame: validated, then
        reported.
        """
        super().piece(data)
        self.events.append((DATA, bytes(data)))

    def end(self, fin: bool, payload: bytes) -> None:
        """
        The streamed frame is complete; a compressed one is inflated and
        reported now, an uncompressed one was reported piece by piece.
        """
        if self._opcode < 0:
            return None
        if self._compressed:
            assert self.decompressor is not None
            self._inflate(self.decompressor, payload, fin)
        self._endFrame(fin)
        return None

    def discard(self) -> None:
        """
        Drop the message in progress, what was not yet taken of its events,
        and every data frame from now on.
        """
        super().discard()
        self.events.clear()

    def _endFrame(self, fin: bool) -> None:
        if fin:
            self._finish()
        else:
            self.events.append((FRAME_END, None))

    def _start(self, opcode: int) -> None:
        super()._start(opcode)
        if opcode:
            self.events.append((BEGIN, opcode == _BINARY))

    def _count(self) -> None:
        super()._count()
        self.events.append((FRAME_BEGIN, self._frameLength))

    def _append(self, data: bytes) -> None:
        if data:
            self._size += len(data)
            self.events.append((DATA, data))

    def _finish(self) -> Message:
        utf8 = self._utf8
        if utf8 is not None and not utf8.feed(b"", True):
            raise self._failing(truncatedText())
        self.events.append((FRAME_END, None))
        self.events.append((END, None))
        self._reset()
        return b"", False
