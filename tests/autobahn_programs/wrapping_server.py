"""
A line-based stream protocol served over WebSocket with Autobahn's
C{WrappingWebSocketServerFactory}, as Autobahn's wrapping example does:
each line "ECHO text" is answered with "TEXT" (upper case), "QUIT" makes
the wrapped protocol close its transport.  The wrapped protocol knows
nothing of WebSocket.

Usage: python wrapping_server.py  (prints "listening on PORT")
"""

import sys

from autobahn.twisted.websocket import WrappingWebSocketServerFactory
from twisted.internet.protocol import Factory, Protocol


class ShoutingLines(Protocol):
    buffer = b""

    def connectionMade(self):
        print("wrapped connectionMade")
        self.transport.write(b"WELCOME\n")

    def dataReceived(self, data):
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            print(f"line {line!r}")
            if line == b"QUIT":
                self.transport.write(b"BYE\n")
                self.transport.loseConnection()
            elif line.startswith(b"ECHO "):
                self.transport.write(line[5:].upper() + b"\n")
            else:
                self.transport.write(b"ERROR unknown command\n")

    def connectionLost(self, reason):
        print("wrapped connectionLost")


def main():
    from twisted.internet import reactor

    wrapped = Factory.forProtocol(ShoutingLines)
    factory = WrappingWebSocketServerFactory(
        wrapped, "ws://127.0.0.1", enableCompression=False, autoFragmentSize=1024
    )
    # Autobahn closes a closing handshake that takes over 1 s by aborting the
    # connection (its Close frame lost with it): on a loaded test machine a
    # peer can be left unscheduled that long, so allow 30 s.
    factory.setProtocolOptions(closeHandshakeTimeout=30)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(f"listening on {port.getHost().port}")
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
