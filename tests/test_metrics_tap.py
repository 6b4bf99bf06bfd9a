"""
Tests for C{twistd txws --metrics ENDPOINT}: the option's checks, the
listener of its own that L{txws.tap.makeService} adds, and a real server
scraped over HTTP after WebSocket traffic and a signed publish.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from typing import Any
from unittest import mock

import requests
from twisted.internet import reactor as _reactor
from twisted.internet.endpoints import serverFromString
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.web.server import Site

from tests.hubsupport import articlePublish, upgradeStatus
from tests.support import freePort
from tests.test_hub_integration import KEYS, HubTestCase
from tests.test_metrics import labelled, parseScrape, value
from tests.test_tap import _Case
from txws import tap
from txws._metricsmerge import RegistryPage, WorkerMetricsResource, fetchWorkerMetrics
from txws._workers import WorkerSupervisor
from txws.metrics import _MeteredRegistry


class MetricsOptionsTests(_Case):
    """
    C{--metrics} is checked with the other options: a mistake is a usage
    error before anything listens.
    """

    def test_default(self) -> None:
        """
        Without C{--metrics}, no metrics listener.
        """
        self.assertIsNone(self.parse().metricsListener)

    def test_accepted(self) -> None:
        """
        A C{tcp:} endpoint is kept as given.
        """
        options = self.parse("--metrics", "tcp:9100:interface=127.0.0.1")
        assert options.metricsListener is not None
        self.assertEqual(options.metricsListener.description, "tcp:9100:interface=127.0.0.1")

    def test_unsupportedType(self) -> None:
        """
        An C{ssl:} or unknown endpoint type is refused, naming the types
        accepted.
        """
        for description in ("ssl:9100", "nonsense:9100"):
            message = self.refused("--metrics", description)
            self.assertIn(f"--metrics {description}: unsupported endpoint type", message)
            self.assertIn("tcp:, tcp6:, unix:", message)

    def test_badEndpoint(self) -> None:
        """
        An endpoint string Twisted cannot parse is refused.
        """
        message = self.refused("--metrics", "tcp:notaport")
        self.assertIn("--metrics tcp:notaport:", message)

    def test_notAPublicListener(self) -> None:
        """
        The metrics endpoint cannot be one of the C{--listen} endpoints.
        """
        message = self.refused(
            "--listen", "tcp:9100:interface=127.0.0.1", "--metrics", "tcp:9100:interface=127.0.0.1"
        )
        self.assertIn("also a --listen endpoint", message)

    def test_withoutPrometheusClient(self) -> None:
        """
        Without C{prometheus-client} installed, C{--metrics} says what to
        install.
        """
        with mock.patch.dict(sys.modules, {"prometheus_client": None}):
            message = self.refused("--metrics", "tcp:9100")
        self.assertIn("pip install 'txws[metrics]'", message)

    def test_withWorkers(self) -> None:
        """
        With C{--workers}, C{--metrics} is the parent's: the workers are not
        given it (their supervisor gives each a socket of its own).
        """
        options = self.parse(*WORKERS, "--metrics", "tcp:9100:interface=127.0.0.1")
        assert options.metricsListener is not None
        self.assertEqual(options.metricsListener.description, "tcp:9100:interface=127.0.0.1")
        self.assertFalse([a for a in options.workerArguments() if "metrics" in a])
        self.assertIn("--listen=tcp:8080:interface=127.0.0.1", options.workerArguments())
        options = self.parse(*WORKERS, "--metrics", "unix:/run/txws/metrics.sock")
        assert options.metricsListener is not None

    def test_withWorkersNotAWorkerPort(self) -> None:
        """
        With C{--workers}, the metrics port cannot be a port the workers
        listen on, whatever the interfaces.
        """
        for metrics in ("tcp:8080", "tcp6:8080:interface=\\:\\:1"):
            message = self.refused(*WORKERS, "--metrics", metrics)
            self.assertIn(
                f"--metrics {metrics}: port 8080 is also the port of --listen "
                "tcp:8080:interface=127.0.0.1, which every worker binds",
                message,
            )

    def test_workerMetrics(self) -> None:
        """
        A worker's C{--worker-metrics PATH} is its metrics listener: a UNIX
        socket of mode 0600 at exactly that path, without a lock file.
        """
        path = "/tmp/txws-metrics-x:y/worker-1.sock"
        options = self.parse("--worker", "1", "--worker-metrics", path,
                             "--listen", "tcp:8080:interface=127.0.0.1")
        assert options.metricsListener is not None
        endpoint: Any = serverFromString(MemoryReactor(), options.metricsListener.description)
        self.assertEqual((endpoint._address, endpoint._mode, endpoint._wantPID),
                         (path, 0o600, False))

    def test_workerMetricsInternal(self) -> None:
        """
        C{--worker-metrics} is refused without C{--worker}, and with
        C{--metrics}.
        """
        message = self.refused("--worker-metrics", "/tmp/w.sock")
        self.assertIn("--worker-metrics is set by --workers on its workers", message)
        message = self.refused("--worker", "1", "--worker-metrics", "/tmp/w.sock",
                               "--metrics", "tcp:9100")
        self.assertIn("--worker-metrics and --metrics", message)


#: A valid C{--workers 2} command line.
WORKERS = ("--broker", "redis://127.0.0.1:6379/0", "--workers", "2",
           "--listen", "tcp:8080:interface=127.0.0.1")


class MetricsServiceTests(_Case):
    """
    L{tap.makeService} with C{--metrics}, on a memory reactor.
    """

    def make(self, *argv: str) -> tuple[Any, MemoryReactorClock]:
        reactor = MemoryReactorClock()
        service = tap.makeService(self.parse(*argv), reactor=reactor)
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        return service, reactor

    def metricsSite(self, reactor: MemoryReactorClock, port: int) -> Site:
        (site,) = [f for p, f, _b, _i in reactor.tcpServers if p == port]
        assert isinstance(site, Site)
        return site

    def test_hub(self) -> None:
        """
        The hub: its public site on C{--listen} without C{/metrics}, a site
        of its own on C{--metrics} serving only C{/metrics}, the hub's
        factory tracked.
        """
        service, reactor = self.make(
            "--listen", "tcp:8080:interface=127.0.0.1",
            "--metrics", "tcp:9100:interface=127.0.0.1",
        )
        self.assertEqual(
            sorted((p, i) for p, _f, _b, i in reactor.tcpServers),
            [(8080, "127.0.0.1"), (9100, "127.0.0.1")],
        )
        metrics = self.metricsSite(reactor, 9100)
        self.assertIsNot(metrics, service.site)
        self.assertEqual(list(metrics.resource.children), [b"metrics"])
        public = self.metricsSite(reactor, 8080)
        self.assertNotIn(b"metrics", public.resource.children)
        assert service.app is not None
        self.assertIsInstance(service.app.factory.registry, _MeteredRegistry)

    def test_echo(self) -> None:
        """
        C{--app echo}: its factory is tracked.
        """
        service, reactor = self.make("--app", "echo", "--metrics", "tcp:9100")
        self.assertIsInstance(service.app.factory.registry, _MeteredRegistry)
        self.assertEqual(len(reactor.tcpServers), 2)

    def test_workers(self) -> None:
        """
        C{--workers} with C{--metrics}: the parent listens on the metrics
        port only (the workers bind the public ports), serving the merged
        C{/metrics} of a supervisor that gives its workers sockets.
        """
        service, reactor = self.make(*WORKERS, "--metrics", "tcp:9100:interface=127.0.0.1")
        self.assertEqual([(p, i) for p, _f, _b, i in reactor.tcpServers], [(9100, "127.0.0.1")])
        metrics = self.metricsSite(reactor, 9100)
        self.assertEqual(list(metrics.resource.children), [b"metrics"])
        page: Any = metrics.resource.children[b"metrics"]
        self.assertIsInstance(page.original, WorkerMetricsResource)
        self.assertIsInstance(service.app, WorkerSupervisor)
        self.assertTrue(service.app.workerMetrics)
        service, reactor = self.make(*WORKERS)
        self.assertEqual(reactor.tcpServers, [])
        self.assertFalse(service.app.workerMetrics)

    def test_worker(self) -> None:
        """
        A worker with C{--worker-metrics} serves its own C{/metrics} (the
        hub's factory tracked) on that UNIX socket, mode 0600.
        """
        service, reactor = self.make(
            "--worker", "1", "--worker-metrics", "/tmp/txws-metrics-x/worker-1.sock",
            "--listen", "tcp:8080:interface=127.0.0.1",
        )
        ((path, site, _backlog, mode, _wantPID),) = reactor.unixServers
        self.assertEqual((path, mode), ("/tmp/txws-metrics-x/worker-1.sock", 0o600))
        page: Any = site.resource.children[b"metrics"]
        self.assertIsInstance(page.original, RegistryPage)
        self.assertIsInstance(service.app.factory.registry, _MeteredRegistry)

    def test_noMetricsListener(self) -> None:
        """
        Without C{--metrics}, one listener and the factory untracked.
        """
        service, reactor = self.make("--app", "echo")
        self.assertEqual(len(reactor.tcpServers), 1)
        self.assertNotIsInstance(service.app.factory.registry, _MeteredRegistry)


class MetricsEndToEndTests(HubTestCase):
    """
    A real C{twistd -n txws --metrics}, scraped over HTTP.
    """

    async def test_scrape(self) -> None:
        """
        After a subscriber, a ping, a signed publish and a refused
        handshake, C{/metrics} on the metrics port counts each of them;
        the public port has no C{/metrics}.
        """
        metricsPort = freePort()
        hub = self.startHub("--metrics", f"tcp:{metricsPort}:interface=127.0.0.1")
        subscriber = await self.subscribe("txws", hub, "channel=news")
        await self.subscribed(subscriber, "news")
        subscriber.sendJSON({"type": "ping", "id": 1})
        self.assertEqual(await subscriber.nextJSON(), {"type": "pong", "id": 1})
        answer = articlePublish(hub, KEYS["test-0"], "news", {"n": 1})
        self.assertEqual(answer, {"channel": "news", "seq": 1, "delivered": 1})
        self.assertEqual((await subscriber.nextJSON())["data"], {"n": 1})
        self.assertEqual(upgradeStatus(hub, "channel=bad%20name")[0], 400)

        response = requests.get(f"http://127.0.0.1:{metricsPort}/metrics", timeout=10)
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))
        self.assertEqual(response.headers["Content-Encoding"], "gzip")
        samples = parseScrape(response.text)
        for name, expected in [
            ("txws_hub_channels", 1),
            ("txws_hub_subscribers", 1),
            ("txws_hub_publishes_total", 1),
            ("txws_hub_deliveries_total", 1),
            ("txws_hub_evictions_total", 0),
            ("txws_hub_publish_latency_seconds_count", 1),
        ]:
            self.assertEqual(value(samples, name), expected, name)
        self.assertEqual(value(samples, "txws_live_connections", app="hub", state="open"), 1)
        self.assertEqual(value(samples, "txws_messages_received_total", app="hub"), 1)
        # subscribed, pong, the message
        self.assertEqual(value(samples, "txws_messages_sent_total", app="hub"), 3)
        self.assertEqual(labelled(samples, "txws_handshakes_refused_total", "status"), {"400": 1})
        self.assertGreater(value(samples, "process_cpu_seconds_total"), 0)

        self.assertNotIn("GET /metrics", hub.log())
        self.assertEqual(hub.get("/metrics").status_code, 404)
        self.assertEqual(
            requests.get(f"http://127.0.0.1:{metricsPort}/", timeout=10).status_code, 404
        )

    async def test_scrapeOverUNIXSocket(self) -> None:
        """
        C{--metrics unix:PATH} serves the same C{/metrics} over a UNIX
        socket.
        """
        directory = tempfile.mkdtemp()  # trial's directories are too deep for a socket
        self.addCleanup(shutil.rmtree, directory)
        path = f"{directory}/metrics.sock"
        hub = self.startHub("--metrics", f"unix:{path}")
        subscriber = await self.subscribe("txws", hub, "channel=news")
        await self.subscribed(subscriber, "news")
        samples = parseScrape(await fetchWorkerMetrics(_reactor, path, timeout=10))
        self.assertEqual(value(samples, "txws_hub_subscribers"), 1)
        self.assertEqual(value(samples, "txws_live_connections", app="hub", state="open"), 1)
        self.assertNotIn("Traceback", hub.log())
