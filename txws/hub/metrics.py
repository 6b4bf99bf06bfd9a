"""
Prometheus metrics of the push hub (install the C{metrics} extra).

Design: the hub already keeps its counters (publishes accepted,
evictions, deliveries) and knows its channels and subscriptions; a
L{HubMetrics} collector reads them at scrape time.  The one thing
observed as it happens is each publish's latency, into a
C{prometheus-client} histogram, once per publish (never per subscriber).
The hub's WebSocket connections themselves are counted by
L{txws.metrics.WebSocketMetrics} (C{app="hub"}).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Optional

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Histogram
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as e:  # pragma: no cover (the test extra installs it)
    raise ImportError(
        "txws.hub.metrics needs prometheus-client: pip install 'txws[metrics]'"
    ) from e

if TYPE_CHECKING:
    from txws.hub.service import Hub

__all__ = ["LATENCY_BUCKETS", "HubMetrics"]

#: The publish latency histogram's buckets, seconds: from a publish with few
#: subscribers (about 0.1 ms) to one fanned out to thousands or waiting on
#: Redis.
LATENCY_BUCKETS: Sequence[float] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5,
)


class HubMetrics:
    """
    The hub's metrics, as a C{prometheus-client} collector registered with
    one registry; C{docs/metrics.md} lists them.  Creating it sets the hub's
    C{latencyObserver}.
    """

    def __init__(self, hub: Hub, registry: Optional[CollectorRegistry] = REGISTRY) -> None:
        """
        @param hub: the hub.
        @param registry: the registry to register with (default
            C{prometheus_client.REGISTRY}), or C{None} not to register.
        @raise ValueError: if that registry already has a collector of
            these metrics' names.
        """
        self._hub = hub
        self._latency = Histogram(
            "txws_hub_publish_latency_seconds",
            "Seconds from a publish request reaching the hub to its answer (with the "
            "in-process broker, fan-out to this node's subscribers included).",
            buckets=LATENCY_BUCKETS,
            registry=None,
        )
        hub.latencyObserver = self._latency.observe
        if registry is not None:
            registry.register(self)

    def describe(self) -> Iterable[Metric]:
        """
        @return: the metric families, without samples.
        """
        return [*_families(), _refusedFamily(), *self._latency.describe()]

    def collect(self) -> Iterable[Metric]:
        """
        Read the hub's counters (called by the registry at each scrape,
        possibly from another thread than the reactor's: every read is
        one call that runs without releasing the interpreter lock).

        @return: the metric families.
        """
        hub = self._hub
        values = (
            hub.channels.channelCount,
            hub.channels.subscriptionCount,
            hub.channels.subscriberConnections,
            hub.published,
            hub.channels.deliveries,
            hub.evicted,
        )
        families = _families()
        for family, value in zip(families, values, strict=True):
            family.add_metric([], value)
        refused = _refusedFamily()
        for (status, code), count in sorted(hub.publishesRefused().items()):
            refused.add_metric([str(status), code], count)
        return [*families, refused, *self._latency.collect()]


def _families() -> list[GaugeMetricFamily | CounterMetricFamily]:
    return [
        GaugeMetricFamily(
            "txws_hub_channels",
            "Channels with at least one subscriber (live or pending) on this node.",
        ),
        GaugeMetricFamily(
            "txws_hub_subscriptions",
            "Subscriptions (a connection and a channel) on this node, live or pending.",
        ),
        GaugeMetricFamily(
            "txws_hub_subscribers",
            "Connections subscribed to at least one channel on this node.",
        ),
        CounterMetricFamily(
            "txws_hub_publishes",
            "Publishes accepted through this node's POST /publish.",
        ),
        CounterMetricFamily(
            "txws_hub_deliveries",
            "Publications written to live subscribers on this node by fan-out.",
        ),
        CounterMetricFamily(
            "txws_hub_evictions",
            "Subscribers closed with 4008 for reading too slowly.",
        ),
    ]


def _refusedFamily() -> CounterMetricFamily:
    return CounterMetricFamily(
        "txws_hub_publishes_refused",
        "Publish requests refused, by HTTP status and the code of the answer "
        "(the HMAC guard's: bad_signature, replayed...; the publish resource's: "
        "bad_json, bad_channel...).",
        labels=["status", "code"],
    )
