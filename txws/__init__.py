"""
txws: RFC 6455 WebSockets for Twisted, and HMAC-signed server-to-server HTTP.

The names an application needs are importable from here; they mirror
C{autobahn.twisted.websocket}, so an Autobahn application moves to txws by
changing its imports.
"""

from txws._version import __version__
from txws.client import (
    ProxyError,
    WebSocketClientFactory,
    WebSocketClientProtocol,
    connect,
    connectWS,
)
from txws.frames import CloseCode, FrameError, Opcode
from txws.handshake import ConnectionRequest, ConnectionResponse, HandshakeError, ResponseError
from txws.options import WebSocketOptions
from txws.protocol import Disconnected, State, WebSocketProtocol
from txws.server import (
    ConnectionDeny,
    WebSocketResource,
    WebSocketServerFactory,
    WebSocketServerProtocol,
    listenWS,
    takeOverChannel,
)

__all__ = [
    "CloseCode",
    "ConnectionDeny",
    "ConnectionRequest",
    "ConnectionResponse",
    "Disconnected",
    "FrameError",
    "HandshakeError",
    "Opcode",
    "ProxyError",
    "ResponseError",
    "State",
    "WebSocketClientFactory",
    "WebSocketClientProtocol",
    "WebSocketOptions",
    "WebSocketProtocol",
    "WebSocketResource",
    "WebSocketServerFactory",
    "WebSocketServerProtocol",
    "__version__",
    "connect",
    "connectWS",
    "listenWS",
    "takeOverChannel",
]
