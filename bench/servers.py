"""
The echo servers of the benchmark, each run alone in its own process:

    python -m bench.servers --server NAME [--port 0] [--cpu 1] [--read-size N]
                            [--mode echo|fanout] [--profile FILE]

The process pins itself to one CPU, raises its open-file limit, listens on
127.0.0.1, prints one JSON line (C{{"server", "port", "pid", "version",
"path", ...}}) once it is ready, and serves until its standard input closes
(the harness holds the other end, so a harness that dies takes its servers
with it).  A peer library that is not installed prints C{{"error": "not
installed", ...}} and exits with status 3.

Every WebSocket server echoes each message as it came (text as text, binary
as binary) with its message and frame limits raised to L{MAX_MESSAGE}.
Two servers are not WebSocket servers: C{raw}, the Twisted protocol that
answers the upgrade and then writes back every byte it receives (the ceiling
for anything built on Twisted), and C{tcp-echo}, a plain C{epoll} loop that
echoes bytes without any handshake (the load generator's own ceiling).

With C{--mode fanout} a server runs its fan-out variant instead (one
publisher, many subscribers: see L{bench.fanout_servers}); C{txws-hub}, the
push hub, has only that one.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import hashlib
import importlib
import json
import os
import resource
import select
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BACKLOG",
    "MAX_MESSAGE",
    "SERVERS",
    "NotInstalled",
    "ServerInfo",
    "acceptKey",
    "main",
    "pinToCpu",
    "raiseFileLimit",
]

#: The largest message every server is configured to accept.
MAX_MESSAGE = 2 * 1024 * 1024

#: The listen backlog, large enough for the batches of connects of the
#: memory and fan-out cells (the kernel caps it at C{net.core.somaxconn}).
BACKLOG = 4096

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: C{announce(port, extra)} prints the ready line.
Announce = Callable[[int, dict[str, Any]], None]


class NotInstalled(Exception):
    """
    A peer library this server needs is missing (install the C{bench} extra).
    """


@dataclass(frozen=True)
class ServerInfo:
    """
    One server of the benchmark.

    @ivar name: its name on the command line and in the table.
    @ivar description: one line for the README and C{--list}.
    @ivar echo: C{"frames"} for a WebSocket echo (replies are unmasked
        server frames), C{"bytes"} for a server that writes back the client's
        masked frames as they came, C{"tcp"} for a plain echo with no
        handshake at all, C{"none"} for a server without an echo (fan-out
        cells only).
    @ivar readSizes: whether C{--read-size} can bound its reads from the
        socket (Twisted and asyncio selector transports).
    @ivar run: C{run(port, readSize, announce)} serves forever.
    @ivar feed: whether L{bench.feed} can measure its receive path alone.
    @ivar deflate: whether it is configured for permessage-deflate (RFC
        7692): the compression cells offer it only to these servers and
        measure the others, uncompressed, as references; other cells are
        "n/a" for these.
    """

    name: str
    description: str
    echo: str
    readSizes: bool
    run: Callable[[int, int, Announce], None]
    feed: bool = False
    deflate: bool = False


def acceptKey(key: bytes) -> bytes:
    """
    @param key: a C{Sec-WebSocket-Key} value.
    @return: its C{Sec-WebSocket-Accept} value (RFC 6455 section 4.2.2).
    """
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def pinToCpu(cpu: int) -> bool:
    """
    Run this process on one CPU only, if the machine has it.

    @param cpu: the CPU number, or a negative number to leave it alone.
    @return: whether the process is now pinned.
    """
    if cpu < 0 or not hasattr(os, "sched_setaffinity") or cpu >= (os.cpu_count() or 1):
        return False
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return False
    return True


def raiseFileLimit() -> int:
    """
    Raise the soft limit on open files to the hard limit.

    @return: the new soft limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return soft


