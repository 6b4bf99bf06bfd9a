"""
Resources and helpers shared by the HMAC tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from twisted.web.resource import IResource
from zope.interface import implementer  # type: ignore[import-untyped, unused-ignore]

from txws.hmacauth import HMACIdentity, getIdentity

SECRET = "test-secret"
"""The secret of the seeds.md vectors."""

VECTOR_TIMESTAMP = 1700000000
"""The timestamp of the seeds.md vectors."""

VECTOR_BODY = b'{"text":"hello","user_id":42}'
"""The body of the first seeds.md vector."""

VECTOR_SIGNATURE = "881a412842f374edda6ecaf5e5db202dbd644ec268b599f6c3fc24d8cbd68a27"
"""The seed signature of L{VECTOR_BODY} at L{VECTOR_TIMESTAMP} with L{SECRET}."""

EMPTY_BODY_SIGNATURE = "02135fb92b9e5ac01b6ffb10fb1ce695acf10403dc760ecd132a9fd9d96d71d1"
"""The seed signature of an empty body at L{VECTOR_TIMESTAMP} with L{SECRET}."""


@dataclass(frozen=True)
class Seen:
    """
    What the protected resource saw of one request.
    """

    identity: HMACIdentity | None
    method: bytes
    prepath: list[bytes]
    postpath: list[bytes]
    body: bytes
    headers: dict[bytes, list[bytes]]


@implementer(IResource)
class RecordingResource:
    """
    A leaf that records every request it renders and answers with JSON
    naming the signer.
    """

    isLeaf = True

    def __init__(self) -> None:
        self.seen: list[Seen] = []

    def getChildWithDefault(self, path: bytes, request: Any) -> RecordingResource:
        return self

    def putChild(self, path: bytes, child: object) -> None:
        raise NotImplementedError()

    def render(self, request: Any) -> bytes:
        identity = getIdentity(request)
        body = request.content.read() if request.content is not None else b""
        headers = {k: list(v) for k, v in request.requestHeaders.getAllRawHeaders()}
        self.seen.append(Seen(identity, request.method, list(request.prepath),
                              list(request.postpath), body, headers))
        request.setHeader(b"Content-Type", b"application/json")
        answer = {
            "keyId": identity.keyId if identity else None,
            "scheme": identity.scheme.value if identity else None,
            "path": b"/".join(request.prepath).decode("latin-1"),
        }
        return json.dumps(answer, sort_keys=True).encode("utf-8")
