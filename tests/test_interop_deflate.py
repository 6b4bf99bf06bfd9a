"""
permessage-deflate (RFC 7692) between txws and the C{websockets} library
over loopback, both directions: the C{websockets} client (a subprocess,
C{tests/peers/websockets_client.py}) against an in-process txws server under
several negotiation policies and against the real C{twistd -n txws --app
echo --deflate}, and the txws client against a C{websockets} server
(C{tests/peers/websockets_server.py}) configured through its
C{ServerPerMessageDeflateFactory}.  Every negotiated
C{Sec-WebSocket-Extensions} answer is checked exactly, every echo byte for
byte, and the RSV1 frames counted on both sides prove that compression
really happened.  The Autobahn peers are in L{tests.test_interop_deflate_autobahn}.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from tests.abusesupport import Server
from tests.peers.harness import (
    RecordingServerFactory,
    RecordingServerProtocol,
    bounded,
    dropConnections,
    listenedPort,
    reactor,
    runPeer,
)
from tests.peers.negotiation import POLICIES, declineAll, expectedAnswer
from tests.peers.payloads import (
    DEFLATE_WORKLOAD,
    LIGHT_DEFLATE_WORKLOAD,
    intactResults,
    workloadMessages,
)
from tests.typedtrial import TestCase

MiB = 1024 * 1024

def offerParameters() -> list[dict[str, Any]]:
    """
    Every offer C{websockets}' C{ClientPerMessageDeflateFactory} can make:
    both context takeover flags, C{server_max_window_bits} absent or 8-15,
    C{client_max_window_bits} absent, without value, or 9-15 (8 is refused
    by websockets itself, as zlib cannot compress with it).

    @return: the factory arguments, 2 x 2 x 9 x 9 = 324 of them.
    """
    return [
        {
            "server_no_context_takeover": snct,
            "client_no_context_takeover": cnct,
            "server_max_window_bits": smwb,
            "client_max_window_bits": cmwb,
        }
        for snct, cnct, smwb, cmwb in itertools.product(
            (False, True), (False, True), (None, *range(8, 16)), (None, True, *range(9, 16))
        )
    ]


class CountingServerProtocol(RecordingServerProtocol):
    """
    The recording echo server, counting the bytes it receives on the wire
    (handshake included) in its factory's C{wireBytes}.
    """

    factory: CountingServerFactory

    def dataReceived(self, data: bytes) -> None:
        """
        Count, then handle the bytes.
        """
        self.factory.wireBytes += len(data)
        super().dataReceived(data)

    def onOpen(self) -> None:
        """
        Keep what was negotiated, then report the open connection.
        """
        self.factory.negotiated.append(
            [e.extensionString for e in self.websocket_extensions_in_use]
        )
        super().onOpen()


class CountingServerFactory(RecordingServerFactory):
    """
    A L{RecordingServerFactory} whose connections count their wire bytes.

    @ivar wireBytes: bytes received by all its connections.
    @ivar negotiated: per connection, the extension strings in use.
    """

    protocol = CountingServerProtocol

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wireBytes = 0
        self.negotiated: list[list[str]] = []


class WebSocketsClientTests(TestCase):
    """
    The C{websockets} client against an in-process txws server (RFC 7692
    sections 5, 6 and 7: negotiation, compressed frames, context takeover).
    """

    def setUp(self) -> None:
        self.factory = CountingServerFactory(reactor=reactor)
        self.addCleanup(dropConnections, self.factory)
        port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.url = f"ws://127.0.0.1:{listenedPort(port)}/echo"

    def runClient(self, **spec: Any) -> Deferred[dict[str, Any]]:
        """
        Run the C{websockets_client} peer against our server.
        """
        return bounded(
            runPeer(self, "websockets_client", {"url": self.url, **spec}), 120
        )

    async def runMatrix(self, name: str) -> None:
        """
        Every offer of L{offerParameters} against the policy C{name}: the
        answer is exactly L{expectedAnswer}, websockets accepts it (except
        for the C{client_max_window_bits=8} it cannot use), and the light
        workload echoes intact, compressed both ways when negotiated.
        """
        policy = POLICIES[name]
        self.factory.setProtocolOptions(perMessageCompressionAccept=policy)
        offers = offerParameters()
        report = await self.runClient(
            scenario="deflateEcho", workload=LIGHT_DEFLATE_WORKLOAD,
            runs=[{"deflate": offer} for offer in offers],
        )
        # websockets compresses every message, the empty one too; txws
        # those of at least its threshold (64 bytes).
        messages = sum(count for _, _, count in LIGHT_DEFLATE_WORKLOAD)
        compressible = sum(count for _, size, count in LIGHT_DEFLATE_WORKLOAD if size >= 64)
        failures: list[tuple[dict[str, Any], object, dict[str, Any]]] = []
        for offer, run in zip(offers, report["runs"], strict=True):
            expected = expectedAnswer(policy, offer)
            if expected is not None and "client_max_window_bits=8" in expected:
                if "('client_max_window_bits', '8')" not in run.get("exception", ""):
                    failures.append((offer, "websockets accepted 8 bits?", run))
                continue
            got = (
                run.get("extensions"), run.get("results"),
                run.get("compressedSent"), run.get("compressedReceived"),
            )
            want = (
                expected, intactResults(LIGHT_DEFLATE_WORKLOAD),
                messages if expected else 0, compressible if expected else 0,
            )
            if got != want:
                failures.append((offer, want, run))
        self.assertEqual(failures, [], f"{len(failures)} of {len(offers)} offers failed")
        # Our end agrees, for every connection (those websockets then
        # refused included: we had answered).
        self.assertEqual(
            self.factory.negotiated,
            [[a] if a else [] for a in (expectedAnswer(policy, o) for o in offers)],
        )

    async def test_matrixDefaultPolicy(self) -> None:
        """
        Every websockets offer against txws's default policy (12 window
        bits both ways, context takeover).
        """
        await self.runMatrix("default")

    async def test_matrixHubPolicy(self) -> None:
        """
        Every websockets offer against the hub's policy (no context takeover
        either way).
        """
        await self.runMatrix("hub")

    async def test_matrixServerWindow9(self) -> None:
        """
        Every websockets offer against a server compressing with 9 window
        bits.
        """
        await self.runMatrix("serverWindow9")

    async def test_matrixServerWindow15(self) -> None:
        """
        Every websockets offer against a server compressing with 15 window
        bits and memory level 9.
        """
        await self.runMatrix("serverWindow15")

    async def test_matrixClientWindowUnlimited(self) -> None:
        """
        Every websockets offer against a server that does not limit the
        client's window (C{clientMaxWindowBits=0}).
        """
        await self.runMatrix("clientWindowUnlimited")

    async def test_matrixClientWindow8(self) -> None:
        """
        Every websockets offer against a server asking for an 8-bit client
        window: RFC 7692 allows it, but websockets cannot compress with 8
        bits (zlib refuses them) and fails the connection on such an answer;
        offers without C{client_max_window_bits} are not asked and work.
        """
        await self.runMatrix("clientWindow8")

    async def test_matrixClientWindow15(self) -> None:
        """
        Every websockets offer against a server allowing the client 15 bits.
        """
        await self.runMatrix("clientWindow15")

    async def test_matrixRequireClientWindow(self) -> None:
        """
        Every websockets offer against a server that declines offers without
        C{client_max_window_bits} (those connections run uncompressed).
        """
        await self.runMatrix("requireClientWindow")

    async def test_declinedOffers(self) -> None:
        """
        A policy that declines: no C{Sec-WebSocket-Extensions} in the
        answer, no RSV1 frame either way, and the echoes intact.
        """
        self.factory.setProtocolOptions(perMessageCompressionAccept=declineAll)
        report = await self.runClient(
            scenario="deflateEcho", workload=LIGHT_DEFLATE_WORKLOAD,
            runs=[{"deflate": offer} for offer in offerParameters()[::7]],
        )
        self.assertEqual(
            {json.dumps([r.get("extensions"), r.get("results"), r.get("compressedSent"),
                         r.get("compressedReceived")]) for r in report["runs"]},
            {json.dumps([None, intactResults(LIGHT_DEFLATE_WORKLOAD), 0, 0])},
        )
        self.assertEqual(self.factory.negotiated, [[]] * len(report["runs"]))

    async def runHeavy(self, fragments: int) -> None:
        """
        The full workload (L{DEFLATE_WORKLOAD}) from a selection of offers
        (websockets' default, no context takeover both ways, the smallest
        and largest windows, memory levels 1 and 9) against the default and
        the hub's policy; txws receives every message exactly as sent.
        """
        offers: list[dict[str, Any]] = [
            {"compress_settings": {"memLevel": 5}},
            {"server_no_context_takeover": True, "client_no_context_takeover": True},
            {"server_max_window_bits": 8, "client_max_window_bits": 9,
             "compress_settings": {"memLevel": 1}},
            {"server_max_window_bits": 15, "client_max_window_bits": 15,
             "compress_settings": {"memLevel": 9}},
            {"client_max_window_bits": None},
        ]
        sent = [m for item in DEFLATE_WORKLOAD for m in workloadMessages(*item)]
        # txws leaves the messages under its threshold uncompressed.
        compressible = sum(len(payload) >= 64 for payload, _ in sent)
        for name in ("default", "hub"):
            policy = POLICIES[name]
            self.factory.setProtocolOptions(perMessageCompressionAccept=policy)
            del self.factory.messages[:]
            report = await self.runClient(
                scenario="deflateEcho", workload=DEFLATE_WORKLOAD, fragments=fragments,
                runs=[{"deflate": offer} for offer in offers],
            )
            for offer, run in zip(offers, report["runs"], strict=True):
                full = {"server_no_context_takeover": False, "client_no_context_takeover": False,
                        "server_max_window_bits": None, "client_max_window_bits": True, **offer}
                self.assertEqual(
                    (run.get("extensions"), run.get("results")),
                    (expectedAnswer(policy, full), intactResults(DEFLATE_WORKLOAD)),
                    (name, offer, run),
                )
                self.assertEqual(
                    (run["compressedSent"], run["compressedReceived"]),
                    (len(sent), compressible), run,
                )
            self.assertTrue(
                self.factory.messages == sent * len(offers),
                f"{name}: txws did not receive the messages exactly as sent",
            )

    async def test_heavyWorkload(self) -> None:
        """
        The full workload, each message in one frame.
        """
        await self.runHeavy(fragments=0)

    async def test_heavyWorkloadFragmented(self) -> None:
        """
        The full workload, each message in 7 frames (websockets compresses
        each frame, RSV1 on the first only).
        """
        await self.runHeavy(fragments=7)

    async def test_compressionOnTheWire(self) -> None:
        """
        Eight different 64 KiB JSON messages reach the server in less than a
        fifth of their size when compressed, and in more than their size
        without compression.
        """
        workload = [("json", 65536, 8)]
        payload = 8 * 65536
        report = await self.runClient(scenario="deflateEcho", workload=workload)
        self.assertEqual(report.get("results"), intactResults(workload), report)
        compressed = self.factory.wireBytes
        self.assertLess(compressed, payload // 5)
        self.factory.wireBytes = 0
        report = await self.runClient(scenario="deflateEcho", workload=workload, deflate=None)
        self.assertEqual(
            (report.get("results"), report["extensions"]), (intactResults(workload), None)
        )
        self.assertGreater(self.factory.wireBytes, payload)

    async def test_bomb(self) -> None:
        """
        A 4 MiB message that compresses to a few KiB, sent whole and in 64
        fragments, makes the server close with 1009 before delivering it.
        """
        for fragments in (0, 64):
            report = await self.runClient(scenario="tooBig", size=4 * MiB, fragments=fragments)
            self.assertEqual(
                report.get("extensions"),
                "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
            )
            self.assertEqual((report.get("rcvd") or [None])[0], 1009, report)
            self.assertLess(self.factory.wireBytes, 64 * 1024)
            closed = await self.factory.nextClose()
            self.assertEqual((closed.wasClean, closed.code), (False, 1006))
        self.assertEqual(self.factory.messages, [])


#: Offers the real server is tried with, completed with websockets'
#: defaults: its default offer, no context takeover both ways, the smallest
#: windows, the largest ones with memory level 9.
PROCESS_OFFERS: list[dict[str, Any]] = [
    {"server_no_context_takeover": False, "client_no_context_takeover": False,
     "server_max_window_bits": None, "client_max_window_bits": True, **extra}
    for extra in (
        {"compress_settings": {"memLevel": 5}},
        {"server_no_context_takeover": True, "client_no_context_takeover": True},
        {"server_max_window_bits": 8, "client_max_window_bits": 9},
        {"server_max_window_bits": 15, "client_max_window_bits": 15,
         "compress_settings": {"memLevel": 9}},
    )
]


class EchoProcessTests(TestCase):
    """
    The C{websockets} client against the real C{twistd -n txws --app echo}
    process, with C{--deflate} and C{--no-deflate}.
    """

    def startServer(self, *arguments: str) -> Server:
        """
        Start C{twistd -n txws --app echo ARGUMENTS} in a directory of its
        own; the test's cleanup kills it.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        server = Server(["--app", "echo", *arguments], directory)
        self.addCleanup(server.stop)
        return server

    def runClient(self, server: Server, **spec: Any) -> Deferred[dict[str, Any]]:
        """
        Run the C{websockets_client} peer against the server's C{/ws}.
        """
        url = f"ws://127.0.0.1:{server.port}/ws"
        return bounded(runPeer(self, "websockets_client", {"url": url, **spec}), 120)

    async def test_deflate(self) -> None:
        """
        With C{--deflate}, each offer gets the answer of the default policy
        and the full workload, whole and in 5 fragments, comes back intact
        and compressed both ways.
        """
        server = await deferToThread(self.startServer, "--deflate")
        runs: list[dict[str, Any]] = [
            {"deflate": offer, "fragments": fragments}
            for offer in PROCESS_OFFERS for fragments in (0, 5)
        ]
        report = await self.runClient(
            server, scenario="deflateEcho", workload=DEFLATE_WORKLOAD, runs=runs
        )
        sent = [m for item in DEFLATE_WORKLOAD for m in workloadMessages(*item)]
        compressible = sum(len(payload) >= 64 for payload, _ in sent)
        for run, got in zip(runs, report["runs"], strict=True):
            self.assertEqual(
                (got.get("extensions"), got.get("results"), got.get("compressedSent"),
                 got.get("compressedReceived")),
                (expectedAnswer(POLICIES["default"], run["deflate"]),
                 intactResults(DEFLATE_WORKLOAD), len(sent), compressible),
                (run, got),
            )
        self.assertTrue(server.running())

    async def test_noDeflate(self) -> None:
        """
        With C{--no-deflate}, websockets' offer is declined: no extension,
        nothing compressed, the echoes intact.
        """
        server = await deferToThread(self.startServer, "--no-deflate")
        report = await self.runClient(
            server, scenario="deflateEcho", workload=LIGHT_DEFLATE_WORKLOAD
        )
        self.assertEqual(
            (report.get("extensions"), report.get("results"), report.get("compressedSent"),
             report.get("compressedReceived")),
            (None, intactResults(LIGHT_DEFLATE_WORKLOAD), 0, 0),
            report,
        )

    async def test_bombMemory(self) -> None:
        """
        A 4 MiB message compressed to a few KiB, whole and in 256
        fragments, is refused with 1009, and the server's peak resident
        memory grows by less than 2 MiB beyond what echoing a 1 MiB message
        took (an inflater that held the whole bomb would need 4 MiB more).
        """
        server = await deferToThread(self.startServer, "--deflate")
        warm = await self.runClient(server, scenario="echo", sizes=[MiB])
        self.assertEqual(warm.get("results"), [["text", MiB, False, True],
                                               ["binary", MiB, True, True]], warm)
        baseline = server.rssKiB("VmHWM")
        for fragments in (0, 256):
            report = await self.runClient(
                server, scenario="tooBig", size=4 * MiB, fragments=fragments
            )
            self.assertEqual((report.get("rcvd") or [None])[0], 1009, report)
            self.assertEqual(report["compressedSent"], 1)
        growth = server.rssKiB("VmHWM") - baseline
        self.assertLess(growth, 2048, f"peak RSS grew by {growth} KiB")
        self.assertTrue(server.running())
