"""
Tests for L{txws.hub.redisreplay}: the HMAC replay store in a real
C{redis-server} (L{tests.redissupport}), alone and behind two HMAC guards
standing for two nodes.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred

from tests.hmac_support.resources import VECTOR_BODY
from tests.redissupport import startRedis
from tests.test_hmac_guard import Answer, GuardHarness, seedHeaders, v2Headers
from tests.test_hub_redisbroker import inlineCallbacksTest, sleep, waitFor
from tests.typedtrial import TestCase
from txws.hmacauth.replay import ReplayStore, ReplayStoreUnavailable
from txws.hub.redisreplay import RedisReplayStore


class RedisReplayStoreTests(TestCase):
    """
    L{RedisReplayStore} remembers tokens in Redis for every node.
    """

    timeout = 30

    def setUp(self) -> None:
        self.redis = startRedis(self)

    def store(self, **options: Any) -> RedisReplayStore:
        store = RedisReplayStore(self.redis.settings(), reactor, **options)
        self.addCleanup(store.stop)
        return store

    def test_isAReplayStore(self) -> None:
        """
        It has the interface the guard takes.
        """
        store: ReplayStore = self.store()
        self.assertTrue(callable(store.remember))

    @inlineCallbacksTest
    async def test_rememberedOnOneNodeRefusedOnAnother(self) -> None:
        """
        Tokens remembered through one store are seen through another.
        """
        one, other = self.store(), self.store()
        self.assertTrue(await one.remember(["sig-a"], 60))
        self.assertFalse(await other.remember(["sig-a"], 60))
        self.assertFalse(await one.remember(["sig-a"], 60))
        self.assertTrue(await other.remember(["sig-b"], 60))

    @inlineCallbacksTest
    async def test_allOrNothing(self) -> None:
        """
        A request with a token already seen records none of its tokens;
        one with only new tokens records them all.
        """
        store = self.store()
        self.assertTrue(await store.remember(["a", "b", "a"], 60))
        self.assertFalse(await store.remember(["c", "b"], 60))
        self.assertTrue(await store.remember(["c"], 60))
        self.assertFalse(await store.remember(["a"], 60))

    @inlineCallbacksTest
    async def test_expiry(self) -> None:
        """
        Tokens are kept for their lifetime (C{PX}), then accepted again.
        """
        store = self.store()
        self.assertTrue(await store.remember(["short"], 0.4))
        ttl = int(self.redis.command("PTTL", store.key("short")).strip()[1:])
        self.assertTrue(0 < ttl <= 400, ttl)
        self.assertFalse(await store.remember(["short"], 0.4))
        await sleep(0.6)
        self.assertTrue(await store.remember(["short"], 0.4))

    @inlineCallbacksTest
    async def test_keysHashed(self) -> None:
        """
        Redis holds a digest of each token under the prefix and one hash
        tag, never the token itself.
        """
        store = self.store(prefix="p:")
        await store.remember(["secret-looking-signature"], 60)
        keys = self.redis.command("KEYS", "*")
        self.assertNotIn(b"secret-looking-signature", keys)
        self.assertIn(store.key("secret-looking-signature").encode(), keys)
        self.assertTrue(store.key("x").startswith("p:{replay}:"))
        self.assertEqual(len(store.key("x")), len("p:{replay}:") + 64)

    @inlineCallbacksTest
    async def test_failsClosedWhileDown(self) -> None:
        """
        While Redis is unreachable C{remember} fails with
        L{ReplayStoreUnavailable} at once; the store reconnects by itself and
        what was remembered before (persisted) is still refused.
        """
        store = self.store(maxRetryDelay=0.2)
        self.assertTrue(await store.remember(["before"], 60))
        self.redis.kill()
        await waitFor(lambda: not store.available)
        await self.assertFailure(store.remember(["during"], 60), ReplayStoreUnavailable)
        self.redis.start()
        await waitFor(lambda: store.available)
        self.assertFalse(await store.remember(["before"], 60))
        self.assertTrue(await store.remember(["during"], 60))


class GuardsSharingRedisTests(TestCase):
    """
    Two HMAC guards (two nodes) with one Redis replay store each, on one
    Redis.
    """

    timeout = 30

    def setUp(self) -> None:
        self.redis = startRedis(self)

    def guard(self, **options: Any) -> GuardHarness:
        store = RedisReplayStore(self.redis.settings(), reactor, **options)
        self.addCleanup(store.stop)
        return GuardHarness(self, replayStore=store)

    async def send(self, harness: GuardHarness, headers: dict[bytes, list[bytes]]) -> Answer:
        answers: list[Answer] = []
        d: Deferred[Answer] = harness.send(headers, body=VECTOR_BODY)
        d.addCallback(answers.append)
        await waitFor(lambda: bool(harness.stub.flush()) or bool(answers), what="an answer")
        return answers[0]

    @inlineCallbacksTest
    async def test_replayToAnotherNodeRefused(self) -> None:
        """
        A signed request accepted by one node is refused as C{replayed} by
        the other (both schemes).
        """
        one, other = self.guard(), self.guard()
        for headers in (seedHeaders(), v2Headers()):
            self.assertEqual((await self.send(one, headers)).code, 200)
            answer = await self.send(other, headers)
            self.assertEqual((answer.code, answer.json()["code"]), (401, "replayed"))
        self.assertEqual((len(one.resource.seen), len(other.resource.seen)), (2, 0))

    @inlineCallbacksTest
    async def test_redisDownIs503(self) -> None:
        """
        With Redis unreachable the guard fails closed: 503
        C{replay_store_unavailable} with C{Retry-After: 1}, the wrapped
        resource does not run, and no traceback is logged (the link logs
        the outage once).
        """
        harness = self.guard(maxRetryDelay=0.2)
        self.redis.kill()
        answer = await self.send(harness, seedHeaders())
        self.assertEqual((answer.code, answer.json()["code"]), (503, "replay_store_unavailable"))
        self.assertEqual(answer.header(b"Retry-After"), [b"1"])
        self.assertEqual(harness.resource.seen, [])
        self.assertEqual(self.flushLoggedErrors(), [])
