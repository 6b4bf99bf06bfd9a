"""
Channel tokens: short-lived proofs, minted by a backend that holds a key of
the hub's key ring, that their bearer may subscribe to one private channel.

The format (C{docs/hub.md}, "Channel tokens")::

    txws1.KEYID.CHANNEL64.EXPIRY.SIGNATURE

C{SIGNATURE} is base64url without padding of HMAC-SHA256(secret,
C{"txws-channel-token-v1\\n" + KEYID + "\\n" + CHANNEL + "\\n" + EXPIRY}).

Design: one parser, L{_parse}, decides the shape of a token and is shared by
L{verifyToken} and L{tokenChannel}; it accepts exactly one spelling of each
token (canonical base64url, a decimal expiry without sign or leading zeros),
so a valid token cannot be altered into another valid token.  Verification
checks shape, key id, signature (constant-time), expiry and channel, in that
order, and reports every refusal as one L{TokenError} whatever it was given;
no message ever repeats the token, its signature or a secret.

Pure module: imports nothing from C{twisted.internet}.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from typing import Literal, NamedTuple

from txws.hmacauth.keys import KeyRing
from txws.hub.channels import validChannelName

__all__ = [
    "MAX_TOKEN_LENGTH",
    "TOKEN_PREFIX",
    "TokenError",
    "TokenErrorCode",
    "mintToken",
    "tokenChannel",
    "verifyToken",
]

#: The first part of every token (the format's version).
TOKEN_PREFIX = "txws1"

#: The longest token accepted, in characters.
MAX_TOKEN_LENGTH = 1024

#: The codes a L{TokenError} carries (the hub's error codes of C{docs/hub.md}).
TokenErrorCode = Literal["token_invalid", "token_expired", "token_wrong_channel"]

_CONTEXT = b"txws-channel-token-v1\n"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_EXPIRY = re.compile(r"0|[1-9][0-9]*")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{43}")


class TokenError(Exception):
    """
    A channel token was refused.

    @ivar code: C{"token_invalid"} (malformed, unknown key or forged),
        C{"token_expired"} or C{"token_wrong_channel"}.
    @ivar message: Why, for people; never contains the token, its
        signature or a secret.
    """

    def __init__(self, code: TokenErrorCode, message: str) -> None:
        """
        @param code: The error code.
        @param message: The explanation for people.
        """
        super().__init__(code, message)
        self.code: TokenErrorCode = code
        self.message = message

    def __str__(self) -> str:
        """
        @return: C{code: message}.
        """
        return f"{self.code}: {self.message}"


class _Parsed(NamedTuple):
    """
    A token of the right shape, not yet verified.
    """

    keyId: str
    channel: str
    expiryText: str
    signature: str


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes | None:
    """
    Decode canonical base64url without padding, or return C{None}.
    """
    if _BASE64URL.fullmatch(text) is None or len(text) % 4 == 1:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover (excluded by the checks above)
        return None
    # Unused low bits of the last character could make several spellings.
    return raw if _b64encode(raw) == text else None


def _parse(token: object) -> _Parsed | None:
    """
    Check a token's shape.

    @return: Its parts, or C{None} if it is not a well-formed token.
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        return None
    parts = token.split(".")
    if len(parts) != 5:
        return None
    prefix, keyId, channel64, expiryText, signature = parts
    if prefix != TOKEN_PREFIX or not keyId:
        return None
    if _EXPIRY.fullmatch(expiryText) is None or _SIGNATURE.fullmatch(signature) is None:
        return None
    raw = _b64decode(channel64)
    if raw is None:
        return None
    try:
        channel = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not validChannelName(channel):
        return None
    return _Parsed(keyId, channel, expiryText, signature)


def _sign(secret: bytes, keyId: str, channel: str, expiryText: str) -> str:
    message = b"\n".join(
        [keyId.encode("utf-8"), channel.encode("utf-8"), expiryText.encode("ascii")]
    )
    return _b64encode(hmac.new(secret, _CONTEXT + message, hashlib.sha256).digest())


