"""
Tests for C{twistd txws --workers N} (L{txws._workers}).

The supervisor's life cycle (start, restart with backoff, stop, the
deadline) runs against a fake process reactor; the listening sockets
(C{SO_REUSEPORT}, the parent's check) against the real one; and the whole
of it with real processes: C{twistd -n txws --workers 2} on one port with a
real C{redis-server}, subscribers spread over both workers (which process
holds each connection is read from C{/proc}), one publish reaching every
subscriber exactly once, and SIGTERM giving every subscriber 1001 and
leaving no process behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any, cast

import requests
from twisted.internet import reactor as _reactor
from twisted.internet.error import CannotListenError, ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.logger import ILogObserver, capturedLogs, formatEvent, globalLogPublisher
from twisted.python.failure import Failure

from tests.hubsupport import (
    HubProcess,
    TxwsSubscriber,
    childEnvironment,
    freePort,
    seedHeaders,
    writeKeyFile,
)
from tests.redissupport import startRedis
from tests.tlssupport import TestAuthority
from tests.typedtrial import SkipTest, SynchronousTestCase, TestCase
from txws import _workers

reactor: Any = _reactor

KEYS = {"test-1": "k1-" + "c" * 40}


# -- the supervisor, with a fake process reactor --------------------------------


class _FakeTransport:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals: list[str] = []
        self.stdinClosed = False

    def closeStdin(self) -> None:
        self.stdinClosed = True

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)


class _ProcessReactor(Clock):
    """
    A clock that records C{spawnProcess} and runs C{callWhenRunning} at
    once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[tuple[Any, list[str], dict[str, str], str, dict[int, str]]] = []

    def spawnProcess(
        self, protocol: Any, executable: str, args: list[str], env: dict[str, str],
        path: str, childFDs: dict[int, str],
    ) -> _FakeTransport:
        assert executable == args[0]
        transport = _FakeTransport(1000 + len(self.spawned))
        protocol.makeConnection(transport)
        self.spawned.append((protocol, args, env, path, childFDs))
        return transport

    def callWhenRunning(self, f: Any, *a: Any) -> None:
        f(*a)


def _killed(signalNumber: int) -> Failure:
    return Failure(ProcessTerminated(signal=signalNumber))


def _exited(status: int) -> Failure:
    if status == 0:
        return Failure(ProcessDone(0))
    return Failure(ProcessTerminated(exitCode=status))


