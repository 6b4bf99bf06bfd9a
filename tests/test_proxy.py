"""
Tests for L{txws._proxy} and the client's connections through HTTP proxies:
which proxy a URL uses (explicit, or the environment as C{requests} and
C{websockets} read it), the C{CONNECT} tunnel (RFC 9110 section 9.3.6) in
memory, and C{ws://} and C{wss://} through a real C{CONNECT} proxy started
by the test on 127.0.0.1.
"""

from __future__ import annotations

import base64
from typing import Any, Optional, cast

from service_identity import VerificationError
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure

from tests.peers.harness import (
    RecordingClientFactory,
    RecordingClientProtocol,
    RecordingServerFactory,
    bounded,
    dropConnections,
    failureOf,
    listenedPort,
    reactor,
)
from tests.tlssupport import TestAuthority
from tests.typedtrial import SynchronousTestCase, TestCase
from txws import ProxyError
from txws._proxy import (
    Proxy,
    Tunnel,
    TunnelProtocol,
    buildConnectRequest,
    bypassesProxy,
    parseConnectResponse,
    parseProxy,
    proxyFromEnvironment,
)
from txws.client import WebSocketClientFactory, connect, connectWS
from txws.options import WebSocketOptions

PATIENT = WebSocketOptions(closeHandshakeTimeout=60)


class ParseProxyTests(SynchronousTestCase):
    """
    L{parseProxy}: explicit proxies as URLs, Autobahn mappings or objects.
    """

    def test_urlWithCredentials(self) -> None:
        """
        User and password come from the URL, percent-decoded.
        """
        self.assertEqual(
            parseProxy("http://us%40er:p%3Ass@proxy.example:3128"),
            Proxy("proxy.example", 3128, "us@er", "p:ss"),
        )

    def test_schemeAndPortDefault(self) -> None:
        """
        Without a scheme the URL is C{http://}; without a port, 80.
        """
        self.assertEqual(parseProxy("proxy.example"), Proxy("proxy.example", 80))

    def test_autobahnMapping(self) -> None:
        """
        Autobahn's C{{"host": ..., "port": ...}} is accepted.
        """
        self.assertEqual(parseProxy({"host": "p", "port": 8080}), Proxy("p", 8080))

    def test_badMapping(self) -> None:
        """
        A mapping without a host string is refused.
        """
        self.assertRaises(ValueError, parseProxy, {"port": 8080})

    def test_otherSchemesRefused(self) -> None:
        """
        Only C{http://} proxies can open C{CONNECT} tunnels; others say so.
        """
        for url in ("https://p:443", "socks5://p:1080"):
            e = self.assertRaises(ValueError, parseProxy, url)
            self.assertIn("only http://", str(e))

    def test_passwordNotInRepr(self) -> None:
        """
        The password never appears in a proxy's C{repr}.
        """
        self.assertNotIn("hunter2", repr(Proxy("p", 1, "u", "hunter2")))

    def test_basicAuthorization(self) -> None:
        """
        The credentials become a C{Basic} C{Proxy-Authorization} value.
        """
        self.assertEqual(
            Proxy("p", 1, "u", "pw").authorization(),
            b"Basic " + base64.b64encode(b"u:pw"),
        )
        self.assertIsNone(Proxy("p", 1).authorization())


