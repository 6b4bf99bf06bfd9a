"""
The load generator: a plain C{epoll} loop over non-blocking sockets, so that
it is never the bottleneck.

Frames are built once per cell, already masked.  An echo of a known frame is
a known number of bytes, so after the first reply of each connection (which
is compared byte for byte with the expected frame) the loop only counts
bytes: one C{recv_into} into a reused buffer, one subtraction, and the next
C{send} of the same prebuilt frame.  The generator's own CPU time is measured
in the same window as the server's, and the C{tcp-echo} server shows its
ceiling.

Nothing here imports txws: the generator checks the servers, it does not
share their code.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import resource
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

__all__ = [
    "CLOSE_FRAME",
    "CpuClock",
    "EchoResult",
    "HandshakeResult",
    "HarnessError",
    "closeConnections",
    "echoLoop",
    "handshakeLoop",
    "makeKey",
    "makePayload",
    "maskedFrame",
    "openConnections",
    "processCpuSeconds",
    "processRssBytes",
    "serverFrame",
    "upgradeRequest",
]

_TICK = os.sysconf("SC_CLK_TCK")
_MASK_KEY = b"\x37\xfa\x21\x3d"
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: A masked Close frame with code 1000 and no reason.
CLOSE_FRAME = b""  # set below, once maskedFrame exists

#: The server's reply to it: an unmasked Close frame with code 1000.
CLOSE_REPLY = b"\x88\x02\x03\xe8"


class HarnessError(Exception):
    """
    A server did not behave as an echo server (wrong bytes, early close,
    no progress): the cell is reported as failed.
    """


def processCpuSeconds(pid: int) -> float:
    """
    @param pid: a process id.
    @return: the process's user + system CPU time, from C{/proc/<pid>/stat}.
    """
    return _processStat(pid)[0]


def _processStat(pid: int) -> tuple[float, int]:
    """
    @return: CPU seconds (user + system) and minor page faults so far.
    """
    cpu, faults, _ = _processTimes(pid)
    return cpu, faults


def _onCpuSeconds(pid: int) -> float:
    """
    @return: the seconds every thread of process C{pid} has run so far
        (C{/proc/PID/task/*/schedstat}, in nanoseconds: finer than the
        clock ticks of C{/proc/PID/stat}, for a process as little busy as
        the servers' Redis).  Falls back to those ticks.
    """
    total = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return _processTimes(pid)[0]
    return total / 1e9


def _processTimes(pid: int) -> tuple[float, int, float]:
    """
    @return: CPU seconds (user + system), minor page faults and user CPU
        seconds so far.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK, int(fields[7]), int(fields[11]) / _TICK


def processRssBytes(pid: int) -> int:
    """
    @param pid: a process id.
    @return: its resident set size, from C{VmRSS} in C{/proc/<pid>/status}.
    """
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise HarnessError(f"no VmRSS for process {pid}")


@dataclass
class CpuClock:
    """
    CPU seconds of the server (from C{/proc}, in clock ticks) and of this
    process (C{getrusage}, in microseconds), read together.

    A server of several processes (C{twistd txws --workers N}: the parent
    and its workers) names the others in C{otherPids}: L{server} and
    L{serverUser} are then summed over all of them.  Processes the server
    needs but that are not the server itself (its Redis) are in
    C{sidePids}: their CPU is L{side}, counted apart (in nanoseconds of
    run time, all threads).

    @ivar serverUser: the user part of L{server}.
    @ivar perProcess: the CPU seconds of C{serverPid} and of each of
        C{otherPids}, in that order.
    """

    serverPid: int
    server: float = 0.0
    generator: float = 0.0
    wall: float = 0.0
    serverFaults: int = 0
    otherPids: tuple[int, ...] = ()
    sidePids: tuple[int, ...] = ()
    side: float = 0.0
    serverUser: float = 0.0
    perProcess: tuple[float, ...] = ()

    def read(self) -> CpuClock:
        """
        @return: a new reading.
        """
        usage = resource.getrusage(resource.RUSAGE_SELF)
        server = user = 0.0
        faults = 0
        each = []
        for pid in (self.serverPid, *self.otherPids):
            cpu, pidFaults, pidUser = _processTimes(pid)
            each.append(cpu)
            server += cpu
            user += pidUser
            faults += pidFaults
        side = sum(_onCpuSeconds(pid) for pid in self.sidePids)
        return CpuClock(
            self.serverPid, server, usage.ru_utime + usage.ru_stime, time.perf_counter(), faults,
            self.otherPids, self.sidePids, side, user, tuple(each),
        )


def maskedFrame(opcode: int, payload: bytes, key: bytes = _MASK_KEY) -> bytes:
    """
    @return: a whole client frame (FIN set) carrying C{payload}, masked.
    """
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 0x10000:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    repeated = key * (n // 4) + key[: n % 4]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little"
    )
    return header + key + body


def serverFrame(opcode: int, payload: bytes) -> bytes:
    """
    @return: the unmasked frame a server sends for C{payload}.
    """
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 0x10000:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


CLOSE_FRAME = maskedFrame(0x8, b"\x03\xe8")

_TEXT = "Grüße aus Köln: naïve café, 1 € ≈ 1.08 $, {\"id\": 42, \"ok\": true} — "


def makePayload(size: int, text: bool) -> bytes:
    """
    A reproducible payload: random bytes, or UTF-8 text mixing ASCII with
    two- and three-byte characters (as JSON in European languages does).
    """
    if not text:
        return random.Random(size).randbytes(size)
    encoded = (_TEXT * (size // len(_TEXT) + 1)).encode("utf-8")[:size]
    # Cut back to a character boundary and pad with ASCII.
    encoded = encoded.decode("utf-8", "ignore").encode("utf-8")
    return encoded + b" " * (size - len(encoded))


def makeKey() -> bytes:
    """
    @return: a fresh C{Sec-WebSocket-Key}.
    """
    return base64.b64encode(os.urandom(16))


def upgradeRequest(
    port: int, key: bytes, path: str = "/", offer: Optional[str] = None
) -> bytes:
    """
    @param offer: a C{Sec-WebSocket-Extensions} value to send, if any.
    @return: an opening handshake request for C{path}.
    """
    extension = b"" if offer is None else b"Sec-WebSocket-Extensions: %s\r\n" % offer.encode()
    return (
        b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
        b"%s\r\n" % (path.encode("ascii"), port, key, extension)
    )


def _checkUpgrade(head: bytes, key: bytes | None) -> None:
    if not head.startswith(b"HTTP/1.1 101"):
        raise HarnessError("opening handshake refused: " + head[:200].decode("latin-1"))
    if key is not None:
        import hashlib

        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        if b": " + accept + b"\r\n" not in head:
            raise HarnessError("wrong Sec-WebSocket-Accept in: " + head.decode("latin-1"))


def _connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def openConnections(
    port: int,
    count: int,
    upgrade: bool = True,
    batch: int = 200,
    timeout: float = 30.0,
    path: str = "/",
    offer: Optional[str] = None,
    answered: Optional[Callable[[bytes], None]] = None,
) -> list[socket.socket]:
    """
    Open C{count} connections and complete their opening handshakes, in
    batches (connect and send all requests of a batch, then read all
    responses), so that the server's accept queue never overflows.  Every
    answer must be a C{101} with the right C{Sec-WebSocket-Accept}.

    @param upgrade: C{False} for a plain TCP echo (no handshake).
    @param path: the path requested.
    @param offer: a C{Sec-WebSocket-Extensions} value to send, if any.
    @param answered: called with each answer's head (it may raise
        L{HarnessError}).
    @return: the connected, blocking sockets.
    """
    deadline = time.monotonic() + timeout
    opened: list[socket.socket] = []
    try:
        while len(opened) < count:
            group: list[tuple[socket.socket, bytes]] = []
            for _ in range(min(batch, count - len(opened))):
                s = _connect(port)
                opened.append(s)
                key = makeKey()
                if upgrade:
                    s.sendall(upgradeRequest(port, key, path, offer))
                group.append((s, key))
            if not upgrade:
                continue
            for s, key in group:
                head = b""
                while b"\r\n\r\n" not in head:
                    if time.monotonic() > deadline:
                        raise HarnessError(f"opening {count} connections took over {timeout} s")
                    chunk = s.recv(4096)
                    if not chunk:
                        raise HarnessError("server closed during the opening handshake")
                    head += chunk
                end = head.index(b"\r\n\r\n") + 4
                if end != len(head):
                    raise HarnessError("unexpected bytes after the 101 response")
                _checkUpgrade(head[:end], key)
                if answered is not None:
                    answered(head[:end])
    except BaseException:
        for s in opened:
            s.close()
        raise
    return opened


def closeConnections(sockets: list[socket.socket], websocket: bool, timeout: float = 5.0) -> int:
    """
    End connections: send a Close frame on each and wait (bounded) for the
    server to close TCP, then close them all.

    @param websocket: C{False} for plain TCP (just close).
    @return: how many connections the server closed in time.
    """
    closed = 0
    if websocket:
        poller = select.epoll()
        pending: dict[int, socket.socket] = {}
        for s in sockets:
            try:
                s.setblocking(False)
                s.send(CLOSE_FRAME)
            except OSError:
                continue
            pending[s.fileno()] = s
            poller.register(s.fileno(), _IN)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for fd, _ in poller.poll(0.2):
                try:
                    data = pending[fd].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    poller.unregister(fd)
                    del pending[fd]
                    closed += 1
        poller.close()
    for s in sockets:
        s.close()
    return closed


@dataclass
class EchoResult:
    """
    One echo window.

    @ivar messages: round trips completed in the window.
    @ivar seconds: the window's wall time.
    @ivar serverCpu: the server's CPU seconds in the window.
    @ivar generatorCpu: this process's CPU seconds in the window.
    @ivar rtts: round-trip times in seconds (of the window's round trips).
    @ivar serverFaults: the server's minor page faults in the window.
    """

    messages: int
    seconds: float
    serverCpu: float
    generatorCpu: float
    rtts: list[float] = field(default_factory=list)
    serverFaults: int = 0


def echoLoop(
    sockets: list[socket.socket],
    frame: bytes,
    reply: bytes,
    clock: CpuClock,
    warmup: float,
    duration: float,
    stallTimeout: float = 10.0,
) -> EchoResult:
    """
    Keep one message in flight on every connection: send C{frame}, wait
    for C{reply} (exactly its length), send again.  The first reply on each
    connection is compared with C{reply}; later ones are only counted.

    @param clock: reads the server's and our CPU time.
    @param warmup: seconds run before the window opens.
    @param duration: seconds of the measured window.
    @raise HarnessError: on a wrong reply, an early close, or no progress
        for C{stallTimeout} seconds.
    """
    poller = select.epoll()
    size = max(s.fileno() for s in sockets) + 1
    frameLength = len(frame)
    replyLength = len(reply)
    frameView = memoryview(frame)
    remaining = [0] * size
    sendOffset = [0] * size
    sentAt = [0.0] * size
    received: list[bytearray | None] = [None] * size
    recvInto: list[Callable[[bytearray], int] | None] = [None] * size
    sendTo: list[Callable[[memoryview | bytes], int] | None] = [None] * size
    buffer = bytearray(min(max(replyLength, 65536), 1 << 20))
    now = time.perf_counter()
    for s in sockets:
        fd = s.fileno()
        s.setblocking(False)
        recvInto[fd] = s.recv_into
        sendTo[fd] = s.send
        received[fd] = bytearray()
        remaining[fd] = replyLength
        sentAt[fd] = now
        poller.register(fd, _IN)
    for s in sockets:
        fd = s.fileno()
        sent = s.send(frame)
        if sent < frameLength:
            sendOffset[fd] = sent
            poller.modify(fd, _IN | _OUT)

    done = 0
    rtts: list[float] = []
    record = rtts.append
    windowStart = now + warmup
    windowEnd = windowStart + duration
    measuring = False
    start = clock
    doneAtStart = 0
    lastProgress = now
    lastDone = 0
    poll = poller.poll
    try:
        while True:
            events = poll(0.2)
            now = time.perf_counter()
            if now >= windowStart and not measuring:
                measuring = True
                start = clock.read()
                doneAtStart = done
                rtts.clear()
            elif now >= windowEnd and measuring:
                end = clock.read()
                _drain(sockets, remaining, sendOffset, frameView)
                return EchoResult(
                    done - doneAtStart,
                    end.wall - start.wall,
                    end.server - start.server,
                    end.generator - start.generator,
                    rtts,
                    end.serverFaults - start.serverFaults,
                )
            if done != lastDone:
                lastDone = done
                lastProgress = now
            elif now - lastProgress > stallTimeout:
                raise HarnessError(f"no reply for {stallTimeout} s")
            for fd, mask in events:
                if mask & _OUT:
                    offset = sendOffset[fd]
                    sender = sendTo[fd]
                    assert sender is not None
                    with contextlib.suppress(BlockingIOError):
                        offset += sender(frameView[offset:])
                    if offset >= frameLength:
                        sendOffset[fd] = 0
                        poller.modify(fd, _IN)
                    else:
                        sendOffset[fd] = offset
                    if not mask & ~_OUT:
                        continue
                reader = recvInto[fd]
                assert reader is not None
                try:
                    count = reader(buffer)
                except BlockingIOError:
                    continue
                except OSError as e:
                    raise HarnessError(f"connection failed: {e}") from None
                if not count:
                    raise HarnessError("server closed a connection during the echo")
                checking = received[fd]
                if checking is not None:
                    checking += buffer[:count]
                left = remaining[fd] - count
                if left > 0:
                    remaining[fd] = left
                    continue
                if left < 0:
                    raise HarnessError(f"server sent {-left} bytes more than one echo")
                if checking is not None:
                    if checking != reply:
                        raise HarnessError(
                            f"wrong echo: {bytes(checking[:16]).hex()}... "
                            f"instead of {reply[:16].hex()}..."
                        )
                    received[fd] = None
                done += 1
                record(now - sentAt[fd])
                sentAt[fd] = now
                remaining[fd] = replyLength
                sender = sendTo[fd]
                assert sender is not None
                sent = sender(frame)
                if sent < frameLength:
                    sendOffset[fd] = sent
                    poller.modify(fd, _IN | _OUT)
    finally:
        poller.close()


def _drain(
    sockets: list[socket.socket],
    remaining: list[int],
    sendOffset: list[int],
    frameView: memoryview,
    timeout: float = 10.0,
) -> None:
    """
    Finish the message in flight on every connection (its rest is sent, its
    echo read), so that the connections are handed back idle.
    """
    deadline = time.monotonic() + timeout
    for s in sockets:
        fd = s.fileno()
        s.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if sendOffset[fd]:
                s.sendall(frameView[sendOffset[fd] :])
            left = remaining[fd]
            while left > 0:
                chunk = s.recv(min(left, 1 << 20))
                if not chunk:
                    break
                left -= len(chunk)
        except OSError:
            pass
        s.settimeout(10)


@dataclass
class HandshakeResult:
    """
    One handshake window: opening + closing handshakes completed.
    """

    handshakes: int
    seconds: float
    serverCpu: float
    generatorCpu: float


def handshakeLoop(
    port: int,
    clock: CpuClock,
    warmup: float,
    duration: float,
    closeReplyLength: int = len(CLOSE_REPLY),
    concurrency: int = 8,
    stallTimeout: float = 10.0,
) -> HandshakeResult:
    """
    Open a connection, complete the opening handshake, send a Close frame,
    read the server's Close and its end of TCP, close; with C{concurrency}
    connections doing this at once.

    @param closeReplyLength: the bytes the server sends after its C{101}
        (its Close frame, or our own Close echoed by the C{raw} server).
    """
    poller = select.epoll()
    sockets: dict[int, socket.socket] = {}
    heads: dict[int, bytes] = {}
    keys: dict[int, bytes] = {}
    closing: dict[int, int] = {}
    checked = False

    def start() -> None:
        s = _connect(port)
        s.setblocking(False)
        fd = s.fileno()
        key = makeKey()
        sockets[fd] = s
        heads[fd] = b""
        keys[fd] = key
        s.send(upgradeRequest(port, key))
        poller.register(fd, _IN)

    now = time.perf_counter()
    windowStart = now + warmup
    windowEnd = windowStart + duration
    measuring = False
    start0 = clock
    done = doneAtStart = lastDone = 0
    lastProgress = now
    try:
        for _ in range(concurrency):
            start()
        while True:
            events = poller.poll(0.2)
            now = time.perf_counter()
            if now >= windowStart and not measuring:
                measuring = True
                start0 = clock.read()
                doneAtStart = done
            elif now >= windowEnd and measuring:
                end = clock.read()
                return HandshakeResult(
                    done - doneAtStart,
                    end.wall - start0.wall,
                    end.server - start0.server,
                    end.generator - start0.generator,
                )
            if done != lastDone:
                lastDone = done
                lastProgress = now
            elif now - lastProgress > stallTimeout:
                raise HarnessError(f"no handshake completed for {stallTimeout} s")
            for fd, _ in events:
                s = sockets[fd]
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    raise HarnessError(f"handshake connection failed: {e}") from None
                if fd in closing:
                    if data:
                        closing[fd] += len(data)
                        continue
                    got = closing.pop(fd)
                    if got != closeReplyLength and not checked:
                        raise HarnessError(
                            f"{got} bytes after the 101 response, not {closeReplyLength}"
                        )
                    checked = True
                    poller.unregister(fd)
                    del sockets[fd]
                    s.close()
                    done += 1
                    start()
                    continue
                if not data:
                    raise HarnessError("server closed during the opening handshake")
                head = heads[fd] + data
                headEnd = head.find(b"\r\n\r\n")
                if headEnd < 0:
                    heads[fd] = head
                    continue
                _checkUpgrade(head[: headEnd + 4], None if checked else keys[fd])
                del heads[fd], keys[fd]
                closing[fd] = len(head) - headEnd - 4
                s.send(CLOSE_FRAME)
    finally:
        for s in sockets.values():
            s.close()
        poller.close()
