"""
Tests for L{txws.hub.service.Hub}'s life cycle and embedding: starting,
the graceful stop (1001 to every subscriber, the close timeout, publishes
in flight), key rotation, and a hub mounted in an application's own site.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from tests.support import closeFrame, connectServer, framesIn, upgradeRequest
from tests.test_hub_publish import (
    PublishHarness,
    publishBody,
    request,
    send,
    v2Signed,
)
from tests.test_hub_subscriber import (
    NOW,
    Client,
    HubHarness,
    messages,
    ring,
    token,
)
from tests.typedtrial import SynchronousTestCase
from txws.frames import parseClosePayload
from txws.hmacauth import HMACSite, KeyRing, signSeed
from txws.hub.broker import BrokerUnavailable, History, MemoryBroker, Publication
from txws.hub.resources import ShuttingDown
from txws.hub.subscriber import HubProtocol

NEW_SECRET = "hub-new-secret"


def closeCodes(client: Client) -> list[int]:
    """
    @return: the codes of the Close frames the client received (and
        forget what it received).
    """
    return [parseClosePayload(payload)[0] for _, opcode, payload in client.frames()
            if opcode == 0x8]


class RecordingBroker:
    """
    A L{MemoryBroker} that records its life cycle, and whose publishes can
    be held (a broker on the network taking its time).
    """

    def __init__(self, inner: MemoryBroker) -> None:
        self.inner = inner
        self.events: list[str] = []
        self.holdPublishes = False
        self.heldPublishes: list[tuple[Deferred[Publication], str, bytes]] = []

    def start(
        self,
        deliver: Callable[[Publication], None],
        lost: Optional[Callable[[str, History], None]] = None,
    ) -> Deferred[None]:
        self.events.append("start")
        return self.inner.start(deliver)

    def stop(self) -> Deferred[None]:
        self.events.append("stop")
        return self.inner.stop()

    def subscribe(self, channel: str) -> Deferred[None]:
        return self.inner.subscribe(channel)

    def unsubscribe(self, channel: str) -> Deferred[None]:
        return self.inner.unsubscribe(channel)

    def publish(self, channel: str, data: bytes) -> Deferred[Publication]:
        if not self.holdPublishes:
            return self.inner.publish(channel, data)
        d: Deferred[Publication] = Deferred()
        self.heldPublishes.append((d, channel, data))
        return d

    def releasePublishes(self) -> None:
        """
        Carry out the held publishes and answer them.
        """
        held, self.heldPublishes = self.heldPublishes, []
        for d, channel, data in held:
            self.inner.publish(channel, data).chainDeferred(d)

    def history(
        self, channel: str, since: Optional[int] = None, epoch: Optional[str] = None
    ) -> Deferred[History]:
        return self.inner.history(channel, since, epoch)


class LifeCycleTests(SynchronousTestCase):
    """
    C{startService} starts the broker; C{stopService} closes every
    subscriber with 1001 and fires once they are gone and the broker has
    stopped.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.broker = RecordingBroker(MemoryBroker(self.clock))
        self.harness = HubHarness(self, broker=self.broker, start=False)
        self.hub = self.harness.hub

    def test_start(self) -> None:
        """
        Starting starts the broker, whose deliveries reach subscribers; the
        uptime counts from then.
        """
        self.harness.clock.advance(100)
        self.assertEqual(self.hub.uptime, 0.0)
        self.hub.startService()
        self.addCleanup(self.harness.stop)
        self.assertTrue(self.hub.running)
        self.assertEqual(self.broker.events, ["start"])
        self.harness.clock.advance(2.5)
        self.assertEqual(self.hub.uptime, 2.5)
        client = self.harness.open("channel=news")
        client.received()
        self.assertEqual(self.harness.publish("news", 1)[1], 1)
        self.assertEqual(messages(client.received()), [("news", 1, 1)])

    def test_stopWithoutSubscribers(self) -> None:
        """
        With nobody connected, the stop completes at once, after stopping
        the broker.
        """
        self.hub.startService()
        d = self.hub.stopService()
        self.successResultOf(d)
        self.assertEqual(self.broker.events, ["start", "stop"])
        self.assertFalse(self.hub.running)

    def test_subscribersGet1001(self) -> None:
        """
        Every open subscriber gets a Close frame with 1001; the stop fires
        only once all of them are gone, and only then stops the broker.
        """
        self.hub.startService()
        clients = [self.harness.open("channel=news") for _ in range(3)]
        for client in clients:
            client.received()
        d = self.hub.stopService()
        for client in clients:
            self.assertEqual(closeCodes(client), [1001])
        self.assertNoResult(d)
        for client in clients[:2]:
            client.protocol.dataReceived(closeFrame(1001))
            self.assertTrue(client.transport.disconnecting)
            client.lost()
        self.assertNoResult(d)
        self.assertEqual(self.broker.events, ["start"])
        clients[2].protocol.dataReceived(closeFrame(1001))
        clients[2].lost()
        self.successResultOf(d)
        self.assertEqual(self.broker.events, ["start", "stop"])
        self.assertEqual(self.hub.factory.connectionCount, 0)
        self.assertEqual(self.hub.channels.subscriptionCount, 0)

    def test_closeTimeout(self) -> None:
        """
        A subscriber that never answers the Close is aborted after the
        close timeout, and then the stop completes.
        """
        self.hub.startService()
        quiet = self.harness.open("channel=news")
        polite = self.harness.open("channel=news")
        d = self.hub.stopService()
        polite.protocol.dataReceived(closeFrame(1001))
        polite.lost()
        timeout = self.hub.factory.options.closeHandshakeTimeout
        self.assertGreater(timeout, 0)
        self.harness.clock.advance(timeout - 0.5)
        self.assertFalse(quiet.transport.disconnecting)
        self.assertNoResult(d)
        self.harness.clock.advance(1)
        self.assertTrue(quiet.transport.disconnecting)
        quiet.lost()
        self.successResultOf(d)
        self.assertEqual(self.broker.events, ["start", "stop"])

    def test_handshakingConnectionDropped(self) -> None:
        """
        A connection still in its opening handshake is dropped by the stop
        (no Close frame: it never opened), and then the stop completes.
        """
        self.hub.startService()
        protocol, transport = connectServer(self.hub.factory)
        transport.write(upgradeRequest("/ws?channel=news")[:20])
        transport.clear()
        d = self.hub.stopService()
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        assert isinstance(protocol, HubProtocol)
        Client(protocol, transport).lost()
        self.successResultOf(d)

    def test_publishesInFlightFinish(self) -> None:
        """
        A publish the broker has not answered when the stop begins is
        answered (200, not 503) before the stop completes; the broker is
        stopped only after it.
        """
        self.hub.startService()
        site = self.hub.site()
        site.reactor = self.harness.clock
        self.broker.holdPublishes = True
        body = publishBody("news", 1)
        _, transport = send(site, b"POST", b"/publish", body,
                            v2Signed(b"POST", b"/publish", body))
        self.assertEqual(transport.value(), b"")
        d = self.hub.stopService()
        self.assertNoResult(d)
        self.assertEqual(self.broker.events, ["start"])
        self.broker.releasePublishes()
        answer = transport.value()
        self.assertTrue(answer.startswith(b"HTTP/1.1 200 "), answer)
        self.successResultOf(d)
        self.assertEqual(self.broker.events, ["start", "stop"])

    def test_publisherGoneBeforeAnswer(self) -> None:
        """
        A publisher that disconnects before the broker answers: the
        publication still counts, nothing fails, and a stop still
        completes.
        """
        self.hub.startService()
        site = self.hub.site()
        site.reactor = self.harness.clock
        self.broker.holdPublishes = True
        body = publishBody("news", 1)
        channel, transport = send(site, b"POST", b"/publish", body,
                                  v2Signed(b"POST", b"/publish", body))
        channel.connectionLost(Failure(ConnectionDone()))
        d = self.hub.stopService()
        self.broker.releasePublishes()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.hub.published, 1)
        self.successResultOf(d)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_publishDuringStopRefused(self) -> None:
        """
        A publish that arrives while the stop waits for another is refused
        with 503, and does not hold the stop up.
        """
        self.hub.startService()
        self.broker.holdPublishes = True
        first = self.hub.publish("news", b"1")
        d = self.hub.stopService()
        late = self.hub.publish("news", b"2")
        self.failureResultOf(late, ShuttingDown)
        self.broker.releasePublishes()
        self.successResultOf(first)
        self.successResultOf(d)

    def test_newSubscriberDuringStop(self) -> None:
        """
        A WebSocket connection that arrives while the hub is stopping is not
        left open (refused, or closed with 1001), and does not keep the stop
        from completing once the earlier subscribers are gone.
        """
        self.hub.startService()
        early = self.harness.open("channel=news")
        d = self.hub.stopService()
        protocol, transport = self.harness.connect("channel=news")
        late = Client(protocol, transport)
        answer = transport.value()
        if answer.startswith(b"HTTP/1.1 101 "):
            transport.clear()
            transport.write(answer.partition(b"\r\n\r\n")[2])
            self.assertIn(1001, closeCodes(late), "a subscriber opened during the stop stays open")
            protocol.dataReceived(closeFrame(1001))
        else:
            self.assertTrue(answer.startswith(b"HTTP/1.1 503 "), answer)
        late.lost()
        early.protocol.dataReceived(closeFrame(1001))
        early.lost()
        self.successResultOf(d)

    def test_restart(self) -> None:
        """
        A stopped hub can be started again and publishes again.
        """
        self.hub.startService()
        self.successResultOf(self.hub.stopService())
        self.hub.startService()
        self.addCleanup(self.harness.stop)
        self.assertFalse(self.hub.stopping)
        client = self.harness.open("channel=news")
        client.received()
        self.assertEqual(self.harness.publish("news", 1)[1], 1)


