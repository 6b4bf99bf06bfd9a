"""
txws: RFC 6455 WebSockets for Twisted, and HMAC-signed server-to-server HTTP.

The names an application needs are importable from here; they mirror
C{autobahn.twisted.websocket} (and the types of C{autobahn.websocket.types}),
so an Autobahn application moves to txws by changing its imports; the
resources of C{autobahn.twisted.resource} are in L{txws.resource}.  An
Autobahn name txws does not implement raises L{NotInTxws} when imported
from here, naming it; C{docs/autobahn.md} is the table of every name.
"""

from typing import TYPE_CHECKING

from txws._version import __version__
from txws.agent import create_client_agent
from txws.client import (
    ProxyError,
    WebSocketClientFactory,
    WebSocketClientProtocol,
    connect,
    connectWS,
)
from txws.compat import ConnectingRequest, ConnectionAccept, NotInTxws, TransportDetails
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
from txws.wrap import (
    WrappingWebSocketClientFactory,
    WrappingWebSocketClientProtocol,
    WrappingWebSocketServerFactory,
    WrappingWebSocketServerProtocol,
)

__all__ = [
    "CloseCode",
    "ConnectingRequest",
    "ConnectionAccept",
    "ConnectionDeny",
    "ConnectionRequest",
    "ConnectionResponse",
    "Disconnected",
    "FrameError",
    "HandshakeError",
    "NotInTxws",
    "Opcode",
    "ProxyError",
    "ResponseError",
    "State",
    "TransportDetails",
    "WebSocketClientFactory",
    "WebSocketClientProtocol",
    "WebSocketOptions",
    "WebSocketProtocol",
    "WebSocketResource",
    "WebSocketServerFactory",
    "WebSocketServerProtocol",
    "WrappingWebSocketClientFactory",
    "WrappingWebSocketClientProtocol",
    "WrappingWebSocketServerFactory",
    "WrappingWebSocketServerProtocol",
    "__version__",
    "connect",
    "connectWS",
    "create_client_agent",
    "listenWS",
    "takeOverChannel",
]

if not TYPE_CHECKING:
    # (Hidden from type checkers, which would otherwise take every missing
    # name of the package to exist.)

    def __getattr__(name: str) -> object:
        from txws.compat import refusedName

        raise refusedName(__name__, name)
