"""
The fan-out load generator: thousands of WebSocket subscribers in this one
process, one publisher, and a closed loop of publishes.

Design: subscribers are plain non-blocking sockets in one C{epoll}; their
opening handshakes are written and checked by hand, in batches, so that no
server's accept queue overflows.  A subscriber's bytes are never kept:
each C{recv_into} lands in one reused buffer and only the 2-10 byte headers
of the server's (unmasked) frames are read, to count whole data messages;
payloads are skipped by arithmetic.  One subscriber, the I{checker}, also
keeps its bytes and checks every message it gets against what was
published.  The loop is closed: publish, wait until every subscriber has
the message (and, for the hub, the HTTP answer), publish the next one.  So
publishes per second is one over the cycle time, and the latency of a
publish is from just before its request is sent until the generator has
read the message on the last subscriber.

The publisher is a WebSocket connection to L{PUBLISH_PATH} sending one
masked text frame per publish (L{WebSocketPublisher}), or, for the hub, a
keep-alive HTTP connection sending v2-signed C{POST /publish} requests
(L{HubPublisher}).  Every subscriber receives the same text message of
about L{PAYLOAD_SIZE} bytes: the JSON the hub sends for a publish.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import resource
import secrets
import select
import socket
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from bench.deflate import Negotiated, parseAnswer
from bench.fanout_servers import HUB_CHANNEL, HUB_KEY_ID, PUBLISH_PATH, SUBSCRIBE_PATH
from bench.loadgen import (
    CLOSE_FRAME,
    CpuClock,
    HarnessError,
    makeKey,
    maskedFrame,
    upgradeRequest,
)

__all__ = [
    "PAYLOAD_SIZE",
    "FanoutResult",
    "HubPublisher",
    "Publisher",
    "WebSocketPublisher",
    "closeAll",
    "dataFor",
    "ensureFileLimit",
    "fanoutLoop",
    "hubSecret",
    "messageFor",
    "openSubscribers",
    "userSeconds",
]

#: The size of the message every subscriber receives, in bytes.
PAYLOAD_SIZE = 100

_TICK = os.sysconf("SC_CLK_TCK")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_IN = select.EPOLLIN


def dataFor(number: int) -> dict[str, Any]:
    """
    @param number: the publish's number (1, 2, ...).
    @return: the C{data} of that publish, padded so that L{messageFor} is
        L{PAYLOAD_SIZE} bytes; no two publishes have the same.
    """
    bare = len(messageFor(number, {"n": number, "pad": ""}))
    return {"n": number, "pad": "x" * max(PAYLOAD_SIZE - bare, 0)}


def messageFor(seq: int, data: Any) -> bytes:
    """
    @return: the hub's message for a publish (C{docs/hub.md}): what every
        subscriber of every server receives.
    """
    return (
        b'{"type":"message","channel":"%s","seq":%d,"data":%s}'
        % (HUB_CHANNEL.encode("ascii"), seq,
           json.dumps(data, separators=(",", ":")).encode("utf-8"))
    )


def userSeconds(pid: int) -> float:
    """
    @return: the user CPU seconds of process C{pid} so far.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) / _TICK


