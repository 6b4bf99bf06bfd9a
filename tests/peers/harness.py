"""
The Twisted side of the integration tests: start peer scripts in
subprocesses with the real reactor and read their JSON reports, recording
txws server and client protocols, a test certificate authority, and small
helpers that bound every wait.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Optional, TypeVar

from twisted.internet import defer
from twisted.internet import reactor as _globalReactor
from twisted.internet.defer import Deferred, DeferredQueue, succeed
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.interfaces import IListeningPort, IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.protocols.portforward import ProxyClient, ProxyClientFactory, ProxyFactory, ProxyServer
from twisted.python.failure import Failure

from tests.typedtrial import FailTest, TestCase
from txws.apps.echo import EchoServerProtocol
from txws.client import WebSocketClientFactory, WebSocketClientProtocol
from txws.factory import WebSocketFactory
from txws.server import WebSocketServerFactory

__all__ = [
    "TIMEOUT",
    "CloseEvent",
    "PeerProcess",
    "RecordingClientFactory",
    "RecordingClientProtocol",
    "RecordingRelay",
    "RecordingServerFactory",
    "RecordingServerProtocol",
    "bounded",
    "dropConnections",
    "failureOf",
    "listenedPort",
    "runPeer",
    "startPeer",
]

_T = TypeVar("_T")
_E = TypeVar("_E", bound=BaseException)

#: The bound, in seconds, on any single wait of an integration test.
TIMEOUT = 15.0

#: The directory that holds the C{tests} package, where peer scripts are
#: started with C{python -m tests.peers.<name>}.
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

reactor: Any = _globalReactor


def bounded(d: Deferred[_T], seconds: float = TIMEOUT) -> Deferred[_T]:
    """
    Fail C{d} with C{TimeoutError} if it has not fired within C{seconds}.

    @return: C{d}.
    """
    clock: IReactorTime = reactor
    return d.addTimeout(seconds, clock)


async def failureOf(d: Deferred[Any], kind: type[_E]) -> _E:
    """
    Wait for C{d} (within L{TIMEOUT}) and insist that it fails with C{kind}.

    @return: the exception.
    @raise FailTest: if C{d} succeeds; other failures propagate.
    """
    try:
        result = await bounded(d)
    except kind as e:
        return e
    raise FailTest(f"expected {kind.__name__}, got the result {result!r}")


async def dropConnections(factory: WebSocketFactory) -> None:
    """
    Abort every connection a factory still has and wait until all are gone
    (a test's cleanup, so that a failed test leaves no connection behind).
    """
    for connection in factory.connections():
        transport: Any = connection.transport
        if transport is not None:
            transport.abortConnection()
    clock: Any = reactor
    for _ in range(500):
        if not factory.connectionCount:
            return
        await deferLater(clock, 0.01)
    raise FailTest(f"{factory.connectionCount} connection(s) outlived their abort")


def listenedPort(port: IListeningPort) -> int:
    """
    @return: the TCP port number a listener got.
    """
    number: int = port.getHost().port  # type: ignore[attr-defined]
    return number


# -- Subprocess peers ---------------------------------------------------------


class PeerProcess(ProcessProtocol):
    """
    A peer script running in a subprocess: its stdout is read as lines, and
    lines of JSON as reports; stderr is kept for error messages.

    @ivar reports: the JSON objects printed so far, in order.
    @ivar lines: every line printed so far.
    @ivar ended: fires with the exit code once the process has ended.
    @ivar stdinStops: whether closing its stdin makes the peer exit (else
        it is sent SIGTERM to stop).
    """

    def __init__(self, name: str, stdinStops: bool = True) -> None:
        self.name = name
        self.stdinStops = stdinStops
        self.reports: DeferredQueue[dict[str, Any]] = DeferredQueue()
        self.lines: list[str] = []
        self.stderr = b""
        self.ended: Deferred[int] = Deferred()
        self.running = True
        self._stdout = b""
        self._lineWaiters: list[tuple[re.Pattern[str], Deferred[re.Match[str]]]] = []

    def outReceived(self, data: bytes) -> None:
        """
        Collect stdout, queue each complete JSON line, and fire the waiters
        of L{waitForLine}.
        """
        self._stdout += data
        *lines, self._stdout = self._stdout.split(b"\n")
        for raw in lines:
            if raw.strip().startswith(b"{"):
                self.reports.put(json.loads(raw))
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            for waiter in list(self._lineWaiters):
                pattern, d = waiter
                match = pattern.search(line)
                if match is not None:
                    self._lineWaiters.remove(waiter)
                    d.callback(match)

    def waitForLine(self, pattern: str) -> Deferred[re.Match[str]]:
        """
        @param pattern: a regular expression.
        @return: a Deferred firing with the match in the first line printed
            (so far or from now on) that matches, within L{TIMEOUT}.
        """
        compiled = re.compile(pattern)
        for line in self.lines:
            match = compiled.search(line)
            if match is not None:
                return succeed(match)
        d: Deferred[re.Match[str]] = Deferred(lambda d: self._lineWaiters.remove((compiled, d)))
        self._lineWaiters.append((compiled, d))

        def ended(code: int) -> int:
            if not d.called:
                d.errback(
                    RuntimeError(
                        f"peer {self.name} exited ({code}) before printing {pattern!r}; "
                        "stdout:\n"
                        + "\n".join(self.lines)
                        + "\nstderr:\n"
                        + self.stderr.decode("utf-8", "replace")
                    )
                )
            return code

        self.ended.addCallback(ended)
        return bounded(d)

    def errReceived(self, data: bytes) -> None:
        """
        Keep stderr for diagnostics.
        """
        self.stderr += data

    def processEnded(self, reason: Failure) -> None:
        """
        Record the exit code.
        """
        self.running = False
        code = 0
        if reason.check(ProcessTerminated, ProcessDone):
            code = getattr(reason.value, "exitCode", None) or 0
            if getattr(reason.value, "signal", None):
                code = -1
        self.ended.callback(code)

    def nextReport(self) -> Deferred[dict[str, Any]]:
        """
        @return: a Deferred firing with the next JSON line, or failing with
            the process's stderr if it ends first or takes too long.
        """
        report = bounded(self.reports.get())

        def ended(code: int) -> int:
            if not report.called:
                report.errback(
                    RuntimeError(
                        f"peer {self.name} exited ({code}) without a report; stderr:\n"
                        + self.stderr.decode("utf-8", "replace")
                    )
                )
            return code

        self.ended.addCallback(ended)
        return report

    def stop(self) -> Deferred[int]:
        """
        Close the peer's stdin (its signal to exit), kill it if it lingers,
        and wait until it is gone.
        """
        if not self.running:
            return succeed(0)
        assert self.transport is not None
        if self.stdinStops:
            self.transport.closeStdin()
        else:
            self.transport.signalProcess("TERM")
        clock: Any = reactor
        killer = clock.callLater(5, self._kill)

        def gone(code: int) -> int:
            if killer.active():
                killer.cancel()
            return code

        return self.ended.addCallback(gone)

    def _kill(self) -> None:
        if self.running and self.transport is not None:
            self.transport.signalProcess("KILL")


def startPeer(testCase: TestCase, script: str, *args: str, stdinStops: bool = True) -> PeerProcess:
    """
    Start C{python -m tests.peers.<script> <args>} with the real reactor;
    the test's cleanup stops it.

    @param testCase: the test that owns the process.
    @param script: the module name under C{tests.peers}.
    @param args: command line arguments.
    @param stdinStops: whether the script exits when its stdin closes (else
        it is stopped with SIGTERM).
    @return: the process protocol.
    """
    peer = PeerProcess(script, stdinStops)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, env.get("PYTHONPATH")]))
    spawner: IReactorProcess = reactor
    spawner.spawnProcess(
        peer,
        sys.executable,
        [sys.executable, "-u", "-m", f"tests.peers.{script}", *args],
        env=env,
        path=PROJECT_ROOT,
    )
    testCase.addCleanup(peer.stop)
    return peer


def runPeer(testCase: TestCase, script: str, spec: dict[str, Any]) -> Deferred[dict[str, Any]]:
    """
    Run a peer script to completion with a JSON spec as its argument.

    @return: a Deferred firing with its (last) report.
    """
    return startPeer(testCase, script, json.dumps(spec)).nextReport()


# -- Recording txws protocols ----------------------------------------------------


@dataclass(frozen=True)
class CloseEvent:
    """
    The arguments of one C{onClose} call.
    """

    wasClean: bool
    code: int
    reason: str


class RecordingServerProtocol(EchoServerProtocol):
    """
    The echo server, reporting its connections' opening and closing to its
    L{RecordingServerFactory}.
    """

    factory: RecordingServerFactory

    def onOpen(self) -> None:
        """
        Report the open connection.
        """
        self.factory.opened.put(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Record and echo the message.
        """
        self.factory.messages.append((payload, isBinary))
        super().onMessage(payload, isBinary)

    def onPong(self, payload: bytes) -> None:
        """
        Record the pong's payload.
        """
        self.factory.pongs.put(payload)

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        """
        Report how the connection closed.
        """
        self.factory.closed.put(CloseEvent(wasClean, code, reason))


class RecordingServerFactory(WebSocketServerFactory):
    """
    A txws echo server factory whose connections report their events.

    @ivar opened: the connections, as they open.
    @ivar closed: a L{CloseEvent} per closed connection.
    @ivar messages: every message received, as C{(payload, isBinary)}.
    @ivar pongs: the payload of every pong received.
    """

    protocol = RecordingServerProtocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened: DeferredQueue[RecordingServerProtocol] = DeferredQueue()
        self.closed: DeferredQueue[CloseEvent] = DeferredQueue()
        self.messages: list[tuple[bytes, bool]] = []
        self.pongs: DeferredQueue[bytes] = DeferredQueue()

    def nextOpen(self) -> Deferred[RecordingServerProtocol]:
        """
        @return: the next connection to open, within L{TIMEOUT}.
        """
        return bounded(self.opened.get())

    def nextClose(self) -> Deferred[CloseEvent]:
        """
        @return: the next L{CloseEvent}, within L{TIMEOUT}.
        """
        return bounded(self.closed.get())


class RecordingClientProtocol(WebSocketClientProtocol):
    """
    A txws client that queues what it receives.

    @ivar messages: C{(payload, isBinary)} per message.
    @ivar closed: fires with a L{CloseEvent} from C{onClose}.
    """

    def __init__(self) -> None:
        self.messages: DeferredQueue[tuple[bytes, bool]] = DeferredQueue()
        self.closed: Deferred[CloseEvent] = Deferred()
        self.pongs: DeferredQueue[bytes] = DeferredQueue()

    def connectionMade(self) -> None:
        """
        Tell a L{RecordingClientFactory} about the new connection.
        """
        if isinstance(self.factory, RecordingClientFactory):
            self.factory.built.append(self)
        super().connectionMade()

    def onOpen(self) -> None:
        """
        Tell a L{RecordingClientFactory} that the connection is open.
        """
        if isinstance(self.factory, RecordingClientFactory):
            self.factory.opened.put(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Queue the message.
        """
        self.messages.put((payload, isBinary))

    def onPong(self, payload: bytes) -> None:
        """
        Queue the pong's payload.
        """
        self.pongs.put(payload)

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        """
        Report how the connection closed.
        """
        self.closed.callback(CloseEvent(wasClean, code, reason))

    def nextMessage(self) -> Deferred[tuple[bytes, bool]]:
        """
        @return: the next message, within L{TIMEOUT}.
        """
        return bounded(self.messages.get())

    async def closedWithin(self, seconds: float) -> CloseEvent:
        """
        Wait for C{onClose}, failing the test if the closing handshake takes
        longer than C{seconds} (use it with a closing handshake timeout well
        above C{seconds}, so that only a prompt close passes).

        @return: the L{CloseEvent}.
        @raise FailTest: if the connection is still there after C{seconds}.
        """
        try:
            return await bounded(self.whenClosed(), seconds)
        except defer.TimeoutError:
            raise FailTest(f"the connection did not close within {seconds} s") from None

    def abortIfOpen(self) -> Optional[Deferred[CloseEvent]]:
        """
        Abort the connection if it is still there (a test's cleanup).

        @return: C{None}, or a Deferred firing once it has closed.
        """
        if self.closed.called or self.transport is None:
            return None
        self.transport.abortConnection()  # type: ignore[attr-defined]
        return self.whenClosed()

    def whenClosed(self) -> Deferred[CloseEvent]:
        """
        @return: the L{CloseEvent}, within L{TIMEOUT}.
        """
        waiter: Deferred[CloseEvent] = Deferred()

        def relay(event: CloseEvent) -> CloseEvent:
            if not waiter.called:
                waiter.callback(event)
            return event

        self.closed.addCallback(relay)
        return bounded(waiter)


class RecordingClientFactory(WebSocketClientFactory):
    """
    A txws client factory whose connections announce themselves when open
    (for C{connectWS}, which returns no Deferred).

    @ivar opened: the connections, as they open.
    @ivar built: every connection made, open or not.
    """

    protocol = RecordingClientProtocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened: DeferredQueue[RecordingClientProtocol] = DeferredQueue()
        self.built: list[RecordingClientProtocol] = []

    def deliveredNothing(self) -> bool:
        """
        @return: whether no connection of this factory opened or delivered a
            message.
        """
        return not self.opened.pending and not any(p.messages.pending for p in self.built)




# -- A recording TCP relay ---------------------------------------------------


class _RecordingProxyClient(ProxyClient):
    """
    The relay's connection to the server: what the server sends is
    recorded before it is passed on.
    """

    def dataReceived(self, data: bytes) -> None:
        """
        Record, then pass on.
        """
        assert self.peer is not None
        relay = self.peer.factory
        assert isinstance(relay, RecordingRelay)
        relay.fromServer[id(self.peer)] = relay.fromServer.get(id(self.peer), b"") + data
        super().dataReceived(data)  # type: ignore[no-untyped-call]


class _RecordingProxyClientFactory(ProxyClientFactory):
    protocol = _RecordingProxyClient


class _RecordingProxyServer(ProxyServer):
    clientProtocolFactory = _RecordingProxyClientFactory


class RecordingRelay(ProxyFactory):
    """
    A TCP relay (Twisted's port forwarder) in front of a server, that
    records the bytes the server sends on each connection, for tests that
    inspect the frames a peer they cannot instrument (a browser) received.

    @ivar fromServer: per relayed connection, everything the server sent.
    """

    protocol = _RecordingProxyServer

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.fromServer: dict[int, bytes] = {}

    def upgraded(self) -> list[tuple[bytes, bytes]]:
        """
        @return: for every relayed connection the server switched to
            WebSocket, the head of its 101 answer and the bytes after it.
        """
        found = []
        for data in self.fromServer.values():
            if data.startswith(b"HTTP/1.1 101 "):
                head, _, rest = data.partition(b"\r\n\r\n")
                found.append((head, rest))
        return found
