"""
C{twistd txws --workers N --metrics ENDPOINT}: one scrape target, the
parent's C{/metrics}, covering every worker.

Design: each worker serves its own C{/metrics} (what C{--metrics} serves
without workers, a L{RegistryPage}) on a private UNIX socket of the supervisor's
(L{txws._workers.WorkerSupervisor.metricsSocket}).  Per scrape of the
parent, L{WorkerMetricsResource} fetches every live worker's scrape at
once over its socket (L{fetchWorkerMetrics}, each bounded by
L{WORKER_SCRAPE_TIMEOUT}), parses them with C{prometheus-client}'s parser,
adds a C{worker="I"} label to every sample (L{mergeScrapes}: one family,
one HELP and TYPE, holding the samples of all workers) and adds the
parent's own families: C{txws_workers}, C{txws_worker_up} and
C{txws_worker_restarts_total}.  A worker that is not running (restarting)
is not asked; one that does not answer in time, or answers badly, is left
out of that scrape with C{txws_worker_up} 0, and the rest is served.  Each
worker's failures are logged when their kind changes (and its recovery
once), not per scrape, and a worker that has just started is given
L{STARTUP_GRACE} to open its socket before a failure is logged.

Nothing is cached between scrapes: each answer is what the workers said at
that moment.  The merge runs in the reactor's thread of the parent, which
does nothing else but relay its workers' logs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred, TimeoutError, gatherResults
from twisted.internet.endpoints import UNIXClientEndpoint
from twisted.internet.error import ConnectError, ConnectingCancelledError
from twisted.internet.error import TimeoutError as ConnectTimeoutError
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from txws._workers import WorkerSupervisor

__all__ = [
    "CONTENT_TYPE",
    "MAX_SCRAPE_SIZE",
    "STARTUP_GRACE",
    "WORKER_SCRAPE_TIMEOUT",
    "RegistryPage",
    "WorkerMetricsResource",
    "WorkerScrapeError",
    "fetchWorkerMetrics",
    "mergeScrapes",
]

_log = Logger(namespace="txws.metrics")

#: Seconds a worker is given to answer one scrape of the parent.
WORKER_SCRAPE_TIMEOUT = 2.0

#: The largest answer accepted from one worker, bytes (a hub's scrape is
#: about 20 KB; an application's own metrics may add more).
MAX_SCRAPE_SIZE = 64 * 1024 * 1024

#: Seconds after a worker starts during which a failure to scrape it is not
#: logged (it may not listen on its socket yet).
STARTUP_GRACE = 10.0

#: The label added to every sample of a worker.
WORKER_LABEL = "worker"

#: What a sample's own C{worker} label is renamed to (as Prometheus renames
#: a target's labels that clash with its own).
EXPORTED_WORKER_LABEL = "exported_worker"

#: The format of the parent's answer: Prometheus text format 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WorkerScrapeError(Exception):
    """
    A worker's metrics could not be had.

    @ivar kind: what went wrong, as a short word (C{"timeout"},
        C{"connect"}, C{"status"}, C{"answer"}, C{"size"}, C{"parse"},
        C{"error"}): a worker's failures are logged when this changes.
    @ivar why: the details, for the log.
    """

    def __init__(self, kind: str, why: str) -> None:
        """
        @param kind: what went wrong, as a short word.
        @param why: the details.
        """
        super().__init__(f"{kind}: {why}")
        self.kind = kind
        self.why = why


class _OneRequest(Protocol):
    """
    C{GET /metrics} in HTTP/1.0, whose answer ends with the connection.

    @ivar answer: fires with the whole answer once the connection is gone,
        or fails with L{WorkerScrapeError} if it grows beyond C{limit}.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self.answer: Deferred[bytes] = Deferred(lambda _: self._abort())

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(b"GET /metrics HTTP/1.0\r\nHost: worker\r\n\r\n")

    def dataReceived(self, data: bytes) -> None:
        if self.answer.called:
            return
        self._size += len(data)
        if self._size > self._limit:
            self.answer.errback(
                WorkerScrapeError("size", f"answer larger than {self._limit} bytes")
            )
            self._abort()
            return
        self._chunks.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if not self.answer.called:
            self.answer.callback(b"".join(self._chunks))


