"""
The server side: a protocol that reads the HTTP upgrade itself, its factory,
and a C{twisted.web} resource that hands an upgrade request's connection to
the same protocol.

Design: both entry points end in L{WebSocketServerProtocol.processHandshake}
with a parsed L{RequestHead}; validation, the Origin policy, C{onConnect}
(possibly asynchronous) and the C{101} or refusal are one code path.  The
resource never re-serializes the request: L{takeOverChannel} detaches the
connection from C{twisted.web}'s HTTP channel in one small function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, Union

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol, ServerFactory
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from txws._admission import Admission, peerKey
from txws._version import __version__
from txws.compat import AutobahnConnection
from txws.deflate import (
    Params,
    PerMessageDeflate,
    PerMessageDeflateOfferAccept,
    PerMessageDeflatePolicy,
    parseOffers,
)
from txws.factory import WebSocketFactory
from txws.handshake import (
    ConnectionRequest,
    HandshakeError,
    RequestHead,
    buildAcceptResponse,
    buildErrorResponse,
    hasToken,
    parseRequestHead,
    parseWebSocketURL,
    sharedHeader,
    validateUpgradeRequest,
)
from txws.options import WebSocketOptions
from txws.protocol import State, _abort

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "ConnectionDeny",
    "WebSocketResource",
    "WebSocketServerFactory",
    "WebSocketServerProtocol",
    "listenWS",
    "takeOverChannel",
]

_log = Logger()


class _Standing(Enum):
    """
    Where a server connection stands with its factory's L{Admission}.
    """

    NEW = "not admitted yet"
    PENDING = "in the pending table"
    OPEN = "counted against maxConnections"
    ARRIVED = "taken over from a twisted.web site: its request has arrived"
    DROPPED = "refused or dropped: reads nothing more"


_NEW = _Standing.NEW
_PENDING = _Standing.PENDING
_OPEN = _Standing.OPEN
_ARRIVED = _Standing.ARRIVED
_DROPPED = _Standing.DROPPED

#: The server's choice when C{perMessageCompressionAccept} is C{None}.
_DEFAULT_POLICY = PerMessageDeflatePolicy()


#: What C{onConnect} may return: nothing, a subprotocol, or a subprotocol
#: and extra response headers.
ConnectResult = Union[None, str, tuple[Optional[str], Mapping[str, str]]]


class ConnectionDeny(Exception):
    """
    Raise from C{onConnect} (or fail its Deferred with it) to refuse the
    opening handshake with an HTTP status, as Autobahn's exception of the
    same name.

    @ivar code: the HTTP status.
    @ivar reason: the C{text/plain} body.
    """

    BAD_REQUEST = 400
    FORBIDDEN = 403
    NOT_FOUND = 404
    NOT_ACCEPTABLE = 406
    REQUEST_TIMEOUT = 408
    INTERNAL_SERVER_ERROR = 500
    NOT_IMPLEMENTED = 501
    SERVICE_UNAVAILABLE = 503

    def __init__(self, code: int, reason: Optional[str] = None) -> None:
        if not 400 <= code <= 599:
            raise ValueError("ConnectionDeny needs a 4xx or 5xx HTTP status")
        super().__init__(code, reason)
        self.code = code
        self.reason = reason or "WebSocket connection denied"


class WebSocketServerProtocol(AutobahnConnection):
    """
    The server end of a WebSocket connection.  Override C{onConnect} to
    inspect, accept or refuse the opening handshake, and the C{on*} methods
    of L{WebSocketProtocol} to handle the connection.

    @ivar request: the L{ConnectionRequest} once the handshake has been
        validated.
    """

    factory: WebSocketServerFactory
    isServer = True
    # Slots like the base class's: a server connection keeps no instance
    # dictionary at all (see WebSocketProtocol.__slots__).
    __slots__ = ("_admission", "request")
    request: Optional[ConnectionRequest]
    _admission: _Standing

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls, *args, **kwargs)
        self.request = None
        self._admission = _NEW
        return self

    def onConnect(self, request: ConnectionRequest) -> ConnectResult | Deferred[ConnectResult]:
        """
        Decide on an opening handshake.  The default accepts it, choosing
        the first subprotocol the client offers among the factory's.

        @param request: the validated request.
        @return: C{None}; a subprotocol (one the client offered); a tuple of
            a subprotocol (or C{None}) and a mapping of extra response
            headers; or a Deferred firing with one of these.
        @raise ConnectionDeny: to refuse with an HTTP status.
        """
        return None

    # -- Handshake ------------------------------------------------------------

    def _startHandshake(self) -> None:
        if self._admission is _NEW:
            options = self.factory.options
            address = self.transport.getPeer()  # type: ignore[union-attr]
            if not self.factory.admission.admit(
                self,
                peerKey(address),
                options.maxPendingHandshakes,
                options.maxPendingHandshakesPerPeer,
                self.peer,
            ):
                self._admission = _DROPPED
                self._refuse(503, "too many pending handshakes from this address", log=False)
                return
            self._admission = _PENDING
        self._startOpenTimeout()

    def _openTimedOut(self) -> None:
        self._openTick = None
        if self.state is State.CONNECTING:
            self._uncleanReason = "opening handshake timed out"
            self.factory.admission.timedOut.note(
                "WebSocket opening handshake with {peer} timed out", peer=self.peer
            )
            _abort(self.transport)

    def _dropPending(self) -> None:
        """
        This is the oldest of too many pending handshakes (see
        L{txws._admission}): abort it (its peer has not sent its request).
        """
        self._admission = _DROPPED
        self._uncleanReason = "opening handshake dropped: too many pending handshakes"
        _abort(self.transport)

    def _handshakeEnded(self, reason: Failure) -> None:
        super()._handshakeEnded(reason)
        factory = self.factory
        admission = factory.admission
        admission.closed(self, self._admission is _OPEN)
        if not len(factory.registry) and not admission.pendingCount:
            admission.flush()

    def _handshakeData(self, data: bytes) -> None:
        if self._admission is _DROPPED:
            return
        if self.request is not None:
            # Bytes after the request while onConnect runs: kept for later
            # (reading is paused meanwhile, so this stays small).
            self._buf += data
            return
        buf = self._buf + data if self._buf else data
        try:
            parsed = parseRequestHead(buf, self.factory.options.maxHandshakeSize)
        except HandshakeError as e:
            self._refuse(e.status, e.reason, e.headers)
            return
        if parsed is None:
            self._buf = buf
            return
        head, consumed = parsed
        self._buf = b""
        self.processHandshake(head, buf[consumed:])

    def processHandshake(self, head: RequestHead, leftover: bytes = b"") -> None:
        """
        Validate an upgrade request, apply the factory's policies, consult
        C{onConnect}, and answer with C{101} or a refusal.

        @param head: the parsed request.
        @param leftover: bytes received after the request's head.
        """
        options = self.factory.options
        try:
            request = validateUpgradeRequest(head, self.peer)
            if not options.originAllowed(request.origin):
                raise HandshakeError(403, "Origin not allowed")
            limit = options.maxConnections
            if limit and self.factory.admission.openCount >= limit:
                raise HandshakeError(503, "too many WebSocket connections")
        except HandshakeError as e:
            self._refuse(e.status, e.reason, e.headers)
            return
        self.factory.admission.opened(self)
        self._admission = _OPEN
        self.request = request
        self._buf = leftover
        try:
            result = self.onConnect(request)
        except ConnectionDeny as e:
            self._refuse(e.code, e.reason)
            return
        except Exception:
            _log.failure("onConnect raised for the WebSocket request from {peer}", peer=self.peer)
            self._refuse(500, "internal server error")
            return
        if isinstance(result, Deferred):
            self.transport.pauseProducing()  # type: ignore[union-attr]
            result.addCallbacks(self._connectDecided, self._connectRefused)
            result.addErrback(self._connectRefused)
        else:
            self._connectDecided(result)

    def _connectRefused(self, failure: Failure) -> None:
        if self.state is not State.CONNECTING:
            return
        deny = failure.check(ConnectionDeny)
        if deny is not None:
            error = failure.value
            assert isinstance(error, ConnectionDeny)
            self._refuse(error.code, error.reason)
        else:
            _log.failure(
                "onConnect failed for the WebSocket request from {peer}", failure, peer=self.peer
            )
            self._refuse(500, "internal server error")

    def _connectDecided(self, result: ConnectResult) -> None:
        if self.state is not State.CONNECTING or self.transport is None:
            return
        request = self.request
        assert request is not None
        headers: list[tuple[str, str]] = list(self.factory.headers)
        if isinstance(result, tuple):
            protocol, extra = result
            headers.extend(extra.items())
        else:
            protocol = result
        if protocol is None:
            if request.protocols:
                protocol = next(
                    (p for p in request.protocols if p in self.factory.protocols), None
                )
        elif protocol not in request.protocols:
            _log.error(
                "onConnect chose subprotocol {protocol!r}, which {peer} did not offer",
                protocol=protocol,
                peer=self.peer,
            )
            self._refuse(500, "internal server error")
            return
        try:
            deflate = self._negotiateDeflate(request)
        except Exception:
            _log.failure(
                "perMessageCompressionAccept failed for the WebSocket request from {peer}",
                peer=self.peer,
            )
            self._refuse(500, "internal server error")
            return
        if deflate is not None:
            headers.append(("Sec-WebSocket-Extensions", deflate.extensionString))
        try:
            response = buildAcceptResponse(request.key, protocol, headers)
        except ValueError:
            _log.failure("invalid response header from onConnect for {peer}", peer=self.peer)
            self._refuse(500, "internal server error")
            return
        self._deflate = deflate
        self.websocket_protocol_in_use = protocol
        self.transport.write(response)
        leftover, self._buf = self._buf, b""
        if self.transport is not None:
            self.transport.resumeProducing()  # type: ignore[attr-defined]
        self._opened(leftover)

    def _negotiateDeflate(self, request: ConnectionRequest) -> Optional[PerMessageDeflate]:
        """
        Accept one of the client's permessage-deflate offers, if it made
        any and the options allow (RFC 7692 section 5): the invalid ones are
        declined, the policy picks among the rest.

        @return: the extension to use, or C{None}.
        @raise TypeError: if the policy returns something other than an
            acceptance of one of the offers or C{None}.
        """
        options = self.factory.options
        if not options.perMessageDeflate:
            return None
        values = [v for name, v in request.rawHeaders if name == "sec-websocket-extensions"]
        if not values:
            return None
        declined: list[tuple[Params, str]] = []
        offers = parseOffers(values, declined)
        for _params, why in declined:
            _log.info(
                "Declined a permessage-deflate offer from {peer}: {why}", peer=self.peer, why=why
            )
        if not offers:
            return None
        accept = (options.perMessageCompressionAccept or _DEFAULT_POLICY)(offers)
        if accept is None:
            return None
        if not isinstance(accept, PerMessageDeflateOfferAccept) or accept.offer not in offers:
            raise TypeError(
                "perMessageCompressionAccept must return a PerMessageDeflateOfferAccept "
                f"of one of the offers, or None, not {accept!r}"
            )
        return PerMessageDeflate.fromOfferAccept(
            accept,
            maxMessageSize=options.maxMessagePayloadSize,
            memLevel=options.perMessageDeflateMemLevel,
            level=options.perMessageDeflateLevel,
            threshold=options.perMessageDeflateThreshold,
        )

    def _refuse(
        self,
        status: int,
        reason: str,
        headers: Sequence[tuple[str, str]] = (),
        log: bool = True,
    ) -> None:
        """
        Answer the handshake with an error status and close.

        @param log: whether to log the refusal (C{False} when the caller
            logged it already).
        """
        if log:
            _log.info(
                "Refused WebSocket handshake from {peer}: {status} {reason}",
                peer=self.peer,
                status=status,
                reason=reason,
            )
        self._uncleanReason = f"opening handshake refused: {status} {reason}"
        self.factory.registry.handshakeRefused(status)
        self._stopReading()
        transport = self.transport
        assert transport is not None
        transport.write(buildErrorResponse(status, reason, headers))
        transport.loseConnection()


class WebSocketServerFactory(WebSocketFactory, ServerFactory):
    """
    Builds L{WebSocketServerProtocol} connections (Autobahn-compatible
    constructor).

    @ivar protocols: subprotocols this server speaks, in preference order.
    @ivar headers: extra headers sent with every C{101} response.
    @ivar url: the URL the server is reached at, if given.
    @ivar isSecure: whether C{url} is C{wss://}.
    @ivar port: the port of C{url} (or C{externalPort}).
    @ivar admission: this factory's connections whose request has not
        arrived yet (bounded by the options C{maxPendingHandshakes} and
        C{maxPendingHandshakesPerPeer}) and its count of open ones (bounded
        by C{maxConnections}).  A L{txws.hmacauth.HMACSite} given it as its
        C{admission} counts its own HTTP connections in the same table.
    """

    protocol: type[Protocol] = WebSocketServerProtocol

    def __init__(
        self,
        url: Optional[str] = None,
        protocols: Optional[Sequence[str]] = None,
        server: Optional[str] = "txws/" + __version__,
        headers: Optional[Mapping[str, str]] = None,
        externalPort: Optional[int] = None,
        reactor: Optional[IReactorTime] = None,
        options: Optional[WebSocketOptions] = None,
    ) -> None:
        """
        @param url: e.g. C{ws://127.0.0.1:9000}, used by L{listenWS}.
        @param protocols: subprotocols this server speaks.
        @param server: the C{Server} header value, or C{None} for none.
        @param headers: extra headers for every C{101} response.
        @param externalPort: the port clients see, if it differs from the
            URL's (e.g. behind a proxy).
        @param reactor: the reactor (default: the global one).
        @param options: initial L{WebSocketOptions}.
        """
        super().__init__(reactor, options)
        self.protocols = list(protocols or [])
        extra = [("Server", server)] if server else []
        self.headers: list[tuple[str, str]] = extra + list((headers or {}).items())
        self.url = url
        self.isSecure = False
        self.host: Optional[str] = None
        self.port = 80
        if url is not None:
            self.isSecure, self.host, self.port, _ = parseWebSocketURL(url)
        if externalPort is not None:
            self.port = externalPort
        self.admission = Admission(self.reactor)

    @property
    def openConnectionCount(self) -> int:
        """
        Connections counted against C{maxConnections}: their upgrade request
        has arrived (they are open, or C{onConnect} is deciding on them).
        """
        return self.admission.openCount

    @property
    def pendingHandshakeCount(self) -> int:
        """
        Connections accepted whose request has not arrived yet (bounded by
        C{maxPendingHandshakes}).
        """
        return self.admission.pendingCount


def listenWS(
    factory: WebSocketServerFactory,
    contextFactory: Any = None,
    backlog: int = 50,
    interface: str = "",
) -> Any:
    """
    Listen on the port of the factory's URL (Autobahn's C{listenWS}).

    @param factory: a factory made with a C{url}.
    @param contextFactory: TLS context factory, required for C{wss://}.
    @param backlog: the listen backlog.
    @param interface: the interface to bind.
    @return: the C{IListeningPort}.
    @raise ValueError: for C{wss://} without a context factory.
    """
    reactor: Any = factory.reactor
    if factory.isSecure:
        if contextFactory is None:
            raise ValueError("wss:// needs a TLS context factory")
        return reactor.listenSSL(factory.port, factory, contextFactory, backlog, interface)
    return reactor.listenTCP(factory.port, factory, backlog, interface)


def takeOverChannel(request: Request, protocol: Protocol) -> bytes:
    """
    Detach a request's connection from C{twisted.web} and give it to
    C{protocol}.  This is the only place that knows C{HTTPChannel}'s
    internals: the channel's idle timeout and producer registration are
    cancelled, its C{dataReceived} and C{connectionLost} are pointed at the
    new protocol (which works whatever wraps the channel: TLS, the HTTP/2
    negotiating wrapper), and bytes it had buffered are handed back.

    @param request: a request on an HTTP/1.1 channel.
    @param protocol: the protocol that takes over.
    @return: bytes the channel received after the request's head.
    @raise TypeError: if the request is not on an HTTP/1.1 channel.
    """
    channel = request.channel
    if not isinstance(channel, HTTPChannel) or channel.transport is None:
        raise TypeError("only an HTTP/1.1 connection can be upgraded to WebSocket")
    transport = channel.transport
    channel.setTimeout(None)
    transport.unregisterProducer()  # type: ignore[attr-defined]
    leftover = b"".join(getattr(channel, "_dataBuffer", []))
    channel._dataBuffer = []
    leftover += bytes(channel.clearLineBuffer())
    # The request will never finish; the channel must not keep it alive.
    if request in channel.requests:
        channel.requests.remove(request)
    channel.dataReceived = protocol.dataReceived  # type: ignore[method-assign]
    channel.connectionLost = protocol.connectionLost  # type: ignore[method-assign]
    protocol.makeConnection(transport)
    # The channel stopped reading while it handled the request.
    transport.resumeProducing()  # type: ignore[attr-defined]
    return leftover


def _requestHead(request: Request) -> RequestHead:
    clientproto = request.clientproto.decode("ascii", "replace")
    try:
        major, minor = (int(x) for x in clientproto.rpartition("/")[2].split("."))
    except ValueError:
        major, minor = 1, 0
    rawHeaders = [
        sharedHeader(name.decode("iso-8859-1"), value.decode("iso-8859-1"))
        for name, values in request.requestHeaders.getAllRawHeaders()
        for value in values
    ]
    return RequestHead(
        request.method.decode("iso-8859-1"),
        request.uri.decode("iso-8859-1"),
        (major, minor),
        rawHeaders,
    )


class WebSocketResource(Resource):
    """
    A C{twisted.web} resource that accepts WebSocket connections, served by
    a L{WebSocketServerFactory}, beside ordinary resources on the same
    site and port.  Requests that are not WebSocket upgrades get C{426
    Upgrade Required}.
    """

    isLeaf = True

    def __init__(self, factory: WebSocketServerFactory) -> None:
        """
        @param factory: builds the protocol for each connection.
        """
        Resource.__init__(self)
        self.factory = factory

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        """
        Serve every path below this one too (the application sees the full
        path in C{onConnect}).
        """
        return self

    def render(self, request: Request) -> bytes | int:
        """
        Take over the connection of an upgrade request; answer others.

        @param request: the request.
        @return: C{NOT_DONE_YET} after a takeover, else the error body.
        """
        upgrades = request.requestHeaders.getRawHeaders(b"upgrade", [])
        if not hasToken((value.decode("iso-8859-1") for value in upgrades), "websocket"):
            request.setResponseCode(426, b"Upgrade Required")
            request.setHeader(b"Upgrade", b"websocket")
            request.setHeader(b"Connection", b"Upgrade")
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"This resource is a WebSocket endpoint; connect with a WebSocket client.\n"
        address = request.getClientAddress()
        protocol: object = self.factory.buildProtocol(address)
        if not isinstance(protocol, WebSocketServerProtocol):
            request.setResponseCode(503)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return b"WebSocket connection not accepted\n"
        # Its request has arrived: the site bounded the wait for it.
        protocol._admission = _ARRIVED
        try:
            leftover = takeOverChannel(request, protocol)
        except TypeError as e:
            request.setResponseCode(400)
            request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
            return str(e).encode("utf-8") + b"\n"
        protocol.processHandshake(_requestHead(request), leftover)
        return NOT_DONE_YET
