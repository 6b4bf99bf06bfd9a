"""
Abuse scenarios against a real C{twistd -n txws} process on 127.0.0.1: the
attacks txws already withstands, each asserting that a well-behaved client
still gets served within a stated time during the attack, that the
server's memory (C{VmRSS}) stays under a stated bound, and that the
offender gets the right close code or HTTP status.

Every scenario is bounded in time and count, talks to 127.0.0.1 only and
kills its server in cleanup.  The figures measured are printed (and, with
C{TXWS_ABUSE_FIGURES=FILE}, appended to FILE as JSON lines); the table in
C{docs/abuse.md} comes from them.

One-byte fragments (issue 11, item 2) are L{tests.test_abuse_fragments}'s
scenarios, frames announced and never sent (item 3)
L{tests.test_abuse_announced}'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from typing import Any

from tests.abusesupport import (
    HOST,
    Server,
    SilentChurn,
    WebSocket,
    closeAll,
    echoLatency,
    isClosedByPeer,
    openSockets,
    publish,
    raiseFileLimit,
    rawExchange,
    readable,
    waitFor,
)
from tests.typedtrial import SynchronousTestCase
from txws.options import WebSocketOptions

MiB = 1024
"""KiB in a MiB (RSS is read in KiB)."""

GOOD_CLIENT_SECONDS = 2.0
"""A well-behaved client's echo must come back within this during an attack."""


