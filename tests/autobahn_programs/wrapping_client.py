"""
The client of C{wrapping_server.py}: a line-based stream client protocol
connected with Autobahn's C{WrappingWebSocketClientFactory}.  It sends a
few commands (one of them larger than the server's fragment size), prints
every line it gets back, says QUIT and stops once the server has closed.

Usage: python wrapping_client.py PORT
"""

import sys

from autobahn.twisted.websocket import WrappingWebSocketClientFactory
from twisted.internet.protocol import ClientFactory, Protocol


class LineClient(Protocol):
    buffer = b""

    def connectionMade(self):
        print("connectionMade")
        self.transport.write(b"ECHO hello\nECHO wrapped ")
        self.transport.write(b"world\nNOPE\n")
        self.transport.write(b"ECHO " + b"x" * 3000 + b"\n")
        self.transport.write(b"QUIT\n")

    def dataReceived(self, data):
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            shown = line if len(line) < 40 else line[:10] + b"... %d bytes" % len(line)
            print(f"got {shown!r}")

    def connectionLost(self, reason):
        print("connectionLost")
        from twisted.internet import reactor

        reactor.callLater(0.2, reactor.stop)


if __name__ == "__main__":
    from twisted.internet import reactor

    port = int(sys.argv[1])
    wrapped = ClientFactory.forProtocol(LineClient)
    factory = WrappingWebSocketClientFactory(
        wrapped, f"ws://127.0.0.1:{port}", enableCompression=False
    )
    # Autobahn closes a closing handshake that takes over 1 s by aborting the
    # connection (its Close frame lost with it): on a loaded test machine a
    # peer can be left unscheduled that long, so allow 30 s.
    factory.setProtocolOptions(closeHandshakeTimeout=30)
    reactor.connectTCP("127.0.0.1", port, factory)
    reactor.run()
