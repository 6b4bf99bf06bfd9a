"""
permessage-deflate (RFC 7692) from the txws client to a C{websockets}
server over loopback (C{tests/peers/websockets_server.py}, configured
through its C{ServerPerMessageDeflateFactory}): every combination of our
offers and its settings, the answer checked exactly on both sides and the
settings txws derives from it, echoes byte for byte (whole, frame by frame,
fragmented after compression), RSV1 frames counted by the server; answers
the client must refuse (C{tests/peers/raw_http_server.py}); a bomb.
"""

from __future__ import annotations

import json
from typing import Any, Optional
from urllib.parse import quote

from tests.peers.harness import (
    RecordingClientFactory,
    RecordingClientProtocol,
    bounded,
    failureOf,
    reactor,
    startPeer,
)
from tests.peers.negotiation import answerSettings, txwsSettings
from tests.peers.payloads import (
    DEFLATE_WORKLOAD,
    LIGHT_DEFLATE_WORKLOAD,
    jsonText,
    workloadMessages,
)
from tests.typedtrial import TestCase
from txws.client import connect
from txws.deflate import DEFAULT_CLIENT_OFFER, PerMessageDeflate, PerMessageDeflateOffer
from txws.handshake import ResponseError
from txws.options import WebSocketOptions

MiB = 1024 * 1024


#: The txws client's offers tried against each websockets server, by name.
TXWS_OFFERS: dict[str, Optional[tuple[PerMessageDeflateOffer, ...]]] = {
    # permessage-deflate; client_max_window_bits
    "default": None,
    # Two offers, most preferred first: the first asks for no server context
    # takeover and a 10-bit server window.
    "preferences": (
        PerMessageDeflateOffer(
            accept_no_context_takeover=False, request_no_context_takeover=True,
            request_max_window_bits=10,
        ),
        PerMessageDeflateOffer(accept_no_context_takeover=False),
    ),
    # permessage-deflate
    "bare": (PerMessageDeflateOffer(accept_no_context_takeover=False,
                                    accept_max_window_bits=False),),
    # permessage-deflate; client_no_context_takeover; client_max_window_bits=9
    "clientHints": (PerMessageDeflateOffer(client_max_window_bits=9),),
    # An 8-bit server window (websockets refuses to compress with 8 and
    # declines it), then a 9-bit one.
    "serverWindow8": (
        PerMessageDeflateOffer(accept_no_context_takeover=False, request_max_window_bits=8),
        PerMessageDeflateOffer(accept_no_context_takeover=False, request_max_window_bits=9),
    ),
    # Autobahn's default offer: permessage-deflate; client_no_context_takeover;
    # client_max_window_bits
    "autobahn": (PerMessageDeflateOffer(),),
}

