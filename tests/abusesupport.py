"""
Helpers for the abuse scenarios (L{tests.test_abuse}) and the soak script
(C{scripts/soak.py}): a real C{twistd -n txws} process on 127.0.0.1 with
its memory and descriptor counts, and a small blocking WebSocket client
(plain sockets, no reactor) for well-behaved and hostile peers alike.

Everything here talks to 127.0.0.1 only and is bounded in time: every
socket has a timeout and every wait a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import resource
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

__all__ = [
    "HOST",
    "ROOT",
    "Server",
    "SilentChurn",
    "WebSocket",
    "closeAll",
    "echoLatency",
    "openSockets",
    "raiseFileLimit",
]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The checkout."""

HOST = "127.0.0.1"
"""The only address anything here connects to."""

_LISTENING = re.compile(r"listening on (?:http|ws)://127\.0\.0\.1:(\d+)/")
_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def raiseFileLimit(wanted: int) -> int:
    """
    Raise this process's soft limit on open files towards C{wanted} (never
    above the hard limit).

    @param wanted: Descriptors wanted.
    @return: The soft limit now in force.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return int(soft)


class Server:
    """
    A C{twistd -n txws ARGUMENTS} process listening on a free port of
    127.0.0.1, started with this interpreter and the checkout on
    C{PYTHONPATH}, in its own working directory.

    @ivar port: Where it listens.
    @ivar pid: Its process id.
    @ivar output: What it logged so far.
    """

    def __init__(self, arguments: Sequence[str], cwd: str, timeout: float = 30.0,
                 backlog: int = 1024) -> None:
        """
        Start the server and wait until it announces its port.

        @param arguments: Options of the txws plugin (C{--app}, limits...);
            C{--listen} is added.
        @param backlog: The listen backlog (Twisted's default, 50, drops
            the SYNs of a burst of thousands of connections, which then
            retry a second later: an artefact of the test, not a bound).
        @param cwd: Its working directory (the hub writes its key file there).
        @param timeout: Seconds to wait for it to listen.
        @raise RuntimeError: If it exits or stays silent.
        """
        argv = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "-n", "--pidfile=", "txws", "--listen", f"tcp:0:interface={HOST}:backlog={backlog}",
                *arguments]
        env = dict(os.environ, PYTHONPATH=ROOT)
        self._process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        self.pid = self._process.pid
        self.output = ""
        self._lock = threading.Lock()
        self._portSeen = threading.Event()
        self.port = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._portSeen.wait(timeout):
            self.stop()
            raise RuntimeError("the server did not listen in time:\n" + self.output[-3000:])
        if not self.port:
            self.stop()
            raise RuntimeError("the server exited:\n" + self.output[-3000:])

    def _read(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            line = raw.decode("utf-8", "replace")
            with self._lock:
                self.output += line
                if len(self.output) > 2_000_000:
                    self.output = self.output[-1_000_000:]
            match = _LISTENING.search(line)
            if match and not self.port:
                self.port = int(match.group(1))
                self._portSeen.set()
        self._portSeen.set()

    def rssKiB(self, field: str = "VmRSS") -> int:
        """
        @param field: C{"VmRSS"} for the resident memory now, C{"VmHWM"} for
            its peak so far.
        @return: The server's resident memory, KiB.
        """
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")  # pragma: no cover

    def openFiles(self) -> int:
        """
        @return: How many descriptors the server has open.
        """
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def running(self) -> bool:
        """
        @return: Whether the process still runs.
        """
        return self._process.poll() is None

    def logged(self, text: str) -> int:
        """
        @param text: A fragment of a log line.
        @return: How many times it was logged.
        """
        with self._lock:
            return self.output.count(text)

    def stop(self) -> None:
        """
        Kill the process (if it runs) and reap it.
        """
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait(10)
        self._reader.join(5)
        if self._process.stdout is not None:
            self._process.stdout.close()


def openSockets(port: int, count: int, first: bytes = b"", timeout: float = 10.0,
                window: int = 40) -> list[socket.socket]:
    """
    Open C{count} TCP connections to the server, at most C{window} in
    progress at once (within the listen backlog, so that SYNs are not
    dropped), optionally sending C{first} on each.

    @param port: The server's port.
    @param count: How many.
    @param first: Bytes each sends at once.
    @param timeout: Seconds for all of them to connect.
    @param window: Connections in progress at once.
    @return: The connected, non-blocking sockets (fewer if some could not
        connect in time).
    """
    deadline = time.monotonic() + timeout
    sockets: list[socket.socket] = []
    pending: dict[int, socket.socket] = {}
    poller = select.poll()
    started = 0
    while len(sockets) < count and time.monotonic() < deadline:
        while len(pending) < window and started < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.setblocking(False)
            sock.connect_ex((HOST, port))
            pending[sock.fileno()] = sock
            poller.register(sock.fileno(), select.POLLOUT)
            started += 1
        if not pending:
            break
        for fd, _ in poller.poll(100):
            sock = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                sock.close()
                started -= 1
                continue
            if first:
                try:
                    sock.send(first)
                except OSError:
                    sock.close()
                    started -= 1
                    continue
            sockets.append(sock)
    closeAll(list(pending.values()))
    return sockets


class SilentChurn:
    """
    C{count} connections to the server that never send a byte, each one the
    server closes reopened at once, kept up by a thread until L{stop} (or
    C{seconds}).

    @ivar reopened: How many were closed by the server and reopened.
    @ivar answered: How many of those the server sent bytes to first (a
        status line) rather than just closing.
    """

    def __init__(self, port: int, count: int, seconds: float = 60.0) -> None:
        """
        Open the connections and start the thread.

        @param port: The server's port.
        @param count: Connections kept open at once.
        @param seconds: The longest the thread runs.
        """
        self.reopened = 0
        self.answered = 0
        self._port = port
        self._count = count
        self._deadline = time.monotonic() + seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _open(self, poller: select.poll, sockets: dict[int, socket.socket]) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.setblocking(False)
        sock.connect_ex((HOST, self._port))
        sockets[sock.fileno()] = sock
        poller.register(sock.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)

    def _run(self) -> None:
        poller = select.poll()
        sockets: dict[int, socket.socket] = {}
        try:
            for _ in range(self._count):
                self._open(poller, sockets)
            while not self._stopping.is_set() and time.monotonic() < self._deadline:
                for fd, _ in poller.poll(50):
                    sock = sockets.pop(fd)
                    poller.unregister(fd)
                    try:
                        data = sock.recv(4096)
                    except OSError:
                        data = b""
                    if data:
                        self.answered += 1
                    sock.close()
                    self.reopened += 1
                    self._open(poller, sockets)
        finally:
            closeAll(list(sockets.values()))

    def stop(self) -> None:
        """
        Stop reopening and close every connection.
        """
        self._stopping.set()
        self._thread.join(10)


def closeAll(sockets: Sequence[socket.socket]) -> None:
    """
    Close sockets (with a reset: they linger 0 s), ignoring errors.

    @param sockets: What to close.
    """
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()


def isClosedByPeer(sock: socket.socket) -> bool:
    """
    @param sock: A non-blocking socket.
    @return: Whether the peer closed it (end of stream or reset), reading and
        discarding anything already received.
    """
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


@dataclass
class Frame:
    """
    One WebSocket frame received.
    """

    fin: bool
    opcode: int
    payload: bytes


class WebSocket:
    """
    A blocking WebSocket client connection to 127.0.0.1, for tests: masks
    what it sends, reads frames one at a time, every read with a deadline.
    """

    def __init__(self, port: int, path: str = "/ws", timeout: float = 5.0,
                 headers: Sequence[str] = (), receiveBuffer: int = 0) -> None:
        """
        Connect and complete the opening handshake.

        @param port: The server's port.
        @param path: The request target.
        @param timeout: Seconds for every blocking step.
        @param headers: Extra request header lines.
        @param receiveBuffer: If set, C{SO_RCVBUF} before connecting (a
            small one makes a non-reading peer stall sooner).
        @raise ConnectionError: If the server does not answer 101.
        """
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receiveBuffer:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
        self.sock.settimeout(timeout)
        self.sock.connect((HOST, port))
        self._buffer = b""
        extra = "".join(h + "\r\n" for h in headers)
        self.sock.sendall(
            (f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {_KEY}\r\n"
             f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode("latin-1"))
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {self._buffer!r}")
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        if self.status != 101:
            self.sock.close()
            raise ConnectionError(f"handshake answered {self.status}")

    @staticmethod
    def frame(opcode: int, payload: bytes, fin: bool = True,
              declaredLength: Optional[int] = None) -> bytes:
        """
        Encode one masked client frame.

        @param opcode: The opcode.
        @param payload: The payload (masked with a zero key).
        @param fin: The FIN bit.
        @param declaredLength: A length to announce instead of the payload's.
        @return: The frame's bytes.
        """
        length = len(payload) if declaredLength is None else declaredLength
        first = (0x80 if fin else 0) | opcode
        if length < 126:
            header = struct.pack("!BB", first, 0x80 | length)
        elif length < 0x10000:
            header = struct.pack("!BBH", first, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, length)
        return header + b"\x00\x00\x00\x00" + payload

    def send(self, opcode: int, payload: bytes) -> None:
        """
        Send one frame.

        @param opcode: The opcode.
        @param payload: The payload.
        """
        self.sock.sendall(self.frame(opcode, payload))

    def _need(self, count: int) -> None:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("end of stream")
            self._buffer += chunk

    def receive(self) -> Frame:
        """
        Read one frame.

        @return: It.
        @raise ConnectionError: At the end of the stream.
        @raise TimeoutError: If nothing arrives within the timeout.
        """
        self._need(2)
        b0, b1 = self._buffer[0], self._buffer[1]
        length = b1 & 0x7F
        offset = 2
        if length == 126:
            self._need(4)
            length = struct.unpack("!H", self._buffer[2:4])[0]
            offset = 4
        elif length == 127:
            self._need(10)
            length = struct.unpack("!Q", self._buffer[2:10])[0]
            offset = 10
        self._need(offset + length)
        payload = self._buffer[offset:offset + length]
        self._buffer = self._buffer[offset + length:]
        return Frame(bool(b0 & 0x80), b0 & 0x0F, payload)

    def closeCode(self, timeout: float = 10.0) -> Optional[int]:
        """
        Read (and drop) frames until a Close arrives.

        @param timeout: Seconds to wait in all.
        @return: Its code (C{None} for an empty Close or the end of stream).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                frame = self.receive()
            except (ConnectionError, OSError):
                return None
            if frame.opcode == 8:
                if len(frame.payload) >= 2:
                    code: int = struct.unpack("!H", frame.payload[:2])[0]
                    return code
                return None
        raise TimeoutError("no Close frame in time")

    def echo(self, payload: bytes) -> bytes:
        """
        Send a text message and read frames until a data frame comes back.

        @param payload: UTF-8 text.
        @return: The echoed payload.
        """
        self.send(1, payload)
        while True:
            frame = self.receive()
            if frame.opcode in (1, 2):
                return frame.payload

    def close(self) -> None:
        """
        Close the socket (no closing handshake).
        """
        self.sock.close()


