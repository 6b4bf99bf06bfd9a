"""
What an application sends on a WebSocket connection: messages, prepared
messages, messages frame by frame (Autobahn's C{beginMessage} and
frame-streaming API), pings and pongs.

Design: a mixin of L{txws.protocol.WebSocketProtocol}, holding the public
sending API and nothing else: it checks what the application asks
(state, UTF-8, the order of calls), compresses when permessage-deflate is
in use, and hands frames to the connection's L{txws._output.FrameWriter},
which owns the transport, back-pressure and the send buffer limit.  The
common case (a message of one frame from an open server connection with
nothing queued) is written straight to the transport in
L{Sending.sendMessage}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from txws._output import FrameWriter
from txws._states import State
from txws._utf8 import Utf8Validator, isValidUtf8
from txws._writethrough import writeThrough
from txws.deflate import RSV1, PerMessageDeflate, compressedFrame
from txws.frames import PreparedMessage, encodeFrame

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

    from txws._hosting import ConnectionHost

__all__ = ["Disconnected", "Sending"]

_OPEN = State.OPEN


class Disconnected(RuntimeError):
    """
    The application tried to send on a connection that is not open (as
    Autobahn's exception of the same name).
    """


class Sending:
    """
    The sending API of L{txws.protocol.WebSocketProtocol} (a mixin: the
    connection provides the attributes declared here).
    """

    # The state of a message sent frame by frame (set by the connection's
    # __new__): its opcode (0: none), whether it is compressed, whether its
    # first frame is still to be sent, and its UTF-8 validator for text;
    # and, for txws.metrics, the messages sent and their payload bytes.
    __slots__ = (
        "_bytesOut", "_messagesOut", "_outCompressed", "_outFirst", "_outOpcode", "_outUtf8",
    )

    _outOpcode: int
    _outCompressed: bool
    _outFirst: bool
    _outUtf8: Optional[Utf8Validator]
    _messagesOut: int
    _bytesOut: int

    if TYPE_CHECKING:
        state: State
        factory: ConnectionHost
        transport: Optional[ITransport]
        _writer: FrameWriter
        _deflate: Optional[PerMessageDeflate]
        _validatedText: Optional[bytes]

    @property
    def bufferedAmount(self) -> int:
        """
        Bytes of frames waiting in this connection for the transport to take
        them (the transport's own buffer, up to C{writeBufferSize}, comes on
        top).  At most C{maxBufferedAmount} plus one frame.
        """
        return self._writer.bufferedAmount

    def _checkCanSend(self) -> None:
        if self.state is not _OPEN:
            raise Disconnected(f"cannot send: the WebSocket connection is {self.state.name}")

    def sendMessage(
        self,
        payload: bytes,
        isBinary: bool = False,
        fragmentSize: Optional[int] = None,
        sync: bool = False,
        doNotCompress: bool = False,
    ) -> None:
        """
        Send a message.

        @param payload: the message; for text, UTF-8 encoded bytes.
        @param isBinary: C{True} for a binary message.
        @param fragmentSize: if given (or if the C{autoFragmentSize} option is
            set), send frames of at most this many payload bytes.
        @param sync: accepted for Autobahn compatibility; frames are always
            handed to the transport at once.
        @param doNotCompress: send this message uncompressed even when
            permessage-deflate is in use (Autobahn's argument).
        @raise Disconnected: if the connection is not open.
        @raise TypeError: if C{payload} is not bytes.
        @raise ValueError: for a text payload that is not valid UTF-8, or
            while a message started with L{beginMessage} is unfinished.
        """
        if (
            type(payload) is bytes
            and self.state is _OPEN
            and not (self._outOpcode or fragmentSize)
            and self._deflate is None
            and len(payload) <= (self.factory.options.autoFragmentSize or len(payload))
        ):
            # The common case: checks that cannot fail skipped, one frame.
            if isBinary:
                firstByte = 0x82
            elif payload is self._validatedText or payload.isascii() or isValidUtf8(payload):
                firstByte = 0x81
            else:
                raise ValueError("text message payload is not valid UTF-8")
            self._messagesOut += 1
            self._bytesOut += len(payload)
            writer = self._writer
            if len(payload) <= writer.directAbove:
                # What FrameWriter.writeFrame does for this case, one call shorter.
                if writer.writeThrough:
                    writeThrough(self.transport, encodeFrame(firstByte, payload, None))
                else:
                    self.transport.write(encodeFrame(firstByte, payload, None))  # type: ignore[union-attr]
            else:
                writer.writeFrame(firstByte, payload)
            return
        self._checkCanSend()
        if type(payload) is not bytes:
            if not isinstance(payload, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"payload must be bytes, not {type(payload).__name__}; encode text as UTF-8"
                )
            payload = bytes(payload)
        if self._outOpcode:
            raise ValueError("a message started with beginMessage() is still being sent")
        if (
            not isBinary
            and payload is not self._validatedText
            and not payload.isascii()
            and not isValidUtf8(payload)
        ):
            raise ValueError("text message payload is not valid UTF-8")
        self._messagesOut += 1
        self._bytesOut += len(payload)
        opcode = 0x2 if isBinary else 0x1
        deflate = self._deflate
        if deflate is not None and not doNotCompress:
            # RSV1 on the first frame only (RFC 7692 section 6.1).
            rsv, payload = deflate.compressor.encode(payload)
            opcode |= rsv
        size = fragmentSize or self.factory.options.autoFragmentSize
        writer = self._writer
        if size and len(payload) > size:
            last = len(payload) - size
            for start in range(0, len(payload), size):
                chunk = payload[start : start + size]
                writer.writeFrame(
                    (0x80 if start >= last else 0) | (opcode if start == 0 else 0x0), chunk
                )
            return
        writer.writeFrame(0x80 | opcode, payload)

    def sendPreparedMessage(self, preparedMsg: PreparedMessage) -> None:
        """
        Send a message prepared once for many connections with the factory's
        C{prepareMessage} (Autobahn's API).  A server connection writes the
        prepared frame's bytes as they are; a client masks a frame of its own.

        @param preparedMsg: the L{PreparedMessage}.
        @raise Disconnected: if the connection is not open.
        @raise ValueError: while a message started with L{beginMessage} is
            unfinished.
        """
        deflate = self._deflate
        # With permessage-deflate, the fast path writes a frame compressed
        # once for every connection with the same settings, if it is one.
        frame = (
            preparedMsg.frame if deflate is None else deflate.compressor.sharedFrame(preparedMsg)
        )
        writer = self._writer
        if (
            frame is not None
            and self.state is _OPEN
            and not self._outOpcode
            and len(frame) <= writer.directAbove
        ):
            self._messagesOut += 1
            self._bytesOut += len(preparedMsg.payload)
            if writer.writeThrough:
                writeThrough(self.transport, frame)
            else:
                self.transport.write(frame)  # type: ignore[union-attr]
            return
        self._checkCanSend()
        if self._outOpcode:
            raise ValueError("a message started with beginMessage() is still being sent")
        self._messagesOut += 1
        self._bytesOut += len(preparedMsg.payload)
        if deflate is not None and not preparedMsg.doNotCompress:
            compressor = deflate.compressor
            if len(preparedMsg.payload) >= compressor.threshold:
                key = compressor.sharedKey
                if key is None:
                    # Context takeover: this connection's own compression.
                    rsv, data = compressor.encode(preparedMsg.payload)
                    writer.writeFrame((0x82 if preparedMsg.isBinary else 0x81) | rsv, data)
                else:
                    # Compressed once for every connection with this key.
                    writer.writeShared(*compressedFrame(preparedMsg, key))
                return
        writer.writePrepared(preparedMsg)

    def beginMessage(self, isBinary: bool = False, doNotCompress: bool = False) -> None:
        """
        Start a message to be sent frame by frame with L{sendMessageFrame}
        and ended with L{endMessage}.  Control frames may still be sent in
        between; other messages may not.  With permessage-deflate each frame
        is compressed and flushed as it is sent.

        @param isBinary: C{True} for a binary message.
        @param doNotCompress: send it uncompressed even when
            permessage-deflate is in use.
        @raise Disconnected: if the connection is not open.
        @raise ValueError: if another such message is unfinished.
        """
        self._checkCanSend()
        if self._outOpcode:
            raise ValueError("a message started with beginMessage() is still being sent")
        self._outCompressed = self._deflate is not None and not doNotCompress
        self._outOpcode = 0x2 if isBinary else 0x1
        self._outFirst = True
        self._outUtf8 = None if isBinary else Utf8Validator()

    def sendMessageFrame(self, payload: bytes) -> None:
        """
        Send the next frame of the message begun with L{beginMessage}.

        @param payload: the frame's payload.
        @raise Disconnected: if the connection is not open.
        @raise ValueError: without a begun message, or for text that cannot
            be valid UTF-8.
        """
        self._checkCanSend()
        if not self._outOpcode:
            raise ValueError("sendMessageFrame() needs beginMessage() first")
        self._checkNoFrameOpen("sendMessageFrame")
        if self._outUtf8 is not None and not self._outUtf8.feed(payload):
            raise ValueError("text message payload is not valid UTF-8")
        self._bytesOut += len(payload)
        self._writeOutFrame(False, bytes(payload))

    def endMessage(self) -> None:
        """
        Finish the message begun with L{beginMessage} (sends a final, empty
        frame).

        @raise Disconnected: if the connection is not open.
        @raise ValueError: without a begun message, or if the text ends
            inside a UTF-8 sequence.
        """
        self._checkCanSend()
        if not self._outOpcode:
            raise ValueError("endMessage() needs beginMessage() first")
        self._checkNoFrameOpen("endMessage")
        if self._outUtf8 is not None and not self._outUtf8.feed(b"", True):
            raise ValueError("text message ends inside a UTF-8 sequence")
        self._writeOutFrame(True, b"")
        self._messagesOut += 1
        self._outOpcode = 0
        self._outUtf8 = None

    def beginMessageFrame(self, length: int) -> None:
        """
        Start the next frame of the message begun with L{beginMessage},
        announcing its payload length; the payload follows with
        L{sendMessageFrameData} (Autobahn's frame-streaming API).  Control
        frames sent (or answered) before the frame is complete wait for its
        end.

        A frame's length is announced before its payload, so a message that
        starts with such a frame is sent uncompressed even where
        permessage-deflate is in use (a compressed one cannot continue with
        one).

        @param length: the payload length, 0 to 2**63 - 1.
        @raise Disconnected: if the connection is not open.
        @raise ValueError: without a begun message, while another frame is
            incomplete, for an invalid length, or after compressed frames.
        """
        self._checkCanSend()
        if not self._outOpcode:
            raise ValueError("beginMessageFrame() needs beginMessage() first")
        self._checkNoFrameOpen("beginMessageFrame")
        if type(length) is not int or not 0 <= length < 1 << 63:
            raise ValueError(f"invalid frame length {length!r}")
        if self._outCompressed:
            if not self._outFirst:
                raise ValueError(
                    "beginMessageFrame() cannot continue a compressed message (its frames' "
                    "lengths are known only once compressed): begin it with "
                    "beginMessage(doNotCompress=True)"
                )
            self._outCompressed = False
        self._writer.beginFrame(self._outOpcode if self._outFirst else 0x0, length)
        self._outFirst = False

    def sendMessageFrameData(self, payload: bytes, sync: bool = False) -> int:
        """
        Send payload of the frame begun with L{beginMessageFrame}.

        @param payload: the next bytes of the frame's payload; bytes beyond
            its announced length are not sent.
        @param sync: accepted for Autobahn compatibility.
        @return: as Autobahn: the bytes the frame still lacks (> 0), 0 when
            C{payload} completed it exactly, or minus the bytes of
            C{payload} left over beyond its end (< 0).
        @raise Disconnected: if the connection is not open.
        @raise ValueError: without a frame begun, or for text that cannot
            be valid UTF-8.
        """
        self._checkCanSend()
        writer = self._writer
        left = writer.frameLeft
        if not left:
            raise ValueError("sendMessageFrameData() needs beginMessageFrame() first")
        data = bytes(payload[:left]) if len(payload) > left else bytes(payload)
        if self._outUtf8 is not None and not self._outUtf8.feed(data):
            raise ValueError("text message payload is not valid UTF-8")
        self._bytesOut += len(data)
        writer.writeFrameData(data)
        return left - len(payload)

    def _checkNoFrameOpen(self, method: str) -> None:
        if self._writer.frameLeft:
            raise ValueError(
                f"{method}() while the frame begun with beginMessageFrame() still lacks "
                f"{self._writer.frameLeft} bytes"
            )

    def _writeOutFrame(self, fin: bool, payload: bytes) -> None:
        """
        Write the next frame of the message begun with L{beginMessage}:
        compressed and flushed when it is sent compressed, RSV1 and the
        opcode on the first frame only.
        """
        firstByte = 0x80 if fin else 0
        if self._outFirst:
            firstByte |= self._outOpcode
        if self._outCompressed:
            assert self._deflate is not None
            payload = self._deflate.compressor.compressFragment(payload, fin)
            if self._outFirst:
                firstByte |= RSV1
        self._writer.writeFrame(firstByte, payload)
        self._outFirst = False

    def sendPing(self, payload: Optional[bytes] = None) -> None:
        """
        Send a Ping (RFC 6455 section 5.5.2).

        @param payload: at most 125 bytes of application data.
        @raise Disconnected: if the connection is not open.
        @raise ValueError: if the payload is longer than 125 bytes.
        """
        self._sendControl(0x9, payload)

    def sendPong(self, payload: Optional[bytes] = None) -> None:
        """
        Send an unsolicited Pong (a unidirectional heartbeat, section 5.5.3).

        @param payload: at most 125 bytes of application data.
        @raise Disconnected: if the connection is not open.
        @raise ValueError: if the payload is longer than 125 bytes.
        """
        self._sendControl(0xA, payload)

    def _sendControl(self, opcode: int, payload: Optional[bytes]) -> None:
        self._checkCanSend()
        data = bytes(payload) if payload is not None else b""
        if len(data) > 125:
            raise ValueError("control frame payload is longer than 125 bytes")
        self._writer.writeFrame(0x80 | opcode, data)
