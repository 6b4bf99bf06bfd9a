"""
The echo application: every message comes back as it came, text as text,
binary as binary.  Used by the quick start, the benchmark and the tests.
"""

from __future__ import annotations

from txws.server import WebSocketServerFactory, WebSocketServerProtocol

__all__ = ["EchoServerProtocol", "echoFactory"]


class EchoServerProtocol(WebSocketServerProtocol):
    """
    Sends every message back to its sender.
    """

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Echo the message.

        @param payload: the message.
        @param isBinary: whether it is binary.
        """
        self.sendMessage(payload, isBinary)


def echoFactory(**factoryArguments: object) -> WebSocketServerFactory:
    """
    @param factoryArguments: L{WebSocketServerFactory} arguments.
    @return: a factory serving L{EchoServerProtocol}.
    """
    factory = WebSocketServerFactory(**factoryArguments)  # type: ignore[arg-type]
    factory.protocol = EchoServerProtocol
    return factory
