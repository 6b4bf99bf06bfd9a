"""
The clustered fan-out servers of the benchmark: the hub with a Redis broker,
and the real C{twistd -n txws --workers 2 --broker redis://...}.

Design: the harness starts one C{redis-server} of its own per server that
needs one (L{RedisProcess}: a temporary directory, a free port of
127.0.0.1, no persistence, pinned to the servers' CPU), so that each
server's Redis CPU is its own and no other hub shares its pub/sub
channels; it is killed when that server stops, also on errors.  Redis is
an in-memory cache here (C{--save ""}, C{--appendonly no}): what it adds
per publish is its commands and its pub/sub, not an C{fsync} (with
C{appendfsync always}, as C{docs/cluster.md} suggests for durability,
every publish also waits for one).

C{txws-hub-redis} is a L{bench.servers} process like every other server
(L{bench.fanout_servers}); C{txws-hub-workers2} is L{ClusterProcess}: the
C{twistd} parent and its two workers, every one pinned to the servers'
CPU (they share it: the generator keeps the other one), listening on one
fixed port with C{SO_REUSEPORT}, so that the kernel spreads the
subscribers over the workers and the publisher's connection lands on
whichever it hashes to.  Its CPU is summed over the parent and every
worker (L{ClusterProcess.otherPids}); its Redis's CPU is counted apart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from bench.fanout_servers import HUB_KEY_ID
from bench.loadgen import HarnessError

__all__ = [
    "CLUSTERS",
    "REDIS_SERVERS",
    "ClusterProcess",
    "NotAvailable",
    "RedisProcess",
    "childPids",
    "connectionsPerProcess",
    "freePort",
    "redisServerPath",
]

#: The clustered servers run by C{twistd txws --workers N}: name -> N.
CLUSTERS: dict[str, int] = {"txws-hub-workers2": 2}

#: Every server that needs a Redis of its own.
REDIS_SERVERS = frozenset(["txws-hub-redis", *CLUSTERS])

_DEFAULT_REDIS = "/usr/bin/redis-server"


class NotAvailable(HarnessError):
    """
    Something a server needs is missing on this machine (C{redis-server}):
    its cells are reported as C{not available}.
    """


def redisServerPath() -> Optional[str]:
    """
    @return: the C{redis-server} binary (C{/usr/bin/redis-server}, or the
        one on C{PATH}), or C{None} if none is installed.
    """
    if os.access(_DEFAULT_REDIS, os.X_OK):
        return _DEFAULT_REDIS
    return shutil.which("redis-server")


def freePort() -> int:
    """
    @return: a TCP port of 127.0.0.1 that was free a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _preexec(cpu: Optional[int], deathSignal: int) -> Any:
    """
    @return: a C{preexec_fn} that pins the child (and so every thread and
        process it starts) to C{cpu} (unless C{None}) and, on Linux, has
        the kernel send it C{deathSignal} if the harness dies (even by
        C{SIGKILL}), so that nothing the harness started outlives it.
    """
    cpus: Optional[set[int]] = None
    if cpu is not None and cpu < (os.cpu_count() or 1) and hasattr(os, "sched_setaffinity"):
        cpus = {cpu}
    prctl: Any = None
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):
            prctl = None
    parent = os.getpid()

    def prepare() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, deathSignal)
            if os.getppid() != parent:  # the harness died before prctl
                os.kill(os.getpid(), deathSignal)

    return prepare


#: prctl(2): the signal sent to this process when its parent dies.
_PR_SET_PDEATHSIG = 1


