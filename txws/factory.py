"""
What server and client factories share: options, the injected reactor, the
random source, and the set of live connections that L{closeAll} acts on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from operator import methodcaller
from typing import TYPE_CHECKING, Any, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory

from txws._timers import TimerWheel
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
        self._connections: set[WebSocketProtocol] = set()
        # One timer per factory for all keepalive and handshake deadlines
        # (see txws._timers); the callbacks are the protocols' methods.
        self._keepaliveWheel: TimerWheel[WebSocketProtocol] = TimerWheel(
            reactor, methodcaller("_keepalivePing")
        )
        self._openWheel: TimerWheel[WebSocketProtocol] = TimerWheel(
            reactor, methodcaller("_openTimedOut"), 1.0
        )
        self._closeWheel: TimerWheel[WebSocketProtocol] = TimerWheel(
            reactor, methodcaller("_closeTimedOut"), 1.0
        )
        self._whenEmpty: list[Deferred[None]] = []

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
        @param doNotCompress: accepted for Autobahn compatibility (no
            compression extension is negotiated).
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
        return PreparedMessage(payload, isBinary)

    @property
    def connectionCount(self) -> int:
        """
        The number of connections currently alive (any state).
        """
        return len(self._connections)

    def connections(self) -> list[WebSocketProtocol]:
        """
        @return: the connections currently alive, in no particular order.
        """
        return list(self._connections)

    def closeAll(self, code: int = CloseCode.GOING_AWAY, reason: str = "") -> Deferred[None]:
        """
        Close every connection: open ones with a Close frame carrying
        C{code}, those still in their opening handshake by dropping them.

        @param code: the close code (1001 "going away" by default).
        @param reason: the close reason.
        @return: a Deferred that fires once every connection is gone.
        """
        if not self._connections:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._whenEmpty.append(waiting)
        for connection in list(self._connections):
            connection._shutDown(code, reason)
        return waiting

    def _connectionStarted(self, connection: WebSocketProtocol) -> None:
        self._connections.add(connection)

    def _connectionEnded(self, connection: WebSocketProtocol) -> None:
        self._connections.discard(connection)
        if self._connections:
            return
        # The wheels keep their reactor call while connections come and go;
        # with none left, leave no timer behind.
        self._keepaliveWheel.stopIfIdle()
        self._openWheel.stopIfIdle()
        self._closeWheel.stopIfIdle()
        if self._whenEmpty:
            waiting, self._whenEmpty = self._whenEmpty, []
            for d in waiting:
                d.callback(None)

