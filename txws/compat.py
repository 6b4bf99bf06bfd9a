"""
What an Autobahn|Python Twisted application uses beyond txws's own API,
kept apart so that the connection code stays txws's: the types of
C{autobahn.websocket.types} and C{autobahn.wamp.types} that such an
application meets (L{ConnectingRequest}, L{ConnectionAccept},
L{TransportDetails}), the Deferreds and event handlers every Autobahn
connection has (C{is_open}, C{is_closed}, C{on("message", ...)}), and the
refusals: an Autobahn callback or name txws does not implement fails loudly
when the class is defined or the name imported, never silently.

Design: L{AutobahnConnection} sits between L{txws.protocol.WebSocketProtocol}
and the server and client protocols.  It costs nothing per message: the
Deferreds are made when first asked for, and C{on("message", handler)}
wraps the connection's C{onMessage} for that connection only.  The table of
what is supported, what differs and what is refused is C{docs/autobahn.md}.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Optional

from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import ISSLTransport
from twisted.logger import Logger
from twisted.python.failure import Failure

from txws._refused import REFUSED_NAMES, TABLE, NotInTxws, refusedName
from txws.protocol import _UNOPENED, State, WebSocketProtocol

__all__ = [
    "REFUSED_CALLBACKS",
    "REFUSED_NAMES",
    "TABLE",
    "AutobahnConnection",
    "ConnectingRequest",
    "ConnectionAccept",
    "NotInTxws",
    "TransportDetails",
    "checkCallbacks",
    "refusedName",
]

_log = Logger()


#: Autobahn callbacks txws never calls, each with what to do instead.  A
#: protocol class that defines one is refused when it is defined.
REFUSED_CALLBACKS: Mapping[str, str] = {
    "onCloseFrame": "txws runs the closing handshake itself; onClose reports it",
    "onOpenHandshakeTimeout": "the opening handshake timeout aborts the connection; "
    "onClose(False, 1006, ...) reports it",
    "onCloseHandshakeTimeout": "the closing handshake timeout aborts the connection; "
    "onClose(False, 1006, ...) reports it",
    "onServerConnectionDropTimeout": "the closing handshake timeout covers it",
    "onAutoPingTimeout": "a keepalive timeout closes with 1011; onClose reports it",
    "onAutoPong": "onPong(payload) is called for every pong, keepalive ones included",
}





class ConnectingRequest:
    """
    What a client's C{onConnecting} may return to change its opening
    handshake (Autobahn's class of the same name): the host, port and
    resource presented to the server and the headers, C{User-Agent},
    C{Origin} and subprotocols sent.  C{None} arguments take the defaults
    Autobahn gives them.

    @ivar host: the C{Host} the server sees.
    @ivar port: the port in the C{Host} header.
    @ivar resource: the path and query requested.
    @ivar headers: extra request headers.
    @ivar useragent: the C{User-Agent} header, or C{None} for none.
    @ivar origin: the C{Origin} header, or C{None} for none.
    @ivar protocols: the subprotocols offered.
    """

    __slots__ = ("headers", "host", "origin", "port", "protocols", "resource", "useragent")

    def __init__(
        self,
        host: Optional[str] = None,
        port: Optional[int] = None,
        resource: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        useragent: Optional[str] = None,
        origin: Optional[str] = None,
        protocols: Optional[Sequence[str]] = None,
    ) -> None:
        """
        @param host: default C{"localhost"}.
        @param port: default 80.
        @param resource: default C{"/"}.
        @param headers: default none.
        @param useragent: default none.
        @param origin: default none.
        @param protocols: default none.
        """
        self.host = host if host is not None else "localhost"
        self.port = port if port is not None else 80
        self.resource = resource if resource is not None else "/"
        self.headers: dict[str, str] = dict(headers or {})
        self.useragent = useragent
        self.origin = origin
        self.protocols: list[str] = list(protocols or [])


class ConnectionAccept:
    """
    Autobahn's value type for an accepted handshake: a subprotocol and
    extra headers.  As in Autobahn's Twisted server, C{onConnect} returns
    C{subprotocol} or C{(subprotocol, headers)}, not this object; it is
    here so that code importing it keeps importing.

    @ivar subprotocol: the chosen subprotocol, or C{None}.
    @ivar headers: extra response headers, or C{None}.
    """

    __slots__ = ("headers", "subprotocol")

    def __init__(
        self, subprotocol: Optional[str] = None, headers: Optional[Mapping[str, str]] = None
    ) -> None:
        """
        @param subprotocol: the subprotocol.
        @param headers: extra response headers.
        """
        self.subprotocol = subprotocol
        self.headers = dict(headers) if headers is not None else None


class TransportDetails:
    """
    What is known of a connection's transport (the attributes of Autobahn's
    C{TransportDetails} that do not concern WAMP), as C{onConnecting}
    receives it and C{transport_details} gives it.

    @ivar channel_type: L{CHANNEL_TYPE_TCP} or L{CHANNEL_TYPE_TLS} (or
        L{CHANNEL_TYPE_MEMORY} for a UNIX socket).
    @ivar channel_framing: always L{CHANNEL_FRAMING_WEBSOCKET}.
    @ivar peer: the peer, e.g. C{tcp4:127.0.0.1:9000}.
    @ivar is_server: whether this is the server end.
    @ivar is_secure: whether the transport is TLS.
    @ivar own_pid: this process's id.
    @ivar own_tid: this thread's native id.
    @ivar own_fd: C{-1}, as in Autobahn.
    @ivar channel_id: C{{}} (txws computes no channel binding).
    @ivar peer_cert: C{None} (ask the transport for the certificate).
    @ivar websocket_protocol: the subprotocol, once negotiated (else
        C{None}).
    @ivar websocket_extensions_in_use: the extensions in use, as their
        C{Sec-WebSocket-Extensions} strings, once negotiated (else empty).
    @ivar http_headers_received: the opening handshake's headers received
        (the request's on a server, the answer's on a client, by lower-case
        name), once they have arrived; else C{None}.
    @ivar http_headers_sent: always C{None}: txws keeps no copy of the
        headers it sent.
    """

    CHANNEL_TYPE_MEMORY = 2
    CHANNEL_TYPE_TCP = 4
    CHANNEL_TYPE_TLS = 5
    CHANNEL_FRAMING_WEBSOCKET = 2

    def __init__(self, peer: str, isServer: bool, isSecure: bool, isUnix: bool = False) -> None:
        """
        @param peer: the peer's description.
        @param isServer: whether this is the server end.
        @param isSecure: whether the transport is TLS.
        @param isUnix: whether it is a UNIX socket.
        """
        if isSecure:
            self.channel_type = self.CHANNEL_TYPE_TLS
        elif isUnix:
            self.channel_type = self.CHANNEL_TYPE_MEMORY
        else:
            self.channel_type = self.CHANNEL_TYPE_TCP
        self.channel_framing = self.CHANNEL_FRAMING_WEBSOCKET
        self.peer = peer
        self.is_server = isServer
        self.is_secure = isSecure
        self.own_pid = os.getpid()
        self.own_tid = threading.get_native_id()
        self.own_fd = -1
        self.channel_id: dict[str, bytes] = {}
        self.peer_cert: Optional[dict[str, Any]] = None
        self.websocket_protocol: Optional[str] = None
        self.websocket_extensions_in_use: list[str] = []
        self.http_headers_received: Optional[dict[str, str]] = None
        self.http_headers_sent: Optional[dict[str, str]] = None

    @classmethod
    def of(cls, connection: WebSocketProtocol) -> TransportDetails:
        """
        @param connection: a connection whose transport is connected.
        @return: the details of its transport.
        """
        transport = connection.transport
        assert transport is not None
        details = cls(
            connection.peer,
            connection.isServer,
            ISSLTransport.providedBy(transport),
            isinstance(transport.getHost(), UNIXAddress),
        )
        details.websocket_protocol = connection.websocket_protocol_in_use
        details.websocket_extensions_in_use = [
            extension.extensionString for extension in connection.websocket_extensions_in_use
        ]
        handshake = getattr(connection, "request" if connection.isServer else "response", None)
        if handshake is not None:
            details.http_headers_received = handshake.headers
        return details


def checkCallbacks(cls: type, names: Iterable[str]) -> None:
    """
    Refuse a protocol class that defines an Autobahn callback txws never
    calls.

    @param cls: the class being defined.
    @param names: its own attribute names.
    @raise NotImplementedError: naming the callback and the table.
    """
    for name in names:
        why = REFUSED_CALLBACKS.get(name)
        if why is not None:
            raise NotImplementedError(
                f"{cls.__qualname__}.{name}: txws never calls Autobahn's {name} callback "
                f"({why}); remove it (see {TABLE})"
            )


class AutobahnConnection(WebSocketProtocol):
    """
    The Autobahn connection attributes and methods that txws's own API does
    not already give, shared by the server and client protocols:
    C{is_open} and C{is_closed}, C{on}/C{off} for the C{"message"} event,
    C{transport_details}, C{dropConnection}; and the refusal of Autobahn
    callbacks txws never calls (L{REFUSED_CALLBACKS}), when a subclass
    defining one is created.
    """

    # Connections have an instance dictionary anyway (Twisted's Protocol
    # has no slots of its own), but a server connection never fills it: these
    # class defaults are read instead, and an attribute is set on the
    # connection only when an application asks for it.
    __slots__ = ()
    _isOpen: Optional[Deferred[None]] = None
    _isClosed: Optional[Deferred[AutobahnConnection]] = None
    _messageHandlers: Optional[list[Callable[..., Any]]] = None

    # Autobahn's constants, for code that compares with them
    # (C{self.state == self.STATE_OPEN}, C{sendClose(self.CLOSE_STATUS_CODE_NORMAL)}).
    STATE_CONNECTING = State.CONNECTING
    STATE_OPEN = State.OPEN
    STATE_CLOSING = State.CLOSING
    STATE_CLOSED = State.CLOSED
    MESSAGE_TYPE_TEXT = 1
    MESSAGE_TYPE_BINARY = 2
    CLOSE_STATUS_CODE_NORMAL = 1000
    CLOSE_STATUS_CODE_GOING_AWAY = 1001
    CLOSE_STATUS_CODE_PROTOCOL_ERROR = 1002
    CLOSE_STATUS_CODE_UNSUPPORTED_DATA = 1003
    CLOSE_STATUS_CODE_NULL = 1005
    CLOSE_STATUS_CODE_ABNORMAL_CLOSE = 1006
    CLOSE_STATUS_CODE_INVALID_PAYLOAD = 1007
    CLOSE_STATUS_CODE_POLICY_VIOLATION = 1008
    CLOSE_STATUS_CODE_MESSAGE_TOO_BIG = 1009
    CLOSE_STATUS_CODE_MANDATORY_EXTENSION = 1010
    CLOSE_STATUS_CODE_INTERNAL_ERROR = 1011
    CLOSE_STATUS_CODE_SERVICE_RESTART = 1012
    CLOSE_STATUS_CODE_TRY_AGAIN_LATER = 1013

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        checkCallbacks(cls, vars(cls))

    # -- Deferreds ------------------------------------------------------------

    @property
    def is_open(self) -> Deferred[None]:
        """
        A Deferred that fires with C{None} once the opening handshake has
        completed (after C{onOpen}), as Autobahn's; it never fires for a
        connection that did not open.  The same Deferred each time.
        """
        d = self._isOpen
        if d is None:
            d = self._isOpen = Deferred()
            if self._writer is not _UNOPENED:
                d.callback(None)
        return d

    @property
    def is_closed(self) -> Deferred[AutobahnConnection]:
        """
        A Deferred that fires with the connection once it is closed (just
        before C{onClose}, as Autobahn's).  The same Deferred each time.
        """
        d = self._isClosed
        if d is None:
            d = self._isClosed = Deferred()
            if self.state is State.CLOSED:
                d.callback(self)
        return d

    def _opened(self, leftover: bytes) -> None:
        super()._opened(leftover)
        d = self._isOpen
        if d is not None and not d.called:
            d.callback(None)

    def _handshakeEnded(self, reason: Failure) -> None:
        # Called once the connection is CLOSED, just before onClose: as
        # Autobahn's, is_closed fires first.
        d = self._isClosed
        if d is not None and not d.called:
            d.callback(self)

    # -- Events ------------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        """
        Call C{handler(payload, is_binary=isBinary)} for every message,
        after C{onMessage} (Autobahn's observable API; C{"message"} is its
        only event).  A handler that raises or fails is logged; the
        connection goes on.

        @param event: C{"message"}.
        @param handler: the callable.
        @raise ValueError: for another event name.
        """
        if event != "message":
            raise ValueError(f"unknown event {event!r}: a connection only has 'message'")
        handlers = self._messageHandlers
        if handlers is None:
            registered: list[Callable[..., Any]] = []
            handlers = self._messageHandlers = registered
            original = self.onMessage

            def onMessage(payload: bytes, isBinary: bool) -> Any:
                result = original(payload, isBinary)
                for each in list(registered):
                    maybeDeferred(each, payload, is_binary=isBinary).addErrback(
                        self._handlerFailed
                    )
                return result

            self.onMessage = onMessage  # type: ignore[method-assign]
        handlers.append(handler)

    def off(
        self, event: Optional[str] = None, handler: Optional[Callable[..., Any]] = None
    ) -> None:
        """
        Stop calling C{handler} (or every handler) for C{event} (or every
        event).

        @param event: C{"message"} or C{None}.
        @param handler: a handler given to L{on}, or C{None} for all.
        @raise ValueError: for another event name.
        """
        if event not in (None, "message"):
            raise ValueError(f"unknown event {event!r}: a connection only has 'message'")
        handlers = self._messageHandlers or []
        if handler is None:
            handlers.clear()
        elif handler in handlers:
            handlers.remove(handler)

    def _handlerFailed(self, failure: Failure) -> None:
        _log.failure(
            "A 'message' handler of the WebSocket connection with {peer} failed",
            failure,
            peer=self.peer,
        )

    # -- Other Autobahn methods ------------------------------------------------

    @property
    def transport_details(self) -> Optional[TransportDetails]:
        """
        The L{TransportDetails} of the connection, once connected.
        """
        if self.transport is None:
            return None
        return TransportDetails.of(self)

    def dropConnection(self, abort: bool = False) -> None:
        """
        Close the TCP connection without a closing handshake (Autobahn's
        C{dropConnection}); the peer sees an unclean close.

        @param abort: drop it at once, discarding what is still queued,
            instead of after the queued bytes are written.
        """
        transport = self.transport
        if transport is None:
            return
        self._uncleanReason = "connection dropped by the application"
        if abort and hasattr(transport, "abortConnection"):
            transport.abortConnection()
        else:
            transport.loseConnection()
