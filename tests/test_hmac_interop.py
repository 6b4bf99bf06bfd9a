"""
Interop tests for L{txws.hmacauth} over loopback, with real peers: a Django
+ Django REST framework receiver implementing the seed article's
authentication class, a sender written like the article's mixin (with
C{requests}), treq, raw sockets, and the command-line client.

Everything listens on 127.0.0.1 with an OS-chosen port; every wait is
bounded; processes, ports and connections are cleaned up.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from treq.client import HTTPClient
from twisted.internet import reactor as _globalReactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import ProcessProtocol, Protocol
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IAgent

from tests.hmac_support.article_sender import InferenceClient, sendRaw
from tests.hmac_support.resources import RecordingResource
from tests.typedtrial import TestCase
from txws.hmacauth import (
    HMACAgent,
    HMACGuard,
    HMACSite,
    Scheme,
    UnexpectedStatus,
    canonicalJSON,
    postJSON,
    seedSignature,
)

reactor: Any = _globalReactor
REPO = Path(__file__).resolve().parent.parent
SECRET = "interop-secret-7f3a"
WAIT = 15.0


def childEnvironment(**extra: str) -> dict[str, str]:
    """
    The environment for child processes: ours, with the checkout importable.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def writeKeyFile(testCase: TestCase, keys: dict[str, str]) -> str:
    """
    Write a private key file.
    """
    path: str = os.path.abspath(testCase.mktemp())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as keyFile:
        json.dump(keys, keyFile)
    return path


def plainAgent(testCase: TestCase) -> Any:
    """
    A Twisted C{Agent} that keeps no connection open after a response.
    """
    pool = HTTPConnectionPool(reactor, persistent=False)
    testCase.addCleanup(pool.closeCachedConnections)
    return Agent(reactor, pool=pool, connectTimeout=WAIT)


class _FirstLine(ProcessProtocol):
    """
    Collect a child's first stdout line; notice when it ends.
    """

    def __init__(self) -> None:
        self.firstLine: Deferred[bytes] = Deferred()
        self.ended: Deferred[None] = Deferred()
        self.output = b""
        self.errors = b""

    def outReceived(self, data: bytes) -> None:
        self.output += data
        if b"\n" in self.output and not self.firstLine.called:
            self.firstLine.callback(self.output.split(b"\n", 1)[0])

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def processEnded(self, reason: Failure) -> None:
        if not self.firstLine.called:
            self.firstLine.errback(RuntimeError(self.errors.decode("utf-8", "replace")))
        self.ended.callback(None)


async def waitForPort(port: int) -> None:
    """
    Poll until something accepts connections on 127.0.0.1:C{port}, or fail
    after L{WAIT} seconds.
    """
    deadline = time.monotonic() + WAIT
    while True:
        try:
            connected = connectProtocol(
                TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=1), Protocol()
            )
            protocol = await connected
            protocol.transport.loseConnection()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            pause: Deferred[None] = Deferred()
            reactor.callLater(0.05, pause.callback, None)
            await pause


async def startDjango(testCase: TestCase, secret: str) -> str:
    """
    Start the Django receiver in a child process; stop it at cleanup.

    @return: The base URL.
    """
    protocol = _FirstLine()
    process = reactor.spawnProcess(
        protocol, sys.executable,
        [sys.executable, "-m", "tests.hmac_support.serve_django", "--lifetime", "60"],
        env=childEnvironment(TXWS_TEST_HMAC_SECRET=secret), path=str(REPO),
    )

    def stop() -> Deferred[None]:
        if not protocol.ended.called:
            process.signalProcess("KILL")
        return protocol.ended.addTimeout(WAIT, reactor)

    testCase.addCleanup(stop)
    port = int(await protocol.firstLine.addTimeout(WAIT, reactor))
    await waitForPort(port)
    return f"http://127.0.0.1:{port}"


class TrackingSite(HMACSite):
    """
    An L{HMACSite} that can close its connections and wait until they are gone.
    """

    def __init__(self, resource: object, **kwargs: Any) -> None:
        super().__init__(resource, **kwargs)
        self.open: dict[Any, Deferred[None]] = {}

    def buildProtocol(self, addr: Any) -> Any:
        channel = super().buildProtocol(addr)  # type: ignore[no-untyped-call, unused-ignore]
        closed: Deferred[None] = Deferred()
        original = channel.connectionLost

        def connectionLost(reason: Failure) -> None:
            original(reason)
            closed.callback(None)

        channel.connectionLost = connectionLost
        self.open[channel] = closed
        return channel

    def shutdown(self) -> Deferred[list[None]]:
        for channel, closed in self.open.items():
            if not closed.called:
                # The site builds a protocol-choosing wrapper around the channel.
                getattr(channel, "_channel", channel).transport.loseConnection()
        waiting = gatherResults(list(self.open.values()))
        return waiting.addTimeout(WAIT, reactor)


