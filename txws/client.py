"""
The client side: a protocol that sends the opening handshake and checks the
server's answer, its factory, Autobahn's C{connectWS}, and L{connect}, an
endpoint-based entry point returning a Deferred that fires with the open
connection.

Design: the client never delivers a byte of data before the server's answer
has passed every check of RFC 6455 section 4.1 (status 101, C{Upgrade},
C{Connection}, the exact C{Sec-WebSocket-Accept}, only offered subprotocols,
no unrequested extension); on any failure it aborts the TCP connection and
discards what followed.  C{wss://} uses C{optionsForClientTLS}, which checks
the certificate chain and the host name (service-identity).  Through an HTTP
proxy (L{txws._proxy}) only the connection is made differently: a
C{CONNECT} tunnel to the server, TLS to the server inside it, then the same
handshake.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping, Sequence
from typing import Any, Optional

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.error import TimeoutError
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from txws._proxy import (
    Proxy,
    ProxyArgument,
    ProxyError,
    Tunnel,
    TunnelClientFactory,
    TunnelEndpoint,
    resolveProxy,
)
from txws._version import __version__
from txws.compat import AutobahnConnection, ConnectingRequest, TransportDetails
from txws.deflate import (
    DEFAULT_CLIENT_OFFER,
    NegotiationError,
    PerMessageDeflate,
    PerMessageDeflateOffer,
    PerMessageDeflateResponseAccept,
    buildOfferHeader,
    parseResponse,
)
from txws.factory import WebSocketFactory
from txws.handshake import (
    ConnectionResponse,
    ResponseError,
    buildClientRequest,
    parseResponseHead,
    parseWebSocketURL,
    validateUpgradeResponse,
)
from txws.options import WebSocketOptions
from txws.protocol import State, _abort

__all__ = [
    "Proxy",
    "ProxyError",
    "WebSocketClientFactory",
    "WebSocketClientProtocol",
    "connect",
    "connectWS",
]

_log = Logger()


class WebSocketClientProtocol(AutobahnConnection):
    """
    The client end of a WebSocket connection.  Frames it sends are masked
    with keys from C{factory.randomBytes} (C{os.urandom} by default).

    @ivar response: the server's L{ConnectionResponse}, once accepted.
    """

    factory: WebSocketClientFactory
    isServer = False
    response: Optional[ConnectionResponse] = None
    _key = ""
    # The permessage-deflate offers sent, most preferred first.
    _offers: tuple[PerMessageDeflateOffer, ...] = ()
    _offered: Sequence[str] = ()
    _handshakeFailure: Optional[Failure] = None
    _waiters: Optional[list[Deferred[WebSocketClientProtocol]]] = None

    def onConnecting(self, transportDetails: TransportDetails) -> Any:
        """
        The TCP (or TLS) connection is made and the opening handshake is
        about to be sent (Autobahn's callback).  Return C{None} to send the
        factory's request, or a L{ConnectingRequest} (or a Deferred firing
        with one) to present another host, port, resource, headers,
        C{User-Agent}, C{Origin} or subprotocols.  If it raises or fails,
        the connection is dropped and the failure logged.

        @param transportDetails: what is known of the transport.
        @return: C{None}, a L{ConnectingRequest}, or a Deferred of either.
        """
        return None

    def onConnect(self, response: ConnectionResponse) -> Any:
        """
        The server accepted the opening handshake; C{onOpen} follows.

        @param response: the server's answer.
        """

    def whenOpen(self) -> Deferred[WebSocketClientProtocol]:
        """
        @return: a Deferred that fires with this protocol once the
            connection is open (after C{onOpen}), or fails with the reason
            it never opened: L{ResponseError} (refused, or an invalid
            answer), C{TimeoutError}, a TLS error, or the lost connection.
        """
        if self.state is State.OPEN or self.state is State.CLOSING:
            return succeed(self)
        if self.state is State.CLOSED:
            return fail(self._handshakeFailure or Failure(ConnectionError("connection closed")))
        waiter: Deferred[WebSocketClientProtocol] = Deferred()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        return waiter

    def _startHandshake(self) -> None:
        self._startOpenTimeout()
        # Autobahn's onConnecting decides the request (None: the factory's).
        try:
            decided = self.onConnecting(TransportDetails.of(self))
        except Exception:
            self._handshakeFailed(Failure(), "onConnecting raised")
            return
        if isinstance(decided, Deferred):
            decided.addCallbacks(self._sendRequest, self._connectingFailed)
        else:
            self._sendRequest(decided)

    def _connectingFailed(self, failure: Failure) -> None:
        if self.state is State.CONNECTING and self._handshakeFailure is None:
            self._handshakeFailed(failure, "onConnecting failed")

    def _sendRequest(self, decided: object) -> None:
        if self.state is not State.CONNECTING or self._handshakeFailure is not None:
            return
        factory = self.factory
        if decided is None:
            decided = ConnectingRequest(
                factory.host, factory.port, factory.resource, factory.headers,
                factory.useragent, factory.origin, factory.protocols,
            )  # fmt: skip
        elif not isinstance(decided, ConnectingRequest):
            self._handshakeFailed(
                Failure(TypeError(f"onConnecting returned {decided!r}, not a ConnectingRequest"))
            )
            return
        self._offered = decided.protocols
        self._key = base64.b64encode(factory.randomBytes(16)).decode("ascii")
        options = factory.options
        extra = list(decided.headers.items())
        if options.perMessageDeflate:
            offers = options.perMessageCompressionOffers
            # (An empty list, as Autobahn takes it, offers nothing.)
            self._offers = (DEFAULT_CLIENT_OFFER,) if offers is None else offers
            if self._offers:
                extra.append(("Sec-WebSocket-Extensions", buildOfferHeader(self._offers)))
        try:
            request = buildClientRequest(
                decided.host,
                decided.port,
                decided.resource,
                self._key,
                isSecure=factory.isSecure,
                origin=decided.origin,
                protocols=decided.protocols,
                useragent=decided.useragent,
                headers=extra,
            )
        except ValueError:
            self._handshakeFailed(Failure(), "an invalid request from onConnecting")
            return
        self.transport.write(request)  # type: ignore[union-attr]

    def _openTimedOut(self) -> None:
        self._openTick = None
        if self.state is State.CONNECTING:
            self._handshakeFailed(Failure(TimeoutError("WebSocket opening handshake timed out")))

    def _handshakeFailed(self, failure: Failure, where: str = "") -> None:
        """
        Abort a handshake that cannot complete; C{where}, if given, names
        the application's part in it, and the failure is logged with its
        traceback.
        """
        self._handshakeFailure = failure
        self._stopReading()
        self._uncleanReason = "opening handshake failed: " + failure.getErrorMessage()
        if where:
            _log.failure(
                "WebSocket handshake with {peer} failed: {where}", failure,
                peer=self.peer, where=where,
            )  # fmt: skip
        else:
            _log.info(
                "WebSocket handshake with {peer} failed: {why}",
                peer=self.peer,
                why=failure.getErrorMessage(),
            )
        _abort(self.transport)

    def _handshakeData(self, data: bytes) -> None:
        if self._handshakeFailure is not None:
            return
        buf = self._buf + data if self._buf else data
        try:
            parsed = parseResponseHead(buf, self.factory.options.maxHandshakeSize)
            if parsed is None:
                self._buf = buf
                return
            status, rawHeaders, consumed = parsed
            protocol, headers = validateUpgradeResponse(
                status, rawHeaders, self._key, self._offered, bool(self._offers)
            )
            self._deflate = self._acceptDeflate(rawHeaders)
        except ResponseError as e:
            self._buf = b""
            if e.status not in (0, 101):
                # The server refused (101 with an invalid answer is ours).
                self.factory.registry.handshakeRefused(e.status)
            self._handshakeFailed(Failure())
            return
        self._buf = b""
        self.websocket_protocol_in_use = protocol
        self.response = ConnectionResponse(
            self.peer,
            headers,
            13,
            protocol,
            [] if self._deflate is None else [self._deflate],
        )
        try:
            self.onConnect(self.response)
        except Exception:
            _log.failure("onConnect raised for the WebSocket connection to {peer}", peer=self.peer)
            self._handshakeFailed(Failure())
            return
        self._opened(buf[consumed:])
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            waiter.callback(self)

    def _acceptDeflate(self, rawHeaders: list[tuple[str, str]]) -> Optional[PerMessageDeflate]:
        """
        Check the server's permessage-deflate answer against our offers
        (RFC 7692 section 5) and let C{perMessageCompressionAccept} accept
        it.

        @return: the extension to use, or C{None} if the server enabled none.
        @raise ResponseError: for an invalid answer or one the application
            refuses: the client fails the connection.
        """
        values = [v for name, v in rawHeaders if name == "sec-websocket-extensions"]
        if not values:
            return None
        try:
            response = parseResponse(values, self._offers)
        except NegotiationError as e:
            raise ResponseError(101, f"invalid permessage-deflate answer: {e}") from None
        assert response is not None  # (values is not empty)
        options = self.factory.options
        accept = (options.perMessageCompressionAccept or PerMessageDeflateResponseAccept)(response)
        if accept is None:
            raise ResponseError(
                101, "perMessageCompressionAccept refused the server's permessage-deflate answer"
            )
        if not isinstance(accept, PerMessageDeflateResponseAccept):
            raise ResponseError(
                101,
                "perMessageCompressionAccept must return a PerMessageDeflateResponseAccept "
                f"or None, not {accept!r}",
            )
        return PerMessageDeflate.fromResponseAccept(
            accept,
            maxMessageSize=options.maxMessagePayloadSize,
            memLevel=options.perMessageDeflateMemLevel,
            level=options.perMessageDeflateLevel,
            threshold=options.perMessageDeflateThreshold,
        )

    def _handshakeEnded(self, reason: Failure) -> None:
        super()._handshakeEnded(reason)
        waiters, self._waiters = self._waiters, None
        if not waiters:
            return
        failure = self._handshakeFailure or reason
        for waiter in waiters:
            waiter.errback(failure)


class WebSocketClientFactory(WebSocketFactory, ClientFactory):
    """
    Builds L{WebSocketClientProtocol} connections (Autobahn-compatible
    constructor).

    @ivar url: the URL to connect to.
    @ivar isSecure: whether it is C{wss://}.
    @ivar host: its host.
    @ivar port: its port.
    @ivar resource: the path and query to request.
    @ivar origin: the C{Origin} header to send, or C{None}.
    @ivar protocols: subprotocols to offer.
    @ivar useragent: the C{User-Agent} header, or C{None}.
    @ivar headers: extra request headers.
    @ivar proxy: the HTTP proxy connections go through (a L{Proxy}), or
        C{None} for a direct connection.
    """

    protocol: type[Protocol] = WebSocketClientProtocol

    def __init__(
        self,
        url: Optional[str] = None,
        origin: Optional[str] = None,
        protocols: Optional[Sequence[str]] = None,
        useragent: Optional[str] = "txws/" + __version__,
        headers: Optional[Mapping[str, str]] = None,
        proxy: ProxyArgument = True,
        reactor: Optional[IReactorTime] = None,
        options: Optional[WebSocketOptions] = None,
        environ: Optional[Mapping[str, str]] = None,
    ) -> None:
        """
        @param url: e.g. C{ws://127.0.0.1:9000/chat}.
        @param origin: an C{Origin} header to send.
        @param protocols: subprotocols to offer, in preference order.
        @param useragent: the C{User-Agent} header, or C{None} for none.
        @param headers: extra request headers.
        @param proxy: the HTTP proxy to tunnel through with C{CONNECT}:
            C{True} (the default) for the one the environment names
            (C{https_proxy} for C{wss://}, C{http_proxy} for C{ws://},
            unless C{no_proxy} exempts the host; see
            L{txws._proxy.proxyFromEnvironment}), C{None} or C{False} for
            none, a URL C{http://user:password@host:port}, Autobahn's
            C{{"host": ..., "port": ...}}, or a L{Proxy}.
        @param reactor: the reactor (default: the global one).
        @param options: initial L{WebSocketOptions}.
        @param environ: the environment C{proxy=True} reads (default
            C{os.environ}).
        @raise ValueError: for a bad URL or an unusable proxy.
        """
        super().__init__(reactor, options)
        self.url = url or "ws://localhost/"
        self.isSecure, self.host, self.port, self.resource = parseWebSocketURL(self.url)
        self.proxy: Optional[Proxy] = resolveProxy(
            proxy, self.isSecure, self.host, self.port,
            os.environ if environ is None else environ,
        )
        self.origin = origin
        self.protocols = list(protocols or [])
        self.useragent = useragent
        self.headers = dict(headers or {})


def connectWS(
    factory: WebSocketClientFactory,
    contextFactory: Any = None,
    timeout: float = 30,
    bindAddress: Optional[tuple[str, int]] = None,
) -> Any:
    """
    Connect to the factory's URL (Autobahn's C{connectWS}).

    @param factory: the client factory.
    @param contextFactory: TLS client options for C{wss://}; by default,
        C{optionsForClientTLS(factory.host)}, which verifies the server.
    @param timeout: seconds to wait for the TCP connection.
    @param bindAddress: a local C{(host, port)} to bind.
    @return: the C{IConnector} (to the proxy when the factory has one; a
        refusal by the proxy reaches C{factory.clientConnectionFailed} as a
        L{ProxyError}).
    """
    reactor: Any = factory.reactor
    if factory.isSecure and contextFactory is None:
        contextFactory = optionsForClientTLS(factory.host)
    if factory.proxy is not None:
        inner: Any = factory
        if factory.isSecure:
            inner = TLSMemoryBIOFactory(contextFactory, True, factory)
        tunnel = TunnelClientFactory(_tunnelFor(factory, factory.proxy), inner, factory)
        return reactor.connectTCP(
            factory.proxy.host, factory.proxy.port, tunnel, timeout, bindAddress
        )
    if factory.isSecure:
        return reactor.connectSSL(
            factory.host, factory.port, factory, contextFactory, timeout, bindAddress
        )
    return reactor.connectTCP(factory.host, factory.port, factory, timeout, bindAddress)


def connect(
    url: str,
    factory: Optional[WebSocketClientFactory] = None,
    *,
    protocolClass: Optional[type[WebSocketClientProtocol]] = None,
    reactor: Any = None,
    contextFactory: Any = None,
    timeout: float = 30,
    **factoryArguments: Any,
) -> Deferred[WebSocketClientProtocol]:
    """
    Open a WebSocket connection through Twisted endpoints.

    @param url: the C{ws://} or C{wss://} URL.
    @param factory: a client factory to use; by default one is made from
        C{url}, C{reactor} and C{factoryArguments}.
    @param protocolClass: the protocol class for the default factory.
    @param reactor: the reactor (default: the global one).
    @param contextFactory: TLS client options for C{wss://}; by default,
        C{optionsForClientTLS(host)}, which verifies the certificate and the
        host name.
    @param timeout: seconds allowed for the TCP connection.
    @param factoryArguments: more L{WebSocketClientFactory} arguments
        (C{protocols}, C{origin}, C{headers}, C{options}, C{proxy},
        C{environ}, ...).
    @return: a Deferred firing with the open protocol, or failing with
        C{ConnectionRefusedError}, a TLS error, C{TimeoutError},
        L{ResponseError}, or L{ProxyError} (with the proxy's C{status})
        when a proxy refused the tunnel.
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    if factory is None:
        factory = WebSocketClientFactory(url, reactor=reactor, **factoryArguments)
        if protocolClass is not None:
            factory.protocol = protocolClass
    secure, host, port, _ = parseWebSocketURL(url)
    endpoint: Any = _endpointFor(reactor, factory, host, port, timeout)
    if secure:
        endpoint = wrapClientTLS(contextFactory or optionsForClientTLS(host), endpoint)

    def opened(protocol: WebSocketClientProtocol) -> Deferred[WebSocketClientProtocol]:
        return protocol.whenOpen()

    connecting: Deferred[WebSocketClientProtocol] = endpoint.connect(factory)
    return connecting.addCallback(opened)


def _endpointFor(
    reactor: Any, factory: WebSocketClientFactory, host: str, port: int, timeout: float
) -> IStreamClientEndpoint:
    """
    @return: the endpoint for the TCP connection to C{host:port}: direct,
        or through the factory's proxy.
    """
    proxy = factory.proxy
    if proxy is None:
        direct: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port, timeout)
        return direct
    return TunnelEndpoint(
        HostnameEndpoint(reactor, proxy.host, proxy.port, timeout), _tunnelFor(factory, proxy)
    )


def _tunnelFor(factory: WebSocketClientFactory, proxy: Proxy) -> Tunnel:
    # The proxy's answer gets the bounds of the server's: the opening
    # handshake's time and size.
    options = factory.options
    return Tunnel(factory.host, factory.port, proxy, factory.reactor,
                  options.openHandshakeTimeout, options.maxHandshakeSize)