class RedisProcess:
    """
    A C{redis-server} of the harness's own on 127.0.0.1, without
    persistence.

    @ivar port: its port.
    @ivar directory: its working directory (its log is there).
    """

    def __init__(self, directory: str, cpu: Optional[int] = None,
                 timeout: float = 10.0) -> None:
        """
        Start it and wait until it answers C{PING}.

        @param directory: its working directory (created).
        @param cpu: the CPU to pin it to, or C{None}.
        @raise NotAvailable: if no C{redis-server} is installed.
        @raise HarnessError: if it does not answer within C{timeout} s.
        """
        binary = redisServerPath()
        if binary is None:
            raise NotAvailable("redis-server is not installed (/usr/bin/redis-server nor on "
                               "PATH): apt-get install redis-server")
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.port = freePort()
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", directory,
             "--logfile", os.path.join(directory, "redis.log"), "--daemonize", "no",
             "--save", "", "--appendonly", "no", "--databases", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_preexec(cpu, signal.SIGKILL),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._ping():
                return
            time.sleep(0.02)
        self.stop()
        raise HarnessError(f"redis-server did not start in {timeout} s: {self.logTail()}")

    @property
    def pid(self) -> int:
        """
        Its process id.
        """
        return self.process.pid

    @property
    def url(self) -> str:
        """
        Its C{redis://} URL (database 0).
        """
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def logTail(self) -> str:
        """
        @return: the last lines of its log.
        """
        try:
            text = Path(self.directory, "redis.log").read_text("utf-8", "replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-3:]) or "(empty log)"

    def stop(self) -> None:
        """
        Kill it (nothing to save) and wait for it.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def childPids(pid: int) -> list[int]:
    """
    @return: the processes whose parent is C{pid}, from C{/proc}.
    """
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(entry))
    return sorted(children)


def _socketInodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return inodes
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def connectionsPerProcess(serverPort: int, pids: Sequence[int]) -> dict[int, int]:
    """
    @return: for each of C{pids}, how many established connections to
        C{serverPort} on 127.0.0.1 it holds the server side of (from
        C{/proc/net/tcp}).
    """
    local = f"0100007F:{serverPort:04X}"
    inodes: set[int] = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == local and fields[3] == "01":  # ESTABLISHED
                inodes.add(int(fields[9]))
    return {pid: len(inodes & _socketInodes(pid)) for pid in pids}


_STARTED = re.compile(r"started worker (\d+) \(pid (\d+)\)")
_CONNECTED = re.compile(r"\[worker \d+\] hub broker: connected to Redis")
_LISTENING = re.compile(r"\[worker \d+\] txws hub listening on ")


def _twistd() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _killWorker(pid: int) -> None:
    """
    Kill a worker that outlived its parent (if that pid is still one).
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"--worker" not in f.read():
                return
        os.kill(pid, signal.SIGKILL)
    except (OSError, ProcessLookupError):
        pass


class ClusterProcess:
    """
    C{twistd -n txws --workers N --broker redis://...} on one fixed port of
    127.0.0.1, with its own L{RedisProcess}; the same interface as
    L{bench.run.ServerProcess}.

    @ivar ready: what the harness shows of it: its port, the parent's pid,
        the workers' pids, its version, how it broadcasts.
    @ivar redis: its Redis.
    """

    profile: Optional[Path] = None

    def __init__(self, name: str, workers: int, secret: str, cpu: Optional[int], logDir: str,
                 root: Path, mode: str = "fanout", timeout: float = 60.0) -> None:
        """
        Start its Redis, then the server, and wait until every worker is
        connected to Redis and listening.

        @param secret: the secret of the hub's key.
        @param cpu: the CPU every process of it (and its Redis) is pinned
            to, or C{None}.
        @param root: the checkout (put on the workers' C{PYTHONPATH}).
        @raise NotAvailable: without C{redis-server}.
        @raise HarnessError: if it does not start within C{timeout} s
            (everything started is stopped first).
        """
        self.mode = mode
        self.workers = workers
        stamp = int(time.time() * 1000)
        self.directory = os.path.join(logDir, f"{name}-{stamp}")
        os.makedirs(self.directory)
        self.redis = RedisProcess(os.path.join(self.directory, "redis"), cpu)
        self.process: Optional[subprocess.Popen[bytes]] = None
        try:
            keys = os.path.join(self.directory, "keys.json")
            fd = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump({HUB_KEY_ID: secret}, f)
            self.port = freePort()
            self.log = Path(self.directory, "twistd.log")
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
            with open(self.log, "wb") as logFile:
                self.process = subprocess.Popen(
                    [*_twistd(), "-n", "--pidfile=", "txws",
                     "--listen", f"tcp:{self.port}:interface=127.0.0.1:backlog=4096",
                     "--broker", self.redis.url, "--workers", str(workers),
                     "--hmac-keys", keys, "--ping-interval", "0", "--close-timeout", "2"],
                    cwd=self.directory, env=env, stdin=subprocess.DEVNULL, stdout=logFile,
                    stderr=subprocess.STDOUT, start_new_session=True,
                    preexec_fn=_preexec(cpu, signal.SIGTERM),
                )
            self.workerPids = self._waitReady(timeout)
        except BaseException:
            self.stop()
            raise
        from txws._version import __version__

        self.ready: dict[str, Any] = {
            "server": name, "port": self.port, "pid": self.pid,
            "workerPids": self.workerPids, "pinned": cpu is not None,
            "version": f"txws {__version__}: twistd -n txws --workers {workers} --broker "
                       "redis:// (parent and workers on one CPU with their Redis)",
            "broadcast": "signed POST /publish to the shared port, Redis pub/sub between workers",
        }

    def _waitReady(self, timeout: float) -> list[int]:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise HarnessError(f"twistd txws exited with {self.process.returncode}: "
                                   + self.logTail())
            text = self.log.read_text("utf-8", "replace")
            pids = {int(m.group(1)): int(m.group(2)) for m in _STARTED.finditer(text)}
            if (len(pids) >= self.workers and len(_CONNECTED.findall(text)) >= self.workers
                    and len(_LISTENING.findall(text)) >= self.workers):
                return [pids[i] for i in sorted(pids)]
            time.sleep(0.1)
        raise HarnessError(f"twistd txws --workers {self.workers} not ready in {timeout} s: "
                           + self.logTail())

    @property
    def pid(self) -> int:
        """
        The parent's process id.
        """
        assert self.process is not None
        return self.process.pid

    def otherPids(self) -> tuple[int, ...]:
        """
        @return: the workers' process ids, as they are now.
        """
        return tuple(childPids(self.pid))

    def sidePids(self) -> tuple[int, ...]:
        """
        @return: its Redis's process id.
        """
        return (self.redis.pid,)

    def alive(self) -> bool:
        """
        @return: whether the parent and all its workers run.
        """
        return (self.process is not None and self.process.poll() is None
                and len(childPids(self.pid)) == self.workers)

    def logTail(self) -> str:
        """
        @return: the last lines of the server's log.
        """
        try:
            text = self.log.read_text("utf-8", "replace").strip().splitlines()
        except (OSError, AttributeError):
            return "(no output)"
        return " | ".join(text[-3:]) or "(no output)"

    def stop(self) -> None:
        """
        SIGTERM the parent (it stops its workers and exits), then kill
        whatever of its process group is left; kill its Redis.
        """
        try:
            if self.process is not None and self.process.poll() is None:
                workers = childPids(self.pid)
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(5)
                for pid in workers:
                    _killWorker(pid)
        finally:
            self.redis.stop()
