"""
Three clients of the broadcast server, opened one after the other: each
says "hello NAME" once open and, when it has seen its own "joined NAME",
the next one connects.  When the last has joined, every client says "bye".
At the end each client's transcript is printed, in client order.

Usage: python broadcast_client.py PORT
"""

import sys

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    connectWS,
)
from twisted.internet import reactor

NAMES = ["ann", "bob", "cyd"]
PORT = int(sys.argv[1])
clients = []
transcripts = {}


class BroadcastClientProtocol(WebSocketClientProtocol):
    def onOpen(self):
        self.name = self.factory.name
        transcripts[self.name] = []
        clients.append(self)
        self.sendMessage(f"hello {self.name}".encode())

    def onMessage(self, payload, isBinary):
        seen = f"{payload[0]} clients" if isBinary else payload.decode("utf8")
        transcripts[self.name].append(f"{'binary' if isBinary else 'text'}: {seen}")
        if not isBinary and payload.decode("utf8") == f"joined {self.name}":
            if len(clients) < len(NAMES):
                start(NAMES[len(clients)])
            else:
                for client in clients:
                    client.sendMessage(b"bye")

    def onClose(self, wasClean, code, reason):
        transcripts[self.name].append(f"closed clean={wasClean} code={code} reason={reason}")
        clients.remove(self)
        if not clients:
            for name in NAMES:
                for line in transcripts[name]:
                    print(f"{name} {line}")
            reactor.stop()


def start(name):
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{PORT}")
    factory.protocol = BroadcastClientProtocol
    factory.name = name
    connectWS(factory)


if __name__ == "__main__":
    start(NAMES[0])
    reactor.run()
