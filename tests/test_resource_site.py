"""
Integration tests of L{txws.server.WebSocketResource} inside a
C{twisted.web} L{Site}: ordinary resources and a WebSocket endpoint on one
port, in plain TCP and behind TLS, reached by real HTTP and WebSocket
clients over loopback.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ClientCreator, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool, readBody
from twisted.web.iweb import IResponse
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data

from tests.peers.harness import (
    RecordingClientProtocol,
    bounded,
    dropConnections,
    listenedPort,
    reactor,
    runPeer,
)
from tests.peers.payloads import ECHO_REPORT, ECHO_SIZES
from tests.tlssupport import TestAuthority
from tests.typedtrial import TestCase
from txws.apps.echo import echoFactory
from txws.client import connect
from txws.options import WebSocketOptions
from txws.server import WebSocketResource, WebSocketServerProtocol

#: Seconds within which a closing handshake over loopback must complete.
CLOSE_WITHIN = 3.0


class _Collect(Protocol):
    """
    Send a raw request and collect the raw answer until the server closes.
    """

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.done: Deferred[bytes] = Deferred()

    def request(self, data: bytes) -> Deferred[bytes]:
        """
        Send C{data}; return a Deferred firing with everything received.
        """
        assert self.transport is not None
        self.transport.write(data)
        return self.done

    def dataReceived(self, data: bytes) -> None:
        """
        Keep the bytes.
        """
        self.received.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Deliver the answer.
        """
        self.done.callback(b"".join(self.received))


