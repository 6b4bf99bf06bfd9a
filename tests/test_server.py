"""
Tests for L{txws.server}: the server's opening handshake (RFC 6455 section
4.2), C{onConnect}, the Origin policy, limits and timeouts, and
L{WebSocketResource} inside a C{twisted.web} site.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from tests.typedtrial import SynchronousTestCase
from txws.handshake import ConnectionRequest
from txws.protocol import State
from txws.server import ConnectionDeny, WebSocketResource, WebSocketServerFactory

from .support import (
    SAMPLE_KEY,
    RecordingServer,
    clientFrame,
    connectServer,
    framesIn,
    serverFactory,
    upgradeRequest,
)


def statusOf(response: bytes) -> int:
    """
    @return: the status code of an HTTP response.
    """
    return int(response.split(b" ", 2)[1])


def headersOf(response: bytes) -> dict[bytes, bytes]:
    """
    @return: the response's headers by lower-case name.
    """
    head = response.split(b"\r\n\r\n", 1)[0]
    result = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        result[name.strip().lower()] = value.strip()
    return result


class HandshakeTests(SynchronousTestCase):
    """
    RFC 6455 section 4.2: the server's side of the opening handshake.
    """

    def handshake(self, request: bytes, **kwargs: Any) -> tuple[RecordingServer, StringTransport]:
        protocol, transport = connectServer(serverFactory(**kwargs))
        protocol.dataReceived(request)
        assert isinstance(protocol, RecordingServer)
        return protocol, transport

    def test_accept(self) -> None:
        """
        A valid request gets 101 with the RFC's accept value and the
        connection is open.
        """
        protocol, transport = self.handshake(upgradeRequest())
        response = transport.value()
        self.assertEqual(statusOf(response), 101)
        headers = headersOf(response)
        self.assertEqual(headers[b"sec-websocket-accept"], b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(headers[b"upgrade"], b"websocket")
        self.assertEqual(headers[b"connection"], b"Upgrade")
        self.assertIs(protocol.state, State.OPEN)
        self.assertEqual(protocol.events[-1], ("open",))

    def test_byteByByte(self) -> None:
        """
        The request may arrive one byte at a time.
        """
        protocol, transport = connectServer(serverFactory())
        for i, byte in enumerate(upgradeRequest()):
            self.assertEqual(transport.value(), b"", i)
            protocol.dataReceived(bytes([byte]))
        self.assertEqual(statusOf(transport.value()), 101)

    def test_requestSeenByOnConnect(self) -> None:
        """
        C{onConnect} sees the path, query parameters, headers, peer,
        Origin, and offered subprotocols and extensions.
        """
        extra = (
            "Origin: https://app.example.com\r\n"
            "Sec-WebSocket-Protocol: chat, superchat\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        )
        protocol, _ = self.handshake(upgradeRequest("/chat?room=1&room=2&x=", extra=extra))
        request = protocol.events[0][1]
        assert isinstance(request, ConnectionRequest)
        self.assertEqual(request.path, "/chat")
        self.assertEqual(request.params, {"room": ["1", "2"], "x": [""]})
        self.assertEqual(request.headers["host"], "server.example.com")
        self.assertEqual(request.peer, "tcp4:127.0.0.1:50000")
        self.assertEqual(request.origin, "https://app.example.com")
        self.assertEqual(request.protocols, ["chat", "superchat"])
        self.assertEqual(
            request.extensions, [("permessage-deflate", {"client_max_window_bits": None})]
        )

    def test_noExtensionAccepted(self) -> None:
        """
        With permessage-deflate switched off, or for an extension txws does
        not know, the 101 has no Sec-WebSocket-Extensions.
        """
        extra = "Sec-WebSocket-Extensions: permessage-deflate\r\n"
        protocol, transport = self.handshake(upgradeRequest(extra=extra), perMessageDeflate=False)
        self.assertEqual(statusOf(transport.value()), 101)
        self.assertNotIn(b"sec-websocket-extensions", headersOf(transport.value()))
        self.assertEqual(protocol.websocket_extensions_in_use, [])
        extra = "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"
        _, transport = self.handshake(upgradeRequest(extra=extra))
        self.assertEqual(statusOf(transport.value()), 101)
        self.assertNotIn(b"sec-websocket-extensions", headersOf(transport.value()))

    def test_refusals(self) -> None:
        """
        Invalid requests get the right 4xx, a text/plain reason, no accept
        header, and the connection is closed.
        """
        good = upgradeRequest().decode()
        cases = [
            (good.replace("GET", "POST", 1), 405),
            (good.replace("HTTP/1.1", "HTTP/1.0", 1), 400),
            (good.replace("Upgrade: websocket\r\n", ""), 426),
            (good.replace("Connection: Upgrade\r\n", "Connection: keep-alive\r\n"), 426),
            (good.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"), 426),
            (good.replace("Sec-WebSocket-Version: 13\r\n", ""), 426),
            (good.replace(SAMPLE_KEY, "c2hvcnQ="), 400),
            (good.replace("Host: server.example.com\r\n", ""), 400),
            ("GARBAGE\r\n\r\n", 400),
        ]
        for request, status in cases:
            protocol, transport = self.handshake(request.encode())
            response = transport.value()
            self.assertEqual(statusOf(response), status, request)
            headers = headersOf(response)
            self.assertEqual(headers[b"content-type"], b"text/plain; charset=utf-8")
            self.assertNotIn(b"sec-websocket-accept", headers)
            self.assertTrue(transport.disconnecting)
            self.assertEqual([e[0] for e in protocol.events], [])
            protocol.connectionLost(Failure(ConnectionDone()))
            self.assertEqual(protocol.closes()[0][:2], (False, 1006))

    def test_versionRefusalAdvertises13(self) -> None:
        """
        An unsupported version gets 426 with C{Sec-WebSocket-Version: 13}.
        """
        _, transport = self.handshake(upgradeRequest(version="8"))
        self.assertEqual(headersOf(transport.value())[b"sec-websocket-version"], b"13")

    def test_connectionTokenList(self) -> None:
        """
        C{Connection} may list several tokens in any case.
        """
        request = upgradeRequest().replace(
            b"Connection: Upgrade", b"Connection: keep-alive, UPGRADE"
        )
        _, transport = self.handshake(request)
        self.assertEqual(statusOf(transport.value()), 101)

    def test_headTooLarge(self) -> None:
        """
        A request head over the limit gets 431, even before it is complete.
        """
        protocol, transport = connectServer(serverFactory(maxHandshakeSize=1024))
        protocol.dataReceived(b"GET / HTTP/1.1\r\nX-Filler: " + b"a" * 2000)
        self.assertEqual(statusOf(transport.value()), 431)
        self.assertTrue(transport.disconnecting)

    def test_openTimeout(self) -> None:
        """
        A client that does not finish its request in time is dropped.
        """
        clock = Clock()
        protocol, transport = connectServer(serverFactory(clock, openHandshakeTimeout=10))
        protocol.dataReceived(upgradeRequest()[:20])
        clock.advance(9)
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertTrue(transport.disconnecting or transport.disconnected)

    def test_pipelinedFrames(self) -> None:
        """
        Frames in the same read as the request are processed after OPEN.
        """
        protocol, _ = self.handshake(upgradeRequest() + clientFrame(0x1, b"early"))
        self.assertEqual(protocol.messages(), [(b"early", False)])


class OriginTests(SynchronousTestCase):
    """
    RFC 6455 section 10.2: the Origin policy.
    """

    def statusFor(self, origin: str | None, **options: Any) -> int:
        extra = f"Origin: {origin}\r\n" if origin is not None else ""
        protocol, transport = connectServer(serverFactory(**options))
        protocol.dataReceived(upgradeRequest(extra=extra))
        return statusOf(transport.value())

    def test_exactAndWildcard(self) -> None:
        """
        Exact and wildcard patterns admit matching Origins; others get 403.
        """
        allowed = ("https://app.example.com", "https://*.example.org")
        self.assertEqual(self.statusFor("https://app.example.com", allowedOrigins=allowed), 101)
        self.assertEqual(self.statusFor("https://a.b.example.org", allowedOrigins=allowed), 101)
        self.assertEqual(self.statusFor("https://evil.com", allowedOrigins=allowed), 403)
        self.assertEqual(
            self.statusFor("https://example.org.evil.com", allowedOrigins=allowed), 403
        )
        self.assertEqual(self.statusFor("http://app.example.com", allowedOrigins=allowed), 403)

    def test_nullOrigin(self) -> None:
        """
        C{Origin: null} needs C{allowNullOrigin}.
        """
        self.assertEqual(self.statusFor("null"), 403)
        self.assertEqual(self.statusFor("null", allowNullOrigin=True), 101)

    def test_noOriginHeader(self) -> None:
        """
        Non-browser clients send no Origin and are not subject to the policy.
        """
        self.assertEqual(self.statusFor(None, allowedOrigins=("https://x.example",)), 101)


class OnConnectTests(SynchronousTestCase):
    """
    The application's say on the handshake.
    """

    def connectWith(
        self, onConnect: Any, extra: str = "", **kwargs: Any
    ) -> tuple[Any, StringTransport]:
        class App(RecordingServer):
            def onConnect(self, request: ConnectionRequest) -> Any:
                return onConnect(request)

        factory = serverFactory(protocolClass=App, **kwargs)
        protocol, transport = connectServer(factory)
        protocol.dataReceived(upgradeRequest(extra=extra))
        return protocol, transport

    def test_deny(self) -> None:
        """
        C{ConnectionDeny} refuses with its status and reason.
        """

        def deny(request: ConnectionRequest) -> None:
            raise ConnectionDeny(404, "no such room")

        protocol, transport = self.connectWith(deny)
        self.assertEqual(statusOf(transport.value()), 404)
        self.assertTrue(transport.value().endswith(b"no such room\n"))
        self.assertEqual(protocol.events, [])

    def test_raises(self) -> None:
        """
        Another exception is logged and refused with 500 without details.
        """

        def broken(request: ConnectionRequest) -> None:
            raise RuntimeError("secret")

        _, transport = self.connectWith(broken)
        self.assertEqual(statusOf(transport.value()), 500)
        self.assertNotIn(b"secret", transport.value())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_chooseProtocolAndHeaders(self) -> None:
        """
        Returning a subprotocol and headers puts both in the 101.
        """
        extra = "Sec-WebSocket-Protocol: a, b\r\n"
        protocol, transport = self.connectWith(lambda r: ("b", {"X-Room": "7"}), extra)
        headers = headersOf(transport.value())
        self.assertEqual(headers[b"sec-websocket-protocol"], b"b")
        self.assertEqual(headers[b"x-room"], b"7")
        self.assertEqual(protocol.websocket_protocol_in_use, "b")

    def test_factoryProtocols(self) -> None:
        """
        By default the first offered subprotocol the factory speaks is
        chosen; none is chosen if there is no common one.
        """

        class App(RecordingServer):
            pass

        factory = serverFactory(protocolClass=App)
        factory.protocols = ["v2", "v1"]
        protocol, transport = connectServer(factory)
        protocol.dataReceived(upgradeRequest(extra="Sec-WebSocket-Protocol: v1, v2\r\n"))
        self.assertEqual(headersOf(transport.value())[b"sec-websocket-protocol"], b"v1")
        protocol, transport = connectServer(factory)
        protocol.dataReceived(upgradeRequest(extra="Sec-WebSocket-Protocol: v3\r\n"))
        self.assertNotIn(b"sec-websocket-protocol", headersOf(transport.value()))

    def test_unofferedProtocolIsAnError(self) -> None:
        """
        Choosing a subprotocol the client did not offer is refused (500).
        """
        _, transport = self.connectWith(lambda r: "other")
        self.assertEqual(statusOf(transport.value()), 500)

    def test_deferred(self) -> None:
        """
        A Deferred from C{onConnect} holds the answer (and reading) until it
        fires; frames that arrived meanwhile are delivered after OPEN.
        """
        decision: Deferred[None] = Deferred()
        protocol, transport = self.connectWith(lambda r: decision)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(transport.producerState, "paused")
        protocol.dataReceived(clientFrame(0x1, b"queued"))
        decision.callback(None)
        self.assertEqual(statusOf(transport.value()), 101)
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(protocol.messages(), [(b"queued", False)])

    def test_deferredDeny(self) -> None:
        """
        A Deferred that fails with C{ConnectionDeny} refuses.
        """
        decision: Deferred[None] = Deferred()
        _, transport = self.connectWith(lambda r: decision)
        decision.errback(ConnectionDeny(403, "nope"))
        self.assertEqual(statusOf(transport.value()), 403)

    def test_deferredTimeout(self) -> None:
        """
        The open timeout covers a slow C{onConnect}.
        """
        clock = Clock()
        _, transport = self.connectWith(lambda r: Deferred(), clock=clock, openHandshakeTimeout=10)
        clock.advance(9)
        self.assertFalse(transport.disconnecting or transport.disconnected)
        clock.advance(1)
        self.assertTrue(transport.disconnecting or transport.disconnected)
        self.assertEqual(transport.value(), b"")

    def test_maxConnections(self) -> None:
        """
        Beyond C{maxConnections}, handshakes are refused with 503.
        """
        factory = serverFactory(maxConnections=1)
        first, firstTransport = connectServer(factory, 1)
        first.dataReceived(upgradeRequest())
        second, secondTransport = connectServer(factory, 2)
        second.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(firstTransport.value()), 101)
        self.assertEqual(statusOf(secondTransport.value()), 503)


class _OwnInit(RecordingServer):
    """
    An application protocol whose C{__init__} does not call its base's and
    that keeps attributes of its own.
    """

    def __init__(self, greeting: str = "hello") -> None:
        self.greeting = greeting
        self.events = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(self.greeting.encode() + payload, isBinary)


class SubclassTests(SynchronousTestCase):
    """
    Application subclasses work whatever their C{__init__} does: the
    connection's own state lives in slots set before C{__init__} runs.
    """

    def test_initWithoutSuper(self) -> None:
        """
        A subclass whose C{__init__} skips the base class's opens, echoes
        and closes normally, and keeps its own attributes.
        """
        factory = serverFactory(protocolClass=_OwnInit)
        protocol, transport = connectServer(factory)
        protocol.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(transport.value()), 101)
        transport.clear()
        protocol.dataReceived(clientFrame(0x1, b" world"))
        self.assertEqual(framesIn(transport.value()), [(True, 0x1, b"hello world")])
        self.assertEqual(protocol.state, State.OPEN)
        assert isinstance(protocol, _OwnInit)
        self.assertEqual(protocol.greeting, "hello")

    def test_noInstanceDictionaryNeeded(self) -> None:
        """
        A plain server connection keeps every attribute in slots (no
        per-connection dictionary is filled).
        """
        from txws.server import WebSocketServerProtocol

        factory = serverFactory(protocolClass=WebSocketServerProtocol)
        protocol, _ = connectServer(factory)
        protocol.dataReceived(upgradeRequest())
        self.assertEqual(protocol.state, State.OPEN)
        self.assertEqual(vars(protocol), {})


class FactoryTests(SynchronousTestCase):
    """
    The factory's Autobahn-compatible construction and options.
    """

    def test_noTimerOutlivesConnections(self) -> None:
        """
        While connections come and go the factory's timers stay armed;
        once the last one has ended, none is left on the reactor.
        """
        clock = Clock()
        factory = serverFactory(clock, autoPingInterval=20)
        first, _ = connectServer(factory)
        first.dataReceived(upgradeRequest())
        second, _ = connectServer(factory, peerPort=50001)
        second.dataReceived(upgradeRequest())
        second.connectionLost(Failure(ConnectionDone()))
        self.assertNotEqual(clock.getDelayedCalls(), [])
        first.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_url(self) -> None:
        """
        The URL gives C{isSecure} and C{port}; C{externalPort} overrides.
        """
        factory = WebSocketServerFactory("wss://example.com:9443", reactor=Clock())
        self.assertEqual((factory.isSecure, factory.port), (True, 9443))
        factory = WebSocketServerFactory("ws://example.com", externalPort=8080, reactor=Clock())
        self.assertEqual((factory.isSecure, factory.port), (False, 8080))

    def test_unknownOption(self) -> None:
        """
        An option txws does not know is a TypeError naming it.
        """
        factory = WebSocketServerFactory(reactor=Clock())
        error = self.assertRaises(TypeError, factory.setProtocolOptions, flashSocketPolicy="x")
        self.assertIn("flashSocketPolicy", str(error))
        error = self.assertRaises(TypeError, factory.setProtocolOptions, madeUp=1)
        self.assertIn("madeUp", str(error))

    def test_knownOptions(self) -> None:
        """
        Options shared with Autobahn are accepted and take effect.
        """
        factory = WebSocketServerFactory(reactor=Clock())
        factory.setProtocolOptions(
            maxFramePayloadSize=10,
            maxMessagePayloadSize=20,
            autoPingInterval=5,
            autoPingTimeout=2,
            openHandshakeTimeout=3,
            closeHandshakeTimeout=4,
            allowedOrigins=["https://a.example"],
        )
        options = factory.options
        self.assertEqual(
            (options.maxFramePayloadSize, options.maxMessagePayloadSize, options.autoPingTimeout),
            (10, 20, 2),
        )
        self.assertEqual(options.allowedOrigins, ("https://a.example",))

    def test_serverHeader(self) -> None:
        """
        The 101 carries the factory's C{Server} and extra headers.
        """
        factory = WebSocketServerFactory(
            server="demo/1", headers={"X-Extra": "1"}, reactor=Clock()
        )
        factory.protocol = RecordingServer
        protocol, transport = connectServer(factory)
        protocol.dataReceived(upgradeRequest())
        headers = headersOf(transport.value())
        self.assertEqual((headers[b"server"], headers[b"x-extra"]), (b"demo/1", b"1"))


class ResourceTests(SynchronousTestCase):
    """
    L{WebSocketResource} beside ordinary resources in one C{Site}.
    """

    def site(self, clock: Clock) -> Site:
        root = Resource()
        root.putChild(b"hello", Data(b"hi", "text/plain"))
        root.putChild(b"ws", WebSocketResource(serverFactory(clock)))
        return Site(root, reactor=clock)

    def connect(self, site: Site) -> tuple[Any, StringTransport]:
        channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        assert channel is not None
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
        channel.makeConnection(transport)
        return channel, transport

    def test_ordinaryResource(self) -> None:
        """
        Ordinary resources on the same site still work.
        """
        channel, transport = self.connect(self.site(Clock()))
        channel.dataReceived(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statusOf(transport.value()), 200)
        self.assertTrue(transport.value().endswith(b"hi"))

    def test_upgradeAndEcho(self) -> None:
        """
        An upgrade request at the resource's path gets 101, and the
        connection then speaks WebSocket.
        """
        clock = Clock()
        channel, transport = self.connect(self.site(clock))
        channel.dataReceived(upgradeRequest("/ws/room?x=1"))
        response = transport.value()
        self.assertEqual(statusOf(response), 101)
        self.assertEqual(
            headersOf(response)[b"sec-websocket-accept"], b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        )
        transport.clear()
        channel.dataReceived(clientFrame(0x9, b"ping"))
        self.assertEqual(framesIn(transport.value()), [(True, 0xA, b"ping")])

    def test_siteTimeoutDoesNotApply(self) -> None:
        """
        The site's idle timeout no longer applies once upgraded.
        """
        clock = Clock()
        site = self.site(clock)
        channel, transport = self.connect(site)
        channel.dataReceived(upgradeRequest("/ws"))
        transport.clear()
        assert site.timeOut is not None
        clock.advance(site.timeOut * 2)
        self.assertFalse(transport.disconnecting)
        channel.dataReceived(clientFrame(0x9, b"still here"))
        self.assertEqual(framesIn(transport.value()), [(True, 0xA, b"still here")])

    def test_plainGet(self) -> None:
        """
        A plain GET at the resource gets 426 with C{Upgrade: websocket}.
        """
        channel, transport = self.connect(self.site(Clock()))
        channel.dataReceived(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(statusOf(transport.value()), 426)
        self.assertIn(b"upgrade: websocket", transport.value().lower())

    def test_invalidUpgradeRefused(self) -> None:
        """
        An upgrade request that fails validation is refused by the same
        code as on a plain listener.
        """
        channel, transport = self.connect(self.site(Clock()))
        channel.dataReceived(upgradeRequest("/ws", version="8"))
        self.assertEqual(statusOf(transport.value()), 426)
        self.assertEqual(headersOf(transport.value())[b"sec-websocket-version"], b"13")