def record(scenario: str, **figures: Any) -> None:
    """
    Print a scenario's figures and append them to C{$TXWS_ABUSE_FIGURES}.
    """
    line = json.dumps({"scenario": scenario, **figures}, sort_keys=True)
    print(line)
    path = os.environ.get("TXWS_ABUSE_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def errorCode(answer: bytes) -> str:
    """
    @return: The C{code} of a JSON error response.
    """
    code: str = json.loads(answer.partition(b"\r\n\r\n")[2])["code"]
    return code


class AbuseCase(SynchronousTestCase):
    """
    A scenario with its own server process.
    """

    def startServer(self, *arguments: str) -> Server:
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)
        server = Server(list(arguments), cwd)
        self.addCleanup(server.stop)
        self.cwd = cwd
        # Warm up (first imports, first connection) before the baseline.
        echoLatency(server.port) if "hub" not in arguments else None
        return server

    def assertGoodClient(self, server: Server) -> float:
        latency = echoLatency(server.port, timeout=GOOD_CLIENT_SECONDS)
        self.assertLess(latency, GOOD_CLIENT_SECONDS)
        return latency

    def collectAnswers(self, sockets: list[socket.socket], answers: dict[socket.socket, bytes],
                       opened: float, earliest: float) -> None:
        """
        Read what the server sent to those of C{sockets} not in C{answers}
        yet (waiting up to 0.3 s), checking that each answer came no
        earlier than C{earliest} seconds after C{opened}.
        """
        for sock in readable([s for s in sockets if s not in answers], 0.3):
            with contextlib.suppress(OSError):
                answers[sock] = sock.recv(65536)
            if sock in answers:
                self.assertGreater(time.monotonic() - opened, earliest)

    def assertAll408(self, answers: dict[socket.socket, bytes], count: int, opened: float,
                     within: float) -> float:
        """
        Check that C{count} answers, all 408, came within C{within} seconds
        of C{opened}.

        @return: The seconds since C{opened}.
        """
        elapsed = time.monotonic() - opened
        self.assertEqual(len(answers), count)
        self.assertLess(elapsed, within)
        for answer in answers.values():
            self.assertTrue(answer.startswith(b"HTTP/1.1 408 "), answer[:100])
            self.assertEqual(errorCode(answer), "request_timeout")
        return elapsed

    def assertHeadsRefused(self, port: int, longTarget: bytes, bigHeaderLine: bytes
                           ) -> tuple[bytes, bytes, bytes, float]:
        """
        Send, each on a connection of its own, a 20 KiB request line
        (C{longTarget} and 20000 more bytes), a 100 KiB header (after the
        request line C{bigHeaderLine}) and 90 headers of 200 bytes; check
        that they get 414 C{uri_too_long}, 431 and 431 C{headers_too_large}.

        @return: The three answers, and the longest time one took.
        """
        longLine, lineSeconds = rawExchange(
            port, b"GET " + longTarget + b"a" * 20000 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        bigHeader, headerSeconds = rawExchange(
            port, bigHeaderLine + b"\r\nHost: h\r\nX-Big: " + b"v" * 100 * 1024 + b"\r\n\r\n")
        many, manySeconds = rawExchange(port, b"GET /ws HTTP/1.1\r\nHost: h\r\n" + b"".join(
            b"X-%d: %s\r\n" % (n, b"v" * 200) for n in range(90)) + b"\r\n")
        self.assertTrue(longLine.startswith(b"HTTP/1.1 414 "), longLine[:100])
        self.assertEqual(errorCode(longLine), "uri_too_long")
        for answer in (bigHeader, many):
            self.assertTrue(answer.startswith(b"HTTP/1.1 431 "), answer[:100])
            self.assertEqual(errorCode(answer), "headers_too_large")
        return longLine, bigHeader, many, max(lineSeconds, headerSeconds, manySeconds)

    def assertRSSBelow(self, server: Server, baseline: int, growthKiB: int) -> int:
        rss = server.rssKiB()
        self.assertLess(rss - baseline, growthKiB,
                        f"RSS grew by {(rss - baseline) // MiB} MiB")
        return rss


class HandshakeAbuseTests(AbuseCase):
    """
    Attacks on the opening handshake of C{--app echo}.
    """

    def test_slowloris(self) -> None:
        """
        300 connections each sending one byte of a request head every 300 ms
        for 6 s: a well-behaved client still echoes within 2 s, and the
        server grows by less than 40 MiB.
        """
        raiseFileLimit(4096)
        server = self.startServer("--app", "echo")
        baseline = server.rssKiB()
        head = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nX-Slow: " + b"a" * 200)
        sockets = openSockets(server.port, 300, first=head[:1])
        self.addCleanup(closeAll, sockets)
        self.assertEqual(len(sockets), 300)
        latencies = []
        offset = 1
        started = time.monotonic()
        while time.monotonic() - started < 6:
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.send(head[offset:offset + 1])
            offset += 1
            latencies.append(self.assertGoodClient(server))
            time.sleep(0.3)
        rss = self.assertRSSBelow(server, baseline, 40 * MiB)
        still = sum(not isClosedByPeer(s) for s in sockets)
        record("slowloris handshakes (echo)", connections=300, seconds=6,
               worstEchoSeconds=round(max(latencies), 3), rssGrowthMiB=round(
                   (rss - baseline) / MiB, 1), offendersStillOpen=still)

    def test_halfOpenAndSilent(self) -> None:
        """
        2000 connections that send half a request and close their sending
        side are all closed by the server within 5 s; of 3000 silent
        connections, the server keeps at most the 512 of
        C{--max-pending-handshakes} (its default) within 10 s (before issue
        11's fix it held all 3000 for its 60 s idle timeout): a well-behaved
        client echoes within 2 s and the server grows by less than 120 MiB.
        """
        raiseFileLimit(12000)
        server = self.startServer("--app", "echo")
        baseline = server.rssKiB()
        baseFiles = server.openFiles()
        halfOpen = openSockets(server.port, 2000, first=b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        self.addCleanup(closeAll, halfOpen)
        self.assertEqual(len(halfOpen), 2000)
        for sock in halfOpen:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        halfLatency = self.assertGoodClient(server)
        closed = waitFor(lambda: server.openFiles() <= baseFiles + 5, 5)
        self.assertTrue(closed, f"{server.openFiles() - baseFiles} still open")
        self.assertTrue(all(isClosedByPeer(s) for s in readable(halfOpen, 1)))
        closeAll(halfOpen)
        silent = openSockets(server.port, 3000, timeout=20)
        self.addCleanup(closeAll, silent)
        self.assertEqual(len(silent), 3000)
        bound = WebSocketOptions().maxPendingHandshakes
        self.assertTrue(waitFor(lambda: server.openFiles() <= baseFiles + bound + 5, 10),
                        f"{server.openFiles() - baseFiles} still open")
        dropped = sum(isClosedByPeer(s) for s in readable(silent, 1))
        self.assertGreaterEqual(dropped, 3000 - bound)
        latency = self.assertGoodClient(server)
        rss = self.assertRSSBelow(server, baseline, 120 * MiB)
        record("half-closed + silent connections (echo)", halfClosed=2000, silent=3000,
               echoSecondsDuringHalfClosed=round(halfLatency, 3),
               echoSecondsDuringSilent=round(latency, 3),
               rssGrowthMiB=round((rss - baseline) / MiB, 1),
               silentDropped=dropped, silentKept=3000 - dropped,
               filesOpenAfterSilent=server.openFiles() - baseFiles)

    def test_oversizedHeadsEcho(self) -> None:
        """
        The echo app's site bounds heads as the WebSocket handshake's
        C{--max-handshake-size} (16 KiB): a 20 KiB request line gets 414, a
        100 KiB header or 90 headers of 200 bytes 431, each at once (within
        2 s) and in JSON; nothing is held and a well-behaved client is
        unaffected.
        """
        server = self.startServer("--app", "echo")
        baseline = server.rssKiB()
        longLine, bigHeader, many, seconds = self.assertHeadsRefused(
            server.port, b"/ws", b"GET /ws HTTP/1.1")
        self.assertLess(seconds, 2)
        latency = self.assertGoodClient(server)
        rss = self.assertRSSBelow(server, baseline, 10 * MiB)
        record("oversized heads (echo)", longRequestLine=longLine[:12].decode(),
               hugeHeader=bigHeader[:12].decode(), manyHeaders=many[:12].decode(),
               answerSeconds=round(seconds, 3),
               echoSeconds=round(latency, 3), rssGrowthMiB=round((rss - baseline) / MiB, 1))


ECHO_FACTORY = "txws.apps.echo:echoFactory"
"""The echo application as a bare factory on the port (no C{twisted.web})."""


class SlowHeadEchoTests(AbuseCase):
    """
    The echo app's site bounds the time a request head may take.
    """

    def test_slowHeads408(self) -> None:
        """
        With C{--open-timeout 2}, 100 connections sending one byte of a
        request head every 0.3 s all get 408 C{request_timeout} between 2
        and 3.5 s after their first byte, while a well-behaved client
        echoes within 2 s throughout.
        """
        raiseFileLimit(4096)
        server = self.startServer("--app", "echo", "--open-timeout", "2")
        baseline = server.rssKiB()
        head = (b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"X-Slow: " + b"a" * 200)
        opened = time.monotonic()
        slow = openSockets(server.port, 100, first=head[:1])
        self.addCleanup(closeAll, slow)
        self.assertEqual(len(slow), 100)
        answers: dict[socket.socket, bytes] = {}
        worst = 0.0
        offset = 1
        while time.monotonic() - opened < 3.5 and len(answers) < 100:
            for sock in slow:
                if sock not in answers:
                    with contextlib.suppress(OSError):
                        sock.send(head[offset:offset + 1])
            offset += 1
            worst = max(worst, self.assertGoodClient(server))
            self.collectAnswers(slow, answers, opened, 1.9)
        elapsed = self.assertAll408(answers, 100, opened, 3.5)
        rss = self.assertRSSBelow(server, baseline, 20 * MiB)
        record("slow heads (echo, --open-timeout 2)", slow=100,
               all408WithinSeconds=round(elapsed, 2), worstEchoSeconds=round(worst, 3),
               rssGrowthMiB=round((rss - baseline) / MiB, 1))


class PendingHandshakeAbuseTests(AbuseCase):
    """
    Issue 11, item 1: connections that never send a byte fill the bounded
    table of pending handshakes (its oldest dropped for each newcomer),
    never the C{--max-connections} slots, which count open connections; a
    flood of real connections past C{--max-connections} gets 503.
    """

    SILENT = 400
    PENDING = 200
    BACKLOG = 511
    """The listen backlog (nginx's on Linux): deep enough for every silent
    connection, so that the kernel never drops a good client's SYN (which
    would cost it a 1 s retransmission, and says nothing of txws)."""

    def silentChurn(self, app: str) -> None:
        """
        Keep L{SILENT} silent connections open against C{--max-connections
        100 --max-pending-handshakes 200}, each one the server drops
        reopened at once, for 8 s: the server drops about half of them
        every two turns of its reactor, thousands a second, and a
        well-behaved client echoes within 2 s every time; the server grows
        by less than 40 MiB and logs the drops in a few lines, not one per
        connection.  (How many descriptors the bound leaves a server is
        measured in L{HandshakeAbuseTests.test_halfOpenAndSilent}.)
        """
        raiseFileLimit(4096)
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)
        server = Server(["--app", app, "--max-connections", "100",
                         "--max-pending-handshakes", str(self.PENDING)], cwd,
                        backlog=self.BACKLOG)
        self.addCleanup(server.stop)
        echoLatency(server.port)
        baseline = server.rssKiB()
        baseFiles = server.openFiles()
        churn = SilentChurn(server.port, self.SILENT, seconds=60)
        self.addCleanup(churn.stop)
        self.assertTrue(waitFor(lambda: churn.reopened >= self.SILENT, 10),
                        f"only {churn.reopened} dropped")
        latencies = []
        files = []
        started = time.monotonic()
        while time.monotonic() - started < 8:
            latencies.append(self.assertGoodClient(server))
            files.append(server.openFiles() - baseFiles)
            time.sleep(0.1)
        seconds = time.monotonic() - started
        reopened = churn.reopened
        churn.stop()
        rss = self.assertRSSBelow(server, baseline, 40 * MiB)
        lines = (server.logged("Dropped the oldest pending handshake")
                 + server.logged("more pending handshakes in the last"))
        self.assertLessEqual(lines, 2 + (time.monotonic() - started + 10) // 10)
        self.assertEqual(server.logged("too many WebSocket connections"), 0)
        latencies.sort()
        record(f"silent connections reopened continuously ({app})", silent=self.SILENT,
               maxConnections=100, maxPendingHandshakes=self.PENDING,
               droppedAndReopened=reopened, dropsPerSecond=round(reopened / seconds),
               goodClientEchoes=len(latencies),
               echoesOver500ms=sum(latency > 0.5 for latency in latencies), medianEchoSeconds=round(
                   latencies[len(latencies) // 2], 3), worstEchoSeconds=round(latencies[-1], 3),
               mostDescriptorsOverBaseline=max(files), dropLogLines=lines,
               rssGrowthMiB=round((rss - baseline) / MiB, 1))

    def test_silentChurnFactory(self) -> None:
        """
        L{silentChurn} against the echo factory on its own port, where (on
        txws before issue 11's fix) the silent connections took every
        C{--max-connections} slot and the good client got 503.
        """
        self.silentChurn(ECHO_FACTORY)

    def test_silentChurnSite(self) -> None:
        """
        L{silentChurn} against C{--app echo} (a site whose connections count
        as pending handshakes until their first request arrives; before, a
        plain site held every one of them for its 60 s idle timeout).
        """
        self.silentChurn("echo")

    def test_openConnectionFlood(self) -> None:
        """
        With C{--max-connections 100}, 100 open WebSockets fill it; 50 more
        (and a well-behaved client) get 503, each logged once; once 10 of
        the 100 close, the well-behaved client echoes within 2 s.
        """
        raiseFileLimit(4096)
        server = self.startServer("--app", "echo", "--max-connections", "100")
        baseline = server.rssKiB()
        opened = [WebSocket(server.port) for _ in range(100)]
        for client in opened:
            self.addCleanup(client.close)
        statuses = []
        for _ in range(50):
            try:
                extra = WebSocket(server.port)
            except ConnectionError as e:
                statuses.append(str(e))
            else:
                extra.close()
                statuses.append("101")
        self.assertEqual(set(statuses), {"handshake answered 503"})
        with self.assertRaises(ConnectionError):
            echoLatency(server.port)
        self.assertTrue(waitFor(lambda: server.logged("503 too many WebSocket connections")
                                >= 51, 5))
        self.assertEqual(server.logged("503 too many WebSocket connections"), 51)
        freed = time.monotonic()
        for client in opened[:10]:
            with contextlib.suppress(OSError):
                client.send(8, b"\x03\xe8")
            self.assertEqual(client.closeCode(), 1000)
            client.close()
        # The server counts them free once it has closed them.
        latency = None
        while time.monotonic() - freed < GOOD_CLIENT_SECONDS:
            try:
                latency = echoLatency(server.port)
                break
            except ConnectionError:
                time.sleep(0.01)
        throughAfter = time.monotonic() - freed
        self.assertIsNotNone(latency)
        self.assertLess(throughAfter, GOOD_CLIENT_SECONDS)
        rss = self.assertRSSBelow(server, baseline, 20 * MiB)
        record("open connections past --max-connections (echo)", maxConnections=100,
               open=100, refused503=51, goodClientEchoSecondsAfterTenClosed=round(
                   throughAfter, 3), rssGrowthMiB=round((rss - baseline) / MiB, 1))


class HubHTTPAbuseTests(AbuseCase):
    """
    Attacks on the hub's HTTP side (its L{HMACSite}): oversized heads get
    414/431, slow heads and short bodies 408 within the 10 s request
    timeout; subscribers keep receiving meanwhile.
    """

    def test_headsAndSlowRequests(self) -> None:
        """
        414 for a 20 KiB request line, 431 for a 100 KiB header or 90
        headers of 200 bytes; 100 slowloris connections and 100 publishes
        declaring more body than they send all get 408 between 10 and 13.5 s;
        a subscriber receives a publish within 2 s throughout; the server
        grows by less than 40 MiB.
        """
        raiseFileLimit(4096)
        server = self.startServer("--app", "hub")
        keys = os.path.join(self.cwd, "txws-dev-keys.json")
        baseline = server.rssKiB()
        self.assertHeadsRefused(server.port, b"/", b"POST /publish HTTP/1.1")
        opened = time.monotonic()
        slow = openSockets(server.port, 100, first=b"G")
        short = openSockets(server.port, 100, first=(
            b"POST /publish HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n{\"channel\""))
        self.addCleanup(closeAll, slow + short)
        subscriber = WebSocket(server.port, "/ws?channel=news")
        self.addCleanup(subscriber.close)
        self.assertEqual(json.loads(subscriber.receive().payload)["type"], "subscribed")
        worst = 0.0
        answers: dict[socket.socket, bytes] = {}
        n = 0
        while time.monotonic() - opened < 13.5 and len(answers) < 200:
            for sock in slow:
                if sock not in answers:
                    with contextlib.suppress(OSError):
                        sock.send(b"E")
            sent = time.monotonic()
            status, _ = publish(server.port, keys, "news", {"n": n})
            self.assertEqual(status, 200)
            message = json.loads(subscriber.receive().payload)
            self.assertEqual((message["type"], message["data"]), ("message", {"n": n}))
            worst = max(worst, time.monotonic() - sent)
            n += 1
            # Each timer started when the server read a first byte, sent
            # after opened: never earlier than 10 s after it.
            self.collectAnswers(slow + short, answers, opened, 9.9)
        elapsed = self.assertAll408(answers, 200, opened, 13.5)
        self.assertLess(worst, GOOD_CLIENT_SECONDS)
        rss = self.assertRSSBelow(server, baseline, 40 * MiB)
        record("hub HTTP: oversized heads, slowloris, short bodies", status414=1, status431=2,
               slow=100, shortBodies=100, all408WithinSeconds=round(elapsed, 2),
               worstPublishToSubscriberSeconds=round(worst, 3),
               rssGrowthMiB=round((rss - baseline) / MiB, 1))


class FrameAbuseTests(AbuseCase):
    """
    Attacks after the handshake, on C{--app echo}.
    """

    def test_absurdLengths(self) -> None:
        """
        A frame announcing 2^63 bytes is a protocol error (1002: the top
        bit must be 0); 2^63 - 1 bytes is over the 1 MiB frame limit (1009);
        50 connections announcing 2^62 bytes each are closed with 1009
        without the server allocating for them.
        """
        server = self.startServer("--app", "echo")
        baseline = server.rssKiB()
        top = WebSocket(server.port)
        top.sock.sendall(WebSocket.frame(2, b"", declaredLength=1 << 63)[:10] + b"\0" * 4)
        self.assertEqual(top.closeCode(), 1002)
        big = WebSocket(server.port)
        big.sock.sendall(WebSocket.frame(2, b"", declaredLength=(1 << 63) - 1))
        self.assertEqual(big.closeCode(), 1009)
        many = [WebSocket(server.port) for _ in range(50)]
        for client in many:
            client.sock.sendall(WebSocket.frame(2, b"x" * 16, declaredLength=1 << 62))
        codes = {client.closeCode() for client in many}
        self.assertEqual(codes, {1009})
        latency = self.assertGoodClient(server)
        rss = self.assertRSSBelow(server, baseline, 10 * MiB)
        for client in [top, big, *many]:
            client.close()
        record("declared lengths 2^63, 2^63-1, 50 x 2^62 (echo)", close2to63=1002,
               close2to63minus1=1009, close2to62=1009, echoSeconds=round(latency, 3),
               rssGrowthMiB=round((rss - baseline) / MiB, 1))

    def floodWithoutReading(self, server: Server, frame: bytes, seconds: float
                            ) -> tuple[int, socket.socket]:
        """
        Send C{frame} over and over on a new WebSocket that never reads,
        until the server stops reading (nothing more can be sent for 1 s) or
        C{seconds} pass.

        @return: Bytes sent, and the socket.
        """
        client = WebSocket(server.port, receiveBuffer=65536)
        sock = client.sock
        sock.setblocking(False)
        data = frame * max(1, 65536 // len(frame))
        pending = memoryview(data)
        sent = 0
        lastProgress = time.monotonic()
        deadline = lastProgress + seconds
        while time.monotonic() < deadline and time.monotonic() - lastProgress < 1:
            try:
                # Partial sends resume where they stopped: the stream stays
                # whole frames, so the server sees a flood, not garbage.
                count = sock.send(pending)
                sent += count
                pending = pending[count:] or memoryview(data)
                lastProgress = time.monotonic()
            except BlockingIOError:
                readable([], 0)
                time.sleep(0.01)
            except OSError:
                break
        return sent, sock

    def test_pingFloodWithoutReading(self) -> None:
        """
        A client sending pings without reading the pongs: the server stops
        reading once its pongs back up, so the client can push less than
        32 MiB in 10 s, the server grows by less than 40 MiB, and a
        well-behaved client echoes within 2 s meanwhile.
        """
        server = self.startServer("--app", "echo")
        baseline = server.rssKiB()
        sent, sock = self.floodWithoutReading(
            server, WebSocket.frame(9, b"p" * 125), seconds=10)
        self.addCleanup(sock.close)
        latency = self.assertGoodClient(server)
        rss = self.assertRSSBelow(server, baseline, 40 * MiB)
        self.assertLess(sent, 32 * 1024 * 1024)
        self.assertTrue(server.running())
        self.assertEqual(server.logged("close code 1002"), 0, "the flood was not whole frames")
        record("ping flood without reading (echo)", bytesAcceptedMiB=round(sent / 2**20, 2),
               echoSeconds=round(latency, 3), rssGrowthMiB=round((rss - baseline) / MiB, 1))

    def test_neverReadsWhileEchoed(self) -> None:
        """
        A client sending 256 KiB messages to the echo server and never
        reading the echoes: back-pressure stops the server from reading, so
        the client can push less than 32 MiB, the server grows by less than
        80 MiB, and a well-behaved client echoes within 2 s meanwhile.
        """
        server = self.startServer("--app", "echo")
        baseline = server.rssKiB()
        sent, sock = self.floodWithoutReading(
            server, WebSocket.frame(2, b"e" * 256 * 1024), seconds=10)
        self.addCleanup(sock.close)
        latency = self.assertGoodClient(server)
        rss = self.assertRSSBelow(server, baseline, 80 * MiB)
        self.assertLess(sent, 32 * 1024 * 1024)
        self.assertEqual(server.logged("close code 1002"), 0, "the flood was not whole frames")
        record("never reads while echoed (echo)", bytesAcceptedMiB=round(sent / 2**20, 2),
               echoSeconds=round(latency, 3), rssGrowthMiB=round((rss - baseline) / MiB, 1))


class HubSubscriberAbuseTests(AbuseCase):
    """
    The hub broadcasting to a subscriber that never reads.
    """

    def test_slowSubscriberEvicted(self) -> None:
        """
        With C{--max-subscriber-buffer 262144}, a subscriber that never
        reads is evicted with 4008 while 16 KiB messages are published; a
        reading subscriber on the same channel gets every message, each
        within 2 s; the server grows by less than 40 MiB.
        """
        server = self.startServer("--app", "hub", "--max-subscriber-buffer", "262144")
        keys = os.path.join(self.cwd, "txws-dev-keys.json")
        baseline = server.rssKiB()
        lazy = WebSocket(server.port, "/ws?channel=news", receiveBuffer=4096)
        self.addCleanup(lazy.close)
        good = WebSocket(server.port, "/ws?channel=news")
        self.addCleanup(good.close)
        self.assertEqual(json.loads(good.receive().payload)["type"], "subscribed")
        publisher = socket.create_connection((HOST, server.port), 5)
        self.addCleanup(publisher.close)
        blob = "x" * 16384
        worst = 0.0
        evictedAfter = None
        for n in range(400):
            started = time.monotonic()
            status, body = publish(server.port, keys, "news", {"n": n, "blob": blob},
                                   sock=publisher)
            self.assertEqual(status, 200, body)
            message = json.loads(good.receive().payload)
            self.assertEqual(message["data"]["n"], n)
            worst = max(worst, time.monotonic() - started)
            if evictedAfter is None and json.loads(body)["delivered"] == 1:
                evictedAfter = n
                break
        self.assertIsNotNone(evictedAfter)
        self.assertEqual(lazy.closeCode(timeout=10), 4008)
        self.assertLess(worst, GOOD_CLIENT_SECONDS)
        rss = self.assertRSSBelow(server, baseline, 40 * MiB)
        record("hub: subscriber that never reads", maxSubscriberBuffer=262144,
               messageBytes=16384, evictedAfterMessages=evictedAfter, closeCode=4008,
               worstPublishToSubscriberSeconds=round(worst, 3),
               rssGrowthMiB=round((rss - baseline) / MiB, 1))