def ensureFileLimit(needed: int) -> int:
    """
    Raise this process's soft limit on open files if it is below C{needed}.

    @return: the soft limit.
    @raise HarnessError: if the hard limit is too low.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise HarnessError(f"{needed} open files needed, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    return needed



def openSubscribers(
    port: int, count: int, path: str = SUBSCRIBE_PATH, batch: int = 200,
    timeout: float = 120.0, offer: Optional[str] = None,
    answers: Optional[set[Optional[Negotiated]]] = None,
) -> tuple[list[socket.socket], dict[int, bytes]]:
    """
    Open C{count} WebSocket connections: per batch, connect and send every
    request, then read every C{101} answer and check its
    C{Sec-WebSocket-Accept}.

    @param path: the request target.
    @param batch: connections opened at a time (below the servers' backlog).
    @param offer: a C{Sec-WebSocket-Extensions} offer to send, if any.
    @param answers: if given, what each answer enabled is added to it
        (L{bench.deflate.parseAnswer}).
    @return: the non-blocking sockets, and the bytes each received after
        its C{101} answer (by file descriptor; only those that did).
    @raise HarnessError: on a refused handshake, or after C{timeout}.
    """
    deadline = time.monotonic() + timeout
    opened: list[socket.socket] = []
    leftovers: dict[int, bytes] = {}
    poller = select.epoll()
    try:
        while len(opened) < count:
            heads: dict[int, bytes] = {}
            keys: dict[int, bytes] = {}
            group: dict[int, socket.socket] = {}
            for _ in range(min(batch, count - len(opened))):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                opened.append(s)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                key = makeKey()
                s.sendall(upgradeRequest(port, key, path, offer))
                s.setblocking(False)
                fd = s.fileno()
                heads[fd], keys[fd], group[fd] = b"", key, s
                poller.register(fd, _IN)
            while group:
                if time.monotonic() > deadline:
                    raise HarnessError(f"opening {count} connections took over {timeout} s")
                for fd, _ in poller.poll(0.5):
                    try:
                        chunk = group[fd].recv(65536)
                    except BlockingIOError:
                        continue
                    if not chunk:
                        raise HarnessError("server closed during the opening handshake")
                    head = heads[fd] + chunk
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        heads[fd] = head
                        continue
                    _checkAnswer(head[: end + 4], keys[fd])
                    if answers is not None:
                        answers.add(parseAnswer(head[: end + 4]))
                    if len(head) > end + 4:
                        leftovers[fd] = head[end + 4 :]
                    poller.unregister(fd)
                    del group[fd]
    except BaseException:
        for s in opened:
            s.close()
        raise
    finally:
        poller.close()
    return opened, leftovers


def _checkAnswer(head: bytes, key: bytes) -> None:
    if not head.startswith(b"HTTP/1.1 101"):
        raise HarnessError("opening handshake refused: " + head[:200].decode("latin-1"))
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    if b": " + accept + b"\r\n" not in head:
        raise HarnessError("wrong Sec-WebSocket-Accept in: " + head.decode("latin-1"))


class Publisher(Protocol):
    """
    What triggers a publish on a server.

    @ivar socket: its connection (read in the same C{epoll} as the
        subscribers).
    @ivar expectsAnswer: whether each publish is answered on it.
    """

    socket: socket.socket
    expectsAnswer: bool

    def publish(self, number: int) -> None:
        """
        Send publish number C{number}.
        """

    def readable(self) -> Optional[dict[str, Any]]:
        """
        Read what arrived on L{socket}.

        @return: the answer to the publish once it is complete, else C{None}.
        @raise HarnessError: on a refused publish or a closed connection.
        """

    def expected(self, number: int, seq: int) -> bytes:
        """
        @return: the message subscribers must receive for publish number
            C{number}, the channel's C{seq}-th message.
        """


class WebSocketPublisher:
    """
    A WebSocket connection to L{PUBLISH_PATH}; each publish is one masked
    text frame holding L{messageFor} (its C{seq} is the publish's number).
    """

    expectsAnswer = False

    def __init__(self, port: int) -> None:
        """
        @param port: the server's port.
        """
        sockets, leftovers = openSubscribers(port, 1, PUBLISH_PATH)
        self.socket = sockets[0]
        if leftovers:
            raise HarnessError("the server sent a message to the publisher")

    def publish(self, number: int) -> None:
        """
        Send the frame of publish C{number}.
        """
        self.socket.sendall(maskedFrame(0x1, messageFor(number, dataFor(number))))

    def readable(self) -> Optional[dict[str, Any]]:
        """
        @raise HarnessError: always: the servers never write to the publisher.
        """
        try:
            data = self.socket.recv(65536)
        except BlockingIOError:
            return None
        raise HarnessError("server wrote to the publisher" if data else "publisher closed")

    def expected(self, number: int, seq: int) -> bytes:
        """
        @return: exactly what was published.
        """
        return messageFor(number, dataFor(number))


class HubPublisher:
    """
    A keep-alive HTTP/1.1 connection to the hub sending v2-signed
    C{POST /publish} requests (C{docs/hub.md}, C{docs/hmac.md}), each with
    a fresh nonce and another C{data}.

    @ivar delivered: the C{delivered} figure of each answer.
    """

    expectsAnswer = True

    def __init__(self, port: int, secret: str) -> None:
        """
        @param port: the hub's port.
        @param secret: the secret of the hub's key L{HUB_KEY_ID}.
        """
        from txws.hmacauth.schemes import signV2

        self._sign = signV2
        self._secret = secret.encode("utf-8")
        self._host = b"127.0.0.1:%d" % port
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self.delivered: list[int] = []

    def publish(self, number: int) -> None:
        """
        Sign and send the request of publish C{number}.
        """
        body = json.dumps({"channel": HUB_CHANNEL, "data": dataFor(number)},
                          separators=(",", ":")).encode("utf-8")
        authorization = self._sign(
            self._secret, HUB_KEY_ID, b"POST", self._host, b"/publish", body,
            int(time.time()), secrets.token_urlsafe(18),
        )
        self.socket.sendall(
            b"POST /publish HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nAuthorization: %s\r\n\r\n%s"
            % (self._host, len(body), authorization, body)
        )

    def readable(self) -> Optional[dict[str, Any]]:
        """
        @return: the JSON answer once it is complete.
        @raise HarnessError: if the hub closed or did not answer C{200}.
        """
        try:
            chunk = self.socket.recv(65536)
        except (BlockingIOError, TimeoutError):
            return None
        if not chunk:
            raise HarnessError("the hub closed the publisher's connection")
        buffer = self._buffer + chunk
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self._buffer = buffer
            return None
        head = buffer[:end].decode("latin-1")
        length = 0
        chunked = False
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = value.strip().lower() == "chunked"
        if chunked:
            parsed = _dechunk(buffer, end + 4)
            if parsed is None:
                self._buffer = buffer
                return None
            body, rest = parsed
        elif len(buffer) < end + 4 + length:
            self._buffer = buffer
            return None
        else:
            body, rest = buffer[end + 4 : end + 4 + length], end + 4 + length
        self._buffer = buffer[rest:]
        if not head.startswith("HTTP/1.1 200"):
            raise HarnessError(f"publish refused: {head.splitlines()[0]} {body[:200]!r}")
        answer: dict[str, Any] = json.loads(body)
        self.delivered.append(int(answer.get("delivered", -1)))
        return answer

    def expected(self, number: int, seq: int) -> bytes:
        """
        @return: the hub's message for publish C{number} as its C{seq}-th.
        """
        return messageFor(seq, dataFor(number))


def _dechunk(buffer: bytes, at: int) -> Optional[tuple[bytes, int]]:
    """
    @return: a chunked body that starts at C{at} and where it ends, or
        C{None} if it is not all there yet.
    """
    parts: list[bytes] = []
    while True:
        lineEnd = buffer.find(b"\r\n", at)
        if lineEnd < 0:
            return None
        size = int(buffer[at:lineEnd].split(b";", 1)[0], 16)
        if size == 0:
            trailer = buffer.find(b"\r\n", lineEnd + 2)
            # No trailers: the last chunk is "0\r\n\r\n".
            return (b"".join(parts), trailer + 2) if trailer >= 0 else None
        if len(buffer) < lineEnd + 2 + size + 2:
            return None
        parts.append(buffer[lineEnd + 2 : lineEnd + 2 + size])
        at = lineEnd + 2 + size + 2


@dataclass
class FanoutResult:
    """
    One fan-out window.

    @ivar subscribers: subscribers that received every message.
    @ivar publishes: publishes in the window (each delivered to all).
    @ivar warmupPublishes: publishes before the window.
    @ivar seconds: the window's wall time.
    @ivar serverCpu: the server's CPU seconds in the window.
    @ivar generatorCpu: this process's CPU seconds in the window.
    @ivar latencies: for each publish of the window, seconds from just
        before its request was sent until the last subscriber had it.
    @ivar perSubscriber: the fewest and most messages any subscriber
        received over the whole run (warm-up included).
    @ivar checked: messages whose bytes the checker compared.
    @ivar delivered: the servers' own counts of deliveries (the hub's
        C{delivered}), if they give one.
    @ivar serverUser: the server's user CPU seconds in the window (the
        rest of L{serverCpu} is system time: mostly the kernel's TCP work,
        on loopback both the sending and the receiving side's).
    @ivar sideCpu: the CPU seconds, in the window, of the processes the
        server needs besides its own (L{CpuClock.sidePids}: its Redis).
    @ivar perProcessCpu: L{serverCpu} per process of the server (the
        first process, then L{CpuClock.otherPids}).
    @ivar compressed: messages the checker received compressed (RSV1).
    @ivar wireBytes: bytes on the wire of the checker's messages (frames).
    """

    subscribers: int
    publishes: int
    warmupPublishes: int
    seconds: float
    serverCpu: float
    generatorCpu: float
    latencies: list[float] = field(default_factory=list)
    perSubscriber: tuple[int, int] = (0, 0)
    checked: int = 0
    delivered: list[int] = field(default_factory=list)
    serverUser: float = 0.0
    sideCpu: float = 0.0
    perProcessCpu: list[float] = field(default_factory=list)
    compressed: int = 0
    wireBytes: int = 0


class _Checker:
    """
    Keeps one subscriber's bytes and checks each of its messages.
    """

    def __init__(self, publisher: Publisher, setupMessages: int,
                 negotiated: Optional[Negotiated] = None) -> None:
        self._publisher = publisher
        self._buffer = b""
        self._setup = setupMessages
        self._negotiated = negotiated
        self._inflater: Optional[Any] = None
        self.seq = 0
        self.checked = 0
        self.compressed = 0
        self.wireBytes = 0

    def _inflate(self, payload: bytes) -> bytes:
        # A compressed message (RSV1): inflated with the server's context
        # takeover, or afresh when it announced none.
        negotiated = self._negotiated
        if negotiated is None:
            raise HarnessError("a compressed message without permessage-deflate")
        if self._inflater is None or negotiated.serverNoContextTakeover:
            self._inflater = zlib.decompressobj(-15)
        self.compressed += 1
        try:
            inflated: bytes = self._inflater.decompress(payload + b"\x00\x00\xff\xff")
        except zlib.error as e:
            raise HarnessError(f"a message does not inflate: {e}") from None
        return inflated

    def feed(self, data: bytes, published: int) -> None:
        buffer = self._buffer + data
        while len(buffer) >= 2:
            length = buffer[1] & 0x7F
            at = 2
            if length >= 126:
                at = 4 if length == 126 else 10
                if len(buffer) < at:
                    break
                length = int.from_bytes(buffer[2:at], "big")
            if len(buffer) < at + length:
                break
            if buffer[0] not in (0x81, 0xC1):
                raise HarnessError(f"unexpected frame {buffer[:2].hex()} (not one text frame)")
            payload = buffer[at : at + length]
            self.wireBytes += at + length
            if buffer[0] == 0xC1:
                payload = self._inflate(payload)
            buffer = buffer[at + length :]
            if self._setup:
                # The hub's "subscribed" answer: the channel's latest seq.
                answer = json.loads(payload)
                if answer.get("type") != "subscribed" or answer.get("channel") != HUB_CHANNEL:
                    raise HarnessError(f"expected a subscribed answer, got {payload[:200]!r}")
                self.seq = int(answer["seq"])
                self._setup -= 1
                continue
            self.seq += 1
            self.checked += 1
            expected = self._publisher.expected(published, self.seq)
            if payload != expected:
                raise HarnessError(f"subscriber got {payload[:120]!r}, not {expected[:120]!r}")
        self._buffer = buffer


def fanoutLoop(
    subscribers: list[socket.socket],
    leftovers: dict[int, bytes],
    publisher: Publisher,
    clock: CpuClock,
    warmup: float,
    duration: float,
    publishes: int = 0,
    setupMessages: int = 0,
    minimumPublishes: int = 5,
    stallTimeout: float = 15.0,
    negotiated: Optional[Negotiated] = None,
) -> FanoutResult:
    """
    Publish, wait until every subscriber has the message, publish again:
    for C{warmup} seconds, then for a measured window of C{duration}
    seconds (and at least C{minimumPublishes}) or of exactly C{publishes}.

    @param leftovers: bytes the subscribers received with their C{101}.
    @param setupMessages: messages each subscriber gets before the first
        publish (the hub's C{subscribed} answer), waited for and not counted.
    @param negotiated: the permessage-deflate the subscribers negotiated:
        the checker inflates compressed messages.
    @raise HarnessError: if a subscriber misses a message or gets one twice,
        a message differs from the one published, or nothing happens for
        C{stallTimeout} seconds.
    """
    poller = select.epoll()
    size = max(s.fileno() for s in [*subscribers, publisher.socket]) + 1
    recvInto: list[Any] = [None] * size
    counts = [0] * size
    skipping = [0] * size  # payload bytes of the current frame still to come
    partial: list[bytes] = [b""] * size  # a frame header cut by a read
    counting = [False] * size  # whether the current frame is a whole data message
    for s in subscribers:
        recvInto[s.fileno()] = s.recv_into
        poller.register(s.fileno(), _IN)
    publisherFd = publisher.socket.fileno()
    publisher.socket.settimeout(10)
    poller.register(publisherFd, _IN)
    checkerFd = subscribers[0].fileno()
    checker = _Checker(publisher, setupMessages, negotiated)
    buffer = bytearray(65536)
    view = memoryview(buffer)
    total = len(subscribers)

    def scan(fd: int, data: Any, end: int) -> int:
        # Count the whole data messages in data[:end]; only headers are read.
        pos = 0
        frames = 0
        skip = skipping[fd]
        whole = counting[fd]
        if partial[fd]:
            data = partial[fd] + bytes(data[:end])
            end = len(data)
            partial[fd] = b""
        while True:
            if skip:
                if skip > end - pos:
                    skipping[fd] = skip - (end - pos)
                    counting[fd] = whole
                    return frames
                pos += skip
                skip = 0
                frames += whole
            if pos >= end:
                skipping[fd] = 0
                return frames
            if end - pos < 2:
                partial[fd] = bytes(data[pos:end])
                skipping[fd] = 0
                return frames
            first = data[pos]
            length = data[pos + 1]
            if length & 0x80:
                raise HarnessError("the server sent a masked frame")
            at = 2
            if length >= 126:
                at = 4 if length == 126 else 10
                if end - pos < at:
                    partial[fd] = bytes(data[pos:end])
                    skipping[fd] = 0
                    return frames
                length = int.from_bytes(data[pos + 2 : pos + at], "big")
            # Whole data messages only: FIN with text, binary or a
            # continuation, compressed (RSV1) or not (control frames are
            # not counted).
            whole = first in (0x81, 0x82, 0x80, 0xC1, 0xC2)
            pos += at
            skip = length
            if not skip:
                frames += whole

    def read(fd: int) -> int:
        try:
            count: int = recvInto[fd](buffer)
        except BlockingIOError:
            return 0
        except OSError as e:
            raise HarnessError(f"subscriber failed: {e}") from None
        if not count:
            raise HarnessError("the server closed a subscriber")
        if fd == checkerFd:
            checker.feed(bytes(view[:count]), published)
        return scan(fd, buffer, count)

    published = 0
    try:
        # Setup: the bytes that came with the 101, then each subscriber's
        # setup messages.
        waiting = 0
        for s in subscribers:
            fd = s.fileno()
            data = leftovers.get(fd, b"")
            if data:
                if fd == checkerFd:
                    checker.feed(data, 0)
                counts[fd] = scan(fd, data, len(data))
            if counts[fd] < setupMessages:
                waiting += 1
            elif counts[fd] > setupMessages:
                raise HarnessError("a subscriber got a message before the first publish")
        lastProgress = time.monotonic()
        while waiting:
            events = poller.poll(0.5)
            if not events and time.monotonic() - lastProgress > stallTimeout:
                raise HarnessError(f"{waiting} subscribers still not set up after "
                                   f"{stallTimeout} s")
            for fd, _ in events:
                if fd == publisherFd:
                    publisher.readable()
                    continue
                before = counts[fd]
                counts[fd] = after = before + read(fd)
                if before < setupMessages <= after:
                    waiting -= 1
                if after > setupMessages:
                    raise HarnessError("a subscriber got a message before the first publish")
                lastProgress = time.monotonic()
        for s in subscribers:
            counts[s.fileno()] = 0

        latencies: list[float] = []
        perfCounter = time.perf_counter
        poll = poller.poll
        started = perfCounter()
        windowStart = started + warmup
        measuring = warmup <= 0
        start = clock.read() if measuring else clock
        warmupPublishes = 0
        while True:
            published += 1
            pending = total
            answered = not publisher.expectsAnswer
            sentAt = perfCounter()
            publisher.publish(published)
            lastAt = 0.0
            lastProgress = sentAt
            while pending or not answered:
                events = poll(0.5)
                if not events:
                    if perfCounter() - lastProgress > stallTimeout:
                        raise HarnessError(
                            f"publish {published}: {pending} of {total} subscribers still "
                            f"without it after {stallTimeout} s"
                            + ("" if answered else ", and no answer")
                        )
                    continue
                lastProgress = perfCounter()
                for fd, _ in events:
                    if fd == publisherFd:
                        if publisher.readable() is not None:
                            answered = True
                        continue
                    got = read(fd)
                    if got:
                        count = counts[fd] + got
                        counts[fd] = count
                        if count == published:
                            pending -= 1
                            if not pending:
                                lastAt = perfCounter()
                        else:
                            raise HarnessError(
                                f"a subscriber has {count} messages after {published} publishes"
                            )
            now = perfCounter()
            if measuring:
                latencies.append(lastAt - sentAt)
                done = len(latencies)
                if (done >= publishes) if publishes else (
                    now >= windowStart + duration and done >= minimumPublishes
                ):
                    end = clock.read()
                    break
            elif now >= windowStart:
                measuring = True
                warmupPublishes = published
                windowStart = now
                start = clock.read()
        inRun = [counts[s.fileno()] for s in subscribers]
        return FanoutResult(
            subscribers=total,
            publishes=len(latencies),
            warmupPublishes=warmupPublishes,
            seconds=end.wall - start.wall,
            serverCpu=end.server - start.server,
            generatorCpu=end.generator - start.generator,
            latencies=latencies,
            perSubscriber=(min(inRun), max(inRun)),
            checked=checker.checked,
            delivered=list(getattr(publisher, "delivered", [])),
            serverUser=end.serverUser - start.serverUser,
            sideCpu=end.side - start.side,
            perProcessCpu=[b - a for a, b in zip(start.perProcess, end.perProcess, strict=True)],
            compressed=checker.compressed,
            wireBytes=checker.wireBytes,
        )
    finally:
        poller.close()


def closeAll(subscribers: list[socket.socket], publisher: Optional[Publisher],
             timeout: float = 10.0) -> int:
    """
    Send a Close frame on every subscriber (and a WebSocket publisher),
    wait (bounded) for the server to end each connection, close them all.

    @return: how many connections the server closed in time.
    """
    sockets = list(subscribers)
    if isinstance(publisher, WebSocketPublisher):
        sockets.append(publisher.socket)
    elif publisher is not None:
        publisher.socket.close()
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
    closed = 0
    deadline = time.monotonic() + timeout
    try:
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
    finally:
        poller.close()
        for s in sockets:
            s.close()
    return closed


def hubSecret() -> str:
    """
    @return: this process's secret for the hub's key, made at random once
        (the harness hands it to the hub in its environment).
    """
    global _secret
    if _secret is None:
        _secret = secrets.token_urlsafe(32)
    return _secret


_secret: Optional[str] = None
