"""
Run the benchmark: every server in its own process pinned to one CPU, the
load generator (this process) pinned to another, every cell measured in
one run, one table out.

    python -m bench.run [--quick] [--servers txws,raw,...] [--cells ...]
                        [--duration S] [--warmup S] [--idle N] [--output PATH]
                        [--subscribers N] [--publishes N]

See C{bench/README.md} for what the cells and columns mean.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from bench.cells import CELLS, QUICK_CELLS, Cell
from bench.cluster import (
    CLUSTERS,
    REDIS_SERVERS,
    ClusterProcess,
    NotAvailable,
    RedisProcess,
    connectionsPerProcess,
)
from bench.deflate import (
    BROWSER_OFFER,
    ECHO_OFFER,
    Negotiated,
    compressFresh,
    deflateEchoLoop,
    exchangeOnce,
    jsonPayload,
    openDeflateConnections,
)
from bench.fanout import (
    HubPublisher,
    Publisher,
    WebSocketPublisher,
    closeAll,
    ensureFileLimit,
    fanoutLoop,
    hubSecret,
    openSubscribers,
)
from bench.fanout_servers import FANOUT_SERVERS, HUB_SECRET_ENV, REDIS_URL_ENV
from bench.loadgen import (
    CLOSE_REPLY,
    CpuClock,
    HarnessError,
    closeConnections,
    echoLoop,
    handshakeLoop,
    makePayload,
    maskedFrame,
    openConnections,
    processCpuSeconds,
    processRssBytes,
    serverFrame,
)
from bench.servers import SERVERS, pinToCpu, raiseFileLimit

__all__ = [
    "DEFAULT_SERVERS", "RUNNERS", "VARIANTS", "Row", "formatFanoutTable", "main", "runBenchmark",
]

ROOT = Path(__file__).resolve().parent.parent

#: Extra servers: a name, the server it runs, and its environment.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "txws-nox": ("txws", {"TXWS_NO_EXTENSIONS": "1"}),
    "txws-metrics": ("txws", {"TXWS_BENCH_METRICS": "1"}),
}

DEFAULT_SERVERS = [
    "tcp-echo", "raw", "txws", "txws-resource", "autobahn", "twisted-web", "websockets", "picows",
    "txws-hub",
    # The compression cells only (the others are "n/a" for them).
    "txws-deflate", "txws-deflate-hubpolicy", "txws-deflate-15-8", "websockets-deflate",
    "autobahn-deflate",
]

#: The servers published to by a signed POST /publish (the hub's).
HUB_SERVERS = frozenset(["txws-hub", "txws-hub-redis", *CLUSTERS])

#: The load generator's CPU and the servers' CPU.
GENERATOR_CPU = 0
SERVER_CPU = 1


@dataclass
class Row:
    """
    One server's result in one cell.

    @ivar status: C{ok}, C{not installed}, C{n/a} or C{error: ...}.
    @ivar rate: messages, handshakes per second (0 for memory).
    @ivar cost: the server's CPU microseconds per message or handshake, or
        KiB of resident memory per idle connection.
    @ivar generatorCost: the load generator's CPU microseconds per message.
    """

    server: str
    cell: str
    unit: str
    status: str = "ok"
    rate: float = 0.0
    cost: float = 0.0
    generatorCost: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


class ServerProcess:
    """
    A server of L{bench.servers} in a subprocess; stopped by closing its
    standard input.
    """

    #: If set, servers run under cProfile and save their stats in this
    #: directory (C{--profile}).
    profileDir: Optional[Path] = None

    def __init__(
        self, name: str, readSize: int, serverCpu: int, logDir: str, mode: str = "echo"
    ) -> None:
        self.mode = mode
        server, extraEnv = VARIANTS.get(name, (name, {}))
        profile: list[str] = []
        if self.profileDir is not None:
            label = f"{name}-{mode}-r{readSize}-{time.time_ns()}.pstats"
            self.profile: Optional[Path] = self.profileDir / label
            profile = ["--profile", str(self.profile)]
        else:
            self.profile = None
        env = dict(os.environ, **extraEnv)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env[HUB_SECRET_ENV] = hubSecret()
        stamp = int(time.time() * 1000)
        self.redis: Optional[RedisProcess] = None
        if name in REDIS_SERVERS:
            self.redis = RedisProcess(str(Path(logDir) / f"{name}-{stamp}-redis"), serverCpu)
            env[REDIS_URL_ENV] = self.redis.url
        self.log = Path(logDir) / f"{name}-{stamp}.log"
        self._logFile = open(self.log, "wb")  # noqa: SIM115 (closed in stop)
        try:
            self._start(server, serverCpu, readSize, mode, profile, env)
        except BaseException:
            self._logFile.close()
            if self.redis is not None:
                self.redis.stop()
            raise
        self.ready: dict[str, Any] = self._readReady()

    def _start(self, server: str, serverCpu: int, readSize: int, mode: str,
               profile: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "bench.servers", "--server", server,
                "--cpu", str(serverCpu), "--read-size", str(readSize), "--mode", mode,
                *profile,
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._logFile,
        )

    def _readReady(self, timeout: float = 30.0) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        readable, _, _ = select.select([stdout], [], [], timeout)
        line = stdout.readline() if readable else b""
        if not line:
            self.stop()
            raise HarnessError("server did not start: " + self.logTail())
        ready: dict[str, Any] = json.loads(line)
        return ready

    @property
    def pid(self) -> int:
        return self.process.pid

    def otherPids(self) -> tuple[int, ...]:
        """
        @return: the server's other processes (none: it is one process).
        """
        return ()

    def sidePids(self) -> tuple[int, ...]:
        """
        @return: the processes it needs besides itself: its Redis, if any.
        """
        return (self.redis.pid,) if self.redis is not None else ()

    def alive(self) -> bool:
        return self.process.poll() is None

    def logTail(self) -> str:
        self._logFile.flush()
        text = self.log.read_text("utf-8", "replace").strip().splitlines()
        return " | ".join(text[-3:]) or "(no output)"

    def stop(self) -> None:
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                self.process.wait(30 if self.profile else 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            if self.process.stdout is not None:
                self.process.stdout.close()
            self._logFile.close()
        finally:
            if self.redis is not None:
                self.redis.stop()


#: A running server: one process of L{bench.servers}, or a cluster.
Server = Union[ServerProcess, ClusterProcess]


@dataclass
class Settings:
    """
    @ivar duration: seconds of each measured window.
    @ivar warmup: seconds run before each window.
    @ivar idle: connections opened for the idle-memory cell.
    @ivar repeat: how many times each cell is measured (the best is kept).
    @ivar idleBatch: idle connections opened at a time (concurrent opening
        handshakes leave their garbage interleaved with the connections'
        memory: with 200 at a time raw measures 1.9 KiB instead of 1.1).
    @ivar subscribers: if non-zero, the subscribers of every fan-out cell
        instead of the cell's own (a smoke run).
    @ivar publishes: if non-zero, fan-out windows are exactly this many
        publishes instead of C{duration} seconds.
    @ivar subscriberBatch: subscribers opened at a time.
    @ivar deflateConnections: connections opened for C{deflate-memory}.
    """

    duration: float
    warmup: float
    idle: int
    repeat: int = 1
    idleBatch: int = 10
    subscribers: int = 0
    publishes: int = 0
    subscriberBatch: int = 250
    deflateConnections: int = 2000


def _echoReply(echo: str, cell: Cell) -> tuple[bytes, bytes]:
    opcode = 0x1 if cell.text else 0x2
    payload = makePayload(cell.size, cell.text)
    frame = maskedFrame(opcode, payload)
    return frame, (serverFrame(opcode, payload) if echo == "frames" else frame)


def _echoKind(name: str) -> str:
    return SERVERS[VARIANTS.get(name, (name, {}))[0]].echo


def _needServer(server: Optional[Server]) -> Server:
    if server is None:
        raise HarnessError("this cell needs a running server")
    return server


def runEcho(
    process: Optional[Server], name: str, cell: Cell, settings: Settings
) -> Row:
    server = _needServer(process)
    echo = _echoKind(name)
    frame, reply = _echoReply(echo, cell)
    port = server.ready["port"]
    sockets = openConnections(port, cell.connections, upgrade=echo != "tcp")
    try:
        result = echoLoop(
            sockets, frame, reply, CpuClock(server.pid), settings.warmup, settings.duration
        )
    finally:
        closeConnections(sockets, websocket=echo != "tcp")
    return _echoRow(cell, result)


def _echoRow(cell: Cell, result: Any, **details: Any) -> Row:
    """
    The row of an echo window: rates, costs and the details every echo
    cell reports, then C{details}.

    @param result: an L{EchoResult} or a L{bench.deflate.DeflateEchoResult}.
    """
    if not result.messages:
        raise HarnessError("no round trip completed in the window")
    rtts = sorted(result.rtts)
    return Row(
        "", cell.name, cell.unit,
        rate=result.messages / result.seconds,
        cost=result.serverCpu / result.messages * 1e6,
        generatorCost=result.generatorCpu / result.messages * 1e6,
        details={
            "messages": result.messages,
            "seconds": round(result.seconds, 3),
            "serverCpuSeconds": round(result.serverCpu, 3),
            "serverBusy": round(result.serverCpu / result.seconds, 3),
            "generatorBusy": round(result.generatorCpu / result.seconds, 3),
            "serverPageFaultsPerMessage": round(result.serverFaults / result.messages, 1),
            **details,
            "rttMs": {
                "p50": round(rtts[len(rtts) // 2] * 1e3, 3),
                "p99": round(rtts[min(len(rtts) - 1, len(rtts) * 99 // 100)] * 1e3, 3),
                "max": round(rtts[-1] * 1e3, 3),
            },
        },
    )


def runHandshake(
    process: Optional[Server], name: str, cell: Cell, settings: Settings
) -> Row:
    server = _needServer(process)
    echo = _echoKind(name)
    if echo == "tcp":
        return Row("", cell.name, cell.unit, status="n/a")
    closeReply = len(CLOSE_REPLY) if echo == "frames" else len(maskedFrame(0x8, b"\x03\xe8"))
    result = handshakeLoop(
        server.ready["port"], CpuClock(server.pid), settings.warmup, settings.duration,
        closeReplyLength=closeReply,
    )
    if not result.handshakes:
        raise HarnessError("no handshake completed in the window")
    return Row(
        "", cell.name, cell.unit,
        rate=result.handshakes / result.seconds,
        cost=result.serverCpu / result.handshakes * 1e6,
        generatorCost=result.generatorCpu / result.handshakes * 1e6,
        details={"handshakes": result.handshakes, "seconds": round(result.seconds, 3)},
    )


def _settle(pid: int, limit: float = 5.0) -> None:
    """
    Wait until the server has stopped working (its CPU time stands still).
    """
    deadline = time.monotonic() + limit
    before = processCpuSeconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = processCpuSeconds(pid)
        if now == before:
            return
        before = now


def runMemory(
    process: Optional[Server], name: str, cell: Cell, settings: Settings
) -> Row:
    server = _needServer(process)
    if _echoKind(name) == "tcp":
        return Row("", cell.name, cell.unit, status="n/a")
    port = server.ready["port"]
    # Connections kept open before the baseline, so that the measured ones
    # cannot reuse memory freed by the warm-up.
    baseline = openConnections(port, max(settings.idle // 20, 10), batch=settings.idleBatch)
    measured: list[Any] = []
    try:
        _settle(server.pid)
        before = processRssBytes(server.pid)
        started = time.perf_counter()
        measured = openConnections(port, settings.idle, batch=settings.idleBatch, timeout=120)
        opening = time.perf_counter() - started
        _settle(server.pid)
        after = processRssBytes(server.pid)
    finally:
        closeConnections(baseline + measured, websocket=True)
    return Row(
        "", cell.name, cell.unit,
        cost=(after - before) / settings.idle / 1024,
        details={
            "connections": settings.idle,
            "openedAtATime": settings.idleBatch,
            "rssBeforeKiB": before // 1024,
            "rssAfterKiB": after // 1024,
            "openedPerSecond": round(settings.idle / opening),
        },
    )


def runFeed(
    process: Optional[Server], name: str, cell: Cell, settings: Settings
) -> Row:
    """
    Measure txws's receive path alone in a process of its own (see
    L{bench.feed}), pinned to the servers' CPU.
    """
    server, extraEnv = VARIANTS.get(name, (name, {}))
    if server not in SERVERS or not SERVERS[server].feed:
        return Row(name, cell.name, cell.unit, status="n/a")
    env = dict(os.environ, **extraEnv)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    finished = subprocess.run(
        [
            sys.executable, "-m", "bench.feed", "--size", str(cell.size),
            "--chunk", str(cell.readSize), "--seconds", str(settings.duration),
            "--cpu", str(SERVER_CPU), *(["--text"] if cell.text else []),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60 + settings.duration * 5,
        check=False,
    )
    if finished.returncode:
        tail = " | ".join(finished.stderr.strip().splitlines()[-2:])
        raise HarnessError(f"bench.feed failed: {tail}")
    result = json.loads(finished.stdout)
    return Row(
        name, cell.name, cell.unit,
        rate=1e6 / result["usPerMessage"],
        cost=result["usPerMessage"],
        details={"messages": result["messages"], "reads": result["reads"],
                 "path": result["path"]},
    )


def runFanout(
    process: Optional[Server], name: str, cell: Cell, settings: Settings
) -> Row:
    """
    One publish to every subscriber, in a closed loop (see L{bench.fanout}):
    the cost is the server's CPU per delivered message, the rate
    publishes per second.
    """
    server = _needServer(process)
    port = server.ready["port"]
    count = settings.subscribers or cell.connections
    ensureFileLimit(count + 256)
    hub = name in HUB_SERVERS or VARIANTS.get(name, (name, {}))[0] in HUB_SERVERS
    answers: set[Optional[Negotiated]] = set()
    subscribers, leftovers = openSubscribers(
        port, count, batch=settings.subscriberBatch,
        offer=BROWSER_OFFER if cell.deflate else None, answers=answers,
    )
    negotiated = next(iter(answers)) if len(answers) == 1 else None
    if cell.deflate and negotiated is None:
        closeAll(subscribers, None)
        if answers == {None}:
            return Row("", cell.name, cell.unit, status="n/a (declines compression)")
        raise HarnessError(f"the subscribers' answers differ: {answers}")
    publisher: Optional[Publisher] = None
    perProcess: dict[int, int] = {}
    try:
        publisher = HubPublisher(port, hubSecret()) if hub else WebSocketPublisher(port)
        clock = CpuClock(server.pid, otherPids=server.otherPids(), sidePids=server.sidePids())
        if isinstance(server, ClusterProcess):
            perProcess = connectionsPerProcess(port, clock.otherPids)
        result = fanoutLoop(
            subscribers, leftovers, publisher, clock, settings.warmup,
            settings.duration, publishes=settings.publishes, setupMessages=1 if hub else 0,
            negotiated=negotiated,
        )
    finally:
        closeAll(subscribers, publisher)
    if perProcess:
        # Each worker's answer counts its own subscribers; the publisher's
        # one connection lands on one worker (it holds the connection too).
        counts = {n - 1 for n in perProcess.values() if n}
        subscribed = sum(perProcess.values()) - 1
        if subscribed != count:
            raise HarnessError(f"the workers hold {subscribed} subscribers, not {count}")
        wrong = [d for d in result.delivered if d not in counts]
        if wrong:
            raise HarnessError(f"a worker answered delivered={wrong[0]}; its subscribers: "
                               f"{sorted(perProcess.values())} (one is the publisher)")
    else:
        wrong = [d for d in result.delivered if d != count]
        if wrong:
            raise HarnessError(f"the hub answered delivered={wrong[0]} for {count} subscribers")
    if cell.deflate and not result.compressed:
        raise HarnessError("the server negotiated compression but sent nothing compressed")
    deliveries = result.publishes * result.subscribers
    latencies = sorted(result.latencies)
    return Row(
        "", cell.name, cell.unit,
        rate=result.publishes / result.seconds,
        cost=result.serverCpu / deliveries * 1e6,
        generatorCost=result.generatorCpu / deliveries * 1e6,
        details={
            "subscribers": result.subscribers,
            "publishes": result.publishes,
            "warmupPublishes": result.warmupPublishes,
            "deliveries": deliveries,
            "deliveriesPerSecond": round(deliveries / result.seconds),
            "perSubscriber": {"min": result.perSubscriber[0], "max": result.perSubscriber[1]},
            "checkedMessages": result.checked,
            "compressedMessages": result.compressed,
            "answer": negotiated.answer if negotiated else None,
            "bytesPerMessage": round(result.wireBytes / result.checked) if result.checked else 0,
            "hubDelivered": len(result.delivered),
            "seconds": round(result.seconds, 3),
            "serverCpuSeconds": round(result.serverCpu, 3),
            "serverUserUsPerDelivery": round(result.serverUser / deliveries * 1e6, 2),
            "serverSystemUsPerDelivery": round(
                (result.serverCpu - result.serverUser) / deliveries * 1e6, 2
            ),
            "serverBusy": round(result.serverCpu / result.seconds, 3),
            "serverUsPerPublish": round(result.serverCpu / result.publishes * 1e6, 1),
            "processes": 1 + len(clock.otherPids),
            **({"redisUsPerPublish": round(result.sideCpu / result.publishes * 1e6, 1),
                "redisBusy": round(result.sideCpu / result.seconds, 3)}
               if clock.sidePids else {}),
            # Each worker's connections: its subscribers, and the publisher's
            # one connection on the worker whose answers are "delivered".
            **({"connectionsPerWorker": sorted(perProcess.values()),
                "cpuUsPerPublish": {
                    "parent": round(result.perProcessCpu[0] / result.publishes * 1e6, 1),
                    "workers": [round(c / result.publishes * 1e6, 1)
                                for c in result.perProcessCpu[1:]],
                },
                "publishWorkerSubscribers": result.delivered[0] if result.delivered else None}
               if perProcess else {}),
            "generatorBusy": round(result.generatorCpu / result.seconds, 3),
            "lastArrivalMs": {
                "p50": round(latencies[len(latencies) // 2] * 1e3, 3),
                "p99": round(latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)]
                             * 1e3, 3),
                "max": round(latencies[-1] * 1e3, 3),
            },
        },
    )


#: The servers measured, uncompressed, as references in the compression
#: cells (besides the servers configured for compression).
DEFLATE_REFERENCES = frozenset(["raw", "txws"])


def _isDeflateServer(name: str) -> bool:
    base = VARIANTS.get(name, (name, {}))[0]
    return base in SERVERS and SERVERS[base].deflate


def applies(name: str, cell: Cell) -> bool:
    """
    @return: whether server C{name} runs in C{cell}: the compression echo
        and memory cells run the servers configured for compression and,
        uncompressed, the references (L{DEFLATE_REFERENCES}); a fan-out
        cell with compression runs every server (those that decline it are
        "n/a"); the servers configured for compression run nothing else.
    """
    if cell.kind in ("deflate-echo", "deflate-memory"):
        return _isDeflateServer(name) or VARIANTS.get(name, (name, {}))[0] in DEFLATE_REFERENCES
    return cell.deflate or not _isDeflateServer(name)


def _pool(size: int) -> list[bytes]:
    # Distinct documents, so that a server's context takeover never finds
    # the same message in its window.
    return [jsonPayload(size, variant) for variant in range(8 if size <= 4096 else 4)]


def runDeflateEcho(
    process: Optional[Server], name: str, cell: Cell, settings: Settings
) -> Row:
    """
    Compressed echoes of JSON documents (see L{bench.deflate}): servers
    configured for compression get the offer and must accept it; the
    references get the same documents uncompressed.
    """
    server = _needServer(process)
    deflate = _isDeflateServer(name)
    payloads = _pool(cell.size)
    opcode = 0x1 if cell.text else 0x2
    if deflate:
        frames = [maskedFrame(opcode | 0x40, compressFresh(p)) for p in payloads]
    else:
        frames = [maskedFrame(opcode, p) for p in payloads]
    port = server.ready["port"]
    sockets, negotiated = openDeflateConnections(
        port, cell.connections, ECHO_OFFER if deflate else None
    )
    try:
        if deflate and negotiated is None:
            raise HarnessError("the server declined permessage-deflate")
        if not deflate and negotiated is not None:
            raise HarnessError("a reference server enabled permessage-deflate unasked")
        result = deflateEchoLoop(
            sockets, payloads, frames, negotiated, _echoKind(name) == "bytes",
            CpuClock(server.pid), settings.warmup, settings.duration,
        )
    finally:
        closeConnections(sockets, websocket=True)
    return _echoRow(
        cell,
        result,
        compressed=deflate,
        answer=negotiated.answer if negotiated else None,
        messageBytes=cell.size,
        requestBytes=round(sum(map(len, frames)) / len(frames)),
        replyBytes=round(result.replyBytes),
        checkedReplies=result.checked,
    )

def runDeflateMemory(
    process: Optional[Server], name: str, cell: Cell, settings: Settings
) -> Row:
    """
    Resident memory per connection that negotiated compression (the
    browsers' offer), idle and after one compressed message each way; the
    cost is the active figure.
    """
    server = _needServer(process)
    deflate = _isDeflateServer(name)
    offer = BROWSER_OFFER if deflate else None
    payload = jsonPayload(cell.size, 0)
    frame = maskedFrame(0x41, compressFresh(payload)) if deflate else maskedFrame(0x1, payload)
    port = server.ready["port"]
    count = settings.deflateConnections
    ensureFileLimit(count + 256)
    # Connections (and a message on each) before the baseline, so that the
    # measured ones cannot reuse memory freed by the warm-up and one-time
    # allocations are made.
    baseline, negotiated = openDeflateConnections(
        port, max(count // 20, 10), offer, batch=settings.idleBatch
    )
    measured: list[Any] = []
    try:
        if deflate and negotiated is None:
            raise HarnessError("the server declined permessage-deflate")
        exchangeOnce(baseline, payload, frame, negotiated)
        _settle(server.pid)
        before = processRssBytes(server.pid)
        measured, answer = openDeflateConnections(
            port, count, offer, batch=settings.idleBatch, timeout=180
        )
        if answer != negotiated:
            raise HarnessError(f"answers differ: {answer} and {negotiated}")
        _settle(server.pid)
        idle = processRssBytes(server.pid)
        exchanged = exchangeOnce(measured, payload, frame, negotiated)
        _settle(server.pid)
        active = processRssBytes(server.pid)
    finally:
        closeConnections(baseline + measured, websocket=True)
    return Row(
        "", cell.name, cell.unit,
        cost=(active - before) / count / 1024,
        details={
            "connections": count,
            "idleKiB": round((idle - before) / count / 1024, 2),
            "activeKiB": round((active - before) / count / 1024, 2),
            "rssBeforeKiB": before // 1024,
            "rssIdleKiB": idle // 1024,
            "rssActiveKiB": active // 1024,
            "compressed": deflate,
            "answer": negotiated.answer if negotiated else None,
            "messageBytes": cell.size,
            "requestBytes": len(frame),
            "replyBytes": exchanged.replyBytes,
            "checkedReplies": exchanged.replies,
        },
    )


Runner = Callable[[Optional[Server], str, Cell, Settings], Row]

#: One runner per kind of cell.
RUNNERS: dict[str, Runner] = {
    "echo": runEcho, "feed": runFeed, "handshake": runHandshake, "memory": runMemory,
    "fanout": runFanout, "deflate-echo": runDeflateEcho, "deflate-memory": runDeflateMemory,
}


def _processGroups(cells: list[Cell]) -> list[tuple[tuple[int, str], list[Cell]]]:
    """
    Group cells by the server process they can share: same read size and
    mode (echo or fan-out), and cells that need a fresh process alone.
    Cells that need no server form a group whose read size is C{-1}.
    """
    groups: list[tuple[tuple[int, str], list[Cell]]] = []
    shared: dict[tuple[int, str], list[Cell]] = {}
    for cell in cells:
        key = (cell.readSize if cell.server else -1, cell.mode)
        if cell.fresh:
            groups.append((key, [cell]))
        elif key in shared:
            shared[key].append(cell)
        else:
            shared[key] = [cell]
            groups.append((key, shared[key]))
    return groups


def runBenchmark(
    servers: list[str],
    cells: list[Cell],
    settings: Settings,
    log: Callable[[str], None],
    serverCpu: int = SERVER_CPU,
) -> tuple[list[Row], dict[str, dict[str, Any]]]:
    """
    Measure every cell for every server, cell by cell (all servers of a
    cell one after the other, so that their ratios are measured seconds
    apart), C{settings.repeat} times; each server keeps its best (lowest
    cost) run.

    @return: the rows, and each server's ready line (versions, paths).
    """
    results: dict[tuple[str, str], Row] = {}
    info: dict[str, dict[str, Any]] = {}

    def record(row: Row) -> None:
        key = (row.server, row.cell)
        best = results.get(key)
        runs = (best.details.get("runs", 1) + 1) if best else 1
        if best is None or (row.status == "ok" and (best.status != "ok" or row.cost < best.cost)):
            results[key] = row
        results[key].details["runs"] = runs
        log(_describe(row))

    with tempfile.TemporaryDirectory(prefix="txws-bench-") as logDir:
        for (readSize, mode), group in _processGroups(cells):
            running: dict[str, Optional[Server]] = {}
            try:
                for name in servers:
                    if readSize < 0:
                        running[name] = None
                        continue
                    process = _start(
                        name, readSize, mode, serverCpu, logDir, group, info, record, log
                    )
                    if process is not None:
                        running[name] = process
                for _ in range(settings.repeat if not group[0].fresh else 1):
                    for cell in group:
                        for name, process in running.items():
                            if process is not None:
                                process = running[name] = _ensureRunning(
                                    process, name, readSize, serverCpu, logDir
                                )
                            record(_runCell(process, name, cell, settings))
            finally:
                _stopAll(running.values(), log)
    order = {name: index for index, name in enumerate(servers)}
    cellOrder = {cell.name: index for index, cell in enumerate(cells)}
    rows = sorted(results.values(), key=lambda r: (cellOrder[r.cell], order[r.server]))
    return rows, info


def _stopAll(processes: Any, log: Callable[[str], None]) -> None:
    """
    Stop every server, even when stopping one of them fails.
    """
    for process in processes:
        if process is None:
            continue
        try:
            process.stop()
        except Exception as e:  # the others must stop too
            log(f"stopping a server failed: {e!r}")


def _start(
    name: str,
    readSize: int,
    mode: str,
    serverCpu: int,
    logDir: str,
    group: list[Cell],
    info: dict[str, dict[str, Any]],
    record: Callable[[Row], None],
    log: Callable[[str], None],
) -> Optional[Server]:
    """
    Start a server for a group of cells, or record why its cells cannot run.
    """
    base = VARIANTS.get(name, (name, {}))[0]

    def skip(status: str) -> None:
        for cell in group:
            record(Row(name, cell.name, cell.unit, status=status))

    if name in CLUSTERS:
        if mode != "fanout":
            skip("n/a")
            return None
        if info.get(name, {}).get("error") == "not available":
            skip("not available")
            return None
        try:
            cluster = _startCluster(name, serverCpu, logDir)
        except NotAvailable as e:
            info[name] = {"error": "not available", "detail": str(e)}
            log(f"{name}: not available ({e})")
            skip("not available")
            return None
        except HarnessError as e:
            skip(f"error: {e}")
            return None
        info.setdefault(name, dict(cluster.ready))
        return cluster

    if readSize and not SERVERS[base].readSizes:
        skip("n/a")
        return None
    if not any(applies(name, cell) for cell in group):
        skip("n/a")
        return None
    if (base not in FANOUT_SERVERS) if mode == "fanout" else SERVERS[base].echo == "none":
        skip("n/a")
        return None
    if info.get(name, {}).get("error") == "not installed":
        skip("not installed")
        return None
    if info.get(name, {}).get("error") == "not available":
        skip("not available")
        return None
    try:
        process = ServerProcess(name, readSize, serverCpu, logDir, mode)
    except NotAvailable as e:
        info[name] = {"error": "not available", "detail": str(e)}
        log(f"{name}: not available ({e})")
        skip("not available")
        return None
    except HarnessError as e:
        skip(f"error: {e}")
        return None
    if "error" in process.ready:
        process.stop()
        info[name] = process.ready
        log(f"{name}: {process.ready['error']} ({process.ready.get('detail', '')})")
        skip(process.ready["error"])
        return None
    entry = info.setdefault(name, dict(process.ready))
    if "broadcast" in process.ready:
        entry["broadcast"] = process.ready["broadcast"]
    return process


def _startCluster(name: str, serverCpu: int, logDir: str) -> ClusterProcess:
    """
    Start C{twistd txws --workers N} and its Redis, every process on the
    servers' CPU (when the generator is pinned to its own).
    """
    cpu = serverCpu if serverCpu in range(os.cpu_count() or 1) else None
    return ClusterProcess(name, CLUSTERS[name], hubSecret(), cpu, logDir, ROOT)


def _ensureRunning(
    process: Server, name: str, readSize: int, serverCpu: int, logDir: str
) -> Server:
    if process.alive():
        return process
    process.stop()
    if isinstance(process, ClusterProcess):
        return _startCluster(name, serverCpu, logDir)
    return ServerProcess(name, readSize, serverCpu, logDir, process.mode)


def _runCell(
    process: Optional[Server], name: str, cell: Cell, settings: Settings
) -> Row:
    if not applies(name, cell):
        return Row(name, cell.name, cell.unit, status="n/a")
    try:
        row = RUNNERS[cell.kind](process, name, cell, settings)
    except (HarnessError, OSError, subprocess.SubprocessError) as e:
        row = Row("", cell.name, cell.unit, status=f"error: {e}")
        if process is not None and not process.alive():
            row.status += " (server died: " + process.logTail() + ")"
    row.server = name
    return row


def _describe(row: Row) -> str:
    if row.status != "ok":
        return f"{row.server:14} {row.cell:22} {row.status}"
    rate = f"{row.rate:10.0f}/s" if row.rate else " " * 12
    return f"{row.server:14} {row.cell:22} {rate} {row.cost:9.1f} {row.unit}"


def _ratios(rows: list[Row]) -> dict[tuple[str, str], tuple[Optional[float], Optional[float]]]:
    """
    @return: for each (server, cell): raw's cost / its cost (efficiency),
        and its cost / txws's cost.
    """
    costs = {(r.server, r.cell): r.cost for r in rows if r.status == "ok" and r.cost > 0}
    ratios: dict[tuple[str, str], tuple[Optional[float], Optional[float]]] = {}
    for (server, cell), cost in costs.items():
        raw = costs.get(("raw", cell))
        txws = costs.get(("txws", cell))
        ratios[(server, cell)] = (
            raw / cost if raw else None,
            cost / txws if txws else None,
        )
    return ratios


def formatTable(rows: list[Row]) -> str:
    """
    @return: the results as one markdown table.
    """
    ratios = _ratios(rows)
    lines = [
        "| cell | server | rate /s | server cost | raw/this | this/txws | generator cost |",
        "|---|---|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if _isFanout(row) or _isDeflate(row):
            continue
        if row.status != "ok":
            lines.append(f"| {row.cell} | {row.server} | {row.status} | | | | |")
            continue
        efficiency, versusTxws = ratios.get((row.server, row.cell), (None, None))
        rate = f"{row.rate:,.0f}" if row.rate else ""
        decimals = 2 if row.unit == "KiB/conn" else 1
        generator = f"{row.generatorCost:.1f} {row.unit}" if row.generatorCost else ""
        lines.append(
            f"| {row.cell} | {row.server} | {rate} | {row.cost:.{decimals}f} {row.unit} | "
            f"{_fmt(efficiency)} | {_fmt(versusTxws)} | {generator} |"
        )
    return "\n".join(lines)


def _fmt(value: Optional[float]) -> str:
    return f"{value:.2f}" if value is not None else ""


def _ratio(top: Optional[float], bottom: Optional[float]) -> str:
    """
    @return: C{top / bottom} formatted, or empty when either is missing.
    """
    return _fmt(top / bottom) if top and bottom else ""


def _isFanout(row: Row) -> bool:
    cell = CELLS.get(row.cell)
    return cell is not None and cell.kind == "fanout"


def _isDeflate(row: Row) -> bool:
    cell = CELLS.get(row.cell)
    return cell is not None and cell.kind in ("deflate-echo", "deflate-memory")


def formatDeflateTable(rows: list[Row]) -> str:
    """
    @return: the compression cells as one markdown table: server CPU per
        message (echo) or KiB per connection, idle and active (memory),
        with the ratios to the raw ceiling (uncompressed), to txws
        compressing (C{txws-deflate}) and of websockets' and Autobahn's
        (compressing) costs to this one's; bytes on the wire per message.
    """
    costs = {(r.server, r.cell): r.cost for r in rows if r.status == "ok" and r.cost > 0}
    lines = [
        "| cell | server | compressed | rate /s | server cost | idle KiB/conn | raw/this | "
        "this/txws-deflate | websockets-deflate/this | autobahn-deflate/this | "
        "bytes sent / received per message | generator busy |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if not _isDeflate(row):
            continue
        if row.status != "ok":
            lines.append(f"| {row.cell} | {row.server} | | {row.status} |" + " |" * 8)
            continue
        d = row.details

        memory = row.unit == "KiB/conn"
        rate = "" if memory else f"{row.rate:,.0f}"
        cost = f"{row.cost:.2f} KiB/conn" if memory else f"{row.cost:.1f} us/msg"
        idle = f"{d['idleKiB']:.2f}" if memory else ""
        busy = f"{d['generatorBusy']:.2f}" if "generatorBusy" in d else ""
        lines.append(
            f"| {row.cell} | {row.server} | {'yes' if d['compressed'] else 'no'} | {rate} | "
            f"{cost} | {idle} | {_ratio(costs.get(('raw', row.cell)), row.cost)} | "
            f"{_ratio(row.cost, costs.get(('txws-deflate', row.cell)))} | "
            f"{_ratio(costs.get(('websockets-deflate', row.cell)), row.cost)} | "
            f"{_ratio(costs.get(('autobahn-deflate', row.cell)), row.cost)} | "
            f"{d['requestBytes']:,} / {d['replyBytes']:,} | {busy} |"
        )
    return "\n".join(lines)


def formatFanoutTable(rows: list[Row]) -> str:
    """
    @return: the fan-out cells as one markdown table: server CPU per
        delivered message (summed over all of a server's processes) and its
        ratios, publishes per second, the time until the last subscriber
        had each publish, and for the servers with a Redis their Redis's
        CPU per publish (apart: it is another process).
    """
    costs = {(r.server, r.cell): r.cost for r in rows if r.status == "ok" and r.cost > 0}
    rates = {(r.server, r.cell): r.rate for r in rows if r.status == "ok" and r.rate > 0}
    lines = [
        "| cell | server | subscribers | server us/delivery | user | system | this/raw | "
        "websockets/this | autobahn/this | publishes/s | last arrival p50 ms | p99 ms | "
        "generator busy | processes | this/txws-hub | publishes/s vs txws-hub | "
        "Redis us/publish | bytes/message | compressed/uncompressed |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if not _isFanout(row):
            continue
        if row.status != "ok":
            lines.append(f"| {row.cell} | {row.server} | {row.status} |" + " |" * 16)
            continue
        d = row.details

        raw = costs.get(("raw", row.cell))
        # With compression: the peers compressing, and this server's cost
        # against its own in the same cell without compression.
        deflate = CELLS[row.cell].deflate
        suffix = "-deflate" if deflate else ""
        plain = (row.server.removesuffix("-deflate"), row.cell.replace("-deflate", ""))
        lines.append(
            f"| {row.cell} | {row.server} | {d['subscribers']:,} | {row.cost:.2f} | "
            f"{d['serverUserUsPerDelivery']:.2f} | {d['serverSystemUsPerDelivery']:.2f} | "
            f"{_ratio(row.cost, raw)} | "
            f"{_ratio(costs.get(('websockets' + suffix, row.cell)), row.cost)} | "
            f"{_ratio(costs.get(('autobahn' + suffix, row.cell)), row.cost)} | {row.rate:,.1f} | "
            f"{d['lastArrivalMs']['p50']:.1f} | {d['lastArrivalMs']['p99']:.1f} | "
            f"{d['generatorBusy']:.2f} | {d.get('processes', 1)} | "
            f"{_ratio(row.cost, costs.get(('txws-hub', row.cell)))} | "
            f"{_ratio(row.rate, rates.get(('txws-hub', row.cell)))} | "
            + (f"{d['redisUsPerPublish']:.0f}" if "redisUsPerPublish" in d else "")
            + f" | {d.get('bytesPerMessage', '')} | "
            + (_ratio(row.cost, costs.get(plain)) if deflate else "") + " |"
        )
    return "\n".join(lines)


#: (description, cells, threshold on raw/txws cost) for the efficiency targets.
_EFFICIENCY_TARGETS = [
    ("small messages, 50 connections", ["echo-32B-c50", "echo-1KiB-c50", "echo-1KiB-text-c50"],
     0.8),
    ("large messages", ["echo-64KiB-c1", "echo-64KiB-c50", "echo-1MiB-c1", "echo-1MiB-c50"], 0.85),
]


#: The compressed echo cells, judged for txws-deflate against websockets
#: and Autobahn compressing alike.
_DEFLATE_ECHO_CELLS = [c.name for c in CELLS.values() if c.kind == "deflate-echo"]


#: (peer, limit, comparison) for the fan-out targets: CPU per delivered
#: message within 1.3x of raw's, 2x cheaper than websockets, 4x than Autobahn.
_FANOUT_TARGETS = [("raw", 1.3, "<="), ("websockets", 2.0, ">="), ("autobahn", 4.0, ">=")]


def evaluateTargets(rows: list[Row]) -> list[dict[str, Any]]:
    """
    Judge each txws variant against the targets of the benchmark's issue.

    @return: one entry per target and cell: what was measured, the limit,
        and C{pass}, C{FAIL} or C{missing}.
    """
    found = {(r.server, r.cell): r for r in rows if r.status == "ok"}
    variants = sorted({r.server for r in rows if r.server.startswith("txws")})
    verdicts: list[dict[str, Any]] = []

    def add(server: str, target: str, cell: str, value: Optional[float], limit: str,
            ok: Optional[bool]) -> None:
        verdicts.append({
            "server": server, "target": target, "cell": cell,
            "value": None if value is None else round(value, 3), "limit": limit,
            "verdict": "missing" if ok is None else ("pass" if ok else "FAIL"),
        })

    def cost(server: str, cell: str) -> Optional[float]:
        row = found.get((server, cell))
        return row.cost if row else None

    for server in variants:
        if _isDeflateServer(server):
            # The compression target: txws (its defaults) cheaper per
            # compressed echo than websockets and Autobahn compressing alike.
            for cell in _DEFLATE_ECHO_CELLS:
                mine = cost(server, cell)
                if server != "txws-deflate" or mine is None:
                    continue
                for peer in ("websockets-deflate", "autobahn-deflate"):
                    theirs = cost(peer, cell)
                    value = theirs / mine if theirs else None
                    add(server, f"compressed echo: {peer}'s CPU per message / this", cell,
                        value, "> 1", None if value is None else value > 1.0)
            continue
        for cell in ("fanout-1k", "fanout-5k"):
            mine = cost(server, cell)
            if mine is None:
                continue
            for peer, limit, compare in _FANOUT_TARGETS:
                theirs = cost(peer, cell)
                if peer == "raw":
                    value = mine / theirs if theirs else None
                    ok = None if value is None else value <= limit
                    add(server, f"fan-out CPU per delivery / {peer}'s", cell, value,
                        f"{compare} {limit}", ok)
                else:
                    # (A tiny run may measure no CPU tick at all.)
                    value = theirs / mine if theirs and mine else None
                    ok = None if value is None else value >= limit
                    add(server, f"fan-out: {peer}'s CPU per delivery / this", cell, value,
                        f"{compare} {limit}", ok)
        base = VARIANTS.get(server, (server, {}))[0]
        if base not in SERVERS or SERVERS[base].echo == "none":
            continue
        for target, cells, threshold in _EFFICIENCY_TARGETS:
            for cell in cells:
                raw, mine = cost("raw", cell), cost(server, cell)
                value = raw / mine if raw and mine else None
                add(server, f"efficiency, {target}", cell, value, f">= {threshold}",
                    None if value is None else value >= threshold)
        raw, mine = cost("raw", "handshake"), cost(server, "handshake")
        value = mine / raw if raw and mine else None
        add(server, "handshake CPU / raw's", "handshake", value, "<= 1.5",
            None if value is None else value <= 1.5)
        mine = cost(server, "idle-memory")
        add(server, "KiB per idle connection", "idle-memory", mine, "<= 4",
            None if mine is None else mine <= 4.0)
        # Linear work, end to end: reading 1 MiB 4 KiB at a time costs
        # Twisted itself several times more (each read is a reactor turn and
        # a recv); txws may grow by no more than raw's own factor.
        costs = [cost(server, "echo-1MiB-c1-r4KiB"), cost(server, "echo-1MiB-c1"),
                 cost("raw", "echo-1MiB-c1-r4KiB"), cost("raw", "echo-1MiB-c1")]
        value = None
        if all(costs):
            mySmall, myLarge, rawSmall, rawLarge = (c or 0.0 for c in costs)
            value = (mySmall / myLarge) / (rawSmall / rawLarge)
        add(server, "1 MiB in 4 KiB / 64 KiB reads, end to end, over raw's own growth",
            "echo-1MiB-c1-r4KiB", value, "<= 1.1", None if value is None else value <= 1.1)
        if SERVERS[base].feed:
            # txws alone: per byte, a 1 MiB message costs what a 64 KiB one
            # does in the same reads (no quadratic copying) ...
            big, little = cost(server, "feed-1MiB-r4KiB"), cost(server, "feed-64KiB-r4KiB")
            value = big / 16 / little if big and little else None
            add(server, "txws alone, per byte: 1 MiB / 64 KiB messages, 4 KiB reads",
                "feed-1MiB-r4KiB", value, "<= 1.1", None if value is None else value <= 1.1)
            # ... and the statement for txws alone.
            other = cost(server, "feed-1MiB-r64KiB")
            value = big / other if big and other else None
            add(server, "txws alone: 1 MiB in 4 KiB reads / in 64 KiB reads", "feed-1MiB-r4KiB",
                value, "<= 1.1", None if value is None else value <= 1.1)
        row = found.get((server, "echo-1MiB-c1"))
        p99 = row.details["rttMs"]["p99"] if row else None
        add(server, "1 MiB round trip p99 (ms), no delayed-ACK stall", "echo-1MiB-c1", p99,
            "< 40", None if p99 is None else p99 < 40)
    # Only the targets of cells that ran.
    ran = {r.cell for r in rows}
    return [v for v in verdicts if v["cell"] in ran]


def formatTargets(verdicts: list[dict[str, Any]]) -> str:
    """
    @return: the verdicts as a markdown table.
    """
    lines = ["| server | target | cell | measured | limit | verdict |", "|---|---|---|--:|--:|---|"]
    for v in verdicts:
        value = "" if v["value"] is None else f"{v['value']:.2f}"
        lines.append(
            f"| {v['server']} | {v['target']} | {v['cell']} | {value} | {v['limit']} | "
            f"{v['verdict']} |"
        )
    return "\n".join(lines)


def profileSummary(directory: Path, top: int = 25) -> str:
    """
    @return: each profile's functions with the most own time.
    """
    import io
    import pstats

    parts = []
    for path in sorted(directory.glob("*.pstats")):
        out = io.StringIO()
        stats = pstats.Stats(str(path), stream=out)
        stats.strip_dirs().sort_stats("tottime").print_stats(top)
        parts.append(f"## {path.name}\n```\n{out.getvalue().strip()}\n```")
    return "\n\n".join(parts)


def machineDescription() -> dict[str, Any]:
    """
    @return: the machine the benchmark ran on.
    """
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
    except OSError:
        load = "?"
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "loadAverage": load,
        "commit": _commit(),
    }


def _commit() -> str:
    """
    @return: the checkout's commit, with C{+dirty} if files are modified.
    """
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _resultsPath() -> Path:
    directory = ROOT / "bench" / "results"
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.date.today().isoformat()
    path = directory / f"{stamp}.json"
    index = 2
    while path.exists():
        path = directory / f"{stamp}-{index}.json"
        index += 1
    return path


def main(argv: Optional[list[str]] = None) -> int:
    """
    Run the benchmark from the command line.

    @return: the exit status: 0, or 1 if any cell of an installed server failed.
    """
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [*SERVERS, *VARIANTS, *CLUSTERS]
    parser.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                        help="comma-separated, from: " + ", ".join(names))
    parser.add_argument("--cells", default="", help="comma-separated, from: " + ", ".join(CELLS))
    parser.add_argument("--quick", action="store_true",
                        help="short windows, few idle connections, few cells (a smoke run)")
    parser.add_argument("--duration", type=float, help="seconds per measured window (2.5)")
    parser.add_argument("--warmup", type=float, help="seconds before each window (0.5)")
    parser.add_argument("--idle", type=int, help="idle connections for idle-memory (5000)")
    parser.add_argument("--idle-batch", type=int, default=10,
                        help="idle connections opened at a time (10)")
    parser.add_argument("--subscribers", type=int, default=0,
                        help="subscribers of every fan-out cell instead of its own (a smoke run)")
    parser.add_argument("--publishes", type=int, default=0,
                        help="fan-out windows of exactly N publishes instead of --duration")
    parser.add_argument("--subscriber-batch", type=int, default=250,
                        help="fan-out subscribers opened at a time (250)")
    parser.add_argument("--deflate-connections", type=int,
                        help="connections opened for deflate-memory (2000)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="measure each cell N times, keep each server's best (1)")
    parser.add_argument("--output", help="JSON results file (default bench/results/DATE.json)")
    parser.add_argument("--profile", metavar="DIR",
                        help="run the servers under cProfile, save .pstats files in DIR and "
                        "print each one's top functions (costs are inflated meanwhile)")
    parser.add_argument("--list", action="store_true", help="list servers and cells, and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, server in SERVERS.items():
            print(f"server {name:14} {server.description}")
        for name, (base, env) in VARIANTS.items():
            print(f"server {name:14} {base} with {env}")
        for name, workers in CLUSTERS.items():
            print(f"server {name:14} twistd -n txws --workers {workers} --broker redis:// "
                  "(fan-out only; starts its own redis-server)")
        for cell in CELLS.values():
            print(f"cell   {cell.name}")
        return 0
    servers = [s for s in args.servers.split(",") if s]
    unknown = [s for s in servers if s not in names]
    cellNames = [c for c in args.cells.split(",") if c] or (
        QUICK_CELLS if args.quick else list(CELLS)
    )
    unknown += [c for c in cellNames if c not in CELLS]
    if unknown:
        parser.error("unknown server or cell: " + ", ".join(unknown))
    settings = Settings(
        duration=args.duration or (0.3 if args.quick else 2.5),
        warmup=args.warmup if args.warmup is not None else (0.1 if args.quick else 0.5),
        idle=args.idle or (100 if args.quick else 5000),
        repeat=max(args.repeat, 1),
        idleBatch=max(args.idle_batch, 1),
        subscribers=max(args.subscribers, 0),
        publishes=max(args.publishes, 0),
        subscriberBatch=max(args.subscriber_batch, 1),
        deflateConnections=args.deflate_connections or (50 if args.quick else 2000),
    )
    pinned = pinToCpu(GENERATOR_CPU) and SERVER_CPU in range(os.cpu_count() or 1)
    raiseFileLimit()
    # SIGTERM unwinds like an error: every server (and Redis) is stopped.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.profile:
        ServerProcess.profileDir = Path(args.profile).resolve()
        ServerProcess.profileDir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    loadBefore = machineDescription()["loadAverage"]
    rows, info = runBenchmark(servers, [CELLS[c] for c in cellNames], settings, log)
    verdicts = evaluateTargets(rows)
    machine = machineDescription()
    when = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    header = [
        f"# txws benchmark, {when}",
        f"Machine: {machine['cpu']}, {machine['cpus']} CPUs, Linux {machine['kernel']}, "
        f"{machine['implementation']} {machine['python']}; "
        + (f"generator on CPU {GENERATOR_CPU}, servers on CPU {SERVER_CPU}" if pinned
           else "NOT pinned (needs 2 CPUs)")
        + f"; load average {loadBefore} before, {machine['loadAverage']} after; "
        f"commit {machine['commit']}.",
        f"Windows: {settings.duration} s after {settings.warmup} s warm-up, best of "
        f"{settings.repeat}; idle-memory with {settings.idle} connections opened "
        f"{settings.idleBatch} at a time.",
    ]
    for name, ready in info.items():
        detail = ready.get("version") or ready.get("detail", "")
        path = f", {ready['path']}" if "path" in ready else ""
        broadcast = f"; fan-out by {ready['broadcast']}" if "broadcast" in ready else ""
        header.append(f"- {name}: {detail}{path}{broadcast}")
    output = "\n".join(header) + "\n\n"
    if any(not _isFanout(r) and not _isDeflate(r) for r in rows):
        output += formatTable(rows) + "\n\n"
    if any(_isDeflate(r) for r in rows):
        output += "Compression (permessage-deflate, JSON documents):\n\n"
        output += formatDeflateTable(rows) + "\n\n"
    if any(_isFanout(r) for r in rows):
        output += "Fan-out (one publish to every subscriber, closed loop):\n\n"
        output += formatFanoutTable(rows) + "\n\n"
    output += "Targets (from the issue):\n\n" + formatTargets(verdicts) + "\n"
    print(output)
    if ServerProcess.profileDir is not None:
        print(profileSummary(ServerProcess.profileDir))
    results = Path(args.output) if args.output else _resultsPath()
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({
        "date": when,
        "machine": machine,
        "pinned": pinned,
        "settings": vars(settings),
        "servers": info,
        "rows": [vars(r) for r in rows],
        "ratios": {f"{s}|{c}": v for (s, c), v in _ratios(rows).items()},
        "targets": verdicts,
        "elapsedSeconds": round(time.monotonic() - started, 1),
    }, indent=1) + "\n")
    log(f"results: {results} ({time.monotonic() - started:.0f} s)")
    failed = [r for r in rows if r.status.startswith("error")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