#: websockets server configurations (C{ServerPerMessageDeflateFactory}
#: arguments; C{"websockets"} is its default, C{enable_server_permessage_deflate})
#: and the answer each gives to each offer of L{TXWS_OFFERS}, worked out by
#: hand from RFC 7692 section 7.1 and websockets' documented tables.
SERVER_CASES: dict[str, tuple[Optional[dict[str, Any]], dict[str, Optional[str]]]] = {
    "websockets": (None, {
        "default": "server_max_window_bits=12; client_max_window_bits=12",
        "preferences": "server_no_context_takeover; server_max_window_bits=10; "
                       "client_max_window_bits=12",
        "bare": "server_max_window_bits=12",
        "clientHints": "client_no_context_takeover; server_max_window_bits=12; "
                       "client_max_window_bits=9",
        "serverWindow8": "server_max_window_bits=9; client_max_window_bits=12",
        "autobahn": "client_no_context_takeover; server_max_window_bits=12; "
                    "client_max_window_bits=12",
    }),
    "plain": ({}, {
        "default": "",
        "preferences": "server_no_context_takeover; server_max_window_bits=10",
        "bare": "",
        "clientHints": "client_no_context_takeover; client_max_window_bits=9",
        "serverWindow8": "server_max_window_bits=9",
        "autobahn": "client_no_context_takeover",
    }),
    "noContextTakeover": ({"server_no_context_takeover": True,
                           "client_no_context_takeover": True}, {
        "default": "server_no_context_takeover; client_no_context_takeover",
        "preferences": "server_no_context_takeover; client_no_context_takeover; "
                       "server_max_window_bits=10",
        "bare": "server_no_context_takeover; client_no_context_takeover",
        "clientHints": "server_no_context_takeover; client_no_context_takeover; "
                       "client_max_window_bits=9",
        "serverWindow8": "server_no_context_takeover; client_no_context_takeover; "
                         "server_max_window_bits=9",
        "autobahn": "server_no_context_takeover; client_no_context_takeover",
    }),
    "smallWindows": ({"server_max_window_bits": 9, "client_max_window_bits": 8}, {
        "default": "server_max_window_bits=9; client_max_window_bits=8",
        "preferences": "server_no_context_takeover; server_max_window_bits=9; "
                       "client_max_window_bits=8",
        "bare": "server_max_window_bits=9",
        "clientHints": "client_no_context_takeover; server_max_window_bits=9; "
                       "client_max_window_bits=8",
        "serverWindow8": "server_max_window_bits=9; client_max_window_bits=8",
        "autobahn": "client_no_context_takeover; server_max_window_bits=9; "
                    "client_max_window_bits=8",
    }),
    "requireClientWindow": ({"client_max_window_bits": 10,
                             "require_client_max_window_bits": True}, {
        "default": "client_max_window_bits=10",
        "preferences": "server_no_context_takeover; server_max_window_bits=10; "
                       "client_max_window_bits=10",
        "bare": None,
        "clientHints": "client_no_context_takeover; client_max_window_bits=9",
        "serverWindow8": "server_max_window_bits=9; client_max_window_bits=10",
        "autobahn": "client_no_context_takeover; client_max_window_bits=10",
    }),
    "largeWindows": ({"server_max_window_bits": 15, "client_max_window_bits": 15,
                      "compress_settings": {"memLevel": 9}}, {
        "default": "server_max_window_bits=15; client_max_window_bits=15",
        "preferences": "server_no_context_takeover; server_max_window_bits=10; "
                       "client_max_window_bits=15",
        "bare": "server_max_window_bits=15",
        "clientHints": "client_no_context_takeover; server_max_window_bits=15; "
                       "client_max_window_bits=9",
        "serverWindow8": "server_max_window_bits=9; client_max_window_bits=15",
        "autobahn": "client_no_context_takeover; server_max_window_bits=15; "
                    "client_max_window_bits=15",
    }),
}


