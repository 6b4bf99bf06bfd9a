"""
Tests for L{txws.wrap}: Twisted stream protocols carried over WebSocket
messages (RFC 6455 sections 5.6 and 7).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable
from typing import Optional

from twisted.internet import reactor as globalReactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost, ProcessDone
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IPullProducer,
    IPushProducer,
    IReactorProcess,
    IReactorTCP,
    ITransport,
)
from twisted.internet.protocol import ClientFactory, Factory, ProcessProtocol, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.protocols.wire import Echo
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, IOPump, connectedServerAndClient
from zope.interface import implementer
from zope.interface.verify import verifyObject

from tests.typedtrial import SynchronousTestCase, TestCase
from txws.client import WebSocketClientFactory, WebSocketClientProtocol
from txws.options import WebSocketOptions
from txws.protocol import State
from txws.wrap import (
    BASE64_PROTOCOL,
    BINARY_PROTOCOL,
    WebSocketWrappingClientFactory,
    WebSocketWrappingClientProtocol,
    WebSocketWrappingFactory,
    WebSocketWrappingProtocol,
    WrappedTransport,
)

_DONE = Failure(ConnectionDone())
PEER = IPv4Address("TCP", "192.0.2.7", 40001)
HOST = IPv4Address("TCP", "127.0.0.1", 9000)


class Boom(Exception):
    """
    Raised on purpose by a wrapped protocol under test.
    """


class RecordingEcho(Echo):
    """
    L{Echo} that records its connection events.
    """

    def __init__(self) -> None:
        self.made = 0
        self.lost: list[Failure] = []

    def connectionMade(self) -> None:
        self.made += 1

    def connectionLost(self, reason: Failure = _DONE) -> None:
        self.lost.append(reason)


class Shouter(LineReceiver):
    """
    A line protocol: answers each line in upper case; C{quit} says C{BYE}
    and closes the connection.
    """

    delimiter = b"\n"

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.lost: list[Failure] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)
        if line == b"quit":
            self.sendLine(b"BYE")  # type: ignore[no-untyped-call]
            assert self.transport is not None
            self.transport.loseConnection()
        else:
            self.sendLine(line.upper())  # type: ignore[no-untyped-call]

    def connectionLost(self, reason: Failure = _DONE) -> None:
        self.lost.append(reason)


class Greeter(RecordingEcho):
    """
    Writes a greeting as soon as it is connected.
    """

    def connectionMade(self) -> None:
        super().connectionMade()
        assert self.transport is not None
        self.transport.write(b"hello")


class GreetAndRecord(Greeter):
    """
    Greets, then records what it receives instead of echoing it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data


class RaisingOnData(RecordingEcho):
    """
    Raises from C{dataReceived}.
    """

    def dataReceived(self, data: bytes) -> None:
        raise Boom("dataReceived")


class RaisingOnConnect(RecordingEcho):
    """
    Raises from C{connectionMade}.
    """

    def connectionMade(self) -> None:
        raise Boom("connectionMade")


class RefusingFactory(Factory):
    """
    Refuses every connection.
    """

    def __init__(self) -> None:
        self.addresses: list[Optional[IAddress]] = []

    def buildProtocol(self, addr: Optional[IAddress]) -> Optional[Protocol]:
        self.addresses.append(addr)
        return None


class LifecycleFactory(Factory):
    """
    Counts C{startFactory} and C{stopFactory} calls.
    """

    protocol = Echo

    def __init__(self) -> None:
        self.started = 0
        self.stopped = 0

    def startFactory(self) -> None:
        self.started += 1

    def stopFactory(self) -> None:
        self.stopped += 1


class RecordingClient(WebSocketClientProtocol):
    """
    A txws client that records what the wrapped server sends.
    """

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bool]] = []
        self.closes: list[tuple[bool, int, str]] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.messages.append((payload, isBinary))

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        self.closes.append((wasClean, code, reason))


