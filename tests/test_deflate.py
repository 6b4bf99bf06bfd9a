"""
Tests for L{txws.deflate}: permessage-deflate (RFC 7692), negotiation
(section 7.1) and per-message compression (section 7.2), and interop with
the C{websockets} implementation.  Decompression bombs are in
L{tests.test_deflate_bombs}.
"""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Sequence
from typing import Optional

from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import PerMessageDeflate as WSPerMessageDeflate
from websockets.frames import Frame
from websockets.frames import Opcode as WSOpcode

from tests.typedtrial import SynchronousTestCase
from txws.deflate import (
    DEFAULT_CLIENT_OFFER,
    RSV1,
    TRAILER,
    Compressor,
    Decompressor,
    DeflateError,
    NegotiationError,
    Params,
    PerMessageDeflate,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
    PerMessageDeflatePolicy,
    PerMessageDeflateResponse,
    PerMessageDeflateResponseAccept,
    buildOfferHeader,
    compressOnce,
    deflateMemory,
    inflateMemory,
    parseExtensionHeader,
    parseOffers,
    parseResponse,
    zlibWindowBits,
)
from txws.frames import CloseCode, FrameError

HELLO = bytes.fromhex("f248cdc9c90700")

#: Text that compresses as JSON does.
JSON = json.dumps(
    [{"id": i, "user": f"user{i}", "active": i % 3 == 0, "tags": ["a", "b"]} for i in range(60)]
).encode()


def offer(header: str) -> PerMessageDeflateOffer:
    """
    Parse a header holding one offer that must be valid.
    """
    offers = parseOffers([header])
    assert len(offers) == 1, offers
    return offers[0]


class HeaderParsingTests(SynchronousTestCase):
    """
    L{parseExtensionHeader}: RFC 6455 section 9.1 with quoted strings.
    """

    def test_tokensAndFlags(self) -> None:
        """
        Names and parameters are lower-cased; a flag has the value C{None}.
        """
        self.assertEqual(
            parseExtensionHeader(
                ["Permessage-Deflate; Client_Max_Window_Bits ;server_max_window_bits=10"]
            ),
            [
                (
                    "permessage-deflate",
                    [("client_max_window_bits", None), ("server_max_window_bits", "10")],
                )
            ],
        )

    def test_quotedValues(self) -> None:
        """
        A quoted value is unescaped, and a comma or semicolon inside it does
        not split anything.
        """
        self.assertEqual(
            parseExtensionHeader(['x; a="b,c;d", y; b="q\\"x"; c = "10"']),
            [("x", [("a", "b,c;d")]), ("y", [("b", 'q"x'), ("c", "10")])],
        )

    def test_severalHeadersAndEmptyItems(self) -> None:
        """
        Every occurrence of the header counts, in order; empty list items
        are ignored.
        """
        self.assertEqual(
            parseExtensionHeader([" , a ,, ", "b; x", ""]),
            [("a", []), ("b", [("x", None)])],
        )

    def test_duplicatesKept(self) -> None:
        """
        A repeated parameter is kept twice, for the caller to refuse.
        """
        self.assertEqual(
            parseExtensionHeader(["a; x=1; x=2"]), [("a", [("x", "1"), ("x", "2")])]
        )

    def test_malformed(self) -> None:
        """
        Anything outside the grammar raises L{NegotiationError}.
        """
        for value in [
            "a;",
            "a b",
            ";x",
            "a; =3",
            "a; x=",
            'a; x="open',
            "a; x=1 2",
            "a; x=@",
            "a/b",
            'a; x="\x01"',
        ]:
            self.assertRaises(NegotiationError, parseExtensionHeader, [value])