class _Quiet(Factory):
    """
    The factory of one scrape: logs nothing ("Starting factory") per scrape.
    """

    noisy = False

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def buildProtocol(self, addr: object) -> _OneRequest:
        return _OneRequest(self.limit)


def _body(answer: bytes) -> str:
    """
    @return: the body of a 200 answer.
    @raise WorkerScrapeError: if the answer is not one.
    """
    head, separator, body = answer.partition(b"\r\n\r\n")
    if not separator:
        raise WorkerScrapeError("answer", "the connection closed before a whole answer")
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    if len(status) < 2 or not status[0].startswith(b"HTTP/"):
        raise WorkerScrapeError("answer", "not an HTTP answer")
    if status[1] != b"200":
        raise WorkerScrapeError("status", f"answered HTTP {status[1].decode('ascii', 'replace')}")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        length = value.strip()
        if name.strip().lower() == b"content-length" and length.isdigit() and (
            int(length) != len(body)
        ):
            raise WorkerScrapeError(
                    "answer", f"{len(body)} bytes of a {int(value)}-byte answer"
                )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise WorkerScrapeError("parse", "the answer is not UTF-8") from None


def fetchWorkerMetrics(
    reactor: Any, path: str, timeout: float = WORKER_SCRAPE_TIMEOUT, limit: int = MAX_SCRAPE_SIZE
) -> Deferred[str]:
    """
    C{GET /metrics} (HTTP/1.0) over a worker's UNIX socket.

    @param reactor: an C{IReactorUNIX} and C{IReactorTime}.
    @param path: the socket's path.
    @param timeout: seconds allowed for connecting, the answer and its body.
    @param limit: the largest answer accepted, in bytes.
    @return: a Deferred of the body (the Prometheus text format), failed
        with L{WorkerScrapeError} if the worker cannot be reached, does not
        answer 200 within C{timeout}, or answers more than C{limit} bytes.
    """
    endpoint = UNIXClientEndpoint(reactor, path, timeout=timeout)
    fetching: Deferred[Any] = endpoint.connect(_Quiet(limit))
    fetching.addCallback(lambda protocol: protocol.answer)
    fetching.addCallback(_body)

    def explain(failure: Failure) -> Failure:
        if failure.check(WorkerScrapeError):
            return failure
        # Cancelled by the timeout while connecting, or while answering.
        if failure.check(TimeoutError, ConnectingCancelledError, ConnectTimeoutError):
            raise WorkerScrapeError("timeout", f"no answer within {timeout:g} s")
        if failure.check(ConnectError):
            raise WorkerScrapeError("connect", failure.getErrorMessage())
        raise WorkerScrapeError("error", _describe(failure))

    fetching.addTimeout(timeout, reactor)
    fetching.addErrback(explain)
    return fetching


def _describe(failure: Failure) -> str:
    kind = failure.type.__name__ if failure.type is not None else "error"
    return f"{kind}: {failure.getErrorMessage()}"


