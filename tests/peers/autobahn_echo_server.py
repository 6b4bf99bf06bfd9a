"""
An echo server written the way Autobahn|Python's Twisted examples are: an
Autobahn-style protocol class, a factory built from a C{ws://} URL,
C{reactor.listenTCP} and legacy C{twisted.python.log} logging.  Only its
import line names txws; with C{from autobahn.twisted.websocket import ...}
instead, the same file runs on Autobahn.  The port comes from argv (default
9000) so that tests can use an ephemeral one.
"""

from __future__ import annotations

import sys
from typing import Any

from txws import WebSocketServerFactory, WebSocketServerProtocol


class MyServerProtocol(WebSocketServerProtocol):
    """
    Logs each event and sends every message back as it came.
    """

    def onConnect(self, request: Any) -> None:
        print(f"Client connecting: {request.peer}")

    def onOpen(self) -> None:
        print("WebSocket connection open.")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            print(f"Binary message received: {len(payload)} bytes")
        else:
            print(f"Text message received: {payload.decode('utf8')}")
        self.sendMessage(payload, isBinary)

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        print(f"WebSocket connection closed: {reason}")


def main(argv: list[str]) -> None:
    """
    Serve on 127.0.0.1 at the port in C{argv[1]} until killed.
    """
    from twisted.internet import reactor
    from twisted.python import log

    log.startLogging(sys.stdout)
    port = int(argv[1]) if len(argv) > 1 else 9000
    # Port 0 (any free port, for tests) is not a port a URL may name.
    factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}" if port else "ws://127.0.0.1")
    factory.protocol = MyServerProtocol
    reactor.listenTCP(port, factory)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
