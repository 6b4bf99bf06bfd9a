"""
The WebSocket connection after (and around) the opening handshake.

Design: one Twisted L{Protocol} per connection, its state a L{State} enum
member compared with C{is}, every change of state checked against the
L{TRANSITIONS} table.  Closing and failing are two side machines next to it,
h11-style (L{txws._states}): C{Ours} (our Close frame sent, or the
connection failed) and C{Theirs} (what we still read), each with its own
table, changed together through C{_change}, which asserts the invariants.  Input is parsed once
per C{dataReceived} by L{txws.frames.parseFrames}, which returns plain
tuples; a frame whose payload is still arriving is I{streamed}: each chunk is
unmasked into place and UTF-8 checked as it arrives (fail-fast, RFC 6455
section 8.1).  Fragmentation, the message size limit and UTF-8 are the pure
L{txws._reassembly.Reassembler}'s, which raises L{FrameError} with a
L{CloseCode}; the one C{except FrameError} in C{_deliverBatch} turns that
(and the parser's and the Close frame's errors) into the close.  Application
callbacks that raise are logged and close the connection with 1011; no
exception escapes C{dataReceived}.

Flow control works both ways.  The connection registers a small streaming
producer with its transport: when the transport's write buffer fills, the
connection stops reading from the peer and pauses the application's own
producer (L{WebSocketProtocol.registerProducer}), so a peer that does not
read cannot make us buffer its echoes, pongs or anything else without bound.
The connection is itself an C{IPushProducer} of messages: an application
that calls L{WebSocketProtocol.pauseProducing} gets no further messages and
the transport stops reading until L{WebSocketProtocol.resumeProducing}.

Two mixins hold the application API that is not the state machine: the
sending API (L{txws._sending.Sending}) and Autobahn's frame-streaming
callbacks (L{txws._streaming.FrameStreaming}).  permessage-deflate, once
negotiated by the server or client subclass, is the connection's
L{PerMessageDeflate}: the parser then allows RSV1, the reassembler inflates
and the sending API compresses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IPullProducer, IPushProducer, ITransport
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txws._hosting import ConnectionHost
from txws._mask import FrameAssembler
from txws._output import FrameWriter
from txws._reassembly import Reassembler, StreamingReassembler
from txws._sending import Disconnected, Sending

# The state machine and its side machines live in txws._states; State and
# TRANSITIONS stay importable from here, as they always were.
from txws._states import (
    OURS_TRANSITIONS,
    THEIRS_TRANSITIONS,
    TRANSITIONS,
    Ours,
    State,
    Theirs,
    checkInvariants,
)
from txws._streaming import FrameStreaming, StreamedMessage, streamsFrames
from txws.deflate import RSV1, PerMessageDeflate
from txws.frames import (
    CloseCode,
    FrameError,
    Opcode,
    ParsedFrame,
    PendingFrame,
    buildClosePayload,
    parseClosePayload,
    parseFrames,
)

if TYPE_CHECKING:
    from typing_extensions import Self


__all__ = ["TRANSITIONS", "Disconnected", "State", "WebSocketProtocol", "peerToString"]

_log = Logger()

#: A batch of parsed frames whose delivery stopped when reading was paused:
#: the arguments of L{WebSocketProtocol._deliverBatch} to resume with.
_HeldBatch = tuple[
    list[ParsedFrame], int, Optional[PendingFrame], Optional[FrameError], bytes, int
]


# Looking up an Enum member costs ~45 ns on CPython 3.11 (a descriptor
# call); the per-message paths and the closing code compare against these
# module globals instead.
_CONNECTING = State.CONNECTING
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED
_ACTIVE = Ours.ACTIVE
_CLOSE_SENT = Ours.CLOSE_SENT
_FAILED = Ours.FAILED
_READING = Theirs.READING
_CLOSE_RECEIVED = Theirs.CLOSE_RECEIVED
_STOPPED = Theirs.STOPPED


def peerToString(address: object) -> str:
    """
    Describe a transport address the way Autobahn's C{peer} does.

    @param address: an L{IPv4Address}, L{IPv6Address}, L{UNIXAddress} or
        anything else.
    @return: e.g. C{tcp4:127.0.0.1:5555}, C{tcp6:::1:5555}, C{unix:/path}
        (the port is what follows the last colon).
    """
    if isinstance(address, IPv4Address):
        return f"tcp4:{address.host}:{address.port}"
    if isinstance(address, IPv6Address):
        return f"tcp6:{address.host}:{address.port}"
    if isinstance(address, UNIXAddress):
        name = address.name
        return "unix:" + (name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name))
    return str(address)


class _Partial:
    """
    A frame whose header has been parsed and whose payload is arriving.
    """

    __slots__ = ("assembler", "discard", "fin", "key", "length", "offset", "opcode", "remaining")

    def __init__(self, fin: bool, opcode: int, key: Optional[bytes], length: int) -> None:
        self.fin = fin
        self.opcode = opcode
        self.key = key
        self.length = length
        self.remaining = length
        self.offset = 0
        self.discard = False
        # Created once the frame passed every check (it allocates length).
        self.assembler: Optional[FrameAssembler] = None


# The close codes the connection uses, as the plain ints applications see in
# onClose, localCloseCode and remoteCloseCode (as before CloseCode was used
# here: an IntEnum member's str() is its name on Python 3.10).
_NO_STATUS_RECEIVED = int(CloseCode.NO_STATUS_RECEIVED)
_ABNORMAL_CLOSURE = int(CloseCode.ABNORMAL_CLOSURE)
_GOING_AWAY = int(CloseCode.GOING_AWAY)
_POLICY_VIOLATION = int(CloseCode.POLICY_VIOLATION)
_INTERNAL_ERROR = int(CloseCode.INTERNAL_ERROR)

_CONNECTION_DONE = Failure(ConnectionDone())
#: The most zero bytes written to complete an unfinished frame before a
#: Close frame (beyond, the connection is dropped instead).
_MAX_PADDING = 16 * 1024 * 1024
_UNOPENED = FrameWriter.unopened()
_PAUSED_BY_APP = 1
_PAUSED_BY_TRANSPORT = 2

@implementer(IPushProducer)
class WebSocketProtocol(Sending, FrameStreaming, Protocol):
    """
    Behaviour common to server and client connections.  Applications
    subclass L{txws.server.WebSocketServerProtocol} or
    L{txws.client.WebSocketClientProtocol} and override the C{on*} methods.

    @ivar state: the connection's L{State}.
    @ivar peer: the peer's address, e.g. C{tcp4:127.0.0.1:5555}.
    @ivar isServer: whether this is the server end (clients mask frames).
    @ivar remoteCloseCode: the code of the peer's Close frame, if received.
    @ivar remoteCloseReason: its reason.
    @ivar localCloseCode: the code of the Close frame we sent, if any.
    @ivar localCloseReason: its reason.
    @ivar websocket_protocol_in_use: the negotiated subprotocol, or C{None}.
    """

    factory: ConnectionHost
    transport: Optional[ITransport]
    connected: int
    isServer = True
    #: The close code used when more than C{maxBufferedAmount} bytes wait
    #: for a peer that does not read (1008, policy violation; the hub uses
    #: 4008).
    sendBufferOverflowCode: int = _POLICY_VIOLATION
    # Every per-connection attribute is a slot, Twisted's factory, transport
    # and connected included: CPython 3.11 reads a slot in ~8 ns, where an
    # attribute whose default lives on the class (or in an unshared instance
    # dictionary) takes ~30 ns, and a connection reads a dozen of them per
    # message.  (Slots also keep an idle connection small.)
    __slots__ = (
        "_allowedRsv",
        "_buf",
        "_bytesIn",
        "_closeTick",
        "_deflate",
        "_held",
        "_heldBatch",
        "_heldSize",
        "_messagesIn",
        "_openTick",
        "_ours",
        "_partial",
        "_pausedBits",
        "_pingPayload",
        "_pingTick",
        "_pongTimer",
        "_producer",
        "_reassembler",
        "_streamed",
        "_theirs",
        "_uncleanReason",
        "_validatedText",
        "_writer",
        "connected",
        "factory",
        "localCloseCode",
        "localCloseReason",
        "peer",
        "remoteCloseCode",
        "remoteCloseReason",
        "state",
        "transport",
        "websocket_protocol_in_use",
    )

    state: State
    peer: str
    remoteCloseCode: Optional[int]
    remoteCloseReason: str
    localCloseCode: Optional[int]
    localCloseReason: str
    websocket_protocol_in_use: Optional[str]
    # Receiving.
    _buf: bytes
    _partial: Optional[_Partial]
    _reassembler: Reassembler
    # What the default frame-streaming callbacks collect (their classes only).
    _streamed: StreamedMessage
    # Closing and failing: the two side machines (see L{Ours}, L{Theirs}).
    _ours: Ours
    _theirs: Theirs
    _uncleanReason: str
    # Timers.
    _openTick: Optional[int]
    _closeTick: Optional[int]
    _pingTick: Optional[int]
    _pongTimer: Optional[IDelayedCall]
    _pingPayload: bytes
    # Flow control.
    _pausedBits: int
    _held: Optional[list[bytes]]
    _heldSize: int
    _heldBatch: Optional[_HeldBatch]
    _producer: Optional[IPushProducer]
    # Sending: frames, large frames in pieces, back-pressure (txws._output).
    _writer: FrameWriter
    # permessage-deflate, once negotiated (None: not in use), and the RSV
    # bits the frame parser then allows (0x40).
    _deflate: Optional[PerMessageDeflate]
    _allowedRsv: int
    # Sending a message frame by frame: slots of txws._sending.Sending.
    _validatedText: Optional[bytes]
    # Counted for txws.metrics: messages received and their payload bytes
    # (those sent: slots of txws._sending.Sending).
    _messagesIn: int
    _bytesIn: int

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # The slots get their initial values here, not in __init__, so that a
        # subclass whose __init__ does not call ours still works.
        self = super().__new__(cls)
        self.factory = None  # type: ignore[assignment]  # as on Protocol, until buildProtocol
        self.transport = None
        self.connected = 0
        self.state = _CONNECTING
        self.peer = "<unknown>"
        self.remoteCloseCode = None
        self.remoteCloseReason = ""
        self.localCloseCode = None
        self.localCloseReason = ""
        self.websocket_protocol_in_use = None
        self._buf = b""
        self._partial = None
        self._reassembler = Reassembler()
        self._ours = _ACTIVE
        self._theirs = _READING
        self._uncleanReason = ""
        self._openTick = None
        self._closeTick = None
        self._pingTick = None
        self._pongTimer = None
        self._pingPayload = b""
        self._pausedBits = 0
        self._held = None
        self._heldSize = 0
        self._heldBatch = None
        self._producer = None
        self._writer = _UNOPENED
        self._deflate = None
        self._allowedRsv = 0
        self._outOpcode = 0
        self._outCompressed = False
        self._outFirst = True
        self._outUtf8 = None
        self._validatedText = None
        self._messagesIn = self._bytesIn = self._messagesOut = self._bytesOut = 0
        return self

    # -- Application hooks -------------------------------------------------

    def onOpen(self) -> Any:
        """
        The opening handshake has completed; messages may now be sent.

        @return: nothing, or a Deferred (whose failure closes with 1011).
        """

    def onMessage(self, payload: bytes, isBinary: bool) -> Any:
        """
        A whole message has arrived.

        @param payload: the message (text messages are valid UTF-8 bytes).
        @param isBinary: C{True} for a binary message, C{False} for text.
        @return: nothing, or a Deferred (whose failure closes with 1011).
        """

    def onPing(self, payload: bytes) -> Any:
        """
        A Ping arrived; the Pong has already been sent.

        @param payload: the ping's application data.
        """

    def onPong(self, payload: bytes) -> Any:
        """
        A Pong arrived.

        @param payload: the pong's application data.
        """

    def onClose(self, wasClean: bool, code: int, reason: str) -> Any:
        """
        The connection is closed.  Called exactly once per connection, also
        when the opening handshake failed.

        @param wasClean: C{True} when both Close frames were exchanged and
            neither side failed the connection.
        @param code: the peer's close code when clean (1005 when it sent
            none), else 1006.
        @param reason: the peer's close reason when clean, else a
            description of what happened.
        """

    # -- Twisted protocol ----------------------------------------------------

    def connectionMade(self) -> None:
        """
        Register with the factory and start the opening handshake.
        """
        self.factory.registry.add(self)
        self.peer = peerToString(self.transport.getPeer())  # type: ignore[union-attr]
        if self.factory.options.tcpNoDelay:
            setNoDelay = getattr(self.transport, "setTcpNoDelay", None)
            if setNoDelay is not None:
                # (Not contextlib.suppress: that is three Python calls.)
                try:  # noqa: SIM105
                    setNoDelay(True)
                except OSError:
                    pass
        self._startHandshake()

    def dataReceived(self, data: bytes) -> None:
        """
        Route received bytes: handshake while connecting, frames once open.

        @param data: the bytes.
        """
        state = self.state
        if state is not _OPEN and state is not _CLOSING:
            if state is _CONNECTING:
                self._safely(self._handshakeData, data)
            return
        if self._pausedBits or self._held:
            self._hold(data)
            return
        if self._theirs is not _READING:
            return
        try:
            if self._pongTimer is not None and self.factory.options.autoPingRestartOnAnyTraffic:
                self._keepaliveProof()
            self._deliverBatch(None, 0, None, None, data, 0)
        except Exception:
            self._internalError()

    def connectionLost(self, reason: Failure = _CONNECTION_DONE) -> None:
        """
        Cancel timers, leave the factory and report the close to the
        application, exactly once.

        @param reason: why the transport went away.
        """
        if self.state is _CLOSED:
            return
        wasOpen = self.state is not _CONNECTING
        self._change(_CLOSED)
        self._cancelOpenTimeout()
        self._stopKeepalive()
        if self._closeTick is not None:
            self.factory.registry.closeTimeouts.cancel(self, self._closeTick)
            self._closeTick = None
        producer, self._producer = self._producer, None
        if producer is not None:
            # As Twisted's transports do: the producer learns that nobody
            # will consume what it makes any more.
            try:
                producer.stopProducing()
            except Exception:
                _log.failure("stopProducing raised for the connection with {peer}", peer=self.peer)
        self._held = None
        self._heldBatch = None
        # (zlib's state, up to ~50 KiB, goes with the connection at once.)
        self._deflate = None
        self._reassembler.decompressor = None
        self._writer.close()
        self.factory.registry.remove(self)
        if self._ours is _CLOSE_SENT and self._theirs is _CLOSE_RECEIVED:
            clean = True
            code = (
                self.remoteCloseCode
                if self.remoteCloseCode is not None
                else _NO_STATUS_RECEIVED
            )
            text = self.remoteCloseReason
        else:
            clean = False
            code = _ABNORMAL_CLOSURE
            text = self._uncleanReason or (
                "connection lost: " + reason.getErrorMessage()
                if wasOpen
                else "connection lost during the opening handshake: " + reason.getErrorMessage()
            )
        self._handshakeEnded(reason)
        self._callApp(self.onClose, clean, code, text)

    # -- Hooks for the server and client subclasses ---------------------------

    def _startHandshake(self) -> None:
        raise NotImplementedError()

    def _handshakeData(self, data: bytes) -> None:
        raise NotImplementedError()

    def _handshakeEnded(self, reason: Failure) -> None:
        """
        The transport is gone; a client reports a handshake that never
        completed to whoever waits for it.
        """

    # -- State ----------------------------------------------------------------

    def _setState(self, new: State) -> None:
        self._change(state=new)

    def _change(
        self,
        state: Optional[State] = None,
        ours: Optional[Ours] = None,
        theirs: Optional[Theirs] = None,
    ) -> None:
        """
        Change L{State} and the side machines together, each change checked
        against its table, then L{checkInvariants} on the result.

        @raise AssertionError: for an illegal change.
        """
        if state is not None:
            if (self.state, state) not in TRANSITIONS:
                raise AssertionError(
                    f"illegal WebSocket state change {self.state.name} -> {state.name}"
                )
            self.state = state
        if ours is not None:
            if (self._ours, ours) not in OURS_TRANSITIONS:
                raise AssertionError(f"illegal change of our side {self._ours.name} -> {ours.name}")
            self._ours = ours
        if theirs is not None:
            if (self._theirs, theirs) not in THEIRS_TRANSITIONS:
                raise AssertionError(
                    f"illegal change of their side {self._theirs.name} -> {theirs.name}"
                )
            self._theirs = theirs
        if ours is not None or theirs is not None or state is _CLOSING:
            # (Going OPEN or CLOSED alone cannot break an invariant: the
            # rest of the handshake hardly needs the check, and pays for it.)
            checkInvariants(self.state, self._ours, self._theirs)

    def _stopReading(self) -> None:
        """
        Read nothing more from the peer (if we still were).
        """
        if self._theirs is _READING:
            self._change(theirs=_STOPPED)

    def _opened(self, leftover: bytes) -> None:
        """
        The handshake succeeded: go OPEN, start keepalive and flow control,
        call C{onOpen}, then process bytes that followed the handshake.
        """
        self._change(_OPEN)
        self._cancelOpenTimeout()
        options = self.factory.options
        if streamsFrames(type(self)):
            self._reassembler = StreamingReassembler()
            self._streamed = StreamedMessage()
        reassembler = self._reassembler
        reassembler.limit = options.maxMessagePayloadSize
        reassembler.maxFragments = options.maxMessageFragments
        if self._deflate is not None:
            reassembler.decompressor = self._deflate.decompressor
            self._allowedRsv = RSV1
        writeBufferSize = options.writeBufferSize
        _setWriteBufferSize(self.transport, writeBufferSize)
        self._writer = FrameWriter(
            self,
            self.transport,
            None if self.isServer else self.factory.randomBytes,
            writeBufferSize,
            self.factory,
        )
        self._scheduleKeepalive()
        self._callApp(self.onOpen)
        if leftover and self.state is not _CLOSED:
            self.dataReceived(leftover)

    # -- Receiving --------------------------------------------------------------

    def _safely(self, method: Callable[..., None], *args: Any) -> None:
        try:
            method(*args)
        except Exception:
            self._internalError()

    def _internalError(self) -> None:
        _log.failure("Internal error on the WebSocket connection with {peer}", peer=self.peer)
        self._stopReading()
        self._fail(_INTERNAL_ERROR, "internal error")

    def _deliverBatch(
        self,
        frames: Optional[list[ParsedFrame]],
        index: int,
        pending: Optional[PendingFrame],
        error: Optional[FrameError],
        data: bytes,
        consumed: int,
    ) -> None:
        """
        Process received bytes (C{frames} is C{None}), or resume a batch of
        parsed frames held while reading was paused.

        This is the one place where a peer's violation, raised as a
        L{FrameError} by the reassembler, the Close frame parser or returned
        by L{parseFrames}, becomes the close (L{_peerFailed}).  A violation
        that leaves the input parseable (message size, UTF-8, fragmentation)
        fails the connection and processing goes on with the frames after
        it, in which data is discarded and control frames still count (the
        peer's Close completes the closing handshake); one that does not
        stops reading first.
        """
        reassembler = self._reassembler
        while True:
            try:
                if frames is None:
                    if self._partial is not None:
                        piece, data = data, b""
                        self._feedPartial(piece)  # what follows the frame -> _buf
                        data, self._buf = self._buf, b""
                        if not data or self._theirs is not _READING:
                            return
                        if self._pausedBits:
                            self._hold(data)
                            return
                    elif self._buf:
                        data = self._buf + data
                        self._buf = b""
                    frames, consumed, pending, error = parseFrames(
                        data,
                        self.isServer,
                        self.factory.options.maxFramePayloadSize,
                        self._allowedRsv,
                    )
                count = len(frames)
                while index < count:
                    fin, opcode, payload = frames[index]
                    index += 1
                    if opcode >= 0x8:
                        if opcode & RSV1:
                            # The first frame of a compressed message.
                            whole = reassembler.compressed(fin, opcode & 0x0F, payload)
                            if whole is not None:
                                self._deliverMessage(*whole)
                            elif reassembler.events:
                                self._deliverEvents()
                        else:
                            self._handleControl(opcode, payload)
                    elif fin and opcode:
                        # A whole message in one frame, the common case.
                        message = reassembler.message(opcode, payload)
                        if message is not None:
                            self._deliverMessage(message, opcode == 0x2)
                        elif reassembler.events:
                            self._deliverEvents()
                    else:
                        whole = reassembler.frame(fin, opcode, payload)
                        if whole is not None:
                            self._deliverMessage(*whole)
                        elif reassembler.events:
                            self._deliverEvents()
                    if self._theirs is not _READING:
                        return
                    if self._pausedBits and (
                        index < count or pending or error or consumed < len(data)
                    ):
                        self._heldBatch = (frames, index, pending, error, data, consumed)
                        return
                if error is not None:
                    self._stopReading()
                    raise error
                if pending is not None:
                    start, pending = pending, None
                    self._startPartial(*start)
                if consumed < len(data):
                    if self._partial is not None:
                        rest = memoryview(data)[consumed:]
                        consumed = len(data)
                        self._feedPartial(rest)
                    else:
                        self._buf = data[consumed:]
                return
            except FrameError as e:
                self._peerFailed(e)
                if self._theirs is not _READING:
                    return

    def _peerFailed(self, error: FrameError) -> None:
        """
        The peer broke a rule: fail the connection with the error's close
        code (RFC 6455 section 7.1.7).
        """
        self.factory.registry.frameRefused(error.code)
        self._fail(error.code, error.reason)

    def _startPartial(self, fin: bool, opcode: int, key: Optional[bytes], length: int) -> None:
        compressed = opcode & RSV1
        if compressed:
            opcode &= 0x0F
        partial = self._partial = _Partial(fin, opcode, key, length)
        # (The reassembler checks a data frame before its payload is
        # buffered.)
        reassembler = self._reassembler
        if opcode >= 0x8 or reassembler.begin(opcode, length, bool(compressed)):
            partial.assembler = FrameAssembler(length, key)
        if reassembler.events:
            self._deliverEvents()

    def _feedPartial(self, data: bytes | memoryview) -> None:
        """
        Take the next bytes of the streamed frame's payload; what follows
        the frame's end goes to C{_buf}, before anything can raise.
        """
        partial = self._partial
        assert partial is not None
        size = len(data)
        take = partial.remaining if partial.remaining < size else size
        if take < size:
            self._buf = bytes(data[take:])
        start = partial.offset
        partial.offset += take
        partial.remaining -= take
        assembler = partial.assembler
        reassembler = self._reassembler
        if assembler is not None and partial.opcode < 0x8 and reassembler.discarding:
            assembler = partial.assembler = None
        if assembler is not None and take:
            assembler.feed(data[:take] if take < size else data)
            if partial.opcode < 0x8 and reassembler.checksText:
                reassembler.piece(assembler.view(start, start + take))
                if reassembler.events:
                    self._deliverEvents()
        if partial.remaining:
            return
        self._partial = None
        if assembler is not None:
            if partial.opcode >= 0x8:
                self._handleControl(partial.opcode, assembler.take())
            else:
                whole = reassembler.end(partial.fin, assembler.take())
                if whole is not None:
                    self._deliverMessage(*whole)
                elif reassembler.events:
                    self._deliverEvents()

    def _handleControl(self, opcode: int, payload: bytes) -> None:
        if opcode == Opcode.CLOSE:
            self._receivedClose(payload)
        elif opcode == Opcode.PING:
            if self._ours is _FAILED:
                return
            if self.state is _OPEN:
                self._writer.writeFrame(0x8A, payload)
            self._callApp(self.onPing, payload)
        else:
            if self._pongTimer is not None and payload == self._pingPayload:
                self._keepaliveProof()
            if self._ours is not _FAILED:
                self._callApp(self.onPong, payload)

    @property
    def _failed(self) -> bool:
        """
        Whether the connection has failed (for L{FrameStreaming}).
        """
        return self._ours is _FAILED

    def _deliverMessage(self, payload: bytes, isBinary: bool) -> None:
        self._messagesIn += 1
        self._bytesIn += len(payload)
        if not isBinary:
            # While onMessage runs, sending this very (immutable, already
            # validated) text back needs no second UTF-8 check: an echo of
            # non-ASCII text would otherwise decode it twice.
            self._validatedText = payload
        try:
            result = self.onMessage(payload, isBinary)
        except Exception:
            self._applicationFailed(Failure(), "onMessage")
            return
        finally:
            self._validatedText = None
        # (isinstance against Deferred, an ABCMeta class, is slow: test None first.)
        if result is not None and isinstance(result, Deferred):
            result.addErrback(self._applicationFailed, "onMessage")

    def _callApp(self, callback: Callable[..., Any], *args: Any) -> None:
        try:
            result = callback(*args)
        except Exception:
            self._applicationFailed(Failure(), callback.__name__)
            return
        # (isinstance against Deferred, an ABCMeta class, is slow: test None first.)
        if result is not None and isinstance(result, Deferred):
            result.addErrback(self._applicationFailed, callback.__name__)

    def _applicationFailed(self, failure: Failure, where: str) -> None:
        _log.failure(
            "WebSocket application callback {callback} raised; closing the connection "
            "with {peer} with 1011",
            failure,
            callback=where,
            peer=self.peer,
        )
        if self.state is _OPEN or self.state is _CLOSING:
            self._fail(_INTERNAL_ERROR, "", logIt=False)
        elif self.state is _CONNECTING and self.transport is not None:
            self.transport.loseConnection()

    # -- Closing ------------------------------------------------------------

    def _receivedClose(self, payload: bytes) -> None:
        try:
            code, reason = parseClosePayload(payload)
        except FrameError:
            self._stopReading()
            raise
        self.remoteCloseCode = code
        self.remoteCloseReason = reason
        if self.state is _OPEN:
            self._sendCloseFrame(
                None if code == _NO_STATUS_RECEIVED else code, "", _CLOSE_RECEIVED
            )
        else:
            self._change(theirs=_CLOSE_RECEIVED)
        if self.isServer:
            # RFC 6455 section 7.1.1: the server closes the TCP connection
            # first, so that it, not the client, holds TIME_WAIT.
            self.transport.loseConnection()  # type: ignore[union-attr]

    def _sendCloseFrame(
        self, code: Optional[int], reason: str, theirs: Optional[Theirs] = None
    ) -> None:
        """
        Go CLOSING and send our Close frame (from OPEN).  The state changes
        first, so that nothing sent while the frame is written (a producer
        resumed, an application callback) can follow it on the wire.

        @param theirs: the change of L{Theirs} that comes with it, if any
            (their Close, which ours answers).
        """
        payload = buildClosePayload(code, reason)
        self._change(
            _CLOSING, _CLOSE_SENT if self._ours is _ACTIVE else None, theirs
        )
        self.localCloseCode = code
        self.localCloseReason = reason
        self._stopKeepalive()
        writer = self._writer
        if writer.frameLeft:
            # A Close may not interrupt a frame begun with beginMessageFrame:
            # the frame is completed with zero bytes (valid UTF-8 too; its
            # message stays unfinished, which the peer's Close discards),
            # unless that would take more than _MAX_PADDING.
            left = writer.frameLeft
            if left > _MAX_PADDING:
                self._uncleanReason = "closed while a frame was incomplete"
                _abort(self.transport)
                return
            while writer.frameLeft:
                writer.writeFrameData(bytes(min(writer.frameLeft, 65536)))
        writer.writeFrame(0x88, payload)
        # Nothing but a Close frame is written after ours.
        writer.release()
        timeout = self.factory.options.closeHandshakeTimeout
        if timeout and self._closeTick is None:
            self._closeTick = self.factory.registry.closeTimeouts.schedule(self, timeout)

    def _closeTimedOut(self) -> None:
        self._closeTick = None
        if self.state is _CLOSED:
            return
        if not self._uncleanReason:
            self._uncleanReason = (
                "peer did not close the TCP connection in time"
                if self._theirs is _CLOSE_RECEIVED
                else "closing handshake timed out"
            )
        _log.info(
            "WebSocket closing handshake with {peer} timed out; aborting", peer=self.peer
        )
        _abort(self.transport)

    def _fail(self, code: int, reason: str, logIt: bool = True) -> None:
        """
        Fail the WebSocket connection (RFC 6455 section 7.1.7): send a Close
        frame with C{code} once, discard data from then on and let the
        closing handshake (bounded by its timeout) end the connection.  If
        reading has stopped (L{_stopReading}: the input is unusable), our
        side of TCP is shut at once.

        @param code: the close code.
        @param reason: our own short explanation (never peer data).
        @param logIt: whether to log the failure (callers that already
            logged pass C{False}).
        """
        if self._ours is _FAILED or self.state is _CLOSED:
            return
        code = int(code)  # (a FrameError's CloseCode: applications see plain ints)
        self._change(ours=_FAILED)
        self._reassembler.discard()
        self._uncleanReason = f"{reason or 'failed'} (close code {code})"
        if logIt:
            _log.info(
                "Failing WebSocket connection with {peer}: {reason} (close code {code})",
                peer=self.peer,
                reason=reason,
                code=code,
            )
        if self.state is _OPEN:
            self._sendCloseFrame(code, _truncateReason(reason))
        if self.state is _CLOSING and self._theirs is not _READING:
            if self.isServer and self._theirs is _CLOSE_RECEIVED:
                self.transport.loseConnection()  # type: ignore[union-attr]
            else:
                _halfClose(self.transport)

    def sendClose(self, code: Optional[int] = None, reason: Optional[str] = None) -> None:
        """
        Start the closing handshake (RFC 6455 section 7.1.2).  Does nothing
        if it has already started.

        @param code: a close code (1000, 3000-4999, or another code that may
            be sent), or C{None} for a Close frame without one.
        @param reason: a reason of at most 123 UTF-8 bytes; needs a code.
        @raise ValueError: for a code that may not be sent or a bad reason.
        """
        payloadCheck = buildClosePayload(code, reason or "")
        del payloadCheck
        if self.state is _CONNECTING:
            if self.transport is not None:
                self.transport.loseConnection()
            return
        if self.state is not _OPEN:
            return
        self._sendCloseFrame(code, reason or "")

    def _shutDown(self, code: int, reason: str) -> None:
        if self.state is _OPEN:
            self.sendClose(code, reason)
        elif self.state is _CONNECTING and self.transport is not None:
            _abort(self.transport)

    # -- Sending ------------------------------------------------------------

    def _sendBufferOverflowed(self, size: int) -> None:
        """
        The peer does not read what we send (L{WriterOwner}): drop what waits
        (it would never be read) and fail the connection with
        L{sendBufferOverflowCode}.
        """
        if self.state is not _OPEN:
            return
        self._writer.dropWaiting()
        code = self.sendBufferOverflowCode
        _log.info(
            "WebSocket peer {peer} does not read: {size} bytes waiting, over "
            "maxBufferedAmount; closing with {code}",
            peer=self.peer,
            size=size,
            code=code,
        )
        self._fail(code, "send buffer limit exceeded", logIt=False)

    def _outputBlocked(self, blocked: bool) -> None:
        """
        The transport's write buffer filled or drained (L{WriterOwner}):
        stop or resume reading, and pause or resume the application's
        producer.
        """
        self._setPaused(_PAUSED_BY_TRANSPORT, blocked)
        if self._producer is not None:
            if blocked:
                self._producer.pauseProducing()
            else:
                self._producer.resumeProducing()

    @property
    def websocket_extensions_in_use(self) -> list[PerMessageDeflate]:
        """
        The extensions negotiated, as Autobahn names them: the connection's
        L{PerMessageDeflate} when permessage-deflate is in use, else empty.
        """
        return [] if self._deflate is None else [self._deflate]

    # -- Keepalive ------------------------------------------------------------

    def _scheduleKeepalive(self) -> None:
        interval = self.factory.options.autoPingInterval
        if interval and self.state is _OPEN:
            self._pingTick = self.factory.registry.keepalive.schedule(self, interval)

    def _keepalivePing(self) -> None:
        self._pingTick = None
        if self.state is not _OPEN:
            return
        options = self.factory.options
        self._pingPayload = self.factory.randomBytes(options.autoPingSize)
        self._writer.writeFrame(0x89, self._pingPayload)
        if options.autoPingTimeout:
            self._pongTimer = self.factory.reactor.callLater(
                options.autoPingTimeout, self._keepaliveTimedOut
            )
        else:
            self._scheduleKeepalive()

    def _keepaliveProof(self) -> None:
        if self._pongTimer is not None:
            if self._pongTimer.active():
                self._pongTimer.cancel()
            self._pongTimer = None
            self._pingPayload = b""
            self._scheduleKeepalive()

    def _keepaliveTimedOut(self) -> None:
        self._pongTimer = None
        self._fail(_INTERNAL_ERROR, "keepalive ping timeout")

    def _stopKeepalive(self) -> None:
        if self._pingTick is not None:
            self.factory.registry.keepalive.cancel(self, self._pingTick)
            self._pingTick = None
        if self._pongTimer is not None:
            if self._pongTimer.active():
                self._pongTimer.cancel()
            self._pongTimer = None

    # -- Opening handshake timeout ----------------------------------------------

    def _startOpenTimeout(self) -> None:
        timeout = self.factory.options.openHandshakeTimeout
        if timeout:
            self._openTick = self.factory.registry.openTimeouts.schedule(self, timeout)

    def _cancelOpenTimeout(self) -> None:
        if self._openTick is not None:
            self.factory.registry.openTimeouts.cancel(self, self._openTick)
            self._openTick = None

    def _openTimedOut(self) -> None:
        """
        The opening handshake did not complete in time.
        """
        raise NotImplementedError()

    # -- Flow control -----------------------------------------------------------

    def pauseProducing(self) -> None:
        """
        Stop delivering messages, and stop reading from the peer, until
        L{resumeProducing} (C{IPushProducer}).
        """
        self._setPaused(_PAUSED_BY_APP, True)

    def resumeProducing(self) -> None:
        """
        Deliver messages again, starting with any held back while paused.
        """
        self._setPaused(_PAUSED_BY_APP, False)

    def stopProducing(self) -> None:
        """
        The consumer of our messages is gone: close the connection with 1001.
        """
        if self.state is _OPEN:
            self.sendClose(_GOING_AWAY)
        elif self.transport is not None and self.state is _CONNECTING:
            self.transport.loseConnection()

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        """
        Register the application's producer of outgoing messages.  It is
        paused while the transport's write buffer is over its high-water
        mark and resumed once it has drained.

        @param producer: an C{IPushProducer}.
        @param streaming: must be C{True}; pull producers are not supported.
        @raise ValueError: for a pull producer, or if one is registered.
        """
        if not streaming or (IPullProducer.providedBy(producer) and not IPushProducer.providedBy(
            producer
        )):
            raise ValueError("only streaming (push) producers can be registered")
        if self._producer is not None:
            raise ValueError("a producer is already registered")
        self._producer = producer
        if self._pausedBits & _PAUSED_BY_TRANSPORT:
            producer.pauseProducing()

    def unregisterProducer(self) -> None:
        """
        Forget the producer registered with L{registerProducer}.
        """
        self._producer = None

    def _setPaused(self, bit: int, paused: bool) -> None:
        before = self._pausedBits
        after = before | bit if paused else before & ~bit
        self._pausedBits = after
        transport = self.transport
        if transport is None or self.state is _CLOSED:
            return
        if not before and after:
            transport.pauseProducing()  # type: ignore[attr-defined]
        elif before and not after:
            transport.resumeProducing()  # type: ignore[attr-defined]
            self._safely(self._releaseHeld)

    def _hold(self, data: bytes) -> None:
        if self._held is None:
            self._held = []
        self._held.append(data)
        self._heldSize += len(data)
        if self._heldSize > self.factory.options.maxPendingInput + 256 * 1024:
            self._held = None
            self._heldSize = 0
            self._stopReading()
            self._fail(_POLICY_VIOLATION, "peer kept sending while reading was paused")

    def _releaseHeld(self) -> None:
        while not self._pausedBits and self.state is not _CLOSED:
            if self._heldBatch is not None:
                batch, self._heldBatch = self._heldBatch, None
                self._deliverBatch(*batch)
            elif self._held:
                data = b"".join(self._held)
                self._held = None
                self._heldSize = 0
                self.dataReceived(data)
            else:
                return


def _setWriteBufferSize(transport: object, size: int) -> None:
    """
    Set the high-water mark at which a Twisted transport (and whatever it
    wraps, e.g. TCP below TLS) pauses its producer.  Twisted's default, 64
    KiB, is below one large message: every 64 KiB echo would stop reading
    and start it again (measured: 64 KiB echoes cost 1.4-2x more CPU).
    """
    for _ in range(3):
        if transport is None:
            return
        if isinstance(getattr(transport, "bufferSize", None), int):
            transport.bufferSize = size  # type: ignore[attr-defined]
        transport = getattr(transport, "transport", None)


def _truncateReason(reason: str) -> str:
    encoded = reason.encode("utf-8")
    if len(encoded) <= 123:
        return reason
    return encoded[:123].decode("utf-8", "ignore")


def _abort(transport: object) -> None:
    abort = getattr(transport, "abortConnection", None)
    if abort is not None:
        abort()
    else:
        transport.loseConnection()  # type: ignore[attr-defined]


def _halfClose(transport: object) -> None:
    """
    Shut our sending side after a Close frame while still reading, so that
    data the peer sent before it saw our Close does not turn our close into
    a reset that could destroy the Close frame in flight.
    """
    loseWrite = getattr(transport, "loseWriteConnection", None)
    if loseWrite is not None:
        try:
            loseWrite()
            return
        except (AttributeError, NotImplementedError):
            pass
    transport.loseConnection()  # type: ignore[attr-defined]
