"""
A C{twisted.web} site with a WebSocket resource beside a static one, as
Autobahn's echo_site example: C{/ws} is an echo WebSocket served by
C{autobahn.twisted.resource.WebSocketResource}, C{/static} a plain
resource, on one port.

Usage: python site_server.py  (prints "listening on PORT")
"""

import sys

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.static import Data


class EchoServerProtocol(WebSocketServerProtocol):
    def onConnect(self, request):
        print(f"connect path={request.path} params={sorted(request.params.items())}")

    def onMessage(self, payload, isBinary):
        print(f"message {payload!r} binary={isBinary}")
        self.sendMessage(payload, isBinary)

    def onClose(self, wasClean, code, reason):
        print(f"closed clean={wasClean} code={code} reason={reason}")


def main():
    from twisted.internet import reactor

    factory = WebSocketServerFactory("ws://127.0.0.1")
    factory.protocol = EchoServerProtocol
    root = Resource()
    root.putChild(b"ws", WebSocketResource(factory))
    root.putChild(b"static", Data(b"static content\n", "text/plain"))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    print(f"listening on {port.getHost().port}")
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
