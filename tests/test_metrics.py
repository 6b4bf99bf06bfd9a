"""
Tests for L{txws.metrics}: what a tracked factory's connections count,
read back through the Prometheus text exposition as a scraper reads it
(C{docs/metrics.md} lists the metrics).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any, Optional

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.hubsupport import ROOT, childEnvironment
from tests.support import (
    acceptFor,
    clientFactory,
    clientFrame,
    closeFrame,
    connectServer,
    lostCleanly,
    serverFactory,
    serverFrame,
    upgradeRequest,
)
from tests.test_backlog import PausingTransport, drainAll
from tests.test_reassembly import deflated
from tests.typedtrial import SynchronousTestCase
from txws.apps.echo import EchoServerProtocol
from txws.metrics import OTHER_APPLICATION_CODES, WebSocketMetrics, _Tally
from txws.server import ConnectionDeny, WebSocketServerProtocol

#: A client's permessage-deflate offer (RFC 7692), as a header line.
DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"

#: Samples: (sample name, sorted labels) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(registry: CollectorRegistry) -> Samples:
    """
    Render the registry as a scrape would and parse it back.

    @return: every sample, keyed by its name and labels.
    """
    return parseScrape(generate_latest(registry).decode("utf-8"))


def parseScrape(text: str) -> Samples:
    """
    @param text: a scrape's body (the Prometheus text format).
    @return: every sample, keyed by its name and labels.
    """
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """
    @return: the value of one sample; the test fails if it is absent.
    """
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"no sample {key}; have {sorted(samples)}"
    return samples[key]


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    """
    @return: the samples of one name, keyed by the value of one label.
    """
    return {dict(labels)[label]: v for (n, labels), v in samples.items() if n == name}


class Tracked:
    """
    A server factory on a L{Clock}, tracked by a L{WebSocketMetrics} on a
    registry of its own.
    """

    def __init__(
        self,
        protocolClass: type[WebSocketServerProtocol] = EchoServerProtocol,
        app: str = "test",
        closeCodes: tuple[int, ...] = (),
        **options: Any,
    ) -> None:
        self.clock = Clock()
        self.registry = CollectorRegistry()
        self.metrics = WebSocketMetrics(self.registry)
        self.factory = serverFactory(self.clock, protocolClass, **options)
        self.metrics.track(self.factory, app, closeCodes)
        self.app = app
        self._port = 50000

    def connect(
        self, transport: Optional[StringTransport] = None
    ) -> tuple[WebSocketServerProtocol, StringTransport]:
        self._port += 1
        return connectServer(self.factory, self._port, transport)

    def open(
        self, transport: Optional[StringTransport] = None
    ) -> tuple[WebSocketServerProtocol, StringTransport]:
        protocol, transport = self.connect(transport)
        protocol.dataReceived(upgradeRequest())
        assert transport.value().startswith(b"HTTP/1.1 101 "), transport.value()
        transport.clear()
        return protocol, transport

    def value(self, name: str, **labels: str) -> float:
        return value(scrape(self.registry), name, app=self.app, **labels)

    def labelled(self, name: str, label: str) -> dict[str, float]:
        return labelled(scrape(self.registry), name, label)


class ConnectionCountTests(SynchronousTestCase):
    """
    Connections alive by state, made, and opened.
    """

    def test_liveByState(self) -> None:
        """
        A connection in its handshake is C{connecting}, an open one
        C{open}, one whose Close was sent C{closing}; a gone one is none.
        """
        t = Tracked()
        t.connect()
        t.open()
        closing, _ = t.open()
        closing.sendClose(1000)
        gone, _ = t.open()
        lostCleanly(gone)
        self.assertEqual(
            t.labelled("txws_live_connections", "state"),
            {"connecting": 1, "open": 1, "closing": 1},
        )
        self.assertEqual(t.value("txws_connections_total"), 4)
        self.assertEqual(t.value("txws_connections_opened_total"), 3)

    def test_openedStaysCounted(self) -> None:
        """
        Connections opened and gone stay in the total; one that never
        completed its handshake is made but not opened.
        """
        t = Tracked()
        for _ in range(3):
            protocol, _ = t.open()
            lostCleanly(protocol)
        protocol, _ = t.connect()
        lostCleanly(protocol)
        self.assertEqual(t.value("txws_connections_total"), 4)
        self.assertEqual(t.value("txws_connections_opened_total"), 3)
        self.assertEqual(sum(t.labelled("txws_live_connections", "state").values()), 0)

    def test_sharedLabelSums(self) -> None:
        """
        Two factories tracked with the same C{app} are summed; another
        label is apart.
        """
        t = Tracked(app="chat")
        second = serverFactory(Clock(), EchoServerProtocol)
        t.metrics.track(second, "chat")
        third = serverFactory(Clock(), EchoServerProtocol)
        t.metrics.track(third, "other")
        t.open()
        for factory in (second, third):
            protocol, _ = connectServer(factory)
            protocol.dataReceived(upgradeRequest())
        samples = scrape(t.registry)
        self.assertEqual(value(samples, "txws_connections_opened_total", app="chat"), 2)
        self.assertEqual(value(samples, "txws_connections_opened_total", app="other"), 1)

    def test_trackOnce(self) -> None:
        """
        A factory is tracked once, and before it has connections.
        """
        t = Tracked()
        self.assertRaises(ValueError, t.metrics.track, t.factory)
        busy = serverFactory(Clock(), EchoServerProtocol)
        connectServer(busy)
        self.assertRaises(ValueError, t.metrics.track, busy)

    def test_onePerRegistry(self) -> None:
        """
        A second collector of the same names on one registry is refused.
        """
        t = Tracked()
        self.assertRaises(ValueError, WebSocketMetrics, t.registry)


class MessageCountTests(SynchronousTestCase):
    """
    Messages and their payload bytes, each way.
    """

    def test_echo(self) -> None:
        """
        Every message an echo receives and sends is counted with its
        payload size, and stays counted once the connection is gone.
        """
        t = Tracked()
        protocol, _ = t.open()
        sizes = [0, 5, 200, 70000]
        for size in sizes:
            protocol.dataReceived(clientFrame(0x2, b"x" * size))
        protocol.dataReceived(clientFrame(0x1, "é".encode()))
        for name, expected in [
            ("txws_messages_received_total", 5),
            ("txws_messages_received_bytes_total", sum(sizes) + 2),
            ("txws_messages_sent_total", 5),
            ("txws_messages_sent_bytes_total", sum(sizes) + 2),
        ]:
            self.assertEqual(t.value(name), expected, name)
        protocol.dataReceived(closeFrame(1000))
        lostCleanly(protocol)
        self.assertEqual(t.value("txws_messages_received_total"), 5)
        self.assertEqual(t.value("txws_messages_sent_bytes_total"), sum(sizes) + 2)

    def test_fragmentedIn(self) -> None:
        """
        A message in three frames counts once, with its whole size.
        """
        t = Tracked(protocolClass=WebSocketServerProtocol)
        protocol, _ = t.open()
        protocol.dataReceived(
            clientFrame(0x1, b"ab", fin=False)
            + clientFrame(0x0, b"cd", fin=False)
            + clientFrame(0x0, b"e")
        )
        self.assertEqual(t.value("txws_messages_received_total"), 1)
        self.assertEqual(t.value("txws_messages_received_bytes_total"), 5)

    def test_everySendPath(self) -> None:
        """
        C{sendMessage} (one frame or fragmented), C{sendPreparedMessage}
        and a message sent frame by frame each count one message and its
        payload; control frames count nothing.
        """
        t = Tracked(protocolClass=WebSocketServerProtocol)
        protocol, _ = t.open()
        protocol.sendMessage(b"abc")
        protocol.sendMessage(b"x" * 10, isBinary=True, fragmentSize=3)
        protocol.sendPreparedMessage(t.factory.prepareMessage(b"12345"))
        protocol.beginMessage()
        protocol.sendMessageFrame(b"ab")
        protocol.sendMessageFrame(b"c")
        protocol.endMessage()
        protocol.sendPing(b"p")
        self.assertEqual(t.value("txws_messages_sent_total"), 4)
        self.assertEqual(t.value("txws_messages_sent_bytes_total"), 3 + 10 + 5 + 3)
        self.assertEqual(t.value("txws_messages_received_total"), 0)

    def test_refusedSendNotCounted(self) -> None:
        """
        A send that raises (invalid text) counts nothing.
        """
        t = Tracked(protocolClass=WebSocketServerProtocol)
        protocol, _ = t.open()
        self.assertRaises(ValueError, protocol.sendMessage, b"\xff")
        self.assertEqual(t.value("txws_messages_sent_total"), 0)

    def test_client(self) -> None:
        """
        A client factory is tracked the same way.
        """
        registry = CollectorRegistry()
        metrics = WebSocketMetrics(registry)
        factory = clientFactory()
        metrics.track(factory, "client")
        protocol: Any = factory.buildProtocol(IPv4Address("TCP", "93.184.216.34", 80))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "93.184.216.34", 80))
        protocol.makeConnection(transport)
        protocol.dataReceived(acceptFor(transport.value()))
        protocol.sendMessage(b"hello")
        protocol.dataReceived(serverFrame(0x1, b"hi"))
        samples = scrape(registry)
        self.assertEqual(value(samples, "txws_messages_sent_bytes_total", app="client"), 5)
        self.assertEqual(value(samples, "txws_messages_received_bytes_total", app="client"), 2)
        self.assertEqual(value(samples, "txws_connections_opened_total", app="client"), 1)

    def test_clientRefused(self) -> None:
        """
        A client factory counts the handshakes its servers refused by the
        status they answered; an invalid 101 answer is a connection made
        and never opened, not a refusal.
        """
        registry = CollectorRegistry()
        metrics = WebSocketMetrics(registry)
        factory = clientFactory()
        metrics.track(factory, "client")
        answers = [
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
        ]
        for answer in answers:
            protocol: Any = factory.buildProtocol(IPv4Address("TCP", "93.184.216.34", 80))
            transport = StringTransport(peerAddress=IPv4Address("TCP", "93.184.216.34", 80))
            protocol.makeConnection(transport)
            protocol.dataReceived(answer)
            self.assertTrue(transport.disconnecting)
            protocol.connectionLost(Failure(ConnectionDone()))
        samples = scrape(registry)
        self.assertEqual(
            labelled(samples, "txws_handshakes_refused_total", "status"), {"403": 2, "503": 1}
        )
        self.assertEqual(value(samples, "txws_connections_total", app="client"), 4)
        self.assertEqual(value(samples, "txws_connections_opened_total", app="client"), 0)


class _Denying(WebSocketServerProtocol):
    """
    Refuses every handshake with 404 from C{onConnect}.
    """

    def onConnect(self, request: Any) -> None:
        raise ConnectionDeny(404, "no such room")


class RefusalTests(SynchronousTestCase):
    """
    Handshakes refused by status; frames refused by close code.
    """

    def test_handshakesByStatus(self) -> None:
        """
        Each refusal is counted under the status sent: 400 (no key), 403
        (Origin), 431 (too large), 503 (too many connections); the refused
        connections are made but never opened.
        """
        t = Tracked(
            protocolClass=WebSocketServerProtocol,
            allowedOrigins=("https://good.example",),
            maxConnections=1,
            maxHandshakeSize=512,
        )
        badKey, transport = t.connect()
        badKey.dataReceived(upgradeRequest().replace(b"Sec-WebSocket-Key", b"X-Key"))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "))
        lostCleanly(badKey)
        for _ in range(2):
            protocol, transport = t.connect()
            protocol.dataReceived(upgradeRequest(extra="Origin: https://evil.example\r\n"))
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 403 "))
            lostCleanly(protocol)
        big, transport = t.connect()
        big.dataReceived(upgradeRequest(extra="X-Pad: " + "a" * 600 + "\r\n"))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 431 "))
        lostCleanly(big)
        t.open()
        crowded, transport = t.connect()
        crowded.dataReceived(upgradeRequest())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 503 "), transport.value())
        self.assertEqual(
            t.labelled("txws_handshakes_refused_total", "status"),
            {"400": 1, "403": 2, "431": 1, "503": 1},
        )
        self.assertEqual(t.value("txws_connections_total"), 6)
        self.assertEqual(t.value("txws_connections_opened_total"), 1)

    def test_connectionDeny(self) -> None:
        """
        A refusal from C{onConnect} is counted under its status.
        """
        t = Tracked(protocolClass=_Denying)
        protocol, transport = t.connect()
        protocol.dataReceived(upgradeRequest())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 404 "))
        self.assertEqual(t.labelled("txws_handshakes_refused_total", "status"), {"404": 1})

    def test_framesByCode(self) -> None:
        """
        An unmasked frame (1002), text that is not UTF-8 (1007) and a
        message over the limit (1009) are each counted under their code
        and reason, and the connections as closed with that code.
        """
        t = Tracked(protocolClass=WebSocketServerProtocol, maxMessagePayloadSize=100)
        unmasked, _ = t.open()
        unmasked.dataReceived(serverFrame(0x1, b"hi"))
        badText, _ = t.open()
        badText.dataReceived(clientFrame(0x1, b"\xc3\x28"))
        big, _ = t.open()
        big.dataReceived(clientFrame(0x2, b"x" * 101))
        big2, _ = t.open()
        big2.dataReceived(clientFrame(0x2, b"x" * 50, fin=False) + clientFrame(0x0, b"x" * 51))
        samples = scrape(t.registry)
        refused = {
            (dict(labels)["code"], dict(labels)["reason"]): v
            for (name, labels), v in samples.items()
            if name == "txws_frames_refused_total"
        }
        self.assertEqual(
            refused,
            {("1002", "protocol_error"): 1, ("1007", "invalid_payload"): 1,
             ("1009", "message_too_big"): 2},
        )
        for protocol in (unmasked, badText, big, big2):
            lostCleanly(protocol)
        self.assertEqual(
            t.labelled("txws_connections_closed_total", "code"),
            {"1002": 1, "1007": 1, "1009": 2},
        )


class CloseCodeTests(SynchronousTestCase):
    """
    Connections that opened are counted once gone, by close code.
    """

    def test_codes(self) -> None:
        """
        The peer's code when it closed first (1000), ours when we did
        (1001, even unanswered), 1005 for a Close without a code, 1006 for
        TCP lost without one.
        """
        t = Tracked(protocolClass=WebSocketServerProtocol)
        peer, _ = t.open()
        peer.dataReceived(closeFrame(1000))
        ours, _ = t.open()
        ours.sendClose(1001)
        empty, _ = t.open()
        empty.dataReceived(closeFrame(None))
        dropped, _ = t.open()
        for protocol in (peer, ours, empty, dropped):
            lostCleanly(protocol)
        self.assertEqual(
            t.labelled("txws_connections_closed_total", "code"),
            {"1000": 1, "1001": 1, "1005": 1, "1006": 1},
        )

    def test_applicationCodes(self) -> None:
        """
        Application codes given to C{track} keep their own label, whoever
        sent them; the others are counted together.
        """
        t = Tracked(protocolClass=WebSocketServerProtocol, closeCodes=(4321,))
        for code in (4321, 4000, 3999):
            protocol, _ = t.open()
            protocol.dataReceived(closeFrame(code))
            lostCleanly(protocol)
        ours, _ = t.open()
        ours.sendClose(4321)
        lostCleanly(ours)
        self.assertEqual(
            t.labelled("txws_connections_closed_total", "code"),
            {"4321": 2, OTHER_APPLICATION_CODES: 2},
        )


class BufferedTests(SynchronousTestCase):
    """
    Bytes queued for peers that do not read.
    """

    def test_buffered(self) -> None:
        """
        The gauge is the sum of C{bufferedAmount} over live connections,
        and goes back to 0 when the peer reads.
        """
        t = Tracked(protocolClass=WebSocketServerProtocol, writeBufferSize=1024)
        slow, transport = t.open(PausingTransport())
        assert isinstance(transport, PausingTransport)
        transport.bufferSize = 1024
        for _ in range(10):
            slow.sendMessage(b"x" * 500, isBinary=True)
        self.assertGreater(slow.bufferedAmount, 0)
        other, otherTransport = t.open(PausingTransport())
        assert isinstance(otherTransport, PausingTransport)
        otherTransport.bufferSize = 1024
        for _ in range(4):
            other.sendMessage(b"y" * 700, isBinary=True)
        self.assertGreater(other.bufferedAmount, 0)
        self.assertEqual(
            t.value("txws_buffered_bytes"), slow.bufferedAmount + other.bufferedAmount
        )
        drainAll(transport)
        drainAll(otherTransport)
        self.assertEqual(slow.bufferedAmount, 0)
        self.assertEqual(t.value("txws_buffered_bytes"), 0)


class ConcurrentScrapeTests(SynchronousTestCase):
    """
    C{MetricsResource} scrapes from a thread of the reactor's pool while
    connections close in the reactor's thread.
    """

    def test_scrapeDuringClose(self) -> None:
        """
        A scrape that starts while a closing connection's counts are being
        folded into the totals waits for the connection to leave the live
        set: it counts the connection's message once, not twice.
        """
        t = Tracked()
        protocol, _ = t.open()
        protocol.dataReceived(clientFrame(0x1, b"m"))
        seen: list[float] = []
        threads: list[threading.Thread] = []
        fold = _Tally.fold

        def foldThenScrape(tally: _Tally, connection: Any) -> None:
            fold(tally, connection)
            thread = threading.Thread(
                target=lambda: seen.append(t.value("txws_messages_received_total"))
            )
            threads.append(thread)
            thread.start()
            # Long enough for an unsynchronized scrape to finish here.
            thread.join(0.2)

        self.patch(_Tally, "fold", foldThenScrape)
        lostCleanly(protocol)
        threads[0].join(30)
        self.assertEqual(seen, [1])
        self.assertEqual(t.value("txws_messages_received_total"), 1)


class WithoutPrometheusTests(SynchronousTestCase):
    """
    C{prometheus-client} is optional.
    """

    def test_libraryWithout(self) -> None:
        """
        Without it, txws, the hub and the plugin import and an echo
        connection works; C{txws.metrics} says what to install.
        """
        program = """