@implementer(IPushProducer)
class PushProducer:
    """
    Records what a push producer is told.
    """

    def __init__(self) -> None:
        self.events: list[str] = []

    def pauseProducing(self) -> None:
        self.events.append("pause")

    def resumeProducing(self) -> None:
        self.events.append("resume")

    def stopProducing(self) -> None:
        self.events.append("stop")


@implementer(IPullProducer)
class PullProducer:
    """
    Writes one numbered chunk per C{resumeProducing}, and unregisters after
    C{count} chunks.
    """

    def __init__(
        self, consumer: IConsumer, count: int, afterWrite: Callable[[int], object] = int
    ) -> None:
        self.consumer = consumer
        self.count = count
        self.afterWrite = afterWrite
        self.produced = 0
        self.stopped = False

    def resumeProducing(self) -> None:
        self.produced += 1
        self.consumer.write(b"chunk%d" % (self.produced,))
        self.afterWrite(self.produced)
        if self.produced == self.count:
            self.consumer.unregisterProducer()

    def stopProducing(self) -> None:
        self.stopped = True


def makeServerFactory(
    wrapped: Factory, clock: Clock, **arguments: object
) -> WebSocketWrappingFactory:
    """
    @return: a wrapping factory on C{clock} without keepalive pings.
    """
    return WebSocketWrappingFactory(
        wrapped,
        reactor=clock,
        options=WebSocketOptions(autoPingInterval=0),
        **arguments,  # type: ignore[arg-type]
    )


def connectPair(
    serverFactory: Factory, clientFactory: WebSocketClientFactory, clock: Clock
) -> tuple[Protocol, Protocol, IOPump]:
    """
    Connect a client made by C{clientFactory} to a server made by
    C{serverFactory} in memory, and complete the opening handshake.

    @return: the client protocol, the server protocol and the pump.
    """

    def makeServer() -> Protocol:
        protocol: object = serverFactory.buildProtocol(PEER)
        assert isinstance(protocol, Protocol)
        return protocol

    def makeClient() -> Protocol:
        protocol: object = clientFactory.buildProtocol(HOST)
        assert isinstance(protocol, Protocol)
        return protocol

    def serverTransport(protocol: Protocol) -> FakeTransport:
        return FakeTransport(protocol, True, hostAddress=HOST, peerAddress=PEER)

    def clientTransport(protocol: Protocol) -> FakeTransport:
        return FakeTransport(protocol, False, hostAddress=PEER, peerAddress=HOST)

    return connectedServerAndClient(
        makeServer,
        makeClient,
        clientTransportFactory=clientTransport,
        serverTransportFactory=serverTransport,
        clock=clock,
    )


class _PairMixin(SynchronousTestCase):
    """
    Builds an in-memory wrapped server and a recording txws client.
    """

    def connect(
        self,
        wrapped: Factory,
        offer: tuple[str, ...] = (),
        **serverArguments: object,
    ) -> tuple[RecordingClient, WebSocketWrappingProtocol, IOPump]:
        """
        @param wrapped: the wrapped stream factory.
        @param offer: subprotocols the client offers.
        @return: the client, the server and the pump, handshake done.
        """
        self.clock = Clock()
        self.serverFactory = makeServerFactory(wrapped, self.clock, **serverArguments)
        clientFactory = WebSocketClientFactory(
            "ws://example.com/",
            protocols=offer,
            reactor=self.clock,
            options=WebSocketOptions(autoPingInterval=0),
        )
        clientFactory.protocol = RecordingClient
        client, server, pump = connectPair(self.serverFactory, clientFactory, self.clock)
        assert isinstance(client, RecordingClient)
        assert isinstance(server, WebSocketWrappingProtocol)
        return client, server, pump

    def wrappedOf(self, server: WebSocketWrappingProtocol) -> RecordingEcho:
        """
        @return: the server's wrapped protocol, a L{RecordingEcho}.
        """
        wrapped: object = server.wrappedProtocol
        assert isinstance(wrapped, RecordingEcho)
        return wrapped


