"""
permessage-deflate (RFC 7692) between txws and Autobahn|Python, the engine
of the Autobahn testsuite, re-creating the testsuite's compression
categories (C{autobahntestsuite/case/case12_x_x.py}; the testsuite itself
is Python 2 only): both peers run in this process on the real reactor, over
loopback, in both roles.

  - B{12.x}: the default offer (Autobahn's C{PerMessageDeflateOffer()}) and
    the default acceptance, with the testsuite's message series: sizes from
    16 bytes to 128 KiB, each message the next slice of a data set (so
    every message differs from the last, and context takeover carries
    history over), sent whole and auto-fragmented, every echo checked; on
    three data sets like the testsuite's (JSON text, German prose and an
    8-bit bitmap, both sent as binary).
  - B{13.1-13.7}: the seven pairs of client offers and server acceptance
    functions of C{DEFLATE_PARAMS}, with JSON text, the answer checked
    exactly and the settings both sides took from it.

The testsuite sends 1000 messages per size; here up to 100 per size and at
most 128 KiB per size and kind (so larger sizes send fewer messages, never
fewer than 4), which keeps context takeover exercised across messages and
the module within seconds.  The acceptance functions are the testsuite's,
written once for both class sets: with Autobahn's C{autobahn.websocket.compress}
classes for the Autobahn server, and with txws's for the txws server, as an
Autobahn application ported by changing its imports passes them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from autobahn.websocket import compress as autobahnCompress
from twisted.internet.defer import Deferred

from tests.peers.autobahn_peers import (
    AutobahnEchoServerFactory,
    AutobahnRecorder,
    AutobahnRecorderFactory,
    acceptResponse,
    autobahnSettings,
)
from tests.peers.harness import (
    RecordingClientProtocol,
    RecordingServerFactory,
    bounded,
    dropConnections,
    listenedPort,
    reactor,
)
from tests.peers.negotiation import txwsSettings
from tests.peers.payloads import corpus, slidingMessage
from tests.typedtrial import FailTest, TestCase
from txws import deflate as txwsDeflate
from txws.client import connect
from txws.options import WebSocketOptions

#: The testsuite's payload sizes (C{MSG_SIZES}), with 65535 added (the
#: largest 16-bit frame length).
SIZES = (16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65535, 65536, 131072)

#: The testsuite's auto-fragmented series: C{(size, fragment size)}.
FRAGMENTED = (
    (8192, 256), (16384, 256), (32768, 256), (65536, 256), (131072, 256),
    (131072, 1024), (131072, 4096), (131072, 32768),
)


def countFor(size: int) -> int:
    """
    @return: how many messages of C{size} bytes a series sends: 100, fewer
        for large sizes (at most 128 KiB in all), at least 4.
    """
    return max(4, min(100, 131072 // size))


Accept = Callable[[Sequence[Any]], Any]


def acceptFunctions(module: Any) -> list[Accept]:
    """
    The testsuite's C{accept1} to C{accept7} (13.1-13.7), written against
    C{module}'s C{PerMessageDeflateOffer} and C{PerMessageDeflateOfferAccept}.

    @param module: C{autobahn.websocket.compress} or L{txws.deflate}.
    @return: the seven functions, in order.
    """
    Offer, OfferAccept = module.PerMessageDeflateOffer, module.PerMessageDeflateOfferAccept

    def accept1(offers: Sequence[Any]) -> Any:
        for offer in offers:
            if isinstance(offer, Offer):
                return OfferAccept(offer)
        return None

    def accept2(offers: Sequence[Any]) -> Any:
        for offer in offers:
            if isinstance(offer, Offer) and offer.accept_no_context_takeover:
                return OfferAccept(offer, request_no_context_takeover=True)
        return None

    def withWindow(bits: int, noContext: bool) -> Accept:
        def accept(offers: Sequence[Any]) -> Any:
            for offer in offers:
                if (
                    isinstance(offer, Offer)
                    and offer.accept_max_window_bits
                    and (offer.accept_no_context_takeover or not noContext)
                ):
                    return OfferAccept(
                        offer, request_max_window_bits=bits, request_no_context_takeover=noContext
                    )
            return None

        return accept

    accept3, accept4 = withWindow(9, False), withWindow(15, False)
    accept5, accept6 = withWindow(9, True), withWindow(15, True)

    def accept7(offers: Sequence[Any]) -> Any:
        return accept5(offers) or accept2(offers) or accept1(offers)

    return [accept1, accept2, accept3, accept4, accept5, accept6, accept7]


def clientOffers(module: Any) -> list[list[Any]]:
    """
    The testsuite's client offers of 13.1-13.7 (C{DEFLATE_PARAMS}), made of
    C{module}'s C{PerMessageDeflateOffer}.
    """
    Offer = module.PerMessageDeflateOffer
    return [
        [Offer()],
        [Offer(request_no_context_takeover=True, request_max_window_bits=0)],
        [Offer(request_no_context_takeover=False, request_max_window_bits=9)],
        [Offer(request_no_context_takeover=False, request_max_window_bits=15)],
        [Offer(request_no_context_takeover=True, request_max_window_bits=9)],
        [Offer(request_no_context_takeover=True, request_max_window_bits=15)],
        [Offer(request_no_context_takeover=True, request_max_window_bits=9),
         Offer(request_no_context_takeover=True), Offer()],
    ]


#: The answer of each 13.x pair from the Autobahn server (RFC 7692 section
#: 7.1: the server's parameters as the client requested them, then what the
#: server asks of the client), and the settings it leaves the txws client
#: with: C{(server no context takeover, server window, client no context
#: takeover, client window)}.  Every offer carries C{client_no_context_takeover}
#: (Autobahn's C{accept_no_context_takeover} defaults to true), a hint that
#: the client keeps to even when it is not asked.
AUTOBAHN_ANSWERS: list[tuple[str, tuple[bool, int, bool, int]]] = [
    ("permessage-deflate", (False, 15, True, 15)),
    ("permessage-deflate; server_no_context_takeover; client_no_context_takeover",
     (True, 15, True, 15)),
    ("permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
     (False, 9, True, 9)),
    ("permessage-deflate; server_max_window_bits=15; client_max_window_bits=15",
     (False, 15, True, 15)),
    ("permessage-deflate; server_no_context_takeover; server_max_window_bits=9; "
     "client_no_context_takeover; client_max_window_bits=9", (True, 9, True, 9)),
    ("permessage-deflate; server_no_context_takeover; server_max_window_bits=15; "
     "client_no_context_takeover; client_max_window_bits=15", (True, 15, True, 15)),
    ("permessage-deflate; server_no_context_takeover; server_max_window_bits=9; "
     "client_no_context_takeover; client_max_window_bits=9", (True, 9, True, 9)),
]

#: The same from the txws server, which confirms the client's hint in its
#: answer (the Autobahn client keeps its context unless asked not to, while
#: the txws server releases its inflater after every message): the settings
#: are then the same on both sides.
TXWS_ANSWERS: list[tuple[str, tuple[bool, int, bool, int]]] = [
    ("permessage-deflate; client_no_context_takeover", (False, 15, True, 15)),
    AUTOBAHN_ANSWERS[1],
    ("permessage-deflate; server_max_window_bits=9; client_no_context_takeover; "
     "client_max_window_bits=9", (False, 9, True, 9)),
    ("permessage-deflate; server_max_window_bits=15; client_no_context_takeover; "
     "client_max_window_bits=15", (False, 15, True, 15)),
    *AUTOBAHN_ANSWERS[4:],
]


def assertCompressed(
    testCase: TestCase, protocol: Any, ratio: float, label: str
) -> tuple[float, float]:
    """
    Check an Autobahn connection's traffic statistics (what the testsuite
    reports as compression ratios): the messages it received (compressed by
    txws) and those it sent (compressed by itself) took less than C{ratio}
    of their size on the wire.

    @return: both ratios, received first.
    """
    stats = protocol.trafficStats
    received = stats.incomingOctetsWebSocketLevel / stats.incomingOctetsAppLevel
    sent = stats.outgoingOctetsWebSocketLevel / stats.outgoingOctetsAppLevel
    testCase.assertLess(received, ratio, f"{label}: txws compressed to {received:.2f}")
    testCase.assertLess(sent, ratio, f"{label}: Autobahn compressed to {sent:.2f}")
    return received, sent


#: How small each data set must get (the largest ratio allowed).
RATIOS = {"json": 0.3, "prose": 0.35, "bitmap": 0.95}


class Series:
    """
    The testsuite's message series on one open connection: each message is
    the next slice of a data set, sent when the previous echo came back.
    """

    def __init__(
        self,
        send: Callable[[bytes, bool], object],
        receive: Callable[[], Deferred[tuple[bytes, bool]]],
        fragment: Callable[[int], object],
    ) -> None:
        """
        @param send: sends C{(payload, isBinary)}.
        @param receive: the next message echoed.
        @param fragment: sets the sender's auto-fragment size (0: none).
        """
        self.send, self.receive, self.fragment = send, receive, fragment
        self.messages = 0

    async def run(self, kind: str, isBinary: bool, sizes: Sequence[tuple[int, int]]) -> None:
        """
        Send L{countFor} messages of each C{(size, fragment size)} cut from
        the data set C{kind} (text data is cut between characters, as the
        testsuite does), and check every echo.

        @raise FailTest: on the first echo that differs.
        """
        data = corpus(kind)
        text = data.decode("utf-8") if not isBinary else ""
        start = 0
        for size, fragmentSize in sizes:
            self.fragment(fragmentSize)
            for n in range(countFor(size)):
                if isBinary:
                    message, start = slidingMessage(data, start, size)
                else:
                    piece, start = slidingMessage(text, start, size)
                    message = piece.encode("utf-8")
                self.send(message, isBinary)
                echoed = await bounded(self.receive())
                self.messages += 1
                if echoed != (message, isBinary):
                    raise FailTest(
                        f"{kind}: echo {n} of size {size} (fragments of {fragmentSize}) differs: "
                        f"{len(echoed[0])} bytes, binary {echoed[1]}"
                    )

    async def all(self, kind: str, isBinary: bool) -> None:
        """
        The whole series: every size whole, then the fragmented ones.
        """
        await self.run(kind, isBinary, [(size, 0) for size in SIZES])
        await self.run(kind, isBinary, FRAGMENTED)


class Case12Mixin:
    """
    The 12.x cases on the testsuite's three kinds of data, for a class
    that defines C{case12}.
    """

    async def case12(self, kind: str, isBinary: bool) -> None:
        """
        Run the 12.x series of one data set.
        """
        raise NotImplementedError()

    async def test_case12Json(self) -> None:
        """
        12.1-like: JSON text.
        """
        await self.case12("json", False)

    async def test_case12Prose(self) -> None:
        """
        12.3-like: German prose, sent as binary.
        """
        await self.case12("prose", True)

    async def test_case12Bitmap(self) -> None:
        """
        12.2-like: an 8-bit bitmap.
        """
        await self.case12("bitmap", True)


class AutobahnClientTests(Case12Mixin, TestCase):
    """
    The Autobahn client (the testsuite's role when testing a server)
    against the txws echo server, with acceptance functions written with
    txws's classes.
    """

    async def connectAutobahn(self, offers: list[Any], accept: Accept) -> AutobahnRecorder:
        """
        Start a txws echo server with C{accept} and connect an Autobahn
        client offering C{offers}.

        @return: the open Autobahn connection.
        """
        self.server = RecordingServerFactory(reactor=reactor)
        self.server.setProtocolOptions(perMessageCompressionAccept=accept)
        self.addCleanup(dropConnections, self.server)
        port = reactor.listenTCP(0, self.server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.client = AutobahnRecorderFactory(f"ws://127.0.0.1:{listenedPort(port)}/ws")
        # Autobahn's 1 s closing handshake timeout is too short for a loaded
        # machine.
        self.client.setProtocolOptions(  # type: ignore[no-untyped-call]
            perMessageCompressionOffers=offers, perMessageCompressionAccept=acceptResponse,
            closeHandshakeTimeout=10,
        )
        connector = reactor.connectTCP("127.0.0.1", listenedPort(port), self.client)
        self.addCleanup(connector.disconnect)
        return await bounded(self.client.opened)

    def series(self, protocol: AutobahnRecorder) -> Series:
        """
        @return: the series sent by Autobahn and echoed by txws.
        """

        def fragment(size: int) -> None:
            protocol.autoFragmentSize = size  # type: ignore[attr-defined]

        return Series(protocol.sendMessage, self.client.messages.get, fragment)

    async def closeCleanly(self, protocol: AutobahnRecorder) -> None:
        """
        Close from Autobahn and insist on a clean close both sides.
        """
        protocol.sendClose(1000)
        closed = await bounded(self.client.closed)
        serverClosed = await self.server.nextClose()
        self.assertEqual((closed.wasClean, closed.code, serverClosed.wasClean), (True, 1000, True))

    async def case12(self, kind: str, isBinary: bool) -> None:
        """
        12.x: the default offer and acceptance, the series of one data set.
        """
        accept1 = acceptFunctions(txwsDeflate)[0]
        protocol = await self.connectAutobahn([autobahnCompress.PerMessageDeflateOffer()], accept1)
        self.assertEqual(autobahnSettings(protocol), TXWS_ANSWERS[0][1])
        await self.series(protocol).all(kind, isBinary)
        assertCompressed(self, protocol, RATIOS[kind], kind)
        await self.closeCleanly(protocol)

    async def test_case13(self) -> None:
        """
        13.1-13.7: each pair of client offers and txws-class acceptance
        gives the answer of L{TXWS_ANSWERS}, both sides take its settings, and
        the JSON series echoes intact.
        """
        accepts = acceptFunctions(txwsDeflate)
        for case, (offers, accept, (answer, settings)) in enumerate(
            zip(clientOffers(autobahnCompress), accepts, TXWS_ANSWERS, strict=True), 1
        ):
            protocol = await self.connectAutobahn(offers, accept)
            server = await self.server.nextOpen()
            [deflate] = server.websocket_extensions_in_use
            self.assertEqual(
                (deflate.extensionString, txwsSettings(deflate), autobahnSettings(protocol)),
                (answer, settings, settings),
                f"13.{case}",
            )
            await self.series(protocol).run(
                "json", False, [(size, 0) for size in SIZES] + [(131072, 4096)]
            )
            assertCompressed(self, protocol, RATIOS["json"], f"13.{case}")
            await self.closeCleanly(protocol)


class AutobahnServerTests(Case12Mixin, TestCase):
    """
    The txws client against the Autobahn echo server, whose acceptance
    functions are the testsuite's with Autobahn's classes.
    """

    async def connectTxws(self, offers: list[Any], accept: Accept) -> SettableClient:
        """
        Start an Autobahn echo server with C{accept} and connect a txws
        client offering C{offers} (txws's classes).

        @return: the open txws connection.
        """
        self.server = AutobahnEchoServerFactory()
        self.server.setProtocolOptions(  # type: ignore[no-untyped-call]
            perMessageCompressionAccept=accept, closeHandshakeTimeout=10
        )
        port = reactor.listenTCP(0, self.server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        protocol = await bounded(connect(
            f"ws://127.0.0.1:{listenedPort(port)}/ws", protocolClass=SettableClient,
            reactor=reactor, options=WebSocketOptions(perMessageCompressionOffers=tuple(offers)),
        ))
        assert isinstance(protocol, SettableClient)
        self.addCleanup(protocol.abortIfOpen)
        return protocol

    def series(self, protocol: SettableClient) -> Series:
        """
        @return: the series sent by txws and echoed by Autobahn.
        """
        return Series(protocol.sendFragmented, protocol.nextMessage, protocol.setFragmentSize)

    async def closeCleanly(self, protocol: RecordingClientProtocol) -> None:
        """
        Close from txws and insist on a clean close both sides.
        """
        protocol.sendClose(1000)
        closed = await protocol.whenClosed()
        serverClosed = await bounded(self.server.closed.get())
        self.assertEqual((closed.wasClean, closed.code, serverClosed.wasClean), (True, 1000, True))

    async def case12(self, kind: str, isBinary: bool) -> None:
        """
        12.x: the default offer and acceptance, the series of one data set.
        """
        accept1 = acceptFunctions(autobahnCompress)[0]
        protocol = await self.connectTxws([txwsDeflate.PerMessageDeflateOffer()], accept1)
        [deflate] = protocol.websocket_extensions_in_use
        self.assertEqual(txwsSettings(deflate), AUTOBAHN_ANSWERS[0][1])
        await self.series(protocol).all(kind, isBinary)
        assertCompressed(self, await bounded(self.server.opened.get()), RATIOS[kind], kind)
        await self.closeCleanly(protocol)

    async def test_case13(self) -> None:
        """
        13.1-13.7: each pair of txws offers and the testsuite's acceptance
        (Autobahn's classes) gives the answer of L{AUTOBAHN_ANSWERS}, which txws
        accepts with its settings, and the JSON series echoes intact.
        """
        accepts = acceptFunctions(autobahnCompress)
        for case, (offers, accept, (answer, settings)) in enumerate(
            zip(clientOffers(txwsDeflate), accepts, AUTOBAHN_ANSWERS, strict=True), 1
        ):
            protocol = await self.connectTxws(offers, accept)
            assert protocol.response is not None
            [deflate] = protocol.websocket_extensions_in_use
            self.assertEqual(
                (protocol.response.headers.get("sec-websocket-extensions"),
                 txwsSettings(deflate)),
                (answer, settings),
                f"13.{case}",
            )
            await self.series(protocol).run(
                "json", False, [(size, 0) for size in SIZES] + [(131072, 4096)]
            )
            server = await bounded(self.server.opened.get())
            assertCompressed(self, server, RATIOS["json"], f"13.{case}")
            await self.closeCleanly(protocol)


class SettableClient(RecordingClientProtocol):
    """
    A recording txws client whose messages are auto-fragmented to a size
    the test sets.
    """

    fragmentSize = 0

    def setFragmentSize(self, size: int) -> None:
        """
        Fragment the next messages to C{size} bytes of (compressed) payload.
        """
        self.fragmentSize = size

    def sendFragmented(self, payload: bytes, isBinary: bool) -> None:
        """
        Send a message, fragmented if L{setFragmentSize} asked for it.
        """
        self.sendMessage(payload, isBinary, fragmentSize=self.fragmentSize or None)
