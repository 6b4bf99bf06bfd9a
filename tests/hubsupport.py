"""
Helpers for the hub's end-to-end tests: a real C{twistd -n txws} process,
subscribers (txws's client, the C{websockets} client, a raw socket that can
stop reading), publishers (the command line, plain signed HTTP) and channel
tokens made from C{docs/hub.md} alone.

Design: the server is a subprocess in its own temporary working directory,
on a free port of 127.0.0.1, logging to a file there; a test's cleanup
always kills it.  Both WebSocket subscribers have one interface,
L{Subscriber}, whose waits are Deferreds bounded by a timeout: txws's client
runs on the test's reactor, the C{websockets} client on one asyncio loop in
a background thread whose results come back through C{callFromThread}.
Blocking helpers (HTTP, the command line, the raw socket) never need the
reactor, so a test may call them directly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any, Optional, Protocol, TypeVar

import requests
from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.python.failure import Failure
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websocketsConnect
from websockets.exceptions import ConnectionClosed

from tests.support import freePort
from tests.tlssupport import ServerFiles
from tests.typedtrial import TestCase
from txws.client import WebSocketClientProtocol, connect

__all__ = [
    "ROOT",
    "HubProcess",
    "RawSubscriber",
    "Subscriber",
    "SubscriberClosed",
    "TxwsSubscriber",
    "WebsocketsSubscriber",
    "articlePublish",
    "channelToken",
    "childEnvironment",
    "freePort",
    "onLoop",
    "openSubscriber",
    "publishCLI",
    "seedHeaders",
    "sequence",
    "tokenCLI",
    "upgradeStatus",
    "v2Header",
    "writeKeyFile",
]

reactor: Any = _reactor

#: The checkout holding the C{tests} and C{txws} packages.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Default bound, in seconds, of a single wait.
WAIT = 10.0

_T = TypeVar("_T")


def writeKeyFile(path: str, keys: dict[str, str]) -> str:
    """
    Write a key file (C{docs/hmac.md} section 1) readable by its owner only.

    @param path: where.
    @param keys: key id to secret.
    @return: C{path}.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(keys, f)
    return path


def childEnvironment(cafile: Optional[str] = None) -> dict[str, str]:
    """
    @param cafile: a CA certificate that HTTPS clients in the child should
        trust instead of the system's.
    @return: the environment for a child process that imports this checkout.
    """
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    if cafile is not None:
        env.update(SSL_CERT_FILE=cafile, REQUESTS_CA_BUNDLE=cafile)
    return env


