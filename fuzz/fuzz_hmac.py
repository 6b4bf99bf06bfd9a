"""
Fuzz the HMAC header parsers of L{txws.hmacauth.schemes}:
L{parseV2Authorization}, L{parseSeedSignatures}, L{parseTimestamp},
L{verifySeed} and L{verifyV2} with random header values, method, host,
target and body.  The only exception is L{VerificationError}; what verifies
was really signed with a key of the ring.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped, unused-ignore]

from fuzz._runner import instrumented, run

with instrumented(__name__ == "__main__"):
    from txws.hmacauth import schemes

KEYS = {"k1": b"test-secret", "old": b"old-secret"}
NOW = 1_700_000_000


def _parsers(value: bytes) -> None:
    for parse in (schemes.parseV2Authorization, schemes.parseSeedSignatures,
                  schemes.parseTimestamp):
        try:
            parse(value)
        except schemes.VerificationError as e:
            assert isinstance(e.code, schemes.FailureCode)
    schemes.isV2Authorization(value)


def testOneInput(data: bytes) -> None:
    """
    One input, split by atheris' data provider into header values, request
    parts and a clock offset.

    @param data: From the fuzzer.
    """
    provider = atheris.FuzzedDataProvider(data)
    headerValue = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 400))
    _parsers(headerValue)
    method = provider.ConsumeBytes(8)
    host = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 40))
    target = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 80))
    now = NOW + provider.ConsumeIntInRange(-200, 200)
    seedValues = [provider.ConsumeBytes(provider.ConsumeIntInRange(0, 200))
                  for _ in range(provider.ConsumeIntInRange(0, 2))]
    stampValues = [provider.ConsumeBytes(provider.ConsumeIntInRange(0, 20))
                   for _ in range(provider.ConsumeIntInRange(0, 2))]
    body = provider.ConsumeBytes(provider.remaining_bytes())
    try:
        verified = schemes.verifyV2(KEYS, headerValue, method, host, target, body, now)
        credentials = schemes.parseV2Authorization(headerValue)
        canonical = schemes.v2CanonicalString(
            credentials.keyId, credentials.timestamp, credentials.nonce, method, host,
            target, body)
        expected = schemes.v2Signature(KEYS[verified.keyId], canonical)
        assert expected.encode() == credentials.signature
    except schemes.VerificationError:
        pass
    try:
        verified = schemes.verifySeed(KEYS, seedValues or None, stampValues or None, body, now)
        assert verified.keyId in KEYS and verified.replayTokens
    except schemes.VerificationError:
        pass


if __name__ == "__main__":
    run(testOneInput)