class RegistryPage(Resource):
    """
    The C{/metrics} of one process (a single server, or a worker): a
    C{prometheus-client} registry rendered in the reactor's thread pool, in
    the format the scrape's C{Accept} asks for (as C{prometheus-client}'s
    own Twisted C{MetricsResource}, whose WSGI container cannot serve a
    UNIX socket's peer).
    """

    isLeaf = True

    def __init__(self, registry: CollectorRegistry, reactor: Any) -> None:
        """
        @param registry: what to render.
        @param reactor: an C{IReactorThreads}.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self._registry = registry
        self._reactor = reactor

    def render_GET(self, request: Request) -> object:
        """
        Render the registry in a thread.

        @param request: the scrape.
        @return: C{NOT_DONE_YET}.
        """
        accept = request.getHeader(b"accept")
        encoder, contentType = choose_encoder(accept.decode("latin-1") if accept else "")
        rendering = deferToThreadPool(
            self._reactor, self._reactor.getThreadPool(), encoder, self._registry
        )
        _answerLater(request, rendering, contentType)
        return NOT_DONE_YET


def _answerLater(request: Request, rendering: Deferred[bytes], contentType: str) -> None:
    """
    Answer a request with what C{rendering} gives, or 500 (and one log
    line) if it fails; nothing if the client is gone by then.
    """
    gone: list[object] = []
    request.notifyFinish().addBoth(gone.append)

    def answer(body: bytes) -> None:
        if gone:
            return
        request.setHeader(b"Content-Type", contentType.encode("ascii"))
        request.write(body)
        request.finish()

    def failed(failure: Failure) -> None:
        _log.failure("cannot render the metrics", failure)
        if gone:
            return
        request.setResponseCode(500)
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        request.write(b"cannot render the metrics: see the server's log\n")
        request.finish()

    rendering.addCallbacks(answer, failed)


def _parse(text: str) -> list[Metric]:
    """
    @return: the families of one worker's scrape.
    @raise WorkerScrapeError: if it is not the Prometheus text format.
    """
    try:
        return list(text_string_to_metric_families(text))
    except Exception as e:  # the parser raises ValueError, and others on odd input
        raise WorkerScrapeError("parse", f"{type(e).__name__}: {e}") from None


def mergeScrapes(scrapes: Mapping[int, Iterable[Metric]]) -> list[Metric]:
    """
    Merge the families of several workers' scrapes: one family per name
    (its HELP, TYPE and unit from the first worker that has it), holding
    every worker's samples, each with a C{worker} label (the worker's
    index); a sample's own C{worker} label becomes C{exported_worker}.

    @param scrapes: each worker's families, by its index.
    @return: the merged families, in the order they first appear (workers
        by index).
    @raise ValueError: naming the family, if two workers give one name
        different types.
    """
    merged: dict[str, Metric] = {}
    for index in sorted(scrapes):
        worker = str(index)
        for family in scrapes[index]:
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(
                    family.name, family.documentation, family.type, family.unit
                )
            elif into.type != family.type:
                raise ValueError(
                    f"metric {family.name} is a {into.type} in one worker and a "
                    f"{family.type} in worker {worker}"
                )
            add = into.samples.append
            for sample in family.samples:
                labels = dict(sample.labels)
                if WORKER_LABEL in labels:
                    labels[EXPORTED_WORKER_LABEL] = labels.pop(WORKER_LABEL)
                labels[WORKER_LABEL] = worker
                add(sample._replace(labels=labels))
    return list(merged.values())


@dataclass
class _Health:
    """
    What the log last said about one worker's metrics.

    @ivar pid: the worker's process.
    @ivar state: C{"starting"} (not answered yet since it started),
        C{"up"}, or the kind of its last failure.
    """

    pid: Optional[int]
    state: str = "starting"


class _Families:
    """
    Families for C{generate_latest}.
    """

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


class WorkerMetricsResource(Resource):
    """
    The parent's C{/metrics} under C{--workers}: every live worker's
    metrics, merged, with the parent's own (C{docs/metrics.md}).
    """

    isLeaf = True

    def __init__(
        self,
        supervisor: WorkerSupervisor,
        reactor: Any,
        timeout: float = WORKER_SCRAPE_TIMEOUT,
        fetch: Optional[Callable[[str], Deferred[str]]] = None,
    ) -> None:
        """
        @param supervisor: the workers' supervisor (its C{workerMetrics} on).
        @param reactor: an C{IReactorUNIX} and C{IReactorTime}.
        @param timeout: seconds each worker is given to answer.
        @param fetch: fetches a worker's scrape given its socket's path
            (default: L{fetchWorkerMetrics} with C{timeout}); for tests.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self._supervisor = supervisor
        self._reactor = reactor
        self._timeout = timeout
        self._fetch = fetch or (lambda path: fetchWorkerMetrics(reactor, path, timeout))
        self._health: dict[int, _Health] = {}

    def render_GET(self, request: Request) -> object:
        """
        Scrape every live worker, then answer with the merged metrics.

        @param request: the scrape.
        @return: C{NOT_DONE_YET}.
        """
        _answerLater(request, self.scrape(), CONTENT_TYPE)
        return NOT_DONE_YET

    def scrape(self) -> Deferred[bytes]:
        """
        Fetch every live worker's metrics at once and merge them.

        @return: a Deferred of the merged scrape (Prometheus text format),
            which fires once every worker answered, failed or timed out.
        """
        supervisor = self._supervisor
        asked: list[Deferred[tuple[int, Optional[list[Metric]]]]] = []
        for index in range(1, supervisor.count + 1):
            process = supervisor.workers.get(index)
            path = supervisor.metricsSocket(index)
            if process is None or not process.running or path is None:
                continue
            asked.append(self._one(index, process.pid, process.startedAt, path))
        done: Deferred[bytes] = gatherResults(asked).addCallback(self._render)
        return done

    def _one(
        self, index: int, pid: Optional[int], startedAt: float, path: str
    ) -> Deferred[tuple[int, Optional[list[Metric]]]]:
        health = self._health.get(index)
        if health is None or health.pid != pid:
            health = self._health[index] = _Health(pid)

        def parsed(text: str) -> tuple[int, Optional[list[Metric]]]:
            families = _parse(text)
            if health.state not in ("up", "starting"):
                _log.info(
                    "metrics of worker {index} (pid {pid}) answer again", index=index, pid=pid
                )
            health.state = "up"
            return index, families

        def failed(failure: Failure) -> tuple[int, Optional[list[Metric]]]:
            error = failure.value
            if not isinstance(error, WorkerScrapeError):
                error = WorkerScrapeError("error", _describe(failure))
            young = self._reactor.seconds() - startedAt < STARTUP_GRACE
            if health.state == "starting" and young:
                return index, None
            if health.state != error.kind:
                _log.warn(
                    "metrics of worker {index} (pid {pid}) not scraped: {why}; it is left "
                    "out of /metrics (txws_worker_up 0) until it answers",
                    index=index, pid=pid, why=error.why,
                )
                health.state = error.kind
            return index, None

        fetching: Deferred[tuple[int, Optional[list[Metric]]]] = (
            self._fetch(path).addCallback(parsed).addErrback(failed)
        )
        return fetching

    def _render(self, results: list[tuple[int, Optional[list[Metric]]]]) -> bytes:
        scrapes = {index: families for index, families in results if families is not None}
        try:
            families = mergeScrapes(scrapes)
        except ValueError as e:
            # Workers of one command line cannot disagree; if they ever do,
            # serve the first worker's view rather than nothing.
            first = min(scrapes)
            _log.error("{why}: serving only worker {index}'s metrics", why=e, index=first)
            scrapes = {first: scrapes[first]}
            families = mergeScrapes(scrapes)
        count = self._supervisor.count
        configured = GaugeMetricFamily(
            "txws_workers", "Worker processes configured (--workers)."
        )
        configured.add_metric([], count)
        up = GaugeMetricFamily(
            "txws_worker_up",
            "1 if this scrape got the worker's metrics, else 0 (not running, restarting, "
            "or no answer in time).",
            labels=[WORKER_LABEL],
        )
        restarts = CounterMetricFamily(
            "txws_worker_restarts",
            "Times the supervisor started the worker again after it died.",
            labels=[WORKER_LABEL],
        )
        for index in range(1, count + 1):
            up.add_metric([str(index)], 1 if index in scrapes else 0)
            restarts.add_metric([str(index)], self._supervisor.restarts.get(index, 0))
        own = [configured, up, restarts]
        taken = {family.name for family in own}
        families = [family for family in families if family.name not in taken]
        return generate_latest(_Families([*families, *own]))