class SupervisorTests(SynchronousTestCase):
    """
    L{_workers.WorkerSupervisor} against a fake process reactor.
    """

    def setUp(self) -> None:
        self.reactor = _ProcessReactor()
        self.supervisor = _workers.WorkerSupervisor(
            self.reactor, 2, ["--broker=redis://127.0.0.1:1/0", "--listen=tcp:9001"], [],
            stopTimeout=10.0,
        )
        self.events: list[dict[str, Any]] = []
        observer = cast(ILogObserver, self.events.append)
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def messages(self) -> list[str]:
        return [formatEvent(e) for e in self.events if e.get("log_namespace") == "txws.workers"]

    def start(self) -> None:
        self.supervisor.privilegedStartService()  # type: ignore[no-untyped-call]
        self.supervisor.startService()

    def test_start(self) -> None:
        """
        Each worker is C{python -m txws --worker=I} with the options, in
        this directory, importing this txws, with its output read and its
        standard input closed; each start is logged with the pid.
        """
        self.start()
        self.assertEqual(len(self.reactor.spawned), 2)
        for index, (protocol, args, env, path, childFDs) in enumerate(self.reactor.spawned, 1):
            self.assertEqual(
                args,
                [sys.executable, "-m", "txws", f"--worker={index}",
                 "--broker=redis://127.0.0.1:1/0", "--listen=tcp:9001"],
            )
            root = os.path.dirname(os.path.dirname(os.path.abspath(_workers.__file__)))
            self.assertEqual(env["PYTHONPATH"].split(os.pathsep)[0], root)
            self.assertEqual(path, os.getcwd())
            self.assertEqual(childFDs, {0: "w", 1: "r", 2: "r"})
            self.assertTrue(protocol.transport.stdinClosed)
        self.assertEqual(
            self.messages(),
            ["starting 2 workers", "started worker 1 (pid 1000)", "started worker 2 (pid 1001)"],
        )
        self.assertEqual(sorted(self.supervisor.workers), [1, 2])

    def test_restartWithBackoff(self) -> None:
        """
        A worker that dies is started again after a delay that doubles with
        each quick failure and starts over once it ran long enough; each
        death and each restart is one log line.
        """
        self.start()
        first = self.reactor.spawned[0][0]
        self.reactor.advance(2)
        del self.events[:]
        first.processEnded(_killed(signal.SIGKILL))
        self.assertEqual(
            self.messages(),
            ["worker 1 (pid 1000) was killed by SIGKILL after 2.0 s; restarting it in 0.5 s"],
        )
        self.assertNotIn(1, self.supervisor.workers)
        self.reactor.advance(0.49)
        self.assertEqual(len(self.reactor.spawned), 2)
        self.reactor.advance(0.01)
        self.assertEqual(len(self.reactor.spawned), 3)
        self.assertEqual(self.messages()[-1], "restarted worker 1 (pid 1002)")
        self.assertEqual(self.reactor.spawned[2][1][3], "--worker=1")
        self.reactor.spawned[2][0].processEnded(_exited(3))
        self.assertIn(
            "exited with status 3 after 0.0 s; restarting it in 1.0 s", self.messages()[-1]
        )
        self.reactor.advance(1.0)
        self.reactor.spawned[3][0].processEnded(_exited(3))
        self.assertIn("restarting it in 2.0 s", self.messages()[-1])
        self.reactor.advance(2.0)
        self.reactor.advance(_workers.STABLE_AFTER)
        self.reactor.spawned[4][0].processEnded(_exited(0))
        self.assertIn("exited with status 0 after 30.0 s; restarting it in 0.5 s",
                      self.messages()[-1])
        self.assertEqual(len([m for m in self.messages() if "worker 1" in m]), 7)

    def test_backoffCap(self) -> None:
        """
        The delay stops doubling at the cap.
        """
        self.start()
        for _ in range(12):
            self.supervisor.workers[2].processEnded(_exited(1))
            self.reactor.advance(_workers.MAX_RESTART_DELAY)
        self.assertIn("restarting it in 30.0 s", self.messages()[-2])

    def test_stop(self) -> None:
        """
        Stopping sends SIGTERM to every worker and fires once all have
        exited; nothing is restarted meanwhile, and a restart that was
        pending is cancelled.
        """
        self.start()
        one, two = (spawned[0] for spawned in self.reactor.spawned)
        two.processEnded(_killed(signal.SIGSEGV))
        self.reactor.advance(0.5)
        three = self.reactor.spawned[2][0]
        one.processEnded(_exited(1))  # its restart is pending when the stop comes
        stopping = self.supervisor.stopService()
        self.assertEqual((one.transport.signals, three.transport.signals), ([], ["TERM"]))
        self.assertNoResult(stopping)
        three.processEnded(_exited(0))
        self.successResultOf(stopping)
        self.reactor.advance(100)
        self.assertEqual(len(self.reactor.spawned), 3)
        self.assertFalse([m for m in self.messages() if "while stopping" in m])

    def test_stopDeadline(self) -> None:
        """
        A worker still running after the stop timeout is killed, and the
        stop completes even if it never reports its end.
        """
        self.start()
        one, two = (spawned[0] for spawned in self.reactor.spawned)
        stopping = self.supervisor.stopService()
        one.processEnded(_killed(signal.SIGTERM))
        self.assertIn("worker 1 (pid 1000) was killed by SIGTERM while stopping",
                      self.messages()[-1])
        self.reactor.advance(9.9)
        self.assertEqual(two.transport.signals, ["TERM"])
        self.reactor.advance(0.1)
        self.assertEqual(two.transport.signals, ["TERM", "KILL"])
        self.assertIn("did not stop within 10 s; killing it", self.messages()[-1])
        self.assertNoResult(stopping)
        self.reactor.advance(_workers.KILL_WAIT)
        self.successResultOf(stopping)

    def test_relay(self) -> None:
        """
        A worker's JSON log lines are logged again here with the worker as
        their system; other output is logged as text (standard error as
        warnings); partial lines wait for their end.
        """
        self.start()
        worker = self.reactor.spawned[0][0]
        with capturedLogs() as events:
            line = json.dumps(
                {"log_format": "hello {who}", "who": "there", "log_system": "-",
                 "log_namespace": "txws.tap", "log_time": 1.0}
            ).encode()
            worker.childDataReceived(1, line[:10])
            self.assertEqual(list(events), [])
            worker.childDataReceived(1, line[10:] + b"\nplain text\n")
            worker.childDataReceived(2, b"Traceback (most recent call last):\n  oops")
            worker.processEnded(_exited(1))
        relayed = [e for e in events if e.get("log_system", "").startswith("worker")]
        self.assertEqual(
            [(formatEvent(e), e["log_system"], e["log_level"].name) for e in relayed[:1]],
            [("hello there", "worker 1", "info")],
        )
        self.assertEqual(relayed[0]["log_time"], 1.0)
        self.assertEqual(
            [(formatEvent(e), e["log_level"].name) for e in relayed[1:]],
            [("plain text", "info"), ("Traceback (most recent call last):", "warn"),
             ("  oops", "warn")],
        )

    def test_restartsCounted(self) -> None:
        """
        Each restart of a worker is counted (the first start is not).
        """
        self.start()
        self.assertEqual(self.supervisor.restarts, {1: 0, 2: 0})
        for _ in range(2):
            self.supervisor.workers[2].processEnded(_exited(1))
            self.reactor.advance(_workers.MAX_RESTART_DELAY)
        self.assertEqual(self.supervisor.restarts, {1: 0, 2: 2})

    def test_noMetricsSockets(self) -> None:
        """
        Without C{workerMetrics}, no directory and no C{--worker-metrics}.
        """
        self.start()
        self.assertIsNone(self.supervisor.metricsDirectory)
        self.assertIsNone(self.supervisor.metricsSocket(1))
        self.assertFalse(
            [a for _p, args, *_ in self.reactor.spawned for a in args if "metrics" in a]
        )

    def test_metricsSockets(self) -> None:
        """
        With C{workerMetrics}, starting creates a directory only this user
        can enter, worker I gets C{--worker-metrics=DIR/worker-I.sock}, the
        socket a dead worker left is removed before it starts again, and
        the directory is gone once the supervisor stopped.
        """
        supervisor = _workers.WorkerSupervisor(
            self.reactor, 2, ["--listen=tcp:9001"], [], stopTimeout=10.0, workerMetrics=True
        )
        self.assertIsNone(supervisor.metricsSocket(1))
        supervisor.startService()
        directory = supervisor.metricsDirectory
        assert directory is not None
        self.assertEqual(stat.S_IMODE(os.stat(directory).st_mode), 0o700)
        self.assertEqual(
            [args[3:] for _p, args, *_ in self.reactor.spawned],
            [[f"--worker={i}", f"--worker-metrics={directory}/worker-{i}.sock",
              "--listen=tcp:9001"] for i in (1, 2)],
        )
        self.assertIn(f"worker metrics sockets in {directory}", self.messages())
        stale = os.path.join(directory, "worker-1.sock")
        with open(stale, "w"):
            pass
        supervisor.workers[1].processEnded(_killed(signal.SIGKILL))
        self.assertTrue(os.path.exists(stale))
        self.reactor.advance(_workers.RESTART_DELAY)
        self.assertFalse(os.path.exists(stale))
        self.assertEqual(self.reactor.spawned[2][1][4], f"--worker-metrics={stale}")
        stopping = supervisor.stopService()
        self.assertTrue(os.path.isdir(directory))
        for process in list(supervisor.workers.values()):
            process.processEnded(_exited(0))
        self.successResultOf(stopping)
        self.assertFalse(os.path.exists(directory))
        self.assertIsNone(supervisor.metricsDirectory)

    def test_metricsSocketPathTooLong(self) -> None:
        """
        A temporary directory too deep for a UNIX socket's path stops the
        start, saying what to do, and leaves no directory behind.
        """
        base = tempfile.mkdtemp()
        self.addCleanup(os.rmdir, base)
        deep = os.path.join(base, "d" * 100)
        os.mkdir(deep)
        self.addCleanup(os.rmdir, deep)
        self.patch(tempfile, "tempdir", deep)
        supervisor = _workers.WorkerSupervisor(
            self.reactor, 2, [], [], stopTimeout=10.0, workerMetrics=True
        )
        with self.assertRaises(SystemExit) as caught:
            supervisor.startService()
        self.assertIn("set TMPDIR to a shorter directory", str(caught.exception))
        self.assertEqual(os.listdir(deep), [])
        self.assertEqual(self.reactor.spawned, [])


