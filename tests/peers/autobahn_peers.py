"""
Real Autobahn|Python peers (C{autobahn.twisted.websocket}) that run in the
test process on the real reactor and report their events through Deferreds.
"""

from __future__ import annotations

from typing import Any

import txaio
from autobahn.twisted.websocket import WebSocketClientFactory as AutobahnClientFactory
from autobahn.twisted.websocket import WebSocketClientProtocol as AutobahnClientProtocol
from autobahn.twisted.websocket import WebSocketServerFactory as AutobahnServerFactory
from autobahn.twisted.websocket import WebSocketServerProtocol as AutobahnServerProtocol
from autobahn.websocket import compress as autobahnCompress
from twisted.internet.defer import Deferred, DeferredQueue

from tests.peers.harness import CloseEvent

__all__ = [
    "AutobahnEchoServer",
    "AutobahnEchoServerFactory",
    "AutobahnRecorder",
    "AutobahnRecorderFactory",
    "acceptResponse",
    "autobahnSettings",
]

# Autobahn runs on Twisted or asyncio through txaio; choose Twisted (its
# Twisted module does too, so this only states the fact).
txaio.use_twisted()  # type: ignore[no-untyped-call]


class AutobahnRecorder(AutobahnClientProtocol):
    """
    An Autobahn client that reports its events to its
    L{AutobahnRecorderFactory}.
    """

    factory: AutobahnRecorderFactory

    def onOpen(self) -> None:
        """
        Report the open connection.
        """
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Queue the message.
        """
        self.factory.messages.put((payload, isBinary))

    def onPong(self, payload: bytes) -> None:
        """
        Queue the pong's payload.
        """
        self.factory.pongs.put(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """
        Report how the connection closed.
        """
        if not self.factory.closed.called:
            self.factory.closed.callback(CloseEvent(wasClean, code or 0, reason or ""))


class AutobahnRecorderFactory(AutobahnClientFactory):
    """
    An Autobahn client factory for one L{AutobahnRecorder} connection.
    """

    protocol = AutobahnRecorder  # type: ignore[assignment]

    def __init__(self, url: str) -> None:
        super().__init__(url)  # type: ignore[no-untyped-call]
        self.opened: Deferred[AutobahnRecorder] = Deferred()
        self.closed: Deferred[CloseEvent] = Deferred()
        self.messages: DeferredQueue[tuple[bytes, bool]] = DeferredQueue()
        self.pongs: DeferredQueue[bytes] = DeferredQueue()


class AutobahnEchoServer(AutobahnServerProtocol):
    """
    An Autobahn echo server that records what it receives.
    """

    factory: AutobahnEchoServerFactory

    def onOpen(self) -> None:
        """
        Report the open connection.
        """
        self.factory.opened.put(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Record and echo the message.
        """
        self.factory.messages.put((payload, isBinary))
        self.sendMessage(payload, isBinary)  # type: ignore[no-untyped-call]

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """
        Report how the connection closed.
        """
        self.factory.closed.put(CloseEvent(wasClean, code or 0, reason or ""))


class AutobahnEchoServerFactory(AutobahnServerFactory):
    """
    Serves L{AutobahnEchoServer}.

    @ivar opened: the connections, as they open.
    @ivar messages: C{(payload, isBinary)} per message received.
    @ivar closed: a L{CloseEvent} per closed connection.
    """

    protocol = AutobahnEchoServer  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.opened: DeferredQueue[AutobahnEchoServer] = DeferredQueue()
        self.messages: DeferredQueue[tuple[bytes, bool]] = DeferredQueue()
        self.closed: DeferredQueue[CloseEvent] = DeferredQueue()


def acceptResponse(response: Any) -> Any:
    """
    The Autobahn testsuite's client acceptance of a server's answer (a
    C{perMessageCompressionAccept} for Autobahn clients).
    """
    if isinstance(response, autobahnCompress.PerMessageDeflateResponse):
        return autobahnCompress.PerMessageDeflateResponseAccept(response)
    return None


def autobahnSettings(protocol: Any) -> tuple[bool, int, bool, int]:
    """
    @return: an Autobahn connection's permessage-deflate settings:
        C{(server no context takeover, server window, client no context
        takeover, client window)}.
    """
    [pmce] = protocol.websocket_extensions_in_use
    return (pmce.server_no_context_takeover, pmce.server_max_window_bits,
            pmce.client_no_context_takeover, pmce.client_max_window_bits)