def _twistd() -> list[str]:
    """
    @return: the command that runs this interpreter's C{twistd}.
    """
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class HubProcess:
    """
    C{twistd -n txws} as a subprocess of a test.

    @ivar directory: its working directory (a new temporary one).
    @ivar port: the port it listens on, on 127.0.0.1.
    @ivar scheme: C{"http"} or C{"https"}.
    @ivar cafile: the CA certificate that verifies it over TLS, or C{None}.
    @ivar process: the C{Popen}.
    """

    def __init__(
        self,
        testCase: TestCase,
        *arguments: str,
        tls: Optional[ServerFiles] = None,
        readyWithin: float = 30.0,
        port: Optional[int] = None,
        directory: Optional[str] = None,
    ) -> None:
        """
        Start the server, wait until C{/healthz} answers, and make the
        test's cleanup kill it.

        @param testCase: the test that owns it.
        @param arguments: more C{txws} options (C{--hmac-keys}, ...).
        @param tls: serve over TLS with these files, through an C{ssl:}
            endpoint string.
        @param readyWithin: seconds allowed for starting.
        @param port: the port (default: a free one).
        @param directory: the working directory (default: a new one), e.g.
            a stopped server's, to restart it with the same key file.
        @raise AssertionError: if it exited or never answered.
        """
        if directory is None:
            directory = os.path.abspath(testCase.mktemp())
            os.makedirs(directory)
        self.directory = directory
        self.port = freePort() if port is None else port
        if tls is None:
            listen = f"tcp:{self.port}:interface=127.0.0.1"
            self.scheme, self.cafile = "http", None
        else:
            listen = (
                f"ssl:{self.port}:interface=127.0.0.1:privateKey={tls.key}:certKey={tls.cert}"
            )
            self.scheme, self.cafile = "https", tls.ca
        argv = [*_twistd(), "-n", "--pidfile=", "txws", "--listen", listen, *arguments]
        self._log = open(os.path.join(self.directory, "twistd.log"), "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            argv, cwd=self.directory, env=childEnvironment(), stdin=subprocess.DEVNULL,
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        testCase.addCleanup(self.kill)
        self._waitReady(readyWithin)

    def url(self, path: str = "/") -> str:
        """
        @param path: a path (and query) on the server.
        @return: its C{http(s)://127.0.0.1:PORT} URL.
        """
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def wsURL(self, query: str = "") -> str:
        """
        @param query: the subscription's query string, without C{?}.
        @return: the C{ws(s)://} URL of C{/ws}.
        """
        scheme = "wss" if self.scheme == "https" else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/ws" + (f"?{query}" if query else "")

    @property
    def devKeyFile(self) -> str:
        """
        @return: the path of the development key file the server writes in
            its working directory when it has no keys of its own.
        """
        return os.path.join(self.directory, "txws-dev-keys.json")

    def log(self) -> str:
        """
        @return: the end of what the server wrote to stdout and stderr.
        """
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return f.read()[-6000:].decode("utf-8", "replace")

    def _waitReady(self, seconds: float) -> None:
        """
        Poll C{/healthz} until it answers 200.
        """
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"twistd txws exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if self.get("/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"twistd txws did not answer within {seconds} s:\n{self.log()}")

    def get(
        self, path: str, headers: Optional[dict[str, str]] = None, timeout: float = WAIT
    ) -> requests.Response:
        """
        @param path: the path to C{GET}.
        @param headers: request headers.
        @param timeout: seconds allowed.
        @return: the response.
        """
        return requests.get(
            self.url(path), headers=headers, timeout=timeout, verify=self.cafile or True
        )

    def post(
        self, path: str, body: bytes, headers: Optional[dict[str, str]] = None,
        timeout: float = WAIT,
    ) -> requests.Response:
        """
        POST exact bytes.

        @param path: the path.
        @param body: the body.
        @param headers: the request headers (C{Content-Type} defaults to
            C{application/json}).
        @param timeout: seconds allowed.
        @return: the response.
        """
        sent = {"Content-Type": "application/json", **(headers or {})}
        return requests.post(
            self.url(path), data=body, headers=sent, timeout=timeout,
            verify=self.cafile or True,
        )

    def rssKiB(self) -> int:
        """
        @return: the server's resident set size (C{VmRSS}), KiB.
        """
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")

    def terminate(self, within: float) -> Optional[int]:
        """
        Send SIGTERM and wait for the process to exit.

        @param within: seconds allowed.
        @return: its exit status, or C{None} if it was still running.
        """
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(within)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """
        Kill the server's process group (if still running) and close the log.
        """
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(WAIT)
        self._log.close()


