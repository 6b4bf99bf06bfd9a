"""
What server and client factories share: options, the injected reactor, the
random source, and the registry of live connections (with their timer
wheels) that L{WebSocketFactory.closeAll} acts on; to its connections a
factory is a L{txws._hosting.ConnectionHost}.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory

from txws._hosting import ConnectionRegistry
from txws._utf8 import isValidUtf8
from txws.frames import CloseCode, PreparedMessage
from txws.options import WebSocketOptions

if TYPE_CHECKING:
    from txws.protocol import WebSocketProtocol

__all__ = ["WebSocketFactory"]


class WebSocketFactory(Factory):
    """
    Base class of L{txws.server.WebSocketServerFactory} and
    L{txws.client.WebSocketClientFactory}.

    @ivar reactor: the reactor whose clock drives timeouts and keepalive.
    @ivar options: the L{WebSocketOptions} new connections use.
    @ivar randomBytes: a callable returning C{n} cryptographically random
        bytes (masking keys, handshake keys, ping payloads); C{os.urandom}
        unless a test injects another.
    @ivar registry: the live connections and their shared timers, for the
        connections themselves (L{txws._hosting.ConnectionRegistry}).
    """

    reactor: IReactorTime
    options: WebSocketOptions
    randomBytes: Callable[[int], bytes]

    def __init__(
        self, reactor: Optional[IReactorTime] = None, options: Optional[WebSocketOptions] = None
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        assert reactor is not None
        self.reactor = reactor
        self.options = options if options is not None else WebSocketOptions()
        self.randomBytes = os.urandom
        self.registry: ConnectionRegistry[WebSocketProtocol] = ConnectionRegistry(reactor)

    def setProtocolOptions(self, **options: Any) -> None:
        """
        Change options for connections made from now on (Autobahn's API).

        @param options: L{WebSocketOptions} field names and values.
        @raise TypeError: for an option txws does not know, naming it.
        @raise ValueError: for an invalid value.
        """
        if "allowedOrigins" in options and options["allowedOrigins"] is not None:
            options["allowedOrigins"] = tuple(options["allowedOrigins"])
        self.options = self.options.replace(**options)

    def prepareMessage(
        self, payload: bytes, isBinary: bool = False, doNotCompress: bool = False
    ) -> PreparedMessage:
        """
        Frame a message once, to send it to many connections with their
        C{sendPreparedMessage} (Autobahn's API): a broadcast then costs one
        frame encoding, not one per connection.

        @param payload: the message; for text, UTF-8 encoded bytes.
        @param isBinary: C{True} for a binary message.
        @param doNotCompress: send it uncompressed even to connections
            that negotiated permessage-deflate.  Otherwise each connection
            that compresses every message with a fresh context sends the
            message compressed once for all of them (per compression
            settings), and one with context takeover compresses it itself.
        @return: the prepared message.
        @raise TypeError: if C{payload} is not bytes-like.
        @raise ValueError: for a text payload that is not valid UTF-8.
        """
        if type(payload) is not bytes:
            if not isinstance(payload, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"payload must be bytes, not {type(payload).__name__}; encode text as UTF-8"
                )
            payload = bytes(payload)
        if not isBinary and not isValidUtf8(payload):
            raise ValueError("text message payload is not valid UTF-8")
        return PreparedMessage(payload, isBinary, doNotCompress)

    @property
    def connectionCount(self) -> int:
        """
        The number of connections currently alive (any state).
        """
        return len(self.registry)

    def connections(self) -> list[WebSocketProtocol]:
        """
        @return: the connections currently alive, in no particular order.
        """
        return self.registry.connections()

    def closeAll(self, code: int = int(CloseCode.GOING_AWAY), reason: str = "") -> Deferred[None]:
        """
        Close every connection: open ones with a Close frame carrying
        C{code}, those still in their opening handshake by dropping them.

        @param code: the close code (1001 "going away" by default).
        @param reason: the close reason.
        @return: a Deferred that fires once every connection is gone.
        """
        return self.registry.closeAll(code, reason)
