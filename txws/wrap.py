"""
Carry any Twisted stream protocol over WebSocket, as the old txWS project
did: L{WebSocketWrappingFactory} wraps an ordinary C{Factory} so that its
protocols are reached over a WebSocket connection, and
L{WebSocketWrappingClientFactory} does the same for client protocols.

Design: the WebSocket connection is the wrapped protocol's transport.  When
the connection opens, the wrapped factory builds a protocol and it is
connected to a L{WrappedTransport}, a shim that turns each C{write} into one
binary message (split at L{WebSocketWrappingFactory.messageSize}) and each
received message's payload into C{dataReceived}; message boundaries carry no
meaning, exactly as TCP segments carry none.  The shim keeps little state of
its own (whether the wrapped protocol closed or aborted, and its producer):
sending, closing, flow control and the peer's address are delegated to the
L{WebSocketProtocol}, so the connection's rules (Close codes, back-pressure,
callbacks that raise close with 1011) apply to the wrapped protocol
unchanged; only writes after close are dropped instead of raising, as
Twisted's transports drop them.  Browsers that cannot send binary
messages may negotiate the C{base64} subprotocol (websockify's convention):
then both directions are text messages holding base64.  The server and
client protocols share one mixin, L{_WrappingMixin}; only the class they
build on differs.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Optional, Protocol

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IProducer,
    IProtocol,
    IPullProducer,
    IPushProducer,
    IReactorTime,
    ITransport,
)
from twisted.internet.protocol import ClientFactory, Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from txws._version import __version__
from txws.client import WebSocketClientFactory, WebSocketClientProtocol
from txws.handshake import ConnectionRequest, ConnectionResponse
from txws.options import WebSocketOptions
from txws.protocol import Disconnected, State, WebSocketProtocol
from txws.server import ConnectionDeny, WebSocketServerFactory, WebSocketServerProtocol

if TYPE_CHECKING:
    from twisted.internet.interfaces import IConnector

__all__ = [
    "BASE64_PROTOCOL",
    "BINARY_PROTOCOL",
    "WebSocketWrappingClientFactory",
    "WebSocketWrappingClientProtocol",
    "WebSocketWrappingFactory",
    "WebSocketWrappingProtocol",
    "WrappedTransport",
    "WrappingWebSocketClientFactory",
    "WrappingWebSocketClientProtocol",
    "WrappingWebSocketServerFactory",
    "WrappingWebSocketServerProtocol",
]

_log = Logger()

#: The subprotocol under which stream bytes travel as binary messages.
BINARY_PROTOCOL = "binary"
#: The subprotocol under which stream bytes travel base64-encoded in text
#: messages, in both directions (for peers that cannot send binary).
BASE64_PROTOCOL = "base64"

#: Close codes of a clean closing handshake that the wrapped protocol sees
#: as an orderly end of the stream (C{ConnectionDone}); any other close is
#: reported as C{ConnectionLost}.
_NORMAL_CLOSE_CODES = frozenset({1000, 1001, 1005})


class _WrappingSettings(Protocol):
    """
    What a wrapping protocol needs from its factory.
    """

    wrappedFactory: Factory
    acceptText: bool
    messageSize: int


@implementer(IPushProducer)
class _PullProducerDriver:
    """
    Drives a pull producer registered through a L{WrappedTransport}: while
    the connection is not applying back-pressure, the producer is asked for
    its next chunk once per reactor iteration.  The driver is registered
    with the connection as a push producer, so the connection pauses and
    resumes it as its transport's write buffer fills and drains.
    """

    def __init__(
        self, producer: IPullProducer, reactor: IReactorTime, connection: WebSocketProtocol
    ) -> None:
        self._producer = producer
        self._reactor = reactor
        self._connection = connection
        self._paused = False
        self._stopped = False
        self._call: Optional[IDelayedCall] = None

    def _schedule(self) -> None:
        if self._call is None and not self._paused and not self._stopped:
            self._call = self._reactor.callLater(0, self._pull)

    def _cancel(self) -> None:
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _pull(self) -> None:
        self._call = None
        if self._paused or self._stopped:
            return
        try:
            self._producer.resumeProducing()
        except Exception:
            _log.failure(
                "Producer of the wrapped protocol on the WebSocket connection with {peer} "
                "raised; closing with 1011",
                peer=self._connection.peer,
            )
            self.halt()
            self._connection.sendClose(1011)
            return
        self._schedule()

    def start(self) -> None:
        """
        Begin pulling.
        """
        self._schedule()

    def halt(self) -> None:
        """
        Stop pulling for good (the producer was unregistered).
        """
        self._stopped = True
        self._cancel()

    def pauseProducing(self) -> None:
        """
        The connection's transport is full: stop pulling.
        """
        self._paused = True
        self._cancel()

    def resumeProducing(self) -> None:
        """
        The connection's transport drained: pull again.
        """
        self._paused = False
        self._schedule()

    def stopProducing(self) -> None:
        """
        The connection is gone: stop pulling and tell the producer.
        """
        self.halt()
        self._producer.stopProducing()


@implementer(ITransport, IConsumer, IPushProducer)
class WrappedTransport:
    """
    The transport a wrapped stream protocol writes to: a view of one
    WebSocket connection as a byte stream.

    Each C{write} becomes one or more binary messages (text messages in
    base64 under the C{base64} subprotocol); writes on a connection that is
    closing or closed are dropped silently, as Twisted's transports drop
    them.  Producers and C{pauseProducing}/C{resumeProducing} are delegated
    to the connection, so back-pressure works in both directions: a full
    socket pauses the wrapped protocol's producer, and a wrapped protocol
    that pauses its transport stops the connection from reading the peer.

    @ivar connection: the WebSocket connection carrying the stream.
    @ivar base64: whether the C{base64} subprotocol was negotiated.
    @ivar messageSize: writes larger than this many bytes are sent as
        several messages (a peer's message size limit cannot be hit by a
        single large write).
    @ivar closeCode: the close code L{loseConnection} sends (1000), or
        C{None} for a Close frame without one (as Autobahn's wrapping
        sends).
    """

    closeCode: Optional[int] = 1000

    def __init__(
        self, connection: WebSocketProtocol, base64: bool = False, messageSize: int = 64 * 1024
    ) -> None:
        """
        @param connection: the open WebSocket connection.
        @param base64: send text messages holding base64 instead of binary
            messages.
        @param messageSize: the largest message a write is sent in (before
            base64 encoding); at least 1.
        @raise ValueError: if C{messageSize} is below 1.
        """
        if messageSize < 1:
            raise ValueError("messageSize must be at least 1")
        self.connection = connection
        self.base64 = base64
        self.messageSize = messageSize
        self._aborted = False
        self._closing = False
        self._driver: Optional[_PullProducerDriver] = None
        self._producer: Optional[IProducer] = None

    @property
    def disconnecting(self) -> bool:
        """
        Whether the connection is closing or closed, or L{loseConnection}
        was called (Twisted's protocols, e.g. C{LineReceiver}, stop
        processing input once it is true).
        """
        return self._closing or self._aborted or self.connection.state is not State.OPEN

    def _canWrite(self) -> bool:
        return not self._aborted and self.connection.state is State.OPEN

    # -- ITransport / IConsumer ------------------------------------------

    def write(self, data: bytes) -> None:
        """
        Send C{data} to the peer as one or more messages; an empty write
        sends nothing, and writes once the connection is closing are
        dropped.

        @param data: the bytes.
        """
        if not data or not self._canWrite():
            return
        size = self.messageSize
        if len(data) <= size:
            chunks: Iterable[bytes] = (bytes(data),)
        else:
            view = memoryview(data)
            chunks = (bytes(view[start : start + size]) for start in range(0, len(view), size))
        send = self.connection.sendMessage
        try:
            for chunk in chunks:
                if self.base64:
                    send(binascii.b2a_base64(chunk, newline=False))
                else:
                    send(chunk, isBinary=True)
        except Disconnected:
            pass

    def writeSequence(self, data: Iterable[bytes]) -> None:
        """
        Send the concatenation of C{data}, like L{write}.

        @param data: the byte strings.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close the connection cleanly with code 1000.  Everything written so
        far has already been handed to the connection; if a producer is
        registered, the close waits until it is unregistered (as
        C{ITransport.loseConnection} promises).  No more data is delivered
        to the wrapped protocol from now on.
        """
        self._closing = True
        if self._producer is None:
            self.connection.sendClose(self.closeCode)

    def abortConnection(self) -> None:
        """
        Drop the underlying connection at once, without a closing handshake.
        """
        self._aborted = True
        transport = self.connection.transport
        if transport is None:
            return
        abort = getattr(transport, "abortConnection", None)
        if abort is not None:
            abort()
        else:
            transport.loseConnection()

    def getPeer(self) -> IAddress:
        """
        @return: the address of the WebSocket peer (the real TCP peer).
        """
        transport = self.connection.transport
        assert transport is not None
        return transport.getPeer()

    def getHost(self) -> IAddress:
        """
        @return: the local address of the WebSocket connection.
        """
        transport = self.connection.transport
        assert transport is not None
        return transport.getHost()

    def registerProducer(self, producer: IProducer, streaming: bool) -> None:
        """
        Register a producer of the wrapped protocol's writes.  A streaming
        (push) producer is paused and resumed as the connection's socket
        fills and drains; a pull producer is asked for data once per reactor
        iteration while the socket is not full.

        @param producer: an C{IPushProducer} or C{IPullProducer}.
        @param streaming: C{True} for a push producer.
        @raise RuntimeError: if a producer is already registered.
        """
        if self._producer is not None:
            raise RuntimeError(f"cannot register producer {producer!r}: one is already registered")
        if self.connection.state is State.CLOSED:
            producer.stopProducing()
            return
        if streaming:
            self.connection.registerProducer(producer, True)  # type: ignore[arg-type]
            self._producer = producer
            return
        driver = _PullProducerDriver(
            producer,  # type: ignore[arg-type]
            self.connection.factory.reactor,
            self.connection,
        )
        self.connection.registerProducer(driver, True)
        self._producer = producer
        self._driver = driver
        driver.start()

    def unregisterProducer(self) -> None:
        """
        Forget the registered producer, and close the connection if
        L{loseConnection} was waiting for that.
        """
        if self._producer is None:
            return
        self.connection.unregisterProducer()
        self._producer = None
        if self._driver is not None:
            self._driver.halt()
            self._driver = None
        if self._closing:
            self.connection.sendClose(self.closeCode)

    # -- IPushProducer ---------------------------------------------------

    def pauseProducing(self) -> None:
        """
        Stop delivering the peer's data (and stop reading from the peer)
        until L{resumeProducing}.
        """
        self.connection.pauseProducing()

    def resumeProducing(self) -> None:
        """
        Deliver the peer's data again.
        """
        self.connection.resumeProducing()

    def stopProducing(self) -> None:
        """
        The wrapped protocol wants no more data: close the connection with
        1001 (going away).
        """
        self.connection.stopProducing()

    # -- Connection events -----------------------------------------------

    def _forgetProducer(self) -> None:
        """
        The connection is gone (and has told a registered producer, or the
        driver of a pull producer, to stop): drop our references to them.
        """
        self._producer = None
        self._driver = None


def _lossReason(wasClean: bool, code: int, reason: str) -> Failure:
    """
    @return: what a wrapped protocol's C{connectionLost} receives for a
        WebSocket close: C{ConnectionDone} for a clean closing handshake
        with a normal code, C{ConnectionLost} otherwise.
    """
    if wasClean and code in _NORMAL_CLOSE_CODES:
        return Failure(ConnectionDone(f"WebSocket closed cleanly (close code {code})"))
    if wasClean:
        return Failure(ConnectionLost(f"WebSocket closed with code {code}: {reason}"))
    return Failure(ConnectionLost(f"WebSocket connection lost: {reason}"))


class _WrappingMixin(WebSocketProtocol):
    """
    The wrapping behaviour shared by L{WebSocketWrappingProtocol} and
    L{WebSocketWrappingClientProtocol}; put before the server or client
    protocol class in the bases.

    @ivar wrappedProtocol: the wrapped stream protocol, once the connection
        is open and the wrapped factory built one.
    @ivar wrappedTransport: its L{WrappedTransport}.
    """

    wrappedProtocol: Optional[IProtocol] = None
    wrappedTransport: Optional[WrappedTransport] = None
    _lostReported = False
    #: The code the wrapped protocol's C{loseConnection} closes with.
    _closeCode: Optional[int] = 1000

    def _wrappingSettings(self) -> _WrappingSettings:
        raise NotImplementedError()

    def onOpen(self) -> None:
        """
        Build the wrapped protocol for the peer's address and connect it to
        a L{WrappedTransport}; close with 1008 if the wrapped factory
        refuses the connection (its C{buildProtocol} returns C{None}).
        """
        settings = self._wrappingSettings()
        transport = self.transport
        assert transport is not None
        wrapped = settings.wrappedFactory.buildProtocol(transport.getPeer())
        if wrapped is None:
            _log.info(
                "The wrapped factory refused the WebSocket connection with {peer}",
                peer=self.peer,
            )
            self.sendClose(1008, "connection refused")
            return
        shim = WrappedTransport(
            self, self.websocket_protocol_in_use == BASE64_PROTOCOL, settings.messageSize
        )
        self.wrappedProtocol = wrapped
        self.wrappedTransport = shim
        shim.closeCode = self._closeCode
        wrapped.makeConnection(shim)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Hand a message's payload to the wrapped protocol as stream bytes.
        Binary messages are taken as they are.  A text message is base64
        decoded under the C{base64} subprotocol; otherwise its UTF-8 bytes
        are taken as they are if the factory's C{acceptText} is true, or the
        connection is closed with 1003 if it is false.  Input is dropped
        once the wrapped protocol has closed its transport.

        @param payload: the message.
        @param isBinary: whether it is binary.
        """
        wrapped = self.wrappedProtocol
        shim = self.wrappedTransport
        if wrapped is None or shim is None or shim.disconnecting:
            return
        if not isBinary:
            if shim.base64:
                try:
                    payload = binascii.a2b_base64(payload, strict_mode=True)
                except binascii.Error:
                    self._rejectInput(1007, "text message is not valid base64")
                    return
            elif not self._wrappingSettings().acceptText:
                self._rejectInput(1003, "text messages are not accepted")
                return
        if payload:
            wrapped.dataReceived(payload)

    def _rejectInput(self, code: int, reason: str) -> None:
        _log.info(
            "Closing the wrapped WebSocket connection with {peer}: {reason}",
            peer=self.peer,
            reason=reason,
        )
        self.sendClose(code, reason)

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        """
        Stop the wrapped protocol's producer, if one is registered, and
        call the wrapped protocol's C{connectionLost} (once):
        C{ConnectionDone} after a clean close with code 1000, 1001 or none,
        C{ConnectionLost} otherwise.

        @param wasClean: whether the closing handshake completed.
        @param code: the close code.
        @param reason: the close reason.
        """
        wrapped = self.wrappedProtocol
        shim = self.wrappedTransport
        if wrapped is None or shim is None or self._lostReported:
            return
        self._lostReported = True
        shim._forgetProducer()
        wrapped.connectionLost(_lossReason(wasClean, code, reason))