class OfferTests(SynchronousTestCase):
    """
    A server parsing offers (RFC 7692 sections 5 and 7.1): valid offers, and
    every reason to decline one.
    """

    def test_noParameters(self) -> None:
        """
        A bare offer: no limits, no requests.
        """
        o = offer("permessage-deflate")
        self.assertEqual(
            (
                o.accept_max_window_bits,
                o.request_no_context_takeover,
                o.request_max_window_bits,
                o.client_max_window_bits,
                o.client_no_context_takeover,
            ),
            (False, False, 0, 0, False),
        )
        self.assertTrue(o.accept_no_context_takeover)

    def test_everyParameter(self) -> None:
        """
        All four parameters, with the values they may have.
        """
        o = offer(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
            " server_max_window_bits=9; client_max_window_bits=11"
        )
        self.assertEqual(
            (
                o.request_no_context_takeover,
                o.client_no_context_takeover,
                o.request_max_window_bits,
                o.accept_max_window_bits,
                o.client_max_window_bits,
            ),
            (True, True, 9, True, 11),
        )

    def test_clientMaxWindowBitsWithoutValue(self) -> None:
        """
        C{client_max_window_bits} may come without a value.
        """
        o = offer("permessage-deflate; client_max_window_bits")
        self.assertEqual((o.accept_max_window_bits, o.client_max_window_bits), (True, 0))

    def test_everyWindowSize(self) -> None:
        """
        8 to 15 are accepted for both window parameters, quoted or not.
        """
        for bits in range(8, 16):
            for fmt in ("{}", '"{}"'):
                value = fmt.format(bits)
                o = offer(
                    f"permessage-deflate; server_max_window_bits={value};"
                    f" client_max_window_bits={value}"
                )
                self.assertEqual(
                    (o.request_max_window_bits, o.client_max_window_bits), (bits, bits)
                )

    def test_declined(self) -> None:
        """
        Unknown, repeated or valueless-required parameters, values on flags
        and bad window bits decline the offer.
        """
        for params in [
            "x_unknown",
            "server_no_context_takeover; server_no_context_takeover",
            "client_no_context_takeover; client_no_context_takeover",
            "client_max_window_bits; client_max_window_bits=10",
            "server_max_window_bits=10; server_max_window_bits=10",
            "server_no_context_takeover=1",
            'client_no_context_takeover=""',
            "server_max_window_bits",
            "server_max_window_bits=7",
            "server_max_window_bits=16",
            "server_max_window_bits=08",
            "server_max_window_bits=0x9",
            'server_max_window_bits="1 0"',
            "client_max_window_bits=7",
            "client_max_window_bits=16",
            "client_max_window_bits=010",
            "client_max_window_bits=+9",
        ]:
            declined: list[tuple[Params, str]] = []
            self.assertEqual(parseOffers([f"permessage-deflate; {params}"], declined), [], params)
            self.assertEqual(len(declined), 1)
            self.assertRaises(
                NegotiationError, PerMessageDeflateOffer.parse, parseExtensionHeader(
                    [f"permessage-deflate; {params}"]
                )[0][1]
            )

    def test_severalOffersInOrder(self) -> None:
        """
        Valid offers are kept in the client's order; invalid ones and other
        extensions are skipped.
        """
        offers = parseOffers(
            [
                "x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10",
                "permessage-deflate; bogus, permessage-deflate; server_no_context_takeover",
                "permessage-deflate",
            ]
        )
        self.assertEqual(
            [(o.request_max_window_bits, o.request_no_context_takeover) for o in offers],
            [(10, False), (0, True), (0, False)],
        )

    def test_malformedHeader(self) -> None:
        """
        A header that is not valid syntax raises (the handshake answers 400).
        """
        self.assertRaises(NegotiationError, parseOffers, ["permessage-deflate;"])

    def test_extensionString(self) -> None:
        """
        A client offer formats every parameter it carries.
        """
        self.assertEqual(
            PerMessageDeflateOffer(
                accept_no_context_takeover=True,
                accept_max_window_bits=True,
                request_no_context_takeover=True,
                request_max_window_bits=10,
                client_max_window_bits=12,
            ).get_extension_string(),
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=12;"
            " server_no_context_takeover; server_max_window_bits=10",
        )
        self.assertEqual(
            buildOfferHeader(), "permessage-deflate; client_max_window_bits"
        )
        self.assertEqual(
            buildOfferHeader([PerMessageDeflateOffer(), DEFAULT_CLIENT_OFFER]),
            "permessage-deflate; client_no_context_takeover; client_max_window_bits,"
            " permessage-deflate; client_max_window_bits",
        )

    def test_roundTrip(self) -> None:
        """
        What a client offer formats, a server parses back.
        """
        for nct in (False, True):
            for window in (False, True):
                for reqNct in (False, True):
                    for reqBits in (0, 8, 12, 15):
                        o = PerMessageDeflateOffer(nct, window, reqNct, reqBits)
                        p = offer(o.get_extension_string())
                        self.assertEqual(
                            (p.accept_max_window_bits, p.request_no_context_takeover,
                             p.request_max_window_bits, p.client_no_context_takeover),
                            (window, reqNct, reqBits, nct),
                        )

    def test_constructorChecks(self) -> None:
        """
        Autobahn's argument checks: bools and window bits.
        """
        self.assertRaises(TypeError, PerMessageDeflateOffer, 1)
        self.assertRaises(ValueError, PerMessageDeflateOffer, request_max_window_bits=7)
        self.assertRaises(ValueError, PerMessageDeflateOffer, request_max_window_bits=16)
        self.assertRaises(
            ValueError, PerMessageDeflateOffer, accept_max_window_bits=False,
            client_max_window_bits=10,
        )