class EnvironmentTests(SynchronousTestCase):
    """
    L{proxyFromEnvironment} and C{no_proxy}, read as C{requests} and
    C{urllib} read them.
    """

    def test_secureUsesHttpsProxy(self) -> None:
        """
        C{wss://} goes through C{https_proxy}, C{ws://} through
        C{http_proxy}.
        """
        environ = {"https_proxy": "http://s:1", "http_proxy": "http://p:2"}
        self.assertEqual(proxyFromEnvironment(True, "h", 443, environ), Proxy("s", 1))
        self.assertEqual(proxyFromEnvironment(False, "h", 80, environ), Proxy("p", 2))

    def test_upperCaseAndPrecedence(self) -> None:
        """
        Upper case names count; lower case wins when both are set.
        """
        self.assertEqual(
            proxyFromEnvironment(True, "h", 443, {"HTTPS_PROXY": "http://u:1"}), Proxy("u", 1)
        )
        both = {"HTTPS_PROXY": "http://u:1", "https_proxy": "http://l:2"}
        self.assertEqual(proxyFromEnvironment(True, "h", 443, both), Proxy("l", 2))

    def test_allProxyFallback(self) -> None:
        """
        C{all_proxy} serves both schemes when the specific one is unset.
        """
        self.assertEqual(
            proxyFromEnvironment(False, "h", 80, {"all_proxy": "http://a:3"}), Proxy("a", 3)
        )

    def test_nothingSet(self) -> None:
        """
        Without variables the connection is direct.
        """
        self.assertIsNone(proxyFromEnvironment(True, "h", 443, {"http_proxy": "http://p:2"}))

    def test_noProxyBypasses(self) -> None:
        """
        C{no_proxy} exempts the destination.
        """
        environ = {"http_proxy": "http://p:2", "NO_PROXY": "internal.example, localhost"}
        self.assertIsNone(proxyFromEnvironment(False, "ws.internal.example", 80, environ))
        self.assertEqual(proxyFromEnvironment(False, "example.com", 80, environ), Proxy("p", 2))

    def test_loopbackNeverFromEnvironment(self) -> None:
        """
        Loopback destinations are never sent to a proxy from the
        environment.
        """
        environ = {"http_proxy": "http://p:2", "https_proxy": "http://p:2"}
        for host in ("localhost", "app.localhost", "127.0.0.1", "127.9.9.9", "::1", "[::1]"):
            self.assertIsNone(proxyFromEnvironment(False, host, 80, environ), host)
            self.assertIsNone(proxyFromEnvironment(True, host, 443, environ), host)
        self.assertEqual(proxyFromEnvironment(False, "10.0.0.1", 80, environ), Proxy("p", 2))

    def test_badVariableNamed(self) -> None:
        """
        A variable naming a proxy txws cannot use is an error naming it.
        """
        e = self.assertRaises(
            ValueError, proxyFromEnvironment, True, "h", 443, {"https_proxy": "socks5://p:1"}
        )
        self.assertIn("https_proxy", str(e))

    def test_bypassRules(self) -> None:
        """
        C{*}, names and their subdomains (leading dot ignored), C{name:port},
        addresses and CIDR networks; nothing else.
        """
        cases = [
            ("anything", 80, "*", True),
            ("example.com", 80, "example.com", True),
            ("a.example.com", 80, ".example.com", True),
            ("badexample.com", 80, "example.com", False),
            ("example.com", 8080, "example.com:8080", True),
            ("example.com", 80, "example.com:8080", False),
            ("10.1.2.3", 80, "10.0.0.0/8", True),
            ("11.1.2.3", 80, "10.0.0.0/8", False),
            ("127.0.0.1", 80, "localhost,127.0.0.1", True),
            ("::1", 80, "::1", True),
            ("EXAMPLE.com.", 80, "example.COM", True),
            ("example.com", 80, "", False),
        ]
        for host, port, noProxy, expected in cases:
            self.assertEqual(
                bypassesProxy(host, port, noProxy), expected, (host, port, noProxy)
            )


class FactoryProxyTests(SynchronousTestCase):
    """
    The C{proxy} and C{environ} arguments of L{WebSocketClientFactory}.
    """

    def test_defaultReadsEnvironment(self) -> None:
        """
        By default the factory uses the proxy the environment names.
        """
        factory = WebSocketClientFactory(
            "wss://example.com/", reactor=Clock(), environ={"https_proxy": "http://p:3128"}
        )
        self.assertEqual(factory.proxy, Proxy("p", 3128))

    def test_noProxyHonoured(self) -> None:
        """
        C{no_proxy} naming the host's domain makes the factory connect
        directly.
        """
        factory = WebSocketClientFactory(
            "ws://ws.internal.example/", reactor=Clock(),
            environ={"http_proxy": "http://p:3128", "no_proxy": ".internal.example"},
        )
        self.assertIsNone(factory.proxy)

    def test_noneIgnoresEnvironment(self) -> None:
        """
        C{proxy=None} (Autobahn's default) connects directly whatever the
        environment says.
        """
        factory = WebSocketClientFactory(
            "ws://example.com/", proxy=None, reactor=Clock(),
            environ={"http_proxy": "http://p:3128"},
        )
        self.assertIsNone(factory.proxy)

    def test_explicitWins(self) -> None:
        """
        An explicit proxy is used even when the environment names another
        or exempts the host.
        """
        factory = WebSocketClientFactory(
            "ws://example.com/", proxy={"host": "mine", "port": 1}, reactor=Clock(),
            environ={"http_proxy": "http://p:3128", "no_proxy": "*"},
        )
        self.assertEqual(factory.proxy, Proxy("mine", 1))