class WebSocketWrappingProtocol(_WrappingMixin, WebSocketServerProtocol):
    """
    The server end of a WebSocket connection that carries a wrapped stream
    protocol (see L{WebSocketWrappingFactory}).
    """

    factory: WebSocketWrappingFactory

    def _wrappingSettings(self) -> _WrappingSettings:
        return self.factory


class WebSocketWrappingClientProtocol(_WrappingMixin, WebSocketClientProtocol):
    """
    The client end of a WebSocket connection that carries a wrapped stream
    protocol (see L{WebSocketWrappingClientFactory}).
    """

    factory: WebSocketWrappingClientFactory

    def _wrappingSettings(self) -> _WrappingSettings:
        return self.factory


class _WrappingFactoryMixin:
    """
    What the server and client wrapping factories share: the wrapped
    factory, started and stopped with them, and the message settings.
    """

    wrappedFactory: Factory
    acceptText: bool
    messageSize: int

    def _wrap(self, wrappedFactory: Factory, acceptText: bool, messageSize: int) -> None:
        if messageSize < 1:
            raise ValueError("messageSize must be at least 1")
        self.wrappedFactory = wrappedFactory
        self.acceptText = acceptText
        self.messageSize = messageSize

    def startFactory(self) -> None:
        """
        Start the wrapped factory too.
        """
        self.wrappedFactory.doStart()

    def stopFactory(self) -> None:
        """
        Stop the wrapped factory too.
        """
        self.wrappedFactory.doStop()


