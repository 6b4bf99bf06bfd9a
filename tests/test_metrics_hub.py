"""
Tests for L{txws.hub.metrics}: the hub's channels, subscribers, publishes,
deliveries, evictions and publish latency, read back through the
Prometheus text exposition.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock

from tests.support import closeFrame
from tests.test_backlog import PausingTransport
from tests.test_hub_publish import (
    PublishHarness,
    parseResponse,
    publishBody,
    request,
    seedSigned,
    send,
)
from tests.test_hub_service import RecordingBroker
from tests.test_hub_subscriber import HubHarness, slowHub
from tests.test_metrics import Samples, labelled, scrape, value
from tests.typedtrial import SynchronousTestCase
from txws.hmacauth.schemes import SEED_SIGNATURE_HEADER
from txws.hub.broker import MemoryBroker
from txws.hub.metrics import LATENCY_BUCKETS, HubMetrics
from txws.hub.subscriber import EVICTED_CLOSE_CODE
from txws.metrics import WebSocketMetrics


def metered(harness: HubHarness) -> CollectorRegistry:
    """
    Give a hub (with no connection yet) its metrics and its factory's, on
    a registry of their own, as C{twistd txws --metrics} does.

    @return: the registry.
    """
    registry = CollectorRegistry()
    WebSocketMetrics(registry).track(harness.hub.factory, "hub", [EVICTED_CLOSE_CODE])
    HubMetrics(harness.hub, registry)
    return registry


class HubGaugeTests(SynchronousTestCase):
    """
    Channels, subscriptions and subscribers are read at scrape time.
    """

    def test_counts(self) -> None:
        """
        Two subscribers, one on two channels: two channels, three
        subscriptions, two subscribers; all back to 0 when they leave.
        """
        harness = HubHarness(self)
        registry = metered(harness)
        first = harness.open("channel=news&channel=sports")
        second = harness.open("channel=news")
        samples = scrape(registry)
        self.assertEqual(value(samples, "txws_hub_channels"), 2)
        self.assertEqual(value(samples, "txws_hub_subscriptions"), 3)
        self.assertEqual(value(samples, "txws_hub_subscribers"), 2)
        self.assertEqual(value(samples, "txws_live_connections", app="hub", state="open"), 2)
        first.lost()
        second.lost()
        samples = scrape(registry)
        for name in ("txws_hub_channels", "txws_hub_subscriptions", "txws_hub_subscribers"):
            self.assertEqual(value(samples, name), 0, name)


class HubCounterTests(SynchronousTestCase):
    """
    Publishes, deliveries and evictions.
    """

    def test_publishesAndDeliveries(self) -> None:
        """
        Two signed publishes to a channel with two subscribers and one to
        a channel without: three publishes, four deliveries.
        """
        harness = PublishHarness(self)
        registry = metered(harness)
        harness.open("channel=news")
        harness.open("channel=news")
        for i, channel in enumerate(["news", "news", "empty"]):
            self.assertEqual(harness.post(publishBody(channel, i)).status, 200)
        samples = scrape(registry)
        self.assertEqual(value(samples, "txws_hub_publishes_total"), 3)
        self.assertEqual(value(samples, "txws_hub_deliveries_total"), 4)
        self.assertEqual(value(samples, "txws_messages_sent_total", app="hub"), 4 + 2)

    def test_refusedPublishes(self) -> None:
        """
        Publishes refused by the HMAC guard and by the publish resource
        are counted by status and code; the accepted one is not among
        them, and a replayed request counts as C{replayed}.
        """
        harness = PublishHarness(self)
        registry = metered(harness)
        body = publishBody("news", 1)
        signed = seedSigned(body)
        self.assertEqual(request(harness.site, b"POST", b"/publish", body, signed).status, 200)
        self.assertEqual(request(harness.site, b"POST", b"/publish", body, signed).status, 401)
        forged = {**seedSigned(body), SEED_SIGNATURE_HEADER: b"0" * 64}
        self.assertEqual(request(harness.site, b"POST", b"/publish", body, forged).status, 401)
        self.assertEqual(harness.post(b"[]").status, 400)
        self.assertEqual(harness.post(b"not json").status, 400)
        self.assertEqual(harness.post(publishBody("bad channel", 1)).status, 400)
        samples = scrape(registry)
        self.assertEqual(value(samples, "txws_hub_publishes_total"), 1)
        refused = {
            (dict(labels)["status"], dict(labels)["code"]): count
            for (name, labels), count in samples.items()
            if name == "txws_hub_publishes_refused_total"
        }
        self.assertEqual(
            refused,
            {
                ("401", "replayed"): 1,
                ("401", "bad_signature"): 1,
                ("400", "bad_request"): 1,
                ("400", "bad_json"): 1,
                ("400", "bad_channel"): 1,
            },
        )

    def test_evictions(self) -> None:
        """
        A slow subscriber closed with 4008 is one eviction, and a
        connection closed with 4008 in the library's metrics.
        """
        harness = slowHub(self)
        registry = metered(harness)
        slow = harness.open("channel=news", transport=PausingTransport())
        harness.open("channel=news")
        for _ in range(30):
            harness.publish("news", "x" * 1000)
        self.assertEqual(slow.protocol.localCloseCode, EVICTED_CLOSE_CODE)
        slow.protocol.dataReceived(closeFrame(EVICTED_CLOSE_CODE))
        slow.lost()
        samples = scrape(registry)
        self.assertEqual(value(samples, "txws_hub_evictions_total"), 1)
        self.assertEqual(
            labelled(samples, "txws_connections_closed_total", "code"),
            {str(EVICTED_CLOSE_CODE): 1},
        )


def bucket(samples: Samples, le: float) -> float:
    return value(samples, "txws_hub_publish_latency_seconds_bucket", le=repr(float(le)))


class LatencyTests(SynchronousTestCase):
    """
    The latency of a publish runs from its request reaching the hub to its
    answer.
    """

    def test_heldPublish(self) -> None:
        """
        A publish the broker answers 3 ms after the request arrived is
        observed as 3 ms: in the 5 ms bucket, not in the 2.5 ms one.
        """
        broker = RecordingBroker(MemoryBroker(Clock()))
        harness = PublishHarness(self, broker=broker)
        registry = metered(harness)
        harness.open("channel=news")
        broker.holdPublishes = True
        body = publishBody("news", 1)
        _, transport = send(harness.site, b"POST", b"/publish", body, seedSigned(body))
        self.assertEqual(transport.value(), b"")
        harness.clock.advance(0.003)
        broker.releasePublishes()
        self.assertEqual(parseResponse(transport.value()).status, 200)
        samples = scrape(registry)
        self.assertEqual(value(samples, "txws_hub_publish_latency_seconds_count"), 1)
        self.assertLess(abs(value(samples, "txws_hub_publish_latency_seconds_sum") - 0.003), 1e-6)
        self.assertEqual(bucket(samples, 0.0025), 0)
        self.assertEqual(bucket(samples, 0.005), 1)
        self.assertIn(0.005, LATENCY_BUCKETS)

    def test_refusedNotObserved(self) -> None:
        """
        A refused publish (bad body) is no latency sample.
        """
        harness = PublishHarness(self)
        registry = metered(harness)
        self.assertEqual(harness.post(b"[]").status, 400)
        self.assertEqual(
            value(scrape(registry), "txws_hub_publish_latency_seconds_count"), 0
        )
