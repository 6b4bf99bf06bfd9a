"""
An Autobahn|Python echo server, written here in the style of Autobahn's
Twisted examples: it prints what the opening handshake carried (path,
query, the headers the client programs set, the subprotocol it chooses),
echoes every message and prints how each connection closed.  The parity
tests run it as is and with its imports switched to txws.

Usage: python echo_server.py  (prints "listening on PORT"; any free port)
"""

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol


class EchoServerProtocol(WebSocketServerProtocol):
    def onConnect(self, request):
        agent = request.headers.get("user-agent", "")
        if agent.startswith(("AutobahnPython/", "txws/")):
            agent = "the library's"
        print(
            f"connect path={request.path} params={sorted(request.params.items())}"
            f" x-foo={request.headers.get('x-foo')}"
            f" x-connecting={request.headers.get('x-connecting')}"
            f" user-agent={agent}"
            f" protocols={request.protocols}"
        )
        if "chat" in request.protocols:
            return "chat"
        return None

    def onOpen(self):
        print("open")

    def onMessage(self, payload, isBinary):
        print(f"message {payload!r} binary={isBinary}")
        self.sendMessage(payload, isBinary)

    def onClose(self, wasClean, code, reason):
        print(f"closed clean={wasClean} code={code} reason={reason}")


def main():
    from twisted.internet import reactor

    factory = WebSocketServerFactory("ws://127.0.0.1")
    factory.protocol = EchoServerProtocol
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(f"listening on {port.getHost().port}")
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