import sys
sys.modules["prometheus_client"] = None
import txws, txws.hub, txws.tap
from twisted.internet.task import Clock
from tests.support import connectServer, upgradeRequest
from txws.apps.echo import echoFactory
protocol, transport = connectServer(echoFactory(reactor=Clock()))
protocol.dataReceived(upgradeRequest())
assert transport.value().startswith(b"HTTP/1.1 101 ")
try:
    import txws.metrics
except ImportError as e:
    print(e)
"""
        result = subprocess.run(
            [sys.executable, "-c", program], cwd=ROOT, env=childEnvironment(),
            capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("pip install 'txws[metrics]'", result.stdout)


class CompressedMessageTests(SynchronousTestCase):
    """
    With permessage-deflate, the bytes counted are the messages' payloads,
    not what went over the wire compressed.
    """

    def test_uncompressedSizes(self) -> None:
        """
        A compressed message received and echoed compressed counts its
        inflated size both ways.
        """
        t = Tracked()
        protocol, transport = t.connect()
        protocol.dataReceived(upgradeRequest(extra=DEFLATE_OFFER))
        self.assertIn(b"permessage-deflate", transport.value())
        transport.clear()
        payload = b'{"id": 1, "name": "txws"}' * 40
        wire = deflated(payload, 12)
        self.assertLess(len(wire), len(payload) // 4)
        protocol.dataReceived(clientFrame(0x1, wire, rsv=0x40))
        self.assertLess(len(transport.value()), len(payload) // 4)
        self.assertEqual(t.value("txws_messages_received_bytes_total"), len(payload))
        self.assertEqual(t.value("txws_messages_sent_bytes_total"), len(payload))
