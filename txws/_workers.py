"""
C{twistd txws --workers N}: N hub processes serving the same ports.

Design: every worker binds every C{tcp:}, C{tcp6:} and C{ssl:} listener
itself, on the same address and port, with C{SO_REUSEPORT} (Linux): the
kernel then spreads new connections over the workers' listening sockets by
a hash of each connection's addresses.  We chose that over one listening
socket opened by the parent and passed to every worker because:

  - WebSocket connections are long-lived, so how they are spread decides
    each worker's share of the load for hours.  With one shared socket
    every worker is woken for every connection and the first to call
    C{accept} wins; Twisted accepts up to a hundred connections per
    wake-up, so a burst of reconnecting clients can land on one worker.
    C{SO_REUSEPORT} spreads them evenly, whatever the workers are doing;
  - each worker owns its listener outright, TLS included (it builds its own
    TLS context from the same files), and nothing but a port number
    crosses the process boundary.

Its costs, and what we do about them: a second server started by mistake
on the same port would join the group and silently take a share of the
connections, so the parent first binds each address I{without}
C{SO_REUSEPORT} (refused with "address in use" if anything listens there)
before it starts a worker; a port of 0 cannot be shared, so C{--workers}
needs fixed ports; the connections waiting in the accept queue of a worker
that crashes are reset (clients reconnect); C{unix:} and C{systemd:}
listeners cannot be shared this way and are refused with C{--workers}.
Workers are started after twistd has dropped privileges (C{--uid}), so with
C{--workers} a port below 1024 needs C{CAP_NET_BIND_SERVICE}; the parent's
check runs with those same privileges, so the server refuses to start
("Permission denied") rather than restarting workers that cannot bind.

The parent (L{WorkerSupervisor}) runs no hub itself.  It starts each worker
as C{python -m txws --worker=I} with the parent's own plugin options except
C{--workers}; the worker logs its events as JSON lines on its standard
output (L{workerLogObserver}), and the parent logs them again through its
own log, with C{[worker I]} as their system, so C{--logfile} and
daemonized parents keep every worker's log.  SIGTERM and SIGINT stop the
parent gracefully, which sends SIGTERM to every worker (each closes its
WebSockets with 1001) and exits 0 once they have all exited.  A worker that
exits while the parent is not stopping is started again after a delay that
doubles with each quick failure; each death and each restart is logged
once.  A worker whose parent is gone (killed with SIGKILL) stops by itself
(L{ParentWatcher}).

With C{--metrics}, the parent creates a private directory (mode 0700,
C{tempfile.mkdtemp}) when it starts and removes it when it stops; worker I
serves its own C{/metrics} on the UNIX socket C{worker-I.sock} in it (the
internal option C{--worker-metrics=PATH}), never on a TCP port, and the
parent's C{/metrics} merges what every live worker answers
(L{txws._metricsmerge}).  The parent removes a dead worker's socket before
starting it again, so the new process can bind the same path.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from constantly import NamedConstant  # type: ignore[import-untyped]
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.error import CannotListenError, ProcessDone, ProcessTerminated
from twisted.internet.interfaces import (
    IDelayedCall,
    IListeningPort,
    IProtocolFactory,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import (
    ILogObserver,
    Logger,
    LogLevel,
    eventAsJSON,
    eventFromJSON,
    globalLogPublisher,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = [
    "ListenAddress",
    "ParentWatcher",
    "ReusePortEndpoint",
    "WorkerSupervisor",
    "probeAddress",
    "reusePortSupported",
    "workerLogObserver",
]

_log = Logger(namespace="txws.workers")

#: The first delay before a crashed worker is started again, seconds.
RESTART_DELAY = 0.5

#: The longest delay before a crashed worker is started again, seconds.
MAX_RESTART_DELAY = 30.0

#: A worker that ran this long before it died is restarted after the first
#: delay again (the failures are not consecutive).
STABLE_AFTER = 30.0

#: Seconds between two checks, in a worker, that its parent still runs.
PARENT_CHECK_INTERVAL = 1.0

#: Seconds given to workers killed with SIGKILL at the shutdown deadline.
KILL_WAIT = 5.0

#: The longest path of a UNIX socket (C{sun_path}, with its final NUL).
_MAX_SOCKET_PATH = 107


def reusePortSupported() -> bool:
    """
    @return: whether this system spreads connections over sockets bound
        with C{SO_REUSEPORT} (Linux does; others either lack the option or
        give every connection to the last socket bound).
    """
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


@dataclass(frozen=True)
class ListenAddress:
    """
    Where a TCP listener binds.

    @ivar family: C{AF_INET} or C{AF_INET6}.
    @ivar interface: the address (C{""} for every address of the family).
    @ivar port: the port (never 0 for workers).
    @ivar backlog: the listen queue length.
    """

    family: int
    interface: str
    port: int
    backlog: int = 50

    def describe(self) -> str:
        """
        @return: C{host:port} for messages.
        """
        host = self.interface or ("::" if self.family == socket.AF_INET6 else "0.0.0.0")
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    def _bindable(self) -> tuple[str, int]:
        host = self.interface or ("::" if self.family == socket.AF_INET6 else "0.0.0.0")
        return host, self.port


def _socket(address: ListenAddress, reusePort: bool) -> socket.socket:
    s = socket.socket(address.family, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reusePort:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(address._bindable())
    except BaseException:
        s.close()
        raise
    return s


def probeAddress(address: ListenAddress) -> Optional[str]:
    """
    Check, in the parent, that nothing listens on an address yet: bind it
    without C{SO_REUSEPORT} (which fails if anything is bound there, even
    a group of C{SO_REUSEPORT} sockets) and close it again.

    @param address: the address.
    @return: C{None} if it is free, else why not.
    """
    try:
        _socket(address, reusePort=False).close()
    except OSError as e:
        return e.strerror or str(e)
    return None


@implementer(IStreamServerEndpoint)
class ReusePortEndpoint:
    """
    A stream server endpoint that binds with C{SO_REUSEPORT}, so that
    every worker listens on the same port; with C{tlsOptions}, it serves
    TLS as C{ssl:} does.
    """

    def __init__(
        self, reactor: Any, address: ListenAddress, tlsOptions: Optional[Any] = None
    ) -> None:
        """
        @param reactor: an C{IReactorSocket}.
        @param address: where to listen.
        @param tlsOptions: the TLS context factory of an C{ssl:} listener,
            or C{None} for plain TCP.
        """
        self._reactor = reactor
        self.address = address
        self._tlsOptions = tlsOptions

    def listen(self, factory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Bind, listen and let the reactor accept connections.

        @param factory: what to serve.
        @return: a Deferred of the listening port, failed with
            L{CannotListenError} if the address cannot be bound.
        """
        served: IProtocolFactory = factory
        if self._tlsOptions is not None:
            served = TLSMemoryBIOFactory(self._tlsOptions, False, factory)
        try:
            s = _socket(self.address, reusePort=True)
        except OSError as e:
            return fail(CannotListenError(self.address.interface, self.address.port, e))
        try:
            s.listen(self.address.backlog)
            s.setblocking(False)
            port: IListeningPort = self._reactor.adoptStreamPort(
                s.fileno(), self.address.family, served
            )
        except OSError as e:
            return fail(CannotListenError(self.address.interface, self.address.port, e))
        finally:
            s.close()  # the reactor holds its own duplicate
        return succeed(port)