# -- sockets --------------------------------------------------------------------


class ReusePortTests(TestCase):
    """
    L{_workers.ReusePortEndpoint} and L{_workers.probeAddress} with real
    sockets on 127.0.0.1.
    """

    def setUp(self) -> None:
        if not _workers.reusePortSupported():
            raise SkipTest("SO_REUSEPORT spreading connections is Linux's")

    def test_twoListenersOnePort(self) -> None:
        """
        Two endpoints listen on the same port; the parent's check then
        says the address is in use, and a plain bind fails too.
        """
        port = freePort()
        address = _workers.ListenAddress(socket.AF_INET, "127.0.0.1", port)
        self.assertIsNone(_workers.probeAddress(address))
        factory = Factory.forProtocol(Protocol)
        ports = []
        for _ in range(2):
            listening = self.successResultOf(
                _workers.ReusePortEndpoint(reactor, address).listen(factory)
            )
            self.addCleanup(listening.stopListening)
            ports.append(listening)
        self.assertEqual({cast(Any, p.getHost()).port for p in ports}, {port})
        self.assertIn("in use", _workers.probeAddress(address) or "")
        with socket.socket() as plain:
            self.assertRaises(OSError, plain.bind, ("127.0.0.1", port))

    def test_notReusable(self) -> None:
        """
        An address held by a socket without C{SO_REUSEPORT} cannot be
        shared: the endpoint fails with L{CannotListenError}.
        """
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen(1)
            port = held.getsockname()[1]
            address = _workers.ListenAddress(socket.AF_INET, "127.0.0.1", port)
            self.failureResultOf(
                _workers.ReusePortEndpoint(reactor, address).listen(Factory()),
                CannotListenError,
            )
            supervisor = _workers.WorkerSupervisor(reactor, 2, [], [address], 10.0)
            with self.assertRaises(SystemExit) as caught:
                supervisor.startService()
            self.assertFalse(supervisor.running)
            self.assertIn(f"cannot listen on 127.0.0.1:{port}: ", str(caught.exception))


