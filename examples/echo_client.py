"""
A client: connects, sends each message given, prints each answer, closes.

    .venv/bin/python examples/echo_client.py ws://127.0.0.1:9000/ hello world
    .venv/bin/python examples/echo_client.py wss://localhost:9443/ hi --ca ca.pem

For C{wss://} the server's certificate and host name are verified, against
the system's trusted authorities or, with C{--ca}, only against that
certificate authority (e.g. the one C{examples/tls_echo_server.py} makes).
Proxies named by C{https_proxy} / C{http_proxy} are used unless C{no_proxy}
exempts the host; C{--proxy URL} names one, C{--no-proxy} disables them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred, DeferredQueue, ensureDeferred
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.task import react

from txws import WebSocketClientProtocol, connect


class PrintingClient(WebSocketClientProtocol):
    """
    Queues every message received, so that the program can wait for them.
    """

    def __init__(self) -> None:
        self.received: DeferredQueue[tuple[bytes, bool]] = DeferredQueue()
        self.closed: Deferred[int] = Deferred()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.received.put((payload, isBinary))

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        # Called exactly once, however the connection ended.
        self.closed.callback(code)


async def main(reactor: Any, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="Send messages, print the answers.")
    parser.add_argument("url")
    parser.add_argument("messages", nargs="*", default=["Hello, world!"])
    parser.add_argument("--ca", help="trust only this CA certificate (PEM) for wss://")
    parser.add_argument("--proxy", help="an HTTP proxy, http://[user:pass@]host:port")
    parser.add_argument("--no-proxy", action="store_true", help="ignore proxy variables")
    args = parser.parse_args(argv)
    tls = None
    if args.ca:
        with open(args.ca, "rb") as f:
            authority = Certificate.loadPEM(f.read())
        tls = optionsForClientTLS(urlsplit(args.url).hostname or "", trustRoot=authority)
    proxy: Any = None if args.no_proxy else (args.proxy or True)
    # Fires once the handshake succeeded (or fails: refused, TLS, timeout).
    client = await connect(
        args.url, protocolClass=PrintingClient, reactor=reactor, contextFactory=tls, proxy=proxy
    )
    assert isinstance(client, PrintingClient)
    for text in args.messages:
        client.sendMessage(text.encode("utf-8"))
        payload, _ = await client.received.get()
        print(f"received: {payload.decode('utf-8')}", flush=True)
    client.sendClose(1000)  # start the closing handshake
    code = await client.closed
    print(f"closed with {code}", flush=True)


if __name__ == "__main__":
    react(lambda reactor, argv: ensureDeferred(main(reactor, argv)), [sys.argv[1:]])
