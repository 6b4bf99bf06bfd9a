"""
A client written the way Autobahn|Python's Twisted examples are: in
C{onOpen} it sends a text and a binary message every second, and it logs
what comes back.  Only its import line names txws; with
C{from autobahn.twisted.websocket import ...} the same file runs on
Autobahn.  The server's port comes from argv (default 9000).
"""

from __future__ import annotations

import sys
from typing import Any

from txws import WebSocketClientFactory, WebSocketClientProtocol


class MyClientProtocol(WebSocketClientProtocol):
    """
    Greets the server once a second and logs its answers.
    """

    def onConnect(self, response: Any) -> None:
        print(f"Server connected: {response.peer}")

    def onOpen(self) -> None:
        print("WebSocket connection open.")
        self.greet()

    def greet(self) -> None:
        """
        Send one text and one binary message, then again in a second.
        """
        self.sendMessage(b"Hello, world!")
        self.sendMessage(b"\x00\x01\x03\x04", isBinary=True)
        self.factory.reactor.callLater(1, self.greet)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            print(f"Binary message received: {len(payload)} bytes")
        else:
            print(f"Text message received: {payload.decode('utf8')}")

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        print(f"WebSocket connection closed: {reason}")


def main(argv: list[str]) -> None:
    """
    Connect to 127.0.0.1 at the port in C{argv[1]} and run until killed.
    """
    from twisted.internet import reactor
    from twisted.python import log

    log.startLogging(sys.stdout)
    port = int(argv[1]) if len(argv) > 1 else 9000
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}")
    factory.protocol = MyClientProtocol
    reactor.connectTCP("127.0.0.1", port, factory)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