def echoLatency(port: int, timeout: float = 5.0) -> float:
    """
    Connect as a well-behaved client, exchange one echo and close.

    @param port: The echo server's port.
    @param timeout: Seconds for each step.
    @return: Seconds from connecting to the echo.
    @raise AssertionError: If the echo differs.
    """
    started = time.monotonic()
    client = WebSocket(port, timeout=timeout)
    try:
        message = b"well-behaved %d" % os.getpid()
        assert client.echo(message) == message
    finally:
        with contextlib.suppress(OSError):
            client.send(8, b"\x03\xe8")
        client.close()
    return time.monotonic() - started


def waitFor(predicate: object, timeout: float, interval: float = 0.05) -> bool:
    """
    Poll C{predicate()} until it is true or C{timeout} passes.

    @param predicate: A callable returning a truth value.
    @param timeout: Seconds.
    @param interval: Seconds between polls.
    @return: Whether it became true.
    """
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def readable(sockets: Sequence[socket.socket], timeout: float) -> list[socket.socket]:
    """
    @param sockets: Sockets.
    @param timeout: Seconds to wait.
    @return: Those with something to read (data, end of stream or reset).
    """
    ready: list[socket.socket] = []
    for start in range(0, len(sockets), 500):
        chunk = list(sockets[start:start + 500])
        poller = select.poll()
        byFd = {s.fileno(): s for s in chunk}
        for fd in byFd:
            poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        ready.extend(byFd[fd] for fd, _ in poller.poll(int(timeout * 1000)))
        timeout = 0
    return ready


