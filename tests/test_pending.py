"""
Tests for the bounds on connections still in their opening handshake
(L{txws._admission}, used by L{txws.server}): silent or slow sockets sit in
a bounded table of pending handshakes, the oldest dropped to admit a new
one, so that they can never hold the C{maxConnections} slots, which count
open connections only (issue 11, item 1).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.static import Data

from tests.support import RecordingServer, connectServer, serverFactory, upgradeRequest
from tests.typedtrial import SynchronousTestCase
from txws._admission import peerKey
from txws.handshake import ConnectionRequest
from txws.hmacauth import HMACSite, KeyRing
from txws.hub import Hub
from txws.options import WebSocketOptions
from txws.server import (
    ConnectResult,
    WebSocketResource,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)


def statusOf(response: bytes) -> int:
    """
    @return: the HTTP status of a response.
    """
    return int(response.split(b" ", 2)[1])


def connectFrom(
    factory: WebSocketServerFactory, host: str = "127.0.0.1", port: int = 50000
) -> tuple[WebSocketServerProtocol, StringTransport]:
    """
    @return: a server connection from C{host}:C{port}.
    """
    address: Any = IPv6Address("TCP", host, port) if ":" in host else IPv4Address(
        "TCP", host, port
    )
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 9000), peerAddress=address
    )
    return connectServer(factory, port, transport)


def aborted(transport: StringTransport) -> bool:
    """
    @return: whether C{abortConnection} was called on C{transport} (a
        L{StringTransport} marks only that as C{disconnected}).
    """
    return bool(transport.disconnected)


def runTurn(clock: Clock) -> None:
    """
    Run the calls due now, but not those they schedule for now (as one turn
    of a real reactor does; C{Clock.advance} would run those too).
    """
    due = [call for call in clock.calls if call.getTime() <= clock.seconds()]
    for call in due:
        clock.calls.remove(call)
        call.func(*call.args, **call.kw)


def lose(protocol: WebSocketServerProtocol) -> None:
    """
    Deliver the end of a connection, as the reactor would after a close.
    """
    protocol.connectionLost(Failure(ConnectionDone()))


class SilentSocketsTests(SynchronousTestCase):
    """
    The regression of issue 11, item 1: connections that never send a byte
    do not count against C{maxConnections}.
    """

    def test_silentSocketsDoNotLockOut(self) -> None:
        """
        With C{maxConnections=2} and five silent connections, a client that
        sends its request still gets 101, and so does a second one; a third
        gets 503.
        """
        factory = serverFactory(maxConnections=2)
        silent = [connectFrom(factory, port=40000 + n) for n in range(5)]
        good, goodTransport = connectFrom(factory, port=50001)
        good.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(goodTransport.value()), 101)
        second, secondTransport = connectFrom(factory, port=50002)
        second.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(secondTransport.value()), 101)
        third, thirdTransport = connectFrom(factory, port=50003)
        third.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(thirdTransport.value()), 503)
        for _, transport in silent:
            self.assertFalse(transport.disconnecting)


class AccountingTests(SynchronousTestCase):
    """
    Connections move from the pending table to the open count, and leave
    both when they are gone.
    """

    def test_pendingThenOpen(self) -> None:
        """
        An accepted connection is pending; once its upgrade request has
        arrived it is open; when it is gone, neither.
        """
        factory = serverFactory()
        protocol, transport = connectFrom(factory)
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (1, 0))
        protocol.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(transport.value()), 101)
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (0, 1))
        lose(protocol)
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (0, 0))

    def test_partialRequestStaysPending(self) -> None:
        """
        Half a request leaves the connection pending.
        """
        factory = serverFactory()
        protocol, _ = connectFrom(factory)
        protocol.dataReceived(upgradeRequest()[:30])
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (1, 0))

    def test_refusedFreesSlot(self) -> None:
        """
        A handshake refused with 400 leaves the pending table once the
        connection is gone, and never counted as open.
        """
        factory = serverFactory()
        protocol, transport = connectFrom(factory)
        protocol.dataReceived(upgradeRequest(key="short"))
        self.assertEqual(statusOf(transport.value()), 400)
        self.assertEqual(factory.openConnectionCount, 0)
        lose(protocol)
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (0, 0))

    def test_timedOutFreesSlot(self) -> None:
        """
        A connection whose handshake times out is aborted and leaves the
        pending table.
        """
        clock = Clock()
        factory = serverFactory(clock, openHandshakeTimeout=5)
        protocol, transport = connectFrom(factory)
        clock.advance(7)
        self.assertTrue(transport.disconnecting)
        lose(protocol)
        self.assertEqual(factory.pendingHandshakeCount, 0)

    def test_asynchronousOnConnectCountsAsOpen(self) -> None:
        """
        While an asynchronous C{onConnect} decides, the connection counts
        against C{maxConnections}: a second request meanwhile gets 503.
        """
        decisions: list[Deferred[ConnectResult]] = []

        class Slow(WebSocketServerProtocol):
            def onConnect(self, request: ConnectionRequest) -> Deferred[ConnectResult]:
                d: Deferred[ConnectResult] = Deferred()
                decisions.append(d)
                return d

        factory = serverFactory(protocolClass=Slow, maxConnections=1)
        first, firstTransport = connectFrom(factory, port=1)
        first.dataReceived(upgradeRequest())
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (0, 1))
        second, secondTransport = connectFrom(factory, port=2)
        second.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(secondTransport.value()), 503)
        decisions[0].callback(None)
        self.assertEqual(statusOf(firstTransport.value()), 101)

    def test_openBoundStill503(self) -> None:
        """
        Beyond C{maxConnections} open connections, a request gets 503 with
        one log line; once one closes, the next gets 101.
        """
        factory = serverFactory(maxConnections=2)
        opened = []
        for n in range(2):
            protocol, transport = connectFrom(factory, port=n + 1)
            protocol.dataReceived(upgradeRequest())
            self.assertEqual(statusOf(transport.value()), 101)
            opened.append(protocol)
        with capturedLogs() as events:
            late, lateTransport = connectFrom(factory, port=3)
            late.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(lateTransport.value()), 503)
        self.assertIn(b"too many WebSocket connections", lateTransport.value())
        self.assertEqual(len(events), 1)
        self.assertIn("503", formatEvent(events[0]))
        lose(late)
        lose(opened[0])
        again, againTransport = connectFrom(factory, port=4)
        again.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(againTransport.value()), 101)


class EvictionTests(SynchronousTestCase):
    """
    A full pending table drops its oldest connection to admit a new one.
    """

    def test_oldestDropped(self) -> None:
        """
        With C{maxPendingHandshakes=2}, a fifth connection (twice the
        bound reached) aborts the first at once, whose C{onClose} says why;
        after the reactor's turns, the table is trimmed back to 2, the
        oldest first, and the newest completes its handshake.
        """
        clock = Clock()
        factory = serverFactory(clock, maxPendingHandshakes=2, openHandshakeTimeout=0)
        connections = [connectFrom(factory, port=n + 1) for n in range(5)]
        transports = [transport for _, transport in connections]
        self.assertEqual([t.disconnecting for t in transports], [True] + [False] * 4)
        self.assertTrue(aborted(transports[0]))
        self.assertEqual(factory.pendingHandshakeCount, 4)
        clock.advance(0)
        self.assertEqual([aborted(t) for t in transports], [True] * 3 + [False] * 2)
        self.assertEqual(factory.pendingHandshakeCount, 2)
        oldest = connections[0][0]
        # A dropped connection reads nothing more, even if bytes were queued.
        oldest.dataReceived(upgradeRequest())
        self.assertEqual(transports[0].value(), b"")
        lose(oldest)
        assert isinstance(oldest, RecordingServer)
        self.assertEqual(
            oldest.closes(),
            [(False, 1006, "opening handshake dropped: too many pending handshakes")],
        )
        newest, newestTransport = connections[4]
        newest.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(newestTransport.value()), 101)
        self.assertEqual(factory.pendingHandshakeCount, 1)

    def test_goodClientThroughChurn(self) -> None:
        """
        1450 silent connections keep arriving within one turn of the
        reactor against C{maxPendingHandshakes=100} and
        C{maxConnections=10}: a client whose request arrives before 100
        newer connections do gets 101 every time, never more than 200 are
        pending, the open count is only the good clients', and the next
        turns trim the table to 100.
        """
        clock = Clock()
        factory = serverFactory(clock, maxPendingHandshakes=100, maxConnections=10,
                                openHandshakeTimeout=0)
        silent = 0
        for round in range(10):
            for _ in range(95):
                connectFrom(factory, port=10000 + silent % 50000)
                silent += 1
            good, transport = connectFrom(factory, host=f"10.0.0.{round + 1}")
            for _ in range(50):
                connectFrom(factory, port=10000 + silent % 50000)
                silent += 1
            good.dataReceived(upgradeRequest())
            self.assertEqual(statusOf(transport.value()), 101, round)
            self.assertLessEqual(factory.pendingHandshakeCount, 200)
        self.assertEqual(factory.openConnectionCount, 10)
        pending = factory.pendingHandshakeCount
        self.assertEqual(factory.admission.dropped.total, silent - pending)
        clock.advance(0)
        self.assertEqual(factory.pendingHandshakeCount, 100)

    def test_dropsLoggedOnceThenSummed(self) -> None:
        """
        205 connections against C{maxPendingHandshakes=5} drop 195 at once
        (at twice the bound) and 5 more (down to the bound) after the
        reactor's turns: one line, then one summary of the other 199 when
        the 10 s interval ends; the next interval, quiet, logs nothing.
        """
        clock = Clock()
        factory = serverFactory(clock, maxPendingHandshakes=5, openHandshakeTimeout=0)
        with capturedLogs() as events:
            for n in range(205):
                connectFrom(factory, port=n + 1)
            clock.advance(5)
        texts = [formatEvent(e) for e in events]
        self.assertEqual(len(texts), 1, texts)
        self.assertIn("Dropped the oldest pending handshake", texts[0])
        self.assertIn("maxPendingHandshakes", texts[0])
        with capturedLogs() as events:
            clock.advance(5)
            clock.advance(10)
        texts = [formatEvent(e) for e in events]
        self.assertEqual(len(texts), 1, texts)
        self.assertIn("Dropped 199 more pending handshakes, the oldest, in the last 10 s",
                      texts[0])
        self.assertEqual(factory.pendingHandshakeCount, 5)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_droppedOnlyAfterATurn(self) -> None:
        """
        Over half the bound, the oldest are dropped at the reactor's turn
        after next, and only those admitted before the turn in between: a
        connection of the burst whose request arrives in the next turn is
        never dropped, and one admitted in that turn survives the trim.
        """
        clock = Clock()
        factory = serverFactory(clock, maxPendingHandshakes=5, openHandshakeTimeout=0)
        burst = [connectFrom(factory, port=n + 1) for n in range(9)]
        self.assertEqual(factory.pendingHandshakeCount, 9)
        self.assertFalse(any(transport.disconnecting for _, transport in burst))
        runTurn(clock)
        # The reactor's next turn reads the burst: the newest has a request.
        newest, newestTransport = burst[-1]
        newest.dataReceived(upgradeRequest())
        _, lateTransport = connectFrom(factory, port=100)
        runTurn(clock)
        self.assertEqual(statusOf(newestTransport.value()), 101)
        # 8 of the burst and the late one pending: the 4 oldest go, to 5.
        self.assertEqual([aborted(t) for _, t in burst[:-1]], [True] * 4 + [False] * 4)
        self.assertFalse(lateTransport.disconnecting)
        self.assertEqual(factory.pendingHandshakeCount, 5)
        # No further trim is due: only the log summary waits, 10 s away.
        self.assertEqual([c.getTime() for c in clock.getDelayedCalls()], [10.0])

    def test_timeoutsSummed(self) -> None:
        """
        Opening handshakes timing out together are logged once, then summed.
        """
        clock = Clock()
        factory = serverFactory(clock, openHandshakeTimeout=5)
        for n in range(50):
            connectFrom(factory, port=n + 1)
        with capturedLogs() as events:
            clock.advance(6)
            clock.advance(10)
        texts = [formatEvent(e) for e in events]
        self.assertEqual(len(texts), 2, texts)
        self.assertIn("timed out", texts[0])
        self.assertIn("49 more opening handshakes timed out", texts[1])

    def test_lastConnectionGoneFlushes(self) -> None:
        """
        When the last connection is gone, what was counted is logged at once
        and no summary stays scheduled.
        """
        clock = Clock()
        factory = serverFactory(clock, maxPendingHandshakes=1, openHandshakeTimeout=0)
        connections = [connectFrom(factory, port=n + 1) for n in range(4)]
        with capturedLogs() as events:
            for protocol, _ in connections:
                lose(protocol)
        texts = [formatEvent(e) for e in events]
        self.assertEqual(len(texts), 1, texts)
        self.assertIn("Dropped 1 more pending handshakes", texts[0])
        self.assertEqual(clock.getDelayedCalls(), [])


class PerPeerTests(SynchronousTestCase):
    """
    C{maxPendingHandshakesPerPeer} bounds one address's pending handshakes.
    """

    def test_excessRefusedAtOnce(self) -> None:
        """
        A third pending connection from one address gets 503 at once (and is
        not pending), while another address is admitted; once one of the
        first two has its request in, the address may connect again.
        """
        factory = serverFactory(maxPendingHandshakesPerPeer=2)
        first, firstTransport = connectFrom(factory, "192.0.2.1", 1)
        connectFrom(factory, "192.0.2.1", 2)
        with capturedLogs() as events:
            third, thirdTransport = connectFrom(factory, "192.0.2.1", 3)
        self.assertEqual(statusOf(thirdTransport.value()), 503)
        self.assertIn(b"too many pending handshakes from this address", thirdTransport.value())
        self.assertTrue(thirdTransport.disconnecting)
        self.assertFalse(aborted(thirdTransport))
        self.assertEqual(len(events), 1)
        self.assertIn("maxPendingHandshakesPerPeer", formatEvent(events[0]))
        # Bytes it sends anyway are ignored.
        third.dataReceived(upgradeRequest())
        self.assertEqual(thirdTransport.value().count(b"HTTP/1.1"), 1)
        _, otherTransport = connectFrom(factory, "192.0.2.2", 4)
        self.assertFalse(otherTransport.disconnecting)
        self.assertEqual(factory.pendingHandshakeCount, 3)
        first.dataReceived(upgradeRequest())
        self.assertEqual(statusOf(firstTransport.value()), 101)
        _, fourthTransport = connectFrom(factory, "192.0.2.1", 5)
        self.assertFalse(fourthTransport.disconnecting)

    def test_ipv6CountedByPrefix(self) -> None:
        """
        IPv6 peers in one /64 share a bound; another /64 does not.
        """
        factory = serverFactory(maxPendingHandshakesPerPeer=1)
        connectFrom(factory, "2001:db8:1:2::1", 1)
        _, sameTransport = connectFrom(factory, "2001:db8:1:2:ffff::9", 2)
        _, otherTransport = connectFrom(factory, "2001:db8:1:3::1", 3)
        self.assertEqual(statusOf(sameTransport.value()), 503)
        self.assertFalse(otherTransport.disconnecting)

    def test_peerKey(self) -> None:
        """
        IPv4 addresses count as themselves, IPv6 by /64, IPv4-mapped IPv6 as
        the IPv4 address, UNIX sockets not at all.
        """
        self.assertEqual(peerKey(IPv4Address("TCP", "192.0.2.7", 1)), "192.0.2.7")
        self.assertEqual(
            peerKey(IPv6Address("TCP", "2001:db8:0:1:2:3:4:5", 1)), "2001:db8:0:1::/64"
        )
        self.assertEqual(peerKey(IPv6Address("TCP", "fe80::1%eth0", 1)), "fe80::/64")
        self.assertEqual(peerKey(IPv6Address("TCP", "::ffff:192.0.2.7", 1)), "192.0.2.7")
        self.assertIsNone(peerKey(UNIXAddress(b"/run/txws.sock")))
        # (An address the socket module cannot parse counts as itself.)
        self.assertEqual(peerKey(IPv6Address("TCP", "not:an:address", 1)), "not:an:address")


class HubSiteTests(SynchronousTestCase):
    """
    The hub's site shares its subscribers' table of pending handshakes.
    """

    def test_hubSiteSharesTable(self) -> None:
        """
        L{Hub.site} counts its connections as pending handshakes of the
        hub's factory, with the factory's bounds.
        """
        options = WebSocketOptions(maxPendingHandshakes=7, maxPendingHandshakesPerPeer=3)
        hub = Hub(KeyRing({"k": b"s" * 32}), reactor=MemoryReactorClock(), options=options)
        site = hub.site()
        self.assertIs(site.admission, hub.factory.admission)
        self.assertEqual((site.maxPendingHandshakes, site.maxPendingHandshakesPerPeer), (7, 3))


class SiteTests(SynchronousTestCase):
    """
    An L{HMACSite} given a factory's C{admission} counts its connections
    as pending handshakes until their first request has arrived, and the
    WebSocket taken over from it counts as open.
    """

    def makeSite(self, **options: Any) -> tuple[WebSocketServerFactory, HMACSite, Clock]:
        clock = MemoryReactorClock()
        factory = serverFactory(clock, **options)
        root = Resource()
        root.putChild(b"ws", WebSocketResource(factory))
        root.putChild(b"", Data(b"hello", "text/plain"))
        site = HMACSite(root, reactor=clock)
        site.admission = factory.admission
        site.maxPendingHandshakes = factory.options.maxPendingHandshakes
        site.maxPendingHandshakesPerPeer = factory.options.maxPendingHandshakesPerPeer
        return factory, site, clock

    def connect(self, site: HMACSite, host: str = "127.0.0.1", port: int = 1
                ) -> tuple[Any, StringTransport]:
        address = IPv4Address("TCP", host, port)
        channel: Any = site.buildProtocol(address)  # type: ignore[no-untyped-call]
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        return channel, transport

    def test_webSocketThroughSite(self) -> None:
        """
        A channel is pending until its upgrade request has arrived; the
        WebSocket is then open, and the pending table empty.
        """
        factory, site, _ = self.makeSite()
        channel, transport = self.connect(site)
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (1, 0))
        channel.dataReceived(upgradeRequest("/ws"))
        self.assertEqual(statusOf(transport.value()), 101)
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (0, 1))
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((factory.pendingHandshakeCount, factory.openConnectionCount), (0, 0))

    def test_plainRequestLeavesTable(self) -> None:
        """
        A plain HTTP request also takes its connection out of the table.
        """
        factory, site, _ = self.makeSite()
        channel, transport = self.connect(site)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertEqual(statusOf(transport.value()), 200)
        self.assertEqual(factory.pendingHandshakeCount, 0)
        channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(factory.pendingHandshakeCount, 0)

    def test_silentChannelsDropped(self) -> None:
        """
        Silent channels beyond C{maxPendingHandshakes} push out the oldest,
        which are aborted: at once at twice the bound, else after the
        reactor's turns.
        """
        factory, site, clock = self.makeSite(maxPendingHandshakes=2)
        transports = [self.connect(site, port=n + 1)[1] for n in range(5)]
        self.assertEqual([aborted(t) for t in transports], [True] + [False] * 4)
        clock.advance(0)
        self.assertEqual([aborted(t) for t in transports], [True] * 3 + [False] * 2)
        self.assertEqual(factory.pendingHandshakeCount, 2)

    def test_http2ChannelNotAborted(self) -> None:
        """
        A channel whose connection went to HTTP/2 (another channel serves it
        then) leaves the table when trimmed, without its connection being
        aborted.
        """
        factory, site, clock = self.makeSite(maxPendingHandshakes=1)
        _, firstTransport = self.connect(site, port=1)
        firstTransport.negotiatedProtocol = b"h2"  # type: ignore[attr-defined]
        _, secondTransport = self.connect(site, port=2)
        clock.advance(0)
        self.assertFalse(aborted(firstTransport))
        self.assertFalse(aborted(secondTransport))
        self.assertEqual(factory.pendingHandshakeCount, 1)

    def test_perPeerRefusedWith503(self) -> None:
        """
        Beyond C{maxPendingHandshakesPerPeer}, a channel is answered 503
        C{too_many_pending} at once.
        """
        factory, site, _ = self.makeSite(maxPendingHandshakesPerPeer=1)
        self.connect(site, port=1)
        _, transport = self.connect(site, port=2)
        self.assertEqual(statusOf(transport.value()), 503)
        body = json.loads(transport.value().partition(b"\r\n\r\n")[2])
        self.assertEqual(body["code"], "too_many_pending")
        self.assertEqual(factory.pendingHandshakeCount, 1)