def serveGuard(testCase: TestCase, maxBodySize: int = 1 << 20) -> tuple[str, RecordingResource]:
    """
    Serve an L{HMACGuard} over a L{RecordingResource} on a real port, on the
    real reactor's clock.

    @return: The base URL and the protected resource.
    """
    resource = RecordingResource()
    guard = HMACGuard(resource, {"k1": SECRET.encode()}, reactor=reactor,
                      maxBodySize=maxBodySize)
    site = TrackingSite(guard, maxBodySize=maxBodySize)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    testCase.addCleanup(site.shutdown)
    testCase.addCleanup(port.stopListening)
    return f"http://127.0.0.1:{port.getHost().port}", resource


class DjangoReceiverTests(TestCase):
    """
    Our client against the article's Django/DRF receiver.
    """

    timeout = 60

    async def test_acceptsOurClient(self) -> None:
        """
        L{postJSON} through L{HMACAgent} in seed mode is accepted by the
        DRF authentication class, which sees exactly the canonical bytes,
        and so is the command-line client with C{--scheme seed}.
        """
        base = await startDjango(self, SECRET)
        agent = HMACAgent(plainAgent(self), {"backend-1": SECRET.encode()}, scheme=Scheme.SEED)
        payload = {"user_id": 42, "text": "hello"}
        result = await postJSON(agent, base + "/v1/infer", payload)
        answer = result.json()
        self.assertEqual(answer["received"], payload)
        self.assertEqual(answer["bodySha256"],
                         hashlib.sha256(canonicalJSON(payload)).hexdigest())

        keyFile = writeKeyFile(self, {"backend-1": SECRET})
        out, err, code = await getProcessOutputAndValue(
            sys.executable,
            ["-m", "txws.hmacauth", "post", base + "/v1/infer", "--key-file", keyFile,
             "--scheme", "seed", "--json", '{"text": "cli"}'],
            env=childEnvironment(), path=str(REPO),
        ).addTimeout(WAIT, reactor)
        self.assertEqual((code, err), (0, b""))
        self.assertEqual(json.loads(out)["received"], {"text": "cli"})

    async def test_refusesBadSignatures(self) -> None:
        """
        The receiver refuses our client with the wrong key (and a v2-only
        request, which it cannot understand); the L{Deferred} fails.
        """
        base = await startDjango(self, SECRET)
        for keys, scheme, detail in [
            ({"k": b"wrong"}, Scheme.SEED, "Invalid HMAC signature"),
            ({"k": SECRET.encode()}, Scheme.V2, "Missing HMAC headers"),
        ]:
            agent = HMACAgent(plainAgent(self), keys, scheme=scheme)
            try:
                await postJSON(agent, base + "/v1/infer", {"a": 1})
            except UnexpectedStatus as e:
                self.assertEqual(e.result.code, 401)
                self.assertEqual(e.result.json(), {"detail": detail})
            else:
                self.fail("the receiver accepted a bad request")


class ArticleSenderTests(TestCase):
    """
    The article's C{requests} mixin against our guard on a real port.
    """

    timeout = 60

    async def test_mixinAccepted(self) -> None:
        """
        The mixin, unmodified, is accepted and its signer is identified.
        """
        base, resource = serveGuard(self)
        client = InferenceClient(SECRET)
        payload = {"user_id": 42, "text": "hello"}
        answer = await deferToThread(client.post_with_hmac, base + "/v1/infer", payload)
        self.assertEqual(answer["keyId"], "k1")
        self.assertEqual(answer["scheme"], "seed")
        [seen] = resource.seen
        self.assertEqual(seen.body, canonicalJSON(payload))

    async def test_refusals(self) -> None:
        """
        Tampered body, wrong key, stale or future timestamp, missing headers
        and an exact replay are refused with their codes.
        """
        base, resource = serveGuard(self)
        url = base + "/v1/infer"
        body = canonicalJSON({"user_id": 42, "text": "hello"})

        def headers(stamp: int, secret: str = SECRET, signed: bytes = body) -> dict[str, str]:
            signature = seedSignature(secret.encode(), stamp, signed)
            return {"Content-Type": "application/json", "X-HMAC-Signature": signature,
                    "X-HMAC-Timestamp": str(stamp)}

        now = int(time.time())
        cases = [
            (body.replace(b"42", b"43"), headers(now), "bad_signature"),
            (body, headers(now, secret="wrong-secret"), "bad_signature"),
            (body, headers(now - 3600), "stale_timestamp"),
            (body, headers(now + 3600), "stale_timestamp"),
            (body, {"Content-Type": "application/json"}, "missing_headers"),
        ]
        for sent, sentHeaders, code in cases:
            status, answer = await deferToThread(sendRaw, url, sent, sentHeaders)
            self.assertEqual((status, answer["code"]), (401, code), code)
        self.assertEqual(resource.seen, [])

        captured = headers(now)
        first = await deferToThread(sendRaw, url, body, captured)
        second = await deferToThread(sendRaw, url, body, captured)
        self.assertEqual(first[0], 200)
        self.assertEqual((second[0], second[1]["code"]), (401, "replayed"))
        self.assertEqual(len(resource.seen), 1)


