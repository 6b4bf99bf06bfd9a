"""
Autobahn's frame-streaming callbacks, on the receiving side of a
connection: a class that overrides any of C{onMessageBegin},
C{onMessageFrameBegin}, C{onMessageFrameData}, C{onMessageFrameEnd},
C{onMessageFrame} or C{onMessageEnd} receives messages through them.

Design: whether a class streams is decided once per class
(L{streamsFrames}), when a connection opens; such a connection reassembles
with a L{txws._reassembly.StreamingReassembler}, which applies every rule
(fragmentation, UTF-8 before a piece is given, the size limit on the
message's total, inflation) and reports events instead of keeping the
message, and L{FrameStreaming._deliverEvents} turns them into the
callbacks.  Other connections never pay for any of it.  The defaults
collect the message and call C{onMessage}, as Autobahn's do, so that a
class overriding some callbacks and calling the base class's method from
them keeps C{onMessage} working.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from txws._reassembly import BEGIN, DATA, END, FRAME_BEGIN, FRAME_END, Reassembler

__all__ = ["FrameStreaming", "StreamedMessage", "streamsFrames"]


class StreamedMessage:
    """
    The message the default frame-streaming callbacks collect.
    """

    __slots__ = ("frame", "isBinary", "message")

    def __init__(self) -> None:
        self.isBinary = False
        self.message: list[bytes] = []
        self.frame: list[bytes] = []

    def begin(self, isBinary: bool) -> None:
        self.isBinary = isBinary
        self.message = []
        self.frame = []


#: The frame-streaming callbacks: a class overriding one receives through
#: them.
_STREAMING_CALLBACKS = (
    "onMessageBegin",
    "onMessageFrameBegin",
    "onMessageFrameData",
    "onMessageFrameEnd",
    "onMessageFrame",
    "onMessageEnd",
)
_streamingClasses: dict[type, bool] = {}


def streamsFrames(cls: type) -> bool:
    """
    @return: whether C{cls} overrides a frame-streaming callback (computed
        once per class).
    """
    streams = _streamingClasses.get(cls)
    if streams is None:
        streams = _streamingClasses[cls] = any(
            getattr(cls, name) is not getattr(FrameStreaming, name)
            for name in _STREAMING_CALLBACKS
        )
    return streams



class FrameStreaming:
    """
    The frame-streaming callbacks of L{txws.protocol.WebSocketProtocol}
    (a mixin: the connection provides the attributes declared here).
    """

    __slots__ = ()

    if TYPE_CHECKING:
        _reassembler: Reassembler
        _streamed: StreamedMessage

        def _callApp(self, callback: Callable[..., Any], *args: Any) -> None: ...

        def _deliverMessage(self, payload: bytes, isBinary: bool) -> None: ...

        @property
        def _failed(self) -> bool: ...


    def onMessageBegin(self, isBinary: bool) -> Any:
        """
        A message begins (frame-streaming API).

        @param isBinary: C{True} for a binary message, C{False} for text.
        """
        self._streamed.begin(isBinary)

    def onMessageFrameBegin(self, length: int) -> Any:
        """
        A frame of the message begins (frame-streaming API).

        @param length: its payload length as announced on the wire (for a
            compressed message, the compressed length).
        """
        self._streamed.frame = []

    def onMessageFrameData(self, payload: bytes) -> Any:
        """
        A piece of the frame's payload (frame-streaming API): for text, a
        piece of valid UTF-8 (a character may be split between pieces).

        @param payload: the piece, unmasked and inflated.
        """
        self._streamed.frame.append(payload)

    def onMessageFrameEnd(self) -> Any:
        """
        The frame is complete (frame-streaming API); the default passes its
        pieces to C{onMessageFrame}.
        """
        streamed = self._streamed
        frame, streamed.frame = streamed.frame, []
        return self.onMessageFrame(frame)

    def onMessageFrame(self, payload: list[bytes]) -> Any:
        """
        A whole frame's payload, as the pieces that C{onMessageFrameData}
        got (Autobahn's callback).

        @param payload: the pieces.
        """
        self._streamed.message.extend(payload)

    def onMessageEnd(self) -> Any:
        """
        The message is complete (frame-streaming API); the default calls
        C{onMessage} with its whole payload.
        """
        streamed = self._streamed
        payload = b"".join(streamed.message)
        streamed.message = []
        self._deliverMessage(payload, streamed.isBinary)

    def _deliverEvents(self) -> None:
        """
        Call the frame-streaming callbacks for what the
        L{StreamingReassembler} reported.
        """
        events = self._reassembler.events
        taken = events[:]
        events.clear()
        for kind, value in taken:
            if kind == DATA:
                self._callApp(self.onMessageFrameData, value)
            elif kind == FRAME_BEGIN:
                self._callApp(self.onMessageFrameBegin, value)
            elif kind == FRAME_END:
                self._callApp(self.onMessageFrameEnd)
            elif kind == BEGIN:
                self._callApp(self.onMessageBegin, value)
            else:
                assert kind == END
                self._callApp(self.onMessageEnd)
            if self._failed:
                return
