"""
Tests for L{txws._metricsmerge}: one scrape target for C{--workers N}.

The merge of several workers' scrapes, the worker fetch (HTTP/1.0 over a
UNIX socket) and the parent's C{/metrics} run against memory reactors and
fake workers, without real time; then a real C{twistd -n txws --workers 2
--metrics ...} with a real Redis is scraped while WebSocket subscribers
are spread over both workers, one worker is killed and restarted, and the
parent stops.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import tempfile
import time
from collections.abc import Iterable
from typing import Any, Optional, cast

import requests
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor as _reactor
from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone, ConnectionRefusedError, ProcessDone
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import ILogObserver, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET
from twisted.web.test.requesthelper import DummyRequest

from tests.hubsupport import HubProcess, TxwsSubscriber, writeKeyFile
from tests.redissupport import startRedis
from tests.support import freePort
from tests.test_metrics import Samples, labelled, parseScrape, value
from tests.test_workers import (
    KEYS,
    _ProcessReactor,
    connectionOwners,
    fullLog,
    waitForLog,
)
from tests.typedtrial import SynchronousTestCase, TestCase
from txws._metricsmerge import (
    CONTENT_TYPE,
    STARTUP_GRACE,
    WORKER_SCRAPE_TIMEOUT,
    RegistryPage,
    WorkerMetricsResource,
    WorkerScrapeError,
    fetchWorkerMetrics,
    mergeScrapes,
)
from txws._workers import WorkerSupervisor

reactor: Any = _reactor


def workerText(
    connections: float, received: float, latencies: Iterable[float] = (), **labels: str
) -> str:
    """
    @return: a scrape like a worker's: a gauge, a counter and a histogram
        (with C{prometheus-client}'s C{_created} series), in the text
        format.
    """
    registry = CollectorRegistry()
    names = sorted(labels)
    gauge = Gauge("txws_live_connections", "Connections alive now.", ["app", *names],
                  registry=registry)
    gauge.labels("hub", *(labels[n] for n in names)).set(connections)
    counter = Counter("txws_messages_received", "Messages received.", ["app"],
                      registry=registry)
    counter.labels("hub").inc(received)
    histogram = Histogram("txws_hub_publish_latency_seconds", "Publish latency.",
                          buckets=(0.001, 0.01), registry=registry)
    for latency in latencies:
        histogram.observe(latency)
    return generate_latest(registry).decode()


def families(text: str) -> list[Metric]:
    return list(text_string_to_metric_families(text))


def render(merged: list[Metric]) -> str:
    class Collect:
        def collect(self) -> list[Metric]:
            return merged

    return generate_latest(Collect()).decode()


class MergeTests(SynchronousTestCase):
    """
    L{mergeScrapes}: one family per name, every sample labelled with its
    worker.
    """

    def merged(self) -> str:
        return render(mergeScrapes({
            2: families(workerText(5, 40, [0.0005, 0.5])),
            1: families(workerText(3, 7, [0.005])),
        }))

    def test_workerLabel(self) -> None:
        """
        Every sample gets C{worker="I"}, keeping its own labels and value.
        """
        samples = parseScrape(self.merged())
        self.assertEqual(
            labelled(samples, "txws_live_connections", "worker"), {"1": 3, "2": 5}
        )
        self.assertEqual(value(samples, "txws_live_connections", app="hub", worker="2"), 5)
        self.assertEqual(value(samples, "txws_messages_received_total", app="hub", worker="1"), 7)
        for (_name, labels), _v in samples.items():
            self.assertIn(dict(labels).get("worker"), ("1", "2"))

    def test_helpAndTypeOnce(self) -> None:
        """
        Each family has one HELP and one TYPE line, followed by the samples
        of all workers (workers in order of their index).
        """
        text = self.merged()
        lines = text.splitlines()
        for name, kind in [
            ("txws_live_connections", "gauge"),
            ("txws_messages_received_total", "counter"),
            ("txws_hub_publish_latency_seconds", "histogram"),
        ]:
            self.assertEqual(lines.count(f"# TYPE {name} {kind}"), 1, text)
            self.assertEqual(
                len([line for line in lines if line.startswith(f"# HELP {name} ")]), 1, text
            )
        start = lines.index("# TYPE txws_live_connections gauge")
        self.assertEqual(
            lines[start + 1 : start + 3],
            ['txws_live_connections{app="hub",worker="1"} 3.0',
             'txws_live_connections{app="hub",worker="2"} 5.0'],
        )

    def test_histogramAndCounterSamples(self) -> None:
        """
        A histogram keeps its C{_bucket} (with C{le}), C{_count} and
        C{_sum} samples per worker, a counter its C{_total} name, and
        C{_created} series survive too.
        """
        samples = parseScrape(self.merged())
        name = "txws_hub_publish_latency_seconds"
        self.assertEqual(
            {le: v for (n, labels), v in samples.items()
             if n == f"{name}_bucket" and dict(labels)["worker"] == "2"
             for le in [dict(labels)["le"]]},
            {"0.001": 1, "0.01": 1, "+Inf": 2},
        )
        self.assertEqual(value(samples, f"{name}_count", worker="1"), 1)
        self.assertEqual(value(samples, f"{name}_count", worker="2"), 2)
        self.assertEqual(round(value(samples, f"{name}_sum", worker="2"), 6), 0.5005)
        self.assertEqual(labelled(samples, "txws_messages_received_total", "worker"),
                         {"1": 7, "2": 40})
        self.assertEqual(
            set(labelled(samples, "txws_messages_received_created", "worker")), {"1", "2"}
        )

    def test_familyOfOneWorker(self) -> None:
        """
        A family only one worker has is served with that worker's samples.
        """
        extra = CollectorRegistry()
        Gauge("app_queue", "The application's queue.", registry=extra).set(9)
        samples = parseScrape(render(mergeScrapes({
            1: families(workerText(1, 1)),
            2: [*families(workerText(2, 2)), *families(generate_latest(extra).decode())],
        })))
        self.assertEqual(labelled(samples, "app_queue", "worker"), {"2": 9})

    def test_ownWorkerLabel(self) -> None:
        """
        A sample that has a C{worker} label of its own keeps it as
        C{exported_worker} (as Prometheus renames a clashing label).
        """
        samples = parseScrape(render(mergeScrapes({3: families(workerText(1, 1, worker="x"))})))
        self.assertEqual(
            value(samples, "txws_live_connections", app="hub", worker="3",
                  exported_worker="x"),
            1,
        )

    def test_typeConflict(self) -> None:
        """
        Two workers giving one name different types is a L{ValueError}
        naming the family.
        """
        other = CollectorRegistry()
        Counter("txws_live_connections", "Not a gauge.", registry=other).inc()
        with self.assertRaises(ValueError) as caught:
            mergeScrapes({
                1: families(workerText(1, 1)),
                2: families(generate_latest(other).decode()),
            })
        self.assertIn("txws_live_connections", str(caught.exception))

    def test_nothing(self) -> None:
        """
        No worker answered: no families.
        """
        self.assertEqual(mergeScrapes({}), [])


# -- the worker fetch ---------------------------------------------------------


class _Connection:
    """
    One fetch on a memory reactor, and the means to play the worker.
    """

    def __init__(self, reactor: MemoryReactorClock, **kwargs: Any) -> None:
        self.reactor = reactor
        self.result = fetchWorkerMetrics(reactor, "/private/worker-1.sock", **kwargs)
        self.path, self.factory, self.timeout, _checkPID = reactor.unixClients[-1]
        self.transport = StringTransport()

    def connect(self) -> None:
        self.protocol = self.factory.buildProtocol(UNIXAddress(self.path))
        self.protocol.makeConnection(self.transport)

    def answer(self, data: bytes, close: bool = True) -> None:
        self.protocol.dataReceived(data)
        if close:
            self.protocol.connectionLost(Failure(ConnectionDone()))


class FetchTests(SynchronousTestCase):
    """
    L{fetchWorkerMetrics}: C{GET /metrics} in HTTP/1.0 over a UNIX socket,
    bounded in time and size.
    """

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()

    def failure(self, connection: _Connection, kind: str) -> str:
        error = self.failureResultOf(connection.result, WorkerScrapeError).value
        assert isinstance(error, WorkerScrapeError)
        self.assertEqual(error.kind, kind)
        return error.why

    def test_answer(self) -> None:
        """
        The request goes to the socket's path; a 200's body is the result.
        """
        c = _Connection(self.reactor)
        self.assertEqual(c.path, "/private/worker-1.sock")
        self.assertEqual(c.timeout, WORKER_SCRAPE_TIMEOUT)
        c.connect()
        self.assertEqual(c.transport.value(), b"GET /metrics HTTP/1.0\r\nHost: worker\r\n\r\n")
        c.answer(b"HTTP/1.0 200 OK\r\nContent-Length: 9\r\n\r\nup 1.0\r\n\n", close=False)
        self.assertNoResult(c.result)
        c.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(c.result), "up 1.0\r\n\n")

    def test_status(self) -> None:
        """
        An answer other than 200 fails with kind C{status}.
        """
        c = _Connection(self.reactor)
        c.connect()
        c.answer(b"HTTP/1.1 500 Internal Server Error\r\n\r\noops")
        self.assertEqual(self.failure(c, "status"), "answered HTTP 500")

    def test_truncated(self) -> None:
        """
        A body shorter than its C{Content-Length}, or a connection closed
        within the head, fails with kind C{answer}.
        """
        c = _Connection(self.reactor)
        c.connect()
        c.answer(b"HTTP/1.0 200 OK\r\nContent-Length: 100\r\n\r\nup 1")
        self.assertEqual(self.failure(c, "answer"), "4 bytes of a 100-byte answer")
        c = _Connection(self.reactor)
        c.connect()
        c.answer(b"HTTP/1.0 200 OK\r\nContent-")
        self.failure(c, "answer")
        c = _Connection(self.reactor)
        c.connect()
        c.answer(b"SSH-2.0-OpenSSH\r\n\r\n")
        self.assertEqual(self.failure(c, "answer"), "not an HTTP answer")

    def test_tooLarge(self) -> None:
        """
        An answer beyond the limit fails with kind C{size} at once and
        closes the connection.
        """
        c = _Connection(self.reactor, limit=100)
        c.connect()
        c.answer(b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 50, close=False)
        self.assertNoResult(c.result)
        c.answer(b"x" * 50, close=False)
        self.assertEqual(self.failure(c, "size"), "answer larger than 100 bytes")
        self.assertTrue(c.transport.disconnecting)

    def test_notUTF8(self) -> None:
        """
        A body that is not UTF-8 fails with kind C{parse}.
        """
        c = _Connection(self.reactor)
        c.connect()
        c.answer(b"HTTP/1.0 200 OK\r\n\r\n\xff\xfe")
        self.failure(c, "parse")

    def test_refused(self) -> None:
        """
        A socket nobody listens on fails with kind C{connect}.
        """
        c = _Connection(self.reactor)
        connector = self.reactor.connectors[-1]
        c.factory.clientConnectionFailed(connector, Failure(ConnectionRefusedError()))
        self.failure(c, "connect")

    def test_timeoutConnecting(self) -> None:
        """
        No connection within the timeout fails with kind C{timeout}, not a
        moment before.
        """
        c = _Connection(self.reactor)
        self.reactor.advance(WORKER_SCRAPE_TIMEOUT - 0.01)
        self.assertNoResult(c.result)
        self.reactor.advance(0.01)
        self.assertEqual(self.failure(c, "timeout"), "no answer within 2 s")

    def test_timeoutAnswering(self) -> None:
        """
        A worker that accepts but answers too slowly fails with kind
        C{timeout}, and its connection is aborted.
        """
        c = _Connection(self.reactor, timeout=0.5)
        c.connect()
        c.answer(b"HTTP/1.0 200 OK\r\n\r\nup", close=False)
        self.reactor.advance(0.5)
        self.assertEqual(self.failure(c, "timeout"), "no answer within 0.5 s")
        self.assertTrue(c.transport.disconnecting)


# -- the parent's /metrics ----------------------------------------------------


class _Reactor(_ProcessReactor, MemoryReactorClock):  # type: ignore[misc]
    """
    A memory reactor that also records the supervisor's processes.
    """


class _FakeWorkers:
    """
    The fetch of L{WorkerMetricsResource}, answering for each worker what a
    test says.
    """

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.answers: dict[int, Any] = {}

    def fetch(self, path: str) -> Deferred[str]:
        self.asked.append(os.path.basename(path))
        answer = self.answers[int(os.path.basename(path).split("-")[1].split(".")[0])]
        if isinstance(answer, Exception):
            return fail(answer)
        if isinstance(answer, Deferred):
            return answer
        return succeed(cast(str, answer))


class WorkerMetricsResourceTests(SynchronousTestCase):
    """
    L{WorkerMetricsResource}: every live worker asked at once, the answers
    merged, the parent's own gauges, and a worker that fails or times out
    left out (C{txws_worker_up} 0) while the rest is served.
    """

    def setUp(self) -> None:
        self.reactor = _Reactor()
        self.supervisor = WorkerSupervisor(
            self.reactor, 2, [], [], stopTimeout=10.0, workerMetrics=True
        )
        self.supervisor.privilegedStartService()  # type: ignore[no-untyped-call]
        self.supervisor.startService()
        self.addCleanup(self.stop)
        self.workers = _FakeWorkers()
        self.resource = WorkerMetricsResource(
            self.supervisor, self.reactor, fetch=self.workers.fetch
        )
        self.events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def stop(self) -> None:
        stopping = self.supervisor.stopService()
        for process in list(self.supervisor.workers.values()):
            process.processEnded(Failure(ProcessDone(0)))
        self.successResultOf(stopping)

    def messages(self) -> list[str]:
        return [formatEvent(e) for e in self.events if e.get("log_namespace") == "txws.metrics"]

    def get(self) -> DummyRequest:
        request = DummyRequest([b""])
        self.assertIs(self.resource.render_GET(request), NOT_DONE_YET)  # type: ignore[arg-type]
        return request

    def answered(self, request: DummyRequest) -> Samples:
        self.assertEqual(request.finished, 1)
        self.assertIn(request.responseCode, (None, 200))
        self.assertEqual(
            request.responseHeaders.getRawHeaders(b"content-type"), [CONTENT_TYPE.encode()]
        )
        return parseScrape(b"".join(request.written).decode())

    def scrape(self) -> Samples:
        return self.answered(self.get())

    def test_merged(self) -> None:
        """
        Both workers' scrapes, labelled, with C{txws_workers},
        C{txws_worker_up} and C{txws_worker_restarts_total}.
        """
        self.workers.answers = {1: workerText(3, 1), 2: workerText(4, 2)}
        samples = self.scrape()
        self.assertEqual(sorted(self.workers.asked), ["worker-1.sock", "worker-2.sock"])
        self.assertEqual(labelled(samples, "txws_live_connections", "worker"), {"1": 3, "2": 4})
        self.assertEqual(value(samples, "txws_workers"), 2)
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 1, "2": 1})
        self.assertEqual(
            labelled(samples, "txws_worker_restarts_total", "worker"), {"1": 0, "2": 0}
        )
        self.assertEqual(self.messages(), [])

    def test_failingWorker(self) -> None:
        """
        A worker that fails is left out with up 0 and the other served;
        the failure is logged once (not per scrape), a different failure
        once more, and the recovery once.
        """
        self.reactor.advance(STARTUP_GRACE)
        self.workers.answers = {
            1: WorkerScrapeError("connect", "Connection refused"), 2: workerText(4, 2)
        }
        for _ in range(3):
            samples = self.scrape()
            self.assertEqual(labelled(samples, "txws_live_connections", "worker"), {"2": 4})
            self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 0, "2": 1})
        pid = self.supervisor.workers[1].pid
        self.assertEqual(
            self.messages(),
            [f"metrics of worker 1 (pid {pid}) not scraped: Connection refused; it is left "
             "out of /metrics (txws_worker_up 0) until it answers"],
        )
        self.workers.answers[1] = WorkerScrapeError("timeout", "no answer within 2 s")
        self.scrape()
        self.scrape()
        self.assertEqual(len(self.messages()), 2)
        self.assertIn("not scraped: no answer within 2 s", self.messages()[1])
        self.workers.answers[1] = workerText(1, 1)
        samples = self.scrape()
        self.scrape()
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 1, "2": 1})
        self.assertEqual(self.messages()[2:], [f"metrics of worker 1 (pid {pid}) answer again"])

    def test_unparseable(self) -> None:
        """
        A worker whose answer is not the text format is left out (kind
        C{parse}), logged once.
        """
        self.reactor.advance(STARTUP_GRACE)
        self.workers.answers = {1: "this is { not metrics\n", 2: workerText(4, 2)}
        samples = self.scrape()
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 0, "2": 1})
        (message,) = self.messages()
        self.assertIn("metrics of worker 1", message)

    def test_startingWorkerQuiet(self) -> None:
        """
        A worker that has just started and does not answer yet is left out
        without a log line; once it has answered, a failure is logged.
        """
        self.workers.answers = {1: WorkerScrapeError("connect", "No such file"),
                                2: workerText(4, 2)}
        self.reactor.advance(STARTUP_GRACE - 1)
        self.assertEqual(labelled(self.scrape(), "txws_worker_up", "worker")["1"], 0)
        self.assertEqual(self.messages(), [])
        self.workers.answers[1] = workerText(1, 1)
        self.scrape()
        self.workers.answers[1] = WorkerScrapeError("connect", "Connection refused")
        self.scrape()
        self.assertEqual(len(self.messages()), 1)

    def test_restartingWorker(self) -> None:
        """
        A worker that is not running is not asked (up 0, no log line);
        once restarted it counts in C{txws_worker_restarts_total}, is
        given the grace period again, and is served once it answers.
        """
        self.workers.answers = {1: workerText(1, 1), 2: workerText(4, 2)}
        self.scrape()
        self.supervisor.workers[1].processEnded(Failure(ProcessDone(0)))
        del self.workers.asked[:]
        samples = self.scrape()
        self.assertEqual(self.workers.asked, ["worker-2.sock"])
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 0, "2": 1})
        self.reactor.advance(1.0)  # the restart delay
        self.assertEqual(sorted(self.supervisor.workers), [1, 2])
        self.workers.answers[1] = WorkerScrapeError("connect", "No such file")
        self.scrape()
        self.assertEqual(self.messages(), [])
        self.workers.answers[1] = workerText(0, 0)
        samples = self.scrape()
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 1, "2": 1})
        self.assertEqual(
            labelled(samples, "txws_worker_restarts_total", "worker"), {"1": 1, "2": 0}
        )
        self.assertEqual(value(samples, "txws_messages_received_total", app="hub", worker="1"), 0)

    def test_waitsForAll(self) -> None:
        """
        The answer waits for every worker asked: until the slow one
        answers, nothing is written.
        """
        slow: Deferred[str] = Deferred()
        self.workers.answers = {1: slow, 2: workerText(4, 2)}
        request = self.get()
        self.assertEqual(request.finished, 0)
        slow.callback(workerText(2, 2))
        self.assertEqual(labelled(self.answered(request), "txws_worker_up", "worker"),
                         {"1": 1, "2": 1})

    def test_timeout(self) -> None:
        """
        With the real fetch: a worker that never answers is left out after
        the timeout, and the worker that answered is served.
        """
        self.reactor.advance(STARTUP_GRACE)
        self.resource = WorkerMetricsResource(self.supervisor, self.reactor)
        request = self.get()
        connections = {os.path.basename(path): factory
                       for path, factory, _t, _c in self.reactor.unixClients}
        self.assertEqual(sorted(connections), ["worker-1.sock", "worker-2.sock"])
        protocol = connections["worker-2.sock"].buildProtocol(None)
        protocol.makeConnection(StringTransport())
        protocol.dataReceived(b"HTTP/1.0 200 OK\r\n\r\n" + workerText(4, 2).encode())
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(request.finished, 0)
        self.reactor.advance(WORKER_SCRAPE_TIMEOUT)
        samples = self.answered(request)
        self.assertEqual(labelled(samples, "txws_live_connections", "worker"), {"2": 4})
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 0, "2": 1})
        (message,) = self.messages()
        self.assertIn("worker 1", message)
        self.assertIn("no answer within 2 s", message)

    def test_clientGone(self) -> None:
        """
        A scrape whose client went away while the workers were asked is
        not answered.
        """
        slow: Deferred[str] = Deferred()
        self.workers.answers = {1: slow, 2: workerText(4, 2)}
        request = self.get()
        request.processingFailed(Failure(ConnectionDone()))
        slow.callback(workerText(2, 2))
        self.assertEqual(request.written, [])

    def test_typeConflictServesFirst(self) -> None:
        """
        Workers that disagree on a family's type (they cannot, running one
        command line) are logged and the first worker's metrics served.
        """
        other = CollectorRegistry()
        Counter("txws_live_connections", "Not a gauge.", registry=other).inc()
        self.workers.answers = {1: workerText(3, 1), 2: generate_latest(other).decode()}
        samples = self.scrape()
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 1, "2": 0})
        self.assertEqual(labelled(samples, "txws_live_connections", "worker"), {"1": 3})
        (message,) = self.messages()
        self.assertIn("serving only worker 1's metrics", message)


class RegistryPageTests(TestCase):
    """
    L{RegistryPage} over a real UNIX socket, fetched by
    L{fetchWorkerMetrics} (a worker's C{/metrics}, and a single server's
    C{--metrics unix:}).
    """

    async def test_overUNIXSocket(self) -> None:
        """
        The registry, rendered in the thread pool, reaches a client over a
        UNIX socket.
        """
        from twisted.web.resource import Resource
        from twisted.web.server import Site

        registry = CollectorRegistry()
        Counter("served", "Scrapes served.", registry=registry).inc(3)
        root = Resource()
        root.putChild(b"metrics", RegistryPage(registry, reactor))
        # (trial's temporary directories are too deep for a socket's path)
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "m.sock")
        port = reactor.listenUNIX(path, Site(root))
        self.addCleanup(port.stopListening)
        text = await fetchWorkerMetrics(reactor, path)
        self.assertEqual(value(parseScrape(text), "served_total"), 3)

    async def test_openMetrics(self) -> None:
        """
        A scrape that asks for OpenMetrics gets it.
        """
        registry = CollectorRegistry()
        Counter("served", "Scrapes served.", registry=registry).inc(3)
        request = DummyRequest([b""])
        request.requestHeaders.setRawHeaders(
            b"accept", [b"application/openmetrics-text; version=1.0.0,text/plain;q=0.5"]
        )
        finished = request.notifyFinish()
        self.assertIs(RegistryPage(registry, reactor).render_GET(request), NOT_DONE_YET)  # type: ignore[arg-type]
        await finished
        (contentType,) = request.responseHeaders.getRawHeaders(b"content-type") or [b""]
        self.assertTrue(contentType.startswith(b"application/openmetrics-text; version=1.0.0"))
        body = b"".join(request.written).decode()
        self.assertIn("served_total 3.0\n", body)
        self.assertTrue(body.endswith("# EOF\n"), body)


# -- real processes -----------------------------------------------------------


def scrape(port: int) -> tuple[int, Samples]:
    """
    @return: the status and the samples of the parent's C{/metrics}.
    """
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    return response.status_code, parseScrape(response.text)


def workersIn(samples: Samples) -> set[Optional[str]]:
    """
    @return: the C{worker} labels of every sample but the parent's own.
    """
    return {
        dict(labels).get("worker") for (name, labels), _v in samples.items()
        if not name.startswith(("txws_worker_", "txws_workers"))
    }


class WorkersMetricsProcessTests(TestCase):
    """
    C{twistd -n txws --workers 2 --metrics tcp:PORT} with real processes.
    """

    timeout = 120

    async def test_oneTarget(self) -> None:
        """
        The parent's C{/metrics} covers both workers: the open connections
        of each match the subscribers it holds (read from C{/proc}); with a
        worker killed, a scrape still answers 200 with the other's series
        and C{txws_worker_up} 0; the restarted worker comes back counted in
        C{txws_worker_restarts_total}; the private directory of sockets
        (mode 0700) is gone once the parent stopped.
        """
        redis = startRedis(self)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        keys = writeKeyFile(os.path.join(directory, "keys.json"), KEYS)
        metricsPort = freePort()
        hub = HubProcess(
            self, "--broker", f"redis://127.0.0.1:{redis.port}/0", "--workers", "2",
            "--hmac-keys", keys, "--close-timeout", "2",
            "--metrics", f"tcp:{metricsPort}:interface=127.0.0.1",
        )
        started = await waitForLog(hub, r"started worker (\d) \(pid (\d+)\)", 2)
        pids = {int(m.group(1)): int(m.group(2)) for m in started}
        sockets = (await waitForLog(hub, r"worker metrics sockets in (\S+)"))[0].group(1)
        self.assertEqual(stat.S_IMODE(os.stat(sockets).st_mode), 0o700)
        await waitForLog(hub, r"\[worker \d\] txws metrics listening on unix:", 2)
        self.assertEqual(sorted(os.listdir(sockets)), ["worker-1.sock", "worker-2.sock"])

        subscribers = []
        for _ in range(20):
            subscriber = await TxwsSubscriber.open(hub.wsURL("channel=news"))
            self.addCleanup(subscriber.close)
            self.assertEqual((await subscriber.nextJSON())["type"], "subscribed")
            subscribers.append(subscriber)
        clientPorts = [cast(Any, s.protocol.transport).getHost().port for s in subscribers]
        owners = connectionOwners(hub.port, clientPorts, list(pids.values()))
        held = {str(index): owners.count(pid) for index, pid in pids.items()}

        status, samples = scrape(metricsPort)
        self.assertEqual(status, 200)
        open_ = {worker: v for (name, labels), v in samples.items()
                 if name == "txws_live_connections" and dict(labels)["state"] == "open"
                 for worker in [dict(labels)["worker"]]}
        self.assertEqual(open_, held)
        self.assertEqual(sum(open_.values()), 20)
        self.assertEqual(set(open_), {"1", "2"}, f"connections per worker: {held}")
        self.assertEqual(value(samples, "txws_workers"), 2)
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 1, "2": 1})
        self.assertEqual(set(labelled(samples, "process_resident_memory_bytes", "worker")),
                         {"1", "2"})
        self.assertEqual(workersIn(samples), {"1", "2"})

        os.kill(pids[1], signal.SIGKILL)
        status, samples = scrape(metricsPort)
        self.assertEqual(status, 200)
        self.assertEqual(labelled(samples, "txws_worker_up", "worker"), {"1": 0, "2": 1})
        self.assertEqual(workersIn(samples), {"2"})
        self.assertEqual(
            value(samples, "txws_live_connections", app="hub", state="open", worker="2"),
            held["2"],
        )

        await waitForLog(hub, r"restarted worker 1 \(pid (\d+)\)")
        deadline = time.monotonic() + 30
        while True:
            status, samples = scrape(metricsPort)
            self.assertEqual(status, 200)
            if labelled(samples, "txws_worker_up", "worker")["1"] == 1:
                break
            self.assertLess(time.monotonic(), deadline, "worker 1 never answered again")
            await deferLater(reactor, 0.2)
        self.assertEqual(
            labelled(samples, "txws_worker_restarts_total", "worker"), {"1": 1, "2": 0}
        )
        self.assertEqual(
            value(samples, "txws_live_connections", app="hub", state="open", worker="1"), 0
        )
        self.assertEqual(
            value(samples, "txws_live_connections", app="hub", state="open", worker="2"),
            held["2"],
        )

        self.assertEqual(hub.terminate(30), 0, fullLog(hub)[-4000:])
        self.assertFalse(os.path.exists(sockets))
        log = fullLog(hub)
        self.assertNotIn("Traceback", log)
        self.assertLessEqual(log.count("not scraped"), 1, log[-4000:])