class TreqTests(TestCase):
    """
    L{HMACAgent} as treq's agent, v2 scheme, against our guard.
    """

    timeout = 30

    async def test_treqClient(self) -> None:
        """
        treq's C{json=} body is signed and accepted; replaying the same
        nonce is refused.
        """
        base, resource = serveGuard(self)
        nonces = iter(["fixed-nonce-0123456789", "fixed-nonce-0123456789"])
        signer = HMACAgent(plainAgent(self), {"k1": SECRET.encode()},
                           nonceFactory=lambda: next(nonces))
        client = HTTPClient(IAgent(signer))
        response = await client.post(base + "/v1/infer?x=1", json={"b": 2, "a": 1})
        self.assertEqual(response.code, 200)
        answer = await response.json()
        self.assertEqual((answer["keyId"], answer["scheme"]), ("k1", "v2"))
        self.assertEqual(json.loads(resource.seen[0].body), {"a": 1, "b": 2})
        self.assertIn(b"Content-Length", resource.seen[0].headers)
        response = await client.post(base + "/v1/infer?x=1", json={"b": 2, "a": 1})
        self.assertEqual(response.code, 401)
        self.assertEqual((await response.json())["code"], "replayed")


class _Raw(Protocol):
    """
    Send fixed bytes, collect the answer until the server closes.
    """

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.received = b""
        self.closed: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure | None = None) -> None:
        self.closed.callback(self.received)


class BodyCapSocketTests(TestCase):
    """
    L{HMACSite} refuses oversized bodies on a real socket without reading them.
    """

    timeout = 30

    async def exchange(self, base: str, request: bytes) -> bytes:
        port = int(base.rsplit(":", 1)[1])
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5)
        protocol = await connectProtocol(endpoint, _Raw(request))
        answer: bytes = await protocol.closed.addTimeout(WAIT, reactor)
        return answer

    async def test_hugeContentLength(self) -> None:
        """
        A terabyte C{Content-Length} followed by three bytes is answered 413
        at once and the connection closed: the server never waits for it.
        """
        base, resource = serveGuard(self)
        answer = await self.exchange(
            base, b"POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Length: 1000000000000\r\nX-HMAC-Timestamp: 1\r\n\r\nabc")
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer)
        self.assertEqual(json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"], "body_too_large")
        self.assertEqual(resource.seen, [])

    async def test_chunkedOverCap(self) -> None:
        """
        A chunked body that passes the cap is refused with 413.
        """
        base, resource = serveGuard(self, maxBodySize=1024)
        chunk = b"400\r\n" + b"x" * 1024 + b"\r\n"
        answer = await self.exchange(
            base, b"POST /v1/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + chunk + chunk + b"0\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer)
        self.assertEqual(resource.seen, [])


class CommandLineInteropTests(TestCase):
    """
    C{python -m txws.hmacauth post} as a real process against our guard.
    """

    timeout = 60

    async def run_(self, *argv: str) -> tuple[bytes, bytes, int]:
        result: tuple[bytes, bytes, int] = await getProcessOutputAndValue(
            sys.executable, ["-m", "txws.hmacauth", *argv], env=childEnvironment(),
            path=str(REPO),
        ).addTimeout(WAIT, reactor)
        return result

    async def test_exitStatus(self) -> None:
        """
        Exit 0 and the body on stdout for a 2xx; exit 1, the body on stdout
        and one line on stderr for a refusal.
        """
        base, resource = serveGuard(self)
        good = writeKeyFile(self, {"k1": SECRET})
        out, err, code = await self.run_("post", base + "/v1/infer", "--key-file", good,
                                         "--json", '{"text": "hello", "user_id": 42}')
        self.assertEqual((code, err), (0, b""))
        self.assertEqual(json.loads(out)["scheme"], "v2")
        self.assertEqual(resource.seen[0].body, b'{"text":"hello","user_id":42}')

        bad = writeKeyFile(self, {"k1": "not-the-secret"})
        out, err, code = await self.run_("post", base + "/v1/infer", "--key-file", bad,
                                         "--key-id", "k1", "--json", "{}")
        self.assertEqual(code, 1)
        self.assertEqual(json.loads(out)["code"], "bad_signature")
        self.assertEqual(err.decode().splitlines(),
                         ["python -m txws.hmacauth: HTTP 401 Unauthorized (bad_signature)"])