class WebSocketResourceSiteTests(TestCase):
    """
    A WebSocket endpoint beside ordinary resources in one C{twisted.web}
    site (RFC 6455 section 4.2: the server's opening handshake on an HTTP
    server; section 4.2.2: C{426 Upgrade Required} for other requests).
    """

    def setUp(self) -> None:
        self.authority: TestAuthority | None = None
        self.factory = echoFactory(
            reactor=reactor, options=WebSocketOptions(closeHandshakeTimeout=60)
        )
        self.addCleanup(dropConnections, self.factory)

    def serve(self, tls: bool = False, **siteArguments: Any) -> str:
        """
        Serve a site with C{/hello} (static C{b"hi"}) and C{/ws} (the echo
        WebSocket endpoint) on one port.

        @param tls: serve over TLS with a certificate from a test CA.
        @param siteArguments: more L{Site} arguments.
        @return: the site's address, e.g. C{127.0.0.1:4321}.
        """
        root = Resource()
        root.putChild(b"hello", Data(b"hi", "text/plain"))
        root.putChild(b"ws", WebSocketResource(self.factory))
        site = Site(root, **siteArguments)
        if tls:
            self.authority = TestAuthority()
            options = self.authority.serverOptions()
            port = reactor.listenSSL(0, site, options, interface="127.0.0.1")
        else:
            port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"127.0.0.1:{listenedPort(port)}"

    def get(self, url: str) -> Deferred[IResponse]:
        """
        GET C{url} with a fresh, non-persistent L{Agent} (trusting the test
        CA for C{https}).
        """
        pool = HTTPConnectionPool(reactor, persistent=False)
        if self.authority is not None:
            policy = BrowserLikePolicyForHTTPS(trustRoot=self.authority.certificate)
            agent = Agent(reactor, contextFactory=policy, pool=pool)
        else:
            agent = Agent(reactor, pool=pool)
        response: Deferred[IResponse] = agent.request(b"GET", url.encode("ascii"))
        return bounded(response)

    async def rawHead(self, address: str, path: str) -> list[bytes]:
        """
        GET C{path} with a raw HTTP/1.0 request (the server closes after the
        answer).

        @return: the answer's status line and header lines, lower-cased.
        """
        host, port = address.split(":")
        request = f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode("ascii")
        connected: Deferred[_Collect] = ClientCreator(reactor, _Collect).connectTCP(host, int(port))
        collector = await bounded(connected)
        raw = await bounded(collector.request(request))
        return raw.split(b"\r\n\r\n", 1)[0].lower().split(b"\r\n")

    async def test_staticChild(self) -> None:
        """
        An ordinary resource on the same site answers a plain GET.
        """
        address = self.serve()
        response = await self.get(f"http://{address}/hello")
        self.assertEqual(response.code, 200)
        self.assertEqual(await bounded(readBody(response)), b"hi")

    async def test_websocketsClientEcho(self) -> None:
        """
        The C{websockets} client upgrades C{/ws} and echoes messages of every
        size, then closes cleanly.
        """
        address = self.serve()
        report = await runPeer(
            self,
            "websockets_client",
            {"url": f"ws://{address}/ws", "scenario": "echo", "sizes": ECHO_SIZES},
        )
        self.assertEqual(report.get("results"), ECHO_REPORT, report)
        self.assertEqual(report["rcvd"], [1000, ""])

    async def test_ourClientBelowEndpoint(self) -> None:
        """
        Our client reaches the endpoint through a path below C{/ws}, and a
        plain GET for the static child still works afterwards.
        """
        address = self.serve()
        protocol = await bounded(
            connect(
                f"ws://{address}/ws/room?x=1",
                protocolClass=RecordingClientProtocol,
                reactor=reactor,
            )
        )
        assert isinstance(protocol, RecordingClientProtocol)
        protocol.sendMessage(b"\x00\xff", True)
        self.assertEqual(await protocol.nextMessage(), (b"\x00\xff", True))
        [server] = self.factory.connections()
        assert isinstance(server, WebSocketServerProtocol) and server.request is not None
        self.assertEqual(server.request.path, "/ws/room")
        self.assertEqual(server.request.params, {"x": ["1"]})
        protocol.sendClose(1000)
        closed = await protocol.closedWithin(CLOSE_WITHIN)
        self.assertTrue(closed.wasClean)
        response = await self.get(f"http://{address}/hello")
        self.assertEqual(await bounded(readBody(response)), b"hi")

    async def test_plainGetUpgradeRequired(self) -> None:
        """
        A plain GET of the WebSocket endpoint gets C{426 Upgrade Required}
        with C{Upgrade: websocket}.
        """
        address = self.serve()
        response = await self.get(f"http://{address}/ws")
        self.assertEqual(response.code, 426)
        self.assertIn(b"WebSocket", await bounded(readBody(response)))
        # Agent hides connection-control headers such as Upgrade.
        head = await self.rawHead(address, "/ws")
        self.assertEqual(head[0].split(b" ")[1], b"426")
        self.assertIn(b"upgrade: websocket", head)
        self.assertEqual(self.factory.connectionCount, 0)

    async def test_upgradeRequiredReasonPhrase(self) -> None:
        """
        The 426 answer's status line carries the reason phrase C{Upgrade
        Required} (RFC 7231 section 6.5.15), as the handshake module's own
        refusals do, not C{Unknown Status}.
        """
        address = self.serve()
        head = await self.rawHead(address, "/ws")
        self.assertEqual(head[0], b"http/1.0 426 upgrade required")

    async def test_overTLS(self) -> None:
        """
        Behind TLS the same site serves C{https} GETs and C{wss} WebSocket
        connections (the C{websockets} client trusting the test CA), and the
        closing handshake completes promptly.
        """
        address = self.serve(tls=True)
        assert self.authority is not None
        response = await self.get(f"https://{address}/hello")
        self.assertEqual(await bounded(readBody(response)), b"hi")
        report = await runPeer(
            self,
            "websockets_client",
            {
                "url": f"wss://{address}/ws",
                "scenario": "echo",
                "sizes": ECHO_SIZES,
                "cafile": self.authority.writeCAFile(self),
                "closeWithin": CLOSE_WITHIN,
            },
        )
        self.assertEqual(report.get("results"), ECHO_REPORT, report)
        self.assertIsNot(report["closeSeconds"], None, "the close did not complete in time")
        response = await self.get(f"https://{address}/ws")
        self.assertEqual(response.code, 426)
        await bounded(readBody(response))

    async def test_siteTimeoutSparesWebSocket(self) -> None:
        """
        The site's idle timeout (1 s) does not cut a WebSocket connection
        that stays idle for 2 s.
        """
        address = self.serve(timeout=1)
        report = await runPeer(
            self,
            "websockets_client",
            {"url": f"ws://{address}/ws", "scenario": "idle", "seconds": 2},
        )
        self.assertEqual(report.get("second"), "after idle", report)
        self.assertEqual(report["rcvd"], [1000, ""])