def mintToken(
    keyRing: KeyRing, channel: str, ttl: float, now: float, keyId: str | None = None
) -> str:
    """
    Mint a channel token.

    @param keyRing: The keys; L{KeyRing.choose} picks the one to sign with.
    @param channel: The channel the token opens.
    @param ttl: Seconds the token lives, at least; its expiry is
        C{now + ttl} rounded up to a whole second.
    @param now: The current Unix time.
    @param keyId: The key to sign with; may be omitted if the ring has one.
    @return: The token, ASCII.
    @raise ValueError: If C{channel} is not a valid channel name, C{ttl} is
        not a positive finite number, C{now + ttl} is not a finite
        non-negative time, the key cannot be chosen, or its id contains a
        C{.} (which would split the token).
    """
    if not validChannelName(channel):
        raise ValueError("not a valid channel name")
    if not (isinstance(ttl, (int, float)) and math.isfinite(ttl) and ttl > 0):
        raise ValueError("the time to live must be a positive number of seconds")
    end = now + ttl
    if not math.isfinite(end) or end < 0:
        raise ValueError("the expiry must be a finite time after 1970")
    chosenId, secret = keyRing.choose(keyId)
    if "." in chosenId:
        raise ValueError(f"key {chosenId!r} cannot sign channel tokens: its id contains a '.'")
    expiryText = str(math.ceil(end))
    signature = _sign(secret, chosenId, channel, expiryText)
    channel64 = _b64encode(channel.encode("ascii"))
    token = ".".join([TOKEN_PREFIX, chosenId, channel64, expiryText, signature])
    if len(token) > MAX_TOKEN_LENGTH:  # pragma: no cover (ids and names are short)
        raise ValueError("the token would be too long")
    return token


def verifyToken(keyRing: Mapping[str, bytes], token: object, channel: str, now: float) -> str:
    """
    Verify a channel token for a channel.

    Checks, in order: the shape (five dot-separated parts starting with
    C{txws1}, a base64url channel that is a valid channel name, a decimal
    expiry, a base64url signature, at most L{MAX_TOKEN_LENGTH} characters),
    the key id, the signature, the expiry (refused from the expiry second
    on), then the channel.

    @param keyRing: Key id to secret (a L{KeyRing}).
    @param token: The presented token (any value; only a string can pass).
    @param channel: The channel the bearer wants.
    @param now: The current Unix time.
    @return: The id of the key that signed the token.
    @raise TokenError: C{token_invalid} if the token is malformed, names an
        unknown key or is forged; C{token_expired} if C{now} is at or past
        its expiry; C{token_wrong_channel} if it is valid for another
        channel.  Nothing else, whatever C{token} is.
    """
    parsed = _parse(token)
    if parsed is None:
        raise TokenError("token_invalid", "the channel token is malformed")
    secret = keyRing.get(parsed.keyId)
    if not isinstance(secret, bytes):
        raise TokenError("token_invalid", "the channel token is signed with an unknown key")
    expected = _sign(secret, parsed.keyId, parsed.channel, parsed.expiryText)
    if not hmac.compare_digest(expected.encode("ascii"), parsed.signature.encode("ascii")):
        raise TokenError("token_invalid", "the channel token's signature is not valid")
    if now >= int(parsed.expiryText):
        raise TokenError("token_expired", "the channel token has expired")
    if parsed.channel != channel:
        raise TokenError("token_wrong_channel", "the channel token is for another channel")
    return parsed.keyId


def tokenChannel(token: object) -> str | None:
    """
    The channel a token names, without verifying it (the hub matches the
    tokens of a URL to its channels with this, then verifies each).

    @param token: A presented token (any value).
    @return: The channel name, or C{None} if C{token} is not well formed.
    """
    parsed = _parse(token)
    return None if parsed is None else parsed.channel