def publish(port: int, keyFile: str, channel: str, data: object,
            sock: Optional[socket.socket] = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """
    Publish to a hub with a v2 signature made with the first key of
    C{keyFile}, over C{sock} (kept alive) or a new connection.

    @param port: The hub's port.
    @param keyFile: A key file (JSON object of key id to secret).
    @param channel: The channel.
    @param data: The JSON value to publish.
    @param sock: A connection to reuse; a new one (closed after) if C{None}.
    @param timeout: Seconds for the answer.
    @return: The status and the response body.
    """
    import json

    from txws.hmacauth.schemes import signV2

    with open(keyFile) as f:
        keyId, secret = next(iter(json.load(f).items()))
    body = json.dumps({"channel": channel, "data": data}).encode()
    host = f"{HOST}:{port}".encode()
    nonce = base64.urlsafe_b64encode(os.urandom(18)).decode().rstrip("=")
    authorization = signV2(secret.encode(), keyId, b"POST", host, b"/publish", body,
                           int(time.time()), nonce)
    request = (b"POST /publish HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               b"Authorization: %s\r\nContent-Length: %d\r\n\r\n%s"
               % (host, authorization, len(body), body))
    own = sock is None
    connection = sock if sock is not None else socket.create_connection((HOST, port), timeout)
    try:
        connection.settimeout(timeout)
        connection.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = connection.recv(65536)
            if not chunk:
                raise ConnectionError("closed before answering")
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        match = re.search(rb"(?i)content-length: *(\d+)", head)
        if match is None and re.search(rb"(?i)transfer-encoding: *chunked", head):
            while not rest.endswith(b"0\r\n\r\n"):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                rest += chunk
            body = b""
            while rest:
                size, _, rest = rest.partition(b"\r\n")
                length = int(size.split(b";")[0], 16)
                body, rest = body + rest[:length], rest[length + 2:]
                if not length:
                    break
            return status, body
        length = int(match.group(1)) if match else 0
        while len(rest) < length:
            chunk = connection.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, rest[:length]
    finally:
        if own:
            connection.close()


def rawExchange(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, float]:
    """
    Send raw bytes on a new connection and read until the server closes.

    @param port: The server's port.
    @param data: What to send (errors sending are ignored: the server may
        close first).
    @param timeout: Seconds to wait for the close.
    @return: Everything received, and the seconds until the close.
    """
    started = time.monotonic()
    sock = socket.create_connection((HOST, port), timeout)
    received = b""
    try:
        with contextlib.suppress(OSError):
            sock.sendall(data)
        deadline = started + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                break
            if not chunk:
                break
            received += chunk
    finally:
        sock.close()
    return received, time.monotonic() - started