def workerLogObserver() -> ILogObserver:
    """
    The log observer of a worker (C{twistd --logger}): every event as one
    JSON line on the standard output the parent reads.

    @return: the observer.
    """
    # A second, line-buffered handle on fd 1: twistd replaces sys.stdout
    # with one that logs, which would loop back here.
    out = io.open(  # noqa: SIM115, UP020 (lives as long as the process)
        1, "w", encoding="utf-8", errors="replace", buffering=1, closefd=False
    )

    def observe(event: dict[str, Any]) -> None:
        # A broken pipe means the parent is gone: ParentWatcher stops us.
        with contextlib.suppress(OSError, ValueError):
            out.write(eventAsJSON(event) + "\n")

    observer: ILogObserver = implementer(ILogObserver)(observe)
    return observer


class ParentWatcher(Service):
    """
    In a worker: stop the reactor (gracefully) once the parent process is
    gone, so that a parent killed with SIGKILL leaves no worker behind.
    """

    def __init__(self, reactor: Any, interval: float = PARENT_CHECK_INTERVAL) -> None:
        """
        @param reactor: the reactor to stop.
        @param interval: seconds between checks.
        """
        self._reactor = reactor
        self._parent = os.getppid()
        self._interval = interval
        self._loop = LoopingCall(self._check)
        self._loop.clock = reactor

    def startService(self) -> None:
        """
        Start checking.
        """
        super().startService()  # type: ignore[no-untyped-call]
        self._loop.start(self._interval, now=False)

    def stopService(self) -> Optional[Deferred[None]]:
        """
        Stop checking.
        """
        super().stopService()  # type: ignore[no-untyped-call]
        if self._loop.running:
            self._loop.stop()
        return None

    def _check(self) -> None:
        if os.getppid() == self._parent:
            return
        _log.warn("the parent process {pid} is gone: stopping this worker", pid=self._parent)
        self._loop.stop()
        self._reactor.stop()


