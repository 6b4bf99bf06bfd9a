"""
The fan-out servers of the benchmark: the same servers as L{bench.servers},
serving one publisher and many subscribers instead of echoing.

    python -m bench.servers --mode fanout --server NAME [--port 0] [--cpu 1]

Design: every server but the hub treats a WebSocket connection to
L{PUBLISH_PATH} as the publisher and every other one as a subscriber; each
message the publisher sends is written to every open subscriber, framed
once, by the server's own broadcast API.  So the trigger costs the same for
all of them: one small masked text frame read from one connection.  The hub
(C{txws-hub}) is the real L{txws.hub.Hub}: its subscribers connect to
C{/ws?channel=bench} and each publish is an HMAC-signed C{POST /publish},
so its figure also holds one HTTP request and one HMAC check per publish.
C{txws-hub-redis} is the same hub with the Redis broker and replay store
of C{twistd txws --broker redis://...}, on a Redis the harness starts
(L{bench.cluster}); C{txws-hub-workers2}, the real C{twistd txws
--workers 2}, is not served from here (see L{bench.cluster}).
The hub's secret comes from the environment (L{HUB_SECRET_ENV}), set by the
harness for each run: no secret is written anywhere.

Keepalive pings are off everywhere (the load generator does not answer
them).  Every server that accepts permessage-deflate does so when the
subscribers offer it (the C{fanout-deflate} cells): the hub with its
C{HUB_DEFLATE_POLICY} (no context takeover: one compression per publish),
C{txws} with its default policy (context takeover: one compression per
subscriber), C{websockets-deflate} and C{autobahn-deflate} configured as
their echo servers are (one compression per subscriber: neither library
shares compressed frames); the others decline.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, Optional

from bench.loadgen import CLOSE_REPLY, serverFrame
from bench.servers import (
    BACKLOG,
    Announce,
    NotInstalled,
    _listen,
    _peer,
    _twistedSetup,
    _twistedVersion,
    acceptKey,
    autobahnAccept,
)

__all__ = [
    "FANOUT_SERVERS",
    "HUB_CHANNEL",
    "HUB_KEY_ID",
    "HUB_SECRET_ENV",
    "PUBLISH_PATH",
    "REDIS_URL_ENV",
    "SUBSCRIBE_PATH",
    "unmask",
]

#: Where the publisher connects (every server but the hub).
PUBLISH_PATH = "/publish"

#: Where subscribers connect (the hub reads the channel from it; the other
#: servers ignore the query).
SUBSCRIBE_PATH = "/ws?channel=bench"

#: The hub's channel.
HUB_CHANNEL = "bench"

#: The id of the hub's one key.
HUB_KEY_ID = "bench"

#: The environment variable holding the hub's secret.
HUB_SECRET_ENV = "TXWS_BENCH_HUB_SECRET"

#: The environment variable holding the Redis URL of C{txws-hub-redis}.
REDIS_URL_ENV = "TXWS_BENCH_REDIS_URL"

#: Options every txws server of these cells runs with.
_TXWS_OPTIONS: dict[str, Any] = {"autoPingInterval": 0.0}


def unmask(key: bytes, masked: bytes) -> bytes:
    """
    Unmask a client frame's payload (RFC 6455 section 5.3) without a
    per-byte loop.

    @param key: the 4-byte masking key.
    @param masked: the masked payload.
    @return: the payload.
    """
    n = len(masked)
    repeated = key * (n // 4) + key[: n % 4]
    return (int.from_bytes(masked, "little") ^ int.from_bytes(repeated, "little")).to_bytes(
        n, "little"
    )


def _runRaw(port: int, readSize: int, announce: Announce, writeThrough: bool = False) -> None:
    from twisted.internet.protocol import Factory, Protocol

    reactor = _twistedSetup(readSize)
    start = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    subscribers: dict[Protocol, Any] = {}
    publishTarget = b"GET " + PUBLISH_PATH.encode("ascii") + b" "

    class RawFanout(Protocol):
        """
        Answer the upgrade; a subscriber is only remembered (a Close frame
        from it is answered and the connection closed); each data frame of
        the publisher is unmasked, framed once, and the frame bytes written
        to every subscriber's transport.
        """

        _head = b""
        _open = False
        _publisher = False
        _buffer = b""

        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]

        def dataReceived(self, data: bytes) -> None:
            if self._open:
                if self._publisher:
                    self._buffer += data
                    self._frames()
                elif data[:1] == b"\x88":
                    self.transport.write(CLOSE_REPLY)  # type: ignore[union-attr]
                    self.transport.loseConnection()  # type: ignore[union-attr]
                return
            head = self._head + data
            end = head.find(b"\r\n\r\n")
            if end < 0:
                self._head = head
                return
            self._head = b""
            at = head.lower().find(b"\r\nsec-websocket-key:")
            key = head[at + 20 : head.find(b"\r\n", at + 2)].strip() if at >= 0 else b""
            self.transport.write(  # type: ignore[union-attr]
                start + b"Sec-WebSocket-Accept: " + acceptKey(key) + b"\r\n\r\n"
            )
            self._open = True
            if head.startswith(publishTarget):
                self._publisher = True
            else:
                subscribers[self] = self.transport
            if len(head) > end + 4:
                self.dataReceived(head[end + 4 :])

        def _frames(self) -> None:
            buffer = self._buffer
            while len(buffer) >= 6:
                length = buffer[1] & 0x7F
                at = 2
                if length >= 126:
                    at = 4 if length == 126 else 10
                    if len(buffer) < at + 4:
                        break
                    length = int.from_bytes(buffer[2:at], "big")
                end = at + 4 + length
                if len(buffer) < end:
                    break
                opcode = buffer[0] & 0x0F
                payload = unmask(buffer[at : at + 4], buffer[at + 4 : end])
                buffer = buffer[end:]
                if opcode == 0x8:
                    self.transport.write(CLOSE_REPLY)  # type: ignore[union-attr]
                    self.transport.loseConnection()  # type: ignore[union-attr]
                    break
                if opcode in (0x1, 0x2):
                    frame = serverFrame(opcode, payload)
                    if writeThrough:
                        _writeThrough(subscribers.values(), frame)
                    else:
                        for transport in subscribers.values():
                            transport.write(frame)
            self._buffer = buffer

        def connectionLost(self, reason: object = None) -> None:
            subscribers.pop(self, None)

    number = _listen(reactor, port, Factory.forProtocol(RawFanout))
    how = "socket.send, transport.write for the rest" if writeThrough else "transport.write"
    announce(number, {"version": _twistedVersion(), "broadcast": how})
    reactor.run()


def _writeThrough(transports: Any, frame: bytes) -> None:
    """
    Write C{frame} to each transport as asyncio's transports do: straight
    to the socket when nothing is queued before it, through
    C{transport.write} only for what the socket did not take.  (This
    skips Twisted's C{startWriting}/C{doWrite}/C{stopWriting} round per
    write; it reads private attributes of C{twisted.internet.tcp}.)
    """
    size = len(frame)
    for transport in transports:
        if transport.dataBuffer or transport._tempDataBuffer or not transport.connected:
            transport.write(frame)
            continue
        try:
            sent = transport.socket.send(frame)
        except BlockingIOError:
            sent = 0
        except OSError:
            continue  # the reactor sees the error when it next reads
        if sent < size:
            transport.write(frame[sent:])


def _runRawSend(port: int, readSize: int, announce: Announce) -> None:
    _runRaw(port, readSize, announce, writeThrough=True)


def _runTxws(port: int, readSize: int, announce: Announce) -> None:
    from txws._mask import HAVE_SPEEDUPS
    from txws._version import __version__
    from txws.options import WebSocketOptions
    from txws.server import WebSocketServerFactory, WebSocketServerProtocol

    reactor = _twistedSetup(readSize)
    subscribers: dict[Any, None] = {}

    class TxwsFanout(WebSocketServerProtocol):
        """
        A subscriber, or the publisher whose messages go to every
        subscriber through one prepared message.
        """

        publisher = False

        def onConnect(self, request: Any) -> None:
            self.publisher = request.path == PUBLISH_PATH

        def onOpen(self) -> None:
            if not self.publisher:
                subscribers[self] = None

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            if self.publisher:
                prepared = factory.prepareMessage(payload, isBinary=isBinary)
                for protocol in subscribers:
                    protocol.sendPreparedMessage(prepared)

        def onClose(self, wasClean: bool, code: int, reason: str) -> None:
            subscribers.pop(self, None)

    factory = WebSocketServerFactory(reactor=reactor, options=WebSocketOptions(**_TXWS_OPTIONS))
    factory.protocol = TxwsFanout
    path = "C extension" if HAVE_SPEEDUPS else "pure Python"
    extra = {"version": f"txws {__version__} on {_twistedVersion()}", "path": path,
             "broadcast": "factory.prepareMessage + sendPreparedMessage"}
    announce(_listen(reactor, port, factory), extra)
    reactor.run()


def _runAutobahnDeflate(port: int, readSize: int, announce: Announce) -> None:
    _runAutobahn(port, readSize, announce, deflate=True)


def _runAutobahn(port: int, readSize: int, announce: Announce, deflate: bool = False) -> None:
    autobahn = _peer("autobahn", "autobahn")
    websocket = _peer("autobahn.twisted.websocket", "autobahn")
    reactor = _twistedSetup(readSize)
    base: Any = websocket.WebSocketServerProtocol
    subscribers: dict[Any, None] = {}

    class AutobahnFanout(base):  # type: ignore[misc]
        publisher = False

        def onConnect(self, request: Any) -> None:
            self.publisher = request.path == PUBLISH_PATH

        def onOpen(self) -> None:
            if not self.publisher:
                subscribers[self] = None

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            if self.publisher:
                prepared = factory.prepareMessage(payload, isBinary)
                for protocol in subscribers:
                    protocol.sendPreparedMessage(prepared)

        def onClose(self, wasClean: bool, code: Any, reason: Any) -> None:
            subscribers.pop(self, None)

    factory = websocket.WebSocketServerFactory()
    factory.protocol = AutobahnFanout
    factory.setProtocolOptions(autoPingInterval=0)
    if deflate:
        factory.setProtocolOptions(perMessageCompressionAccept=autobahnAccept)
    nvx = getattr(_peer("autobahn.websocket", "autobahn"), "USES_NVX", False)
    extra = {
        "version": f"autobahn {autobahn.__version__} on {_twistedVersion()}",
        "path": "NVX (CFFI)" if nvx else "pure Python",
        "broadcast": "factory.prepareMessage + sendPreparedMessage",
    }
    announce(_listen(reactor, port, factory), extra)
    reactor.run()


def _runWebsocketsDeflate(port: int, readSize: int, announce: Announce) -> None:
    _runWebsockets(port, readSize, announce, compression="deflate")


def _runWebsockets(
    port: int, readSize: int, announce: Announce, compression: Optional[str] = None
) -> None:
    import asyncio

    websockets = _peer("websockets", "websockets")
    server = _peer("websockets.asyncio.server", "websockets>=14")
    exceptions = _peer("websockets.exceptions", "websockets")
    subscribers: set[Any] = set()

    async def handler(connection: Any) -> None:
        if connection.request.path == PUBLISH_PATH:
            try:
                async for message in connection:
                    websockets.broadcast(subscribers, message)
            except exceptions.ConnectionClosed:
                pass
            return
        subscribers.add(connection)
        try:
            await connection.wait_closed()
        finally:
            subscribers.discard(connection)

    async def serve() -> None:
        listening = await server.serve(
            handler, "127.0.0.1", port, compression=compression, backlog=BACKLOG,
            ping_interval=None,
        )
        announce(
            listening.sockets[0].getsockname()[1],
            {"version": f"websockets {websockets.__version__} on asyncio",
             "broadcast": "websockets.broadcast"},
        )
        await asyncio.Future()

    asyncio.run(serve())


def _runHub(port: int, readSize: int, announce: Announce) -> None:
    _serveHub(port, readSize, announce, None)


def _runHubRedis(port: int, readSize: int, announce: Announce) -> None:
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        raise NotInstalled(f"{REDIS_URL_ENV} is not set (the harness sets it)")
    _serveHub(port, readSize, announce, url)


def _serveHub(port: int, readSize: int, announce: Announce, redisUrl: Optional[str]) -> None:
    """
    Serve the real hub, with the in-process broker, or (C{redisUrl}) with
    the Redis broker and replay store that C{twistd txws --broker} builds;
    announced once the broker is connected.
    """
    secret = os.environ.get(HUB_SECRET_ENV)
    if not secret:
        raise NotInstalled(f"{HUB_SECRET_ENV} is not set (the harness sets it)")
    from txws._version import __version__
    from txws.hmacauth import KeyRing
    from txws.hub.service import Hub
    from txws.options import WebSocketOptions

    reactor = _twistedSetup(readSize)
    arguments: dict[str, Any] = {}
    broker: Any = None
    if redisUrl is not None:
        from txws.hub.brokerurl import RedisSettings, parseBrokerURL
        from txws.hub.redisbroker import RedisBroker
        from txws.hub.redisreplay import RedisReplayStore

        settings = parseBrokerURL(redisUrl)
        assert isinstance(settings, RedisSettings)
        broker = RedisBroker(settings, reactor)
        arguments = {"broker": broker, "replayStore": RedisReplayStore(settings, reactor)}
    hub = Hub(KeyRing({HUB_KEY_ID: secret}), reactor=reactor,
              options=WebSocketOptions(**_TXWS_OPTIONS), **arguments)
    hub.startService()
    listening = reactor.listenTCP(port, hub.site(), backlog=BACKLOG, interface="127.0.0.1")
    how = "signed POST /publish" + (", Redis broker" if broker is not None else "")
    extra = {"version": f"txws {__version__} hub on {_twistedVersion()}", "broadcast": how}
    started = time.monotonic()

    def ready() -> None:
        if broker is None or broker.available:
            announce(listening.getHost().port, extra)
        elif time.monotonic() - started > 30:
            print("the hub's Redis broker did not connect in 30 s", file=sys.stderr, flush=True)
            reactor.stop()
        else:
            reactor.callLater(0.02, ready)

    reactor.callWhenRunning(ready)
    reactor.run()


#: The fan-out variant of each server that has one.
FANOUT_SERVERS: dict[str, Callable[[int, int, Announce], None]] = {
    "raw": _runRaw,
    "raw-send": _runRawSend,
    "txws": _runTxws,
    "autobahn": _runAutobahn,
    "websockets": _runWebsockets,
    "websockets-deflate": _runWebsocketsDeflate,
    "autobahn-deflate": _runAutobahnDeflate,
    "txws-hub": _runHub,
    "txws-hub-redis": _runHubRedis,
}
