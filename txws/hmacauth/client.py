"""
The signing side: an agent that signs what it sends, and a JSON helper.

Design: L{HMACAgent} wraps any C{IAgent} (Twisted's C{Agent}, or one that
treq builds on).  To sign a body it must have it whole, so it reads the body
producer into memory first, signs the exact bytes, and sends them with a
known length: the wrapped agent then frames the body with C{Content-Length},
never chunked (WSGI servers such as Django's drop chunked bodies before any
authentication class can verify them).  Time comes from the injected
reactor and nonces from an injectable callable, so signing is deterministic
under test.  L{postJSON} is the seed's C{post_with_hmac}: canonical JSON,
and a failed L{Deferred} for any non-2xx answer.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer, IReactorTime
from twisted.python.failure import Failure
from twisted.web.client import URI, PartialDownloadError, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

from txws.hmacauth._types import defaultReactor
from txws.hmacauth.keys import KeyRing
from txws.hmacauth.schemes import (
    SEED_SIGNATURE_HEADER,
    SEED_TIMESTAMP_HEADER,
    Scheme,
    signSeed,
    signV2,
)

__all__ = [
    "HMACAgent",
    "HTTPResult",
    "UnexpectedStatus",
    "canonicalJSON",
    "newNonce",
    "postBody",
    "postJSON",
]


def newNonce() -> str:
    """
    Make a v2 nonce: 144 random bits from the OS, base64url without padding.

    @return: 24 characters from C{A-Z a-z 0-9 _ -}.
    """
    return secrets.token_urlsafe(18)


def canonicalJSON(payload: object) -> bytes:
    """
    Serialize like the seed's sender: sorted keys, separators C{,} and C{:},
    UTF-8 (non-ASCII characters are escaped, as Python's C{json} does by
    default, so the bytes are ASCII).

    @param payload: A JSON-serializable value.
    @return: The body bytes.
    @raise TypeError: If C{payload} is not JSON-serializable.
    @raise ValueError: For NaN or infinite floats, which JSON cannot express.
    """
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


@implementer(IBodyProducer)
class _BytesProducer:
    """
    A body producer of known length that writes its bytes at once.
    """

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


@implementer(IConsumer)
class _Collector:
    """
    A consumer that keeps everything written to it.
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def registerProducer(self, producer: object, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass


def _readProducer(producer: IBodyProducer) -> Deferred[bytes]:
    collector = _Collector()
    done: Deferred[None] = producer.startProducing(IConsumer(collector))
    return done.addCallback(lambda _: b"".join(collector.chunks))


def _hostValue(uri: Any) -> bytes:
    """
    The C{Host} header Twisted's C{Agent} would send for a parsed URI.
    """
    host: bytes = uri.host
    if isIPv6Address(host.decode("ascii")):
        host = b"[" + host + b"]"
    if (uri.scheme, uri.port) in ((b"http", 80), (b"https", 443)):
        return host
    return b"%s:%d" % (host, uri.port)


@implementer(IAgent)
class HMACAgent:
    """
    An C{IAgent} that signs every request, then sends it through another.

    Usable directly or as treq's agent: C{treq.HTTPClient(HMACAgent(...))}.
    Signing headers the caller set (C{X-HMAC-*}, or C{Authorization} for v2)
    are replaced.
    """

    def __init__(
        self,
        agent: IAgent,
        keyRing: Mapping[str, bytes],
        keyId: str | None = None,
        *,
        scheme: Scheme = Scheme.V2,
        reactor: IReactorTime | None = None,
        nonceFactory: Callable[[], str] = newNonce,
    ) -> None:
        """
        @param agent: The C{IAgent} that sends the signed requests.
        @param keyRing: The keys (a L{KeyRing} or key id to secret bytes).
        @param keyId: The key to sign with; may be omitted if there is one.
        @param scheme: L{Scheme.V2} (default) or L{Scheme.SEED}, for
            receivers that only know the seed's format.
        @param reactor: The clock (an C{IReactorTime}) for timestamps; the
            global reactor if C{None}.
        @param nonceFactory: Makes v2 nonces (default L{newNonce}).
        @raise ValueError: If the key cannot be chosen.
        """
        ring = keyRing if isinstance(keyRing, KeyRing) else KeyRing(keyRing)
        self.keyId, self._secret = ring.choose(keyId)
        self.scheme = scheme
        self._agent = agent
        self._reactor = reactor if reactor is not None else defaultReactor()
        self._nonceFactory = nonceFactory

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        """
        Read the body, sign the request and send it with C{Content-Length}.

        @param method: The HTTP method.
        @param uri: The absolute URL.
        @param headers: Extra request headers.
        @param bodyProducer: The body, or C{None} for none.
        @return: A L{Deferred} firing with the response.
        """
        if bodyProducer is None:
            body: Deferred[bytes] = succeed(b"")
        else:
            body = _readProducer(bodyProducer)
        hasBody = bodyProducer is not None
        return body.addCallback(self._signAndSend, method, uri, headers, hasBody)

    def _signAndSend(
        self, body: bytes, method: bytes, uri: bytes, headers: Headers | None, hasBody: bool
    ) -> Deferred[IResponse]:
        headers = headers.copy() if headers is not None else Headers()
        timestamp = int(self._reactor.seconds())
        if self.scheme is Scheme.SEED:
            for name, value in signSeed(self._secret, timestamp, body).items():
                headers.setRawHeaders(name, [value])
        else:
            parsed = URI.fromBytes(uri)  # type: ignore[no-untyped-call, unused-ignore]
            if not parsed.path:
                # Agent would send "GET ?q=1"; send (and sign) "/?q=1".
                parsed.path = b"/"
                uri = parsed.toBytes()
            hosts = headers.getRawHeaders(b"Host")
            if hosts:
                host = hosts[0]
            else:
                host = _hostValue(parsed)
                headers.setRawHeaders(b"Host", [host])
            for name in (SEED_SIGNATURE_HEADER, SEED_TIMESTAMP_HEADER):
                headers.removeHeader(name)
            headers.setRawHeaders(b"Authorization", [signV2(
                self._secret, self.keyId, method, host, parsed.originForm, body, timestamp,
                self._nonceFactory(),
            )])
        producer = IBodyProducer(_BytesProducer(body)) if hasBody else None
        return self._agent.request(method, uri, headers, producer)


@dataclass(frozen=True)
class HTTPResult:
    """
    A complete response: status, headers and body.

    @ivar code: The status code.
    @ivar phrase: The reason phrase.
    @ivar headers: The response headers.
    @ivar body: The whole body.
    """

    code: int
    phrase: bytes
    headers: Headers
    body: bytes

    def json(self) -> Any:
        """
        Decode the body as JSON.

        @return: The decoded value.
        @raise ValueError: If the body is not UTF-8 JSON.
        """
        return json.loads(self.body.decode("utf-8"))


class UnexpectedStatus(Exception):
    """
    The server answered, but not with a 2xx status.

    @ivar result: The response, body included.
    """

    def __init__(self, result: HTTPResult) -> None:
        """
        @param result: The non-2xx response.
        """
        super().__init__(result.code, result.phrase)
        self.result = result

    def __str__(self) -> str:
        """
        @return: C{HTTP <code> <phrase>}, plus the error code of a guard's
            JSON refusal when there is one.
        """
        text = f"HTTP {self.result.code} {self.result.phrase.decode('latin-1')}"
        try:
            detail = self.result.json()
        except ValueError:
            return text
        if isinstance(detail, dict) and isinstance(detail.get("code"), str):
            return f"{text} ({detail['code']})"
        if isinstance(detail, dict) and isinstance(detail.get("detail"), str):
            return f"{text} ({detail['detail']})"
        return text


def _collect(response: IResponse) -> Deferred[HTTPResult]:
    def complete(body: bytes) -> HTTPResult:
        result = HTTPResult(response.code, response.phrase, response.headers, body)
        if not 200 <= result.code < 300:
            raise UnexpectedStatus(result)
        return result

    def unframed(reason: Failure) -> bytes:
        # readBody reports a body ended by the connection closing (HTTP/1.0
        # style, no length) as PartialDownloadError; that body is complete.
        error = reason.value
        if not isinstance(error, PartialDownloadError):
            reason.raiseException()
        body = error.response or b""
        return body

    return readBody(response).addErrback(unframed).addCallback(complete)


def postJSON(
    agent: IAgent,
    url: str | bytes,
    payload: object,
    *,
    headers: Headers | None = None,
) -> Deferred[HTTPResult]:
    """
    POST a JSON payload as the seed's C{post_with_hmac} does: body from
    L{canonicalJSON}, C{Content-Type: application/json}.

    @param agent: The agent that signs (an L{HMACAgent}).
    @param url: The absolute URL.
    @param payload: A JSON-serializable value.
    @param headers: Extra request headers.
    @return: A L{Deferred} firing with the 2xx response, or failing with
        L{UnexpectedStatus} for any other status (or with the transport's
        error).
    """
    return postBody(agent, url, canonicalJSON(payload), headers=headers)


def postBody(
    agent: IAgent,
    url: str | bytes,
    body: bytes,
    *,
    headers: Headers | None = None,
) -> Deferred[HTTPResult]:
    """
    POST exact body bytes as C{application/json}, like L{postJSON}.

    @param agent: The agent that signs (an L{HMACAgent}).
    @param url: The absolute URL.
    @param body: The body, sent and signed as is.
    @param headers: Extra request headers.
    @return: See L{postJSON}.
    """
    headers = headers.copy() if headers is not None else Headers()
    headers.setRawHeaders(b"Content-Type", [b"application/json"])
    rawURL = url.encode("ascii") if isinstance(url, str) else url
    sent = agent.request(b"POST", rawURL, headers, IBodyProducer(_BytesProducer(body)))
    return sent.addCallback(_collect)
