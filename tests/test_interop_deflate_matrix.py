"""
Every permessage-deflate (RFC 7692) parameter combination Autobahn|Python
supports, against txws, both directions, in this process over loopback:
every offer an Autobahn client can make against txws's server policies, and
every offer the txws client makes against the acceptances an Autobahn
server can give.  Each connection checks the answer exactly, the settings
both ends took from it, and a short series of echoes (compressed, empty,
short and several in a row).  The testsuite's own categories 12 and 13 are
in L{tests.test_interop_deflate_autobahn}.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Optional

from autobahn.websocket import compress as autobahnCompress
from twisted.internet.defer import Deferred

from tests.peers.autobahn_peers import (
    AutobahnEchoServerFactory,
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
from tests.peers.negotiation import POLICIES, answerSettings, expectedAnswer, txwsSettings
from tests.peers.payloads import LIGHT_DEFLATE_WORKLOAD, workloadMessages
from tests.typedtrial import TestCase
from txws.client import connect
from txws.deflate import PerMessageDeflateOffer
from txws.handshake import ResponseError
from txws.options import WebSocketOptions

#: The messages of each connection: the light workload and a binary one.
MESSAGES = [m for item in LIGHT_DEFLATE_WORKLOAD for m in workloadMessages(*item)] + [
    (bytes(range(256)) * 8, True)
]


def autobahnOffers() -> list[Any]:
    """
    Every offer Autobahn's C{PerMessageDeflateOffer} can make: both
    C{accept_*} flags, C{request_no_context_takeover}, and
    C{request_max_window_bits} 0 (none) or 9-15 (Autobahn has no 8).

    @return: the 2 x 2 x 2 x 8 = 64 offers.
    """
    return [
        autobahnCompress.PerMessageDeflateOffer(
            accept_no_context_takeover=acceptNoContext,
            accept_max_window_bits=acceptWindow,
            request_no_context_takeover=requestNoContext,
            request_max_window_bits=requestBits,
        )
        for acceptNoContext, acceptWindow, requestNoContext, requestBits in itertools.product(
            (False, True), (False, True), (False, True), (0, *range(9, 16))
        )
    ]


def asWebsocketsOffer(offer: Any) -> dict[str, Any]:
    """
    @return: an Autobahn offer as the parameters it puts on the wire, in
        the form L{expectedAnswer} takes.
    """
    return {
        "server_no_context_takeover": offer.request_no_context_takeover,
        "client_no_context_takeover": offer.accept_no_context_takeover,
        "server_max_window_bits": offer.request_max_window_bits or None,
        "client_max_window_bits": True if offer.accept_max_window_bits else None,
    }


def txwsOffers() -> list[PerMessageDeflateOffer]:
    """
    The txws client offers of the matrix: with or without
    C{client_no_context_takeover} and C{client_max_window_bits} (without a
    value, or with the hints 9 and 12), C{server_no_context_takeover} or
    not, C{server_max_window_bits} absent, 9, 12 or 15.

    @return: the 2 x 4 x 2 x 4 = 64 offers.
    """
    offers = []
    for noContext, clientBits, requestNoContext, requestBits in itertools.product(
        (False, True), (None, 0, 9, 12), (False, True), (0, 9, 12, 15)
    ):
        offers.append(PerMessageDeflateOffer(
            accept_no_context_takeover=noContext,
            accept_max_window_bits=clientBits is not None,
            request_no_context_takeover=requestNoContext,
            request_max_window_bits=requestBits,
            client_max_window_bits=clientBits or 0,
        ))
    return offers


#: Acceptances an Autobahn server can give (with Autobahn's classes), by
#: name; C{None} where the offer does not allow it.
AUTOBAHN_ACCEPTS: dict[str, Callable[[Any], Any]] = {
    "plain": lambda o: autobahnCompress.PerMessageDeflateOfferAccept(o),
    "askNoContext": lambda o: autobahnCompress.PerMessageDeflateOfferAccept(
        o, request_no_context_takeover=True
    ) if o.accept_no_context_takeover else None,
    "askWindow10": lambda o: autobahnCompress.PerMessageDeflateOfferAccept(
        o, request_max_window_bits=10
    ) if o.accept_max_window_bits else None,
    # Its own compressor without context takeover, 9 bits, memory level 1,
    # which Autobahn does not announce unless the client asked.
    "ownSmall": lambda o: autobahnCompress.PerMessageDeflateOfferAccept(
        o, no_context_takeover=True, window_bits=9, mem_level=1
    ),
    "ownLarge": lambda o: autobahnCompress.PerMessageDeflateOfferAccept(
        o, window_bits=o.request_max_window_bits or 15, mem_level=9
    ),
}


def autobahnAnswer(name: str, offer: PerMessageDeflateOffer) -> Optional[str]:
    """
    The answer an Autobahn acceptance gives to a txws offer (Autobahn
    announces the server parameters the client requested and what it asks
    of the client; its parser assumes every client supports being asked for
    no context takeover).

    @return: the answer, or C{None} if the acceptance declines the offer.
    """
    if name == "askWindow10" and not offer.accept_max_window_bits:
        return None
    parts = ["permessage-deflate"]
    if offer.request_no_context_takeover:
        parts.append("server_no_context_takeover")
    if offer.request_max_window_bits:
        parts.append(f"server_max_window_bits={offer.request_max_window_bits}")
    if name == "askNoContext":
        parts.append("client_no_context_takeover")
    if name == "askWindow10":
        parts.append("client_max_window_bits=10")
    return "; ".join(parts)


def firstOf(*ds: Deferred[Any]) -> Deferred[int]:
    """
    @return: a Deferred firing with the index of the first of C{ds} to
        fire (which are left as they are).
    """
    first: Deferred[int] = Deferred()

    def fired(result: object, index: int) -> object:
        if not first.called:
            first.callback(index)
        return result

    for index, d in enumerate(ds):
        d.addBoth(fired, index)
    return first


class AutobahnClientMatrixTests(TestCase):
    """
    Every Autobahn client offer against txws server policies.
    """

    async def runPolicy(self, name: str) -> None:
        """
        Every offer of L{autobahnOffers} against the policy C{name}: the
        answer is L{expectedAnswer}, both ends take its settings, every echo
        is intact; an answer with C{client_max_window_bits=8}, which
        Autobahn cannot use, fails its handshake.
        """
        server = RecordingServerFactory(reactor=reactor)
        server.setProtocolOptions(perMessageCompressionAccept=POLICIES[name])
        self.addCleanup(dropConnections, server)
        port = reactor.listenTCP(0, server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        for offer in autobahnOffers():
            answer = expectedAnswer(POLICIES[name], asWebsocketsOffer(offer))
            client = AutobahnRecorderFactory(f"ws://127.0.0.1:{listenedPort(port)}/ws")
            # Autobahn's 1 s closing handshake timeout is too short for this
            # loaded machine (two cores, many test processes).
            client.setProtocolOptions(  # type: ignore[no-untyped-call]
                perMessageCompressionOffers=[offer], perMessageCompressionAccept=acceptResponse,
                closeHandshakeTimeout=10,
            )
            connector = reactor.connectTCP("127.0.0.1", listenedPort(port), client)
            self.addCleanup(connector.disconnect)
            which = await bounded(firstOf(client.opened, client.closed))
            if answer is not None and "client_max_window_bits=8" in answer:
                self.assertEqual(which, 1, f"Autobahn accepted 8 bits for {offer}")
                # Our end had answered, so it opened, then lost the connection.
                await server.nextOpen()
                await server.nextClose()
                continue
            self.assertEqual(which, 0, (offer, answer))
            protocol = await client.opened
            txws = await server.nextOpen()
            got = [e.extensionString for e in txws.websocket_extensions_in_use]
            self.assertEqual(got, [answer] if answer else [], offer)
            if answer:
                [deflate] = txws.websocket_extensions_in_use
                settings = answerSettings(answer)
                self.assertEqual(
                    (txwsSettings(deflate), autobahnSettings(protocol)), (settings, settings),
                    offer,
                )
            for payload, isBinary in MESSAGES:
                protocol.sendMessage(payload, isBinary)  # type: ignore[no-untyped-call]
                self.assertEqual(await bounded(client.messages.get()), (payload, isBinary))
            stats = protocol.trafficStats
            compressed = stats.incomingOctetsWebSocketLevel < stats.incomingOctetsAppLevel
            self.assertEqual(compressed, answer is not None, offer)
            protocol.sendClose(1000)
            closed = await bounded(client.closed)
            self.assertTrue(closed.wasClean, (offer, closed))
            await server.nextClose()

    async def test_default(self) -> None:
        """
        Against the default policy.
        """
        await self.runPolicy("default")

    async def test_hub(self) -> None:
        """
        Against the hub's policy.
        """
        await self.runPolicy("hub")

    async def test_windows(self) -> None:
        """
        Against policies with a 9-bit server window, and a client window of
        8 bits, 15 bits, or unlimited.
        """
        for name in ("serverWindow9", "clientWindow8", "clientWindow15",
                     "clientWindowUnlimited"):
            await self.runPolicy(name)

    async def test_requireClientWindow(self) -> None:
        """
        Against a policy that declines offers without
        C{client_max_window_bits}.
        """
        await self.runPolicy("requireClientWindow")


class AutobahnServerMatrixTests(TestCase):
    """
    Every txws client offer of L{txwsOffers} against the acceptances of
    L{AUTOBAHN_ACCEPTS}.
    """

    async def runAccept(self, name: str) -> None:
        """
        Every offer against the acceptance C{name}: the answer is
        L{autobahnAnswer}; txws takes its settings (with its own hints) and
        every echo is intact; or, for an answer that asks for a client
        window larger than the value the client gave, txws refuses it
        (RFC 7692 section 7.1.2.2).
        """

        def accept(offers: Sequence[Any]) -> Any:
            return AUTOBAHN_ACCEPTS[name](offers[0])

        server = AutobahnEchoServerFactory()
        server.setProtocolOptions(  # type: ignore[no-untyped-call]
            perMessageCompressionAccept=accept, closeHandshakeTimeout=10
        )
        port = reactor.listenTCP(0, server, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        url = f"ws://127.0.0.1:{listenedPort(port)}/ws"
        for offer in txwsOffers():
            answer = autobahnAnswer(name, offer)
            connecting = connect(
                url, protocolClass=RecordingClientProtocol, reactor=reactor,
                options=WebSocketOptions(perMessageCompressionOffers=(offer,)),
            )
            if name == "askWindow10" and offer.client_max_window_bits == 9:
                try:
                    await bounded(connecting)
                except ResponseError as e:
                    self.assertIn("client_max_window_bits exceeds the offered value", e.reason)
                else:
                    self.fail(f"txws accepted {answer!r} to {offer}")
                # Autobahn's end had answered, so it opened, then lost it.
                await bounded(server.opened.get())
                self.assertFalse((await bounded(server.closed.get())).wasClean)
                continue
            protocol = await bounded(connecting)
            assert isinstance(protocol, RecordingClientProtocol)
            self.addCleanup(protocol.abortIfOpen)
            assert protocol.response is not None
            self.assertEqual(
                protocol.response.headers.get("sec-websocket-extensions"), answer, offer
            )
            if answer:
                [deflate] = protocol.websocket_extensions_in_use
                self.assertEqual(txwsSettings(deflate), answerSettings(answer, offer), offer)
            else:
                self.assertEqual(protocol.websocket_extensions_in_use, [])
            peer = await bounded(server.opened.get())
            for payload, isBinary in MESSAGES:
                protocol.sendMessage(payload, isBinary)
                self.assertEqual(await protocol.nextMessage(), (payload, isBinary))
            stats = peer.trafficStats
            compressed = stats.incomingOctetsWebSocketLevel < stats.incomingOctetsAppLevel
            self.assertEqual(compressed, answer is not None, offer)
            protocol.sendClose(1000)
            self.assertTrue((await protocol.whenClosed()).wasClean)
            self.assertTrue((await bounded(server.closed.get())).wasClean)

    async def test_plain(self) -> None:
        """
        C{PerMessageDeflateOfferAccept(offer)}.
        """
        await self.runAccept("plain")

    async def test_askNoContext(self) -> None:
        """
        Asking the client for no context takeover.
        """
        await self.runAccept("askNoContext")

    async def test_askWindow10(self) -> None:
        """
        Asking the client for a 10-bit window.
        """
        await self.runAccept("askWindow10")

    async def test_ownSettings(self) -> None:
        """
        The server's own compressor settings, small and large, partly
        unannounced.
        """
        await self.runAccept("ownSmall")
        await self.runAccept("ownLarge")