class WrappedDataTests(_PairMixin):
    """
    Stream bytes travel as messages both ways (RFC 6455 section 5.6).
    """

    def test_binaryMessageEchoed(self) -> None:
        """
        A binary message reaches the wrapped protocol as stream bytes and
        its write comes back as a binary message.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        client.sendMessage(b"\x00\xffhello", isBinary=True)
        pump.flush()
        self.assertEqual(client.messages, [(b"\x00\xffhello", True)])
        self.assertEqual(self.wrappedOf(server).made, 1)

    def test_writeInConnectionMade(self) -> None:
        """
        A wrapped protocol may write as soon as it is connected.
        """
        client, _server, pump = self.connect(Factory.forProtocol(Greeter))
        pump.flush()
        self.assertEqual(client.messages, [(b"hello", True)])

    def test_writeSequenceIsOneMessage(self) -> None:
        """
        C{writeSequence} sends the concatenation as one message.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        assert server.wrappedTransport is not None
        server.wrappedTransport.writeSequence([b"ab", b"cd", b"ef"])
        pump.flush()
        self.assertEqual(client.messages, [(b"abcdef", True)])

    def test_largeWriteSplit(self) -> None:
        """
        A write larger than C{messageSize} goes out as several messages
        that join to the written bytes.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho), messageSize=4)
        assert server.wrappedTransport is not None
        server.wrappedTransport.write(b"0123456789")
        pump.flush()
        self.assertEqual(client.messages, [(b"0123", True), (b"4567", True), (b"89", True)])

    def test_emptyWriteSendsNothing(self) -> None:
        """
        An empty write sends no (empty) message.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        assert server.wrappedTransport is not None
        server.wrappedTransport.write(b"")
        server.wrappedTransport.writeSequence([])
        pump.flush()
        self.assertEqual(client.messages, [])

    def test_lineReceiverAcrossMessages(self) -> None:
        """
        Message boundaries carry no meaning: lines split across messages
        and several lines in one message are all parsed.
        """
        client, server, pump = self.connect(Factory.forProtocol(Shouter))
        for piece in (b"he", b"llo\nwor", b"ld\nagain\n"):
            client.sendMessage(piece, isBinary=True)
        pump.flush()
        self.assertEqual(
            b"".join(payload for payload, _ in client.messages), b"HELLO\nWORLD\nAGAIN\n"
        )
        wrapped: object = server.wrappedProtocol
        assert isinstance(wrapped, Shouter)
        self.assertEqual(wrapped.lines, [b"hello", b"world", b"again"])

    def test_textAcceptedAsBytes(self) -> None:
        """
        By default a text message's UTF-8 bytes are stream bytes.
        """
        client, _server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        client.sendMessage("h\u00e9".encode(), isBinary=False)
        pump.flush()
        self.assertEqual(client.messages, [("h\u00e9".encode(), True)])

    def test_textRefused(self) -> None:
        """
        With C{acceptText=False}, a text message closes the connection with
        1003 and reaches nothing.
        """
        client, _server, pump = self.connect(Factory.forProtocol(RecordingEcho), acceptText=False)
        client.sendMessage(b"text", isBinary=False)
        client.sendMessage(b"binary", isBinary=True)
        pump.flush()
        self.assertEqual(client.messages, [])
        self.assertEqual(client.closes, [(True, 1003, "text messages are not accepted")])

    def test_binarySubprotocolPreferred(self) -> None:
        """
        A client offering both subprotocols gets C{binary}, and binary
        messages.
        """
        client, _server, pump = self.connect(
            Factory.forProtocol(RecordingEcho), offer=(BINARY_PROTOCOL, BASE64_PROTOCOL)
        )
        client.sendMessage(b"x", isBinary=True)
        pump.flush()
        self.assertEqual(client.websocket_protocol_in_use, BINARY_PROTOCOL)
        self.assertEqual(client.messages, [(b"x", True)])

    def test_base64Subprotocol(self) -> None:
        """
        Under the C{base64} subprotocol, text messages carry base64 in both
        directions.
        """
        client, server, pump = self.connect(
            Factory.forProtocol(RecordingEcho), offer=(BASE64_PROTOCOL,)
        )
        client.sendMessage(base64.b64encode(b"\x00\x01\xfe"), isBinary=False)
        pump.flush()
        self.assertEqual(server.websocket_protocol_in_use, BASE64_PROTOCOL)
        self.assertEqual(client.messages, [(b"AAH+", False)])

    def test_base64Invalid(self) -> None:
        """
        Under the C{base64} subprotocol, a text message that is not base64
        closes the connection with 1007 and reaches nothing.
        """
        client, _server, pump = self.connect(
            Factory.forProtocol(RecordingEcho), offer=(BASE64_PROTOCOL,)
        )
        client.sendMessage(b"not base64!", isBinary=False)
        pump.flush()
        self.assertEqual(client.messages, [])
        self.assertEqual(client.closes, [(True, 1007, "text message is not valid base64")])

    def test_addresses(self) -> None:
        """
        The wrapped factory builds with the real peer's address, and the
        shim reports the real peer and host addresses.
        """
        refusing = RefusingFactory()
        self.connect(refusing)
        self.assertEqual(refusing.addresses, [PEER])
        _client, server, _pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = self.wrappedOf(server).transport
        assert transport is not None
        self.assertEqual(transport.getPeer(), PEER)
        self.assertEqual(transport.getHost(), HOST)

    def test_wrappedTransportInterfaces(self) -> None:
        """
        The shim provides C{ITransport}, C{IConsumer} and C{IPushProducer}.
        """
        _client, server, _pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        self.assertTrue(verifyObject(ITransport, transport))
        self.assertTrue(verifyObject(IConsumer, transport))
        self.assertTrue(verifyObject(IPushProducer, transport))

    def test_messageSizeValidated(self) -> None:
        """
        A message size below 1 is refused at once.
        """
        self.assertRaises(
            ValueError, WebSocketWrappingFactory, Factory(), reactor=Clock(), messageSize=0
        )
        self.assertRaises(
            ValueError,
            WebSocketWrappingClientFactory,
            Factory(),
            "ws://example.com/",
            reactor=Clock(),
            messageSize=0,
        )
        self.assertRaises(ValueError, WrappedTransport, RecordingClient(), messageSize=0)


