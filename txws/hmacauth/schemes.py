"""
The two HMAC wire formats, as pure functions over bytes.

Design: everything here takes the exact bytes a request carried (header
values, request-target, body) plus the current time, and either returns a
L{Verified} value or raises L{VerificationError} with a machine-readable
L{FailureCode}.  Nothing here does I/O, reads a clock or remembers anything:
the guard supplies the time and does replay bookkeeping with the tokens we
return.  Parsing is strict (digits-only timestamps, lowercase hex of the
right length, restricted alphabets for key ids and nonces) so that malformed
input of any kind, including non-ASCII bytes, ends as a L{VerificationError}
and never as an unexpected exception.

Two schemes:
  - C{seed}: the Django/DRF article's format, kept bit-for-bit compatible:
    C{X-HMAC-Signature: hex(HMAC-SHA256(secret, timestamp + "." + body))}
    and C{X-HMAC-Timestamp}.  We additionally accept an optional C{v1=}
    label and several space-separated signatures (key rotation).
  - C{v2}: ours, in C{Authorization: TXWS-HMAC-SHA256 ...}; the signature
    binds key id, timestamp, nonce, method, host, request-target and a
    SHA-256 digest of the body.  See C{docs/hmac.md}.

Only C{hashlib}, C{hmac} and C{re} are used; this module imports nothing from
C{twisted.internet}.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "DEFAULT_SKEW",
    "SEED_SIGNATURE_HEADER",
    "SEED_TIMESTAMP_HEADER",
    "V2_AUTH_SCHEME",
    "FailureCode",
    "Scheme",
    "V2Credentials",
    "VerificationError",
    "Verified",
    "isV2Authorization",
    "parseSeedSignatures",
    "parseTimestamp",
    "parseV2Authorization",
    "seedSignature",
    "signSeed",
    "signV2",
    "v2CanonicalString",
    "v2Signature",
    "verifySeed",
    "verifyV2",
]

DEFAULT_SKEW = 60
"""Seconds a timestamp may differ from the receiver's clock, either way."""

SEED_SIGNATURE_HEADER = b"X-HMAC-Signature"
"""The seed scheme's signature header."""

SEED_TIMESTAMP_HEADER = b"X-HMAC-Timestamp"
"""The seed scheme's timestamp header."""

V2_AUTH_SCHEME = b"TXWS-HMAC-SHA256"
"""The C{Authorization} scheme token of the v2 format (first line of its canonical string)."""

_TIMESTAMP = re.compile(rb"[0-9]{1,15}")
_HEX_SIGNATURE = re.compile(rb"[0-9a-f]{64}")
_KEY_ID = re.compile(rb"[A-Za-z0-9._~-]{1,64}")
_NONCE = re.compile(rb"[A-Za-z0-9_-]{16,64}")
_PARAM = re.compile(rb"([A-Za-z]+)=([^\s,=]+)")
_V2_PARAMS = {b"keyid": "keyId", b"timestamp": "timestamp", b"nonce": "nonce",
              b"signature": "signature"}
_MAX_SEED_SIGNATURES = 8
_SEED_LABEL = b"v1="


class Scheme(Enum):
    """
    The signing schemes a guard can accept and a client can produce.
    """

    SEED = "seed"
    """The Django/DRF article's format (timestamp and body only)."""

    V2 = "v2"
    """Our format, bound to method, host, target, nonce and key id."""


class FailureCode(Enum):
    """
    Machine-readable reasons for refusing a request (the C{code} of a 401).
    """

    MISSING_HEADERS = "missing_headers"
    INVALID_TIMESTAMP = "invalid_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    BAD_SIGNATURE = "bad_signature"
    REPLAYED = "replayed"
    UNKNOWN_KEY = "unknown_key"


