"""
Side by side with Autobahn|Python: programs written here against Autobahn's
Twisted API (C{tests/autobahn_programs/}) are run as written, on Autobahn,
and with only their imports switched to txws, over real sockets on
127.0.0.1, and what each side observes (messages, close codes, headers,
HTTP statuses) is compared.  Where txws differs on purpose the test states
the difference; C{docs/autobahn.md} lists them all.
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.web.client import Agent, readBody

from tests.autobahn_programs import (
    LIBRARIES,
    TO_TXWS,
    listeningPort,
    startProgram,
    stopped,
    switchImports,
    transcript,
)
from tests.peers.harness import RecordingClientProtocol, bounded, failureOf, reactor
from tests.support import freePort
from tests.typedtrial import SynchronousTestCase, TestCase
from txws.client import connect
from txws.handshake import ResponseError


def _asTxwsReports(lines: list[str]) -> list[str]:
    """
    Write Autobahn's C{onClose} reason C{None} (no reason in the peer's
    Close frame) as txws reports it, an empty string: the one documented
    difference in what these programs print.
    """
    return [line.replace("reason=None", "reason=") for line in lines]


async def _runPair(
    testCase: TestCase, server: str, client: str, serverLibrary: str, clientLibrary: str
) -> tuple[list[str], list[str]]:
    """
    Run a server program and a client program against it.

    @return: what the server printed (once stopped) and what the client
        printed (once it exited by itself).
    """
    serving = startProgram(testCase, server, serverLibrary)
    port = await listeningPort(serving)
    extra = [str(freePort())] if client == "agent_client" else []
    clientLines = await transcript(startProgram(testCase, client, clientLibrary, str(port), *extra))
    serverLines = await stopped(serving)
    return _asTxwsReports(serverLines), _asTxwsReports(clientLines)


class PreparedBroadcastTests(TestCase):
    """
    C{factory.prepareMessage} and C{sendPreparedMessage}: one message framed
    once, sent to every client (RFC 6455 section 5.6 data frames, text and
    binary), then closes with a code and a reason (section 7).
    """

    async def test_sameTranscripts(self) -> None:
        """
        The broadcast server and its three clients see exactly the same
        messages and closes on Autobahn and on txws, and a txws server
        serves the Autobahn clients the same way.
        """
        runs = {
            library: await _runPair(
                self, "broadcast_server", "broadcast_client", library, library
            )
            for library in LIBRARIES
        }
        (autobahnServer, autobahnClients), (txwsServer, txwsClients) = (
            runs["autobahn"],
            runs["txws"],
        )
        self.assertEqual(txwsClients, autobahnClients)
        self.assertEqual(sorted(txwsServer), sorted(autobahnServer))
        self.assertEqual(
            [line for line in txwsClients if line.startswith("cyd ")],
            [
                "cyd text: joined cyd",
                "cyd binary: 3 clients",
                "cyd closed clean=True code=1000 reason=see you",
            ],
        )
        self.assertIn("ann binary: 3 clients", txwsClients)
        # The server sees the clients' answering Close, which has no reason.
        self.assertEqual(txwsServer.count("closed clean=True code=1000 reason="), 3)
        _, mixed = await _runPair(self, "broadcast_server", "broadcast_client", "txws", "autobahn")
        self.assertEqual(mixed, autobahnClients)


class WrappingTests(TestCase):
    """
    Autobahn's C{WrappingWebSocketServerFactory} and
    C{WrappingWebSocketClientFactory}: a line-based stream protocol carried
    over WebSocket messages under the C{binary} or C{base64} subprotocol.
    """

    async def test_sameTranscripts(self) -> None:
        """
        The wrapped line server and client exchange the same lines and both
        see the stream end, on Autobahn and on txws, and across the two.
        """
        runs = {
            library: await _runPair(self, "wrapping_server", "wrapping_client", library, library)
            for library in LIBRARIES
        }
        self.assertEqual(runs["txws"], runs["autobahn"])
        server, client = runs["txws"]
        self.assertEqual(
            client,
            [
                "connectionMade",
                "got b'WELCOME'",
                "got b'HELLO'",
                "got b'WRAPPED WORLD'",
                "got b'ERROR unknown command'",
                "got b'XXXXXXXXXX... 3000 bytes'",
                "got b'BYE'",
                "connectionLost",
            ],
        )
        self.assertEqual(server[0], "wrapped connectionMade")
        self.assertEqual(server[-1], "wrapped connectionLost")
        for serverLibrary, clientLibrary in (("txws", "autobahn"), ("autobahn", "txws")):
            _, mixed = await _runPair(
                self, "wrapping_server", "wrapping_client", serverLibrary, clientLibrary
            )
            self.assertEqual(mixed, client)

    async def observe(self, library: str) -> dict[str, Any]:
        """
        Talk to the wrapping server with a plain txws client, the way a
        browser would: no subprotocol, then C{base64}, then C{binary}.

        @return: what was observed.
        """
        server = startProgram(self, "wrapping_server", library)
        url = f"ws://127.0.0.1:{await listeningPort(server)}/"
        seen: dict[str, Any] = {}
        refused = await failureOf(connect(url, reactor=reactor), ResponseError)
        seen["no subprotocol"] = refused.status
        text = await bounded(
            connect(url, protocolClass=RecordingClientProtocol, protocols=["base64"],
                    reactor=reactor)
        )  # fmt: skip
        assert isinstance(text, RecordingClientProtocol)
        seen["base64 protocol"] = text.websocket_protocol_in_use
        seen["base64 welcome"] = await text.nextMessage()
        text.sendMessage(base64.b64encode(b"ECHO quiet\n"))
        seen["base64 answer"] = await text.nextMessage()
        text.sendMessage(b"ECHO raw\n", isBinary=True)
        closed = await text.whenClosed()
        seen["binary under base64"] = (closed.wasClean, closed.code)
        binary = await bounded(
            connect(url, protocolClass=RecordingClientProtocol, protocols=["x", "binary"],
                    reactor=reactor)
        )  # fmt: skip
        assert isinstance(binary, RecordingClientProtocol)
        seen["binary protocol"] = binary.websocket_protocol_in_use
        seen["binary welcome"] = await binary.nextMessage()
        binary.sendMessage(b"QUIT\n", isBinary=True)
        seen["quit answer"] = await binary.nextMessage()
        closed = await binary.whenClosed()
        seen["quit close"] = (closed.wasClean, closed.code)
        return seen

    async def test_sameWireBehaviour(self) -> None:
        """
        Both servers refuse a client offering neither subprotocol with 406,
        speak base64 text under C{base64} and binary under C{binary}, close
        with 1003 on a binary message under C{base64}, and close without a
        code (1005) when the wrapped protocol loses its connection.
        """
        autobahn = await self.observe("autobahn")
        txws = await self.observe("txws")
        self.assertEqual(txws, autobahn)
        self.assertEqual(
            txws,
            {
                "no subprotocol": 406,
                "base64 protocol": "base64",
                "base64 welcome": (base64.b64encode(b"WELCOME\n"), False),
                "base64 answer": (base64.b64encode(b"QUIET\n"), False),
                "binary under base64": (True, 1003),
                "binary protocol": "binary",
                "binary welcome": (b"WELCOME\n", True),
                "quit answer": (b"BYE\n", True),
                "quit close": (True, 1005),
            },
        )


class FrameStreamingTests(TestCase):
    """
    Autobahn's frame-streaming API: C{beginMessageFrame} and
    C{sendMessageFrameData} (a frame's length announced before its payload,
    RFC 6455 section 5.2), C{sendMessageFrame}, and the receiving callbacks
    C{onMessageBegin} to C{onMessageEnd}, through which a server hashes a
    2 MiB message without keeping it.
    """

    async def test_sameTranscripts(self) -> None:
        """
        The streaming client and server print the same frames, return
        values, digests and close on Autobahn and on txws, and across the
        two.
        """
        runs = {
            library: await _runPair(
                self, "streaming_server", "streaming_client", library, library
            )
            for library in LIBRARIES
        }
        self.assertEqual(runs["txws"], runs["autobahn"])
        server, client = runs["txws"]
        self.assertEqual(client[:2], ["piece at 0: 252144", "piece at 260000: -7856"])
        binary = client[2].split()[-1]
        self.assertIn(f"answer binary 2097152 bytes in 9 frames {binary}", client)
        self.assertEqual(client[-1], "closed clean=True code=1000 reason=done")
        self.assertEqual(
            server.count("frame 1 of a binary message announces 262144 bytes"), 1
        )
        self.assertIn("frame 9 of a binary message announces 0 bytes", server)
        self.assertIn(f"binary 2097152 bytes in 9 frames {binary}", server)
        for serverLibrary, clientLibrary in (("txws", "autobahn"), ("autobahn", "txws")):
            mixed = await _runPair(
                self, "streaming_server", "streaming_client", serverLibrary, clientLibrary
            )
            self.assertEqual(mixed, runs["txws"], (serverLibrary, clientLibrary))


class ClientAgentTests(TestCase):
    """
    Autobahn's C{create_client_agent}: C{open} fires with the open protocol;
    C{is_open}, C{is_closed} and C{on("message", ...)} behave as Autobahn's.
    """

    async def test_sameTranscripts(self) -> None:
        """
        The agent program sees the same events on both libraries, and the
        echo server the same request (headers, query, subprotocol).
        """
        runs = {
            library: await _runPair(self, "echo_server", "agent_client", library, library)
            for library in LIBRARIES
        }
        self.assertEqual(runs["txws"], runs["autobahn"])
        server, client = runs["txws"]
        self.assertEqual(
            client,
            [
                "onOpen protocol=chat",
                "opened Client",
                "is_open fired",
                "on_message b'i am a message' is_binary=False",
                "is_closed fired with the protocol: True",
                "onClose clean=True code=1000 reason=",
                "refused: ConnectionRefusedError",
                "bad url: 'transport_config' must start with 'ws://' or 'wss://'",
                "bad option: 'options' may not contain 'nonsense'",
            ],
        )
        self.assertTrue(server[0].startswith("connect path=/ws params=[('a', ['1'])] x-foo=bar"))
        self.assertIn("user-agent=the library's", server[0])
        self.assertTrue(server[0].endswith("protocols=['chat']"))


class OnConnectingTests(TestCase):
    maxDiff = None
    """
    Autobahn's client callback C{onConnecting(transport_details)}: called
    before the opening handshake (RFC 6455 section 4.1) is sent, and able
    to change it with a C{ConnectingRequest} or a Deferred.
    """

    async def test_sameTranscripts(self) -> None:
        """
        On both libraries C{onConnecting} is called once per connection
        with the same details, a C{ConnectingRequest} changes the request
        the server sees, and a Deferred of C{None} sends the factory's.
        """
        runs = {
            library: await _runPair(self, "echo_server", "connecting_client", library, library)
            for library in LIBRARIES
        }
        self.assertEqual(runs["txws"], runs["autobahn"])
        server, client = runs["txws"]
        self.assertEqual(client.count("onConnecting is_server=False is_secure=False "
                                      "channel_type=4 peer=tcp4:127.0.0.1:PORT"), 2)  # fmt: skip
        self.assertEqual(client[1:3], ["onConnect protocol=chat", "echo b'after onConnecting'"])
        self.assertIn("onConnect protocol=None", client)
        self.assertEqual(
            [line for line in server if line.startswith("connect ")],
            [
                "connect path=/changed params=[('by', ['onConnecting'])] x-foo=None "
                "x-connecting=yes user-agent=parity-agent protocols=['chat']",
                "connect path=/plain params=[] x-foo=None x-connecting=None "
                "user-agent=factory-agent protocols=[]",
            ],
        )


class SiteTests(TestCase):
    maxDiff = None
    """
    C{autobahn.twisted.resource.WebSocketResource} in a C{twisted.web} site
    beside an ordinary resource, on one port.
    """

    async def observe(self, library: str) -> tuple[dict[str, Any], list[str]]:
        """
        Fetch the static resource, echo over the WebSocket resource, and
        send a plain GET to it.

        @return: what was observed, and what the server printed.
        """
        server = startProgram(self, "site_server", library)
        port = await listeningPort(server)
        seen: dict[str, Any] = {}
        agent = Agent(reactor)
        response = await bounded(agent.request(b"GET", f"http://127.0.0.1:{port}/static".encode()))
        seen["static"] = (response.code, await bounded(readBody(response)))
        client = await bounded(
            connect(f"ws://127.0.0.1:{port}/ws/below?x=1",
                    protocolClass=RecordingClientProtocol, reactor=reactor)
        )  # fmt: skip
        assert isinstance(client, RecordingClientProtocol)
        client.sendMessage("héllo".encode())
        seen["echo"] = await client.nextMessage()
        client.sendClose(1000, "done")
        closed = await client.whenClosed()
        seen["close"] = (closed.wasClean, closed.code, closed.reason)
        await server.waitForLine(r"^closed ")
        # (Autobahn's status page goes through a WebSocket protocol of its
        # own, whose onClose prints too: only the lines before it count.)
        printed = [line for line in server.lines if not line.startswith("listening on ")]
        plain = await bounded(agent.request(b"GET", f"http://127.0.0.1:{port}/ws".encode()))
        await bounded(readBody(plain))
        seen["plain GET"] = plain.code
        await stopped(server)
        return seen, printed

    async def test_sameBehaviour(self) -> None:
        """
        Both sites serve the static resource and the WebSocket side by side
        with the same request path and echo; a plain GET to the WebSocket
        resource gets Autobahn's status page (200) from Autobahn and 426
        Upgrade Required from txws (the documented difference).
        """
        autobahn, autobahnServer = await self.observe("autobahn")
        txws, txwsServer = await self.observe("txws")
        self.assertEqual(autobahn.pop("plain GET"), 200)
        self.assertEqual(txws.pop("plain GET"), 426)
        self.assertEqual(txws, autobahn)
        self.assertEqual(
            txws,
            {
                "static": (200, b"static content\n"),
                "echo": ("héllo".encode(), False),
                # The server's answering Close carries the code, no reason.
                "close": (True, 1000, ""),
            },
        )
        self.assertEqual(txwsServer, autobahnServer)
        self.assertEqual(txwsServer[0], "connect path=/ws/below params=[('x', ['1'])]")


class SwitchImportsTests(SynchronousTestCase):
    """
    The rewriting the parity tests rely on changes import lines only.
    """

    def test_onlyImportLinesChange(self) -> None:
        """
        Each mapped C{from ... import} line is rewritten and nothing else.
        """
        source = (
            "from autobahn.twisted.websocket import (\n    connectWS,\n)\n"
            "from autobahn.twisted.resource import WebSocketResource\n"
            "x = 'autobahn.twisted.websocket'\n"
        )
        self.assertEqual(
            switchImports(source, TO_TXWS),
            "from txws import (\n    connectWS,\n)\n"
            "from txws.resource import WebSocketResource\n"
            "x = 'autobahn.twisted.websocket'\n",
        )

    def test_unmappedModuleRefused(self) -> None:
        """
        A program that imports an Autobahn module without a txws
        counterpart cannot be switched.
        """
        source = (
            "from autobahn.twisted.websocket import connectWS\n"
            "from autobahn.wamp.types import SessionDetails\n"
        )
        error = self.assertRaises(ValueError, switchImports, source, TO_TXWS)
        self.assertIn("autobahn.wamp.types", str(error))

    def test_nothingToSwitch(self) -> None:
        """
        A program without an Autobahn import is refused (it would compare
        nothing).
        """
        self.assertRaises(ValueError, switchImports, "import os\n", TO_TXWS)
