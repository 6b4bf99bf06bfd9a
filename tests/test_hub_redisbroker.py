"""
Tests for L{txws.hub.redisbroker}, against real C{redis-server} processes
(L{tests.redissupport}): the broker contract (L{tests.broker_contract})
unchanged, then what only a shared broker does: several nodes on one Redis,
the age bound in real time, Redis killed and started again (with its data
and without), credentials and databases.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Coroutine
from io import BytesIO
from typing import Any, Optional

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.iweb import IAgent
from zope.interface import implementer

from tests.broker_contract import Advance, BrokerContractTests
from tests.hubsupport import TxwsSubscriber
from tests.redissupport import startRedis
from tests.tlssupport import TestAuthority
from tests.typedtrial import TestCase
from txws.hmacauth import HMACAgent, KeyRing
from txws.hmacauth.client import UnexpectedStatus, postBody
from txws.hub.broker import Broker, BrokerUnavailable, History, Publication
from txws.hub.brokerurl import RedisSettings
from txws.hub.redisbroker import RedisBroker
from txws.hub.redisreplay import RedisReplayStore
from txws.hub.service import Hub


def inlineCallbacksTest(
    test: Callable[[Any], Coroutine[Any, Any, None]],
) -> Callable[[Any], Deferred[None]]:
    """
    Run a coroutine test method as a Deferred (for trial's C{TestCase}).
    """

    @functools.wraps(test)
    def run(self: Any) -> Deferred[None]:
        return Deferred.fromCoroutine(test(self))

    return run


class RedisBrokerContractTests(BrokerContractTests, TestCase):
    """
    L{RedisBroker} keeps the broker contract, in real time, on a fresh
    Redis per test.
    """

    epochPerBroker = False
    timeout = 30

    def setUp(self) -> None:
        self.redis = startRedis(self)
        self.brokers: list[RedisBroker] = []

    def makeBroker(self, historySize: int, historyAge: float) -> tuple[Broker, Optional[Advance]]:
        broker = RedisBroker(
            self.redis.settings(), reactor, historySize=historySize, historyAge=historyAge
        )
        self.brokers.append(broker)
        self.addCleanup(broker.stop)
        return broker, None

    def drive(self, test: Coroutine[Any, Any, None]) -> object:
        return Deferred.fromCoroutine(test)

    def settle(self) -> Deferred[None]:
        d: Deferred[Any] = gatherResults([b.barrier() for b in self.brokers])
        d.addCallback(lambda _: None)
        return d


async def waitFor(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """
    Wait in real time until C{predicate()} is true.

    @raise AssertionError: if it is not within C{timeout} seconds.
    """
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"not within {timeout} s: {what or predicate}")
        await deferLater(reactor, 0.02, lambda: None)


async def unavailable(d: Deferred[Any]) -> BrokerUnavailable:
    """
    @return: the L{BrokerUnavailable} C{d} fails with.
    @raise AssertionError: if it succeeds.
    """
    try:
        await d
    except BrokerUnavailable as e:
        return e
    raise AssertionError("did not fail with BrokerUnavailable")


async def sleep(seconds: float) -> None:
    """
    Let C{seconds} pass for real.
    """
    await deferLater(reactor, seconds, lambda: None)


class _Node:
    """
    A started L{RedisBroker} and what it delivered and reported lost.
    """

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self.delivered: list[Publication] = []
        self.lost: list[tuple[str, History]] = []

    def sequences(self, channel: str = "news") -> list[int]:
        return [p.sequence for p in self.delivered if p.channel == channel]


class RedisBrokerTests(TestCase):
    """
    What a broker shared through Redis does beyond the contract.
    """

    timeout = 60

    def setUp(self) -> None:
        self.redis = startRedis(self)
        self.events: list[dict[str, Any]] = []

        events = self.events

        @implementer(ILogObserver)
        class Observe:
            def __call__(self, event: dict[str, Any]) -> None:
                if event.get("log_namespace") == "txws.hub.redisbroker":
                    events.append(event)

        observe = Observe()
        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def said(self, words: str) -> int:
        """
        @return: how many of the broker's log events contained C{words}.
        """
        return sum(words in formatEvent(e) for e in self.events)

    async def node(
        self, settings: Optional[RedisSettings] = None, **options: Any
    ) -> _Node:
        broker = RedisBroker(settings or self.redis.settings(), reactor, **options)
        node = _Node(broker)
        self.addCleanup(broker.stop)
        await broker.start(node.delivered.append, lambda c, h: node.lost.append((c, h)))
        return node

    async def settled(self, *nodes: _Node) -> None:
        for node in nodes:
            await node.broker.barrier()

    @inlineCallbacksTest
    async def test_crossNodeDeliveryAndOrder(self) -> None:
        """
        Two nodes on one Redis: what either publishes reaches both, once,
        with one numbering, in order, over 200 publications (100 from each,
        not waiting for each other).
        """
        one, other = await self.node(), await self.node()
        await one.broker.subscribe("news")
        await other.broker.subscribe("news")
        publishing = []
        for i in range(100):
            publishing.append(one.broker.publish("news", b'"a%d"' % i))
            publishing.append(other.broker.publish("news", b'"b%d"' % i))
        published = await gatherResults(publishing)
        self.assertEqual(sorted(p.sequence for p in published), list(range(1, 201)))
        self.assertEqual(len({p.epoch for p in published}), 1)
        await waitFor(lambda: len(one.delivered) == 200 and len(other.delivered) == 200)
        await self.settled(one, other)
        byNumber = sorted(published, key=lambda p: p.sequence)
        self.assertEqual(one.delivered, byNumber)
        self.assertEqual(other.delivered, byNumber)
        self.assertEqual((one.lost, other.lost), ([], []))

    @inlineCallbacksTest
    async def test_resumeOnAnotherNode(self) -> None:
        """
        History published through one node is read whole through another:
        a subscriber resuming elsewhere gets what it missed.
        """
        one, other = await self.node(), await self.node()
        published = [await one.broker.publish("news", b"%d" % i) for i in range(5)]
        history = await other.broker.history("news", 2, published[0].epoch)
        self.assertTrue(history.complete)
        self.assertEqual(list(history.publications), published[2:])
        self.assertEqual((history.epoch, history.latest), (published[0].epoch, 5))

    @inlineCallbacksTest
    async def test_keysShareAHashTag(self) -> None:
        """
        A channel's keys carry the channel as a hash tag (one Redis Cluster
        slot), under the prefix.
        """
        node = await self.node(prefix="hub1:")
        await node.broker.publish("news", b"1")
        keys = self.redis.command("KEYS", "*")
        self.assertIn(b"hub1:{news}:meta", keys)
        self.assertIn(b"hub1:{news}:log", keys)

    @inlineCallbacksTest
    async def test_prefixesApart(self) -> None:
        """
        Brokers with different prefixes on one database number apart.
        """
        one = await self.node(prefix="a:")
        other = await self.node(prefix="b:")
        await one.broker.publish("news", b"1")
        self.assertEqual((await other.broker.history("news")).latest, 0)

    @inlineCallbacksTest
    async def test_ageInRealTime(self) -> None:
        """
        Entries older than the age are not in history, on Redis's clock;
        a subscribed channel keeps its epoch past the age; a channel nobody
        subscribes to and nobody publishes to vanishes and starts a new
        epoch.
        """
        node = await self.node(historyAge=1.0)
        await node.broker.subscribe("news")
        first = await node.broker.publish("news", b"1")
        await sleep(0.6)
        second = await node.broker.publish("news", b"2")
        await sleep(0.6)
        history = await node.broker.history("news", 0, first.epoch)
        self.assertFalse(history.complete)
        history = await node.broker.history("news", 1, first.epoch)
        self.assertEqual((history.complete, list(history.publications)), (True, [second]))
        await sleep(1.2)
        history = await node.broker.history("news", 1, first.epoch)
        self.assertFalse(history.complete)
        self.assertEqual((history.epoch, history.latest), (first.epoch, 2))
        idle = await node.broker.publish("idle", b"1")
        await sleep(1.3)
        self.assertNotEqual((await node.broker.history("idle")).epoch, idle.epoch)
        self.assertEqual((await node.broker.history("news")).epoch, first.epoch)

    @inlineCallbacksTest
    async def test_missedWhileDisconnectedDelivered(self) -> None:
        """
        Publications made while a node's pub/sub connection was down are
        delivered, in order and once, when it is back, from the stream.
        """
        slow = await self.node(minRetryDelay=1.0, maxRetryDelay=1.0)
        publisher = await self.node()
        await slow.broker.subscribe("news")
        await publisher.broker.publish("news", b"1")
        await waitFor(lambda: slow.sequences() == [1])
        self.redis.command("CLIENT", "KILL", "TYPE", "pubsub")
        await waitFor(lambda: not slow.broker.available, what="slow notices")
        for i in range(2, 7):
            await publisher.broker.publish("news", b"%d" % i)
        await waitFor(lambda: slow.broker.available, what="slow reconnects")
        await waitFor(lambda: len(slow.delivered) == 6)
        await publisher.broker.publish("news", b"7")
        await waitFor(lambda: len(slow.delivered) == 7)
        await self.settled(slow)
        self.assertEqual(slow.sequences(), list(range(1, 8)))
        self.assertEqual([p.data for p in slow.delivered], [b"%d" % i for i in range(1, 8)])
        self.assertEqual(slow.lost, [])

    @inlineCallbacksTest
    async def test_missedBeyondHistoryLost(self) -> None:
        """
        When the stream no longer holds all a node missed, the C{lost}
        callback tells it the channel's position, and deliveries go on
        after it.
        """
        slow = await self.node(historySize=2, minRetryDelay=1.0, maxRetryDelay=1.0)
        publisher = await self.node(historySize=2)
        await slow.broker.subscribe("news")
        self.redis.command("CLIENT", "KILL", "TYPE", "pubsub")
        await waitFor(lambda: not slow.broker.available)
        published = [await publisher.broker.publish("news", b"%d" % i) for i in range(5)]
        await waitFor(lambda: slow.lost != [], what="lost is called")
        [(channel, history)] = slow.lost
        self.assertEqual(channel, "news")
        self.assertEqual((history.epoch, history.latest, history.complete),
                         (published[0].epoch, 5, False))
        await publisher.broker.publish("news", b"6")
        await waitFor(lambda: slow.sequences() == [6])

    @inlineCallbacksTest
    async def test_redisRestartedWithItsData(self) -> None:
        """
        Redis killed: publish, subscribe and history fail with
        L{BrokerUnavailable}, the loss is logged once per node however many
        attempts follow; Redis started again on its data: every node
        reconnects by itself (logged once), the numbering goes on in the
        same epoch, and what was published meanwhile reaches everyone.
        """
        one = await self.node(maxRetryDelay=0.2)
        other = await self.node(maxRetryDelay=2.0)
        await one.broker.subscribe("news")
        await other.broker.subscribe("news")
        published = [await one.broker.publish("news", b"%d" % i) for i in range(3)]
        await waitFor(lambda: len(other.delivered) == 3)
        self.redis.kill()
        await waitFor(lambda: not one.broker.available and not other.broker.available)
        for broker in (one.broker, other.broker):
            await self.assertFailure(broker.publish("news", b"x"), BrokerUnavailable)
            await self.assertFailure(broker.history("news"), BrokerUnavailable)
            await self.assertFailure(broker.subscribe("other"), BrokerUnavailable)
        await sleep(1.5)  # several attempts, none logged
        self.assertEqual(self.said("lost Redis"), 2)
        self.redis.start()
        await waitFor(lambda: one.broker.available, what="one reconnects")
        late = await one.broker.publish("news", b"late")
        self.assertEqual((late.epoch, late.sequence), (published[0].epoch, 4))
        await waitFor(lambda: other.broker.available, what="other reconnects")
        await waitFor(lambda: len(one.delivered) == 4 and len(other.delivered) == 4)
        await self.settled(one, other)
        self.assertEqual(one.sequences(), [1, 2, 3, 4])
        self.assertEqual(other.sequences(), [1, 2, 3, 4])
        self.assertEqual((one.lost, other.lost), ([], []))
        self.assertEqual(self.said("lost Redis"), 2)
        self.assertEqual(self.said("reconnected to Redis"), 2)
        await one.broker.subscribe("other")

    @inlineCallbacksTest
    async def test_redisRestartedWithoutData(self) -> None:
        """
        Redis started again with its data gone: each node learns through
        C{lost} that the channel is in a new epoch (the same for all), and
        what is published next is delivered in that epoch.
        """
        one = await self.node(maxRetryDelay=0.2)
        other = await self.node(maxRetryDelay=0.2)
        await one.broker.subscribe("news")
        await other.broker.subscribe("news")
        old = [await one.broker.publish("news", b"%d" % i) for i in range(3)]
        await waitFor(lambda: len(other.delivered) == 3)
        self.redis.kill()
        self.redis.wipe()
        self.redis.start()
        await waitFor(lambda: one.lost != [] and other.lost != [], what="lost is called")
        [(_, first)], [(_, second)] = one.lost, other.lost
        self.assertEqual(first.epoch, second.epoch)
        self.assertNotEqual(first.epoch, old[0].epoch)
        self.assertEqual((first.latest, first.complete), (0, False))
        new = await other.broker.publish("news", b"new")
        self.assertEqual((new.epoch, new.sequence), (first.epoch, 1))
        await waitFor(lambda: len(one.delivered) == 4 and len(other.delivered) == 4)
        self.assertEqual([p.data for p in one.delivered], [b"0", b"1", b"2", b"new"])
        self.assertEqual(one.delivered[-1], new)

    @inlineCallbacksTest
    async def test_unreachableAtStart(self) -> None:
        """
        With no Redis there, C{start} fails with L{BrokerUnavailable}, it is
        logged once, and the broker connects by itself once Redis is there.
        """
        self.redis.kill()
        broker = RedisBroker(self.redis.settings(), reactor, maxRetryDelay=0.2)
        self.addCleanup(broker.stop)
        delivered: list[Publication] = []
        await self.assertFailure(broker.start(delivered.append), BrokerUnavailable)
        await sleep(1.0)
        self.assertEqual(self.said("cannot reach Redis"), 1)
        self.redis.start()
        await waitFor(lambda: broker.available)
        await broker.subscribe("news")
        await broker.publish("news", b"1")
        await waitFor(lambda: len(delivered) == 1)

    @inlineCallbacksTest
    async def test_subscribeWhileFirstConnecting(self) -> None:
        """
        A subscription made while the first connections are still being
        made (here: pub/sub up, commands not yet) waits for them instead of
        failing.
        """
        broker = RedisBroker(self.redis.settings(), reactor)
        self.addCleanup(broker.stop)
        pubsub = broker._pubsub
        pubsub.start()
        await waitFor(lambda: pubsub.up)
        subscribing = broker.subscribe("news")
        delivered: list[Publication] = []
        await broker.start(delivered.append)
        await subscribing
        published = await broker.publish("news", b"1")
        await waitFor(lambda: delivered == [published])

    @inlineCallbacksTest
    async def test_largeRepliesAndMessages(self) -> None:
        """
        A history of many entries comes back whole, in one reply, and a
        large publication is delivered intact (the reply parser loops
        rather than recursing or waiting for the next reactor iteration).
        """
        node = await self.node(historySize=1000)
        await node.broker.subscribe("news")
        published = await gatherResults(
            [node.broker.publish("news", b'"%d"' % i) for i in range(600)]
        )
        history = await node.broker.history("news", 0, published[0].epoch)
        self.assertTrue(history.complete)
        self.assertEqual(list(history.publications), published)
        big = b'"' + b"x" * (1 << 20) + b'"'
        last = await node.broker.publish("news", big)
        await waitFor(lambda: len(node.delivered) == 601)
        self.assertEqual(node.delivered, [*published, last])
        self.assertEqual(node.delivered[-1].data, big)

    @inlineCallbacksTest
    async def test_password(self) -> None:
        """
        A server that requires a password: the right one connects; a wrong
        one fails without the password in the error or the log.
        """
        self.redis.kill()
        server = startRedis(self, password="s3cret-pass")
        good = await self.node(server.settings())
        await good.broker.publish("news", b"1")
        bad = RedisBroker(server.settings(password="wrong-guess"), reactor)
        self.addCleanup(bad.stop)
        try:
            await bad.start(lambda p: None)
        except BrokerUnavailable as e:
            self.assertIn("WRONGPASS", str(e))
            self.assertNotIn("wrong-guess", str(e))
            self.assertNotIn("s3cret", str(e))
        else:
            self.fail("a wrong password was accepted")
        for event in self.events:
            self.assertNotIn("wrong-guess", formatEvent(event))
            self.assertNotIn("s3cret", formatEvent(event))

    @inlineCallbacksTest
    async def test_databasesApart(self) -> None:
        """
        Brokers on different database numbers share nothing.
        """
        one = await self.node(self.redis.settings(db=1))
        other = await self.node(self.redis.settings(db=2))
        await one.broker.publish("news", b"1")
        self.assertEqual((await other.broker.history("news")).latest, 0)
        self.assertEqual((await one.broker.history("news")).latest, 1)


class RedisBrokerTLSTests(TestCase):
    """
    C{rediss://}: TLS to Redis, the server's certificate verified.
    """

    timeout = 30

    @inlineCallbacksTest
    async def test_verified(self) -> None:
        """
        A server whose certificate the CA file vouches for, for the host
        connected to, serves the broker.
        """
        files = TestAuthority().writeServerFiles(self)
        server = startRedis(self, tls=files)
        broker = RedisBroker(server.settings(), reactor)
        self.addCleanup(broker.stop)
        delivered: list[Publication] = []
        await broker.start(delivered.append)
        await broker.subscribe("news")
        published = await broker.publish("news", b"1")
        await waitFor(lambda: delivered == [published])

    @inlineCallbacksTest
    async def test_otherAuthorityRefused(self) -> None:
        """
        A certificate from a CA other than the configured one is refused.
        """
        server = startRedis(self, tls=TestAuthority().writeServerFiles(self))
        other = TestAuthority().writeCAFile(self)
        broker = RedisBroker(dataclasses.replace(server.settings(), caFile=other), reactor)
        self.addCleanup(broker.stop)
        error = await unavailable(broker.start(lambda p: None))
        self.assertIn("certificate verify failed", str(error))

    @inlineCallbacksTest
    async def test_otherNameRefused(self) -> None:
        """
        A certificate for another host name is refused.
        """
        files = TestAuthority().writeServerFiles(self, ("other.example",), ())
        server = startRedis(self, tls=files)
        broker = RedisBroker(server.settings(), reactor)
        self.addCleanup(broker.stop)
        error = await unavailable(broker.start(lambda p: None))
        self.assertIn("Mismatch", str(error))


#: The key both hubs and the publisher share.
HUB_KEYS = {"k1": "cluster-secret-" + "x" * 30}


class HubsOnOneRedisTests(TestCase):
    """
    Two hubs (L{txws.hub.service.Hub}, in this process, each on its own
    port of 127.0.0.1) with a L{RedisBroker} and a L{RedisReplayStore} each
    on one Redis: the registry, the subscriber protocol and C{/publish}
    over a cluster.
    """

    timeout = 60

    def setUp(self) -> None:
        self.redis = startRedis(self)

    def startHub(self) -> str:
        """
        @return: the base URL of a new started hub.
        """
        broker = RedisBroker(self.redis.settings(), reactor)
        store = RedisReplayStore(self.redis.settings(), reactor)
        hub = Hub(KeyRing(HUB_KEYS), broker=broker, replayStore=store, reactor=reactor)
        hub.startService()
        port = reactor.listenTCP(0, hub.site(), interface="127.0.0.1")  # type: ignore[arg-type]
        self.addCleanup(store.stop)
        self.addCleanup(hub.stopService)
        self.addCleanup(port.stopListening)
        return f"127.0.0.1:{port.getHost().port}"  # type: ignore[attr-defined]

    async def publish(self, where: str, channel: str, data: object) -> tuple[int, Any]:
        agent = HMACAgent(Agent(reactor), KeyRing(HUB_KEYS), "k1", reactor=reactor)
        body = json.dumps({"channel": channel, "data": data}).encode()
        try:
            result = await postBody(agent, f"http://{where}/publish", body)
        except UnexpectedStatus as e:
            result = e.result
        return result.code, json.loads(result.body)

    async def subscriber(self, where: str, query: str) -> TxwsSubscriber:
        subscriber = await TxwsSubscriber.open(f"ws://{where}/ws?{query}")
        self.addCleanup(subscriber.close)
        return subscriber

    @inlineCallbacksTest
    async def test_crossNodeDeliveryResumeAndReplay(self) -> None:
        """
        A publish on one hub reaches subscribers on both, numbered once; a
        subscriber that moves to the other hub resumes from Redis; the same
        signed request sent to the other hub is refused as a replay.
        """
        a, b = self.startHub(), self.startHub()
        onA = await self.subscriber(a, "channel=news")
        onB = await self.subscriber(b, "channel=news")
        for subscriber in (onA, onB):
            answer = await subscriber.nextJSON()
            self.assertEqual((answer["type"], answer["seq"]), ("subscribed", 0))
        epoch = answer["epoch"]
        for i in range(1, 4):
            code, answer = await self.publish(a if i % 2 else b, "news", {"n": i})
            self.assertEqual((code, answer["seq"]), (200, i))
        for subscriber in (onA, onB):
            for i in range(1, 4):
                self.assertEqual(
                    await subscriber.nextJSON(),
                    {"type": "message", "channel": "news", "seq": i, "data": {"n": i}},
                )
        onB.close()
        await self.publish(a, "news", {"n": 4})
        moved = await self.subscriber(a, "")
        moved.sendJSON({"type": "subscribe", "channel": "news", "since": 1, "epoch": epoch})
        answer = await moved.nextJSON()
        self.assertEqual((answer["recovered"], answer["seq"], answer["epoch"]), (True, 4, epoch))
        self.assertEqual([(await moved.nextJSON())["seq"] for _ in range(3)], [2, 3, 4])

        sent: list[tuple[bytes, Any]] = []

        @implementer(IAgent)
        class Recording:
            def request(
                self, method: bytes, uri: bytes, headers: Any = None, bodyProducer: Any = None
            ) -> Deferred[Any]:
                sent.append((method, headers))
                return Agent(reactor).request(method, uri, headers, bodyProducer)

        body = json.dumps({"channel": "news", "data": "once"}).encode()
        signer = HMACAgent(Recording(), KeyRing(HUB_KEYS), "k1", reactor=reactor)
        first = await postBody(signer, f"http://{a}/publish", body)
        self.assertEqual(first.code, 200)
        [(method, headers)] = sent
        replayed = await Agent(reactor).request(
            method, f"http://{b}/publish".encode(), headers, FileBodyProducer(BytesIO(body))
        )
        content = json.loads(await readBody(replayed))
        self.assertEqual((replayed.code, content["code"]), (401, "replayed"))

    @inlineCallbacksTest
    async def test_redisDown(self) -> None:
        """
        With Redis down a hub keeps its subscribers and refuses publishes
        with 503 (the replay store fails closed first); once Redis is back
        publishing and delivery resume by themselves.
        """
        a, b = self.startHub(), self.startHub()
        onB = await self.subscriber(b, "channel=news")
        await onB.nextJSON()
        self.redis.kill()
        code, answer = await self.publish(a, "news", 1)
        self.assertEqual((code, answer["code"]), (503, "replay_store_unavailable"))
        self.flushLoggedErrors(BrokerUnavailable)
        self.redis.start()

        async def publishes() -> bool:
            code, _ = await self.publish(a, "news", 2)
            self.flushLoggedErrors(BrokerUnavailable)
            return code == 200

        deadline = reactor.seconds() + 15
        while not await publishes():
            self.assertLess(reactor.seconds(), deadline)
            await sleep(0.2)
        message = await onB.nextJSON()
        self.assertEqual((message["seq"], message["data"]), (1, 2))