class _WorkerProcess(ProcessProtocol):
    """
    One worker's process: relays its output to the log and tells the
    supervisor when it ends.
    """

    def __init__(self, supervisor: WorkerSupervisor, index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.pid: Optional[int] = None
        self.startedAt = 0.0
        self.ended: Deferred[None] = Deferred()
        self.reason: Optional[Failure] = None
        self._partial = {1: b"", 2: b""}
        self.transport: Any = None

    @property
    def running(self) -> bool:
        return not self.ended.called

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        buffered = self._partial.get(childFD, b"") + data
        *lines, rest = buffered.split(b"\n")
        if len(rest) > 65536:  # a line without end: log what there is
            lines.append(rest)
            rest = b""
        self._partial[childFD] = rest
        for line in lines:
            self.supervisor.relay(self, line, childFD == 2)

    def processEnded(self, reason: Failure) -> None:
        for fd, rest in self._partial.items():
            if rest:
                self.supervisor.relay(self, rest, fd == 2)
        self._partial = {1: b"", 2: b""}
        self.reason = reason
        self.ended.callback(None)
        self.supervisor.workerEnded(self, reason)


def _describeEnd(reason: Failure) -> str:
    value = reason.value
    if isinstance(value, ProcessDone):
        return "exited with status 0"
    if isinstance(value, ProcessTerminated):
        if value.signal is not None:
            try:
                name = signal.Signals(value.signal).name
            except ValueError:
                name = str(value.signal)
            return f"was killed by {name}"
        return f"exited with status {value.exitCode}"
    return f"ended ({reason.getErrorMessage()})"


class WorkerSupervisor(Service):
    """
    The parent of C{--workers N}: checks the listeners' addresses are
    free, starts the workers, relays their logs, restarts a worker that
    dies, and on stop sends SIGTERM to all and waits for them.

    @ivar workers: the current process of each worker, by index (1 to N).
    @ivar restarts: how many times each worker was started again after it
        died, by index (1 to N).
    @ivar metricsDirectory: with C{workerMetrics}, the private directory of
        the workers' metrics sockets while the supervisor runs, else
        C{None}.
    @ivar stopping: whether the supervisor is stopping.
    """

    def __init__(
        self,
        reactor: Any,
        count: int,
        arguments: Sequence[str],
        addresses: Sequence[ListenAddress],
        stopTimeout: float,
        restartDelay: float = RESTART_DELAY,
        maxRestartDelay: float = MAX_RESTART_DELAY,
        stableAfter: float = STABLE_AFTER,
        command: Optional[Callable[[int], list[str]]] = None,
        workerMetrics: bool = False,
    ) -> None:
        """
        @param reactor: an C{IReactorProcess} and C{IReactorTime}.
        @param count: how many workers.
        @param arguments: the plugin options every worker gets (without
            C{--workers}).
        @param addresses: the addresses the workers will bind, checked
            before any worker starts.
        @param stopTimeout: seconds a worker is given to stop gracefully
            before it is killed.
        @param restartDelay: the first delay before restarting a worker.
        @param maxRestartDelay: the cap on that delay.
        @param stableAfter: seconds after which a worker's death is not a
            quick failure.
        @param command: builds the command line of worker I (default:
            C{python -m txws --worker=I ARGUMENTS}); for tests.
        @param workerMetrics: whether each worker serves its metrics on a
            UNIX socket of L{metricsSocket} (C{--worker-metrics}).
        """
        self._reactor = reactor
        self.count = count
        self.arguments = list(arguments)
        self.addresses = list(addresses)
        self.stopTimeout = stopTimeout
        self._restartDelay = restartDelay
        self._maxRestartDelay = maxRestartDelay
        self._stableAfter = stableAfter
        self._command = command or self._defaultCommand
        self.workers: dict[int, _WorkerProcess] = {}
        self._failures: dict[int, int] = {}
        self._restarts: dict[int, IDelayedCall] = {}
        self.restarts = dict.fromkeys(range(1, count + 1), 0)
        self.workerMetrics = workerMetrics
        self.metricsDirectory: Optional[str] = None
        self.stopping = False

    def _defaultCommand(self, index: int) -> list[str]:
        command = [sys.executable, "-m", "txws", f"--worker={index}"]
        path = self.metricsSocket(index)
        if path is not None:
            command.append(f"--worker-metrics={path}")
        return [*command, *self.arguments]

    def metricsSocket(self, index: int) -> Optional[str]:
        """
        @param index: a worker's index.
        @return: the path of the UNIX socket on which that worker serves its
            metrics, or C{None} without C{workerMetrics} or while the
            supervisor is not running.
        """
        if self.metricsDirectory is None:
            return None
        return os.path.join(self.metricsDirectory, f"worker-{index}.sock")

    def startService(self) -> None:
        """
        Check that every address is free and can be bound with this
        process's privileges (those the workers get: twistd has dropped
        any C{--uid} by now), then start the workers once the reactor runs.

        @raise SystemExit: naming the address that cannot be used.
        """
        self._checkAddresses()
        if self.workerMetrics and self.metricsDirectory is None:
            self._makeMetricsDirectory()
        super().startService()  # type: ignore[no-untyped-call]
        self.stopping = False
        _log.info("starting {count} workers", count=self.count)
        self._reactor.callWhenRunning(self._startAll)

    def _checkAddresses(self) -> None:
        for address in self.addresses:
            why = probeAddress(address)
            if why is not None:
                _log.error(
                    "cannot listen on {where}: {why}", where=address.describe(), why=why
                )
                raise SystemExit(f"txws: cannot listen on {address.describe()}: {why}")

    def _makeMetricsDirectory(self) -> None:
        # mkdtemp: a new directory only this user can enter (mode 0700).
        directory = tempfile.mkdtemp(prefix="txws-metrics-")
        longest = os.path.join(directory, f"worker-{self.count}.sock")
        if len(os.fsencode(longest)) > _MAX_SOCKET_PATH:
            os.rmdir(directory)
            _log.error("the metrics socket path {path} is too long", path=longest)
            raise SystemExit(
                f"txws: the workers' metrics socket {longest} is longer than a UNIX socket "
                f"path may be ({_MAX_SOCKET_PATH} bytes): set TMPDIR to a shorter directory"
            )
        self.metricsDirectory = directory
        _log.info("worker metrics sockets in {directory}", directory=directory)

    def _removeMetricsDirectory(self) -> None:
        directory, self.metricsDirectory = self.metricsDirectory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def _startAll(self) -> None:
        for index in range(1, self.count + 1):
            if index not in self.workers and not self.stopping:
                self._spawn(index, restarted=False)

    def _spawn(self, index: int, restarted: bool) -> None:
        self._restarts.pop(index, None)
        if self.stopping:
            return
        process = _WorkerProcess(self, index)
        path = self.metricsSocket(index)
        if path is not None:
            # A worker that died left its socket: the new one binds the path.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        environment = dict(os.environ)
        # The worker imports this txws, wherever it comes from.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        paths = [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in paths:
            environment["PYTHONPATH"] = os.pathsep.join([root, *paths])
        command = self._command(index)
        self._reactor.spawnProcess(
            process, command[0], command, env=environment, path=os.getcwd(),
            childFDs={0: "w", 1: "r", 2: "r"},
        )
        process.transport.closeStdin()
        process.pid = process.transport.pid
        process.startedAt = self._reactor.seconds()
        self.workers[index] = process
        if restarted:
            self.restarts[index] = self.restarts.get(index, 0) + 1
        _log.info(
            "{what} worker {index} (pid {pid})",
            what="restarted" if restarted else "started",
            index=index,
            pid=process.pid,
        )

    def relay(self, process: _WorkerProcess, line: bytes, stderr: bool) -> None:
        """
        Log one line a worker wrote: an event of its log (JSON) again in
        this process's log, anything else as text.

        @param process: the worker.
        @param line: the line, without its end.
        @param stderr: whether it came from the worker's standard error.
        """
        system = f"worker {process.index}"
        text = line.decode("utf-8", "replace").rstrip("\r").lstrip("\x1e")
        if not text.strip():
            return
        if not stderr and text.startswith("{"):
            try:
                event = eventFromJSON(text)
            except Exception:
                event = None
            if isinstance(event, dict) and "log_format" in event:
                # Observers expect these; a well-formed event has them all.
                if not isinstance(event.get("log_level"), NamedConstant):
                    event["log_level"] = LogLevel.info
                if not isinstance(event.get("log_time"), (int, float)):
                    event["log_time"] = self._reactor.seconds()
                event.setdefault("log_namespace", "txws.worker")
                event.setdefault("log_source", None)
                original = event.get("log_system")
                event["log_system"] = (
                    f"{system} {original}" if original and original != "-" else system
                )
                event["txws_worker"] = process.index
                event["txws_worker_pid"] = process.pid
                globalLogPublisher(event)
                return
        if stderr:
            _log.warn("{line}", line=text, log_system=system)
        else:
            _log.info("{line}", line=text, log_system=system)

    def workerEnded(self, process: _WorkerProcess, reason: Failure) -> None:
        """
        A worker's process ended: start it again unless stopping.

        @param process: the worker.
        @param reason: how it ended.
        """
        how = _describeEnd(reason)
        if self.workers.get(process.index) is process:
            del self.workers[process.index]
        if self.stopping:
            if not isinstance(reason.value, ProcessDone):
                _log.warn(
                    "worker {index} (pid {pid}) {how} while stopping",
                    index=process.index, pid=process.pid, how=how,
                )
            return
        ran = self._reactor.seconds() - process.startedAt
        failures = 0 if ran >= self._stableAfter else self._failures.get(process.index, 0)
        delay = min(self._maxRestartDelay, self._restartDelay * 2**min(failures, 30))
        self._failures[process.index] = failures + 1
        _log.warn(
            "worker {index} (pid {pid}) {how} after {ran:.1f} s; restarting it in "
            "{delay:.1f} s",
            index=process.index, pid=process.pid, how=how, ran=ran, delay=delay,
        )
        self._restarts[process.index] = self._reactor.callLater(
            delay, self._spawn, process.index, True
        )

    def stopService(self) -> Deferred[None]:
        """
        Send SIGTERM to every worker and wait until all have exited; kill
        those still running after C{stopTimeout}; then remove the metrics
        directory.

        @return: a Deferred that fires once no worker runs.
        """
        super().stopService()  # type: ignore[no-untyped-call]
        self.stopping = True
        for restart in self._restarts.values():
            if restart.active():
                restart.cancel()
        self._restarts.clear()
        running = [p for p in self.workers.values() if p.running]
        if not running:
            self._removeMetricsDirectory()
            return succeed(None)
        _log.info("stopping {count} workers", count=len(running))
        for process in running:
            self._signal(process, "TERM")
        done: Deferred[None] = Deferred()

        def deadline() -> None:
            left = [p for p in running if p.running]
            for process in left:
                _log.warn(
                    "worker {index} (pid {pid}) did not stop within {seconds:g} s; killing it",
                    index=process.index, pid=process.pid, seconds=self.stopTimeout,
                )
                self._signal(process, "KILL")
            self._reactor.callLater(KILL_WAIT, finish, None)

        timer = self._reactor.callLater(self.stopTimeout, deadline)

        def finish(_: object) -> None:
            if timer.active():
                timer.cancel()
            if not done.called:
                self._removeMetricsDirectory()
                done.callback(None)

        gatherResults([p.ended for p in running]).addBoth(finish)
        return done

    def _signal(self, process: _WorkerProcess, name: str) -> None:
        with contextlib.suppress(Exception):  # already gone
            process.transport.signalProcess(name)