class WebSocketsServerTests(TestCase):
    """
    The txws client against a C{websockets} server (RFC 7692 sections 5
    and 7: the client's offers and its checks of the answer).
    """

    async def startServer(self, spec: Optional[dict[str, Any]] = None) -> Any:
        """
        Start the C{websockets_server} peer with C{spec}.

        @return: the peer and its port.
        """
        arguments = [json.dumps(spec)] if spec is not None else []
        peer = startPeer(self, "websockets_server", *arguments)
        report = await peer.nextReport()
        return peer, report["port"]

    async def openClient(self, url: str, **options: Any) -> RecordingClientProtocol:
        """
        Connect with L{connect} and the given options.
        """
        protocol = await bounded(connect(
            url, protocolClass=RecordingClientProtocol, reactor=reactor,
            options=WebSocketOptions(**options),
        ))
        assert isinstance(protocol, RecordingClientProtocol)
        self.addCleanup(protocol.abortIfOpen)
        return protocol

    async def exchange(self, protocol: RecordingClientProtocol, heavy: bool) -> int:
        """
        Send the light (or the full) workload whole, then a 64 KiB JSON
        message frame by frame (each frame compressed and flushed) and one
        split into 4 KiB frames after compression; check every echo.

        @return: how many messages went at or above txws's threshold (so
            compressed when the extension is in use).
        """
        workload = DEFLATE_WORKLOAD if heavy else LIGHT_DEFLATE_WORKLOAD
        compressible = 0
        for item in workload:
            for payload, isBinary in workloadMessages(*item):
                protocol.sendMessage(payload, isBinary)
                self.assertEqual(await protocol.nextMessage(), (payload, isBinary), item)
                compressible += len(payload) >= 64
        big = jsonText(65536, seed=99)
        protocol.beginMessage()
        for start in range(0, len(big), 8192):
            protocol.sendMessageFrame(big[start:start + 8192])
        protocol.endMessage()
        self.assertEqual(await protocol.nextMessage(), (big, False))
        protocol.sendMessage(big, True, fragmentSize=4096)
        self.assertEqual(await protocol.nextMessage(), (big, True))
        return compressible + 2

    async def runServerCase(self, name: str, heavy: bool = False) -> None:
        """
        Every offer of L{TXWS_OFFERS} against the websockets server
        configured as C{name}: both sides agree on the answer of
        L{SERVER_CASES}, txws uses the settings it implies
        (L{answerSettings}), the echoes are
        intact, and the server saw compressed frames from us and sent some.
        """
        config, answers = SERVER_CASES[name]
        peer, port = await self.startServer({"deflate": config} if config is not None else {})
        for offerName, offers in TXWS_OFFERS.items():
            protocol = await self.openClient(
                f"ws://127.0.0.1:{port}/echo", perMessageCompressionOffers=offers
            )
            suffix = answers[offerName]
            answer = None if suffix is None else "; ".join(
                filter(None, ["permessage-deflate", suffix])
            )
            assert protocol.response is not None
            self.assertEqual(
                protocol.response.headers.get("sec-websocket-extensions"), answer, offerName
            )
            inUse = protocol.websocket_extensions_in_use
            if answer is None:
                self.assertEqual(inUse, [])
            else:
                [deflate] = inUse
                assert isinstance(deflate, PerMessageDeflate)
                # websockets declines the 8-bit server window it cannot use.
                accepted = (offers or (DEFAULT_CLIENT_OFFER,))[offerName == "serverWindow8"]
                self.assertEqual(
                    txwsSettings(deflate), answerSettings(answer, accepted), offerName
                )
            workload = DEFLATE_WORKLOAD if heavy else LIGHT_DEFLATE_WORKLOAD
            sentMessages = sum(count for *_, count in workload) + 2
            compressible = await self.exchange(protocol, heavy)
            protocol.sendClose(1000)
            closed = await protocol.whenClosed()
            self.assertEqual((closed.wasClean, closed.code), (True, 1000))
            report = await peer.nextReport()
            self.assertEqual(
                (report["extensions"], report["messages"], report["compressedIn"],
                 report["compressedOut"], report["closeCode"]),
                (answer, sentMessages, compressible if answer else 0,
                 sentMessages if answer else 0, 1000),
                offerName,
            )

    async def test_websocketsDefault(self) -> None:
        """
        Against websockets' default server (12-bit windows both ways), with
        the full workload.
        """
        await self.runServerCase("websockets", heavy=True)

    async def test_plain(self) -> None:
        """
        Against a server with no parameters of its own.
        """
        await self.runServerCase("plain")

    async def test_noContextTakeover(self) -> None:
        """
        Against a server without context takeover either way.
        """
        await self.runServerCase("noContextTakeover")

    async def test_smallWindows(self) -> None:
        """
        Against a server with a 9-bit window that limits ours to 8 bits
        (which txws compresses with zlib's 9, whose distances stay within
        256 bytes), with the full workload.
        """
        await self.runServerCase("smallWindows", heavy=True)

    async def test_requireClientWindow(self) -> None:
        """
        Against a server that declines offers without
        C{client_max_window_bits}.
        """
        await self.runServerCase("requireClientWindow")

    async def test_largeWindows(self) -> None:
        """
        Against a server with 15-bit windows and memory level 9.
        """
        await self.runServerCase("largeWindows")

    async def test_bomb(self) -> None:
        """
        A 4 MiB message that websockets compresses to a few KiB makes the
        txws client fail the connection with 1009 (which the server
        receives) without delivering it.
        """
        peer, port = await self.startServer({})
        protocol = await self.openClient(f"ws://127.0.0.1:{port}/bomb?size={4 * MiB}")
        self.assertEqual(len(protocol.websocket_extensions_in_use), 1)
        closed = await protocol.whenClosed()
        self.assertEqual((closed.wasClean, protocol.localCloseCode), (False, 1009))
        self.assertEqual(protocol.messages.pending, [])
        report = await peer.nextReport()
        self.assertEqual((report["compressedOut"], report["closeCode"]), (1, 1009))

    async def test_refusedAnswers(self) -> None:
        """
        Answers a client must refuse (RFC 7692 section 5, RFC 6455 section
        9.1) fail C{connect} with L{ResponseError} naming the problem, and
        the compressed frame sent behind the answer is never delivered.
        """
        bare = (PerMessageDeflateOffer(accept_no_context_takeover=False,
                                       accept_max_window_bits=False),)
        strict = (PerMessageDeflateOffer(request_no_context_takeover=True,
                                         request_max_window_bits=10),)
        cases: list[tuple[str, Optional[tuple[PerMessageDeflateOffer, ...]], str]] = [
            ("permessage-deflate; client_max_window_bits=10", bare,
             "client_max_window_bits was not offered"),
            ("permessage-deflate; server_max_window_bits=10", strict,
             "lacks the requested server_no_context_takeover"),
            ("permessage-deflate; server_no_context_takeover; server_max_window_bits=12", strict,
             "server_max_window_bits exceeds the offered value"),
            ("permessage-deflate; server_no_context_takeover", strict,
             "lacks the requested server_max_window_bits"),
            ("permessage-deflate; foo=1", None, "unknown parameter foo"),
            ("permessage-deflate; server_max_window_bits=7", None,
             "invalid value for server_max_window_bits"),
            ("permessage-deflate; server_max_window_bits=010", None,
             "invalid value for server_max_window_bits"),
            ("permessage-deflate; client_max_window_bits", None,
             "client_max_window_bits requires a value"),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None,
             "duplicate parameter server_no_context_takeover"),
            ("permessage-deflate; server_no_context_takeover=1", None,
             "server_no_context_takeover takes no value"),
            ("x-webkit-deflate-frame", None, "not offered: x-webkit-deflate-frame"),
            ("permessage-deflate, permessage-deflate", None, "more than one extension"),
            ("permessage-deflate; server_max_window_bits=12 junk", None, "malformed"),
        ]
        peer = startPeer(self, "raw_http_server")
        port = (await peer.nextReport())["port"]
        for answer, offers, reason in cases:
            factory = RecordingClientFactory(
                f"ws://127.0.0.1:{port}/extensions?answer={quote(answer)}", reactor=reactor,
                options=WebSocketOptions(perMessageCompressionOffers=offers),
            )
            error = await failureOf(connect(factory.url, factory, reactor=reactor), ResponseError)
            self.assertEqual(error.status, 101)
            self.assertIn("permessage-deflate", error.reason, answer)
            self.assertIn(reason, error.reason, answer)
            self.assertIn((await peer.nextReport())["hangUp"], ("eof", "reset"))
            self.assertTrue(factory.deliveredNothing(), answer)
        # Offering nothing, any extension in the answer is refused.
        factory = RecordingClientFactory(
            f"ws://127.0.0.1:{port}/extensions?answer=permessage-deflate", reactor=reactor,
            options=WebSocketOptions(perMessageDeflate=False),
        )
        error = await failureOf(connect(factory.url, factory, reactor=reactor), ResponseError)
        self.assertIn("not offered", error.reason)
        self.assertTrue(factory.deliveredNothing())
        # The same server's valid answer works, and its frame is delivered:
        # the refusals above are the answers', not the server's.
        protocol = await self.openClient(
            f"ws://127.0.0.1:{port}/extensions?answer={quote('permessage-deflate')}"
        )
        self.assertEqual(await protocol.nextMessage(), (b"hello", False))
