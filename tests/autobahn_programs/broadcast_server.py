"""
A broadcast server in the style of Autobahn's broadcast example: clients
register when they open; a text message "hello NAME" is broadcast to every
registered client as one prepared text message ("joined NAME") and one
prepared binary message (the number of clients), each framed once by
C{factory.prepareMessage} and sent with C{sendPreparedMessage}; "bye"
is answered with a close (1000, "see you").

Usage: python broadcast_server.py  (prints "listening on PORT")
"""

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol


class BroadcastServerProtocol(WebSocketServerProtocol):
    def onOpen(self):
        self.factory.register(self)

    def onMessage(self, payload, isBinary):
        text = payload.decode("utf8")
        print(f"received {text}")
        if text == "bye":
            self.sendClose(1000, "see you")
        elif text.startswith("hello "):
            self.factory.broadcast(f"joined {text[6:]}")

    def onClose(self, wasClean, code, reason):
        print(f"closed clean={wasClean} code={code} reason={reason}")
        self.factory.unregister(self)


class BroadcastServerFactory(WebSocketServerFactory):
    def __init__(self, url):
        WebSocketServerFactory.__init__(self, url)
        self.clients = []

    def register(self, client):
        if client not in self.clients:
            self.clients.append(client)

    def unregister(self, client):
        if client in self.clients:
            self.clients.remove(client)

    def broadcast(self, msg):
        text = self.prepareMessage(msg.encode("utf8"))
        count = self.prepareMessage(bytes([len(self.clients)]), isBinary=True)
        for client in self.clients:
            client.sendPreparedMessage(text)
            client.sendPreparedMessage(count)
        print(f"broadcast {msg} to {len(self.clients)} clients")


def main():
    from twisted.internet import reactor

    factory = BroadcastServerFactory("ws://127.0.0.1")
    factory.protocol = BroadcastServerProtocol
    # Autobahn closes a closing handshake that takes over 1 s by aborting the
    # connection (its Close frame lost with it): on a loaded test machine a
    # peer can be left unscheduled that long, so allow 30 s.
    factory.setProtocolOptions(closeHandshakeTimeout=30)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(f"listening on {port.getHost().port}")
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
