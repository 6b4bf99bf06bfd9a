"""
Tests for the connection-level bounds of L{txws.hmacauth.HMACSite} (its
L{HMACChannel}): how long a request may take to arrive (408) and how large
its head may be (414, 431).  Unit tests on a L{StringTransport} and a
L{MemoryReactorClock}; the request timeout also against a real process
serving an L{HMACSite} on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from tests.hmac_support.resources import RecordingResource
from tests.typedtrial import SynchronousTestCase
from txws.hmacauth import HMACSite
from txws.hmacauth.guard import (
    DEFAULT_MAX_HEAD_SIZE,
    DEFAULT_MAX_HEADERS,
    DEFAULT_REQUEST_TIMEOUT,
    HMACChannel,
)
from txws.options import WebSocketOptions
from txws.server import WebSocketResource, WebSocketServerFactory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = IPv4Address("TCP", "10.0.0.9", 5555)


class Connection:
    """
    One connection to an L{HMACSite} on a clock.
    """

    def __init__(self, testCase: SynchronousTestCase, resource: Any = None,
                 **siteOptions: Any) -> None:
        self.clock = MemoryReactorClock()
        self.resource = resource if resource is not None else RecordingResource()
        self.site = HMACSite(self.resource, reactor=self.clock, **siteOptions)
        self.channel: Any = self.site.buildProtocol(PEER)  # type: ignore[no-untyped-call]
        self.transport = StringTransport(peerAddress=PEER)
        self.channel.makeConnection(self.transport)

        def cleanUp() -> None:
            if not getattr(self.transport, "_lost", False):
                self.channel.connectionLost(Failure(ConnectionDone()))

        testCase.addCleanup(cleanUp)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def answers(self) -> bytes:
        value: bytes = self.transport.value()
        return value

    def status(self) -> int:
        return int(self.transport.value().split(b" ", 2)[1])

    def errorDocument(self) -> dict[str, Any]:
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        self.assertJSONError(head, body)
        document: dict[str, Any] = json.loads(body)
        return document

    @staticmethod
    def assertJSONError(head: bytes, body: bytes) -> None:
        lines = head.split(b"\r\n")
        assert b"Content-Type: application/json" in lines, head
        assert b"Connection: close" in lines, head
        assert b"Content-Length: %d" % len(body) in lines, head


def requestHead(target: bytes = b"/x", headers: list[bytes] | None = None) -> bytes:
    lines = [b"POST " + target + b" HTTP/1.1", b"Host: h", *(headers or [])]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class RequestTimeoutTests(SynchronousTestCase):
    """
    A request's head and body must arrive within C{requestTimeout} seconds
    of its first byte; the idle timeout between requests is separate.
    """

    def test_defaults(self) -> None:
        """
        10 s for a request, 16 KiB for a head, 100 header lines by default.
        """
        site = HMACSite(RecordingResource(), reactor=MemoryReactorClock())
        self.assertEqual((site.requestTimeout, site.maxHeadSize, site.maxHeaders),
                         (10.0, 16384, 100))
        self.assertEqual((DEFAULT_REQUEST_TIMEOUT, DEFAULT_MAX_HEAD_SIZE, DEFAULT_MAX_HEADERS),
                         (10.0, 16384, 100))

    def test_bodyShorterThanContentLength(self) -> None:
        """
        A body that stops short of its C{Content-Length} gets 408 with a
        JSON body at the request timeout (not Twisted's 60 s idle timeout),
        the connection closes and the resource never runs.
        """
        connection = Connection(self)
        with capturedLogs() as events:
            connection.send(requestHead(headers=[b"Content-Length: 100"]) + b"0123456789")
            connection.clock.advance(9.9)
            self.assertEqual(connection.answers(), b"")
            self.assertFalse(connection.transport.disconnecting)
            connection.clock.advance(0.1)
        self.assertTrue(connection.answers().startswith(b"HTTP/1.1 408 Request Timeout\r\n"))
        self.assertEqual(connection.errorDocument()["code"], "request_timeout")
        self.assertTrue(connection.transport.disconnecting)
        self.assertEqual(connection.resource.seen, [])
        [event] = [e for e in events if e.get("code") == "request_timeout"]
        self.assertEqual(event["peer"], "10.0.0.9:5555")

    def test_abortedIfNotClosed(self) -> None:
        """
        A peer that does not let the connection close after the 408 is
        aborted C{abortTimeout} seconds later.
        """
        connection = Connection(self)
        connection.send(b"POST /x HTTP/1.1\r\n")
        connection.clock.advance(10)
        self.assertTrue(connection.transport.disconnecting)
        self.assertFalse(connection.transport.disconnected)
        connection.clock.advance(HMACChannel.abortTimeout)
        self.assertTrue(connection.transport.disconnected)

    def test_slowHead(self) -> None:
        """
        A head trickling in one byte a second keeps resetting the idle
        timeout, but not the request timeout: 408 after 10 s.
        """
        connection = Connection(self)
        head = requestHead(headers=[b"X-Slow: " + b"a" * 40])
        for byte in head[:-3]:
            connection.send(bytes([byte]))
            connection.clock.advance(1)
            if connection.answers():
                break
        self.assertEqual(connection.status(), 408)
        self.assertEqual(connection.clock.seconds(), 10)

    def test_timerPerRequest(self) -> None:
        """
        Two requests on one connection, each taking 9 s to arrive, are both
        answered: the timer starts again with each request.
        """
        connection = Connection(self)
        for body in (b"first", b"again"):
            connection.send(requestHead(headers=[b"Content-Length: 5"]) + body[:2])
            connection.clock.advance(9)
            connection.send(body[2:])
        self.assertEqual([s.body for s in connection.resource.seen], [b"first", b"again"])
        connection.clock.advance(9)
        self.assertNotIn(b" 408 ", connection.answers())
        self.assertFalse(connection.transport.disconnecting)

    def test_idleTimeoutSeparate(self) -> None:
        """
        Between requests only the site's idle timeout applies: no 408, and
        the connection stays open until the idle timeout closes it.
        """
        connection = Connection(self, timeout=30)
        connection.send(requestHead(headers=[b"Content-Length: 0"]))
        answered = connection.answers()
        connection.clock.advance(29)
        self.assertFalse(connection.transport.disconnecting)
        connection.clock.advance(1)
        self.assertTrue(connection.transport.disconnecting)
        self.assertEqual(connection.answers(), answered)

    def test_notWhileAnswering(self) -> None:
        """
        A resource that takes longer than the request timeout to answer is
        not cut off, even with a pipelined request waiting.
        """
        pending: list[Request] = []

        class Slow(Resource):
            isLeaf = True

            def render_POST(self, request: Request) -> int:
                pending.append(request)
                return NOT_DONE_YET

        connection = Connection(self, resource=Slow())  # type: ignore[no-untyped-call]
        connection.send(requestHead(headers=[b"Content-Length: 0"]) + b"POST /y HTTP/1.1\r\n")
        connection.clock.advance(30)
        self.assertEqual(connection.answers(), b"")
        pending[0].write(b"done")
        pending[0].finish()
        self.assertIn(b"done", connection.answers())
        self.assertFalse(connection.transport.disconnecting)
        # The pipelined request's timer starts now that it is being read.
        connection.clock.advance(10)
        self.assertIn(b"HTTP/1.1 408 ", connection.answers())

    def test_configurable(self) -> None:
        """
        The timeout is a site option; C{None} disables it.
        """
        connection = Connection(self, requestTimeout=2.5)
        connection.send(b"POST /x HTTP/1.1\r\n")
        connection.clock.advance(2.5)
        self.assertEqual(connection.status(), 408)
        connection = Connection(self, requestTimeout=None, timeout=None)
        connection.send(b"POST /x HTTP/1.1\r\n")
        connection.clock.advance(1000)
        self.assertEqual(connection.answers(), b"")
        self.assertEqual(connection.clock.getDelayedCalls(), [])

    def test_noTimerLeftBehind(self) -> None:
        """
        A request that arrived whole leaves no request timer, and a lost
        connection cancels a running one.
        """
        connection = Connection(self, timeout=None)
        connection.send(requestHead(headers=[b"Content-Length: 0"]))
        self.assertEqual(connection.clock.getDelayedCalls(), [])
        connection.send(b"POST /x HTTP/1.1\r\n")
        self.assertEqual(len(connection.clock.getDelayedCalls()), 1)
        connection.channel.connectionLost(Failure(ConnectionDone()))
        connection.transport._lost = True  # type: ignore[attr-defined]
        self.assertEqual(connection.clock.getDelayedCalls(), [])

    def test_noTimeoutAfterBadRequest(self) -> None:
        """
        A request Twisted refuses as malformed (a bare 400) leaves no
        request timer behind: no 408 follows, and the connection is closed
        once.  Found by C{fuzz/fuzz_hmacsite.py} (input committed as
        C{fuzz/corpus/hmacsite/crash-400-then-timer}): two empty lines make
        Twisted parse an empty request line.
        """
        connection = Connection(self, timeout=None)
        connection.send(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        self.assertEqual(connection.answers(), b"HTTP/1.1 400 Bad Request\r\n\r\n")
        self.assertTrue(connection.transport.disconnecting)
        connection.clock.advance(100)
        self.assertEqual(connection.answers(), b"HTTP/1.1 400 Bad Request\r\n\r\n")

    def test_noTimeoutAfterBodyRefused(self) -> None:
        """
        After a 413 for a declared length over the cap, the request timer
        adds nothing.
        """
        connection = Connection(self, maxBodySize=10, timeout=None)
        connection.send(requestHead(headers=[b"Content-Length: 11"]))
        answered = connection.answers()
        self.assertTrue(answered.startswith(b"HTTP/1.1 413 "))
        connection.clock.advance(100)
        self.assertEqual(connection.answers(), answered)

    def test_webSocketNotCut(self) -> None:
        """
        A WebSocket upgraded on an L{HMACSite} (the hub's /ws) is not closed
        by the request timer.
        """
        clock = MemoryReactorClock()
        factory = WebSocketServerFactory(
            reactor=clock, options=WebSocketOptions(autoPingInterval=0))
        root = Resource()
        root.putChild(b"ws", WebSocketResource(factory))
        site = HMACSite(root, reactor=clock)
        channel: Any = site.buildProtocol(PEER)  # type: ignore[no-untyped-call]
        transport = StringTransport(peerAddress=PEER)
        channel.makeConnection(transport)
        channel.dataReceived(
            b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))
        clock.advance(100)
        self.assertFalse(transport.disconnecting)
        self.assertNotIn(b"408", transport.value())
        transport.loseConnection()
        channel.connectionLost(Failure(ConnectionDone()))


class HeadSizeTests(SynchronousTestCase):
    """
    Oversized heads get 414 or 431 with a JSON body, never a bare disconnect.
    """

    def assertRefused(self, connection: Connection, status: int, code: str) -> None:
        self.assertEqual(connection.status(), status)
        self.assertEqual(connection.errorDocument()["code"], code)
        self.assertTrue(connection.transport.disconnecting)
        self.assertEqual(connection.resource.seen, [])
        answered = connection.answers()
        connection.send(b"more bytes\r\n" * 100)
        self.assertEqual(connection.answers(), answered)

    def test_hugeHeaderValue(self) -> None:
        """
        A 100 KiB header value is 431 (Twisted alone closes the connection
        without an answer).
        """
        connection = Connection(self)
        connection.send(b"POST /x HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 100 * 1024
                        + b"\r\n\r\n")
        self.assertRefused(connection, 431, "headers_too_large")

    def test_abortedIfNotClosed(self) -> None:
        """
        A peer that does not let the connection close after a 431 (or a 413)
        is aborted C{abortTimeout} seconds later.
        """
        for head in [b"POST /x HTTP/1.1\r\nX-Big: " + b"v" * 20000,
                     requestHead(headers=[b"Content-Length: 2000000"])]:
            connection = Connection(self, timeout=None)
            connection.send(head)
            self.assertTrue(connection.transport.disconnecting)
            connection.clock.advance(HMACChannel.abortTimeout - 1)
            self.assertFalse(connection.transport.disconnected)
            connection.clock.advance(1)
            self.assertTrue(connection.transport.disconnected)

    def test_hugeHeaderTrickled(self) -> None:
        """
        The same header sent in small pieces without a line end is refused
        as soon as the buffered line passes the cap.
        """
        connection = Connection(self)
        connection.send(b"POST /x HTTP/1.1\r\nHost: h\r\nX-Big: ")
        sent = 0
        while not connection.answers() and sent < 100_000:
            connection.send(b"v" * 1000)
            sent += 1000
        self.assertLessEqual(sent, DEFAULT_MAX_HEAD_SIZE + 1000)
        self.assertRefused(connection, 431, "headers_too_large")

    def test_longRequestLine(self) -> None:
        """
        A request line over the cap is 414.
        """
        connection = Connection(self)
        connection.send(b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertRefused(connection, 414, "uri_too_long")

    def test_longRequestLineUnterminated(self) -> None:
        """
        So is a request line that never ends.
        """
        connection = Connection(self)
        connection.send(b"GET /" + b"a" * 20000)
        self.assertRefused(connection, 414, "uri_too_long")

    def test_manySmallHeaders(self) -> None:
        """
        A head over the cap made of short lines is 431 (Twisted alone
        answers a bare 400).
        """
        connection = Connection(self)
        headers = [b"X-H%d: %s" % (n, b"v" * 200) for n in range(90)]
        connection.send(requestHead(headers=headers))
        self.assertRefused(connection, 431, "headers_too_large")

    def test_tooManyHeaderLines(self) -> None:
        """
        More than C{maxHeaders} header lines is 431.
        """
        connection = Connection(self, maxHeaders=10)
        connection.send(requestHead(headers=[b"X-H%d: v" % n for n in range(10)]))
        self.assertRefused(connection, 431, "headers_too_large")
        connection = Connection(self, maxHeaders=10)
        connection.send(requestHead(headers=[b"X-H%d: v" % n for n in range(9)]))
        self.assertEqual(connection.status(), 200)

    def test_headAtTheCap(self) -> None:
        """
        A head of exactly C{maxHeadSize} bytes, counting every CRLF, is
        accepted; one byte more is refused.
        """
        for extra, status in [(0, 200), (1, 431)]:
            connection = Connection(self, maxHeadSize=1024)
            base = requestHead(headers=[b"X-Pad: "])
            pad = b"p" * (1024 - len(base) + extra)
            head = requestHead(headers=[b"X-Pad: " + pad])
            self.assertEqual(len(head), 1024 + extra)
            connection.send(head)
            self.assertEqual(connection.status(), status)

    def test_configurable(self) -> None:
        """
        A larger cap admits a larger head; a tiny cap is refused.
        """
        connection = Connection(self, maxHeadSize=200_000)
        connection.send(b"POST /x HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 100 * 1024
                        + b"\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(connection.status(), 200)
        for options in [{"maxHeadSize": 100}, {"maxHeaders": 0}, {"requestTimeout": 0}]:
            with self.assertRaises(ValueError):
                HMACSite(RecordingResource(), reactor=MemoryReactorClock(), **options)

    def test_channelClass(self) -> None:
        """
        The site's connections are L{HMACChannel}s.
        """
        connection = Connection(self)
        self.assertIsInstance(connection.channel._channel, HMACChannel)


_SERVER = r"""
import sys
from twisted.internet import reactor, endpoints
from txws.hmacauth import HMACGuard, HMACSite
from tests.hmac_support.resources import RecordingResource

guard = HMACGuard(RecordingResource(), {"k1": b"secret"}, reactor=reactor)
site = HMACSite(guard, requestTimeout=float(sys.argv[1]))
def listening(port):
    print("PORT", port.getHost().port, flush=True)
endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site).addCallback(
    listening)
reactor.callLater(60, reactor.stop)
reactor.run()
"""


class RealProcessTests(SynchronousTestCase):
    """
    The same bounds, over TCP, against a process serving an L{HMACSite}.
    """

    def startServer(self, requestTimeout: float) -> int:
        env = dict(os.environ, PYTHONPATH=ROOT)
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(requestTimeout)], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

        def stop() -> None:
            process.kill()
            process.wait(10)
            assert process.stdout is not None
            process.stdout.close()

        self.addCleanup(stop)
        assert process.stdout is not None
        line = process.stdout.readline()
        self.assertTrue(line.startswith(b"PORT "), line)
        return int(line.split()[1])

    def readAll(self, sock: socket.socket, deadline: float) -> bytes:
        received = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
        return received

    def test_shortBodyOverTCP(self) -> None:
        """
        A real peer that declares 100 body bytes and sends 10 gets 408 and
        an end of stream after the request timeout (1 s here), not 60 s.
        """
        port = self.startServer(1.0)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(b"POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Length: 100\r\n\r\n0123456789")
            received = self.readAll(sock, started + 10)
            elapsed = time.monotonic() - started
        self.assertTrue(received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), received)
        self.assertEqual(json.loads(received.partition(b"\r\n\r\n")[2])["code"],
                         "request_timeout")
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 3.0)

    def test_hugeHeaderOverTCP(self) -> None:
        """
        A real peer sending a 100 KiB header value gets 431 before the close.
        """
        port = self.startServer(5.0)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
                             + b"v" * 100 * 1024 + b"\r\n\r\n")
            received = self.readAll(sock, time.monotonic() + 5)
        self.assertTrue(
            received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), received)