# -- real processes ---------------------------------------------------------------


def _socketInodes(pid: int) -> set[int]:
    inodes = set()
    directory = f"/proc/{pid}/fd"
    for name in os.listdir(directory):
        try:
            target = os.readlink(os.path.join(directory, name))
        except OSError:
            continue
        match = re.fullmatch(r"socket:\[(\d+)\]", target)
        if match:
            inodes.add(int(match.group(1)))
    return inodes


def connectionOwners(serverPort: int, clientPorts: Sequence[int], pids: Sequence[int]) -> list[int]:
    """
    @return: for each client port, the pid (among C{pids}) of the process
        holding the server side of its connection to C{serverPort} on
        127.0.0.1, read from C{/proc/net/tcp}.
    """
    inodeOf: dict[int, int] = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], int(fields[9])
            if local == f"0100007F:{serverPort:04X}" and remote.startswith("0100007F:"):
                inodeOf[int(remote.split(":")[1], 16)] = inode
    inodesOf = {pid: _socketInodes(pid) for pid in pids}
    owners = []
    for clientPort in clientPorts:
        held = inodeOf.get(clientPort)
        holders = [pid for pid, inodes in inodesOf.items() if held in inodes]
        if len(holders) != 1:
            raise AssertionError(f"connection from port {clientPort}: held by {holders}")
        owners.append(holders[0])
    return owners


def fullLog(hub: HubProcess) -> str:
    """
    @return: everything the server wrote so far.
    """
    with open(os.path.join(hub.directory, "twistd.log"), "rb") as f:
        return f.read().decode("utf-8", "replace")


async def waitForLog(
    hub: HubProcess, pattern: str, count: int = 1, within: float = 30.0
) -> list[re.Match[str]]:
    """
    Wait until the server's log matches C{pattern} C{count} times.

    @return: the matches.
    """
    deadline = time.monotonic() + within
    while True:
        matches = list(re.finditer(pattern, fullLog(hub)))
        if len(matches) >= count:
            return matches
        if time.monotonic() > deadline or hub.process.poll() is not None:
            raise AssertionError(
                f"{count} x {pattern!r} not in the log within {within} s:\n{fullLog(hub)[-4000:]}"
            )
        await deferLater(reactor, 0.1)


