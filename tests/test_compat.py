"""
Tests for L{txws.compat}, L{txws.agent}, L{txws.resource} and Autobahn's
wrapping names in L{txws.wrap}: the Autobahn API that txws adds beside its
own, in memory (C{StringTransport}, C{Clock}, C{MemoryReactorClock}).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import Request
from twisted.web.test.requesthelper import DummyRequest

from tests.support import (
    RecordingClient,
    acceptFor,
    clientFactory,
    clientFrame,
    closeFrame,
    connectServer,
    lostCleanly,
    openServer,
    serverFactory,
    upgradeRequest,
)
from tests.typedtrial import SynchronousTestCase
from txws import (
    ConnectingRequest,
    NotInTxws,
    TransportDetails,
    WebSocketClientProtocol,
    WebSocketServerProtocol,
    WrappingWebSocketServerFactory,
    create_client_agent,
)
from txws.compat import AutobahnConnection
from txws.handshake import ResponseError
from txws.resource import WebSocketResource, WSGIRootResource


class RefusedNamesTests(SynchronousTestCase):
    """
    Autobahn names and callbacks that txws does not implement fail loudly.
    """

    def test_refusedImport(self) -> None:
        """
        Importing a refused Autobahn name from C{txws} raises L{NotInTxws},
        an C{ImportError}, naming it and the table.
        """
        with self.assertRaises(ImportError) as caught:
            from txws import WampWebSocketServerFactory  # type: ignore[attr-defined]  # noqa: F401
        self.assertIsInstance(caught.exception, NotInTxws)
        self.assertIsInstance(caught.exception, NotImplementedError)
        self.assertIn("WampWebSocketServerFactory", str(caught.exception))
        self.assertIn("docs/autobahn.md", str(caught.exception))

    def test_refusedCompressionImport(self) -> None:
        """
        Autobahn's compression classes other than permessage-deflate's,
        imported from C{txws.deflate} (where C{autobahn.websocket.compress}
        switches to), raise L{NotInTxws} too.
        """
        with self.assertRaises(NotInTxws) as caught:
            from txws.deflate import PerMessageBzip2  # type: ignore[attr-defined]  # noqa: F401
        self.assertIn("PerMessageBzip2", str(caught.exception))
        import txws.deflate

        self.assertFalse(hasattr(txws.deflate, "NoSuchThing"))

    def test_unknownNameIsAnAttributeError(self) -> None:
        """
        A name that is neither txws's nor Autobahn's is an ordinary missing
        attribute.
        """
        import txws

        self.assertFalse(hasattr(txws, "NoSuchThing"))

    def test_refusedCallbacks(self) -> None:
        """
        Defining an Autobahn callback that txws never calls, on a server or
        a client protocol, raises C{NotImplementedError} naming it.
        """
        for base in (WebSocketServerProtocol, WebSocketClientProtocol):
            for name in ("onCloseFrame", "onAutoPingTimeout", "onOpenHandshakeTimeout"):
                with self.assertRaises(NotImplementedError) as caught:
                    type("App", (base,), {name: lambda self, *args: None})
                self.assertIn(f"App.{name}", str(caught.exception))
                self.assertIn("docs/autobahn.md", str(caught.exception))


class ConnectionDeferredTests(SynchronousTestCase):
    """
    C{is_open}, C{is_closed} and C{on("message", ...)} on a connection.
    """

    def test_isOpenAndClosed(self) -> None:
        """
        C{is_open} fires once the handshake completed (also when asked for
        afterwards); C{is_closed} fires with the connection before
        C{onClose}.
        """
        protocol, _transport, _ = openServer()
        self.assertIsNone(self.successResultOf(protocol.is_open))
        order: list[str] = []
        closed = protocol.is_closed
        self.assertNoResult(closed)

        def noted(connection: AutobahnConnection) -> AutobahnConnection:
            order.append("is_closed")
            return connection

        closed.addCallback(noted)
        original = protocol.onClose

        def onClose(wasClean: bool, code: int, reason: str) -> None:
            order.append("onClose")
            original(wasClean, code, reason)

        protocol.onClose = onClose  # type: ignore[method-assign]
        protocol.dataReceived(closeFrame(1000))
        lostCleanly(protocol)
        self.assertEqual(order, ["is_closed", "onClose"])
        self.assertIs(self.successResultOf(protocol.is_closed), protocol)

    def test_isOpenNeverFiresForARefusedHandshake(self) -> None:
        """
        A connection that never opened leaves C{is_open} unfired and fires
        C{is_closed}.
        """
        factory = clientFactory()
        client: object = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
        assert isinstance(client, RecordingClient)
        opened = client.is_open
        cast(Protocol, client).makeConnection(StringTransport())
        client.dataReceived(b"HTTP/1.1 403 Forbidden\r\n\r\n")
        lostCleanly(client)
        self.assertNoResult(opened)
        self.assertIs(self.successResultOf(client.is_closed), client)

    def test_onMessage(self) -> None:
        """
        A C{"message"} handler is called after C{onMessage} with the
        payload and C{is_binary}; C{off} removes it; other events are
        refused.
        """
        protocol, _, _ = openServer()
        seen: list[tuple[bytes, Any]] = []

        def handler(payload: bytes, is_binary: Any = None) -> None:
            seen.append((payload, is_binary))

        protocol.on("message", handler)
        protocol.dataReceived(clientFrame(0x1, b"one") + clientFrame(0x2, b"\x00"))
        self.assertEqual(seen, [(b"one", False), (b"\x00", True)])
        self.assertEqual(protocol.messages(), [(b"one", False), (b"\x00", True)])
        protocol.off("message", handler)
        protocol.dataReceived(clientFrame(0x1, b"two"))
        self.assertEqual(len(seen), 2)
        self.assertRaises(ValueError, protocol.on, "close", handler)

    def test_failingHandlerLogged(self) -> None:
        """
        A handler that raises is logged; the connection stays open.
        """
        protocol, _, _ = openServer()

        def broken(payload: bytes, is_binary: bool) -> None:
            raise RuntimeError("broken handler")

        protocol.on("message", broken)
        protocol.dataReceived(clientFrame(0x1, b"x"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(protocol.state.name, "OPEN")

    def test_constants(self) -> None:
        """
        Autobahn's state and close code constants compare as its code
        expects.
        """
        protocol, _, _ = openServer()
        self.assertTrue(protocol.state == protocol.STATE_OPEN)
        protocol.sendClose(protocol.CLOSE_STATUS_CODE_GOING_AWAY)
        self.assertEqual(protocol.localCloseCode, 1001)
        self.assertTrue(protocol.state == WebSocketServerProtocol.STATE_CLOSING)

    def test_transportDetailsOfCompression(self) -> None:
        """
        With permessage-deflate negotiated, C{transport_details} lists its
        extension string.
        """
        protocol, transport = connectServer(serverFactory())
        offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        protocol.dataReceived(upgradeRequest(extra=offer))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))
        details = protocol.transport_details
        assert details is not None
        self.assertEqual(
            details.websocket_extensions_in_use,
            ["permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"],
        )

    def test_transportDetailsAndDrop(self) -> None:
        """
        C{transport_details} describes the transport; C{dropConnection}
        closes it without a closing handshake (C{onClose} unclean).
        """
        protocol, transport, _ = openServer()
        details = protocol.transport_details
        assert details is not None
        self.assertEqual(
            (details.is_server, details.is_secure, details.channel_type, details.peer),
            (True, False, TransportDetails.CHANNEL_TYPE_TCP, "tcp4:127.0.0.1:50000"),
        )
        assert details.http_headers_received is not None
        self.assertEqual(details.http_headers_received["host"], "server.example.com")
        self.assertEqual((details.websocket_protocol, details.http_headers_sent), (None, None))
        protocol.dropConnection()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        lostCleanly(protocol)
        self.assertEqual(protocol.closes()[0][:2], (False, 1006))


class OnConnectingTests(SynchronousTestCase):
    """
    The client's C{onConnecting}, before the request of RFC 6455 section
    4.1 is sent.
    """

    def connect(self, protocolClass: type[RecordingClient]) -> tuple[Any, StringTransport]:
        factory = clientFactory()
        factory.protocol = protocolClass
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 80))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 80))
        cast(Protocol, protocol).makeConnection(transport)
        return protocol, transport

    def test_connectingRequestChangesTheRequest(self) -> None:
        """
        A returned L{ConnectingRequest} decides the request line, C{Host},
        headers, C{User-Agent} and the subprotocols offered (and accepted).
        """
        seen: list[TransportDetails] = []

        class Client(RecordingClient):
            def onConnecting(self, transportDetails: TransportDetails) -> ConnectingRequest:
                seen.append(transportDetails)
                return ConnectingRequest(
                    host="other.example", port=8080, resource="/else?x=1",
                    headers={"X-Extra": "1"}, useragent="agent/1", protocols=["chat"],
                )  # fmt: skip

        protocol, transport = self.connect(Client)
        request = transport.value()
        self.assertTrue(request.startswith(b"GET /else?x=1 HTTP/1.1\r\n"))
        for line in (b"Host: other.example:8080", b"X-Extra: 1", b"User-Agent: agent/1",
                     b"Sec-WebSocket-Protocol: chat"):  # fmt: skip
            self.assertIn(line + b"\r\n", request)
        self.assertEqual((seen[0].is_server, seen[0].peer), (False, "tcp4:127.0.0.1:80"))
        answer = acceptFor(request).replace(
            b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        )
        self.assertEqual(
            (seen[0].websocket_protocol, seen[0].http_headers_received), (None, None)
        )
        protocol.dataReceived(answer)
        self.assertEqual(protocol.websocket_protocol_in_use, "chat")
        self.assertEqual(protocol.events[-1], ("open",))
        details = protocol.transport_details
        assert details is not None and details.http_headers_received is not None
        self.assertEqual(details.websocket_protocol, "chat")
        self.assertEqual(details.http_headers_received["sec-websocket-protocol"], "chat")
        self.assertEqual(details.websocket_extensions_in_use, [])

    def test_deferredOnConnecting(self) -> None:
        """
        A Deferred from C{onConnecting} holds the request back until it
        fires; C{None} sends the factory's request.
        """
        waiting: Deferred[None] = Deferred()

        class Client(RecordingClient):
            def onConnecting(self, transportDetails: TransportDetails) -> Deferred[None]:
                return waiting

        _protocol, transport = self.connect(Client)
        self.assertEqual(transport.value(), b"")
        waiting.callback(None)
        self.assertTrue(transport.value().startswith(b"GET /chat HTTP/1.1\r\n"))

    def test_failingOnConnecting(self) -> None:
        """
        C{onConnecting} raising drops the connection, logs the error, and
        C{whenOpen} fails with it.
        """

        class Client(RecordingClient):
            def onConnecting(self, transportDetails: TransportDetails) -> None:
                raise RuntimeError("no")

        protocol, transport = self.connect(Client)
        self.assertEqual(transport.value(), b"")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        lostCleanly(protocol)
        self.failureResultOf(protocol.whenOpen(), RuntimeError)

    def test_wrongReturnValue(self) -> None:
        """
        Anything but C{None} or a L{ConnectingRequest} fails the handshake
        with a C{TypeError} naming what came back.
        """

        class Client(RecordingClient):
            def onConnecting(self, transportDetails: TransportDetails) -> Any:
                return {"host": "x"}

        protocol, transport = self.connect(Client)
        self.assertTrue(transport.disconnecting)
        lostCleanly(protocol)
        error = self.failureResultOf(protocol.whenOpen(), TypeError)
        self.assertIn("not a ConnectingRequest", error.getErrorMessage())


def _connectedClient(reactor: MemoryReactorClock) -> tuple[Any, Any, StringTransport]:
    """
    Connect the first TCP connection a memory reactor was asked for.

    @return: the protocol the endpoint's factory built, the WebSocket
        protocol inside it, and the transport.
    """
    host, port, factory, _, _ = reactor.tcpClients[0]
    outer: Any = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, port))
    outer.makeConnection(transport)
    return outer, outer._wrappedProtocol, transport


class ClientAgentTests(SynchronousTestCase):
    """
    L{txws.agent}: Autobahn's C{create_client_agent}.
    """

    def test_arguments(self) -> None:
        """
        Bad URLs and options are refused at once with C{ValueError}, as
        Autobahn's agent does.
        """
        agent = create_client_agent(MemoryReactorClock())
        self.assertRaises(ValueError, agent.open, b"ws://x/", {})
        self.assertRaises(ValueError, agent.open, "http://x/", {})
        error = self.assertRaises(ValueError, agent.open, "ws://x/", {"bogus": 1})
        self.assertIn("bogus", str(error))

    def test_opens(self) -> None:
        """
        C{open} connects to the URL's host and port with the options, and
        fires with the protocol once the handshake completed.
        """
        reactor = MemoryReactorClock()
        agent = create_client_agent(reactor)
        d = agent.open("ws://127.0.0.1:9000/ws", {"headers": {"x-foo": "bar"}},
                       protocol_class=RecordingClient)  # fmt: skip
        self.assertEqual(reactor.tcpClients[0][:2], ("127.0.0.1", 9000))
        _, protocol, transport = _connectedClient(reactor)
        self.assertIn(b"x-foo: bar\r\n", transport.value())
        self.assertNoResult(d)
        protocol.dataReceived(acceptFor(transport.value()))
        opened = self.successResultOf(d)
        self.assertIsInstance(opened, RecordingClient)

    def test_refusedFails(self) -> None:
        """
        A refused handshake fails the Deferred with L{ResponseError} (where
        Autobahn's never fires).
        """
        reactor = MemoryReactorClock()
        d = create_client_agent(reactor).open("ws://127.0.0.1:9000/", {})
        outer, protocol, _ = _connectedClient(reactor)
        protocol.dataReceived(b"HTTP/1.1 403 Forbidden\r\n\r\n")
        outer.connectionLost(Failure(ConnectionDone()))
        error = self.failureResultOf(d, ResponseError).value
        assert isinstance(error, ResponseError)
        self.assertEqual(error.status, 403)


class AutobahnWrappingTests(SynchronousTestCase):
    """
    Autobahn's C{WrappingWebSocketServerFactory} rules over L{txws.wrap}.
    """

    def test_signature(self) -> None:
        """
        It takes Autobahn's arguments: the wrapped factory and the URL,
        C{autoFragmentSize}, C{subprotocol}.
        """
        factory = WrappingWebSocketServerFactory(
            Factory.forProtocol(Protocol), "ws://127.0.0.1:9000", reactor=Clock(),
            enableCompression=False, autoFragmentSize=1024, subprotocol="tunnel",
        )  # fmt: skip
        self.assertEqual(factory.protocols, ["binary", "base64", "tunnel"])
        self.assertEqual(factory.options.autoFragmentSize, 1024)
        self.assertEqual(factory.port, 9000)


class ResourceTests(SynchronousTestCase):
    """
    L{txws.resource}, Autobahn's C{autobahn.twisted.resource}.
    """

    def test_sameWebSocketResource(self) -> None:
        """
        C{txws.resource.WebSocketResource} is txws's resource.
        """
        import txws

        self.assertIs(WebSocketResource, txws.WebSocketResource)

    def test_wsgiRootResource(self) -> None:
        """
        Paths below a child go to the child; every other path goes to the
        WSGI resource, which sees the whole path.
        """
        wsgi, child = Resource(), Resource()
        root = WSGIRootResource(wsgi, {b"ws": child})
        request = DummyRequest([b"app", b"page"])
        request.prepath = [b"app"]
        request.postpath = [b"page"]
        self.assertIs(
            root.getChildWithDefault(b"ws", DummyRequest([b"ws"])),  # type: ignore[no-untyped-call]
            child,
        )
        self.assertIs(root.getChild(b"app", cast(Request, request)), wsgi)
        self.assertEqual((request.prepath, request.postpath), ([], [b"app", b"page"]))



class TableTests(SynchronousTestCase):
    """
    C{docs/autobahn.md} names every public name of the Autobahn modules an
    application imports, and each of them either imports from its txws
    counterpart or is refused with L{NotInTxws}.
    """

    def test_everyNameAccountedFor(self) -> None:
        """
        Each name of C{autobahn.twisted.websocket}, C{autobahn.twisted.resource}
        and C{autobahn.websocket.types} is in the table and imports from the
        txws module its import switches to, or raises L{NotInTxws}.
        """
        import importlib

        import txws
        from tests.autobahn_programs import TO_TXWS
        from tests.tlssupport import ROOT

        table = (Path(ROOT) / "docs" / "autobahn.md").read_text()
        checked = 0
        for theirs, ours in TO_TXWS.items():
            names: tuple[str, ...] = importlib.import_module(theirs).__all__
            module = importlib.import_module(ours)
            for name in names:
                self.assertIn(f"`{name}", table, f"{theirs}.{name} is not in the table")
                try:
                    getattr(module, name)
                except NotInTxws as e:
                    self.assertIn(name, str(e))
                except AttributeError:
                    # (txws.deflate has no refusing __getattr__ of its own:
                    # its missing names must be refused from txws.)
                    self.assertEqual(ours, "txws.deflate")
                    self.assertRaises(NotInTxws, getattr, txws, name)
                checked += 1
        self.assertGreater(checked, 25)

    def test_refusedCallbacksListed(self) -> None:
        """
        Each refused callback is in the table.
        """
        from tests.tlssupport import ROOT
        from txws.compat import REFUSED_CALLBACKS

        table = (Path(ROOT) / "docs" / "autobahn.md").read_text()
        for name in REFUSED_CALLBACKS:
            self.assertIn(f"`{name}`", table)
