"""
Fuzz the client's parser of the server's answer:
L{txws.handshake.parseResponseHead} then L{validateUpgradeResponse}.  The
only exception is L{ResponseError}.
"""

from __future__ import annotations

from fuzz._runner import instrumented, run

with instrumented(__name__ == "__main__"):
    from txws.handshake import ResponseError, parseResponseHead, validateUpgradeResponse

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
"""The RFC 6455 sample key; its accept value is C{s3pPLMBiTxaQ9kYGzzhZRbK+xOo=}."""

_OFFERS: tuple[tuple[str, ...], ...] = ((), ("chat",), ("chat", "superchat"))


def testOneInput(data: bytes) -> None:
    """
    One input: an offer byte, then the bytes received.

    @param data: From the fuzzer.
    """
    if not data:
        return
    protocols = _OFFERS[data[0] % len(_OFFERS)]
    received = data[1:]
    try:
        parsed = parseResponseHead(received, 4096)
        if parsed is None:
            return
        status, rawHeaders, consumed = parsed
        assert 0 < consumed <= len(received)
        chosen, headers = validateUpgradeResponse(status, rawHeaders, KEY, protocols)
        assert status == 101
        assert chosen is None or chosen in protocols
        assert isinstance(headers, dict)
    except ResponseError as e:
        assert isinstance(e.status, int) and isinstance(e.reason, str)


if __name__ == "__main__":
    run(testOneInput)