def publishCLI(
    hub: HubProcess, keyFile: str, channel: str, data: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """
    Run C{python -m txws.hub publish --url URL --key-file FILE [options]
    CHANNEL DATA}.

    @param hub: the server.
    @param keyFile: the key file to sign with.
    @param channel: the channel.
    @param data: the message, JSON text.
    @param options: more options (C{--scheme}, C{--key-id}).
    @return: the finished process (stdout and stderr as text).
    """
    return subprocess.run(
        [sys.executable, "-m", "txws.hub", "publish", "--url", hub.url("/publish"),
         "--key-file", keyFile, *options, channel, data],
        cwd=hub.directory, env=childEnvironment(hub.cafile), capture_output=True, text=True,
        timeout=30, stdin=subprocess.DEVNULL,
    )


def tokenCLI(
    keyFile: str, channel: str, ttl: int = 300, keyId: Optional[str] = None,
    cwd: Optional[str] = None,
) -> str:
    """
    Mint a channel token with C{python -m txws.hub token}.

    @param keyFile: the key file.
    @param channel: the channel.
    @param ttl: seconds it lives.
    @param keyId: the key to sign with (needed when the file has several).
    @param cwd: the working directory.
    @return: the token (stdout, stripped).
    @raise AssertionError: if the command failed.
    """
    done = subprocess.run(
        [sys.executable, "-m", "txws.hub", "token", "--key-file", keyFile,
         "--channel", channel, "--ttl", str(ttl), *(["--key-id", keyId] if keyId else [])],
        cwd=cwd, env=childEnvironment(), capture_output=True, text=True, timeout=30,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise AssertionError(f"token command failed ({done.returncode}): {done.stderr}")
    return done.stdout.strip()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def channelToken(keyId: str, secret: str, channel: str, expiry: int) -> str:
    """
    Make a channel token exactly as C{docs/hub.md} specifies it (written
    from the document, not from the hub's code).

    @param keyId: the signing key's id.
    @param secret: its secret.
    @param channel: the channel.
    @param expiry: Unix seconds after which it is refused.
    @return: C{txws1.KEYID.CHANNEL64.EXPIRY.SIGNATURE}.
    """
    message = f"txws-channel-token-v1\n{keyId}\n{channel}\n{expiry}".encode()
    signature = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return f"txws1.{keyId}.{_b64(channel.encode())}.{expiry}.{_b64(signature)}"


def seedHeaders(secret: str, body: bytes, timestamp: Optional[int] = None) -> dict[str, str]:
    """
    @return: the seed scheme's headers (C{docs/hmac.md} section 2).
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
    return {"X-HMAC-Signature": signature.hexdigest(), "X-HMAC-Timestamp": stamp}


def v2Header(
    keyId: str, secret: str, host: str, target: str, body: bytes,
    timestamp: Optional[int] = None, method: str = "POST",
) -> dict[str, str]:
    """
    @return: the v2 scheme's C{Authorization} header (C{docs/hmac.md}
        section 3).
    """
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_urlsafe(18)
    canonical = "\n".join(
        ["TXWS-HMAC-SHA256", keyId, stamp, nonce, method, host.lower(), target,
         hashlib.sha256(body).hexdigest()]
    ).encode()
    signature = hmac.new(secret.encode(), canonical, hashlib.sha256).hexdigest()
    return {
        "Authorization": f"TXWS-HMAC-SHA256 keyId={keyId},timestamp={stamp},"
        f"nonce={nonce},signature={signature}"
    }


def articlePublish(hub: HubProcess, secret: str, channel: str, data: object) -> Any:
    """
    Publish with the sender written like the Django/DRF article's mixin
    (C{tests/hmac_support/article_sender.py}: seed scheme, C{requests}).

    @param hub: the server; over TLS, C{requests} trusts its CA only.
    @param secret: the shared secret.
    @param channel: the channel.
    @param data: the message.
    @return: the hub's JSON answer.
    @raise requests.HTTPError: for a status other than 2xx.
    """
    from tests.hmac_support.article_sender import InferenceClient

    saved = os.environ.get("REQUESTS_CA_BUNDLE")
    if hub.cafile is not None:
        os.environ["REQUESTS_CA_BUNDLE"] = hub.cafile
    try:
        return InferenceClient(secret).post_with_hmac(
            hub.url("/publish"), {"channel": channel, "data": data}
        )
    finally:
        if hub.cafile is not None:
            if saved is None:
                del os.environ["REQUESTS_CA_BUNDLE"]
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = saved


def upgradeStatus(hub: HubProcess, query: str) -> tuple[int, bytes]:
    """
    Send a WebSocket opening handshake for C{/ws?query} (plain TCP).

    @return: the answer's HTTP status and the start of what followed the
        status line.
    """
    with socket.create_connection(("127.0.0.1", hub.port), timeout=WAIT) as s:
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        answer = b""
        deadline = time.monotonic() + WAIT
        while b"\r\n\r\n" not in answer and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    statusLine, _, rest = answer.partition(b"\r\n")
    parts = statusLine.split(b" ")
    if len(parts) < 2 or not parts[1].isdigit():
        raise AssertionError(f"not an HTTP answer: {answer[:200]!r}")
    return int(parts[1]), rest[:2000]


class SubscriberClosed(Exception):
    """
    The connection closed while a message was awaited.
    """


class Subscriber(Protocol):
    """
    A WebSocket subscriber of the hub, whichever client implements it.
    """

    def sendJSON(self, message: object) -> None:
        """
        Send one control message.
        """

    def nextJSON(self, timeout: float = WAIT) -> Deferred[Any]:
        """
        @return: the next message received, decoded; fails with
            C{TimeoutError} or L{SubscriberClosed}.
        """

    def whenClosed(self, timeout: float = WAIT) -> Deferred[tuple[Optional[int], str]]:
        """
        @return: the close code and reason once the connection has closed.
        """

    def close(self) -> None:
        """
        Start a normal close (1000).
        """


class _TxwsProtocol(WebSocketClientProtocol):
    """
    A txws client protocol that queues what it receives.
    """

    def __init__(self) -> None:
        super().__init__()
        self.received: DeferredQueue[Any] = DeferredQueue()
        self.closeInfo: Optional[tuple[Optional[int], str]] = None
        self.closeWaiters: list[Deferred[tuple[Optional[int], str]]] = []

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Queue the decoded message.
        """
        self.received.put(json.loads(payload))

    def onClose(self, wasClean: bool, code: Optional[int], reason: str) -> None:
        """
        Queue the end, and tell whoever waits for the close.
        """
        self.received.put(SubscriberClosed(code))
        self.closeInfo = (code, reason)
        waiters, self.closeWaiters = self.closeWaiters, []
        for waiter in waiters:
            waiter.callback(self.closeInfo)


def _bounded(d: Deferred[_T], timeout: float, what: str) -> Deferred[_T]:
    """
    @return: C{d}, failing with C{TimeoutError} after C{timeout} seconds.
    """

    def timedOut(failure: Failure) -> Failure:
        from twisted.internet.defer import TimeoutError as DeferTimeout

        if failure.check(DeferTimeout):
            raise TimeoutError(f"{what}: nothing within {timeout} s")
        return failure

    d.addTimeout(timeout, reactor)
    return d.addErrback(timedOut)


class TxwsSubscriber:
    """
    A subscriber using txws's own client (L{txws.client.connect}).

    @ivar protocol: the open connection.
    """

    def __init__(self, protocol: _TxwsProtocol) -> None:
        """
        @param protocol: an open connection.
        """
        self.protocol = protocol

    @classmethod
    def open(cls, url: str, caPem: Optional[bytes] = None) -> Deferred[TxwsSubscriber]:
        """
        Connect.

        @param url: the C{ws(s)://} URL.
        @param caPem: the CA certificate that verifies the server (and its
            host name, taken from the URL).
        @return: a Deferred of the open subscriber.
        """
        contextFactory = None
        if caPem is not None:
            host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
            contextFactory = optionsForClientTLS(host, trustRoot=Certificate.loadPEM(caPem))

        async def opening() -> TxwsSubscriber:
            d = connect(
                url, protocolClass=_TxwsProtocol, contextFactory=contextFactory, timeout=WAIT
            )
            protocol = await _bounded(d, WAIT, f"opening {url}")
            assert isinstance(protocol, _TxwsProtocol)
            return cls(protocol)

        return Deferred.fromCoroutine(opening())

    def sendJSON(self, message: object) -> None:
        """
        Send one control message (JSON text).
        """
        self.protocol.sendMessage(json.dumps(message).encode())

    def nextJSON(self, timeout: float = WAIT) -> Deferred[Any]:
        """
        @return: the next message, decoded; fails with C{TimeoutError}, or
            L{SubscriberClosed} once the connection has closed.
        """
        def check(value: Any) -> Any:
            if isinstance(value, SubscriberClosed):
                self.protocol.received.put(value)
                raise value
            return value

        return _bounded(self.protocol.received.get(), timeout, "txws subscriber").addCallback(check)

    def whenClosed(self, timeout: float = WAIT) -> Deferred[tuple[Optional[int], str]]:
        """
        @return: the close code and reason, once closed.
        """
        waiter: Deferred[tuple[Optional[int], str]] = Deferred()
        if self.protocol.closeInfo is not None:
            waiter.callback(self.protocol.closeInfo)
        else:
            self.protocol.closeWaiters.append(waiter)
        return _bounded(waiter, timeout, "txws subscriber close")

    def close(self) -> None:
        """
        Start a normal close (1000).
        """
        self.protocol.sendClose(1000)


class _Loop:
    """
    One asyncio event loop in a daemon thread, for C{websockets} clients.
    """

    _loop: Optional[asyncio.AbstractEventLoop] = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        """
        @return: the loop, started on first use.
        """
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(
                    target=loop.run_forever, name="websockets-subscribers", daemon=True
                ).start()
                cls._loop = loop
            return cls._loop


def onLoop(coroutine: Coroutine[Any, Any, _T]) -> Deferred[_T]:
    """
    Run a coroutine on the C{websockets} thread.

    @return: a Deferred (fired in the reactor thread) of its result.
    """
    d: Deferred[_T] = Deferred()
    future = asyncio.run_coroutine_threadsafe(coroutine, _Loop.get())

    def fire(done: Any) -> None:
        error = done.exception()
        if error is not None:
            d.errback(Failure(error))
        else:
            d.callback(done.result())

    future.add_done_callback(lambda done: reactor.callFromThread(fire, done))
    return d


class WebsocketsSubscriber:
    """
    A subscriber using the C{websockets} library's asyncio client.

    @ivar arrivals: the C{time.monotonic()} at which each message arrived.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.arrivals: list[float] = []
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> tuple[Optional[int], str]:
        try:
            async for message in self._ws:
                self.arrivals.append(time.monotonic())
                self._queue.put_nowait(json.loads(message))
        except ConnectionClosed:
            pass
        self._queue.put_nowait(SubscriberClosed(self._ws.close_code))
        return self._ws.close_code, self._ws.close_reason or ""

    @classmethod
    def open(cls, url: str, cafile: Optional[str] = None) -> Deferred[WebsocketsSubscriber]:
        """
        Connect.

        @param url: the C{ws(s)://} URL.
        @param cafile: the CA certificate that verifies the server and its
            host name.
        @return: a Deferred of the open subscriber.
        """

        async def opening() -> WebsocketsSubscriber:
            context = ssl.create_default_context(cafile=cafile) if cafile else None
            ws = await websocketsConnect(
                url, ssl=context, proxy=None, open_timeout=WAIT, ping_interval=None,
                max_size=None, compression=None,
            )
            return cls(ws)

        return onLoop(opening())

    def sendJSON(self, message: object) -> None:
        """
        Send one control message (JSON text).
        """
        text = json.dumps(message)
        asyncio.run_coroutine_threadsafe(self._ws.send(text), _Loop.get()).result(WAIT)

    def nextJSON(self, timeout: float = WAIT) -> Deferred[Any]:
        """
        @return: the next message, decoded; fails with C{TimeoutError}, or
            L{SubscriberClosed} once the connection has closed.
        """
        async def next() -> Any:
            try:
                value = await asyncio.wait_for(self._queue.get(), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"websockets subscriber: nothing within {timeout} s") from None
            if isinstance(value, SubscriberClosed):
                self._queue.put_nowait(value)
                raise value
            return value

        return onLoop(next())

    def whenClosed(self, timeout: float = WAIT) -> Deferred[tuple[Optional[int], str]]:
        """
        @return: the close code and reason, once closed.
        """
        async def closed() -> tuple[Optional[int], str]:
            try:
                return await asyncio.wait_for(asyncio.shield(self._reader), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(f"websockets subscriber still open after {timeout} s") from None

        return onLoop(closed())

    def close(self) -> None:
        """
        Start a normal close (1000).
        """
        asyncio.run_coroutine_threadsafe(self._ws.close(), _Loop.get())


async def openSubscriber(kind: str, hub: HubProcess, query: str = "") -> Subscriber:
    """
    Connect a subscriber of the given kind to the hub's C{/ws}.

    @param kind: C{"txws"} or C{"websockets"}.
    @param hub: the server.
    @param query: the query string (C{channel=news&...}), without C{?}.
    @return: the open subscriber.
    """
    url = hub.wsURL(query)
    if kind == "txws":
        caPem = None
        if hub.cafile is not None:
            with open(hub.cafile, "rb") as f:
                caPem = f.read()
        return await TxwsSubscriber.open(url, caPem)
    return await WebsocketsSubscriber.open(url, hub.cafile)


class RawSubscriber:
    """
    A subscriber on a plain socket with a small receive buffer, which reads
    nothing after the opening handshake until told to.
    """

    def __init__(self, port: int, query: str, receiveBuffer: int = 4096) -> None:
        """
        Connect and complete the opening handshake.

        @param port: the hub's port on 127.0.0.1 (plain TCP).
        @param query: the subscription's query string.
        @param receiveBuffer: C{SO_RCVBUF}, bytes.
        @raise AssertionError: if the hub did not answer 101.
        """
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receiveBuffer)
        self.sock.settimeout(WAIT)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise AssertionError(f"no 101 from the hub: {head[:200]!r}")

    def readUntilClose(
        self, timeout: float = WAIT
    ) -> tuple[list[tuple[int, bytes]], Optional[int]]:
        """
        Read frames until a Close frame or the end of the connection.

        @param timeout: seconds allowed in all.
        @return: the data frames as C{(opcode, payload)}, and the close
            code (C{None} if the connection ended without a Close frame).
        """
        frames: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + timeout
        data, offset = self._buffer, 0
        while True:
            parsed = _parseFrame(data, offset)
            if parsed is not None:
                opcode, payload, offset = parsed
                if opcode == 8:
                    code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                    return frames, code
                frames.append((opcode, payload))
                continue
            data, offset = data[offset:], 0
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no Close frame within {timeout} s")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return frames, None
            data += chunk

    def sendClose(self, code: int) -> None:
        """
        Send a (masked) Close frame with C{code}, as a client answering the
        server's Close does.
        """
        mask = os.urandom(4)
        payload = code.to_bytes(2, "big")
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x88, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        """
        Close the socket.
        """
        self.sock.close()


def _parseFrame(data: bytes, offset: int) -> Optional[tuple[int, bytes, int]]:
    """
    Parse one unmasked server frame at C{offset}.

    @return: its opcode, payload and the offset after it, or C{None} if
        C{data} does not hold all of it yet.
    """
    if len(data) - offset < 2:
        return None
    opcode = data[offset] & 0x0F
    length = data[offset + 1] & 0x7F
    start = offset + 2
    if length == 126:
        if len(data) < start + 2:
            return None
        length, start = int.from_bytes(data[start:start + 2], "big"), start + 2
    elif length == 127:
        if len(data) < start + 8:
            return None
        length, start = int.from_bytes(data[start:start + 8], "big"), start + 8
    if len(data) < start + length:
        return None
    return opcode, data[start:start + length], start + length


def sequence(messages: Sequence[Any]) -> list[int]:
    """
    @return: the C{seq} of each C{message} in C{messages}.
    """
    return [m["seq"] for m in messages if m.get("type") == "message"]
