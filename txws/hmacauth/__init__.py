"""
HMAC-signed server-to-server HTTP for Twisted.

Design: pure wire formats (L{schemes}), keys (L{keys}) and replay stores
(L{replay}) underneath; a guard resource and body-capping site (L{guard})
for receivers; a signing agent and JSON helper (L{client}) for senders; a
command-line client (C{python -m txws.hmacauth}).  Two wire formats: the
seed's Django/DRF scheme, accepted unchanged, and our v2 scheme, which binds
method, host, path, nonce and key id.  See C{docs/hmac.md}.

Receiving::

    keys = loadKeyFile("/etc/txws/hmac-keys.json")
    site = HMACSite(HMACGuard(apiRoot, keys))

Sending::

    agent = HMACAgent(Agent(reactor), keys, "backend-1")
    d = postJSON(agent, "https://inference.internal/v1/infer", {"text": "hello"})
"""

from __future__ import annotations

from txws.hmacauth.client import (
    HMACAgent,
    HTTPResult,
    UnexpectedStatus,
    canonicalJSON,
    newNonce,
    postBody,
    postJSON,
)
from txws.hmacauth.guard import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_HEAD_SIZE,
    DEFAULT_MAX_HEADERS,
    DEFAULT_REQUEST_TIMEOUT,
    SERVER_TIME_HEADER,
    CappedRequest,
    HMACChannel,
    HMACGuard,
    HMACIdentity,
    HMACSite,
    getIdentity,
)
from txws.hmacauth.keys import KeyFileError, KeyRing, loadKeyFile
from txws.hmacauth.replay import (
    KeyedReplayStore,
    MemoryReplayStore,
    ReplayQuotaExceeded,
    ReplayStore,
    ReplayStoreFull,
)
from txws.hmacauth.schemes import (
    DEFAULT_SKEW,
    FailureCode,
    Scheme,
    VerificationError,
    Verified,
    seedSignature,
    signSeed,
    signV2,
    v2CanonicalString,
    verifySeed,
    verifyV2,
)

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEAD_SIZE",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_SKEW",
    "SERVER_TIME_HEADER",
    "CappedRequest",
    "FailureCode",
    "HMACAgent",
    "HMACChannel",
    "HMACGuard",
    "HMACIdentity",
    "HMACSite",
    "HTTPResult",
    "KeyFileError",
    "KeyRing",
    "KeyedReplayStore",
    "MemoryReplayStore",
    "ReplayQuotaExceeded",
    "ReplayStore",
    "ReplayStoreFull",
    "Scheme",
    "UnexpectedStatus",
    "VerificationError",
    "Verified",
    "canonicalJSON",
    "getIdentity",
    "loadKeyFile",
    "newNonce",
    "postBody",
    "postJSON",
    "seedSignature",
    "signSeed",
    "signV2",
    "v2CanonicalString",
    "verifySeed",
    "verifyV2",
]