class WebSocketWrappingFactory(_WrappingFactoryMixin, WebSocketServerFactory):
    """
    Serve the protocols of any Twisted stream C{Factory} over WebSocket:
    each binary message the client sends is stream bytes for the wrapped
    protocol, and each of its writes goes back as a binary message.

    Starting and stopping this factory starts and stops the wrapped one.

    @ivar wrappedFactory: the factory of the wrapped protocols.
    @ivar acceptText: whether text messages are accepted as stream bytes
        (their UTF-8 encoding) when the C{base64} subprotocol is not in
        use; if false, a text message closes the connection with 1003.
    @ivar messageSize: writes larger than this are sent as several messages.
    """

    protocol = WebSocketWrappingProtocol

    def __init__(
        self,
        wrappedFactory: Factory,
        reactor: Optional[IReactorTime] = None,
        options: Optional[WebSocketOptions] = None,
        protocols: Optional[Sequence[str]] = (BINARY_PROTOCOL, BASE64_PROTOCOL),
        url: Optional[str] = None,
        acceptText: bool = True,
        messageSize: int = 64 * 1024,
        server: Optional[str] = "txws/" + __version__,
        headers: Optional[Mapping[str, str]] = None,
        externalPort: Optional[int] = None,
    ) -> None:
        """
        @param wrappedFactory: builds the stream protocol for each
            connection (with the peer's address).
        @param reactor: the reactor (default: the global one).
        @param options: L{WebSocketOptions} for the connections.
        @param protocols: subprotocols to accept, in preference order; by
            default C{binary} and C{base64} (a client offering neither gets
            binary messages without a subprotocol).
        @param url: the URL the server is reached at, for L{listenWS}.
        @param acceptText: accept text messages as stream bytes.
        @param messageSize: the largest message one write is sent in.
        @param server: the C{Server} header value, or C{None}.
        @param headers: extra headers for every C{101} response.
        @param externalPort: the port clients see, if it differs from the
            URL's.
        @raise ValueError: if C{messageSize} is below 1.

        @see: L{txws.server.listenWS}
        """
        super().__init__(
            url=url,
            protocols=protocols,
            server=server,
            headers=headers,
            externalPort=externalPort,
            reactor=reactor,
            options=options,
        )
        self._wrap(wrappedFactory, acceptText, messageSize)