def _peer(module: str, package: str) -> Any:
    """
    Import an optional peer library.

    @raise NotInstalled: naming the package to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise NotInstalled(f"{package} ({e})") from None


# -- Twisted servers ----------------------------------------------------------


def _twistedSetup(readSize: int) -> Any:
    """
    Send Twisted's log to stderr (warnings and worse only), bound its reads
    if asked, and return the reactor.
    """
    from twisted.internet import reactor, tcp
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    if readSize:
        _boundTwistedReads(tcp, readSize)
    return reactor


def _boundTwistedReads(tcp: Any, readSize: int) -> None:
    """
    Make every TCP connection read at most C{readSize} bytes per C{recv}
    (C{bufferSize} cannot be used: it is also the write buffer's high-water
    mark, which would change back-pressure).
    """
    from errno import EWOULDBLOCK

    from twisted.internet import main as twistedMain

    def doRead(self: Any) -> Any:
        try:
            data = self.socket.recv(readSize)
        except OSError as se:
            if se.args[0] == EWOULDBLOCK:
                return None
            return twistedMain.CONNECTION_LOST
        return self._dataReceived(data)

    tcp.Connection.doRead = doRead


def _twistedVersion() -> str:
    import twisted

    return "Twisted " + twisted.__version__


def _listen(reactor: Any, port: int, factory: Any) -> int:
    listening = reactor.listenTCP(port, factory, backlog=BACKLOG, interface="127.0.0.1")
    number: int = listening.getHost().port
    return number


def _runRaw(port: int, readSize: int, announce: Announce) -> None:
    from twisted.internet.protocol import Factory, Protocol

    reactor = _twistedSetup(readSize)
    start = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

    class RawEcho(Protocol):
        """
        Answer the upgrade, then write back every byte; a chunk that is
        exactly a masked Close frame with a code (8 bytes) is echoed and the
        connection closed, so that handshakes end as with the real servers.
        """

        _head = b""
        _open = False

        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)  # type: ignore[union-attr]

        def dataReceived(self, data: bytes) -> None:
            if self._open:
                self.transport.write(data)  # type: ignore[union-attr]
                if len(data) == 8 and data[0] == 0x88:
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
            if len(head) > end + 4:
                self.dataReceived(head[end + 4 :])

    number = _listen(reactor, port, Factory.forProtocol(RawEcho))
    announce(number, {"version": _twistedVersion()})
    reactor.run()


def _txwsFactory(reactor: Any, accept: Any = None) -> tuple[Any, dict[str, Any]]:
    from txws._mask import HAVE_SPEEDUPS
    from txws._version import __version__
    from txws.apps.echo import echoFactory
    from txws.options import WebSocketOptions

    options = WebSocketOptions(
        maxFramePayloadSize=MAX_MESSAGE, maxMessagePayloadSize=MAX_MESSAGE,
        perMessageCompressionAccept=accept,
    )
    factory = echoFactory(reactor=reactor, options=options)
    path = "C extension" if HAVE_SPEEDUPS else "pure Python"
    extra = {"version": f"txws {__version__} on {_twistedVersion()}", "path": path}
    if os.environ.get("TXWS_BENCH_METRICS"):
        _meter(reactor, factory)
        extra["path"] = path + ", metrics"
    if options.perMessageDeflate:
        policy = accept if accept is not None else "txws's default PerMessageDeflatePolicy"
        extra["deflate"] = f"{policy!r}, threshold {options.perMessageDeflateThreshold}"
    return factory, extra


def _runTxwsDeflate(port: int, readSize: int, announce: Announce) -> None:
    # txws's defaults: compression is on, with PerMessageDeflatePolicy().
    _runTxws(port, readSize, announce)


def _runTxwsDeflateHub(port: int, readSize: int, announce: Announce) -> None:
    from txws.hub.service import HUB_DEFLATE_POLICY

    reactor = _twistedSetup(readSize)
    factory, extra = _txwsFactory(reactor, HUB_DEFLATE_POLICY)
    announce(_listen(reactor, port, factory), extra)
    reactor.run()


def _runTxwsDeflateZlib(port: int, readSize: int, announce: Announce) -> None:
    from txws.deflate import PerMessageDeflatePolicy

    reactor = _twistedSetup(readSize)
    # zlib's defaults: 15 window bits, memory level 8, no limit asked of
    # the client's window.
    policy = PerMessageDeflatePolicy(serverMaxWindowBits=15, clientMaxWindowBits=0, memLevel=8)
    factory, extra = _txwsFactory(reactor, policy)
    announce(_listen(reactor, port, factory), extra)
    reactor.run()


def _meter(reactor: Any, factory: Any) -> None:
    """
    The C{txws-metrics} variant: the factory tracked by
    L{txws.metrics.WebSocketMetrics}, scraped (rendered as a Prometheus
    scrape would) every second.
    """
    from prometheus_client import CollectorRegistry, generate_latest
    from twisted.internet.task import LoopingCall

    from txws.metrics import WebSocketMetrics

    registry = CollectorRegistry()
    WebSocketMetrics(registry).track(factory, "bench")
    scrape = LoopingCall(generate_latest, registry)
    scrape.clock = reactor
    scrape.start(1.0, now=False)


def _runTxws(port: int, readSize: int, announce: Announce) -> None:
    reactor = _twistedSetup(readSize)
    factory, extra = _txwsFactory(reactor)
    announce(_listen(reactor, port, factory), extra)
    reactor.run()


def _runTxwsResource(port: int, readSize: int, announce: Announce) -> None:
    from twisted.web.server import Site

    from txws.server import WebSocketResource

    reactor = _twistedSetup(readSize)
    factory, extra = _txwsFactory(reactor)
    announce(_listen(reactor, port, Site(WebSocketResource(factory))), extra)
    reactor.run()


def _runAutobahn(port: int, readSize: int, announce: Announce, deflate: bool = False) -> None:
    autobahn = _peer("autobahn", "autobahn")
    websocket = _peer("autobahn.twisted.websocket", "autobahn")
    reactor = _twistedSetup(readSize)
    base: Any = websocket.WebSocketServerProtocol

    class AutobahnEcho(base):  # type: ignore[misc]
        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            self.sendMessage(payload, isBinary)

    factory = websocket.WebSocketServerFactory()
    factory.protocol = AutobahnEcho
    factory.setProtocolOptions(
        maxFramePayloadSize=MAX_MESSAGE, maxMessagePayloadSize=MAX_MESSAGE
    )
    if deflate:
        factory.setProtocolOptions(perMessageCompressionAccept=autobahnAccept)
    nvx = getattr(importlib.import_module("autobahn.websocket"), "USES_NVX", False)
    extra = {
        "version": f"autobahn {autobahn.__version__} on {_twistedVersion()}",
        "path": "NVX (CFFI)" if nvx else "pure Python",
    }
    if deflate:
        extra["deflate"] = "PerMessageDeflateOfferAccept: 12 window bits, memLevel 5"
    announce(_listen(reactor, port, factory), extra)
    reactor.run()


def _runAutobahnDeflate(port: int, readSize: int, announce: Announce) -> None:
    _runAutobahn(port, readSize, announce, deflate=True)


def autobahnAccept(offers: Any) -> Any:
    """
    Autobahn's C{perMessageCompressionAccept} set as txws's and websockets'
    defaults are: the first permessage-deflate offer, the server's window
    12 bits and memory level 5, the client's window limited to 12 bits
    when it allows it, context takeover kept both ways.
    """
    compress = _peer("autobahn.websocket.compress", "autobahn")
    for offer in offers:
        if isinstance(offer, compress.PerMessageDeflateOffer):
            bits = 12
            if offer.request_max_window_bits:
                bits = min(bits, offer.request_max_window_bits)
            return compress.PerMessageDeflateOfferAccept(
                offer,
                request_max_window_bits=12 if offer.accept_max_window_bits else 0,
                window_bits=bits,
                mem_level=5,
            )
    return None


def _runTwistedWeb(port: int, readSize: int, announce: Announce) -> None:
    websocket = _peer("twisted.web.websocket", "wsproto, i.e. twisted[websocket]")
    wsproto = _peer("wsproto", "wsproto")
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    reactor = _twistedSetup(readSize)

    class TwistedWebEcho:
        transport: Any = None

        def negotiationStarted(self, transport: Any) -> None:
            self.transport = transport

        def negotiationFinished(self) -> None:
            pass

        def pongReceived(self, payload: bytes) -> None:
            pass

        def textMessageReceived(self, message: str) -> None:
            self.transport.sendTextMessage(message)

        def bytesMessageReceived(self, data: bytes) -> None:
            self.transport.sendBytesMessage(data)

        def connectionLost(self, reason: Any) -> None:
            pass

    class TwistedWebFactory:
        def buildProtocol(self, request: Any) -> TwistedWebEcho:
            return TwistedWebEcho()

    root = Resource()
    root.putChild(b"", websocket.WebSocketResource(TwistedWebFactory()))
    version = f"{_twistedVersion()}, wsproto {getattr(wsproto, '__version__', '?')}"
    announce(_listen(reactor, port, Site(root)), {"version": version})
    reactor.run()


# -- asyncio servers ------------------------------------------------------------


def _boundAsyncioReads(readSize: int) -> None:
    if readSize:
        from asyncio import selector_events

        selector_events._SelectorSocketTransport.max_size = readSize  # type: ignore[attr-defined]


def _runWebsocketsDeflate(port: int, readSize: int, announce: Announce) -> None:
    _runWebsockets(port, readSize, announce, compression="deflate")


def _runWebsockets(
    port: int, readSize: int, announce: Announce, compression: str | None = None
) -> None:
    websockets = _peer("websockets", "websockets")
    server = _peer("websockets.asyncio.server", "websockets>=14")
    exceptions = _peer("websockets.exceptions", "websockets")
    _boundAsyncioReads(readSize)

    async def echo(connection: Any) -> None:
        try:
            async for message in connection:
                await connection.send(message)
        except exceptions.ConnectionClosed:
            pass

    async def serve() -> None:
        listening = await server.serve(
            echo, "127.0.0.1", port, max_size=MAX_MESSAGE, compression=compression,
            backlog=BACKLOG,
        )
        extra = {"version": f"websockets {websockets.__version__} on asyncio"}
        if compression:
            # Its defaults for "deflate" (enable_server_permessage_deflate):
            # server_max_window_bits=12, client_max_window_bits=12, memLevel 5.
            extra["deflate"] = "compression='deflate' (12 window bits, memLevel 5)"
        announce(listening.sockets[0].getsockname()[1], extra)
        await asyncio.Future()

    asyncio.run(serve())


def _runPicows(port: int, readSize: int, announce: Announce) -> None:
    picows = _peer("picows", "picows")
    version = _peer("picows.version", "picows")
    closeType = picows.WSMsgType.CLOSE

    base: Any = picows.WSListener

    class PicowsEcho(base):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            msgType = frame.msg_type
            if msgType == closeType:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()
            else:
                transport.send(msgType, frame.get_payload_as_memoryview(), frame.fin)

    async def serve() -> None:
        listening = await picows.ws_create_server(
            lambda request: PicowsEcho(),
            "127.0.0.1",
            port,
            max_frame_size=MAX_MESSAGE,
            backlog=BACKLOG,
        )
        announce(
            listening.sockets[0].getsockname()[1],
            {"version": f"picows {getattr(version, '__version__', '?')}"},
        )
        await asyncio.Future()

    asyncio.run(serve())


def _runNoEcho(port: int, readSize: int, announce: Announce) -> None:
    raise NotInstalled("this server has no echo (fan-out cells only)")


# -- The plain TCP echo -------------------------------------------------------------


def _runTcpEcho(port: int, readSize: int, announce: Announce) -> None:
    listener = socket.create_server(("127.0.0.1", port), backlog=BACKLOG)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    sockets: dict[int, socket.socket] = {}
    size = readSize or 256 * 1024
    announce(listener.getsockname()[1], {"version": "Python epoll loop"})
    while True:
        for fd, _ in poller.poll():
            if fd == listener.fileno():
                try:
                    accepted, _ = listener.accept()
                except BlockingIOError:
                    continue
                accepted.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sockets[accepted.fileno()] = accepted
                poller.register(accepted.fileno(), select.EPOLLIN)
                continue
            conn = sockets[fd]
            try:
                data = conn.recv(size)
            except OSError:
                data = b""
            if data:
                # A blocking send is fine here: the load generator always
                # reads while it waits.
                conn.sendall(data)
            else:
                poller.unregister(fd)
                del sockets[fd]
                conn.close()


SERVERS: dict[str, ServerInfo] = {
    info.name: info
    for info in [
        ServerInfo("tcp-echo", "plain epoll echo, no WebSocket (load generator ceiling)",
                   "tcp", False, _runTcpEcho),
        ServerInfo("raw", "Twisted protocol: answers the upgrade, then echoes bytes",
                   "bytes", True, _runRaw),
        ServerInfo("txws", "txws echo, plain listener", "frames", True, _runTxws, feed=True),
        ServerInfo("txws-resource", "txws echo via WebSocketResource on a twisted.web Site",
                   "frames", True, _runTxwsResource),
        ServerInfo("autobahn", "Autobahn|Python on Twisted", "frames", True, _runAutobahn),
        ServerInfo("twisted-web", "twisted.web.websocket (wsproto)", "frames", True,
                   _runTwistedWeb),
        ServerInfo("websockets", "websockets (asyncio)", "frames", True, _runWebsockets),
        ServerInfo("txws-deflate", "txws echo with its default permessage-deflate (12/5, "
                   "context takeover kept; compression cells only)", "frames", True,
                   _runTxwsDeflate, deflate=True),
        ServerInfo("txws-deflate-hubpolicy", "txws echo with the hub's HUB_DEFLATE_POLICY "
                   "(no context takeover either way; compression cells only)", "frames", True,
                   _runTxwsDeflateHub, deflate=True),
        ServerInfo("txws-deflate-15-8", "txws echo with zlib's defaults: 15 window bits, "
                   "memLevel 8, no client window limit (compression cells only)", "frames",
                   True, _runTxwsDeflateZlib, deflate=True),
        ServerInfo("websockets-deflate", "websockets with compression='deflate' (12/5; "
                   "compression cells only)", "frames", True, _runWebsocketsDeflate,
                   deflate=True),
        ServerInfo("autobahn-deflate", "Autobahn accepting permessage-deflate as 12/5 "
                   "(compression cells only)", "frames", True, _runAutobahnDeflate,
                   deflate=True),
        ServerInfo("picows", "picows on its own Cython transport (outer yardstick)",
                   "frames", False, _runPicows),
        ServerInfo("txws-hub", "the txws push hub, publishes by signed POST (fan-out only)",
                   "none", False, _runNoEcho),
        ServerInfo("txws-hub-redis", "the hub with the Redis broker (fan-out only; starts "
                   "its own redis-server)", "none", False, _runNoEcho),
        ServerInfo("raw-send", "raw, writing straight to each socket first (fan-out only)",
                   "none", False, _runNoEcho),
    ]
}


def _exitOnEof(interrupt: bool) -> None:
    """
    Wait for standard input to close, then end the process: at once, or
    (when profiling) by interrupting the main thread so that it can save
    its profile.
    """
    try:
        while sys.stdin.buffer.read(4096):
            pass
    finally:
        if interrupt:
            os.kill(os.getpid(), signal.SIGINT)
        else:
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    """
    Run one server until standard input closes.

    @param argv: command line arguments.
    @return: the exit status (3 when the peer library is not installed).
    """
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__)
    parser.add_argument("--server", required=True, choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cpu", type=int, default=1, help="CPU to pin to (-1: none)")
    parser.add_argument("--read-size", type=int, default=0, help="bound each recv (bytes)")
    parser.add_argument("--mode", choices=["echo", "fanout"], default="echo",
                        help="serve echo cells, or fan-out cells (bench.fanout_servers)")
    parser.add_argument("--profile", help="run under cProfile and save the stats to this file")
    args = parser.parse_args(argv)
    info = SERVERS[args.server]
    run = info.run
    if args.mode == "fanout":
        from bench.fanout_servers import FANOUT_SERVERS

        if args.server not in FANOUT_SERVERS:
            print(json.dumps({"error": "not supported", "detail": "no fan-out"}), flush=True)
            return 3
        run = FANOUT_SERVERS[args.server]
    pinned = pinToCpu(args.cpu)
    raiseFileLimit()
    if args.read_size and not info.readSizes:
        print(json.dumps({"error": "not supported", "detail": "--read-size"}), flush=True)
        return 3

    def announce(port: int, extra: dict[str, Any]) -> None:
        ready = {"server": info.name, "port": port, "pid": os.getpid(), "pinned": pinned,
                 "readSize": args.read_size, "mode": args.mode, **extra}
        print(json.dumps(ready), flush=True)

    profiler = cProfile.Profile() if args.profile else None
    threading.Thread(target=_exitOnEof, args=(profiler is not None,), daemon=True).start()
    try:
        if profiler is not None:
            profiler.enable()
        run(args.port, args.read_size, announce)
    except NotInstalled as e:
        print(json.dumps({"error": "not installed", "detail": str(e)}), flush=True)
        return 3
    except KeyboardInterrupt:
        pass
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
