"""
A broadcast server written for Autobahn|Python, moved to txws by changing
its import line and nothing else: the classic Autobahn shape (a protocol
subclass with C{onOpen} / C{onMessage} / C{onClose}, a factory subclass
keeping the clients, C{prepareMessage} / C{sendPreparedMessage} for the
fan-out, C{reactor.listenTCP}, legacy C{twisted.python.log}).  With
C{from autobahn.twisted.websocket import ...} instead, the same file runs
on Autobahn (C{tests/test_examples.py} runs it both ways).

    .venv/bin/python examples/autobahn_broadcast.py [PORT] [TICK-SECONDS]

Every text message a client sends goes to every client as
C{"<message> from <peer>"}; every TICK-SECONDS (default 1) the server
broadcasts C{"tick N"}.  PORT defaults to 9000; 0 picks a free one (the
log's "BroadcastServerFactory starting on N" line tells which).
"""

from __future__ import annotations

import sys
from typing import Any

from txws import WebSocketServerFactory, WebSocketServerProtocol


class BroadcastServerProtocol(WebSocketServerProtocol):
    factory: BroadcastServerFactory

    def onOpen(self) -> None:
        self.factory.register(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if not isBinary:
            message = f"{payload.decode('utf8')} from {self.peer}"
            self.factory.broadcast(message)

    def onClose(self, wasClean: bool, code: int, reason: Any) -> None:
        self.factory.unregister(self)


class BroadcastServerFactory(WebSocketServerFactory):
    """
    Keeps the connected clients and sends each broadcast, framed once, to
    all of them.
    """

    def __init__(self, url: str, tickSeconds: float) -> None:
        WebSocketServerFactory.__init__(self, url)
        self.clients: list[Any] = []
        self.tickcount = 0
        self.tickSeconds = tickSeconds
        self.tick()

    def tick(self) -> None:
        from twisted.internet import reactor

        self.tickcount += 1
        self.broadcast(f"tick {self.tickcount}")
        reactor.callLater(self.tickSeconds, self.tick)

    def register(self, client: Any) -> None:
        if client not in self.clients:
            print(f"registered client {client.peer}")
            self.clients.append(client)

    def unregister(self, client: Any) -> None:
        if client in self.clients:
            print(f"unregistered client {client.peer}")
            self.clients.remove(client)

    def broadcast(self, message: str) -> None:
        prepared = self.prepareMessage(message.encode("utf8"))
        for client in self.clients:
            client.sendPreparedMessage(prepared)


def main(argv: list[str]) -> None:
    from twisted.internet import reactor
    from twisted.python import log

    log.startLogging(sys.stdout)
    port = int(argv[1]) if len(argv) > 1 else 9000
    tickSeconds = float(argv[2]) if len(argv) > 2 else 1.0
    factory = BroadcastServerFactory(
        f"ws://127.0.0.1:{port}" if port else "ws://127.0.0.1", tickSeconds
    )
    factory.protocol = BroadcastServerProtocol
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(sys.argv)