class WebSocketWrappingClientFactory(_WrappingFactoryMixin, WebSocketClientFactory):
    """
    Connect a Twisted stream client protocol to a WebSocket server: the
    client end of L{WebSocketWrappingFactory}.  Connection attempts are
    reported to the wrapped factory's C{ClientFactory} methods, if it has
    them; a connection whose opening handshake fails reaches the wrapped
    factory's C{clientConnectionLost} without a protocol ever being built.

    @ivar wrappedFactory: the factory of the wrapped protocols.
    @ivar acceptText: whether text messages are accepted as stream bytes
        when the C{base64} subprotocol is not in use.
    @ivar messageSize: writes larger than this are sent as several messages.
    """

    protocol = WebSocketWrappingClientProtocol

    def __init__(
        self,
        wrappedFactory: Factory,
        url: str,
        reactor: Optional[IReactorTime] = None,
        options: Optional[WebSocketOptions] = None,
        protocols: Optional[Sequence[str]] = None,
        origin: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        acceptText: bool = True,
        messageSize: int = 64 * 1024,
    ) -> None:
        """
        @param wrappedFactory: builds the stream protocol once connected.
        @param url: the C{ws://} or C{wss://} URL.
        @param reactor: the reactor (default: the global one).
        @param options: L{WebSocketOptions} for the connection.
        @param protocols: subprotocols to offer (e.g. C{["binary"]}); the
            C{base64} subprotocol switches to base64 text messages if the
            server selects it.
        @param origin: an C{Origin} header to send.
        @param headers: extra request headers.
        @param acceptText: accept text messages as stream bytes.
        @param messageSize: the largest message one write is sent in.
        @raise ValueError: for a bad URL or a C{messageSize} below 1.

        @see: L{txws.client.connectWS}, L{txws.client.connect}
        """
        super().__init__(
            url,
            origin=origin,
            protocols=protocols,
            headers=headers,
            reactor=reactor,
            options=options,
        )
        self._wrap(wrappedFactory, acceptText, messageSize)

    def startedConnecting(self, connector: IConnector) -> None:
        """
        Tell the wrapped factory, if it is a C{ClientFactory}.

        @param connector: the connector.
        """
        if isinstance(self.wrappedFactory, ClientFactory):
            self.wrappedFactory.startedConnecting(connector)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        """
        Tell the wrapped factory, if it is a C{ClientFactory}.

        @param connector: the connector.
        @param reason: why the connection failed.
        """
        if isinstance(self.wrappedFactory, ClientFactory):
            self.wrappedFactory.clientConnectionFailed(connector, reason)

    def clientConnectionLost(self, connector: IConnector, reason: Failure) -> None:
        """
        Tell the wrapped factory, if it is a C{ClientFactory}.

        @param connector: the connector.
        @param reason: why the connection was lost.
        """
        if isinstance(self.wrappedFactory, ClientFactory):
            self.wrappedFactory.clientConnectionLost(connector, reason)


