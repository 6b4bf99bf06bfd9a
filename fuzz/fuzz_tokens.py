"""
Fuzz the hub's channel token parser, L{txws.hub.tokens.verifyToken}: the
only exception is L{TokenError}, for any string (or decoded bytes); a token
that verifies names a key of the ring and the channel asked for.
"""

from __future__ import annotations

from fuzz._runner import instrumented, run

with instrumented(__name__ == "__main__"):
    from txws.hmacauth.keys import KeyRing
    from txws.hub.tokens import TokenError, mintToken, tokenChannel, verifyToken

KEYS = KeyRing({"k1": "test-secret", "k2": "other-secret"})
NOW = 1_700_000_000.0
VALID = mintToken(KEYS, "news", 3600, NOW, keyId="k1")


def testOneInput(data: bytes) -> None:
    """
    One input: a mode byte, then the token text (UTF-8 with replacement, or
    Latin-1), or a splice into a valid token.

    @param data: From the fuzzer.
    """
    if not data:
        return
    mode, rest = data[0] % 4, data[1:]
    token: object
    if mode == 0:
        token = rest.decode("utf-8", "replace")
    elif mode == 1:
        token = rest.decode("latin-1")
    elif mode == 2:
        cut = rest[0] % len(VALID) if rest else 0
        token = VALID[:cut] + rest[1:].decode("latin-1") + VALID[cut + len(rest[1:]):]
    else:
        token = rest
    for channel in ("news", "private-news"):
        try:
            keyId = verifyToken(KEYS, token, channel, NOW)
            assert keyId in KEYS and tokenChannel(token) == channel
        except TokenError as e:
            assert e.code in ("token_invalid", "token_expired", "token_wrong_channel"), e.code
    tokenChannel(token)


if __name__ == "__main__":
    run(testOneInput)
