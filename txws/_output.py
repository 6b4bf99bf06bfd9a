"""
A connection's outgoing frames: encoding, large frames in pieces, the
transport's back-pressure and the send-buffer bound.

Design: a L{FrameWriter} is created when a connection opens and owns
everything between "send this frame" and the transport: it encodes frames
with L{txws.frames.encodeFrame} (whole) or hands them to a
L{txws._backlog.Backlog} (far larger than the write buffer: written piece by
piece, each piece by L{txws.frames.encodeFramePiece}, the same encoder); it
is the C{IPushProducer} registered with the transport, so it learns when
the transport's buffer is full and queues frames meanwhile; it enforces
C{maxBufferedAmount} on what is queued.  It tells its owner (the
connection, through the small L{WriterOwner} interface) only two things:
that the transport is blocked or free again (the connection stops reading
and pauses the application's producer), and that the queue overflowed.

The connection's fast paths write a small server frame straight to the
transport when L{FrameWriter.directAbove} allows it (nothing queued, no
masking): one comparison instead of a call.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Optional, Protocol

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from txws._backlog import Backlog
from txws._mask import mask, rotateKey
from txws._writethrough import canWriteThrough, writeThrough
from txws.frames import PreparedMessage, encodeFrame, frameHeader
from txws.options import WebSocketOptions

if TYPE_CHECKING:
    from twisted.internet.interfaces import ITransport

__all__ = ["FrameWriter", "WriterOwner"]


class _HasOptions(Protocol):
    """
    Where the bound on queued bytes is read, each time (a factory: its
    options may be replaced while connections are open).
    """

    @property
    def options(self) -> WebSocketOptions: ...


class WriterOwner(Protocol):
    """
    What a L{FrameWriter} tells its connection.
    """

    def _outputBlocked(self, blocked: bool) -> None:
        """
        The transport's write buffer is over its high-water mark (C{True}),
        or it has drained and everything queued is written (C{False}).
        """

    def _sendBufferOverflowed(self, size: int) -> None:
        """
        More than C{maxBufferedAmount} bytes are queued for a transport that
        does not drain.

        @param size: the bytes queued.
        """


@implementer(IPushProducer)
class FrameWriter:
    """
    Writes one connection's frames to its transport (see the module
    docstring).

    @ivar directAbove: the largest payload a server frame may have to be
        written straight to the transport (C{transport.write(encodeFrame(...))})
        rather than through L{writeFrame}: -1 while frames are queued, for a
        client (which masks) and before the connection opened.
    @ivar writeThrough: whether frames go straight to the socket when
        nothing is queued (L{txws._writethrough}: Twisted's plain TCP
        transports); the connection's fast paths read it too.
    @ivar frameLeft: payload bytes still due in a frame begun with
        L{beginFrame}; while it is not 0, control frames given to
        L{writeFrame} wait for the frame's end (they may not interrupt it).
    """

    __slots__ = (
        "_backlog",
        "_blocked",
        "_frameKey",
        "_frameOffset",
        "_full",
        "_heldControl",
        "_owner",
        "_randomBytes",
        "_registered",
        "_releaseWhenSent",
        "_settings",
        "_streamAbove",
        "_transport",
        "directAbove",
        "frameLeft",
        "writeThrough",
    )

    def __init__(
        self,
        owner: Optional[WriterOwner],
        transport: Optional[ITransport],
        randomBytes: Optional[Callable[[int], bytes]],
        writeBufferSize: int,
        settings: Optional[_HasOptions],
    ) -> None:
        """
        @param owner: the connection.
        @param transport: its transport; the writer registers with it as its
            streaming producer.
        @param randomBytes: where a client's masking keys come from, or
            C{None} on a server (no masking).
        @param writeBufferSize: the transport's high-water mark; frames over
            twice this size go out in pieces of this size plus one byte.
        @param settings: what holds the C{maxBufferedAmount} option, the
            bound on queued bytes (0 for none), read when it is needed.
        """
        self._owner = owner
        self._transport = transport
        self._randomBytes = randomBytes
        self._streamAbove = 2 * writeBufferSize if writeBufferSize else sys.maxsize
        self._settings = settings
        self._backlog: Optional[Backlog] = None
        self._full = False
        self._blocked = False
        self._releaseWhenSent = False
        self._registered = transport is not None
        self.directAbove = -1
        self.frameLeft = 0
        self._frameKey: Optional[bytes] = None
        self._frameOffset = 0
        self._heldControl: Optional[list[tuple[int, bytes]]] = None
        self.writeThrough = canWriteThrough(transport)
        if transport is not None:
            transport.registerProducer(self, True)  # type: ignore[attr-defined]
            if randomBytes is None:
                self.directAbove = self._streamAbove

    @classmethod
    def unopened(cls) -> FrameWriter:
        """
        @return: a writer for a connection that is not open (it writes
            nothing; L{directAbove} is -1).
        """
        return cls(None, None, None, 0, None)

    @property
    def bufferedAmount(self) -> int:
        """
        The bytes queued and not yet handed to the transport.
        """
        backlog = self._backlog
        return 0 if backlog is None else backlog.size

    def _setDirect(self) -> None:
        masks = self._randomBytes is not None
        self.directAbove = -1 if masks or self._backlog is not None else self._streamAbove

    # -- Writing ----------------------------------------------------------------

    def writeFrame(self, firstByte: int, payload: bytes) -> None:
        """
        Write a frame, or queue it behind frames already waiting.

        One bytes object per frame: Twisted's transports join what is handed
        to them separately before sending, so header and payload apart
        would cost the same copy, made later.  Frames far larger than the
        write buffer go out in pieces instead.

        @param firstByte: the first header byte (FIN, RSV bits, opcode).
        @param payload: the unmasked payload.
        """
        if self.frameLeft:
            # A control frame while a frame's payload is still due.
            if self._heldControl is None:
                self._heldControl = []
            self._heldControl.append((firstByte, payload))
            return
        randomBytes = self._randomBytes
        key = None if randomBytes is None else randomBytes(4)
        if len(payload) <= self._streamAbove:
            self._writeEncoded(encodeFrame(firstByte, payload, key))
            return
        if self._backlog is None:
            self._newBacklog()
        assert self._backlog is not None
        self._backlog.addLargeFrame(firstByte, payload, key)
        self._queued()

    def beginFrame(self, firstByte: int, length: int) -> None:
        """
        Write the header of a frame whose payload will follow in pieces
        (L{writeFrameData}), announcing its length.

        @param firstByte: the first header byte (FIN, RSV bits, opcode).
        @param length: the payload's length.
        """
        randomBytes = self._randomBytes
        key = self._frameKey = None if randomBytes is None else randomBytes(4)
        self._writeEncoded(
            frameHeader(firstByte & 0x0F, length, bool(firstByte & 0x80), key, firstByte & 0x70)
        )
        self.frameLeft = length
        self._frameOffset = 0

    def writeFrameData(self, data: bytes) -> None:
        """
        Write the next piece of the payload of the frame begun with
        L{beginFrame} (masked on a client); at its end, the control frames
        held meanwhile follow.

        @param data: at most L{frameLeft} bytes.
        """
        key = self._frameKey
        if key is not None:
            data = mask(data, rotateKey(key, self._frameOffset))
        self._frameOffset += len(data)
        self.frameLeft -= len(data)
        self._writeEncoded(data)
        if not self.frameLeft and self._heldControl:
            held, self._heldControl = self._heldControl, None
            for firstByte, payload in held:
                self.writeFrame(firstByte, payload)

    def writePrepared(self, message: PreparedMessage) -> None:
        """
        Write a prepared message: its frame as it is on a server, a frame
        masked anew on a client.
        """
        self.writeShared(message.frame, message.payload, 0x82 if message.isBinary else 0x81)

    def writeShared(self, frame: bytes, payload: bytes, firstByte: int) -> None:
        """
        Write a frame encoded once for many connections: C{frame} as it is
        on a server, a frame of C{firstByte} and C{payload} masked anew on a
        client (or when it is large enough to be written in pieces).

        @param frame: the whole unmasked frame.
        @param payload: its payload.
        @param firstByte: its first header byte.
        """
        if self._randomBytes is None and len(frame) <= self._streamAbove:
            self._writeEncoded(frame)
        else:
            self.writeFrame(firstByte, payload)

    def _writeEncoded(self, frame: bytes) -> None:
        backlog = self._backlog
        if backlog is None:
            if self.writeThrough:
                writeThrough(self._transport, frame)
            else:
                self._transport.write(frame)  # type: ignore[union-attr]
            return
        backlog.addFrame(frame)
        self._queued()

    def _newBacklog(self) -> None:
        self._backlog = Backlog(self._streamAbove // 2 + 1)
        self.directAbove = -1

    def _queued(self) -> None:
        """
        Frames were queued: write them if the transport takes them, else
        enforce C{maxBufferedAmount}.
        """
        backlog = self._backlog
        assert backlog is not None
        if not self._full:
            self._writeBacklog()
            return
        limit = self._settings.options.maxBufferedAmount  # type: ignore[union-attr]
        if limit and backlog.size > limit:
            self._owner._sendBufferOverflowed(backlog.size)  # type: ignore[union-attr]

    def dropWaiting(self) -> None:
        """
        Forget the queued frames not started yet (a large frame partly
        written stays: the peer must receive all of it).
        """
        if self._backlog is not None:
            self._backlog.dropWaiting()

    def _writeBacklog(self) -> None:
        backlog = self._backlog
        assert backlog is not None and self._transport is not None
        if not backlog.writeSome(self._transport.write, self._isFull):
            return
        self._backlog = None
        self._setDirect()
        if self._releaseWhenSent:
            self._releaseWhenSent = False
            self.release()

    def _isFull(self) -> bool:
        return self._full

    # -- The end ------------------------------------------------------------------

    def release(self) -> None:
        """
        Stop being the transport's producer (after our Close frame, nothing
        else is written): at once, or once what is queued is written (the
        rest of a large frame needs the drain notifications).  A TLS
        transport's C{loseConnection} waits for C{unregisterProducer} before
        it sends close_notify.
        """
        if not self._registered:
            return
        if self._backlog is not None:
            self._releaseWhenSent = True
            return
        self._registered = False
        assert self._transport is not None
        self._transport.unregisterProducer()  # type: ignore[attr-defined]
        if self._blocked:
            self._block(False)

    def close(self) -> None:
        """
        The connection is gone: forget what is queued.
        """
        self._backlog = None
        self.directAbove = -1

    # -- IPushProducer, for the transport ---------------------------------------------

    def pauseProducing(self) -> None:
        """
        The transport's write buffer is over its high-water mark: from now
        on frames wait in the backlog (where they are counted against
        C{maxBufferedAmount}) until it drains.
        """
        self._full = True
        if self._backlog is None:
            self._newBacklog()
        self._block(True)

    def resumeProducing(self) -> None:
        """
        The transport has sent what it held: continue the backlog, and only
        once that is done (or waits again) let the connection resume.
        """
        self._full = False
        if self._backlog is not None and self._transport is not None:
            self._writeBacklog()
            if self._full:
                return
        self._block(False)

    def stopProducing(self) -> None:
        """
        The transport is gone; L{close} follows from the connection.
        """

    def _block(self, blocked: bool) -> None:
        self._blocked = blocked
        if self._owner is not None:
            self._owner._outputBlocked(blocked)
