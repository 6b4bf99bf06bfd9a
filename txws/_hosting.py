"""
What a factory offers its connections, and what it asks of them.

Design: a connection needs from its factory the options, the clock, the
random source and a L{ConnectionRegistry}: the set of live connections
(which C{closeAll} and C{connectionCount} use) and the three timer wheels
(keepalive, opening and closing handshake deadlines; see L{txws._timers}).
The registry asks of each connection only what L{Managed} lists.  Both
sides are typed here, so that L{txws.protocol} (which sees its factory as a
L{ConnectionHost}) and L{txws.factory} (which owns a L{ConnectionRegistry})
do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import methodcaller
from typing import Any, Generic, Protocol, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from txws._timers import TimerWheel
from txws.options import WebSocketOptions

__all__ = ["ConnectionHost", "ConnectionRegistry", "Managed"]


class Managed(Protocol):
    """
    What the registry and its timer wheels call on a connection.
    """

    def _shutDown(self, code: int, reason: str) -> None:
        """
        Close (an open connection) or drop (one still in its handshake).
        """

    def _keepalivePing(self) -> None:
        """
        The keepalive interval has passed: send a ping.
        """

    def _openTimedOut(self) -> None:
        """
        The opening handshake did not complete in time.
        """

    def _closeTimedOut(self) -> None:
        """
        The closing handshake did not complete in time.
        """


_C = TypeVar("_C", bound=Managed)


class ConnectionRegistry(Generic[_C]):
    """
    A factory's live connections and their shared timers.

    @ivar keepalive: the keepalive deadlines (calls C{_keepalivePing}).
    @ivar openTimeouts: opening handshake deadlines (C{_openTimedOut}).
    @ivar closeTimeouts: closing handshake deadlines (C{_closeTimedOut}).
    """

    __slots__ = ("_connections", "_whenEmpty", "closeTimeouts", "keepalive", "openTimeouts")

    def __init__(self, reactor: IReactorTime) -> None:
        """
        @param reactor: the clock of the timer wheels.
        """
        self._connections: set[_C] = set()
        self._whenEmpty: list[Deferred[None]] = []
        self.keepalive: TimerWheel[_C] = TimerWheel(reactor, methodcaller("_keepalivePing"))
        self.openTimeouts: TimerWheel[_C] = TimerWheel(
            reactor, methodcaller("_openTimedOut"), 1.0
        )
        self.closeTimeouts: TimerWheel[_C] = TimerWheel(
            reactor, methodcaller("_closeTimedOut"), 1.0
        )

    def __len__(self) -> int:
        return len(self._connections)

    def connections(self) -> list[_C]:
        """
        @return: the live connections, in no particular order.
        """
        return list(self._connections)

    def add(self, connection: _C) -> None:
        """
        A connection was made.
        """
        self._connections.add(connection)

    def remove(self, connection: _C) -> None:
        """
        A connection is gone.  With none left, no timer stays behind (the
        wheels keep their reactor call while connections come and go), and
        whoever waits in L{closeAll} is told.
        """
        self._connections.discard(connection)
        if self._connections:
            return
        self.keepalive.stopIfIdle()
        self.openTimeouts.stopIfIdle()
        self.closeTimeouts.stopIfIdle()
        if self._whenEmpty:
            waiting, self._whenEmpty = self._whenEmpty, []
            for d in waiting:
                d.callback(None)

    def handshakeRefused(self, status: int) -> None:
        """
        A connection's opening handshake was refused with an HTTP status:
        by this server, or by the server this client connected to (nothing
        here; a metered registry counts it, see L{txws.metrics}).

        @param status: the status sent or received.
        """

    def frameRefused(self, code: int) -> None:
        """
        A peer broke a rule of the framing, UTF-8 or a size limit, and its
        connection is being failed with C{code} (nothing here; a metered
        registry counts it, see L{txws.metrics}).

        @param code: the close code (1002, 1007, 1009).
        """

    def closeAll(self, code: int, reason: str) -> Deferred[None]:
        """
        Shut every connection down.

        @return: a Deferred that fires once every connection is gone.
        """
        if not self._connections:
            return succeed(None)
        waiting: Deferred[None] = Deferred()
        self._whenEmpty.append(waiting)
        for connection in list(self._connections):
            connection._shutDown(code, reason)
        return waiting


class ConnectionHost(Protocol):
    """
    What a connection uses of its factory (L{txws.factory.WebSocketFactory}
    provides it).
    """

    reactor: IReactorTime
    randomBytes: Callable[[int], bytes]

    @property
    def options(self) -> WebSocketOptions: ...

    @property
    def registry(self) -> ConnectionRegistry[Any]: ...