class ConnectRequestTests(SynchronousTestCase):
    """
    L{buildConnectRequest} and L{parseConnectResponse}.
    """

    def test_request(self) -> None:
        """
        C{CONNECT host:port} with C{Host}, and the credentials when given.
        """
        self.assertEqual(
            buildConnectRequest("example.com", 443, Proxy("p", 1, "u", "pw")),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
            b"Proxy-Authorization: Basic dTpwdw==\r\n\r\n",
        )

    def test_ipv6Bracketed(self) -> None:
        """
        An IPv6 address goes in brackets.
        """
        self.assertTrue(
            buildConnectRequest("::1", 80, Proxy("p", 1)).startswith(b"CONNECT [::1]:80 ")
        )

    def test_badHost(self) -> None:
        """
        A host that would break the request line is refused.
        """
        self.assertRaises(ValueError, buildConnectRequest, "a b\r\nX: y", 80, Proxy("p", 1))

    def test_response(self) -> None:
        """
        The status, reason and head length once the head is complete.
        """
        head = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n"
        self.assertIsNone(parseConnectResponse(head[:-1], 1024))
        self.assertEqual(
            parseConnectResponse(head + b"more", 1024),
            (200, "Connection established", len(head)),
        )

    def test_malformed(self) -> None:
        """
        A head that is not HTTP fails with L{ProxyError} without a status.
        """
        e = self.assertRaises(ProxyError, parseConnectResponse, b"SSH-2.0\r\n\r\n", 1024)
        self.assertIsNone(e.status)

    def test_tooLarge(self) -> None:
        """
        A head longer than the bound fails once the bound is passed.
        """
        self.assertIsNone(parseConnectResponse(b"x" * 1024, 1024))
        e = self.assertRaises(ProxyError, parseConnectResponse, b"x" * 1025, 1024)
        self.assertIn("1024 bytes", str(e))


class _Inner(Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)


