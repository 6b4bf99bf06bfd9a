"""
Helpers shared by the unit tests: in-memory connections driven by a
L{StringTransport} and a L{Clock}, frame builders, and an application
protocol that records every callback.
"""

from __future__ import annotations

import base64
import os
import socket
from types import ModuleType
from typing import Any, Optional, cast
from unittest import SkipTest

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.typedtrial import SynchronousTestCase
from txws.client import WebSocketClientFactory, WebSocketClientProtocol
from txws.frames import parseFrames, serializeFrame
from txws.handshake import ConnectionRequest, ConnectionResponse, acceptValue
from txws.options import WebSocketOptions
from txws.server import WebSocketServerFactory, WebSocketServerProtocol

#: The masking key test clients use.
KEY = b"\x37\xfa\x21\x3d"

#: The key of RFC 6455 section 1.3's example handshake.
SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def upgradeRequest(
    path: str = "/chat",
    key: str = SAMPLE_KEY,
    extra: str = "",
    version: str = "13",
) -> bytes:
    """
    @return: a valid client opening handshake, with optional extra header
        lines (each ending in CRLF).
    """
    return (
        f"GET {path} HTTP/1.1\r\n"
        "Host: server.example.com\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: {version}\r\n"
        f"{extra}\r\n"
    ).encode("ascii")


def clientFrame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    """
    @return: a frame as a client sends it (masked with L{KEY}).
    """
    return serializeFrame(opcode, payload, fin, KEY, rsv)


def serverFrame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0) -> bytes:
    """
    @return: a frame as a server sends it (unmasked).
    """
    return serializeFrame(opcode, payload, fin, None, rsv)


def closeFrame(code: Optional[int], reason: bytes = b"", masked: bool = True) -> bytes:
    """
    @return: a Close frame with an arbitrary (possibly invalid) payload.
    """
    payload = b"" if code is None else code.to_bytes(2, "big") + reason
    return serializeFrame(0x8, payload, True, KEY if masked else None)


def framesIn(data: bytes, masked: bool = False) -> list[tuple[bool, int, bytes]]:
    """
    Parse frames written by an endpoint, insisting that the bytes hold only
    whole, valid frames.

    @param data: what the endpoint wrote.
    @param masked: whether the frames must be masked (client output).
    @return: the frames.
    """
    frames, consumed, pending, error = parseFrames(data, masked)
    assert error is None, error
    assert pending is None and consumed == len(data), "trailing partial frame"
    return frames


class Recorder:
    """
    Mixin recording every application callback in C{events}.
    """

    events: list[tuple[Any, ...]]

    def onOpen(self) -> None:
        self.events.append(("open",))

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.events.append(("message", payload, isBinary))

    def onPing(self, payload: bytes) -> None:
        self.events.append(("ping", payload))

    def onPong(self, payload: bytes) -> None:
        self.events.append(("pong", payload))

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        self.events.append(("close", wasClean, code, reason))

    def messages(self) -> list[tuple[bytes, bool]]:
        """
        @return: the C{(payload, isBinary)} of every message received.
        """
        return [(e[1], e[2]) for e in self.events if e[0] == "message"]

    def closes(self) -> list[tuple[Any, ...]]:
        """
        @return: every C{onClose} call's arguments.
        """
        return [e[1:] for e in self.events if e[0] == "close"]


class RecordingServer(Recorder, WebSocketServerProtocol):
    """
    A server protocol that records its callbacks.
    """

    def __init__(self) -> None:
        self.events = []

    def onConnect(self, request: ConnectionRequest) -> Any:
        self.events.append(("connect", request))
        return None


class RecordingClient(Recorder, WebSocketClientProtocol):
    """
    A client protocol that records its callbacks.
    """

    def __init__(self) -> None:
        self.events = []

    def onConnect(self, response: ConnectionResponse) -> None:
        self.events.append(("connect", response))


def serverFactory(
    clock: Optional[Clock] = None,
    protocolClass: type[WebSocketServerProtocol] = RecordingServer,
    **options: Any,
) -> WebSocketServerFactory:
    """
    @return: a server factory on a L{Clock}, keepalive off unless asked.
    """
    options.setdefault("autoPingInterval", 0)
    factory = WebSocketServerFactory(
        reactor=clock or Clock(), options=WebSocketOptions().replace(**options)
    )
    factory.protocol = protocolClass
    return factory