class VerificationError(Exception):
    """
    A request's signature could not be accepted.

    @ivar code: Why, for machines.
    @ivar message: Why, for people; never contains secrets or header values.
    """

    def __init__(self, code: FailureCode, message: str) -> None:
        """
        @param code: The failure code.
        @param message: A short human explanation.
        """
        super().__init__(code, message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Verified:
    """
    A request whose signature checked out (replay not yet checked).

    @ivar scheme: Which scheme verified it.
    @ivar keyId: The id of the key that signed it.
    @ivar timestamp: The signed timestamp, in Unix seconds.
    @ivar nonce: The v2 nonce, or C{None} for the seed scheme.
    @ivar replayTokens: The values to remember so that the same signed
        request is refused a second time.
    """

    scheme: Scheme
    keyId: str
    timestamp: int
    nonce: str | None
    replayTokens: tuple[str, ...]


@dataclass(frozen=True)
class V2Credentials:
    """
    The parameters of a parsed C{Authorization: TXWS-HMAC-SHA256} header.

    @ivar keyId: The key id (ASCII, C{[A-Za-z0-9._~-]{1,64}}).
    @ivar timestamp: The timestamp exactly as sent (ASCII digits).
    @ivar nonce: The nonce (ASCII, C{[A-Za-z0-9_-]{16,64}}).
    @ivar signature: The lowercase hex signature as sent.
    """

    keyId: bytes
    timestamp: bytes
    nonce: bytes
    signature: bytes


def _hmacHex(secret: bytes, message: bytes) -> bytes:
    return hmac.new(secret, message, hashlib.sha256).hexdigest().encode("ascii")


def _asBytes(value: int | str | bytes) -> bytes:
    if isinstance(value, int):
        return str(value).encode("ascii")
    if isinstance(value, str):
        return value.encode("ascii")
    return value


def parseTimestamp(value: bytes) -> int:
    """
    Parse a timestamp header value: ASCII digits only (no sign, no space).

    @param value: The raw header value.
    @return: Unix seconds.
    @raise VerificationError: C{invalid_timestamp} if C{value} is anything else.
    """
    if _TIMESTAMP.fullmatch(value) is None:
        raise VerificationError(FailureCode.INVALID_TIMESTAMP, "Invalid timestamp")
    return int(value)


def _checkWindow(timestamp: int, now: float, skew: float) -> None:
    if now - timestamp > skew:
        raise VerificationError(FailureCode.STALE_TIMESTAMP, "Request timestamp too old")
    if timestamp - now > skew:
        raise VerificationError(
            FailureCode.STALE_TIMESTAMP, "Request timestamp is in the future"
        )


def seedSignature(secret: bytes, timestamp: int | str | bytes, body: bytes) -> str:
    """
    Compute the seed scheme's signature.

    @param secret: The shared secret (the UTF-8 bytes of the secret string).
    @param timestamp: Unix seconds, or the decimal digits exactly as sent.
    @param body: The exact request body.
    @return: Lowercase hex of C{HMAC-SHA256(secret, timestamp + b"." + body)}.
    """
    return _hmacHex(secret, _asBytes(timestamp) + b"." + body).decode("ascii")


def signSeed(secret: bytes, timestamp: int, body: bytes) -> dict[bytes, bytes]:
    """
    Build the seed scheme's headers for one request.

    @param secret: The shared secret.
    @param timestamp: Unix seconds.
    @param body: The exact request body.
    @return: C{X-HMAC-Signature} and C{X-HMAC-Timestamp} header values.
    """
    stamp = _asBytes(timestamp)
    return {
        SEED_SIGNATURE_HEADER: seedSignature(secret, stamp, body).encode("ascii"),
        SEED_TIMESTAMP_HEADER: stamp,
    }


def parseSeedSignatures(value: bytes) -> list[bytes]:
    """
    Parse an C{X-HMAC-Signature} value: one to eight signatures separated
    by spaces, each 64 lowercase hex digits with an optional C{v1=} label.

    @param value: The raw header value.
    @return: The hex signatures, labels removed, in the order sent.
    @raise VerificationError: C{bad_signature} if any part is malformed.
    """
    tokens = [token for token in value.split(b" ") if token]
    if not 0 < len(tokens) <= _MAX_SEED_SIGNATURES:
        raise VerificationError(FailureCode.BAD_SIGNATURE, "Malformed HMAC signature")
    signatures = []
    for token in tokens:
        if token.startswith(_SEED_LABEL):
            token = token[len(_SEED_LABEL):]
        if _HEX_SIGNATURE.fullmatch(token) is None:
            raise VerificationError(FailureCode.BAD_SIGNATURE, "Malformed HMAC signature")
        signatures.append(token)
    return signatures


def _single(values: Sequence[bytes] | None, code: FailureCode, what: str) -> bytes | None:
    """
    Return the only value of a header, C{None} if absent or empty; refuse
    repeated headers, whose combination is ambiguous.
    """
    if not values:
        return None
    if len(values) != 1:
        raise VerificationError(code, f"Repeated {what} header")
    return values[0] or None


def verifySeed(
    keys: Mapping[str, bytes],
    signatureValues: Sequence[bytes] | None,
    timestampValues: Sequence[bytes] | None,
    body: bytes,
    now: float,
    skew: float = DEFAULT_SKEW,
) -> Verified:
    """
    Verify a request signed with the seed scheme, trying every key.

    Checks, in the article's order: both headers present, timestamp well
    formed, timestamp within C{skew} of C{now} either way, a signature that
    matches under a constant-time comparison.

    @param keys: Key id to secret, every active key.
    @param signatureValues: All C{X-HMAC-Signature} values received.
    @param timestampValues: All C{X-HMAC-Timestamp} values received.
    @param body: The exact body received.
    @param now: The receiver's time, Unix seconds.
    @param skew: The accepted clock difference, seconds.
    @return: The verified request; C{replayTokens} holds every signature in
        the header that verified, so no subset of them can be replayed.
    @raise VerificationError: If the request must be refused.
    """
    signatureValue = _single(signatureValues, FailureCode.BAD_SIGNATURE, "signature")
    timestampValue = _single(timestampValues, FailureCode.INVALID_TIMESTAMP, "timestamp")
    if signatureValue is None or timestampValue is None:
        raise VerificationError(FailureCode.MISSING_HEADERS, "Missing HMAC headers")
    timestamp = parseTimestamp(timestampValue)
    _checkWindow(timestamp, now, skew)
    candidates = parseSeedSignatures(signatureValue)
    message = timestampValue + b"." + body
    matchedKey: str | None = None
    matched: list[str] = []
    for keyId, secret in keys.items():
        expected = _hmacHex(secret, message)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                if matchedKey is None:
                    matchedKey = keyId
                token = "seed " + candidate.decode("ascii")
                if token not in matched:
                    matched.append(token)
    if matchedKey is None:
        raise VerificationError(FailureCode.BAD_SIGNATURE, "Invalid HMAC signature")
    return Verified(Scheme.SEED, matchedKey, timestamp, None, tuple(matched))


def v2CanonicalString(
    keyId: bytes,
    timestamp: bytes,
    nonce: bytes,
    method: bytes,
    host: bytes,
    target: bytes,
    body: bytes,
) -> bytes:
    """
    Build the v2 string to sign: eight lines joined by C{\\n}, no final newline.

    @param keyId: The key id.
    @param timestamp: Unix seconds as ASCII digits, exactly as sent.
    @param nonce: The single-use nonce.
    @param method: The request method exactly as sent (e.g. C{POST}).
    @param host: The C{Host} header value; it is lowercased here.
    @param target: The request-target exactly as sent: path and query.
    @param body: The exact body (empty for none).
    @return: C{TXWS-HMAC-SHA256, keyId, timestamp, nonce, method, host,
        target, hex(sha256(body))}, one per line.
    """
    return b"\n".join([
        V2_AUTH_SCHEME, keyId, timestamp, nonce, method, host.lower(), target,
        hashlib.sha256(body).hexdigest().encode("ascii"),
    ])


def v2Signature(secret: bytes, canonical: bytes) -> str:
    """
    Sign a v2 canonical string.

    @param secret: The key's secret.
    @param canonical: The output of L{v2CanonicalString}.
    @return: Lowercase hex of C{HMAC-SHA256(secret, canonical)}.
    """
    return _hmacHex(secret, canonical).decode("ascii")


def signV2(
    secret: bytes,
    keyId: str,
    method: bytes,
    host: bytes,
    target: bytes,
    body: bytes,
    timestamp: int,
    nonce: str,
) -> bytes:
    """
    Build the C{Authorization} header value for a v2-signed request.

    @param secret: The key's secret.
    @param keyId: The key id the receiver knows the secret by.
    @param method: The request method.
    @param host: The C{Host} header value that will be sent.
    @param target: The request-target that will be sent (path and query).
    @param body: The exact body that will be sent.
    @param timestamp: Unix seconds.
    @param nonce: A fresh random value, C{[A-Za-z0-9_-]{16,64}}.
    @return: C{TXWS-HMAC-SHA256 keyId=...,timestamp=...,nonce=...,signature=...}.
    @raise ValueError: If C{keyId} or C{nonce} is outside its alphabet.
    """
    rawKeyId = keyId.encode("ascii", "replace")
    rawNonce = nonce.encode("ascii", "replace")
    if _KEY_ID.fullmatch(rawKeyId) is None:
        raise ValueError(f"invalid key id {keyId!r}")
    if _NONCE.fullmatch(rawNonce) is None:
        raise ValueError("invalid nonce")
    stamp = _asBytes(timestamp)
    signature = v2Signature(
        secret, v2CanonicalString(rawKeyId, stamp, rawNonce, method, host, target, body)
    )
    return b"%s keyId=%s,timestamp=%s,nonce=%s,signature=%s" % (
        V2_AUTH_SCHEME, rawKeyId, stamp, rawNonce, signature.encode("ascii"))


def isV2Authorization(value: bytes) -> bool:
    """
    Tell whether an C{Authorization} value uses the v2 scheme.

    @param value: A raw C{Authorization} header value.
    @return: C{True} if its scheme token is C{TXWS-HMAC-SHA256} (any case).
    """
    scheme, _, _ = value.partition(b" ")
    return scheme.upper() == V2_AUTH_SCHEME


def parseV2Authorization(value: bytes) -> V2Credentials:
    """
    Parse C{TXWS-HMAC-SHA256 keyId=K,timestamp=T,nonce=N,signature=S}.

    Parameters are comma-separated (optional spaces around commas), each
    exactly once, in any order, names case-insensitive, values unquoted.

    @param value: The raw C{Authorization} header value.
    @return: The parsed credentials.
    @raise VerificationError: C{missing_headers} if a parameter is absent,
        C{invalid_timestamp} for a malformed timestamp, C{bad_signature} for
        any other malformation.
    """
    scheme, _, rest = value.partition(b" ")
    if scheme.upper() != V2_AUTH_SCHEME:
        raise VerificationError(FailureCode.MISSING_HEADERS, "Missing HMAC headers")
    found: dict[str, bytes] = {}
    for part in rest.split(b","):
        match = _PARAM.fullmatch(part.strip(b" \t"))
        if match is None:
            raise VerificationError(FailureCode.BAD_SIGNATURE, "Malformed Authorization header")
        name = _V2_PARAMS.get(match.group(1).lower())
        if name is None or name in found:
            raise VerificationError(FailureCode.BAD_SIGNATURE, "Malformed Authorization header")
        found[name] = match.group(2)
    missing = [n for n in _V2_PARAMS.values() if n not in found]
    if missing:
        raise VerificationError(
            FailureCode.MISSING_HEADERS, "Missing Authorization parameter: " + ", ".join(missing)
        )
    parseTimestamp(found["timestamp"])
    if _KEY_ID.fullmatch(found["keyId"]) is None:
        raise VerificationError(FailureCode.BAD_SIGNATURE, "Malformed key id")
    if _NONCE.fullmatch(found["nonce"]) is None:
        raise VerificationError(FailureCode.BAD_SIGNATURE, "Malformed nonce")
    if _HEX_SIGNATURE.fullmatch(found["signature"]) is None:
        raise VerificationError(FailureCode.BAD_SIGNATURE, "Malformed HMAC signature")
    return V2Credentials(found["keyId"], found["timestamp"], found["nonce"], found["signature"])


def verifyV2(
    keys: Mapping[str, bytes],
    authorization: bytes,
    method: bytes,
    host: bytes,
    target: bytes,
    body: bytes,
    now: float,
    skew: float = DEFAULT_SKEW,
) -> Verified:
    """
    Verify a request signed with the v2 scheme.

    @param keys: Key id to secret, every active key.
    @param authorization: The C{Authorization} header value.
    @param method: The request method as received.
    @param host: The C{Host} header value as received.
    @param target: The request-target as received (path and query).
    @param body: The exact body received.
    @param now: The receiver's time, Unix seconds.
    @param skew: The accepted clock difference, seconds.
    @return: The verified request; its replay token is key id plus nonce.
    @raise VerificationError: If the request must be refused.
    """
    credentials = parseV2Authorization(authorization)
    timestamp = int(credentials.timestamp)
    _checkWindow(timestamp, now, skew)
    keyId = credentials.keyId.decode("ascii")
    secret = keys.get(keyId)
    if secret is None:
        raise VerificationError(FailureCode.UNKNOWN_KEY, "Unknown key id")
    canonical = v2CanonicalString(
        credentials.keyId, credentials.timestamp, credentials.nonce, method, host, target, body
    )
    if not hmac.compare_digest(_hmacHex(secret, canonical), credentials.signature):
        raise VerificationError(FailureCode.BAD_SIGNATURE, "Invalid HMAC signature")
    nonce = credentials.nonce.decode("ascii")
    return Verified(Scheme.V2, keyId, timestamp, nonce, (f"v2 {keyId} {nonce}",))
