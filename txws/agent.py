"""
Autobahn's Deferred-based client agent: C{create_client_agent(reactor)}
returns an agent whose C{open(url, options, protocol_class=None)} fires with
the connected protocol once its opening handshake has completed.

Design: the agent is a thin layer over L{txws.client.connect}; it checks its
arguments as Autobahn's does (synchronously, with C{ValueError}) and maps
Autobahn's option names onto L{txws.client.WebSocketClientFactory}'s, which
are the same.  Unlike Autobahn's agent, whose Deferred never fires when the
server refuses the handshake, a refusal fails it with
L{txws.handshake.ResponseError}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from twisted.internet.defer import Deferred

from txws.client import WebSocketClientProtocol, connect

__all__ = ["WebSocketClientAgent", "create_client_agent"]

#: The options C{open} takes, as Autobahn's agent: factory arguments.
OPTIONS = frozenset({"origin", "protocols", "useragent", "headers", "proxy"})


class WebSocketClientAgent:
    """
    Opens WebSocket connections (Autobahn's C{IWebSocketClientAgent}).
    """

    def __init__(self, reactor: Any) -> None:
        """
        @param reactor: the reactor connections are made with.
        """
        self._reactor = reactor

    def open(
        self,
        transport_config: str,
        options: Mapping[str, Any],
        protocol_class: Optional[type[WebSocketClientProtocol]] = None,
    ) -> Deferred[WebSocketClientProtocol]:
        """
        Connect to a WebSocket server.

        @param transport_config: the C{ws://} or C{wss://} URL (C{wss://}
            verifies the certificate and the host name).
        @param options: client factory arguments: C{origin}, C{protocols},
            C{useragent}, C{headers}, C{proxy}.
        @param protocol_class: the protocol to build (default
            L{WebSocketClientProtocol}).
        @return: a Deferred firing with the protocol once open, or failing
            with C{ConnectionRefusedError}, a TLS error, C{TimeoutError} or
            L{txws.handshake.ResponseError}.
        @raise ValueError: for a URL that is not a C{ws://} or C{wss://}
            string, or an option not in the list above.
        """
        if not isinstance(transport_config, str):
            raise ValueError(
                f"'transport_config' must be a string, found {type(transport_config)}"
            )
        if not transport_config.startswith(("ws://", "wss://")):
            raise ValueError("'transport_config' must start with 'ws://' or 'wss://'")
        if not isinstance(options, Mapping):
            raise ValueError("'options' must be a dict")
        for name in options:
            if name not in OPTIONS:
                raise ValueError(f"'options' may not contain '{name}'")
        return connect(
            transport_config,
            protocolClass=protocol_class or WebSocketClientProtocol,
            reactor=self._reactor,
            **options,
        )


def create_client_agent(reactor: Any) -> WebSocketClientAgent:
    """
    @param reactor: the reactor connections are made with.
    @return: a L{WebSocketClientAgent} (Autobahn's function of this name).
    """
    return WebSocketClientAgent(reactor)