def connectServer(
    factory: WebSocketServerFactory,
    peerPort: int = 50000,
    transport: Optional[StringTransport] = None,
) -> tuple[WebSocketServerProtocol, StringTransport]:
    """
    @param transport: the transport to connect (a fresh L{StringTransport}
        by default).
    @return: a server protocol connected to it.
    """
    protocol: object = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", peerPort))
    assert isinstance(protocol, WebSocketServerProtocol)
    if transport is None:
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 9000),
            peerAddress=IPv4Address("TCP", "127.0.0.1", peerPort),
        )
    # (Twisted's makeConnection is unannotated: call it as Twisted's.)
    cast(Protocol, protocol).makeConnection(transport)
    return protocol, transport


def openServer(
    clock: Optional[Clock] = None, **options: Any
) -> tuple[RecordingServer, StringTransport, Clock]:
    """
    @return: an OPEN recording server protocol (its 101 already cleared
        from the transport), its transport and its clock.
    """
    clock = clock or Clock()
    factory = serverFactory(clock, **options)
    protocol, transport = connectServer(factory)
    protocol.dataReceived(upgradeRequest())
    assert transport.value().startswith(b"HTTP/1.1 101 "), transport.value()
    transport.clear()
    assert isinstance(protocol, RecordingServer)
    return protocol, transport, clock


def acceptFor(request: bytes) -> bytes:
    """
    @param request: the client's handshake bytes.
    @return: a valid 101 answer to it.
    """
    for line in request.split(b"\r\n"):
        if line.lower().startswith(b"sec-websocket-key:"):
            key = line.split(b":", 1)[1].strip().decode("ascii")
            return (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {acceptValue(key)}\r\n\r\n"
            ).encode("ascii")
    raise AssertionError("no key in the request")


def clientFactory(clock: Optional[Clock] = None, **options: Any) -> WebSocketClientFactory:
    """
    @return: a client factory on a L{Clock} with deterministic randomness
        (masking keys are L{KEY}; handshake keys are 16 bytes of 0x01).
    """
    options.setdefault("autoPingInterval", 0)
    factory = WebSocketClientFactory(
        "ws://server.example.com/chat",
        reactor=clock or Clock(),
        options=WebSocketOptions().replace(**options),
    )
    factory.protocol = RecordingClient

    def randomBytes(n: int) -> bytes:
        return KEY if n == 4 else b"\x01" * n

    factory.randomBytes = randomBytes
    return factory


def openClient(
    clock: Optional[Clock] = None, transport: Optional[StringTransport] = None, **options: Any
) -> tuple[RecordingClient, StringTransport, Clock]:
    """
    @param transport: the transport to connect (a fresh L{StringTransport}
        by default).
    @return: an OPEN recording client protocol with its transport cleared.
    """
    clock = clock or Clock()
    factory = clientFactory(clock, **options)
    protocol: object = factory.buildProtocol(IPv4Address("TCP", "93.184.216.34", 80))
    assert isinstance(protocol, RecordingClient)
    if transport is None:
        transport = StringTransport(peerAddress=IPv4Address("TCP", "93.184.216.34", 80))
    cast(Protocol, protocol).makeConnection(transport)
    protocol.dataReceived(acceptFor(transport.value()))
    transport.clear()
    return protocol, transport, clock


def sampleKeyBase64(raw: bytes) -> str:
    """
    @return: C{raw} in base64, as a handshake key.
    """
    return base64.b64encode(raw).decode("ascii")


def lostCleanly(protocol: WebSocketServerProtocol | WebSocketClientProtocol) -> None:
    """
    Tell C{protocol} its transport closed in an orderly way.
    """
    from twisted.internet.error import ConnectionDone

    protocol.connectionLost(Failure(ConnectionDone()))


def requireSpeedups(case: SynchronousTestCase) -> ModuleType:
    """
    Return the C extension, failing C{case} if it is missing.

    A missing extension is a failure, not a skip, because CI has a compiler;
    only an explicit C{TXWS_NO_EXTENSIONS} turns it into a skip.

    @param case: the test that needs the extension.
    @return: the C{txws._speedups} module (imported directly, whatever
        C{TXWS_NO_EXTENSIONS} says).
    @raise SkipTest: if the extension is missing and C{TXWS_NO_EXTENSIONS}
        is set.
    """
    try:
        from txws import _speedups
    except ImportError:
        if os.environ.get("TXWS_NO_EXTENSIONS"):
            raise SkipTest("TXWS_NO_EXTENSIONS is set") from None
        case.fail("txws._speedups did not build (set TXWS_NO_EXTENSIONS to accept that)")
    return _speedups


def freePort() -> int:
    """
    @return: a TCP port of 127.0.0.1 that was free a moment ago.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