# -- Autobahn's names -------------------------------------------------------------


class _AutobahnWrapping(_WrappingMixin):
    """
    The rules of Autobahn's wrapping protocols, on top of txws's: only the
    factory's subprotocols are spoken, a message of the wrong kind (text
    under a binary subprotocol, binary under C{base64}) closes with 1003,
    and the wrapped protocol's C{loseConnection} sends a Close frame without
    a code.
    """

    _closeCode = None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Refuse a message whose kind does not match the subprotocol with
        1003, else hand its bytes to the wrapped protocol.

        @param payload: the message.
        @param isBinary: whether it is binary.
        """
        shim = self.wrappedTransport
        if isBinary and shim is not None and shim.base64 and not shim.disconnecting:
            self._rejectInput(1003, "binary message under the base64 subprotocol")
            return
        super().onMessage(payload, isBinary)


class WrappingWebSocketServerProtocol(_AutobahnWrapping, WebSocketWrappingProtocol):
    """
    The server end of L{WrappingWebSocketServerFactory} (Autobahn's class
    of the same name).
    """

    def onConnect(self, request: ConnectionRequest) -> Optional[str]:
        """
        Choose the first subprotocol the client offers that the factory
        speaks; refuse a client that offers none of them with 406, as
        Autobahn does.

        @param request: the validated request.
        @return: the subprotocol.
        @raise ConnectionDeny: with 406 if no subprotocol is shared.
        """
        spoken = self.factory.protocols
        for offered in request.protocols:
            if offered in spoken:
                return offered
        raise ConnectionDeny(
            ConnectionDeny.NOT_ACCEPTABLE,
            f"this server only speaks the WebSocket subprotocols {', '.join(spoken)}",
        )


class WrappingWebSocketClientProtocol(_AutobahnWrapping, WebSocketWrappingClientProtocol):
    """
    The client end of L{WrappingWebSocketClientFactory} (Autobahn's class
    of the same name).
    """

    def onConnect(self, response: ConnectionResponse) -> None:
        """
        Insist that the server chose one of our subprotocols.

        @param response: the server's answer.
        @raise ValueError: if it chose none (the handshake then fails).
        """
        if response.protocol not in self.factory.protocols:
            raise ValueError(
                "the server chose no WebSocket subprotocol among "
                + ", ".join(self.factory.protocols)
            )


def _autobahnSubprotocols(subprotocol: Optional[str]) -> list[str]:
    spoken = [BINARY_PROTOCOL, BASE64_PROTOCOL]
    if subprotocol:
        spoken.append(subprotocol)
    return spoken


class WrappingWebSocketServerFactory(WebSocketWrappingFactory):
    """
    Autobahn's wrapping server factory under its own name and signature:
    serves C{factory}'s stream protocols over WebSocket with the
    subprotocols C{binary} and C{base64} (and C{subprotocol}, binary, if
    given); a client offering none of them is refused with 406; each
    message must be of the subprotocol's kind (1003 otherwise).

    The wrapped protocol is built once the connection is open (Autobahn
    builds it with the connection and calls its C{connectionMade} on open),
    and its C{connectionLost} gets a C{Failure}, as Twisted promises
    (Autobahn passes C{None}).  See C{docs/autobahn.md}.
    """

    protocol = WrappingWebSocketServerProtocol

    def __init__(
        self,
        factory: Factory,
        url: str,
        reactor: Optional[IReactorTime] = None,
        enableCompression: bool = True,
        autoFragmentSize: int = 0,
        subprotocol: Optional[str] = None,
    ) -> None:
        """
        @param factory: the stream factory to wrap.
        @param url: the URL the server is reached at.
        @param reactor: the reactor (default: the global one).
        @param enableCompression: accept permessage-deflate when the
            client offers it (the C{perMessageDeflate} option).
        @param autoFragmentSize: split outgoing messages into frames of
            this many bytes (0: one frame per message).
        @param subprotocol: one more binary subprotocol to speak.
        """
        super().__init__(
            factory,
            reactor=reactor,
            url=url,
            protocols=_autobahnSubprotocols(subprotocol),
            acceptText=False,
        )
        self.setProtocolOptions(
            autoFragmentSize=autoFragmentSize, perMessageDeflate=enableCompression
        )


class WrappingWebSocketClientFactory(WebSocketWrappingClientFactory):
    """
    Autobahn's wrapping client factory under its own name and signature:
    connects C{factory}'s stream client protocol to C{url}, offering the
    subprotocols C{binary} and C{base64} (and C{subprotocol}); a server
    that chooses none of them fails the handshake.  Differences from
    Autobahn as for L{WrappingWebSocketServerFactory}.
    """

    protocol = WrappingWebSocketClientProtocol

    def __init__(
        self,
        factory: Factory,
        url: str,
        reactor: Optional[IReactorTime] = None,
        enableCompression: bool = True,
        autoFragmentSize: int = 0,
        subprotocol: Optional[str] = None,
    ) -> None:
        """
        @param factory: the stream client factory to wrap.
        @param url: the C{ws://} or C{wss://} URL.
        @param reactor: the reactor (default: the global one).
        @param enableCompression: offer permessage-deflate (the
            C{perMessageDeflate} option).
        @param autoFragmentSize: split outgoing messages into frames of
            this many bytes (0: one frame per message).
        @param subprotocol: one more binary subprotocol to offer.
        """
        super().__init__(
            factory,
            url,
            reactor=reactor,
            protocols=_autobahnSubprotocols(subprotocol),
            acceptText=False,
        )
        self.setProtocolOptions(
            autoFragmentSize=autoFragmentSize, perMessageDeflate=enableCompression
        )