def publish(hub: HubProcess, channel: str, data: object) -> requests.Response:
    """
    POST a signed (seed scheme) publish to the hub.
    """
    body = json.dumps({"channel": channel, "data": data}).encode()
    return hub.post("/publish", body, seedHeaders(KEYS["test-1"], body))


async def nothingMore(case: TestCase, subscriber: TxwsSubscriber, seconds: float) -> None:
    """
    Fail if the subscriber receives anything within C{seconds}.
    """
    try:
        extra = await subscriber.nextJSON(seconds)
    except TimeoutError:
        return
    case.fail(f"unexpected message {extra!r}")


def gone(pid: int) -> bool:
    """
    @return: whether no process has this pid (a zombie waiting for a
        parent that does not reap it counts as gone: it has exited).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


class WorkersProcessTests(TestCase):
    """
    C{twistd -n txws --broker redis://... --workers 2} with real processes.
    """

    timeout = 120

    async def test_twoWorkersOnePort(self) -> None:
        """
        Two workers serve one port: subscribers land on both, one publish
        reaches every one of them exactly once, and SIGTERM to the parent
        closes every subscriber with 1001, stops both workers and exits 0.
        """
        redis = startRedis(self)
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        keys = writeKeyFile(os.path.join(directory, "keys.json"), KEYS)
        hub = HubProcess(
            self, "--broker", f"redis://127.0.0.1:{redis.port}/0", "--workers", "2",
            "--hmac-keys", keys, "--close-timeout", "3",
        )
        started = await waitForLog(hub, r"started worker (\d) \(pid (\d+)\)", 2)
        pids = {int(m.group(1)): int(m.group(2)) for m in started}
        self.assertEqual(sorted(pids), [1, 2])
        await waitForLog(hub, r"\[worker \d\] hub broker: connected to Redis", 2)
        await waitForLog(
            hub, rf"\[worker \d\] txws hub listening on http://127.0.0.1:{hub.port}/", 2
        )

        subscribers = []
        for _ in range(16):
            subscriber = await TxwsSubscriber.open(hub.wsURL("channel=news"))
            self.addCleanup(subscriber.close)
            answer = await subscriber.nextJSON()
            self.assertEqual((answer["type"], answer["seq"]), ("subscribed", 0))
            subscribers.append(subscriber)
        clientPorts = [cast(Any, s.protocol.transport).getHost().port for s in subscribers]
        owners = connectionOwners(hub.port, clientPorts, list(pids.values()))
        perWorker = {pid: owners.count(pid) for pid in pids.values()}
        self.assertEqual(set(owners), set(pids.values()), f"connections per pid: {perWorker}")

        # /healthz answers from whichever worker the request lands on: each
        # answer counts that worker's own subscribers.
        counts = {hub.get("/healthz").json()["connections"] for _ in range(30)}
        self.assertEqual(counts, set(perWorker.values()))

        answer = publish(hub, "news", {"n": 1})
        self.assertEqual(answer.status_code, 200, answer.text)
        self.assertEqual(answer.json()["seq"], 1)
        for subscriber in subscribers:
            self.assertEqual(
                await subscriber.nextJSON(),
                {"type": "message", "channel": "news", "seq": 1, "data": {"n": 1}},
            )
        await nothingMore(self, subscribers[0], 0.5)
        for subscriber in subscribers[1:]:
            await nothingMore(self, subscriber, 0.01)

        hub.process.send_signal(signal.SIGTERM)
        for subscriber in subscribers:
            code, _reason = await subscriber.whenClosed(15)
            self.assertEqual(code, 1001)
        deadline = time.monotonic() + 20
        while hub.process.poll() is None and time.monotonic() < deadline:
            await deferLater(reactor, 0.1)
        self.assertEqual(hub.process.returncode, 0, fullLog(hub)[-4000:])
        for pid in pids.values():
            self.assertTrue(gone(pid), f"worker pid {pid} still exists")
        log = fullLog(hub)
        self.assertIn("stopping 2 workers", log)
        self.assertNotIn("Traceback", log)

    async def test_tlsWorkers(self) -> None:
        """
        An C{ssl:} listener is shared too: each worker builds its own TLS
        context, subscribers over C{wss://} land on both, and a publish
        over HTTPS reaches them all.
        """
        redis = startRedis(self)
        files = TestAuthority().writeServerFiles(self, ("localhost",), ("127.0.0.1",))
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        keys = writeKeyFile(os.path.join(directory, "keys.json"), KEYS)
        hub = HubProcess(
            self, "--broker", f"redis://127.0.0.1:{redis.port}/0", "--workers", "2",
            "--hmac-keys", keys, "--close-timeout", "2", tls=files,
        )
        started = await waitForLog(hub, r"started worker (\d) \(pid (\d+)\)", 2)
        pids = [int(m.group(2)) for m in started]
        await waitForLog(hub, r"\[worker \d\] hub broker: connected to Redis", 2)
        await waitForLog(
            hub, rf"\[worker \d\] txws hub listening on https://127.0.0.1:{hub.port}/", 2
        )
        with open(files.ca, "rb") as f:
            caPem = f.read()
        subscribers = []
        for _ in range(12):
            subscriber = await TxwsSubscriber.open(hub.wsURL("channel=tls"), caPem)
            self.addCleanup(subscriber.close)
            self.assertEqual((await subscriber.nextJSON())["type"], "subscribed")
            subscribers.append(subscriber)
        clientPorts = [cast(Any, s.protocol.transport).getHost().port for s in subscribers]
        self.assertEqual(set(connectionOwners(hub.port, clientPorts, pids)), set(pids))
        answer = publish(hub, "tls", "secure")
        self.assertEqual(answer.status_code, 200, answer.text)
        for subscriber in subscribers:
            self.assertEqual(
                await subscriber.nextJSON(),
                {"type": "message", "channel": "tls", "seq": 1, "data": "secure"},
            )
        hub.process.send_signal(signal.SIGTERM)
        for subscriber in subscribers:
            self.assertEqual((await subscriber.whenClosed(15))[0], 1001)
        deadline = time.monotonic() + 20
        while hub.process.poll() is None and time.monotonic() < deadline:
            await deferLater(reactor, 0.1)
        self.assertEqual(hub.process.returncode, 0, fullLog(hub)[-4000:])

    def test_portInUse(self) -> None:
        """
        A port something already listens on stops the parent at start,
        exit status 1, before any worker starts (no Redis needed: the
        parent never connects to it).
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen(1)
            port = held.getsockname()[1]
            done = subprocess.run(
                [sys.executable, "-m", "txws", "--broker", "redis://127.0.0.1:1/0",
                 "--workers", "2", "--listen", f"tcp:{port}:interface=127.0.0.1"],
                cwd=directory, env=childEnvironment(), capture_output=True, text=True,
                timeout=60, stdin=subprocess.DEVNULL,
            )
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 1, output)
        self.assertIn(f"cannot listen on 127.0.0.1:{port}: Address already in use", output)
        self.assertNotIn("started worker", output)

    async def test_workerRestartedAndParentGone(self) -> None:
        """
        A worker killed with SIGKILL is started again and serves; when the
        parent itself is killed with SIGKILL, the workers stop by
        themselves.
        """
        redis = startRedis(self)
        hub = HubProcess(
            self, "--broker", f"redis://127.0.0.1:{redis.port}/0", "--workers", "2",
            "--close-timeout", "2",
        )
        started = await waitForLog(hub, r"started worker (\d) \(pid (\d+)\)", 2)
        pids = {int(m.group(1)): int(m.group(2)) for m in started}
        await waitForLog(hub, r"\[worker 1\] hub broker: connected to Redis")
        os.kill(pids[1], signal.SIGKILL)
        restarted = await waitForLog(hub, r"restarted worker 1 \(pid (\d+)\)")
        newPid = int(restarted[0].group(1))
        self.assertIn(
            f"worker 1 (pid {pids[1]}) was killed by SIGKILL", fullLog(hub)
        )
        await waitForLog(hub, r"\[worker 1\] hub broker: connected to Redis", 2)
        os.kill(hub.process.pid, signal.SIGKILL)
        hub.process.wait(10)
        deadline = time.monotonic() + 15
        while not (gone(newPid) and gone(pids[2])) and time.monotonic() < deadline:
            await deferLater(reactor, 0.1)
        self.assertTrue(gone(newPid) and gone(pids[2]), "workers outlived their parent")

