"""
The load generator's side of the compression cells (permessage-deflate,
RFC 7692): realistic JSON payloads, the offer, the server's answer, a
compressed echo loop and the one-message exchange of the memory cell.

Design: the generator stays cheap by never compressing while it measures.
In the echo cells it offers C{permessage-deflate;
client_no_context_takeover; client_max_window_bits}: it promises to
compress every message with a fresh context, so each message of its pool
is compressed once, before the window (12 window bits, what every server
here asks of the client), masked once, and sent again and again.  The
servers compress their replies as they are configured to (all three keep
their own context takeover by default), so the replies' lengths are not
known in advance: the loop reads the server's frame headers, as the
fan-out generator does, to find the end of each message.  Payloads come
from a pool of distinct JSON documents, so a server's context takeover
finds the previous message's field names in its window but never the
same message.

Correctness: the first reply on every connection is inflated with C{zlib}
(a 15-bit raw inflater reads any window up to 15 bits) and compared with
the message sent, and must have RSV1 set; on the first connection every
reply is, with the server's context takeover or without it as negotiated.

Nothing here imports txws: the generator checks the servers, it does not
share their code.
"""

from __future__ import annotations

import contextlib
import json
import random
import select
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from bench.loadgen import CpuClock, HarnessError, openConnections

__all__ = [
    "BROWSER_OFFER",
    "CLIENT_WINDOW_BITS",
    "ECHO_OFFER",
    "DeflateEchoResult",
    "ExchangeResult",
    "FrameCounter",
    "Negotiated",
    "compressFresh",
    "deflateEchoLoop",
    "exchangeOnce",
    "jsonPayload",
    "openDeflateConnections",
    "parseAnswer",
    "parseMessages",
]

#: What the echo cells' generator offers: it will not use context takeover
#: (so one pre-compressed frame per message serves for the whole run) and
#: the server may limit its window.
ECHO_OFFER = "permessage-deflate; client_no_context_takeover; client_max_window_bits"

#: What browsers offer (and the memory and fan-out cells): context
#: takeover kept by the client, whose window the server may limit.
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"

#: The window bits the generator compresses with: what txws, websockets
#: and Autobahn (configured alike) ask of clients.  A server asking for
#: fewer fails the cell.
CLIENT_WINDOW_BITS = 12

_TRAILER = b"\x00\x00\xff\xff"
_IN = select.EPOLLIN
_OUT = select.EPOLLOUT

_NAMES = ["temperature", "humidity", "pressure", "voltage", "current", "rpm", "flow", "level"]
_SITES = ["Köln-Nord", "Lyon Part-Dieu", "São Paulo", "Zürich HB", "Kraków", "Oslo S"]
_STATES = ["ok", "warning", "critical", "maintenance"]


def jsonPayload(size: int, variant: int = 0) -> bytes:
    """
    A JSON document of exactly C{size} bytes: a list of sensor records
    (ids, names, timestamps, numbers, flags, a few non-ASCII names), as an
    application's updates look.  Distinct variants share their structure
    and field names, not their values.

    @param size: its length in bytes (at least 64).
    @param variant: which document.
    @return: UTF-8 JSON text.
    """
    rng = random.Random(size * 1000 + variant)
    records: list[dict[str, Any]] = []
    # The padding record closing the list: {"id":0,"pad":"..."}.
    closing = len(b',{"id":0,"pad":""}]')
    body = b"["
    while True:
        record = {
            "id": rng.randrange(100000, 999999),
            "sensor": f"{rng.choice(_NAMES)}-{rng.randrange(1, 64)}",
            "site": rng.choice(_SITES),
            "ts": f"2026-12-06T{rng.randrange(24):02d}:{rng.randrange(60):02d}:"
                  f"{rng.randrange(60):02d}.{rng.randrange(1000):03d}Z",
            "value": round(rng.uniform(-40, 400), rng.choice([1, 2, 3])),
            "state": rng.choice(_STATES),
            "acked": rng.random() < 0.3,
        }
        encoded = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        following = (b"," if records else b"") + encoded
        if len(body) + len(following) + closing > size:
            break
        records.append(record)
        body += following
    start = (b"," if records else b"") + b'{"id":0,"pad":"'
    pad = size - len(body) - len(start) - len(b'"}]')
    if pad < 0:
        raise ValueError(f"no JSON document fits in {size} bytes")
    document = body + start + b" " * pad + b'"}]'
    assert len(document) == size, (len(document), size)
    json.loads(document)
    return document


