"""
WebSocket clients through HTTP proxies: which proxy a URL goes through
(explicit, or the C{https_proxy} / C{http_proxy} / C{no_proxy} environment
as C{requests} and C{websockets} read it), and the C{CONNECT} tunnel.

Design: choosing the proxy and parsing the proxy's answer are pure
functions.  L{TunnelProtocol} is the protocol on the TCP connection to the
proxy: it sends C{CONNECT host:port} (RFC 9110 section 9.3.6), reads the
answer within a time and a size, and on a 2xx status hands the connection's
transport, unchanged, to the protocol built by the factory it was given
(for C{wss://} that is Twisted's TLS protocol wrapping the WebSocket
protocol, so TLS to the origin starts inside the tunnel and verifies the
origin's name); any other status fails with L{ProxyError} carrying it.
L{TunnelEndpoint} makes this an endpoint (for C{connect()}) and
L{TunnelClientFactory} a client factory (for C{connectWS}).
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional, Union
from urllib.parse import unquote, urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import ClientFactory, Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = [
    "Proxy",
    "ProxyArgument",
    "ProxyError",
    "Tunnel",
    "TunnelClientFactory",
    "TunnelEndpoint",
    "TunnelProtocol",
    "buildConnectRequest",
    "bypassesProxy",
    "parseConnectResponse",
    "parseProxy",
    "proxyFromEnvironment",
    "resolveProxy",
]

_log = Logger()


class ProxyError(ConnectionError):
    """
    The HTTP proxy did not open a tunnel to the WebSocket server.

    @ivar status: the proxy's HTTP status (e.g. 407 when it wants
        credentials, 403 when it refuses the destination), or C{None} when
        it sent no valid answer in time.
    @ivar reason: what went wrong, for people.
    """

    def __init__(self, status: Optional[int], reason: str) -> None:
        """
        @param status: the proxy's HTTP status, or C{None}.
        @param reason: the explanation.
        """
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        if self.status is None:
            return f"HTTP proxy error: {self.reason}"
        return f"HTTP proxy refused the tunnel: {self.status} {self.reason}"


@dataclass(frozen=True)
class Proxy:
    """
    An HTTP proxy that opens C{CONNECT} tunnels.

    @ivar host: its host name or address.
    @ivar port: its port.
    @ivar username: the user for C{Proxy-Authorization: Basic}, or C{None}.
    @ivar password: that user's password (never in C{repr} or logs).
    """

    host: str
    port: int
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)

    def authorization(self) -> Optional[bytes]:
        """
        @return: the C{Proxy-Authorization} header value for the
            credentials, or C{None} without them.
        """
        if self.username is None:
            return None
        pair = f"{self.username}:{self.password or ''}".encode()
        return b"Basic " + base64.b64encode(pair)


#: What the C{proxy} argument of C{connect()} and C{WebSocketClientFactory}
#: accepts: C{True} (from the environment), C{None} or C{False} (none), a
#: proxy URL, Autobahn's C{{"host": ..., "port": ...}}, or a L{Proxy}.
ProxyArgument = Union[bool, None, str, Mapping[str, Any], Proxy]


def parseProxy(value: Union[str, Mapping[str, Any], Proxy]) -> Proxy:
    """
    Read a proxy given explicitly.

    @param value: a URL C{http://[user:password@]host[:port]} (the scheme
        may be left out; the port defaults to 80; user and password are
        percent-decoded), Autobahn's mapping C{{"host": ..., "port": ...}}
        (optionally with C{"username"} and C{"password"}), or a L{Proxy}.
    @return: the proxy.
    @raise ValueError: for another scheme than C{http}, or a missing host
        or bad port.
    """
    if isinstance(value, Proxy):
        return value
    if isinstance(value, Mapping):
        host, port = value.get("host"), value.get("port", 80)
        if not isinstance(host, str) or not host or not isinstance(port, int):
            raise ValueError("a proxy mapping needs a 'host' string and an integer 'port'")
        username, password = value.get("username"), value.get("password")
        return Proxy(host, port, username, password)
    text = value.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme.lower() != "http":
        raise ValueError(
            f"unsupported proxy scheme {parts.scheme!r}: only http:// (CONNECT) proxies are"
            " supported"
        )
    try:
        port = parts.port if parts.port is not None else 80
    except ValueError:
        raise ValueError("bad port in the proxy URL") from None
    if not parts.hostname:
        raise ValueError("proxy URL without a host")
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(parts.hostname, port, username, password)


def _variable(environ: Mapping[str, str], name: str) -> str:
    # Lower case first, as urllib and requests read them.
    return environ.get(name) or environ.get(name.upper()) or ""


def bypassesProxy(host: str, port: int, noProxy: str) -> bool:
    """
    Whether C{no_proxy} exempts a destination, as C{requests} and
    C{urllib} read it: a comma (or space) separated list where C{*} exempts
    everything, a name exempts itself and its subdomains (a leading dot is
    ignored), C{name:port} only that port, and an address or a CIDR network
    (C{10.0.0.0/8}) the addresses it covers.

    @param host: the WebSocket server's host.
    @param port: its port.
    @param noProxy: the value of C{no_proxy}.
    @return: C{True} to connect directly.
    """
    host = host.lower().rstrip(".").strip("[]")
    try:
        address: Optional[Any] = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in re.split(r"[,\s]+", noProxy.lower()):
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, entryPort = entry.rpartition(":") if _hasPort(entry) else (entry, "", "")
        if entryPort and entryPort != str(port):
            continue
        name = name.strip("[]")
        if address is not None:
            try:
                if address in ipaddress.ip_network(name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        name = name.lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _hasPort(entry: str) -> bool:
    if entry.startswith("["):
        return "]:" in entry
    return entry.count(":") == 1


def _isLoopback(host: str) -> bool:
    name = host.lower().rstrip(".").strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def proxyFromEnvironment(
    isSecure: bool, host: str, port: int, environ: Mapping[str, str]
) -> Optional[Proxy]:
    """
    The proxy the environment names for a WebSocket URL: C{wss_proxy},
    C{https_proxy} or C{all_proxy} for C{wss://}, C{ws_proxy}, C{http_proxy}
    or C{all_proxy} for C{ws://} (the first one set, each in lower case
    first, then upper case), unless C{no_proxy} exempts the destination or
    it is on the loopback interface (C{localhost}, C{127.0.0.0/8},
    C{::1}): as in Go's C{net/http}, a proxy's loopback is not ours, so an
    environment meant for outside traffic never captures local
    connections (an explicit proxy still does).

    @param isSecure: whether the URL is C{wss://}.
    @param host: the WebSocket server's host.
    @param port: its port.
    @param environ: the environment (normally C{os.environ}).
    @return: the proxy, or C{None} to connect directly.
    @raise ValueError: when the variable holds a proxy txws cannot use
        (another scheme than C{http}), naming the variable.
    """
    names = ("wss_proxy", "https_proxy") if isSecure else ("ws_proxy", "http_proxy")
    for name in (*names, "all_proxy"):
        value = _variable(environ, name)
        if value:
            break
    else:
        return None
    if _isLoopback(host) or bypassesProxy(host, port, _variable(environ, "no_proxy")):
        return None
    try:
        return parseProxy(value)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def resolveProxy(
    proxy: ProxyArgument, isSecure: bool, host: str, port: int, environ: Mapping[str, str]
) -> Optional[Proxy]:
    """
    The proxy a connection uses.

    @param proxy: see L{ProxyArgument}.
    @param isSecure: whether the URL is C{wss://}.
    @param host: the WebSocket server's host.
    @param port: its port.
    @param environ: the environment read when C{proxy} is C{True}.
    @return: the proxy, or C{None} to connect directly.
    @raise ValueError: for a proxy that cannot be used.
    """
    if proxy is True:
        return proxyFromEnvironment(isSecure, host, port, environ)
    if proxy is None or proxy is False:
        return None
    return parseProxy(proxy)


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def buildConnectRequest(host: str, port: int, proxy: Proxy) -> bytes:
    """
    @param host: the WebSocket server's host.
    @param port: its port.
    @param proxy: the proxy, whose credentials (if any) are sent.
    @return: the C{CONNECT} request opening a tunnel to C{host:port}.
    @raise ValueError: for a host that cannot go into a request line.
    """
    authority = _authority(host, port)
    if not re.fullmatch(r"[A-Za-z0-9.\-_:\[\]%]+", authority):
        raise ValueError(f"bad host for a CONNECT request: {host!r}")
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    head = ("\r\n".join(lines) + "\r\n").encode("ascii")
    authorization = proxy.authorization()
    if authorization is not None:
        head += b"Proxy-Authorization: " + authorization + b"\r\n"
    return head + b"\r\n"


@dataclass(frozen=True)
class Tunnel:
    """
    What a C{CONNECT} tunnel needs: where it leads, through which proxy, and
    the bounds on the proxy's answer.

    @ivar host: the destination (WebSocket server) host.
    @ivar port: the destination port.
    @ivar proxy: the proxy, with its credentials.
    @ivar clock: schedules the timeout.
    @ivar timeout: seconds the proxy has to answer C{CONNECT}.
    @ivar maxSize: the largest answer head accepted, in bytes.
    """

    host: str
    port: int
    proxy: Proxy
    clock: IReactorTime
    timeout: float = 10.0
    maxSize: int = 16384


_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: ([^\r\n]*))?")


def parseConnectResponse(data: bytes, maxSize: int) -> Optional[tuple[int, str, int]]:
    """
    Parse the proxy's answer to C{CONNECT}.

    @param data: what the proxy sent so far.
    @param maxSize: the largest answer head accepted.
    @return: C{(status, reason, consumed)} once the head is complete, else
        C{None}.
    @raise ProxyError: for a malformed head, or one over C{maxSize} bytes.
    """
    end = data.find(b"\r\n\r\n", 0, maxSize + 4)
    if end < 0:
        if len(data) > maxSize:
            raise ProxyError(None, f"the proxy's answer exceeds {maxSize} bytes")
        return None
    lineEnd = data.find(b"\r\n")
    match = _STATUS_LINE.fullmatch(data, 0, lineEnd)
    if match is None:
        raise ProxyError(None, "the proxy sent a malformed status line")
    reason = (match.group(2) or b"").decode("latin-1").strip()
    return int(match.group(1)), reason, end + 4


class TunnelProtocol(Protocol):
    """
    The connection to the proxy: C{CONNECT}, then, once the tunnel is open,
    the protocol of C{innerFactory} on the same transport; this protocol
    then only passes received data and the connection's end on.

    @ivar ready: fires with the inner protocol once the tunnel is open, or
        fails with L{ProxyError} (the connection is then dropped).
    @ivar inner: the inner protocol, once built.
    """

    inner: Optional[IProtocol] = None

    def __init__(self, tunnel: Tunnel, innerFactory: IProtocolFactory) -> None:
        """
        @param tunnel: where the tunnel leads and its bounds.
        @param innerFactory: builds the protocol that runs in the tunnel.
        """
        self._tunnel = tunnel
        self._innerFactory = innerFactory
        self._buffer = b""
        self._timer: Optional[IDelayedCall] = None
        self.ready: Deferred[IProtocol] = Deferred()

    def connectionMade(self) -> None:
        """
        Send C{CONNECT} and start the timeout.
        """
        self._timer = self._tunnel.clock.callLater(self._tunnel.timeout, self._timedOut)
        self.transport.write(  # type: ignore[union-attr]
            buildConnectRequest(self._tunnel.host, self._tunnel.port, self._tunnel.proxy)
        )

    def _timedOut(self) -> None:
        self._timer = None
        self._fail(ProxyError(None, f"no answer to CONNECT within {self._tunnel.timeout:g} s"))

    def _fail(self, error: ProxyError) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._buffer = b""
        _log.info(
            "CONNECT to {target} through the HTTP proxy {proxy} failed: {why}",
            target=_authority(self._tunnel.host, self._tunnel.port),
            proxy=_authority(self._tunnel.proxy.host, self._tunnel.proxy.port),
            why=str(error),
        )
        transport: Any = self.transport
        transport.abortConnection()
        if not self.ready.called:
            self.ready.errback(Failure(error))

    def dataReceived(self, data: bytes) -> None:
        """
        Read the proxy's answer; after it, pass data to the inner protocol.

        @param data: bytes from the proxy.
        """
        if self.inner is not None:
            self.inner.dataReceived(data)
            return
        if self.ready.called:
            return
        self._buffer += data
        try:
            parsed = parseConnectResponse(self._buffer, self._tunnel.maxSize)
        except ProxyError as e:
            self._fail(e)
            return
        if parsed is None:
            return
        status, reason, consumed = parsed
        if not 200 <= status < 300:
            self._fail(ProxyError(status, reason or "(no reason given)"))
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        rest, self._buffer = self._buffer[consumed:], b""
        transport: Any = self.transport
        inner = self._innerFactory.buildProtocol(transport.getPeer())
        if inner is None:
            transport.loseConnection()
            self.ready.errback(Failure(ConnectionError("the factory built no protocol")))
            return
        self.inner = inner
        inner.makeConnection(transport)
        self.ready.callback(inner)
        if rest:
            inner.dataReceived(rest)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Pass the end on, or fail L{ready} if the tunnel never opened.

        @param reason: why the connection ended.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.inner is not None:
            self.inner.connectionLost(reason)
        elif not self.ready.called:
            self.ready.errback(
                Failure(ProxyError(None, "the proxy closed the connection before answering"))
            )


class _TunnelFactory(Factory):
    def __init__(self, build: Any) -> None:
        self._build = build

    def buildProtocol(self, addr: Any) -> TunnelProtocol:
        protocol: TunnelProtocol = self._build()
        return protocol


@implementer(IStreamClientEndpoint)
class TunnelEndpoint:
    """
    An endpoint that connects through a C{CONNECT} tunnel: it connects to
    the proxy with another endpoint, and fires with the protocol it was
    asked to connect once the tunnel is open.
    """

    def __init__(self, proxyEndpoint: IStreamClientEndpoint, tunnel: Tunnel) -> None:
        """
        @param proxyEndpoint: connects to the proxy.
        @param tunnel: where the tunnel leads and its bounds.
        """
        self._proxyEndpoint = proxyEndpoint
        self._tunnel = tunnel

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """
        @param protocolFactory: builds the protocol run in the tunnel.
        @return: a Deferred firing with that protocol once the tunnel is
            open, or failing with the connection error or L{ProxyError}.
        """

        def build() -> TunnelProtocol:
            return TunnelProtocol(self._tunnel, protocolFactory)

        connecting = self._proxyEndpoint.connect(_TunnelFactory(build))

        def tunnelled(tunnel: IProtocol) -> Deferred[IProtocol]:
            assert isinstance(tunnel, TunnelProtocol)
            return tunnel.ready

        return connecting.addCallback(tunnelled)


class TunnelClientFactory(ClientFactory):
    """
    A client factory for C{reactor.connectTCP} to the proxy (Autobahn's
    C{connectWS} shape): after the tunnel opens, C{innerFactory} builds the
    protocol; C{clientFactory} hears of a failed connection (with
    L{ProxyError} when the proxy refused) or of a lost one.
    """

    def __init__(
        self, tunnel: Tunnel, innerFactory: IProtocolFactory, clientFactory: ClientFactory
    ) -> None:
        """
        @param tunnel: where the tunnel leads and its bounds.
        @param innerFactory: builds the protocol run in the tunnel (for TLS,
            a TLS factory wrapping C{clientFactory}).
        @param clientFactory: the application's factory, told of failures.
        """
        self._tunnel = tunnel
        self._innerFactory = innerFactory
        self._clientFactory = clientFactory
        self._connection: Optional[TunnelProtocol] = None
        self._failure: Optional[Failure] = None

    def buildProtocol(self, addr: Any) -> TunnelProtocol:
        """
        @param addr: the proxy's address.
        @return: the tunnel protocol.
        """
        self._connection = TunnelProtocol(self._tunnel, self._innerFactory)
        self._connection.ready.addErrback(self._remember)
        return self._connection

    def _remember(self, failure: Failure) -> None:
        self._failure = failure

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        """
        The proxy could not be reached: tell the application's factory.

        @param connector: the connector.
        @param reason: why.
        """
        self._clientFactory.clientConnectionFailed(connector, reason)

    def clientConnectionLost(self, connector: Any, reason: Failure) -> None:
        """
        Tell the application's factory: as a failed connection with
        L{ProxyError} when the tunnel never opened, else as a lost one.

        @param connector: the connector.
        @param reason: why.
        """
        connection = self._connection
        if connection is not None and connection.inner is None:
            self._clientFactory.clientConnectionFailed(connector, self._failure or reason)
            return
        self._clientFactory.clientConnectionLost(connector, reason)