class OfferAcceptTests(SynchronousTestCase):
    """
    L{PerMessageDeflateOfferAccept}: Autobahn's arguments, and the answer it
    formats (RFC 7692 section 7.1).
    """

    def test_plainAccept(self) -> None:
        """
        Accepting a bare offer answers a bare C{permessage-deflate}.
        """
        a = PerMessageDeflateOfferAccept(offer("permessage-deflate"))
        self.assertEqual(a.get_extension_string(), "permessage-deflate")
        self.assertEqual((a.serverMaxWindowBits, a.serverNoContextTakeover), (15, False))

    def test_requestsEchoed(self) -> None:
        """
        What the client requested of the server is in the answer.
        """
        a = PerMessageDeflateOfferAccept(
            offer("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
        )
        self.assertEqual(
            a.get_extension_string(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
        )
        self.assertEqual((a.serverMaxWindowBits, a.serverNoContextTakeover), (10, True))

    def test_requestsOfTheClient(self) -> None:
        """
        The server may ask for client no context takeover always, and limit
        the client's window when it offered C{client_max_window_bits}.
        """
        a = PerMessageDeflateOfferAccept(
            offer("permessage-deflate; client_max_window_bits"),
            request_no_context_takeover=True,
            request_max_window_bits=9,
        )
        self.assertEqual(
            a.get_extension_string(),
            "permessage-deflate; client_no_context_takeover; client_max_window_bits=9",
        )

    def test_clientHintLowersTheLimit(self) -> None:
        """
        Asking for more client window bits than the client said it will use
        is lowered to its value.
        """
        a = PerMessageDeflateOfferAccept(
            offer("permessage-deflate; client_max_window_bits=10"), request_max_window_bits=12
        )
        self.assertEqual(a.request_max_window_bits, 10)

    def test_overridesAnnounced(self) -> None:
        """
        A smaller window and no context takeover chosen by the server are
        announced (section 7.1.1.1 and 7.1.2.1 allow it unrequested).
        """
        a = PerMessageDeflateOfferAccept(
            offer("permessage-deflate"), no_context_takeover=True, window_bits=11
        )
        self.assertEqual(
            a.get_extension_string(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
        )

    def test_contradictions(self) -> None:
        """
        An acceptance that contradicts the offer is refused at once.
        """
        bare = offer("permessage-deflate")
        self.assertRaises(
            ValueError, PerMessageDeflateOfferAccept, bare, request_max_window_bits=10
        )
        self.assertRaises(
            ValueError,
            PerMessageDeflateOfferAccept,
            offer("permessage-deflate; server_no_context_takeover"),
            no_context_takeover=False,
        )
        self.assertRaises(
            ValueError,
            PerMessageDeflateOfferAccept,
            offer("permessage-deflate; server_max_window_bits=10"),
            window_bits=11,
        )
        self.assertRaises(ValueError, PerMessageDeflateOfferAccept, bare, window_bits=7)
        self.assertRaises(ValueError, PerMessageDeflateOfferAccept, bare, mem_level=10)
        self.assertRaises(TypeError, PerMessageDeflateOfferAccept, object())
        self.assertRaises(TypeError, PerMessageDeflateOfferAccept, bare, no_context_takeover=1)


class PolicyTests(SynchronousTestCase):
    """
    L{PerMessageDeflatePolicy}: the server's choice among offers.
    """

    def answer(self, policy: PerMessageDeflatePolicy, header: str) -> Optional[str]:
        accept = policy(parseOffers([header]))
        return None if accept is None else accept.get_extension_string()

    def test_defaults(self) -> None:
        """
        By default: 12 window bits both ways when the client lets the server
        limit its window; the browser offers of Chrome and Firefox.
        """
        policy = PerMessageDeflatePolicy()
        self.assertEqual(
            self.answer(policy, "permessage-deflate; client_max_window_bits"),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        )
        self.assertEqual(
            self.answer(policy, "permessage-deflate"),
            "permessage-deflate; server_max_window_bits=12",
        )

    def test_clientLimitsTheServer(self) -> None:
        """
        The client's C{server_max_window_bits} lowers the server's window,
        down to 8 (zlib then compresses with 9).
        """
        policy = PerMessageDeflatePolicy()
        accept = policy(parseOffers(["permessage-deflate; server_max_window_bits=8"]))
        assert accept is not None
        self.assertEqual(
            accept.get_extension_string(), "permessage-deflate; server_max_window_bits=8"
        )
        ext = PerMessageDeflate.fromOfferAccept(accept)
        self.assertEqual(ext.compressor.windowBits, 8)
        self.assertEqual(zlibWindowBits(ext.compressor.windowBits), 9)
        self.assertEqual(
            self.answer(policy, "permessage-deflate; server_max_window_bits=14"),
            "permessage-deflate; server_max_window_bits=12",
        )

    def test_noContextTakeover(self) -> None:
        """
        The policy's context takeover settings are announced.
        """
        policy = PerMessageDeflatePolicy(
            serverNoContextTakeover=True, clientNoContextTakeover=True, clientMaxWindowBits=0
        )
        self.assertEqual(
            self.answer(policy, "permessage-deflate; client_max_window_bits"),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12;"
            " client_no_context_takeover",
        )

    def test_firstAcceptableOffer(self) -> None:
        """
        Offers are tried in the client's order; with
        C{requireClientMaxWindowBits} an offer without it is passed over.
        """
        policy = PerMessageDeflatePolicy(requireClientMaxWindowBits=True)
        header = (
            "permessage-deflate; server_no_context_takeover,"
            " permessage-deflate; client_max_window_bits=10, permessage-deflate"
        )
        self.assertEqual(
            self.answer(policy, header),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
        )
        self.assertIsNone(self.answer(policy, "permessage-deflate"))
        self.assertIsNone(policy([]))

    def test_badSettings(self) -> None:
        """
        Settings out of range are refused.
        """
        self.assertRaises(ValueError, PerMessageDeflatePolicy, serverMaxWindowBits=7)
        self.assertRaises(ValueError, PerMessageDeflatePolicy, clientMaxWindowBits=16)
        self.assertRaises(ValueError, PerMessageDeflatePolicy, memLevel=0)
        self.assertRaises(
            ValueError, PerMessageDeflatePolicy, clientMaxWindowBits=0,
            requireClientMaxWindowBits=True,
        )

    def test_autobahnTestsuiteAccepts(self) -> None:
        """
        The accept functions of the Autobahn testsuite's cases 13.x, written
        against Autobahn's classes, work with these.
        """

        def accept5(offers: Sequence[PerMessageDeflateOffer]) -> Optional[
            PerMessageDeflateOfferAccept
        ]:
            for o in offers:
                if o.accept_no_context_takeover and o.accept_max_window_bits:
                    return PerMessageDeflateOfferAccept(
                        o, request_max_window_bits=8, request_no_context_takeover=True
                    )
            return None

        offers = parseOffers(
            ["permessage-deflate; client_no_context_takeover; client_max_window_bits;"
             " server_no_context_takeover; server_max_window_bits=8"]
        )
        accept = accept5(offers)
        assert accept is not None
        self.assertEqual(
            accept.get_extension_string(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=8;"
            " client_no_context_takeover; client_max_window_bits=8",
        )
        ext = PerMessageDeflate.fromOfferAccept(accept)
        self.assertEqual(
            (ext.compressor.windowBits, ext.compressor.noContextTakeover,
             ext.decompressor.windowBits, ext.decompressor.noContextTakeover),
            (8, True, 8, True),
        )


class ResponseTests(SynchronousTestCase):
    """
    A client checking the server's answer against its offers (RFC 7692
    section 7.1): the connection fails on any invalid answer.
    """

    def check(self, answer: str, offers: Sequence[PerMessageDeflateOffer] = (DEFAULT_CLIENT_OFFER,)
              ) -> PerMessageDeflateResponse:
        response = parseResponse([answer], offers)
        assert response is not None
        return response

    def test_noAnswer(self) -> None:
        """
        No header: no extension.
        """
        self.assertIsNone(parseResponse([], [DEFAULT_CLIENT_OFFER]))
        self.assertIsNone(parseResponse([" , "], [DEFAULT_CLIENT_OFFER]))

    def test_validAnswers(self) -> None:
        """
        Every parameter, as a server may answer the default offer.
        """
        r = self.check(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
            " server_max_window_bits=10; client_max_window_bits=9"
        )
        self.assertEqual(
            (r.server_no_context_takeover, r.client_no_context_takeover,
             r.server_max_window_bits, r.client_max_window_bits),
            (True, True, 10, 9),
        )
        self.assertIs(r.offer, DEFAULT_CLIENT_OFFER)
        bare = self.check("permessage-deflate")
        self.assertEqual((bare.server_max_window_bits, bare.client_max_window_bits), (0, 0))
        for bits in range(8, 16):
            self.check(f"permessage-deflate; client_max_window_bits={bits}")
            self.check(f'permessage-deflate; server_max_window_bits="{bits}"')

    def test_invalidAnswers(self) -> None:
        """
        Malformed, unknown, repeated, out of range, other extensions, two
        answers, or parameters the offer does not allow: all refused.
        """
        plain = PerMessageDeflateOffer(False, False)
        cases: list[tuple[str, Sequence[PerMessageDeflateOffer]]] = [
            ("permessage-deflate;", [DEFAULT_CLIENT_OFFER]),
            ("x-other", [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate, permessage-deflate", [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate", []),
            ("permessage-deflate; foo", [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate; server_no_context_takeover; server_no_context_takeover",
             [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate; client_no_context_takeover=1", [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate; client_max_window_bits", [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate; server_max_window_bits", [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate; server_max_window_bits=7", [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate; client_max_window_bits=16", [DEFAULT_CLIENT_OFFER]),
            ("permessage-deflate; client_max_window_bits=10", [plain]),
            ("permessage-deflate", [PerMessageDeflateOffer(False, True, True)]),
            ("permessage-deflate", [PerMessageDeflateOffer(False, True, False, 10)]),
            ("permessage-deflate; server_max_window_bits=11",
             [PerMessageDeflateOffer(False, True, False, 10)]),
            ("permessage-deflate; client_max_window_bits=11",
             [PerMessageDeflateOffer(False, True, client_max_window_bits=10)]),
        ]
        for answer, offers in cases:
            self.assertRaises(NegotiationError, parseResponse, [answer], offers)

    def test_matchesOneOfSeveral(self) -> None:
        """
        With several offers the answer is matched to the first it accepts.
        """
        first = PerMessageDeflateOffer(False, False, True, 10)
        second = PerMessageDeflateOffer(True, True)
        r = self.check("permessage-deflate; client_max_window_bits=12", [first, second])
        self.assertIs(r.offer, second)

    def test_responseAccept(self) -> None:
        """
        The client's compressor follows the answer, its own override, and
        the hint its offer gave.
        """
        r = self.check("permessage-deflate; client_max_window_bits=10; server_max_window_bits=9")
        a = PerMessageDeflateResponseAccept(r)
        self.assertEqual((a.clientMaxWindowBits, a.clientNoContextTakeover), (10, False))
        ext = PerMessageDeflate.fromResponseAccept(a, maxMessageSize=1000)
        self.assertEqual(
            (ext.compressor.windowBits, ext.decompressor.windowBits, ext.decompressor.maxSize,
             ext.isServer),
            (10, 9, 1000, False),
        )
        self.assertEqual(
            ext.extensionString,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=10",
        )
        self.assertEqual(PerMessageDeflateResponseAccept(r, window_bits=9).clientMaxWindowBits, 9)
        hinted = self.check(
            "permessage-deflate", [PerMessageDeflateOffer(True, True, False, 0, 11)]
        )
        a2 = PerMessageDeflateResponseAccept(hinted)
        self.assertEqual((a2.clientMaxWindowBits, a2.clientNoContextTakeover), (11, True))
        self.assertRaises(ValueError, PerMessageDeflateResponseAccept, r, window_bits=11)
        nct = self.check("permessage-deflate; client_no_context_takeover")
        self.assertRaises(
            ValueError, PerMessageDeflateResponseAccept, nct, no_context_takeover=False
        )
        self.assertRaises(TypeError, PerMessageDeflateResponseAccept, object())


class RFCExampleTests(SynchronousTestCase):
    """
    The examples of RFC 7692 section 7.2.3, byte for byte.
    """

    def test_helloCompressed(self) -> None:
        """
        7.2.3.1: "Hello" compresses to C{f2 48 cd c9 c9 07 00}.
        """
        self.assertEqual(Compressor().compress(b"Hello"), HELLO)
        self.assertEqual(Decompressor().decompress(HELLO), b"Hello")

    def test_helloFragmented(self) -> None:
        """
        7.2.3.1: the same payload in two frames.
        """
        d = Decompressor()
        self.assertEqual(
            b"".join(d.feed(HELLO[:3], False) + d.feed(HELLO[3:], True)), b"Hello"
        )

    def test_sharingTheWindow(self) -> None:
        """
        7.2.3.2: with context takeover the second "Hello" is
        C{f2 00 11 00 00}; without, it is the first payload again.
        """
        c = Compressor()
        self.assertEqual([c.compress(b"Hello"), c.compress(b"Hello")],
                         [HELLO, bytes.fromhex("f200110000")])
        d = Decompressor()
        self.assertEqual([d.decompress(HELLO), d.decompress(bytes.fromhex("f200110000"))],
                         [b"Hello", b"Hello"])
        c = Compressor(noContextTakeover=True)
        self.assertEqual([c.compress(b"Hello"), c.compress(b"Hello")], [HELLO, HELLO])
        self.assertEqual(compressOnce(b"Hello"), HELLO)
        self.assertEqual(compressOnce(b"Hello"), HELLO)

    def test_storedBlock(self) -> None:
        """
        7.2.3.3: a DEFLATE block with no compression.
        """
        payload = bytes.fromhex("000500faff48656c6c6f00")
        self.assertEqual(Decompressor().decompress(payload), b"Hello")

    def test_finalBlock(self) -> None:
        """
        7.2.3.4: a block with BFINAL set, and the connection goes on (with
        context takeover, later messages may refer back past it).
        """
        d = Decompressor()
        self.assertEqual(d.decompress(bytes.fromhex("f348cdc9c9070000")), b"Hello")
        self.assertEqual(d.decompress(bytes.fromhex("f200110000")), b"Hello")
        self.assertEqual(d.decompress(HELLO), b"Hello")
        # A sender that ends with the final block and no empty block.
        self.assertEqual(d.decompress(bytes.fromhex("f348cdc9c90700")), b"Hello")
        self.assertEqual(d.decompress(HELLO), b"Hello")
        d = Decompressor()
        self.assertEqual(d.feed(bytes.fromhex("f348cdc9c90700"), True), [b"Hello"])
        self.assertEqual(d.feed(HELLO, True), [b"Hello"])

    def test_blocksAfterFinalBlocks(self) -> None:
        """
        Section 7.2.1: blocks follow a block with BFINAL set, in the same
        message and in later ones; with context takeover a later message may
        refer back past the final block.  Whole, and split at every offset.
        """

        def finalBlock(data: bytes, zdict: bytes = b"") -> bytes:
            c = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY,
                                 *([zdict] if zdict else []))
            return c.compress(data) + c.flush(zlib.Z_FINISH)

        text = b"context takeover " * 40
        d = Decompressor()
        self.assertEqual(d.decompress(finalBlock(text) + b"\x00"), text)
        c = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY, text)
        again = (c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
        self.assertLess(len(again), 20)
        self.assertEqual(d.decompress(again), text)

        noise = os.urandom(6000)
        payload = (
            finalBlock(b"Hello") + finalBlock(b" world") + finalBlock(noise)
            + Compressor().compress(b"!")
        )
        expected = b"Hello world" + noise + b"!"
        self.assertEqual(Decompressor().decompress(payload), expected)
        d = Decompressor()
        for cut in range(0, len(payload) + 1, 97):
            out = d.feed(payload[:cut], False) + d.feed(payload[cut:], True)
            self.assertEqual(b"".join(out), expected)
            self.assertEqual(d.decompress(HELLO), b"Hello")

    def test_twoBlocks(self) -> None:
        """
        7.2.3.5: two DEFLATE blocks in one message.
        """
        payload = bytes.fromhex("f24805000000ffffcac9c90700")
        self.assertEqual(Decompressor().decompress(payload), b"Hello")
        d = Decompressor()
        self.assertEqual(
            b"".join(d.feed(payload[:8], False) + d.feed(payload[8:], True)), b"Hello"
        )

    def test_emptyMessage(self) -> None:
        """
        7.2.3.6: an empty message compresses to C{00}, which inflates to
        nothing.
        """
        self.assertEqual(Compressor().compress(b""), b"\x00")
        self.assertEqual(Decompressor().decompress(b"\x00"), b"")
        d = Decompressor()
        self.assertEqual(d.feed(b"", False) + d.feed(b"\x00", True), [])


class CompressionTests(SynchronousTestCase):
    """
    L{Compressor} and L{Decompressor} (RFC 7692 section 7.2).
    """

    def test_roundTripEveryConfiguration(self) -> None:
        """
        Every window size, with and without context takeover, and several
        memory levels: messages come back as sent.
        """
        messages = [JSON, b"", b"x", JSON[:300], os.urandom(3000), JSON * 3, b"Hello"]
        for bits in range(8, 16):
            for nct in (False, True):
                for memLevel in (1, 5, 9):
                    c = Compressor(bits, nct, memLevel)
                    d = Decompressor(bits, nct, maxSize=1 << 20)
                    for m in messages:
                        self.assertEqual(d.decompress(c.compress(m)), m)
                    self.assertEqual(d.holdsState, not nct)

    def test_contextTakeoverShrinks(self) -> None:
        """
        A repeated message compresses to a few bytes with context takeover,
        and to the same bytes as a first message without it.
        """
        c = Compressor()
        first = c.compress(JSON)
        self.assertLess(len(c.compress(JSON)), len(first) // 4)
        c = Compressor(noContextTakeover=True)
        self.assertEqual([c.compress(JSON), c.compress(JSON)], [first, first])

    def test_fragmentedAtEveryOffset(self) -> None:
        """
        A compressed message split into two frames at every offset, and
        into one-byte frames, inflates to the message.
        """
        message = JSON[:700] + b"Hello" * 20
        for nct in (False, True):
            c = Compressor(noContextTakeover=nct)
            d = Decompressor(noContextTakeover=nct)
            for cut in range(len(Compressor().compress(message)) + 1):
                data = c.compress(message)
                cut = min(cut, len(data))
                chunks = d.feed(data[:cut], False) + d.feed(data[cut:], True)
                self.assertEqual(b"".join(chunks), message)
                self.assertFalse(d.inMessage)
            data = c.compress(message)
            chunks = [x for i in range(len(data)) for x in d.feed(data[i : i + 1], False)]
            chunks += d.feed(b"", True)
            self.assertEqual(b"".join(chunks), message)

    def test_streamedCompression(self) -> None:
        """
        L{Compressor.compressFragment}: a message streamed in fragments
        inflates frame by frame, and the contexts stay in step.
        """
        for nct in (False, True):
            c = Compressor(noContextTakeover=nct)
            d = Decompressor(noContextTakeover=nct)
            for _ in range(3):
                pieces = [JSON[:100], b"", JSON[100:2000], JSON[2000:]]
                frames = [c.compressFragment(p, i == len(pieces) - 1) for i, p in enumerate(pieces)]
                out = [x for i, f in enumerate(frames) for x in d.feed(f, i == len(frames) - 1)]
                self.assertEqual(b"".join(out), JSON)
                self.assertEqual(d.decompress(c.compress(b"Hello")), b"Hello")
            c.compressFragment(b"a", False)
            self.assertRaises(ValueError, c.compress, b"b")

    def test_stream(self) -> None:
        """
        L{Decompressor.stream} yields the same chunks as L{feed}, each at
        most one step.
        """
        c = Compressor()
        d = Decompressor(step=1000)
        data = c.compress(JSON)
        chunks = list(d.stream(data[:10], False)) + list(d.stream(data[10:], True))
        self.assertEqual(b"".join(chunks), JSON)
        self.assertTrue(all(len(x) <= 1000 for x in chunks))
        self.assertGreater(len(chunks), 2)

    def test_threshold(self) -> None:
        """
        Messages under the threshold go uncompressed (RSV1 clear).
        """
        c = Compressor(threshold=64)
        self.assertEqual(c.encode(b"short"), (0, b"short"))
        rsv, data = c.encode(JSON)
        self.assertEqual(rsv, RSV1)
        self.assertEqual(Decompressor().decompress(data), JSON)

    def test_eightBitWindow(self) -> None:
        """
        With 8 window bits negotiated, what the compressor produces (zlib
        with 9) inflates with a real 256-byte window, across messages.
        """
        c = Compressor(8)
        inflater = zlib.decompressobj(-8)
        rng = __import__("random").Random(7)
        words = [b"alpha", b"beta", b"gamma", b"delta", b"epsilon", b"zeta"]
        for _ in range(200):
            m = b" ".join(rng.choice(words) + str(rng.randrange(600)).encode() for _ in range(80))
            self.assertEqual(inflater.decompress(c.compress(m) + TRAILER), m)

    def test_compressOnce(self) -> None:
        """
        L{compressOnce} gives every call a fresh context: the same bytes for
        the same message, inflated by any decompressor of a large enough
        window, whatever came before.
        """
        subscribers = [Decompressor(bits) for bits in (12, 13, 15)]
        first = compressOnce(JSON, 12, 5)
        for m in (b"Hello", JSON, os.urandom(500), JSON):
            data = compressOnce(m, 12, 5)
            for d in subscribers:
                self.assertEqual(d.decompress(data), m)
        self.assertEqual(compressOnce(JSON, 12, 5), first)
        self.assertEqual(
            Compressor(12, True, 5).sharedKey, (12, 5, -1)
        )
        self.assertIsNone(Compressor(12, False, 5).sharedKey)

    def test_corruptData(self) -> None:
        """
        Data that does not inflate raises L{DeflateError} with 1007, a
        L{FrameError}.
        """
        for data in (b"\xff\xff\xff", b"\x07" + b"\x00" * 10, HELLO[:3] + b"\xfe" * 8):
            for big in (False, True):
                payload = data + (os.urandom(5000) if big else b"")
                e = self.assertRaises(DeflateError, Decompressor().decompress, payload)
                self.assertEqual(e.code, CloseCode.INVALID_PAYLOAD)
                self.assertIsInstance(e, FrameError)
                d = Decompressor()
                e = self.assertRaises(
                    DeflateError,
                    lambda p=payload, d=d: d.feed(p, False) + d.feed(b"", True),
                )
                self.assertEqual(e.code, 1007)

    def test_releasedWithoutContextTakeover(self) -> None:
        """
        Without context takeover the inflater is released after each
        message and created at the next.
        """
        d = Decompressor(noContextTakeover=True)
        self.assertFalse(d.holdsState)
        d.feed(HELLO[:2], False)
        self.assertTrue(d.holdsState)
        d.feed(HELLO[2:], True)
        self.assertFalse(d.holdsState)

    def test_compressorReleased(self) -> None:
        """
        Without context takeover a small compressor is released after every
        message, a 15/8 one is kept (and reset); with context takeover it is
        kept.
        """
        for bits, memLevel, nct, held in (
            (12, 5, True, False), (15, 8, True, True), (12, 5, False, True),
            (15, 8, False, True),
        ):
            c = Compressor(bits, nct, memLevel)
            self.assertFalse(c.holdsState)
            c.compress(JSON)
            self.assertEqual(c.holdsState, held)
            c.compressFragment(b"a", False)
            self.assertTrue(c.holdsState)
            c.compressFragment(b"b", True)
            self.assertEqual(c.holdsState, held)
        self.assertFalse(Compressor(15, True, 8, release=True).compress(b"x") == b"")
        self.assertFalse(Compressor(12, False, 5, release=True).release)

    def test_misuse(self) -> None:
        """
        Bad settings and a whole message during a fragmented one raise
        L{ValueError}.
        """
        self.assertRaises(ValueError, Compressor, 7)
        self.assertRaises(ValueError, Compressor, memLevel=0)
        self.assertRaises(ValueError, Compressor, level=10)
        self.assertRaises(ValueError, Decompressor, 16)
        self.assertRaises(ValueError, Decompressor, maxSize=-1)
        self.assertRaises(ValueError, Decompressor, step=0)
        d = Decompressor()
        d.feed(HELLO[:2], False)
        self.assertRaises(ValueError, d.decompress, HELLO)

    def test_memoryFormulas(self) -> None:
        """
        zlib's documented sizes.
        """
        self.assertEqual(deflateMemory(15, 8), 256 * 1024)
        self.assertEqual(deflateMemory(12, 5), 32 * 1024)
        self.assertEqual(deflateMemory(8, 1), deflateMemory(9, 1))
        self.assertEqual(inflateMemory(15), 32 * 1024)


class WebsocketsInteropTests(SynchronousTestCase):
    """
    Messages compressed by C{websockets}' own permessage-deflate inflate
    here, and the other way round, in every configuration both support.
    """

    def pair(
        self, bits: int, nct: bool
    ) -> tuple[Compressor, Decompressor, WSPerMessageDeflate]:
        ws = WSPerMessageDeflate(nct, nct, bits, max(bits, 9))
        return Compressor(bits, nct), Decompressor(max(bits, 9), nct), ws

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(st.binary(max_size=3000) | st.text(max_size=800).map(str.encode), max_size=6),
        st.integers(9, 15),
        st.booleans(),
    )
    def test_bothDirections(self, messages: list[bytes], bits: int, nct: bool) -> None:
        """
        Each side inflates what the other compresses, message after message.
        """
        ours, inflater, ws = self.pair(bits, nct)
        for m in messages:
            frame = ws.decode(
                Frame(WSOpcode.BINARY, ours.compress(m), rsv1=True), max_size=1 << 20
            )
            self.assertEqual(frame.data, m)
            encoded = ws.encode(Frame(WSOpcode.BINARY, m))
            self.assertTrue(encoded.rsv1)
            self.assertEqual(inflater.decompress(bytes(encoded.data)), m)

    @settings(max_examples=25, deadline=None)
    @given(st.binary(min_size=1, max_size=5000), st.integers(1, 6), st.booleans())
    def test_fragmented(self, message: bytes, parts: int, nct: bool) -> None:
        """
        A message C{websockets} sends in fragments inflates frame by frame.
        """
        _, inflater, ws = self.pair(15, nct)
        size = -(-len(message) // parts)
        pieces = [message[i : i + size] for i in range(0, len(message), size)]
        out: list[bytes] = []
        for i, piece in enumerate(pieces):
            fin = i == len(pieces) - 1
            frame = ws.encode(Frame(WSOpcode.BINARY if i == 0 else WSOpcode.CONT, piece, fin))
            self.assertEqual(frame.rsv1, i == 0)
            out += inflater.feed(bytes(frame.data), fin)
        self.assertEqual(b"".join(out), message)


class EndToEndNegotiationTests(SynchronousTestCase):
    """
    A txws client and a txws server negotiate (every client offer against
    every policy) and then exchange messages both ways.
    """

    def test_everyCombination(self) -> None:
        """
        Every answer the policy gives is one the client accepts, and the
        extensions both ends build inflate each other's messages.
        """
        offers = [
            PerMessageDeflateOffer(nct, window, reqNct, reqBits, hint)
            for nct in (False, True)
            for window in (False, True)
            for reqNct in (False, True)
            for reqBits in (0, 8, 10, 15)
            for hint in ((0, 9, 15) if window else (0,))
        ]
        policies = [
            PerMessageDeflatePolicy(snct, cnct, sbits, cbits)
            for snct in (False, True)
            for cnct in (False, True)
            for sbits in (8, 12, 15)
            for cbits in (0, 8, 12)
        ]
        messages = [JSON[:500], b"", JSON, b"Hello"]
        for o in offers:
            sent = [o, DEFAULT_CLIENT_OFFER]
            serverOffers = parseOffers([buildOfferHeader(sent)])
            self.assertEqual(len(serverOffers), 2)
            for policy in policies:
                accept = policy(serverOffers)
                assert accept is not None
                server = PerMessageDeflate.fromOfferAccept(accept, maxMessageSize=1 << 20)
                response = parseResponse([server.extensionString], sent)
                assert response is not None
                self.assertIs(response.offer, o)
                client = PerMessageDeflate.fromResponseAccept(
                    PerMessageDeflateResponseAccept(response), maxMessageSize=1 << 20
                )
                self.assertEqual(client.extensionString, server.extensionString)
                self.assertLessEqual(
                    client.compressor.windowBits, server.decompressor.windowBits
                )
                self.assertLessEqual(
                    server.compressor.windowBits, client.decompressor.windowBits
                )
                if server.decompressor.noContextTakeover:
                    self.assertTrue(client.compressor.noContextTakeover)
                if client.decompressor.noContextTakeover:
                    self.assertTrue(server.compressor.noContextTakeover)
                for m in messages:
                    self.assertEqual(
                        server.decompressor.decompress(client.compressor.compress(m)), m
                    )
                    self.assertEqual(
                        client.decompressor.decompress(server.compressor.compress(m)), m
                    )

    def test_limits(self) -> None:
        """
        The connection's limit and an acceptance's C{max_message_size}: the
        smaller one applies.
        """
        o = offer("permessage-deflate")
        for limit, own, expected in ((0, None, 0), (100, None, 100), (0, 50, 50),
                                     (100, 50, 50), (50, 100, 50)):
            ext = PerMessageDeflate.fromOfferAccept(
                PerMessageDeflateOfferAccept(o, max_message_size=own), maxMessageSize=limit
            )
            self.assertEqual(ext.decompressor.maxSize, expected)

    def test_clientHintFreesTheServerInflater(self) -> None:
        """
        An offer with C{client_no_context_takeover} lets the server release
        its inflater after every message.
        """
        accept = PerMessageDeflatePolicy()(
            parseOffers(["permessage-deflate; client_no_context_takeover"])
        )
        assert accept is not None
        self.assertTrue(PerMessageDeflate.fromOfferAccept(accept).decompressor.noContextTakeover)


class FuzzTests(SynchronousTestCase):
    """
    Whatever a peer sends, the parsers raise only their one exception type.
    """

    @settings(max_examples=300, deadline=None)
    @given(
        st.text(alphabet=st.sampled_from(list('permsag-dflt_ciwnbox ;,="\\\t9815')), max_size=80)
    )
    def test_headerParser(self, value: str) -> None:
        """
        L{parseExtensionHeader}, L{parseOffers} and L{parseResponse} raise
        nothing but L{NegotiationError}.
        """
        for f in (
            lambda: parseExtensionHeader([value]),
            lambda: parseOffers([value]),
            lambda: parseResponse([value], [DEFAULT_CLIENT_OFFER]),
        ):
            with contextlib.suppress(NegotiationError):
                f()

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.integers(1, 300), st.sampled_from([0, 10, 1000]))
    def test_decompressor(self, data: bytes, cut: int, limit: int) -> None:
        """
        L{Decompressor} raises nothing but L{DeflateError} (1007 or 1009),
        and never returns more than the limit.
        """
        for run in (
            lambda d: [d.decompress(data)],
            lambda d: d.feed(data[:cut], False) + d.feed(data[cut:], True),
        ):
            try:
                out = run(Decompressor(maxSize=limit, step=64))
            except DeflateError as e:
                self.assertIn(e.code, (1007, 1009))
            else:
                if limit:
                    self.assertLessEqual(sum(map(len, out)), limit)

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(
            st.binary(max_size=2000)
            | st.tuples(st.binary(min_size=1, max_size=300), st.integers(2, 30)).map(
                lambda t: t[0] * t[1]
            ),
            min_size=1,
            max_size=8,
        )
    )
    def test_eightBitWindowAnyData(self, messages: list[bytes]) -> None:
        """
        With 8 window bits negotiated, any messages inflate with a real
        256-byte window.
        """
        c = Compressor(8)
        inflater = zlib.decompressobj(-8)
        for m in messages:
            self.assertEqual(inflater.decompress(c.compress(m) + TRAILER), m)


class AutobahnInteropTests(SynchronousTestCase):
    """
    Autobahn's own classes and compressor: the same offer strings for the
    same arguments, and messages inflate both ways.
    """

    def test_sameOfferStrings(self) -> None:
        """
        An offer and an acceptance built with the same Autobahn arguments
        format the same header values.
        """
        from autobahn.websocket import compress

        for nct in (False, True):
            for window in (False, True):
                for reqNct in (False, True):
                    for reqBits in (0, 9, 15):
                        args = (nct, window, reqNct, reqBits)
                        ours = PerMessageDeflateOffer(*args)
                        theirs = compress.PerMessageDeflateOffer(*args)
                        self.assertEqual(
                            sorted(ours.get_extension_string().split("; ")),
                            sorted(theirs.get_extension_string().split("; ")),
                        )
                        parsed = offer(ours.get_extension_string())
                        if window and nct:
                            mine = PerMessageDeflateOfferAccept(
                                parsed, request_no_context_takeover=True,
                                request_max_window_bits=10,
                            )
                            autobahns = compress.PerMessageDeflateOfferAccept(
                                theirs, request_no_context_takeover=True,
                                request_max_window_bits=10,
                            )
                            self.assertEqual(
                                sorted(mine.get_extension_string().split("; ")),
                                sorted(autobahns.get_extension_string().split("; ")),
                            )

    def test_messagesBothWays(self) -> None:
        """
        Autobahn's compressor and ours, with and without context takeover,
        window bits 9-15.
        """
        from autobahn.websocket import compress

        for bits in (9, 12, 15):
            for nct in (False, True):
                theirs = compress.PerMessageDeflate(True, nct, nct, bits, bits, 8)
                ours = Compressor(bits, nct)
                inflater = Decompressor(bits, nct)
                for m in (JSON, b"Hello", b"", JSON[:100] * 3):
                    theirs.start_compress_message()
                    data = theirs.compress_message_data(m) + theirs.end_compress_message()
                    self.assertEqual(inflater.decompress(data), m)
                    theirs.start_decompress_message()
                    out = theirs.decompress_message_data(ours.compress(m))
                    theirs.end_decompress_message()
                    self.assertEqual(out, m)
