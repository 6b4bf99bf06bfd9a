"""
Fuzz the server's handshake parser: L{txws.handshake.parseRequestHead}
then L{validateUpgradeRequest}.  Whatever the bytes, the only exception is
L{HandshakeError}, with a 4xx status; a parsed head never claims more bytes
than it was given or than the size limit.
"""

from __future__ import annotations

from fuzz._runner import instrumented, run

with instrumented(__name__ == "__main__"):
    from txws.handshake import HandshakeError, parseRequestHead, validateUpgradeRequest

_SIZES = (16384, 64, 512, 4096)


def testOneInput(data: bytes) -> None:
    """
    One input: a size byte, then the bytes received.

    @param data: From the fuzzer.
    """
    if not data:
        return
    maxSize = _SIZES[data[0] % len(_SIZES)]
    received = data[1:]
    try:
        parsed = parseRequestHead(received, maxSize)
        if parsed is None:
            assert len(received) < maxSize + 4, len(received)
            return
        head, consumed = parsed
        assert 0 < consumed <= min(len(received), maxSize), (consumed, maxSize)
        request = validateUpgradeRequest(head, "127.0.0.1:1")
        assert request.path.startswith("/") or request.path == "", request.path
    except HandshakeError as e:
        assert 400 <= e.status < 500, e.status
        assert isinstance(e.reason, str)


if __name__ == "__main__":
    run(testOneInput)