class TunnelProtocolTests(SynchronousTestCase):
    """
    L{TunnelProtocol} in memory, with a L{Clock}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.inner = _Inner()
        factory = Factory.forProtocol(lambda: self.inner)
        self.tunnel = TunnelProtocol(
            Tunnel("origin.example", 443, Proxy("p", 1), self.clock, 10.0, 1024), factory
        )
        self.transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 3128))
        cast(Any, self.tunnel).makeConnection(self.transport)

    def test_sendsConnect(self) -> None:
        """
        The request goes out at once.
        """
        self.assertTrue(self.transport.value().startswith(b"CONNECT origin.example:443 "))

    def test_openHandsOver(self) -> None:
        """
        After a 2xx the inner protocol gets the same transport and every byte
        after the head, and L{TunnelProtocol.ready} fires with it.
        """
        self.tunnel.dataReceived(b"HTTP/1.1 200 OK\r\n\r\nfirst")
        self.tunnel.dataReceived(b"second")
        self.assertIs(self.successResultOf(self.tunnel.ready), self.inner)
        self.assertIs(self.inner.transport, self.transport)
        self.assertEqual(self.inner.received, [b"first", b"second"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refusalCarriesStatus(self) -> None:
        """
        A non-2xx answer fails with its status and reason and drops the
        connection.
        """
        self.tunnel.dataReceived(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
        error = cast(ProxyError, self.failureResultOf(self.tunnel.ready, ProxyError).value)
        self.assertEqual((error.status, error.reason), (407, "Proxy Authentication Required"))
        self.assertIn("407", str(error))
        self.assertTrue(self.transport.disconnecting)
        self.assertIsNone(self.inner.transport)

    def test_refusalLoggedOnceWithoutSecrets(self) -> None:
        """
        A refusal is logged once, naming the target, the proxy and the
        status, never the credentials.
        """
        tunnel = TunnelProtocol(
            Tunnel("origin.example", 443, Proxy("p", 3128, "alice", "hunter2"), self.clock),
            Factory.forProtocol(_Inner),
        )
        transport = StringTransport()
        with capturedLogs() as events:
            cast(Any, tunnel).makeConnection(transport)
            tunnel.dataReceived(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            self.failureResultOf(tunnel.ready, ProxyError)
        lines = [formatEvent(event) for event in events]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("origin.example:443", lines[0])
        self.assertIn("p:3128", lines[0])
        self.assertIn("403 Forbidden", lines[0])
        self.assertNotIn("hunter2", lines[0])
        self.assertNotIn(base64.b64encode(b"alice:hunter2").decode(), lines[0])

    def test_timeout(self) -> None:
        """
        A proxy that does not answer in time fails the tunnel.
        """
        self.clock.advance(9.9)
        self.assertNoResult(self.tunnel.ready)
        self.clock.advance(0.1)
        error = cast(ProxyError, self.failureResultOf(self.tunnel.ready, ProxyError).value)
        self.assertIsNone(error.status)
        self.assertIn("within 10 s", str(error))
        self.assertTrue(self.transport.disconnecting)

    def test_oversizedAnswer(self) -> None:
        """
        An answer head over the bound fails the tunnel.
        """
        self.tunnel.dataReceived(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 200)
        self.failureResultOf(self.tunnel.ready, ProxyError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closedBeforeAnswer(self) -> None:
        """
        A proxy that hangs up without answering fails the tunnel.
        """
        cast(Any, self.tunnel).connectionLost(Failure(ConnectionError("gone")))
        error = cast(ProxyError, self.failureResultOf(self.tunnel.ready, ProxyError).value)
        self.assertIn("closed the connection", str(error))
        self.assertEqual(self.clock.getDelayedCalls(), [])


# -- A real CONNECT proxy, for the integration tests ---------------------------


class _Relay(Protocol):
    def __init__(self, client: _ProxyConnection) -> None:
        self.client = client

    def dataReceived(self, data: bytes) -> None:
        self.client.transport.write(data)  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.client.transport.loseConnection()  # type: ignore[union-attr]


class _ProxyConnection(Protocol):
    factory: ConnectProxy

    def __init__(self) -> None:
        self.buffer = b""
        self.relay: Optional[_Relay] = None

    def dataReceived(self, data: bytes) -> None:
        if self.relay is not None:
            self.relay.transport.write(data)  # type: ignore[union-attr]
            return
        self.buffer += data
        if b"\r\n\r\n" not in self.buffer:
            return
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        self.factory.requests.append((method, target, headers))
        status = self.factory.verdict(headers)
        if status is not None:
            self.transport.write(status.encode() + b"\r\nContent-Length: 0\r\n\r\n")  # type: ignore[union-attr]
            self.transport.loseConnection()  # type: ignore[union-attr]
            return
        # Every name is 127.0.0.1 to this proxy: the tests' origins are all
        # local, whatever name the client asked for.
        _, _, port = target.rpartition(":")
        self.transport.pauseProducing()  # type: ignore[union-attr]
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", int(port))
        relay = _Relay(self)
        connecting = endpoint.connect(Factory.forProtocol(lambda: relay))

        def connected(_: object) -> None:
            self.relay = relay
            self.transport.write(b"HTTP/1.1 200 Connection established\r\n\r\n")  # type: ignore[union-attr]
            if rest:
                relay.transport.write(rest)  # type: ignore[union-attr]
            self.transport.resumeProducing()  # type: ignore[union-attr]

        def failed(_: Failure) -> None:
            self.transport.write(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")  # type: ignore[union-attr]
            self.transport.loseConnection()  # type: ignore[union-attr]

        connecting.addCallbacks(connected, failed)

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        if self.relay is not None:
            self.relay.transport.loseConnection()  # type: ignore[union-attr]


class ConnectProxy(Factory):
    """
    A small HTTP C{CONNECT} proxy: records each request, optionally asks
    for Basic credentials (407) or refuses every tunnel (403), and relays
    bytes to 127.0.0.1 only (any host name asked for is taken to mean it).

    @ivar requests: C{(method, target, headers)} per request.
    """

    protocol = _ProxyConnection  # type: ignore[assignment]

    def __init__(self, credentials: Optional[tuple[str, str]] = None, refuse: bool = False) -> None:
        self.credentials = credentials
        self.refuse = refuse
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def verdict(self, headers: dict[str, str]) -> Optional[str]:
        """
        @return: a refusal's status line, or C{None} to open the tunnel.
        """
        if self.credentials is not None:
            expected = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
            if headers.get("Proxy-Authorization") != expected:
                return (
                    "HTTP/1.1 407 Proxy Authentication Required\r\n"
                    'Proxy-Authenticate: Basic realm="t"'
                )
        if self.refuse:
            return "HTTP/1.1 403 Forbidden"
        return None


class ThroughProxyTests(TestCase):
    """
    C{connect()} and C{connectWS} through a real C{CONNECT} proxy on
    127.0.0.1, to a real txws server.
    """

    def setUp(self) -> None:
        self.authority = TestAuthority()
        self.server = RecordingServerFactory(reactor=reactor, options=PATIENT)
        self.addCleanup(dropConnections, self.server)

    def startProxy(self, **arguments: Any) -> tuple[ConnectProxy, str]:
        """
        @return: a running proxy and its URL.
        """
        proxy = ConnectProxy(**arguments)
        port = reactor.listenTCP(0, proxy, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return proxy, f"http://127.0.0.1:{listenedPort(port)}"

    def listen(self, secure: bool = False, **names: Any) -> int:
        """
        @return: the port of the echo server (TLS with a test-CA certificate
            when C{secure}).
        """
        if secure:
            port = reactor.listenSSL(
                0, self.server, self.authority.serverOptions(**names), interface="127.0.0.1"
            )
        else:
            port = reactor.listenTCP(0, self.server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return listenedPort(port)

    async def echo(self, url: str, **arguments: Any) -> RecordingClientProtocol:
        protocol = await bounded(
            connect(url, protocolClass=RecordingClientProtocol, reactor=reactor,
                    options=PATIENT, **arguments)
        )
        assert isinstance(protocol, RecordingClientProtocol)
        self.addCleanup(dropConnections, protocol.factory)
        protocol.sendMessage(b"through the tunnel", True)
        self.assertEqual(await protocol.nextMessage(), (b"through the tunnel", True))
        return protocol

    async def test_plainThroughProxy(self) -> None:
        """
        C{ws://} through an explicit proxy: the proxy is asked for the
        origin, and messages go both ways.
        """
        proxy, proxyURL = self.startProxy()
        port = self.listen()
        await self.echo(f"ws://127.0.0.1:{port}/", proxy=proxyURL)
        self.assertEqual(
            [(m, t) for m, t, _ in proxy.requests], [("CONNECT", f"127.0.0.1:{port}")]
        )

    async def test_secureThroughProxy(self) -> None:
        """
        C{wss://localhost} through the proxy: the proxy gets the name, TLS
        runs inside the tunnel, and the certificate is checked for the
        origin's name.
        """
        proxy, proxyURL = self.startProxy()
        port = self.listen(secure=True)
        trusting = optionsForClientTLS("localhost", trustRoot=self.authority.certificate)
        await self.echo(f"wss://localhost:{port}/", proxy=proxyURL, contextFactory=trusting)
        self.assertEqual([t for _, t, _ in proxy.requests], [f"localhost:{port}"])

    async def test_secureWrongNameThroughProxy(self) -> None:
        """
        Through the tunnel, a certificate for another name fails
        verification and nothing is delivered.
        """
        proxy, proxyURL = self.startProxy()
        port = self.listen(secure=True, dnsNames=("other.example",), ipAddresses=())
        trusting = optionsForClientTLS("localhost", trustRoot=self.authority.certificate)
        factory = RecordingClientFactory(
            f"wss://localhost:{port}/", reactor=reactor, proxy=proxyURL
        )
        await failureOf(
            connect(factory.url, factory, reactor=reactor, contextFactory=trusting),
            VerificationError,
        )
        self.assertTrue(factory.deliveredNothing())
        self.assertEqual(len(proxy.requests), 1)

    async def test_credentials(self) -> None:
        """
        A proxy that wants credentials refuses none and wrong ones with a
        L{ProxyError} of status 407, and opens the tunnel with the right
        ones, sent as C{Basic}.
        """
        proxy, proxyURL = self.startProxy(credentials=("alice", "s3cret"))
        port = self.listen()
        url = f"ws://127.0.0.1:{port}/"
        host = proxyURL.removeprefix("http://")
        for given in (proxyURL, f"http://alice:wrong@{host}"):
            error = await failureOf(
                connect(url, reactor=reactor, proxy=given), ProxyError
            )
            self.assertEqual(error.status, 407)
            self.assertIn("407 Proxy Authentication Required", str(error))
        await self.echo(url, proxy=f"http://alice:s3cret@{host}")
        self.assertEqual(
            [h.get("Proxy-Authorization") for _, _, h in proxy.requests],
            [None, "Basic " + base64.b64encode(b"alice:wrong").decode(),
             "Basic " + base64.b64encode(b"alice:s3cret").decode()],
        )

    async def test_forbidden(self) -> None:
        """
        A proxy's 403 fails the connection with that status; the server is
        never reached.
        """
        _, proxyURL = self.startProxy(refuse=True)
        port = self.listen()
        error = await failureOf(
            connect(f"ws://127.0.0.1:{port}/", reactor=reactor, proxy=proxyURL), ProxyError
        )
        self.assertEqual((error.status, error.reason), (403, "Forbidden"))
        self.assertEqual(self.server.connectionCount, 0)

    async def test_environment(self) -> None:
        """
        C{http_proxy} in the (injected) environment carries C{ws://} to a
        name only the proxy resolves; C{https_proxy} is not used for
        C{ws://}, and a loopback destination connects directly.
        """
        proxy, proxyURL = self.startProxy()
        port = self.listen()
        await self.echo(f"ws://origin.test:{port}/", environ={"http_proxy": proxyURL})
        self.assertEqual([t for _, t, _ in proxy.requests], [f"origin.test:{port}"])
        self.assertIsNone(
            WebSocketClientFactory(f"ws://origin.test:{port}/", reactor=reactor,
                                   environ={"https_proxy": proxyURL}).proxy
        )
        await self.echo(f"ws://127.0.0.1:{port}/", environ={"http_proxy": proxyURL})
        self.assertEqual(len(proxy.requests), 1)

    async def test_connectWSThroughProxy(self) -> None:
        """
        Autobahn's C{connectWS} with C{proxy={"host": ..., "port": ...}}
        connects through the proxy.
        """
        proxy, proxyURL = self.startProxy()
        port = self.listen(secure=True)
        proxyPort = int(proxyURL.rpartition(":")[2])
        factory = RecordingClientFactory(
            f"wss://localhost:{port}/", reactor=reactor,
            proxy={"host": "127.0.0.1", "port": proxyPort}, options=PATIENT,
        )
        trusting = optionsForClientTLS("localhost", trustRoot=self.authority.certificate)
        connector = connectWS(factory, trusting)
        self.addCleanup(connector.disconnect)
        self.addCleanup(dropConnections, factory)
        protocol = await bounded(factory.opened.get())
        protocol.sendMessage(b"autobahn style", False)
        self.assertEqual(await protocol.nextMessage(), (b"autobahn style", False))
        self.assertEqual([t for _, t, _ in proxy.requests], [f"localhost:{port}"])

    async def test_connectWSRefusalReachesFactory(self) -> None:
        """
        With C{connectWS}, a proxy's refusal reaches the factory's
        C{clientConnectionFailed} as a L{ProxyError} with the status.
        """
        _, proxyURL = self.startProxy(refuse=True)
        port = self.listen()
        failed: Deferred[list[Failure]] = Deferred()

        class Reporting(WebSocketClientFactory):
            def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
                failed.callback([reason])

        factory = Reporting(f"ws://127.0.0.1:{port}/", reactor=reactor, proxy=proxyURL)
        connectWS(factory)
        [reason] = await bounded(failed)
        self.assertIsInstance(reason.value, ProxyError)
        self.assertEqual(cast(ProxyError, reason.value).status, 403)

