"""
Prometheus metrics of txws's WebSocket factories, through the maintained
C{prometheus-client} (install the C{metrics} extra).

Design: nothing here runs per message.  Each connection keeps four plain
ints (messages and payload bytes, each way; a slot increment on paths that
already run); a L{WebSocketMetrics} is a C{prometheus-client} collector
that, at scrape time, sums them over the live connections of every factory
it L{tracks<WebSocketMetrics.track>}, plus what connections that are gone
left behind: a tracked factory's connection registry is replaced by one
that folds a closing connection's counts into its application's totals.
The rare events (a handshake refused, a frame refused, a connection made or
closed) are counted when they happen.

C{prometheus-client}'s Twisted C{MetricsResource} serves a scrape from a
thread of the reactor's pool, so the totals and the set of live
connections change under one lock: a scrape never counts a closing
connection twice, or not at all, and counters never go down.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Optional

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
except ImportError as e:  # pragma: no cover (the test extra installs it)
    raise ImportError(
        "txws.metrics needs prometheus-client: pip install 'txws[metrics]'"
    ) from e

from twisted.internet.interfaces import IReactorTime

from txws._hosting import ConnectionRegistry
from txws.factory import WebSocketFactory
from txws.frames import CloseCode
from txws.protocol import _UNOPENED, State, WebSocketProtocol

__all__ = ["OTHER_APPLICATION_CODES", "WebSocketMetrics", "closeCodeOf"]

#: The C{code} label of a close with an application code (3000-4999) that
#: was not declared to L{WebSocketMetrics.track}: peers choose these, and a
#: label per value would let them create up to 2,000 series.
OTHER_APPLICATION_CODES = "3000-4999"

_CONNECTING = State.CONNECTING
_OPEN = State.OPEN
_ABNORMAL_CLOSURE = int(CloseCode.ABNORMAL_CLOSURE)


def closeCodeOf(connection: WebSocketProtocol) -> int:
    """
    The close code a connection that was open is counted under: the code of
    the Close frame we sent (ours when we closed first; the peer's, echoed,
    when it did), else the peer's, else 1006 (no Close frame either way).

    @param connection: a closed (or closing) connection.
    @return: the code.
    """
    if connection.localCloseCode is not None:
        return connection.localCloseCode
    if connection.remoteCloseCode is not None:
        return connection.remoteCloseCode
    return _ABNORMAL_CLOSURE


def _reasonOf(code: int) -> str:
    try:
        return CloseCode(code).name.lower()
    except ValueError:
        return "other"


class _Tally:
    """
    One application label's totals, and the registries of its factories.
    """

    __slots__ = (
        "bytesIn",
        "bytesOut",
        "closeCodes",
        "closes",
        "frames",
        "handshakes",
        "made",
        "messagesIn",
        "messagesOut",
        "opened",
        "registries",
    )

    def __init__(self) -> None:
        self.made = 0
        self.opened = 0
        self.messagesIn = 0
        self.bytesIn = 0
        self.messagesOut = 0
        self.bytesOut = 0
        self.closes: dict[str, int] = {}
        self.handshakes: dict[int, int] = {}
        self.frames: dict[int, int] = {}
        self.closeCodes: set[int] = set()
        self.registries: list[_MeteredRegistry] = []

    def closeLabel(self, code: int) -> str:
        if code < 3000 or code in self.closeCodes:
            return str(code)
        return OTHER_APPLICATION_CODES

    def fold(self, connection: WebSocketProtocol) -> None:
        """
        A connection is gone: keep what it counted.
        """
        self.messagesIn += connection._messagesIn
        self.bytesIn += connection._bytesIn
        self.messagesOut += connection._messagesOut
        self.bytesOut += connection._bytesOut
        if connection._writer is not _UNOPENED:
            self.opened += 1
            label = self.closeLabel(closeCodeOf(connection))
            self.closes[label] = self.closes.get(label, 0) + 1


class _MeteredRegistry(ConnectionRegistry[WebSocketProtocol]):
    """
    A tracked factory's registry: counts connections made, refusals, and
    folds a connection's counts into its tally when it goes.
    """

    __slots__ = ("_lock", "_tally")

    def __init__(self, reactor: IReactorTime, tally: _Tally, lock: threading.Lock) -> None:
        super().__init__(reactor)
        self._tally = tally
        self._lock = lock

    def add(self, connection: WebSocketProtocol) -> None:
        super().add(connection)
        self._tally.made += 1

    def remove(self, connection: WebSocketProtocol) -> None:
        if connection in self._connections:
            with self._lock:
                self._tally.fold(connection)
                self._connections.discard(connection)
        super().remove(connection)

    def handshakeRefused(self, status: int) -> None:
        handshakes = self._tally.handshakes
        with self._lock:
            handshakes[status] = handshakes.get(status, 0) + 1

    def frameRefused(self, code: int) -> None:
        frames = self._tally.frames
        code = int(code)
        with self._lock:
            frames[code] = frames.get(code, 0) + 1


class WebSocketMetrics:
    """
    The metrics of the WebSocket factories it tracks, as a
    C{prometheus-client} collector registered with one registry.  Every
    metric has an C{app} label, the one given to L{track}; factories
    tracked with the same label are summed.  C{docs/metrics.md} lists the
    metrics.

    Typical use::

        metrics = WebSocketMetrics()          # on prometheus_client.REGISTRY
        metrics.track(factory, app="chat")    # before the factory listens
        # serve prometheus_client.twisted.MetricsResource() on its own port
    """

    def __init__(self, registry: Optional[CollectorRegistry] = REGISTRY) -> None:
        """
        @param registry: the registry to register with (the default
            C{prometheus_client.REGISTRY}, which also holds the process
            metrics), or C{None} not to register.
        @raise ValueError: if that registry already has a collector of
            these metrics' names (one L{WebSocketMetrics} per registry).
        """
        self._lock = threading.Lock()
        self._tallies: dict[str, _Tally] = {}
        if registry is not None:
            registry.register(self)

    def track(
        self, factory: WebSocketFactory, app: str = "default", closeCodes: Sequence[int] = ()
    ) -> None:
        """
        Count a factory's connections (server or client) from now on.

        @param factory: a factory that has no connection yet.
        @param app: the C{app} label of its metrics.
        @param closeCodes: application close codes (3000-4999) counted under
            their own C{code} label; others are counted together as
            L{OTHER_APPLICATION_CODES}.
        @raise ValueError: if the factory is already tracked or has
            connections.
        """
        if isinstance(factory.registry, _MeteredRegistry):
            raise ValueError("this factory is already tracked")
        if factory.connectionCount:
            raise ValueError("track a factory before it has connections")
        with self._lock:
            tally = self._tallies.get(app)
            if tally is None:
                tally = self._tallies[app] = _Tally()
            tally.closeCodes.update(int(code) for code in closeCodes)
            registry = _MeteredRegistry(factory.reactor, tally, self._lock)
            tally.registries.append(registry)
        factory.registry = registry

    def describe(self) -> Iterable[Metric]:
        """
        @return: the metric families, without samples (so that a registry
            refuses a second collector of the same names).
        """
        return _Families().all()

    def collect(self) -> Iterable[Metric]:
        """
        Sum the live connections and the totals (called by the registry at
        each scrape, possibly from another thread than the reactor's).

        @return: the metric families.
        """
        f = _Families()
        with self._lock:
            for app, tally in self._tallies.items():
                states = {"connecting": 0, "open": 0, "closing": 0}
                liveOpened = messagesIn = bytesIn = messagesOut = bytesOut = buffered = 0
                for registry in tally.registries:
                    for c in registry.connections():
                        state = c.state
                        if state is _CONNECTING:
                            states["connecting"] += 1
                        elif state is _OPEN:
                            states["open"] += 1
                        else:
                            states["closing"] += 1
                        if c._writer is not _UNOPENED:
                            liveOpened += 1
                        messagesIn += c._messagesIn
                        bytesIn += c._bytesIn
                        messagesOut += c._messagesOut
                        bytesOut += c._bytesOut
                        buffered += c.bufferedAmount
                for name, count in states.items():
                    f.live.add_metric([app, name], count)
                f.made.add_metric([app], tally.made)
                f.opened.add_metric([app], tally.opened + liveOpened)
                for status, count in sorted(tally.handshakes.items()):
                    f.refused.add_metric([app, str(status)], count)
                for label, count in sorted(tally.closes.items()):
                    f.closed.add_metric([app, label], count)
                for code, count in sorted(tally.frames.items()):
                    f.frames.add_metric([app, str(code), _reasonOf(code)], count)
                f.messagesIn.add_metric([app], tally.messagesIn + messagesIn)
                f.bytesIn.add_metric([app], tally.bytesIn + bytesIn)
                f.messagesOut.add_metric([app], tally.messagesOut + messagesOut)
                f.bytesOut.add_metric([app], tally.bytesOut + bytesOut)
                f.buffered.add_metric([app], buffered)
        return f.all()


class _Families:
    """
    The library's metric families, empty.
    """

    def __init__(self) -> None:
        self.live = GaugeMetricFamily(
            "txws_live_connections",
            "WebSocket connections alive now, by state (connecting: in the opening "
            "handshake; closing: a Close frame sent or received).",
            labels=["app", "state"],
        )
        self.made = CounterMetricFamily(
            "txws_connections",
            "Connections made (accepted or connected), each starting an opening handshake.",
            labels=["app"],
        )
        self.opened = CounterMetricFamily(
            "txws_connections_opened",
            "Connections whose opening handshake completed.",
            labels=["app"],
        )
        self.refused = CounterMetricFamily(
            "txws_handshakes_refused",
            "Opening handshakes refused, by HTTP status: by this server (a server "
            "factory), or by the server a client factory connected to.",
            labels=["app", "status"],
        )
        self.closed = CounterMetricFamily(
            "txws_connections_closed",
            "Connections that had opened and are gone, by close code (the code of our "
            "Close frame, else the peer's, else 1006).",
            labels=["app", "code"],
        )
        self.frames = CounterMetricFamily(
            "txws_frames_refused",
            "Connections failed because the peer broke the framing, UTF-8 or a size "
            "limit, by close code.",
            labels=["app", "code", "reason"],
        )
        self.messagesIn = CounterMetricFamily(
            "txws_messages_received", "Messages received.", labels=["app"]
        )
        self.bytesIn = CounterMetricFamily(
            "txws_messages_received_bytes",
            "Payload bytes of the messages received.",
            labels=["app"],
        )
        self.messagesOut = CounterMetricFamily(
            "txws_messages_sent", "Messages sent.", labels=["app"]
        )
        self.bytesOut = CounterMetricFamily(
            "txws_messages_sent_bytes", "Payload bytes of the messages sent.", labels=["app"]
        )
        self.buffered = GaugeMetricFamily(
            "txws_buffered_bytes",
            "Bytes of frames queued in txws for peers that read too slowly (bufferedAmount "
            "summed; each transport's own write buffer comes on top).",
            labels=["app"],
        )

    def all(self) -> list[Metric]:
        return [
            self.live, self.made, self.opened, self.refused, self.closed, self.frames,
            self.messagesIn, self.bytesIn, self.messagesOut, self.bytesOut, self.buffered,
        ]
