"""
Fuzz the HTTP side of the HMAC guard: arbitrary bytes, in pieces the
fuzzer chooses and with the clock moving between them, into a connection of
an L{txws.hmacauth.HMACSite} serving an L{HMACGuard}.  Nothing may raise or
be logged as a failure, and every answer starts with an HTTP/1.x status
line; a refused head or a timed-out request closes the connection.
"""

from __future__ import annotations

from typing import Any, cast

import atheris  # type: ignore[import-untyped, unused-ignore]

from fuzz._runner import instrumented, run

with instrumented(__name__ == "__main__"):
    from twisted.internet.address import IPv4Address
    from twisted.internet.error import ConnectionDone
    from twisted.internet.testing import MemoryReactorClock, StringTransport
    from twisted.logger import globalLogPublisher
    from twisted.python.failure import Failure
    from twisted.web.resource import Resource

    from txws.hmacauth import HMACGuard, HMACSite

_PEER = IPv4Address("TCP", "127.0.0.1", 1)
_failures: list[dict[str, Any]] = []


def _observe(event: dict[str, Any]) -> None:
    if event.get("log_failure") is not None or event.get("isError"):
        _failures.append(event)




class _Transport(StringTransport):
    """
    Like a TCP transport, unregistering a producer twice is harmless (the
    channel does so when it closes twice: a 400 then its idle timeout).
    """

    def unregisterProducer(self) -> None:
        self.producer = None
        self.streaming = None


class _Leaf(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return b"ok"


def testOneInput(data: bytes) -> None:
    """
    One input: pieces of bytes to send, each followed by a clock step.

    @param data: From the fuzzer.
    """
    provider = atheris.FuzzedDataProvider(data)
    clock = MemoryReactorClock()
    clock.advance(1_700_000_000)
    leaf = _Leaf()  # type: ignore[no-untyped-call, unused-ignore]
    guard = HMACGuard(leaf, {"k1": b"test-secret"}, reactor=clock)
    site = HMACSite(guard, reactor=clock, maxBodySize=4096, maxHeadSize=1024, maxHeaders=20,
                    requestTimeout=5)
    channel: Any = site.buildProtocol(_PEER)  # type: ignore[no-untyped-call]
    transport: Any = _Transport(  # type: ignore[no-untyped-call, unused-ignore]
        peerAddress=_PEER)
    del _failures[:]
    # Observed only while the input runs, so that importing this module (the
    # seed replay of tests/test_fuzz.py) leaves the log alone.
    globalLogPublisher.addObserver(cast(Any, _observe))
    try:
        channel.makeConnection(transport)
        while provider.remaining_bytes():
            piece = provider.ConsumeBytes(provider.ConsumeIntInRange(1, 512))
            channel.dataReceived(piece)
            clock.advance(provider.ConsumeIntInRange(0, 7))
        clock.advance(100)
        output: bytes = transport.value()
        assert not output or output.startswith((b"HTTP/1.1 ", b"HTTP/1.0 ")), output[:100]
        channel.connectionLost(Failure(ConnectionDone()))
    finally:
        globalLogPublisher.removeObserver(cast(Any, _observe))
    assert not _failures, _failures[0]


if __name__ == "__main__":
    run(testOneInput)
