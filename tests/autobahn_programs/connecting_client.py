"""
A client whose C{onConnecting(transport_details)} changes the opening
handshake, as Autobahn documents: the first connection returns a
C{ConnectingRequest} with another resource, headers, user agent and
subprotocols; the second returns a Deferred that fires with C{None} (the
factory's own request) a moment later.  It prints what C{onConnecting}
saw and what the server answered.

Usage: python connecting_client.py PORT
"""

import sys

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    connectWS,
)
from autobahn.websocket.types import ConnectingRequest
from twisted.internet import reactor
from twisted.internet.task import deferLater

PORT = int(sys.argv[1])
done = []


class Client(WebSocketClientProtocol):
    def onConnecting(self, transport_details):
        print(
            f"onConnecting is_server={transport_details.is_server}"
            f" is_secure={transport_details.is_secure}"
            f" channel_type={transport_details.channel_type}"
            f" peer={transport_details.peer.replace(f':{PORT}', ':PORT')}"
        )
        if self.factory.changeRequest:
            return ConnectingRequest(
                host="127.0.0.1",
                port=PORT,
                resource="/changed?by=onConnecting",
                headers={"x-connecting": "yes"},
                useragent="parity-agent",
                protocols=["chat"],
            )
        return deferLater(reactor, 0.05, lambda: None)

    def onConnect(self, response):
        print(f"onConnect protocol={response.protocol}")

    def onOpen(self):
        self.sendMessage(b"after onConnecting")

    def onMessage(self, payload, isBinary):
        print(f"echo {payload!r}")
        self.sendClose(1000)

    def onClose(self, wasClean, code, reason):
        print(f"onClose clean={wasClean} code={code}")
        done.append(1)
        if len(done) == 1:
            start(False)
        else:
            reactor.stop()


def start(changeRequest):
    # (Autobahn checks the server's subprotocol against the factory's list,
    # not the ConnectingRequest's: both offer "chat" on the first connection.)
    factory = WebSocketClientFactory(
        f"ws://127.0.0.1:{PORT}/plain",
        useragent="factory-agent",
        protocols=["chat"] if changeRequest else [],
    )
    factory.protocol = Client
    # Autobahn closes a closing handshake that takes over 1 s by aborting the
    # connection (its Close frame lost with it): on a loaded test machine a
    # peer can be left unscheduled that long, so allow 30 s.
    factory.setProtocolOptions(closeHandshakeTimeout=30)
    factory.changeRequest = changeRequest
    connectWS(factory)


if __name__ == "__main__":
    start(True)
    reactor.run()