def compressFresh(payload: bytes, windowBits: int = CLIENT_WINDOW_BITS) -> bytes:
    """
    @return: C{payload} compressed as the first message of a fresh context
        (zlib's default level, memory level 8), without the trailing
        C{00 00 ff ff} (RFC 7692 section 7.2.1).
    """
    compressor = zlib.compressobj(-1, zlib.DEFLATED, -windowBits)
    data = compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if not data.endswith(_TRAILER):
        raise HarnessError("zlib's sync flush did not end with 00 00 ff ff")
    return data[:-4]


@dataclass(frozen=True)
class Negotiated:
    """
    What a server answered to C{permessage-deflate}.

    @ivar answer: its C{Sec-WebSocket-Extensions} value.
    """

    answer: str
    serverNoContextTakeover: bool = False
    clientNoContextTakeover: bool = False
    serverMaxWindowBits: int = 15
    clientMaxWindowBits: int = 15


def parseAnswer(head: bytes) -> Optional[Negotiated]:
    """
    @param head: a C{101} response's head.
    @return: the permessage-deflate it enabled, or C{None} if none.
    @raise HarnessError: if it enabled another extension or is malformed.
    """
    values = []
    for line in head.split(b"\r\n")[1:]:
        header, _, content = line.partition(b":")
        if header.strip().lower() == b"sec-websocket-extensions":
            values.append(content.strip().decode("latin-1"))
    if not values:
        return None
    answer = ", ".join(values)
    items = [item.strip() for item in answer.split(",") if item.strip()]
    if len(items) != 1:
        raise HarnessError(f"more than one extension enabled: {answer!r}")
    parts = [part.strip() for part in items[0].split(";")]
    if parts[0].lower() != "permessage-deflate":
        raise HarnessError(f"an extension that was not offered: {answer!r}")
    flags: dict[str, Any] = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        name = name.strip().lower()
        value = value.strip().strip('"')
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            flags[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            flags[name] = int(value)
        else:
            raise HarnessError(f"unknown permessage-deflate parameter in {answer!r}")
    return Negotiated(
        answer,
        flags.get("server_no_context_takeover", False),
        flags.get("client_no_context_takeover", False),
        flags.get("server_max_window_bits", 15),
        flags.get("client_max_window_bits", 15),
    )


def openDeflateConnections(
    port: int, count: int, offer: Optional[str], batch: int = 200, timeout: float = 120.0,
    path: str = "/",
) -> tuple[list[socket.socket], Optional[Negotiated]]:
    """
    Open C{count} connections offering C{offer} (or nothing), in batches;
    every answer must be a C{101} with the right C{Sec-WebSocket-Accept}
    and the same extension answer.

    @return: the blocking sockets, and what every server answer enabled.
    @raise HarnessError: on a refused handshake, answers that differ, a
        window smaller than L{CLIENT_WINDOW_BITS} asked of the client, or
        after C{timeout}.
    """
    answers: list[Optional[Negotiated]] = []

    def answered(head: bytes) -> None:
        answer = parseAnswer(head)
        if not answers:
            answers.append(answer)
            if answer is not None and answer.clientMaxWindowBits < CLIENT_WINDOW_BITS:
                raise HarnessError(f"the server limits the client's window: {answer}")
        elif answer != answers[0]:
            raise HarnessError(f"answers differ: {answer} and {answers[0]}")

    opened = openConnections(
        port, count, batch=batch, timeout=timeout, path=path, offer=offer, answered=answered
    )
    return opened, answers[0] if answers else None


def parseMessages(data: bytes) -> list[tuple[int, bytes]]:
    """
    Split whole frames (masked or not) into messages.

    @return: C{(first byte of the message's first frame, payload)} for each
        data message (fragments joined; control frames dropped).
    @raise HarnessError: if C{data} does not end at a frame's end.
    """
    messages: list[tuple[int, bytes]] = []
    first = -1
    parts: list[bytes] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 2:
            raise HarnessError("a frame header cut short")
        byte0, byte1 = data[pos], data[pos + 1]
        length = byte1 & 0x7F
        at = pos + 2
        if length >= 126:
            width = 2 if length == 126 else 8
            length = int.from_bytes(data[at : at + width], "big")
            at += width
        key = b""
        if byte1 & 0x80:
            key, at = data[at : at + 4], at + 4
        payload = data[at : at + length]
        if len(payload) != length:
            raise HarnessError("a frame cut short")
        pos = at + length
        if key:
            repeated = key * (length // 4) + key[: length % 4]
            payload = (int.from_bytes(payload, "little")
                       ^ int.from_bytes(repeated, "little")).to_bytes(length, "little")
        if byte0 & 0x0F >= 0x8:
            continue
        if first < 0:
            first = byte0
        parts.append(payload)
        if byte0 & 0x80:
            messages.append((first, b"".join(parts)))
            first, parts = -1, []
    if first >= 0:
        raise HarnessError("a message without its last frame")
    return messages


class FrameCounter:
    """
    Counts the whole data messages in a stream of frames per connection
    without keeping their bytes: only the 2-14 byte headers are read, the
    payloads are skipped by arithmetic (as in L{bench.fanout}); masked
    frames (the C{raw} server's echo) too.
    """

    def __init__(self, size: int) -> None:
        """
        @param size: one more than the largest file descriptor.
        """
        self._skip = [0] * size
        self._partial = [b""] * size
        self._whole = [False] * size

    def betweenFrames(self, fd: int) -> bool:
        """
        @return: whether the bytes scanned so far on C{fd} end at a frame's
            end.
        """
        return not self._partial[fd] and not self._skip[fd]

    def scan(self, fd: int, data: Any, end: int) -> int:
        """
        @param data: bytes received (a buffer: only C{data[:end]} counts).
        @return: how many messages ended in them.
        """
        pos = 0
        done = 0
        skip = self._skip[fd]
        whole = self._whole[fd]
        if self._partial[fd]:
            data = self._partial[fd] + bytes(data[:end])
            end = len(data)
            self._partial[fd] = b""
        while True:
            if skip:
                if skip > end - pos:
                    self._skip[fd] = skip - (end - pos)
                    self._whole[fd] = whole
                    return done
                pos += skip
                skip = 0
                done += whole
            if pos >= end:
                self._skip[fd] = 0
                return done
            if end - pos < 2:
                self._partial[fd] = bytes(data[pos:end])
                self._skip[fd] = 0
                return done
            first = data[pos]
            second = data[pos + 1]
            length = second & 0x7F
            extended = 0 if length < 126 else (2 if length == 126 else 8)
            at = 2 + extended + (4 if second & 0x80 else 0)
            if end - pos < at:
                self._partial[fd] = bytes(data[pos:end])
                self._skip[fd] = 0
                return done
            if extended:
                length = int.from_bytes(data[pos + 2 : pos + 2 + extended], "big")
            # A FIN frame of a data message (text, binary, continuation).
            whole = bool(first & 0x80) and (first & 0x0F) < 0x8
            pos += at
            skip = length
            if not skip:
                done += whole


class _Check:
    """
    Checks replies: inflates a compressed one (RSV1 set) and compares it
    with the message sent.
    """

    def __init__(self, compressed: bool, contextTakeover: bool, raw: bool) -> None:
        self.compressed = compressed
        self.contextTakeover = contextTakeover
        self.raw = raw
        self.checked = 0
        self.replyBytes = 0
        self._inflater: Optional[zlib._Decompress] = None

    def check(self, data: bytes, sent: bytes, sentFrame: bytes, fresh: bool) -> None:
        """
        @param data: the whole reply, as received.
        @param sent: the message sent.
        @param sentFrame: the frame sent (what C{raw} echoes).
        @param fresh: whether this is the connection's first reply (a
            fresh inflater, whatever the context takeover).
        @raise HarnessError: if it is not the message sent.
        """
        self.checked += 1
        self.replyBytes += len(data)
        if self.raw:
            if data != sentFrame:
                raise HarnessError("raw did not echo the frame sent")
            return
        messages = parseMessages(data)
        if len(messages) != 1:
            raise HarnessError(f"{len(messages)} messages in one reply")
        first, payload = messages[0]
        if self.compressed:
            if not first & 0x40:
                raise HarnessError(f"an uncompressed reply (first byte {first:#x})")
            if fresh or not self.contextTakeover or self._inflater is None:
                self._inflater = zlib.decompressobj(-15)
            try:
                payload = self._inflater.decompress(payload + _TRAILER)
            except zlib.error as e:
                raise HarnessError(f"a reply does not inflate: {e}") from None
        elif first & 0x40:
            raise HarnessError("a compressed reply that was not negotiated")
        if payload != sent:
            raise HarnessError(f"wrong echo: {payload[:60]!r}... instead of {sent[:60]!r}...")


@dataclass
class DeflateEchoResult:
    """
    One window of compressed echoes.

    @ivar replyBytes: the average size of a reply on the wire (frame
        included), from the checked ones.
    @ivar checked: replies inflated and compared with what was sent.
    """

    messages: int
    seconds: float
    serverCpu: float
    generatorCpu: float
    rtts: list[float] = field(default_factory=list)
    checked: int = 0
    replyBytes: float = 0.0
    serverFaults: int = 0


def deflateEchoLoop(
    sockets: list[socket.socket],
    payloads: list[bytes],
    frames: list[bytes],
    negotiated: Optional[Negotiated],
    raw: bool,
    clock: CpuClock,
    warmup: float,
    duration: float,
    stallTimeout: float = 10.0,
) -> DeflateEchoResult:
    """
    Keep one message in flight on every connection, each connection
    cycling through the pool (C{frames[i]} carries C{payloads[i]}); the end
    of a reply is found from its frame headers.

    @param negotiated: the extension in use (its replies must be
        compressed), or C{None} (uncompressed).
    @param raw: the server echoes the client's frames as they came.
    @raise HarnessError: on a wrong reply, an early close, or no progress
        for C{stallTimeout} seconds.
    """
    poller = select.epoll()
    size = max(s.fileno() for s in sockets) + 1
    counter = FrameCounter(size)
    pool = len(frames)
    sentIndex = [0] * size
    sendOffset = [0] * size
    sentAt = [0.0] * size
    views = [memoryview(frame) for frame in frames]
    collecting: list[Optional[bytearray]] = [None] * size
    recvInto: list[Optional[Callable[[bytearray], int]]] = [None] * size
    sendTo: list[Optional[Callable[[Any], int]]] = [None] * size
    buffer = bytearray(1 << 18)
    checkerFd = sockets[0].fileno()
    checker = _Check(negotiated is not None,
                     negotiated is not None and not negotiated.serverNoContextTakeover, raw)
    firstChecks = _Check(checker.compressed, False, raw)
    now = time.perf_counter()

    def sender(fd: int) -> Callable[[Any], int]:
        method = sendTo[fd]
        assert method is not None
        return method

    def send(fd: int) -> None:
        index = sentIndex[fd]
        sent = 0
        with contextlib.suppress(BlockingIOError):
            sent = sender(fd)(frames[index])
        if sent < len(frames[index]):
            sendOffset[fd] = sent
            poller.modify(fd, _IN | _OUT)

    for number, s in enumerate(sockets):
        fd = s.fileno()
        s.setblocking(False)
        recvInto[fd] = s.recv_into
        sendTo[fd] = s.send
        collecting[fd] = bytearray()
        sentIndex[fd] = number % pool
        sentAt[fd] = now
        poller.register(fd, _IN)
    for s in sockets:
        send(s.fileno())

    done = doneAtStart = lastDone = 0
    rtts: list[float] = []
    windowStart = now + warmup
    windowEnd = windowStart + duration
    measuring = False
    start = clock
    lastProgress = now
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
                _drain(sockets, counter, sendOffset, sentIndex, frames)
                return DeflateEchoResult(
                    done - doneAtStart, end.wall - start.wall, end.server - start.server,
                    end.generator - start.generator, rtts,
                    checker.checked + firstChecks.checked,
                    checker.replyBytes / checker.checked if checker.checked else 0.0,
                    end.serverFaults - start.serverFaults,
                )
            if done != lastDone:
                lastDone, lastProgress = done, now
            elif now - lastProgress > stallTimeout:
                raise HarnessError(f"no reply for {stallTimeout} s")
            for fd, mask in events:
                if mask & _OUT:
                    offset = sendOffset[fd]
                    view = views[sentIndex[fd]]
                    with contextlib.suppress(BlockingIOError):
                        offset += sender(fd)(view[offset:])
                    if offset >= len(view):
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
                kept = collecting[fd]
                if kept is not None:
                    kept += buffer[:count]
                ended = counter.scan(fd, buffer, count)
                if not ended:
                    continue
                if ended > 1 or not counter.betweenFrames(fd):
                    raise HarnessError("the server sent more than one echo")
                index = sentIndex[fd]
                if kept is not None:
                    if fd == checkerFd:
                        checker.check(bytes(kept), payloads[index], frames[index],
                                      fresh=checker.checked == 0)
                        collecting[fd] = bytearray()
                    else:
                        firstChecks.check(bytes(kept), payloads[index], frames[index], True)
                        collecting[fd] = None
                done += 1
                rtts.append(now - sentAt[fd])
                sentAt[fd] = now
                sentIndex[fd] = (index + 1) % pool
                send(fd)
    finally:
        poller.close()


def _drain(
    sockets: list[socket.socket], counter: FrameCounter, sendOffset: list[int],
    sentIndex: list[int], frames: list[bytes], timeout: float = 10.0,
) -> None:
    """
    Finish the message in flight on every connection, so that the
    connections are handed back idle.
    """
    deadline = time.monotonic() + timeout
    buffer = bytearray(1 << 16)
    for s in sockets:
        fd = s.fileno()
        s.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            if sendOffset[fd]:
                s.sendall(frames[sentIndex[fd]][sendOffset[fd] :])
            while True:
                count = s.recv_into(buffer)
                if not count or counter.scan(fd, buffer, count):
                    break
        except OSError:
            pass
        s.settimeout(10)


@dataclass
class ExchangeResult:
    """
    One message each way on every connection.

    @ivar replyBytes: the first reply's size on the wire.
    """

    replies: int
    replyBytes: int


def exchangeOnce(
    sockets: list[socket.socket], payload: bytes, frame: bytes, negotiated: Optional[Negotiated],
    batch: int = 100, timeout: float = 60.0,
) -> ExchangeResult:
    """
    Send C{frame} (carrying C{payload}) once on every connection, a batch
    at a time, and read each echo; every reply is inflated and checked.

    @raise HarnessError: on a wrong or missing reply.
    """
    size = max(s.fileno() for s in sockets) + 1
    counter = FrameCounter(size)
    check = _Check(negotiated is not None, False, raw=False)
    deadline = time.monotonic() + timeout
    buffer = bytearray(1 << 17)
    replyBytes = 0
    for at in range(0, len(sockets), batch):
        group = sockets[at : at + batch]
        for s in group:
            s.setblocking(True)
            s.sendall(frame)
        for s in group:
            fd = s.fileno()
            kept = bytearray()
            s.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                while True:
                    count = s.recv_into(buffer)
                    if not count:
                        raise HarnessError("server closed a connection during the exchange")
                    kept += buffer[:count]
                    if counter.scan(fd, buffer, count):
                        break
            except TimeoutError:
                raise HarnessError(f"no echo within {timeout} s") from None
            check.check(bytes(kept), payload, frame, True)
            replyBytes = replyBytes or len(kept)
            s.settimeout(10)
    return ExchangeResult(check.checked, replyBytes)
