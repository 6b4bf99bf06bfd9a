"""
Tests for several C{twistd -n txws} nodes sharing one Redis
(C{--broker redis://}), with real processes on 127.0.0.1 and a real
C{redis-server}: a publish on one node reaches a subscriber on the other,
a signed request replayed to the other node is refused, a subscriber that
moves to the other node resumes, and a node started while Redis is
unreachable serves anyway and starts publishing once Redis is there.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import requests
from twisted.internet import reactor as _reactor
from twisted.internet.task import deferLater

from tests.hubsupport import HubProcess, TxwsSubscriber, freePort, seedHeaders, writeKeyFile
from tests.redissupport import RedisServer, requireRedis, startRedis
from tests.test_workers import fullLog, waitForLog
from tests.typedtrial import TestCase

reactor: Any = _reactor

KEYS = {"test-1": "k1-" + "d" * 40}


def message(channel: str, seq: int, data: object) -> dict[str, Any]:
    """
    @return: the C{message} the hub sends.
    """
    return {"type": "message", "channel": channel, "seq": seq, "data": data}


class TwoNodesTests(TestCase):
    """
    Two hub processes, different ports, one Redis.
    """

    timeout = 120

    def keyFile(self) -> str:
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        return writeKeyFile(os.path.join(directory, "keys.json"), KEYS)

    async def node(self, url: str, keys: str) -> HubProcess:
        """
        Start a node and wait until its broker is connected to Redis.
        """
        hub = HubProcess(self, "--broker", url, "--hmac-keys", keys, "--close-timeout", "2")
        await waitForLog(hub, r"hub broker: connected to Redis at ")
        return hub

    async def subscriber(self, hub: HubProcess, query: str) -> TxwsSubscriber:
        subscriber = await TxwsSubscriber.open(hub.wsURL(query))
        self.addCleanup(subscriber.close)
        return subscriber

    def publish(
        self, hub: HubProcess, channel: str, data: object
    ) -> tuple[requests.Response, bytes, dict[str, str]]:
        body = json.dumps({"channel": channel, "data": data}).encode()
        headers = seedHeaders(KEYS["test-1"], body)
        return hub.post("/publish", body, headers), body, headers

    async def test_crossNode(self) -> None:
        """
        A publish on node A reaches a subscriber on node B; the same signed
        request sent to node B is refused as a replay (401); a subscriber
        of B that reconnects to A resumes there with nothing missed.
        """
        redis = startRedis(self, password="s3cret-redis")
        url = f"redis://:s3cret-redis@127.0.0.1:{redis.port}/1"
        keys = self.keyFile()
        a, b = await self.node(url, keys), await self.node(url, keys)
        for hub in (a, b):
            self.assertNotIn("s3cret-redis", fullLog(hub))
            self.assertIn(f"hub broker: redis://***@127.0.0.1:{redis.port}/1", fullLog(hub))

        onB = await self.subscriber(b, "channel=news")
        answer = await onB.nextJSON()
        self.assertEqual((answer["type"], answer["seq"]), ("subscribed", 0))
        epoch = answer["epoch"]

        response, body, headers = self.publish(a, "news", {"n": 1})
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual((response.json()["seq"], response.json()["delivered"]), (1, 0))
        self.assertEqual(await onB.nextJSON(), message("news", 1, {"n": 1}))

        replayed = b.post("/publish", body, headers)
        self.assertEqual((replayed.status_code, replayed.json()["code"]), (401, "replayed"))

        onB.close()
        await onB.whenClosed()
        for n in (2, 3):
            response, _, _ = self.publish(b, "news", {"n": n})
            self.assertEqual((response.status_code, response.json()["seq"]), (200, n))
        moved = await self.subscriber(a, "")
        moved.sendJSON({"type": "subscribe", "channel": "news", "since": 1, "epoch": epoch})
        answer = await moved.nextJSON()
        self.assertEqual(
            (answer["type"], answer["recovered"], answer["epoch"], answer["seq"]),
            ("subscribed", True, epoch, 3),
        )
        self.assertEqual(await moved.nextJSON(), message("news", 2, {"n": 2}))
        self.assertEqual(await moved.nextJSON(), message("news", 3, {"n": 3}))

    async def test_redisUnreachableAtStart(self) -> None:
        """
        A node whose Redis is not there yet starts and serves: C{/healthz}
        answers, a publish answers 503, the broker says once that it
        retries, with no traceback; once Redis is up, publishing works and
        subscribers get what is published, with no restart of the node.
        """
        requireRedis()
        redisPort = freePort()
        keys = self.keyFile()
        hub = HubProcess(
            self, "--broker", f"redis://127.0.0.1:{redisPort}/0", "--hmac-keys", keys,
        )
        self.assertEqual(hub.get("/healthz").status_code, 200)
        await waitForLog(hub, r"hub broker: cannot reach Redis at redis://127.0.0.1:\d+/0 ")
        log = fullLog(hub)
        self.assertNotIn("Traceback", log)
        self.assertNotIn("failed to start", log)
        response, _, _ = self.publish(hub, "news", 1)
        self.assertEqual(response.status_code, 503)

        redis = RedisServer(os.path.join(self.mktemp(), "redis"))
        redis.port = redisPort
        self.addCleanup(redis.kill)
        redis.start()
        await waitForLog(hub, r"hub broker: connected to Redis at ", within=30)
        deadline = time.monotonic() + 30
        while True:
            response, _, _ = self.publish(hub, "news", 2)
            if response.status_code == 200:
                break
            self.assertLess(time.monotonic(), deadline, response.text)
            await deferLater(reactor, 0.3)
        subscriber = await self.subscriber(hub, "channel=news")
        answer = await subscriber.nextJSON()
        self.assertEqual((answer["type"], answer["seq"]), ("subscribed", 1))
        response, _, _ = self.publish(hub, "news", 3)
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(await subscriber.nextJSON(), message("news", 2, 3))
        self.assertEqual(
            len(fullLog(hub).split("hub broker: cannot reach Redis")), 2,
            "the unreachable Redis is logged once",
        )
