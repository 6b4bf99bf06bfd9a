"""
Tests of permessage-deflate (RFC 7692) on txws connections: the server's
and the client's negotiation, compressed messages received (whole,
fragmented, streamed in pieces, refused) and sent (whole, fragmented, frame
by frame, prepared for many connections), over L{StringTransport}s.

The peer's side is written here with C{zlib} directly, so that every test
checks txws against the RFC's wire format rather than against itself.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Sequence
from typing import Any, Optional

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from tests.support import (
    RecordingClient,
    RecordingServer,
    acceptFor,
    clientFactory,
    clientFrame,
    connectServer,
    serverFactory,
    upgradeRequest,
)
from tests.test_reassembly import deflated
from tests.typedtrial import SynchronousTestCase
from txws.deflate import (
    Compressor,
    PerMessageDeflate,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
    PerMessageDeflatePolicy,
    PerMessageDeflateResponse,
    PerMessageDeflateResponseAccept,
)
from txws.frames import PreparedMessage, serializeFrame
from txws.hub.service import HUB_DEFLATE_POLICY
from txws.protocol import State

_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
_JSON = b'{"id": 12345, "name": "txws", "tags": ["a", "b", "c"], "ok": true}' * 20



class Inflater:
    """
    The peer's decompressor, with context takeover: inflates the payloads
    of compressed messages in order.
    """

    def __init__(self, windowBits: int = 15) -> None:
        self._obj = zlib.decompressobj(-windowBits)

    def inflate(self, payload: bytes, final: bool = True) -> bytes:
        """
        @param final: whether C{payload} ends a message (the trailer the
            sender removed is then appended).
        """
        return self._obj.decompress(payload + (b"\x00\x00\xff\xff" if final else b""))


def openDeflateServer(
    extra: str = _OFFER, **options: Any
) -> tuple[RecordingServer, StringTransport, bytes]:
    """
    @return: a server connection after a handshake offering
        permessage-deflate, its transport (cleared), and the 101 answer.
    """
    protocol, transport = connectServer(serverFactory(**options))
    protocol.dataReceived(upgradeRequest(extra=extra))
    answer = transport.value()
    transport.clear()
    assert isinstance(protocol, RecordingServer)
    return protocol, transport, answer


def extensionsHeader(answer: bytes) -> Optional[str]:
    """
    @return: the C{Sec-WebSocket-Extensions} value of an HTTP answer.
    """
    for line in answer.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-extensions":
            return value.strip().decode()
    return None


def sentFrames(transport: StringTransport, masked: bool = False) -> list[tuple[bool, int, bytes]]:
    """
    @return: the frames written to C{transport} (RSV1 as C{0x40} in the
        opcode), which is then cleared.
    """
    from txws.frames import parseFrames

    frames, consumed, pending, error = parseFrames(transport.value(), masked, 0, 0x40)
    assert error is None and pending is None and consumed == len(transport.value())
    transport.clear()
    return frames


class ServerNegotiationTests(SynchronousTestCase):
    """
    The server accepts one offer through its policy (RFC 7692 section 5).
    """

    def test_defaultPolicy(self) -> None:
        """
        By default a browser's offer is accepted with 12-bit windows both
        ways, context takeover kept.
        """
        protocol, _, answer = openDeflateServer()
        self.assertEqual(
            extensionsHeader(answer),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
        )
        [extension] = protocol.websocket_extensions_in_use
        self.assertIsInstance(extension, PerMessageDeflate)
        self.assertEqual(extension.compressor.windowBits, 12)
        self.assertFalse(extension.compressor.noContextTakeover)
        self.assertEqual(extension.decompressor.windowBits, 12)
        self.assertEqual(extension.decompressor.maxSize, 1024 * 1024)

    def test_withoutClientWindowBits(self) -> None:
        """
        An offer without C{client_max_window_bits} cannot be asked to limit
        the client's window: the answer does not, and we inflate with 15.
        """
        protocol, _, answer = openDeflateServer("Sec-WebSocket-Extensions: permessage-deflate\r\n")
        self.assertEqual(extensionsHeader(answer), "permessage-deflate; server_max_window_bits=12")
        self.assertEqual(protocol.websocket_extensions_in_use[0].decompressor.windowBits, 15)

    def test_requestsHonoured(self) -> None:
        """
        The client's server_no_context_takeover and server_max_window_bits
        are honoured; the hub's policy asks for no context takeover both
        ways.
        """
        extra = (
            "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover;"
            " server_max_window_bits=10; client_max_window_bits=11\r\n"
        )
        protocol, _, answer = openDeflateServer(extra)
        self.assertEqual(
            extensionsHeader(answer),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10;"
            " client_max_window_bits=11",
        )
        compressor = protocol.websocket_extensions_in_use[0].compressor
        self.assertEqual((compressor.windowBits, compressor.noContextTakeover), (10, True))
        _, _, answer = openDeflateServer(perMessageCompressionAccept=HUB_DEFLATE_POLICY)
        self.assertEqual(
            extensionsHeader(answer),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12;"
            " client_no_context_takeover; client_max_window_bits=12",
        )

    def test_invalidOfferDeclinedNextAccepted(self) -> None:
        """
        Invalid offers (a duplicate or unknown parameter, bad window bits)
        are declined and the next valid one, in the client's order, is
        accepted; with none valid, the connection opens uncompressed.
        """
        extra = (
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=16,"
            " permessage-deflate; client_no_context_takeover; client_no_context_takeover,"
            " permessage-deflate; foo, permessage-deflate; server_no_context_takeover\r\n"
        )
        _, _, answer = openDeflateServer(extra)
        self.assertEqual(
            extensionsHeader(answer),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12",
        )
        protocol, _, answer = openDeflateServer(
            "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=08\r\n"
        )
        self.assertTrue(answer.startswith(b"HTTP/1.1 101 "))
        self.assertIsNone(extensionsHeader(answer))
        self.assertEqual(protocol.websocket_extensions_in_use, [])

    def test_quotedValues(self) -> None:
        """
        Quoted parameter values are valid syntax (RFC 6455 section 9.1),
        even with a comma inside.
        """
        _, _, answer = openDeflateServer(
            'Sec-WebSocket-Extensions: x-other; p="a, b", permessage-deflate;'
            ' client_max_window_bits="10"\r\n'
        )
        self.assertEqual(
            extensionsHeader(answer),
            "permessage-deflate; server_max_window_bits=12; client_max_window_bits=10",
        )

    def test_malformedHeader(self) -> None:
        """
        A header that is not valid syntax at all is refused with 400.
        """
        _, _, answer = openDeflateServer("Sec-WebSocket-Extensions: permessage-deflate;;\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer)

    def test_autobahnStyleAccept(self) -> None:
        """
        An Autobahn application's C{perMessageCompressionAccept} (a function
        of the offers returning an acceptance) decides.
        """
        seen: list[Sequence[PerMessageDeflateOffer]] = []

        def accept(offers: Sequence[PerMessageDeflateOffer]) -> Any:
            seen.append(offers)
            return PerMessageDeflateOfferAccept(
                offers[0], request_no_context_takeover=True, window_bits=9
            )

        protocol, _, answer = openDeflateServer(perMessageCompressionAccept=accept)
        self.assertEqual(len(seen[0]), 1)
        self.assertTrue(seen[0][0].accept_max_window_bits)
        self.assertEqual(
            extensionsHeader(answer),
            "permessage-deflate; server_max_window_bits=9; client_no_context_takeover",
        )
        self.assertTrue(protocol.websocket_extensions_in_use[0].decompressor.noContextTakeover)

    def test_declined(self) -> None:
        """
        A policy returning C{None}, or C{perMessageDeflate} off, opens the
        connection uncompressed.
        """
        for options in (
            {"perMessageCompressionAccept": lambda offers: None},
            {"perMessageDeflate": False},
        ):
            protocol, _, answer = openDeflateServer(**options)
            self.assertTrue(answer.startswith(b"HTTP/1.1 101 "))
            self.assertIsNone(extensionsHeader(answer))
            self.assertIs(protocol.state, State.OPEN)

    def test_policyFails(self) -> None:
        """
        A policy that raises, or returns something else than an acceptance
        of one of the offers, refuses the handshake with 500 and logs it.
        """
        other = PerMessageDeflateOffer()

        def raises(offers: object) -> None:
            raise RuntimeError("boom")

        for accept in (
            raises,
            lambda offers: "yes",
            lambda offers: PerMessageDeflateOfferAccept(other),
        ):
            _, _, answer = openDeflateServer(perMessageCompressionAccept=accept)
            self.assertTrue(answer.startswith(b"HTTP/1.1 500 "), answer)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError, TypeError)), 3)

    def test_policyValidated(self) -> None:
        """
        The option must be callable.
        """
        self.assertRaises(ValueError, serverFactory, perMessageCompressionAccept=12)


class ServerReceiveTests(SynchronousTestCase):
    """
    Compressed messages from the client.
    """

    def setUp(self) -> None:
        self.protocol, self.transport, _ = openDeflateServer()

    def closeCode(self) -> int:
        frames = sentFrames(self.transport)
        self.assertEqual(frames[-1][1], 0x8)
        return int.from_bytes(frames[-1][2][:2], "big")

    def test_wholeAndFragmented(self) -> None:
        """
        A compressed message in one frame, then one in three fragments (RSV1
        on the first only), then an uncompressed one: all delivered.
        """
        data = deflated(_JSON, 12)
        self.protocol.dataReceived(clientFrame(0x1, data, rsv=0x40))
        third = len(data) // 3
        self.protocol.dataReceived(
            clientFrame(0x2, data[:third], fin=False, rsv=0x40)
            + clientFrame(0x0, data[third : 2 * third], fin=False)
            + clientFrame(0x0, data[2 * third :])
        )
        self.protocol.dataReceived(clientFrame(0x1, b"plain"))
        self.assertEqual(
            self.protocol.messages(), [(_JSON, False), (_JSON, True), (b"plain", False)]
        )

    def test_contextTakeover(self) -> None:
        """
        The client's compressor keeps its context: later messages refer
        back into earlier ones, and inflate.
        """
        compressor = zlib.compressobj(6, zlib.DEFLATED, -12)
        for i in range(5):
            text = _JSON + str(i).encode()
            data = (compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
            self.protocol.dataReceived(clientFrame(0x1, data, rsv=0x40))
        self.assertEqual(
            self.protocol.messages(), [(_JSON + str(i).encode(), False) for i in range(5)]
        )

    def test_streamedByteByByte(self) -> None:
        """
        Compressed frames arriving a byte at a time (their payloads streamed
        in pieces) give the same messages.
        """
        data = deflated(_JSON * 10, 12)
        wire = clientFrame(0x1, data[:500], fin=False, rsv=0x40) + clientFrame(0x0, data[500:])
        for i in range(len(wire)):
            self.protocol.dataReceived(wire[i : i + 1])
        self.assertEqual(self.protocol.messages(), [(_JSON * 10, False)])

    def test_bomb(self) -> None:
        """
        A few KiB inflating past the message limit close the connection
        with 1009 before more than the limit is inflated.
        """
        bomb = deflated(b"\x00" * (8 * 1024 * 1024), 12)
        self.assertLess(len(bomb), 16384)
        self.protocol.dataReceived(clientFrame(0x2, bomb, rsv=0x40))
        self.assertEqual(self.closeCode(), 1009)
        self.assertEqual(self.protocol.messages(), [])

    def test_invalidTextAfterInflation(self) -> None:
        """
        Inflated text that is not UTF-8 closes with 1007.
        """
        self.protocol.dataReceived(clientFrame(0x1, deflated(b"abc\xc3\x28", 12), rsv=0x40))
        self.assertEqual(self.closeCode(), 1007)

    def test_corruptData(self) -> None:
        """
        A payload that does not inflate closes with 1007.
        """
        self.protocol.dataReceived(clientFrame(0x2, b"\xff\xff\xff", rsv=0x40))
        self.assertEqual(self.closeCode(), 1007)

    def test_rsvViolations(self) -> None:
        """
        RSV1 on a continuation or a control frame, and RSV2 or RSV3 even
        with the extension, are protocol errors (1002).
        """
        for wire in (
            clientFrame(0x1, deflated(b"a"), fin=False, rsv=0x40)
            + clientFrame(0x0, deflated(b"b"), rsv=0x40),
            clientFrame(0x9, b"", rsv=0x40),
            clientFrame(0x1, b"x", rsv=0x20),
            clientFrame(0x1, b"x", rsv=0x10),
        ):
            protocol, transport, _ = openDeflateServer()
            protocol.dataReceived(wire)
            frames = sentFrames(transport)
            self.assertEqual(frames[-1][:2], (True, 0x8))
            self.assertEqual(frames[-1][2][:2], (1002).to_bytes(2, "big"), wire)

    def test_rsv1WithoutExtension(self) -> None:
        """
        Without the extension, RSV1 is a protocol error (1002).
        """
        protocol, transport, _ = openDeflateServer(perMessageDeflate=False)
        protocol.dataReceived(clientFrame(0x1, deflated(b"a"), rsv=0x40))
        self.assertEqual(sentFrames(transport)[-1][2][:2], (1002).to_bytes(2, "big"))

    def test_stateReleased(self) -> None:
        """
        The connection lets go of its zlib state when it is lost.
        """
        self.protocol.dataReceived(clientFrame(0x1, deflated(_JSON, 12), rsv=0x40))
        self.protocol.connectionLost()
        self.assertEqual(self.protocol.websocket_extensions_in_use, [])


class ServerSendTests(SynchronousTestCase):
    """
    Compressed messages to the client.
    """

    def setUp(self) -> None:
        self.protocol, self.transport, _ = openDeflateServer()
        self.inflater = Inflater(12)

    def test_sendMessage(self) -> None:
        """
        A message at least C{perMessageDeflateThreshold} long goes out
        compressed (RSV1), a shorter one or one sent with C{doNotCompress}
        uncompressed; context takeover makes a repeat much smaller.
        """
        self.protocol.sendMessage(_JSON)
        [(fin, opcode, first)] = sentFrames(self.transport)
        self.assertEqual((fin, opcode), (True, 0x41))
        self.assertEqual(self.inflater.inflate(first), _JSON)
        self.protocol.sendMessage(_JSON, isBinary=True)
        [(fin, opcode, second)] = sentFrames(self.transport)
        self.assertEqual((fin, opcode), (True, 0x42))
        self.assertEqual(self.inflater.inflate(second), _JSON)
        self.assertLess(len(second), len(first) // 2)
        self.protocol.sendMessage(b"short")
        self.protocol.sendMessage(_JSON, doNotCompress=True)
        self.assertEqual(sentFrames(self.transport), [(True, 0x1, b"short"), (True, 0x1, _JSON)])

    def test_incompressible(self) -> None:
        """
        A message that compression would not make smaller goes out as it
        is (RSV1 clear), and the compressor starts afresh: what follows
        still inflates on the peer, whose inflater kept its context.
        """
        self.protocol.sendMessage(_JSON)
        noise = os.urandom(4000)
        self.protocol.sendMessage(noise, isBinary=True)
        self.protocol.sendMessage(_JSON + b"!")
        frames = sentFrames(self.transport)
        self.assertEqual([opcode for _, opcode, _ in frames], [0x41, 0x2, 0x41])
        self.assertEqual(frames[1][2], noise)
        self.assertEqual(self.inflater.inflate(frames[0][2]), _JSON)
        self.assertEqual(self.inflater.inflate(frames[2][2]), _JSON + b"!")

    def test_fragmented(self) -> None:
        """
        A compressed message sent in fragments has RSV1 on its first frame
        only, and the fragments inflate to the message.
        """
        self.protocol.sendMessage(_JSON * 5, fragmentSize=20)
        frames = sentFrames(self.transport)
        self.assertGreater(len(frames), 2)
        self.assertEqual(frames[0][1], 0x41)
        self.assertTrue(all(opcode == 0 for _, opcode, _ in frames[1:]))
        self.assertEqual([fin for fin, _, _ in frames], [False] * (len(frames) - 1) + [True])
        self.assertEqual(self.inflater.inflate(b"".join(p for _, _, p in frames)), _JSON * 5)

    def test_frameByFrame(self) -> None:
        """
        A message sent with C{beginMessage}: each frame compressed and
        flushed as it goes, RSV1 on the first; control frames in between are
        never compressed.
        """
        self.protocol.beginMessage()
        self.protocol.sendMessageFrame(_JSON[:100])
        self.protocol.sendPing(b"ping")
        self.protocol.sendMessageFrame(_JSON[100:])
        self.protocol.endMessage()
        frames = sentFrames(self.transport)
        self.assertEqual([opcode for _, opcode, _ in frames], [0x41, 0x9, 0x0, 0x0])
        self.assertEqual(frames[1][2], b"ping")
        data = [p for _, opcode, p in frames if opcode != 0x9]
        # Each flushed frame inflates on its own, as it arrives.
        self.assertEqual(self.inflater.inflate(data[0], final=False), _JSON[:100])
        self.assertEqual(self.inflater.inflate(b"".join(data[1:])), _JSON[100:])
        self.protocol.beginMessage(isBinary=True, doNotCompress=True)
        self.protocol.sendMessageFrame(b"raw")
        self.protocol.endMessage()
        self.assertEqual(sentFrames(self.transport), [(False, 0x2, b"raw"), (True, 0x0, b"")])

    def test_compressionLevel(self) -> None:
        """
        C{perMessageDeflateLevel} is the level our compressor runs at, on a
        server and on a client: the payload is what zlib makes at that
        level, and level 1 makes another (larger) one than the default.
        """

        def zlibPayload(level: int, windowBits: int) -> bytes:
            obj = zlib.compressobj(level, zlib.DEFLATED, -windowBits, 5)
            return (obj.compress(_JSON) + obj.flush(zlib.Z_SYNC_FLUSH))[:-4]

        self.assertNotEqual(zlibPayload(1, 12), zlibPayload(-1, 12))
        for level in (1, -1, 9):
            server, transport, _ = openDeflateServer(perMessageDeflateLevel=level)
            server.sendMessage(_JSON)
            [(_, opcode, payload)] = sentFrames(transport)
            self.assertEqual((opcode, payload), (0x41, zlibPayload(level, 12)), level)
            client, transport, _ = openDeflateClient(
                "permessage-deflate; client_max_window_bits=10", perMessageDeflateLevel=level
            )
            client.sendMessage(_JSON)
            [(_, opcode, payload)] = sentFrames(transport, masked=True)
            self.assertEqual((opcode, payload), (0x41, zlibPayload(level, 10)), level)
        for bad in (-2, 10, True, 1.0):
            self.assertRaises(ValueError, serverFactory, perMessageDeflateLevel=bad)

    def test_closeNotCompressed(self) -> None:
        """
        The Close frame is never compressed.
        """
        self.protocol.sendClose(1000, "bye" * 30)
        self.assertEqual(sentFrames(self.transport)[0][1], 0x8)


def hubPair() -> tuple[list[RecordingServer], list[StringTransport]]:
    """
    @return: two server connections of one factory that accepted
        permessage-deflate without context takeover, and their transports.
    """
    factory = serverFactory(perMessageCompressionAccept=HUB_DEFLATE_POLICY)
    protocols, transports = [], []
    for port in (50001, 50002):
        protocol, transport = connectServer(factory, port)
        protocol.dataReceived(upgradeRequest(extra=_OFFER))
        transport.clear()
        assert isinstance(protocol, RecordingServer)
        protocols.append(protocol)
        transports.append(transport)
    return protocols, transports


class PreparedMessageTests(SynchronousTestCase):
    """
    A prepared message is compressed once for every connection that
    compresses with a fresh context and the same settings.
    """

    def test_compressedOnce(self) -> None:
        """
        Two connections without context takeover write the very same
        compressed frame, built once and cached on the message.
        """
        protocols, transports = hubPair()
        prepared = protocols[0].factory.prepareMessage(_JSON)
        for protocol in protocols:
            protocol.sendPreparedMessage(prepared)
        self.assertIsNotNone(prepared.compressed)
        assert prepared.compressed is not None
        [(frame, payload, firstByte)] = prepared.compressed.values()
        self.assertEqual(firstByte, 0xC1)
        self.assertEqual([t.value() for t in transports], [frame, frame])
        self.assertEqual(frame[0], 0xC1)
        self.assertEqual(Inflater(12).inflate(payload), _JSON)

    def test_sharedFrame(self) -> None:
        """
        L{Compressor.sharedFrame}: the one cached compressed frame for a
        compressor without context takeover, the plain frame for a message
        under the threshold or prepared with C{doNotCompress}, C{None} for
        a compressor with context takeover (it compresses on its own).
        """
        shared = Compressor(12, noContextTakeover=True, memLevel=5, threshold=64)
        prepared = PreparedMessage(_JSON, False)
        frame = shared.sharedFrame(prepared)
        assert frame is not None
        self.assertIs(shared.sharedFrame(prepared), frame)
        self.assertEqual(frame[0], 0xC1)
        tiny = PreparedMessage(b"short", False)
        self.assertIs(shared.sharedFrame(tiny), tiny.frame)
        plain = PreparedMessage(_JSON, True, doNotCompress=True)
        self.assertIs(shared.sharedFrame(plain), plain.frame)
        self.assertIsNone(Compressor(12, memLevel=5).sharedFrame(prepared))

    def test_contextTakeover(self) -> None:
        """
        A connection with context takeover compresses a prepared message
        with its own compressor (its peer's inflater carries the context).
        """
        protocol, transport, _ = openDeflateServer()
        prepared = protocol.factory.prepareMessage(_JSON)
        inflater = Inflater(12)
        for _ in range(2):
            protocol.sendPreparedMessage(prepared)
            [(_, opcode, payload)] = sentFrames(transport)
            self.assertEqual(opcode, 0x41)
            self.assertEqual(inflater.inflate(payload), _JSON)
        self.assertIsNone(prepared.compressed)

    def test_incompressiblePrepared(self) -> None:
        """
        A prepared message that compression would not make smaller is sent
        uncompressed, by shared and own compressors alike, and by a client
        masked without RSV1.
        """
        noise = os.urandom(3000)
        protocols, transports = hubPair()
        prepared = protocols[0].factory.prepareMessage(noise, isBinary=True)
        protocols[0].sendPreparedMessage(prepared)
        self.assertEqual(transports[0].value(), prepared.frame)
        protocol, transport, _ = openDeflateServer()
        protocol.sendPreparedMessage(prepared)
        self.assertEqual(transport.value(), prepared.frame)
        client, clientTransport, _ = openDeflateClient(
            "permessage-deflate; client_no_context_takeover"
        )
        client.sendPreparedMessage(prepared)
        self.assertEqual(sentFrames(clientTransport, masked=True), [(True, 0x2, noise)])

    def test_uncompressed(self) -> None:
        """
        Short prepared messages, those prepared with C{doNotCompress}, and
        connections without the extension get the plain frame.
        """
        protocols, transports = hubPair()
        factory = protocols[0].factory
        for prepared in (
            factory.prepareMessage(b"tiny"),
            factory.prepareMessage(_JSON, True, True),
        ):
            protocols[0].sendPreparedMessage(prepared)
            self.assertEqual(transports[0].value(), prepared.frame)
            transports[0].clear()
        protocol, transport, _ = openDeflateServer(perMessageDeflate=False)
        prepared = protocol.factory.prepareMessage(_JSON)
        protocol.sendPreparedMessage(prepared)
        self.assertEqual(transport.value(), prepared.frame)


def openDeflateClient(
    answer: str = "permessage-deflate", **options: Any
) -> tuple[RecordingClient, StringTransport, bytes]:
    """
    @return: a client connection answered with C{Sec-WebSocket-Extensions:
        answer} (none if empty), its transport (cleared) and its request.
    """
    factory = clientFactory(**options)
    protocol: object = factory.buildProtocol(IPv4Address("TCP", "93.184.216.34", 80))
    assert isinstance(protocol, RecordingClient)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "93.184.216.34", 80))
    protocol.makeConnection(transport)  # type: ignore[no-untyped-call]
    request = transport.value()
    accept = acceptFor(request)
    if answer:
        accept = accept[:-2] + f"Sec-WebSocket-Extensions: {answer}\r\n\r\n".encode()
    transport.clear()
    protocol.dataReceived(accept)
    return protocol, transport, request


class ClientTests(SynchronousTestCase):
    """
    The client's offers, its checks of the answer, and its compressed
    messages.
    """

    def test_defaultOffer(self) -> None:
        """
        A client offers C{permessage-deflate; client_max_window_bits}, as
        browsers do, and nothing with C{perMessageDeflate} off.
        """
        _, _, request = openDeflateClient()
        self.assertEqual(extensionsHeader(request), "permessage-deflate; client_max_window_bits")
        _, _, request = openDeflateClient("", perMessageDeflate=False)
        self.assertIsNone(extensionsHeader(request))
        # An empty list of offers (as Autobahn takes it) offers nothing.
        protocol, _, request = openDeflateClient("", perMessageCompressionOffers=[])
        self.assertIsNone(extensionsHeader(request))
        self.assertIs(protocol.state, State.OPEN)

    def test_offersInOrder(self) -> None:
        """
        C{perMessageCompressionOffers} (Autobahn's option) are sent most
        preferred first; the answer is matched to the one it accepts.
        """
        offers = [
            PerMessageDeflateOffer(request_no_context_takeover=True, request_max_window_bits=10),
            PerMessageDeflateOffer(accept_max_window_bits=False),
        ]
        protocol, _, request = openDeflateClient(
            "permessage-deflate; client_no_context_takeover",
            perMessageCompressionOffers=offers,
        )
        self.assertEqual(
            extensionsHeader(request),
            "permessage-deflate; client_no_context_takeover; client_max_window_bits;"
            " server_no_context_takeover; server_max_window_bits=10,"
            " permessage-deflate; client_no_context_takeover",
        )
        self.assertIs(protocol.state, State.OPEN)
        [extension] = protocol.websocket_extensions_in_use
        self.assertTrue(extension.compressor.noContextTakeover)
        assert protocol.response is not None
        self.assertEqual(protocol.response.extensions, [extension])
        self.assertRaises(ValueError, clientFactory, perMessageCompressionOffers=["deflate"])

    def test_sendAndReceive(self) -> None:
        """
        An open client compresses what it sends (masked, RSV1) and inflates
        what it receives.
        """
        protocol, transport, _ = openDeflateClient(
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"
        )
        inflater = Inflater(9)
        protocol.sendMessage(_JSON)
        self.assertEqual(transport.value()[1] & 0x80, 0x80)  # masked
        [(fin, opcode, payload)] = sentFrames(transport, masked=True)
        self.assertEqual((fin, opcode), (True, 0x41))
        self.assertEqual(inflater.inflate(payload), _JSON)
        protocol.dataReceived(serializeFrame(0x1, deflated(_JSON, 10), True, None, 0x40))
        self.assertEqual(protocol.messages(), [(_JSON, False)])
        # With context takeover a prepared message goes through the
        # connection's own compressor too.
        prepared = protocol.factory.prepareMessage(_JSON)
        protocol.sendPreparedMessage(prepared)
        [(_, opcode, payload)] = sentFrames(transport, masked=True)
        self.assertEqual(opcode, 0x41)
        self.assertEqual(inflater.inflate(payload), _JSON)
        self.assertIsNone(prepared.compressed)

    def test_preparedNoContextTakeover(self) -> None:
        """
        A client without context takeover sends a prepared message's shared
        compressed payload, masked with its own key.
        """
        protocol, transport, _ = openDeflateClient("permessage-deflate; client_no_context_takeover")
        prepared = protocol.factory.prepareMessage(_JSON * 3)
        protocol.sendPreparedMessage(prepared)
        [(_, opcode, payload)] = sentFrames(transport, masked=True)
        self.assertEqual(opcode, 0x41)
        assert prepared.compressed is not None
        self.assertEqual([payload], [p for _, p, _ in prepared.compressed.values()])
        self.assertEqual(Inflater().inflate(payload), _JSON * 3)

    def test_badAnswers(self) -> None:
        """
        An answer that does not match the offer, or that the application's
        C{perMessageCompressionAccept} refuses, fails the connection.
        """
        for answer, options in (
            ("permessage-deflate; server_max_window_bits", {}),
            (
                "permessage-deflate; client_max_window_bits=10",
                {
                    "perMessageCompressionOffers": [
                        PerMessageDeflateOffer(accept_max_window_bits=False)
                    ]
                },
            ),
            ("permessage-deflate", {"perMessageCompressionAccept": lambda response: None}),
            ("permessage-deflate", {"perMessageCompressionAccept": lambda response: 1}),
            ("permessage-deflate", {"perMessageDeflate": False}),
        ):
            protocol, transport, _ = openDeflateClient(answer, **options)
            self.assertIsNot(protocol.state, State.OPEN, answer)
            self.assertTrue(transport.disconnecting or transport.disconnected)

    def test_acceptCallable(self) -> None:
        """
        The client's C{perMessageCompressionAccept} gets the server's answer
        and chooses how to compress.
        """
        seen: list[PerMessageDeflateResponse] = []

        def accept(response: PerMessageDeflateResponse) -> PerMessageDeflateResponseAccept:
            seen.append(response)
            return PerMessageDeflateResponseAccept(
                response, no_context_takeover=True, window_bits=9
            )

        protocol, _, _ = openDeflateClient(
            "permessage-deflate; server_no_context_takeover", perMessageCompressionAccept=accept
        )
        self.assertTrue(seen[0].server_no_context_takeover)
        compressor = protocol.websocket_extensions_in_use[0].compressor
        self.assertEqual((compressor.windowBits, compressor.noContextTakeover), (9, True))
        self.assertTrue(protocol.websocket_extensions_in_use[0].decompressor.noContextTakeover)


class PolicyOptionTests(SynchronousTestCase):
    """
    The policy object serves as the option.
    """

    def test_policyInstance(self) -> None:
        """
        A L{PerMessageDeflatePolicy} with other settings is taken as
        C{perMessageCompressionAccept}.
        """
        policy = PerMessageDeflatePolicy(serverMaxWindowBits=15, clientMaxWindowBits=0, memLevel=8)
        protocol, _, answer = openDeflateServer(perMessageCompressionAccept=policy)
        self.assertEqual(extensionsHeader(answer), "permessage-deflate; server_max_window_bits=15")
        self.assertEqual(protocol.websocket_extensions_in_use[0].compressor.memLevel, 8)