class _StoppableStore:
    """
    A replay store that remembers everything and records being stopped.
    """

    def __init__(self) -> None:
        self.stopped = 0

    def remember(self, tokens: object, lifetime: float) -> Deferred[bool]:
        return succeed(True)

    def stop(self) -> Deferred[None]:
        self.stopped += 1
        return succeed(None)


class _UnreachableBroker(RecordingBroker):
    """
    A broker whose start fails, as a broker on the network does when its
    first attempt cannot reach it.
    """

    def __init__(self, inner: MemoryBroker, error: Exception) -> None:
        super().__init__(inner)
        self.error = error

    def start(
        self,
        deliver: Callable[[Publication], None],
        lost: Optional[Callable[[str, History], None]] = None,
    ) -> Deferred[None]:
        self.inner.start(deliver)
        return fail(self.error)


class BrokerAndStoreTests(SynchronousTestCase):
    """
    The hub's life cycle with a broker and replay store on the network.
    """

    def test_replayStoreStopped(self) -> None:
        """
        Stopping the hub stops a replay store that can be stopped.
        """
        store = _StoppableStore()
        harness = HubHarness(self, replayStore=store)
        self.successResultOf(harness.hub.stopService())
        self.assertEqual(store.stopped, 1)

    def test_brokerUnreachableAtStart(self) -> None:
        """
        A broker that cannot be reached at start is no error: the hub runs
        and logs no traceback (the broker says so itself and retries).
        """
        broker = _UnreachableBroker(MemoryBroker(Clock()), BrokerUnavailable("not yet"))
        harness = HubHarness(self, broker=broker)
        self.assertTrue(harness.hub.running)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_brokerBrokenAtStart(self) -> None:
        """
        Any other failure to start is logged, with its traceback.
        """
        broker = _UnreachableBroker(MemoryBroker(Clock()), RuntimeError("a bug"))
        HubHarness(self, broker=broker)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class KeyRotationTests(SynchronousTestCase):
    """
    C{setKeyRing} replaces the keys of publish requests and channel tokens
    at run time, for resource trees made before and after.
    """

    def test_publishKeys(self) -> None:
        """
        After the rotation, requests signed with the old key are refused and
        requests signed with the new one accepted, in both schemes and
        through a resource made before and one made after.
        """
        harness = PublishHarness(self)
        before = harness.site
        harness.hub.setKeyRing(KeyRing({"k2": NEW_SECRET}))
        after = harness.hub.site()
        after.reactor = harness.clock
        for n, site in enumerate((before, after)):
            old = publishBody("news", f"old-{n}")
            self.assertEqual(request(site, b"POST", b"/publish", old,
                                     v2Signed(b"POST", b"/publish", old)).status, 401)
            seed = dict(signSeed(b"hub-test-secret", int(NOW), old))
            self.assertEqual(request(site, b"POST", b"/publish", old, seed).status, 401)
            new = publishBody("news", f"new-{n}")
            self.assertEqual(request(site, b"POST", b"/publish", new,
                                     v2Signed(b"POST", b"/publish", new, NEW_SECRET, "k2")).status,
                             200)
            newSeed = publishBody("news", f"new-seed-{n}")
            seed = dict(signSeed(NEW_SECRET.encode(), int(NOW), newSeed))
            self.assertEqual(request(site, b"POST", b"/publish", newSeed, seed).status, 200)

    def test_tokenKeys(self) -> None:
        """
        After the rotation, tokens signed with the old key are
        C{token_invalid}, tokens signed with the new key open the channel.
        """
        harness = HubHarness(self)
        oldToken = token("private-x")
        harness.hub.setKeyRing(KeyRing({"k2": NEW_SECRET}))
        client = harness.open()
        client.send({"type": "subscribe", "channel": "private-x", "token": oldToken})
        [answer] = client.received()
        self.assertEqual(answer["code"], "token_invalid")
        newToken = token("private-x", keyRing=KeyRing({"k2": NEW_SECRET}))
        client.send({"type": "subscribe", "channel": "private-x", "token": newToken})
        self.assertEqual([a["type"] for a in client.received()], ["subscribed"])
        status, _, _ = harness.refused(f"channel=private-x&token={oldToken}")
        self.assertEqual(status, 403)
        harness.open(f"channel=private-x&token={newToken}")

    def test_keyRingAttribute(self) -> None:
        """
        The hub's C{keyRing} is the new ring.
        """
        harness = HubHarness(self)
        self.assertEqual(dict(harness.hub.keyRing), dict(ring()))
        new = KeyRing({"k2": NEW_SECRET})
        harness.hub.setKeyRing(new)
        self.assertIs(harness.hub.keyRing, new)


