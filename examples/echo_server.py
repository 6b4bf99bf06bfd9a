"""
An echo server: every message a client sends comes straight back to it.

    .venv/bin/python examples/echo_server.py [--port 9000]

It prints the URL it listens on (with C{--port 0}, the default, the system
picks a free port); try it with C{examples/echo_client.py}.  Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from txws import ConnectionRequest, WebSocketServerFactory, WebSocketServerProtocol


class EchoProtocol(WebSocketServerProtocol):
    """
    One client's connection.  The callbacks are Autobahn's.
    """

    def onConnect(self, request: ConnectionRequest) -> None:
        # The opening handshake: returning None accepts it (return a
        # subprotocol name to pick one, raise ConnectionDeny to refuse).
        print(f"connection from {request.peer} for {request.path}", flush=True)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        # A complete message (text arrives as UTF-8 bytes, already checked).
        self.sendMessage(payload, isBinary)

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        print(f"closed: clean={wasClean} code={code}", flush=True)


def main(reactor: Any, argv: list[str]) -> Deferred[None]:
    parser = argparse.ArgumentParser(description="A WebSocket echo server.")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    args = parser.parse_args(argv)
    factory = WebSocketServerFactory(reactor=reactor)
    factory.protocol = EchoProtocol
    # Loopback only: an example should not listen on every interface.
    port = reactor.listenTCP(args.port, factory, interface="127.0.0.1")
    print(f"echo server on ws://127.0.0.1:{port.getHost().port}/", flush=True)
    return Deferred()  # never fires: serve until Ctrl-C


if __name__ == "__main__":
    react(main, [sys.argv[1:]])
