"""
An ordinary Twisted stream protocol, reachable over WebSocket without
changing it: L{txws.wrap.WebSocketWrappingFactory} wraps its factory, so
each binary message a client sends is stream bytes for the protocol, and
each of the protocol's writes goes back as a binary message.  The same
factory also listens on plain TCP, to show it is the same protocol.

    .venv/bin/python examples/wrap_server.py [--port 9000] [--tcp-port 9001]

The protocol here upper-cases each line.  Over TCP: C{nc 127.0.0.1 TCPPORT};
over WebSocket, send binary messages holding C{b"hello\\r\\n"} (the
C{binary} subprotocol, or C{base64} for clients that can only send text).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.internet.task import react
from twisted.protocols.basic import LineReceiver

from txws.wrap import WebSocketWrappingFactory


class Shout(LineReceiver):
    """
    A plain line protocol that knows nothing of WebSocket.
    """

    def lineReceived(self, line: bytes) -> None:
        # (Called through the base class, which Twisted leaves unannotated.)
        LineReceiver.sendLine(self, line.upper())


def main(reactor: Any, argv: list[str]) -> Deferred[None]:
    parser = argparse.ArgumentParser(description="A line protocol over WebSocket and TCP.")
    parser.add_argument("--port", type=int, default=0, help="WebSocket port; 0 = any free one")
    parser.add_argument("--tcp-port", type=int, default=0, help="TCP port; 0 = any free one")
    args = parser.parse_args(argv)
    shouting: Factory[Any] = Factory.forProtocol(Shout)
    overWebSocket = reactor.listenTCP(
        args.port, WebSocketWrappingFactory(shouting, reactor=reactor), interface="127.0.0.1"
    )
    overTCP = reactor.listenTCP(args.tcp_port, shouting, interface="127.0.0.1")
    print(f"wrapped protocol on ws://127.0.0.1:{overWebSocket.getHost().port}/", flush=True)
    print(f"same protocol on tcp://127.0.0.1:{overTCP.getHost().port}", flush=True)
    return Deferred()


if __name__ == "__main__":
    react(main, [sys.argv[1:]])
