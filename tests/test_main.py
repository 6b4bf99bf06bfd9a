"""
Tests for C{python -m txws}, the quick start's echo server: started as a
real process, reached over loopback by the txws client.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.python.failure import Failure

from tests.typedtrial import TestCase
from txws.client import WebSocketClientProtocol, connect


class _Server(ProcessProtocol):
    """
    Collects the server's output and fires C{announced} with its port.
    """

    def __init__(self) -> None:
        self.output = b""
        self.announced: Deferred[int] = Deferred()
        self.ended: Deferred[None] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data
        match = re.search(rb"ws://127\.0\.0\.1:(\d+)/", self.output)
        if match and not self.announced.called:
            self.announced.callback(int(match.group(1)))

    def processEnded(self, reason: Failure) -> None:
        if not self.announced.called:
            self.announced.errback(reason)
        self.ended.callback(None)


class _Collector(WebSocketClientProtocol):
    def __init__(self) -> None:
        self.received: Deferred[tuple[bytes, bool]] = Deferred()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.received.callback((payload, isBinary))


class EchoServerProcessTests(TestCase):
    """
    The echo server of the README's quick start (RFC 6455 sections 4 and 5).
    """

    async def test_echoes(self) -> None:
        """
        C{python -m txws --port 0} announces its address and echoes a text
        message over a real connection, then stops on SIGTERM.
        """
        server = _Server()
        process: Any = reactor.spawnProcess(
            server,
            sys.executable,
            [sys.executable, "-m", "txws", "--port", "0"],
            env=None,
        )

        async def stop() -> None:
            if process.pid is not None:
                process.signalProcess("TERM")
            await server.ended

        self.addCleanup(stop)
        port = await server.announced.addTimeout(20, reactor)
        client = await connect(f"ws://127.0.0.1:{port}/", protocolClass=_Collector)
        assert isinstance(client, _Collector)
        client.sendMessage("héllo".encode())
        payload = await client.received.addTimeout(10, reactor)
        self.assertEqual(payload, ("héllo".encode(), False))
        client.sendClose(1000)
        client.transport.loseConnection()  # type: ignore[union-attr]