class EmbeddingTests(SynchronousTestCase):
    """
    C{hub.resource()} mounted under a child of an application's own
    resource, in the application's own L{HMACSite} (the use documented in
    L{txws.hub}): WebSocket, publish and health all work below the path.
    """

    def setUp(self) -> None:
        self.harness = HubHarness(self)
        self.hub = self.harness.hub
        root = Resource()
        app = Resource()
        root.putChild(b"app", app)
        app.putChild(b"realtime", self.hub.resource())
        self.site = HMACSite(root, reactor=self.harness.clock)

    def subscribe(self, query: str) -> Client:
        """
        Open a WebSocket subscriber through the site.
        """
        http = self.site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40001))  # type: ignore[no-untyped-call]
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
            peerAddress=IPv4Address("TCP", "127.0.0.1", 40001),
        )
        http.makeConnection(transport)
        http.dataReceived(upgradeRequest("/app/realtime/ws?" + query))
        head, _, rest = transport.value().partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        [protocol] = self.hub.factory.connections()
        transport.clear()
        transport.write(rest)
        assert isinstance(protocol, HubProtocol)
        return Client(protocol, transport)

    def test_webSocketBelowAPath(self) -> None:
        """
        A subscriber connects at C{/app/realtime/ws} and gets its answer.
        """
        client = self.subscribe("channel=news")
        [answer] = client.received()
        self.assertEqual((answer["type"], answer["channel"]), ("subscribed", "news"))

    def test_publishBelowAPath(self) -> None:
        """
        A request signed for C{/app/realtime/publish} publishes to the
        subscribers connected through the site.
        """
        client = self.subscribe("channel=news")
        client.received()
        target = b"/app/realtime/publish"
        body = publishBody("news", {"embedded": True})
        response = request(self.site, b"POST", target, body, v2Signed(b"POST", target, body))
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json(), {"channel": "news", "seq": 1, "delivered": 1})
        self.assertEqual(messages(client.received()), [("news", 1, {"embedded": True})])

    def test_healthAndPageBelowAPath(self) -> None:
        """
        The health report and the page are served below the path too.
        """
        self.subscribe("channel=news")
        report = request(self.site, b"GET", b"/app/realtime/healthz").json()
        self.assertEqual((report["connections"], report["subscriptions"]), (1, 1))
        page = request(self.site, b"GET", b"/app/realtime/")
        self.assertEqual(page.status, 200)
        self.assertEqual(request(self.site, b"GET", b"/app/other").status, 404)

    def test_stopClosesSiteSubscribers(self) -> None:
        """
        Subscribers connected through the application's site get 1001 when
        the hub stops.
        """
        client = self.subscribe("channel=news")
        client.received()
        d = self.hub.stopService()
        frames = framesIn(client.transport.value())
        self.assertEqual([parseClosePayload(p)[0] for _, op, p in frames if op == 0x8], [1001])
        client.protocol.dataReceived(closeFrame(1001))
        client.lost()
        self.successResultOf(d)