class WrappedCloseTests(_PairMixin):
    """
    The closing handshake and the wrapped protocol's C{connectionLost}
    (RFC 6455 section 7).
    """

    def test_loseConnectionClosesWith1000(self) -> None:
        """
        A wrapped protocol's C{loseConnection} sends what it wrote, then a
        clean close with 1000; its C{connectionLost} gets C{ConnectionDone}
        once, and lines after C{quit} are not processed.
        """
        client, server, pump = self.connect(Factory.forProtocol(Shouter))
        client.sendMessage(b"hi\nquit\nafter\n", isBinary=True)
        pump.flush()
        wrapped: object = server.wrappedProtocol
        assert isinstance(wrapped, Shouter)
        self.assertEqual(wrapped.lines, [b"hi", b"quit"])
        self.assertEqual(client.messages, [(b"HI\n", True), (b"BYE\n", True)])
        self.assertEqual(server.localCloseCode, 1000)
        self.assertEqual(client.closes, [(True, 1000, "")])
        self.assertEqual(len(wrapped.lost), 1)
        self.assertTrue(wrapped.lost[0].check(ConnectionDone))

    def test_peerCloseIsConnectionDone(self) -> None:
        """
        A clean close by the peer calls C{connectionLost} once with
        C{ConnectionDone}.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        client.sendClose(1000)
        pump.flush()
        wrapped = self.wrappedOf(server)
        self.assertEqual(server.state, State.CLOSED)
        self.assertEqual(len(wrapped.lost), 1)
        self.assertTrue(wrapped.lost[0].check(ConnectionDone))

    def test_peerCloseWithOtherCodeIsConnectionLost(self) -> None:
        """
        A clean close with an application's code is reported as
        C{ConnectionLost} naming the code.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        client.sendClose(4000, "bye")
        pump.flush()
        wrapped = self.wrappedOf(server)
        self.assertEqual(len(wrapped.lost), 1)
        self.assertTrue(wrapped.lost[0].check(ConnectionLost))
        self.assertIn("4000", wrapped.lost[0].getErrorMessage())

    def test_tcpLostIsConnectionLost(self) -> None:
        """
        Losing TCP without a closing handshake calls C{connectionLost} once
        with C{ConnectionLost}.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        assert client.transport is not None
        client.transport.loseConnection()
        pump.flush()
        # A second report of the same loss changes nothing.
        server.connectionLost(Failure(ConnectionLost()))
        wrapped = self.wrappedOf(server)
        self.assertEqual(len(wrapped.lost), 1)
        self.assertTrue(wrapped.lost[0].check(ConnectionLost))

    def test_writeAfterCloseDropped(self) -> None:
        """
        Writes once the connection is closing or closed are dropped without
        an error, as Twisted transports drop them.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None
        transport.loseConnection()
        self.assertTrue(transport.disconnecting)
        transport.write(b"closing")
        pump.flush()
        transport.write(b"closed")
        transport.loseConnection()
        pump.flush()
        self.assertEqual(client.messages, [])
        self.assertEqual(client.closes, [(True, 1000, "")])

    def test_factoryRefuses(self) -> None:
        """
        A wrapped factory that builds no protocol gets the connection
        closed with 1008.
        """
        client, server, pump = self.connect(RefusingFactory())
        pump.flush()
        self.assertIsNone(server.wrappedProtocol)
        self.assertEqual(client.closes, [(True, 1008, "connection refused")])

    def test_abortConnection(self) -> None:
        """
        C{abortConnection} drops TCP without a closing handshake; the
        wrapped protocol gets C{ConnectionLost} once.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None
        transport.abortConnection()
        self.assertTrue(transport.disconnecting)
        pump.flush()
        wrapped = self.wrappedOf(server)
        self.assertEqual(server.localCloseCode, None)
        self.assertEqual(len(wrapped.lost), 1)
        self.assertTrue(wrapped.lost[0].check(ConnectionLost))
        self.assertEqual([c[:2] for c in client.closes], [(False, 1006)])

    def test_abortWithoutAbortConnection(self) -> None:
        """
        On a transport without C{abortConnection}, C{abortConnection} falls
        back to C{loseConnection}.
        """
        connection = WebSocketWrappingProtocol()
        transport = StringTransport()
        transport.abortConnection = None  # type: ignore[assignment,method-assign]
        connection.transport = transport
        WrappedTransport(connection).abortConnection()
        self.assertTrue(transport.disconnecting)

    def test_dataReceivedRaises(self) -> None:
        """
        A wrapped protocol whose C{dataReceived} raises gets the connection
        closed with 1011 and then C{ConnectionLost}.
        """
        client, server, pump = self.connect(Factory.forProtocol(RaisingOnData))
        client.sendMessage(b"x", isBinary=True)
        pump.flush()
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertEqual(server.localCloseCode, 1011)
        wrapped = self.wrappedOf(server)
        self.assertEqual(len(wrapped.lost), 1)
        self.assertTrue(wrapped.lost[0].check(ConnectionLost))

    def test_connectionMadeRaises(self) -> None:
        """
        A wrapped protocol whose C{connectionMade} raises gets the
        connection closed with 1011.
        """
        client, server, pump = self.connect(Factory.forProtocol(RaisingOnConnect))
        pump.flush()
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertEqual(server.localCloseCode, 1011)
        self.assertEqual([c[:2] for c in client.closes], [(True, 1011)])

    def test_factoryLifecycle(self) -> None:
        """
        Starting and stopping the wrapping factories starts and stops the
        wrapped factory.
        """
        serverWrapped = LifecycleFactory()
        clientWrapped = LifecycleFactory()
        factories: list[Factory] = [
            WebSocketWrappingFactory(serverWrapped, reactor=Clock()),
            WebSocketWrappingClientFactory(clientWrapped, "ws://example.com/", reactor=Clock()),
        ]
        for factory, wrapped in zip(factories, (serverWrapped, clientWrapped), strict=True):
            factory.doStart()
            self.assertEqual((wrapped.started, wrapped.stopped), (1, 0))
            factory.doStop()
            self.assertEqual((wrapped.started, wrapped.stopped), (1, 1))


class WrappedFlowControlTests(_PairMixin):
    """
    Producers and back-pressure through the shim (RFC 6455 section 5.6
    leaves flow control to the transport).
    """

    def test_pauseProducingHoldsInput(self) -> None:
        """
        A wrapped protocol that pauses its transport receives nothing until
        it resumes it.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None
        transport.pauseProducing()
        client.sendMessage(b"held", isBinary=True)
        pump.flush()
        self.assertEqual(client.messages, [])
        transport.resumeProducing()
        pump.flush()
        self.assertEqual(client.messages, [(b"held", True)])

    def test_stopProducingCloses1001(self) -> None:
        """
        C{stopProducing} on the shim closes the connection with 1001.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        assert server.wrappedTransport is not None
        server.wrappedTransport.stopProducing()
        pump.flush()
        self.assertEqual([c[:2] for c in client.closes], [(True, 1001)])
        self.assertTrue(self.wrappedOf(server).lost[0].check(ConnectionDone))

    def test_pushProducerBackPressure(self) -> None:
        """
        A registered push producer is paused and resumed with the socket's
        write buffer, and stopped when the connection closes.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None and server.transport is not None
        producer = PushProducer()
        transport.registerProducer(producer, True)
        socketSide = server.transport.producer  # type: ignore[attr-defined]
        socketSide.pauseProducing()
        socketSide.resumeProducing()
        self.assertEqual(producer.events, ["pause", "resume"])
        client.sendClose(1000)
        pump.flush()
        self.assertEqual(producer.events, ["pause", "resume", "stop"])

    def test_unregisteredProducerNotStopped(self) -> None:
        """
        An unregistered producer is neither paused nor stopped any more.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None and server.transport is not None
        producer = PushProducer()
        transport.registerProducer(producer, True)
        transport.unregisterProducer()
        transport.unregisterProducer()
        server.transport.producer.pauseProducing()  # type: ignore[attr-defined]
        client.sendClose(1000)
        pump.flush()
        self.assertEqual(producer.events, [])

    def test_registerTwice(self) -> None:
        """
        Registering a second producer raises C{RuntimeError}.
        """
        _client, server, _pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None
        transport.registerProducer(PushProducer(), True)
        self.assertRaises(RuntimeError, transport.registerProducer, PushProducer(), True)

    def test_pullProducer(self) -> None:
        """
        A pull producer is asked for data once per reactor iteration until
        it unregisters; each chunk is a message.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None
        producer = PullProducer(transport, 3)
        transport.registerProducer(producer, False)
        self.assertEqual(producer.produced, 0)
        pump.flush()
        self.assertEqual(producer.produced, 3)
        self.assertEqual(client.messages, [(b"chunk1", True), (b"chunk2", True), (b"chunk3", True)])
        self.assertFalse(producer.stopped)

    def test_pullProducerBackPressure(self) -> None:
        """
        A pull producer is not asked for data while the socket is full, and
        is stopped when the connection closes.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None and server.transport is not None
        socketSide = server.transport.producer  # type: ignore[attr-defined]

        def fillSocket(produced: int) -> None:
            if produced in (1, 3):
                socketSide.pauseProducing()

        producer = PullProducer(transport, 100, fillSocket)
        transport.registerProducer(producer, False)
        self.clock.advance(0)
        self.assertEqual(producer.produced, 1)
        self.clock.advance(0)
        self.assertEqual(producer.produced, 1)
        socketSide.resumeProducing()
        self.clock.advance(0)
        self.assertEqual(producer.produced, 3)
        assert client.transport is not None
        client.transport.loseConnection()
        pump.flush()
        self.assertTrue(producer.stopped)
        socketSide.resumeProducing()
        self.clock.advance(0)
        self.assertEqual(producer.produced, 3)

    def test_loseConnectionWaitsForProducer(self) -> None:
        """
        C{loseConnection} with a producer registered closes (with 1000)
        only once the producer has unregistered; its writes still go out,
        but no input is delivered any more.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None
        producer = PullProducer(transport, 3)
        transport.registerProducer(producer, False)
        transport.loseConnection()
        self.assertTrue(transport.disconnecting)
        client.sendMessage(b"not echoed", isBinary=True)
        pump.pump(advanceClock=False)
        self.assertEqual(server.state, State.OPEN)
        self.assertEqual(producer.produced, 0)
        pump.flush()
        self.assertEqual(client.messages, [(b"chunk1", True), (b"chunk2", True), (b"chunk3", True)])
        self.assertEqual(client.closes, [(True, 1000, "")])

    def test_registerAfterCloseStopsProducer(self) -> None:
        """
        A producer registered once the connection is closed is stopped at
        once, as Twisted's transports do.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None
        client.sendClose(1000)
        pump.flush()
        producer = PushProducer()
        transport.registerProducer(producer, True)
        self.assertEqual(producer.events, ["stop"])

    def test_pullProducerRaises(self) -> None:
        """
        A pull producer that raises is logged and closes the connection
        with 1011.
        """
        client, server, pump = self.connect(Factory.forProtocol(RecordingEcho))
        transport = server.wrappedTransport
        assert transport is not None

        @implementer(IPullProducer)
        class Raising:
            def resumeProducing(self) -> None:
                raise Boom("resumeProducing")

            def stopProducing(self) -> None:
                pass

        transport.registerProducer(Raising(), False)
        pump.flush()
        self.assertEqual(len(self.flushLoggedErrors(Boom)), 1)
        self.assertEqual([c[:2] for c in client.closes], [(True, 1011)])


class WrappingClientTests(SynchronousTestCase):
    """
    The client-side wrapper against the server-side one (RFC 6455 section
    4.1 for the client's handshake, 5.6 for data).
    """

    def test_clientWrappedEcho(self) -> None:
        """
        A wrapped client protocol writes through WebSocket to a wrapped
        L{Echo} server and receives the echo as stream bytes; closing its
        transport closes the WebSocket connection cleanly.
        """
        clock = Clock()
        serverFactory = makeServerFactory(Factory.forProtocol(Echo), clock)
        clientFactory = WebSocketWrappingClientFactory(
            Factory.forProtocol(GreetAndRecord),
            "ws://example.com/",
            reactor=clock,
            options=WebSocketOptions(autoPingInterval=0),
            protocols=[BASE64_PROTOCOL],
        )
        client, _server, pump = connectPair(serverFactory, clientFactory, clock)
        pump.flush()
        assert isinstance(client, WebSocketWrappingClientProtocol)
        self.assertEqual(client.websocket_protocol_in_use, BASE64_PROTOCOL)
        wrapped: object = client.wrappedProtocol
        assert isinstance(wrapped, GreetAndRecord)
        self.assertEqual(wrapped.received, b"hello")
        assert client.wrappedTransport is not None
        self.assertEqual(client.wrappedTransport.getPeer(), HOST)
        client.wrappedTransport.loseConnection()
        pump.flush()
        self.assertEqual(client.state, State.CLOSED)
        self.assertEqual(len(wrapped.lost), 1)
        self.assertTrue(wrapped.lost[0].check(ConnectionDone))

    def test_clientFactoryForwards(self) -> None:
        """
        Connection attempts are reported to a wrapped C{ClientFactory}.
        """
        calls: list[str] = []

        class Recording(ClientFactory):
            def startedConnecting(self, connector: object) -> None:
                calls.append("started")

            def clientConnectionFailed(self, connector: object, reason: Failure) -> None:
                calls.append("failed")

            def clientConnectionLost(self, connector: object, reason: Failure) -> None:
                calls.append("lost")

        factory = WebSocketWrappingClientFactory(Recording(), "ws://example.com/", reactor=Clock())
        connector: object = object()
        factory.startedConnecting(connector)  # type: ignore[arg-type]
        factory.clientConnectionFailed(connector, Failure(ConnectionLost()))  # type: ignore[arg-type]
        factory.clientConnectionLost(connector, Failure(ConnectionLost()))  # type: ignore[arg-type]
        self.assertEqual(calls, ["started", "failed", "lost"])
        plain = WebSocketWrappingClientFactory(Factory(), "ws://example.com/", reactor=Clock())
        plain.startedConnecting(connector)  # type: ignore[arg-type]
        plain.clientConnectionFailed(connector, Failure(ConnectionLost()))  # type: ignore[arg-type]
        plain.clientConnectionLost(connector, Failure(ConnectionLost()))  # type: ignore[arg-type]


#: The peer for the real-socket test: a websockets client that sends a
#: large binary payload in pieces, reads the echo back whatever its message
#: boundaries, then closes with 1000 and prints what it saw as JSON.
_PEER_SCRIPT = r"""
import json, sys
from websockets.sync.client import connect

url, size = sys.argv[1], int(sys.argv[2])
data = bytes(range(256)) * (size // 256)
with connect(url, subprotocols=["binary"], proxy=None, compression=None,
             open_timeout=10, close_timeout=10, ping_interval=None) as ws:
    for start in range(0, len(data), 100000):
        ws.send(data[start:start + 100000])
    received = b""
    kinds = set()
    while len(received) < len(data):
        message = ws.recv(timeout=10)
        kinds.add(type(message).__name__)
        received += message
    ws.close(1000)
    print(json.dumps({
        "subprotocol": ws.subprotocol,
        "same": received == data,
        "kinds": sorted(kinds),
        "closeCode": ws.close_code,
    }))
"""


class _Collect(ProcessProtocol):
    """
    Collects a child process's output and tells when it ended.
    """

    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.reason: Optional[Failure] = None
        self.ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        self.reason = reason
        self.ended.callback(None)


class WrappedInteropTests(TestCase):
    """
    A wrapped L{Echo} served on a real socket to the C{websockets} client
    (RFC 6455 sections 4, 5.6 and 7).
    """

    timeout = 60

    async def test_websocketsClientEcho(self) -> None:
        """
        The C{websockets} client sends 512 KiB of binary data to a wrapped
        echo server, reads back exactly those bytes as binary messages, and
        closes cleanly; the wrapped protocol sees C{ConnectionDone}.
        """
        lost: list[Failure] = []

        class Wrapped(Echo):
            def connectionLost(self, reason: Failure = _DONE) -> None:
                lost.append(reason)

        factory = WebSocketWrappingFactory(Factory.forProtocol(Wrapped))
        tcp: IReactorTCP = globalReactor
        port = tcp.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.addCleanup(factory.closeAll)
        url = f"ws://127.0.0.1:{port.getHost().port}/"  # type: ignore[attr-defined]

        collect = _Collect()
        processes: IReactorProcess = globalReactor
        process = processes.spawnProcess(
            collect,
            sys.executable,
            [sys.executable, "-c", _PEER_SCRIPT, url, str(512 * 1024)],
            env=dict(os.environ),
        )

        def killIfRunning() -> None:
            if process.pid is not None:
                process.signalProcess("KILL")

        self.addCleanup(killIfRunning)
        await collect.ended.addTimeout(30, globalReactor)
        assert collect.reason is not None
        self.assertTrue(collect.reason.check(ProcessDone), collect.err.decode("utf-8", "replace"))
        result = json.loads(collect.out)
        self.assertEqual(
            result,
            {"subprotocol": "binary", "same": True, "kinds": ["bytes"], "closeCode": 1000},
        )
        await factory.closeAll()
        self.assertEqual(len(lost), 1)
        self.assertTrue(lost[0].check(ConnectionDone))
