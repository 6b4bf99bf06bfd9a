"""
An echo server and client written in the style of Autobahn|Python's classic
Twisted examples (C{tests/peers/autobahn_echo_server.py} and
C{tests/peers/autobahn_echo_client.py}), whose only txws-specific lines are
their imports, run as scripts in subprocesses, against each other and
against real Autobahn peers; and the same files with their imports switched
to Autobahn, to show that the import line is all that differs.  Also
Autobahn's C{setProtocolOptions} on txws factories.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet.task import Clock

from tests.autobahn_programs import TO_AUTOBAHN, startScript, switchImports
from tests.peers import autobahn_echo_server
from tests.peers.autobahn_peers import (
    AutobahnEchoServerFactory,
    AutobahnRecorder,
    AutobahnRecorderFactory,
)
from tests.peers.harness import (
    PeerProcess,
    RecordingClientProtocol,
    bounded,
    dropConnections,
    failureOf,
    listenedPort,
    reactor,
    startPeer,
)
from tests.typedtrial import SynchronousTestCase, TestCase
from txws import WebSocketClientFactory, WebSocketServerFactory
from txws.client import connect
from txws.handshake import ResponseError

#: What the example client prints for the echoes of its two messages.
CLIENT_ECHOES = (
    r"Text message received: Hello, world!$",
    r"Binary message received: 4 bytes$",
)

#: What the example server prints for the client's two messages.
SERVER_RECEIVES = CLIENT_ECHOES


class PortedExamplesTests(TestCase):
    """
    The ported Autobahn examples keep working with txws: the opening
    handshake, text and binary data frames and closing (RFC 6455 sections
    4, 5.6 and 7) through the application API txws mirrors from Autobahn.
    """

    async def startPortedServer(self) -> tuple[PeerProcess, int]:
        """
        Run the ported server script on an ephemeral port.

        @return: the process and the port, read from the line Twisted logs
            when the factory starts listening.
        """
        server = startPeer(self, "autobahn_echo_server", "0", stdinStops=False)
        match = await server.waitForLine(r"WebSocketServerFactory starting on (\d+)")
        return server, int(match.group(1))

    def startPortedClient(self, port: int) -> PeerProcess:
        """
        Run the ported client script against C{127.0.0.1:port}.
        """
        return startPeer(self, "autobahn_echo_client", str(port), stdinStops=False)

    async def test_portedServerWithPortedClient(self) -> None:
        """
        The ported client's text and binary messages reach the ported server,
        which echoes them back to the client.
        """
        server, port = await self.startPortedServer()
        client = self.startPortedClient(port)
        for pattern in CLIENT_ECHOES:
            await client.waitForLine(pattern)
        for pattern in SERVER_RECEIVES:
            await server.waitForLine(pattern)
        await server.waitForLine(r"Client connecting: tcp4:127\.0\.0\.1:\d+$")
        await client.waitForLine(rf"Server connected: tcp4:127\.0\.0\.1:{port}$")

    async def test_portedServerWithAutobahnClient(self) -> None:
        """
        The real Autobahn client gets its messages echoed by the ported
        server, and closes cleanly.
        """
        server, port = await self.startPortedServer()
        factory = AutobahnRecorderFactory(f"ws://127.0.0.1:{port}")
        connector: Any = reactor.connectTCP("127.0.0.1", port, factory)
        self.addCleanup(connector.disconnect)
        protocol: AutobahnRecorder = await bounded(factory.opened)
        protocol.sendMessage(b"Hello, world!")  # type: ignore[no-untyped-call]
        protocol.sendMessage(b"\x00\x01\x03\x04", isBinary=True)  # type: ignore[no-untyped-call]
        self.assertEqual(await bounded(factory.messages.get()), (b"Hello, world!", False))
        self.assertEqual(await bounded(factory.messages.get()), (b"\x00\x01\x03\x04", True))
        protocol.sendClose(1000, "done")
        closed = await bounded(factory.closed)
        self.assertEqual((closed.wasClean, closed.code), (True, 1000))
        await server.waitForLine(r"WebSocket connection closed: done$")

    async def test_portedClientWithAutobahnServer(self) -> None:
        """
        The ported client talks to a real Autobahn echo server, which
        receives both its messages, and gets the echoes.
        """
        factory = AutobahnEchoServerFactory()
        self.addCleanup(self.dropAutobahnServerConnections, factory)
        listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        client = self.startPortedClient(listenedPort(listening))
        self.assertEqual(await bounded(factory.messages.get()), (b"Hello, world!", False))
        self.assertEqual(await bounded(factory.messages.get()), (b"\x00\x01\x03\x04", True))
        for pattern in CLIENT_ECHOES:
            await client.waitForLine(pattern)

    def autobahnVariant(self, script: str) -> str:
        """
        Write a copy of an example whose txws import line is switched to
        Autobahn's (L{switchImports}, which changes import lines only).

        @param script: the example's module name under C{tests.peers}.
        @return: the copy's path.
        """
        source = (Path(__file__).parent / "peers" / f"{script}.py").read_text()
        variant = switchImports(source, TO_AUTOBAHN)
        changed = [a for a, b in zip(source.splitlines(), variant.splitlines(), strict=True)
                   if a != b]  # fmt: skip
        self.assertEqual(len(changed), 1)
        directory = Path(self.mktemp()).resolve()
        directory.mkdir()
        path = directory / f"{script}.py"
        path.write_text(variant)
        return str(path)

    async def test_sameClientFileRunsOnAutobahn(self) -> None:
        """
        The example client with Autobahn's import line instead of ours (the
        only difference) behaves the same against the txws example server:
        the application code is the same for both libraries.
        """
        server, port = await self.startPortedServer()
        client = startScript(self, self.autobahnVariant("autobahn_echo_client"), str(port))
        for pattern in CLIENT_ECHOES:
            await client.waitForLine(pattern)
        for pattern in SERVER_RECEIVES:
            await server.waitForLine(pattern)

    async def test_sameServerFileRunsOnAutobahn(self) -> None:
        """
        The example server with Autobahn's import line echoes for the txws
        example client just as the txws one does.
        """
        server = startScript(self, self.autobahnVariant("autobahn_echo_server"), "0")
        match = await server.waitForLine(r"WebSocketServerFactory starting on (\d+)")
        client = self.startPortedClient(int(match.group(1)))
        for pattern in CLIENT_ECHOES:
            await client.waitForLine(pattern)

    async def dropAutobahnServerConnections(self, factory: AutobahnEchoServerFactory) -> None:
        """
        Stop the example client first (which the peer cleanup does), then
        wait for the Autobahn server to see its connection end.
        """
        await bounded(factory.closed.get())

    async def test_maxConnectionsOption(self) -> None:
        """
        The example's C{setProtocolOptions(maxConnections=2)} works on the
        ported server: a third simultaneous connection is refused with 503.
        """
        # Silence the example's prints (module globals shadow builtins).
        setattr(autobahn_echo_server, "print", lambda *args: None)  # noqa: B010
        self.addCleanup(delattr, autobahn_echo_server, "print")
        factory = WebSocketServerFactory("ws://127.0.0.1:9000", reactor=reactor)
        factory.protocol = autobahn_echo_server.MyServerProtocol
        factory.setProtocolOptions(maxConnections=2)
        self.addCleanup(dropConnections, factory)
        listening = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        url = f"ws://127.0.0.1:{listenedPort(listening)}"
        clients = []
        for _ in range(2):
            protocol = await bounded(
                connect(url, protocolClass=RecordingClientProtocol, reactor=reactor)
            )
            self.addCleanup(dropConnections, protocol.factory)
            clients.append(protocol)
        error = await failureOf(connect(url, reactor=reactor), ResponseError)
        self.assertEqual(error.status, 503)
        first = clients[0]
        assert isinstance(first, RecordingClientProtocol)
        first.sendMessage(b"still served", True)
        self.assertEqual(await first.nextMessage(), (b"still served", True))


class ProtocolOptionsTests(SynchronousTestCase):
    """
    Autobahn's C{setProtocolOptions} on txws factories: the limits of RFC
    6455 section 10.4 that txws knows apply, other options are refused by
    name (so a ported application learns at once what does not carry over).
    """

    def test_knownOptionsApply(self) -> None:
        """
        Autobahn option names that txws implements change the factory's
        options for new connections.
        """
        for factory in (
            WebSocketServerFactory("ws://127.0.0.1:9000", reactor=Clock()),
            WebSocketClientFactory("ws://127.0.0.1:9000", reactor=Clock()),
        ):
            factory.setProtocolOptions(
                maxConnections=2,
                maxFramePayloadSize=4096,
                maxMessagePayloadSize=8192,
                autoFragmentSize=1024,
                openHandshakeTimeout=2.5,
                closeHandshakeTimeout=1.5,
                autoPingInterval=5,
                autoPingTimeout=2,
                autoPingSize=8,
                allowedOrigins=["https://*.example.com"],
                tcpNoDelay=False,
            )
            options = factory.options
            self.assertEqual(
                (
                    options.maxConnections,
                    options.maxFramePayloadSize,
                    options.maxMessagePayloadSize,
                    options.autoFragmentSize,
                    options.openHandshakeTimeout,
                    options.closeHandshakeTimeout,
                    options.autoPingInterval,
                    options.autoPingTimeout,
                    options.autoPingSize,
                    options.allowedOrigins,
                    options.tcpNoDelay,
                ),
                (2, 4096, 8192, 1024, 2.5, 1.5, 5, 2, 8, ("https://*.example.com",), False),
            )

    def test_autobahnOnlyOptionRefused(self) -> None:
        """
        An option Autobahn has and txws does not raises C{TypeError} naming
        it as an Autobahn option, and changes nothing.
        """
        factory = WebSocketServerFactory("ws://127.0.0.1:9000", reactor=Clock())
        before = factory.options
        error = self.assertRaises(
            TypeError, factory.setProtocolOptions, maxConnections=2, flashSocketPolicy="x"
        )
        self.assertIn("flashSocketPolicy", str(error))
        self.assertIn("Autobahn", str(error))
        self.assertIs(factory.options, before)

    def test_unknownOptionRefused(self) -> None:
        """
        A made-up option name raises C{TypeError} naming it.
        """
        factory = WebSocketClientFactory("ws://127.0.0.1:9000", reactor=Clock())
        error = self.assertRaises(TypeError, factory.setProtocolOptions, maxFrameSize=10)
        self.assertIn("maxFrameSize", str(error))

    def test_invalidValueRefused(self) -> None:
        """
        A known option with an invalid value raises C{ValueError}.
        """
        factory = WebSocketServerFactory("ws://127.0.0.1:9000", reactor=Clock())
        self.assertRaises(ValueError, factory.setProtocolOptions, maxConnections=-1)
