"""
The guard: a resource that lets only HMAC-signed requests reach another.

Design, after C{twisted.web.guard.HTTPAuthSessionWrapper}: L{HMACGuard}
wraps any resource tree and stays transparent during traversal (it consumes
no path segment).  For each request it reads the exact body bytes Twisted
buffered, verifies the signature with the pure functions of
L{txws.hmacauth.schemes} against the time of the injected reactor, then asks
the replay store (which may answer later: a shared store is asynchronous)
whether the request was seen; only then does traversal continue into the
wrapped tree, with the verified identity readable through L{getIdentity}.
Any refusal is a small leaf resource rendering JSON; it is logged once with
the peer and the code, never with header values or secrets.

C{twisted.web} reads a whole request body before any resource runs, so a
body cap in the guard comes too late to protect memory.  L{HMACSite} (with
L{CappedRequest}) enforces the cap while the body arrives: a
C{Content-Length} over the cap is answered 413 before a byte of body is
read, and a chunked body is cut off with 413 as soon as it passes the cap.
The guard repeats the check on the buffered body for sites that do not use
L{HMACSite}.

L{HMACSite} also bounds what a peer can hold before any resource runs (its
connections are L{HMACChannel}s): a request's head and body must arrive
within C{requestTimeout} seconds of its first byte (408 otherwise, then the
connection closes), and a request line, header line or whole head over
C{maxHeadSize} bytes, or more than C{maxHeaders} header lines, is answered
414 (request line) or 431 (headers) instead of Twisted's bare disconnect
or 400.  The idle timeout between requests (C{timeout}, C{Site}'s own) is
separate.  Given a WebSocket server factory's C{admission}, an L{HMACSite}
counts each connection as a pending handshake of that factory from its
acceptance until its first request has arrived, so that silent connections
are bounded by the factory's C{maxPendingHandshakes} (the oldest dropped)
and C{maxPendingHandshakesPerPeer} (503 beyond it).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel, HTTPFactory, _GenericHTTPChannelProtocol
from twisted.web.resource import IResource, getChildForRequest
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from txws._admission import Admission, peerKey
from txws.hmacauth._types import defaultReactor
from txws.hmacauth.keys import KeyRing
from txws.hmacauth.replay import (
    KeyedReplayStore,
    MemoryReplayStore,
    ReplayQuotaExceeded,
    ReplayStore,
    ReplayStoreFull,
    ReplayStoreUnavailable,
)
from txws.hmacauth.schemes import (
    DEFAULT_SKEW,
    SEED_SIGNATURE_HEADER,
    SEED_TIMESTAMP_HEADER,
    V2_AUTH_SCHEME,
    FailureCode,
    Scheme,
    VerificationError,
    Verified,
    isV2Authorization,
    verifySeed,
    verifyV2,
)

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_HEADERS",
    "DEFAULT_MAX_HEAD_SIZE",
    "DEFAULT_REQUEST_TIMEOUT",
    "SERVER_TIME_HEADER",
    "CappedRequest",
    "HMACChannel",
    "HMACGuard",
    "HMACIdentity",
    "HMACSite",
    "getIdentity",
]

DEFAULT_MAX_BODY_SIZE = 1 << 20
"""The default body cap, bytes (1 MiB)."""

DEFAULT_MAX_HEAD_SIZE = 16 * 1024
"""The default cap on a request's head (request line and headers), bytes
(16 KiB, like the WebSocket handshake's C{maxHandshakeSize})."""

DEFAULT_MAX_HEADERS = 100
"""The default cap on the number of header lines of one request."""

DEFAULT_REQUEST_TIMEOUT = 10.0
"""The default time, seconds, a request's head and body may take to arrive."""

SERVER_TIME_HEADER = b"X-HMAC-Server-Time"
"""Response header of every refusal: the guard's clock, Unix seconds."""

_IDENTITY_ATTRIBUTE = "hmacIdentity"
_REALM = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]{1,100}")
_SEED_CHALLENGE = b"HMAC-SHA256"
_log = Logger()


@dataclass(frozen=True)
class HMACIdentity:
    """
    Who signed a request that the guard let through.

    @ivar keyId: The id of the key that verified the signature.
    @ivar scheme: The scheme the request was signed with.
    @ivar timestamp: The signed timestamp, Unix seconds.
    @ivar nonce: The v2 nonce; C{None} for the seed scheme.
    """

    keyId: str
    scheme: Scheme
    timestamp: int
    nonce: str | None


def getIdentity(request: object) -> HMACIdentity | None:
    """
    Tell a wrapped resource who signed the request it is rendering.

    The guard stores the identity on the request as the attribute
    C{hmacIdentity}; this function is the typed way to read it.

    @param request: The request being rendered.
    @return: The verified identity, or C{None} if the request did not pass
        through an L{HMACGuard}.
    """
    identity = getattr(request, _IDENTITY_ATTRIBUTE, None)
    return identity if isinstance(identity, HMACIdentity) else None


def _describePeer(address: object) -> str:
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is not None and port is not None:
        return f"{host}:{port}"
    return str(address)


def _errorBody(code: str, message: str) -> bytes:
    return json.dumps(
        {"code": code, "message": message}, sort_keys=True, separators=(",", ":")
    ).encode("utf-8")


@implementer(IResource)
class _Refusal:
    """
    A leaf that answers every request with one JSON error.
    """

    isLeaf = True

    def __init__(
        self, status: int, code: str, message: str, headers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.headers = list(headers)

    def getChildWithDefault(self, path: bytes, request: Request) -> _Refusal:
        return self

    def putChild(self, path: bytes, child: object) -> None:
        raise NotImplementedError("a refusal has no children")

    def render(self, request: Request) -> bytes:
        request.setResponseCode(self.status)
        headers = request.responseHeaders
        for name, value in self.headers:
            headers.addRawHeader(name, value)
        headers.setRawHeaders(b"Content-Type", [b"application/json"])
        headers.setRawHeaders(b"Cache-Control", [b"no-store"])
        return _errorBody(self.code, self.message)


@implementer(IResource)
class _Deferred:
    """
    A leaf that renders, once known, the resource a L{Deferred} fires with,
    continuing traversal below it (like C{twisted.web.util.DeferredResource}).
    """

    isLeaf = True

    def __init__(self, result: Deferred[Any]) -> None:
        self._result = result

    def getChildWithDefault(self, path: bytes, request: Request) -> _Deferred:
        return self

    def putChild(self, path: bytes, child: object) -> None:
        raise NotImplementedError("not a container")

    def render(self, request: Request) -> int:
        def renderChild(child: object) -> None:
            request.render(getChildForRequest(child, request))  # type: ignore[no-untyped-call, unused-ignore]

        def failed(reason: Failure) -> None:
            request.processingFailed(reason)

        self._result.addCallback(renderChild).addErrback(failed)
        return NOT_DONE_YET


@implementer(IResource)
class HMACGuard:
    """
    Protect a resource tree: only correctly signed, fresh, first-use
    requests reach it.

    The key ring may be replaced at run time by assigning L{keyRing} (for
    example on C{SIGHUP}); requests already verified are unaffected.

    @ivar keyRing: The active keys.
    @ivar refused: How many requests this guard refused, by C{(HTTP status,
        code)}: the code is the one in the refusal's JSON body and
        C{WWW-Authenticate} challenge (C{bad_signature}, C{replayed},
        C{body_too_large}...), a fixed set, so that metrics built on it
        have a bounded number of series.
    """

    isLeaf = False

    def __init__(
        self,
        wrapped: object,
        keyRing: Mapping[str, bytes],
        *,
        reactor: IReactorTime | None = None,
        replayStore: ReplayStore | None = None,
        skew: float = DEFAULT_SKEW,
        schemes: Iterable[Scheme] = (Scheme.SEED, Scheme.V2),
        hosts: Iterable[str] | None = None,
        maxBodySize: int = DEFAULT_MAX_BODY_SIZE,
        realm: str = "txws",
    ) -> None:
        """
        @param wrapped: The L{IResource} to protect; it renders only verified
            requests and reads the signer with L{getIdentity}.
        @param keyRing: The active keys (a L{KeyRing} or a mapping of key id
            to secret bytes).
        @param reactor: The clock (an C{IReactorTime}); the global reactor
            if C{None}.
        @param replayStore: Where verified requests are remembered; a
            L{MemoryReplayStore} on C{reactor} if C{None}.  A store that
            provides L{KeyedReplayStore} is told which key signed each
            request (and may refuse a key over its share: 429).
        @param skew: Seconds a timestamp may differ from our clock either way.
        @param schemes: The schemes accepted (default: both).
        @param hosts: If given, the C{Host} header values (host, or host:port
            when not the default port) this server answers to; a v2 request
            signed for any other host is refused.
        @param maxBodySize: Larger bodies are refused with 413.
        @param realm: The realm in C{WWW-Authenticate} challenges.
        @raise ValueError: For an empty scheme set, a non-positive skew or
            body cap, or a realm that cannot be quoted safely.
        """
        self.schemes = frozenset(schemes)
        if not self.schemes:
            raise ValueError("enable at least one scheme")
        if skew <= 0 or maxBodySize < 0:
            raise ValueError("skew must be positive and maxBodySize not negative")
        if _REALM.fullmatch(realm) is None:
            raise ValueError("realm must be printable ASCII without quotes or backslashes")
        self._wrapped = IResource(wrapped)
        self.keyRing = keyRing if isinstance(keyRing, KeyRing) else KeyRing(keyRing)
        self._reactor = reactor if reactor is not None else defaultReactor()
        self._replayStore: ReplayStore = (
            replayStore if replayStore is not None else MemoryReplayStore(self._reactor)
        )
        self._skew = skew
        self._hosts = None if hosts is None else frozenset(h.lower().encode() for h in hosts)
        self._maxBodySize = maxBodySize
        self._realm = realm.encode("ascii")
        self.refused: Counter[tuple[int, str]] = Counter()

    def render(self, request: Request) -> bytes | int:
        """
        Render the wrapped resource itself, if the request is authorized.

        @param request: The request.
        @return: C{NOT_DONE_YET} or the refusal's body.
        """
        result: bytes | int = self._authorizedResource(request).render(request)
        return result

    def getChildWithDefault(self, path: bytes, request: Request) -> _Deferred | _Refusal:
        """
        Check the request, then let traversal continue in the wrapped tree
        from the same segment (the guard consumes none).

        @param path: The next path segment.
        @param request: The request.
        @return: A resource that renders the wrapped tree or the refusal.
        """
        assert request.prepath is not None and request.postpath is not None
        request.postpath.insert(0, request.prepath.pop())
        return self._authorizedResource(request)

    def putChild(self, path: bytes, child: object) -> None:
        """
        Refuse: children belong on the wrapped resource.

        @raise NotImplementedError: Always.
        """
        raise NotImplementedError("put children on the wrapped resource")

    def _authorizedResource(self, request: Request) -> _Deferred | _Refusal:
        setattr(request, _IDENTITY_ATTRIBUTE, None)
        body = self._readBody(request)
        if body is None:
            return self._refuse(
                request, 413, "body_too_large",
                f"Request body is larger than {self._maxBodySize} bytes",
            )
        try:
            verified = self._verify(request, body)
        except VerificationError as e:
            return self._refuse(request, 401, e.code.value, e.message)
        lifetime = 2 * self._skew
        store = self._replayStore
        if isinstance(store, KeyedReplayStore):
            result = maybeDeferred(
                store.rememberFor, verified.keyId, verified.replayTokens, lifetime
            )
        else:
            result = maybeDeferred(store.remember, verified.replayTokens, lifetime)
        return _Deferred(result.addCallbacks(
            self._remembered, self._storeFailed,
            callbackArgs=(request, verified), errbackArgs=(request,),
        ))

    def _readBody(self, request: Request) -> bytes | None:
        content = request.content
        if content is None:
            return b""
        content.seek(0, 2)
        if content.tell() > self._maxBodySize:
            return None
        content.seek(0)
        body: bytes = content.read()
        content.seek(0)
        return body

    def _verify(self, request: Request, body: bytes) -> Verified:
        headers = request.requestHeaders
        now = self._reactor.seconds()
        if Scheme.V2 in self.schemes:
            authorizations = headers.getRawHeaders(b"Authorization", [])
            values = [v for v in authorizations if isV2Authorization(v)]
            if len(values) > 1:
                raise VerificationError(FailureCode.BAD_SIGNATURE, "Repeated Authorization header")
            if values:
                hosts = headers.getRawHeaders(b"Host", [])
                if len(hosts) != 1:
                    raise VerificationError(FailureCode.MISSING_HEADERS, "Missing Host header")
                verified = verifyV2(
                    self.keyRing, values[0], request.method, hosts[0], request.uri, body, now,
                    self._skew,
                )
                if self._hosts is not None and hosts[0].lower() not in self._hosts:
                    raise VerificationError(
                        FailureCode.BAD_SIGNATURE, "Request was signed for another host"
                    )
                return verified
        if Scheme.SEED in self.schemes:
            signatures = headers.getRawHeaders(SEED_SIGNATURE_HEADER)
            timestamps = headers.getRawHeaders(SEED_TIMESTAMP_HEADER)
            if signatures is not None or timestamps is not None:
                return verifySeed(self.keyRing, signatures, timestamps, body, now, self._skew)
        raise VerificationError(FailureCode.MISSING_HEADERS, "Missing HMAC headers")

    def _remembered(self, fresh: bool, request: Request, verified: Verified) -> object:
        if not fresh:
            return self._refuse(
                request, 401, FailureCode.REPLAYED.value, "Request was already accepted once"
            )
        identity = HMACIdentity(verified.keyId, verified.scheme, verified.timestamp,
                                verified.nonce)
        setattr(request, _IDENTITY_ATTRIBUTE, identity)
        return self._wrapped

    def _storeFailed(self, reason: Failure, request: Request) -> _Refusal:
        retryAfter = 1.0
        status = 503
        if isinstance(reason.value, ReplayQuotaExceeded):
            # The sender's own doing (its key holds its whole share of the
            # store): 429, so that it backs off and is not mistaken for an
            # outage of the receiver; every other key is unaffected.
            retryAfter = reason.value.retryAfter
            status = 429
            code = "too_many_requests"
            message = "Too many recent requests with this key; retry later"
        elif isinstance(reason.value, ReplayStoreFull):
            retryAfter = reason.value.retryAfter
            code, message = "replay_store_full", "Too many recent requests; retry later"
        else:
            if not reason.check(ReplayStoreUnavailable):
                _log.failure("HMAC guard: the replay store failed", failure=reason)
            code, message = "replay_store_unavailable", "Replay store unavailable; retry later"
        return self._refuse(request, status, code, message,
                            [(b"Retry-After", b"%d" % math.ceil(retryAfter))])

    def _refuse(
        self,
        request: Request,
        status: int,
        code: str,
        message: str,
        extraHeaders: Iterable[tuple[bytes, bytes]] = (),
    ) -> _Refusal:
        self.refused[status, code] += 1
        peer = _describePeer(request.getClientAddress())  # type: ignore[no-untyped-call, unused-ignore]
        _log.warn(
            "HMAC guard refused {method} {path} from {peer}: {code}",
            method=request.method.decode("latin-1")[:16],
            path=request.uri.decode("latin-1")[:200],
            peer=peer,
            code=code,
        )
        headers = [(SERVER_TIME_HEADER, b"%d" % int(self._reactor.seconds())), *extraHeaders]
        if status == 401:
            error = b'realm="%s", error="%s"' % (self._realm, code.encode("ascii"))
            if Scheme.V2 in self.schemes:
                headers.append((b"WWW-Authenticate", V2_AUTH_SCHEME + b" " + error))
            if Scheme.SEED in self.schemes:
                headers.append((b"WWW-Authenticate", _SEED_CHALLENGE + b" " + error))
        return _Refusal(status, code, message, headers)


class CappedRequest(Request):
    """
    A request that refuses a body larger than its site's C{maxBodySize}
    while the body arrives, before it is buffered.

    Over the cap, it writes a 413 response with a JSON body, closes the
    connection, discards what else arrives and never reaches a resource.
    """

    maxBodySize = DEFAULT_MAX_BODY_SIZE
    """The cap used when the site does not define C{maxBodySize}."""

    _bodyReceived = 0
    _bodyRefused = False

    def _bodyLimit(self) -> int:
        site = getattr(self.channel, "site", None)
        return int(getattr(site, "maxBodySize", self.maxBodySize))

    def gotLength(self, length: int | None) -> None:
        """
        Refuse at once a declared length over the cap; otherwise prepare to
        buffer the body as usual.

        @param length: The C{Content-Length}, or C{None} (chunked).
        """
        if length is not None and length > self._bodyLimit():
            self._refuseBody()
            return
        super().gotLength(length)  # type: ignore[no-untyped-call, unused-ignore]

    def handleContentChunk(self, data: bytes) -> None:
        """
        Buffer a piece of body, unless the body has passed the cap.

        @param data: Body bytes (after chunked decoding).
        """
        if self._bodyRefused:
            return
        self._bodyReceived += len(data)
        if self._bodyReceived > self._bodyLimit():
            self._refuseBody()
            return
        super().handleContentChunk(data)  # type: ignore[no-untyped-call, unused-ignore]

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        """
        Process the request, unless its body was refused.

        @param command: The method.
        @param path: The request-target.
        @param version: The HTTP version.
        """
        if not self._bodyRefused:
            super().requestReceived(command, path, version)  # type: ignore[no-untyped-call, unused-ignore]

    def _refuseBody(self) -> None:
        self._bodyRefused = True
        if self.content is not None:
            self.content.close()
        self.content = BytesIO()
        # Otherwise the channel would send "100 Continue" after our answer.
        self.requestHeaders.removeHeader(b"Expect")
        limit = self._bodyLimit()
        body = _errorBody("body_too_large", f"Request body is larger than {limit} bytes")
        channel: Any = self.channel
        if isinstance(channel, HMACChannel):
            channel._answered = True
        _log.warn(
            "HMAC site refused a body over {limit} bytes from {peer}: body_too_large",
            limit=limit, peer=_describePeer(channel.getPeer()),
        )
        if not isinstance(channel, HTTPChannel):
            # An HTTP/2 stream (only with the optional h2 package): reset it.
            channel.abortConnection()
            return
        _writeErrorAndClose(channel, b"413 Content Too Large", body)


def _writeErrorAndClose(channel: HTTPChannel, status: bytes, body: bytes) -> None:
    """
    Write a complete JSON error response straight to C{channel}'s transport
    and close the connection once it is written.
    """
    assert channel.transport is not None
    channel.transport.write(
        b"HTTP/1.1 %s\r\n"
        b"Content-Type: application/json\r\n"
        b"Cache-Control: no-store\r\n"
        b"Content-Length: %d\r\n"
        b"Connection: close\r\n\r\n%s" % (status, len(body), body)
    )
    if isinstance(channel, HMACChannel):
        channel._closeSoon()
    else:
        channel.loseConnection()


class HMACChannel(HTTPChannel):
    """
    The HTTP/1.1 channel of an L{HMACSite}: Twisted's, with bounds on what
    a peer can hold before a resource runs, each answered in the guard's
    JSON error style and followed by closing the connection:

      - the time from a request's first byte until its head and body have
        all arrived: the site's C{requestTimeout} (408 C{request_timeout},
        then the connection closes, and is aborted if the peer does not
        let it close within C{abortTimeout});
      - the request line: at most the site's C{maxHeadSize} bytes (414
        C{uri_too_long});
      - a header line, the whole head, or more than C{maxHeaders} header
        lines (431 C{headers_too_large}), where Twisted would close without
        an answer or answer a bare 400.

    The idle timeout between requests (the site's C{timeOut}) is Twisted's
    and separate; the request timer does not run while a request is being
    answered (pipelined bytes wait) nor after a WebSocket took the
    connection over.

    If the site has an C{admission}, the connection is one of its pending
    handshakes until its first request has arrived: dropped if it is the
    oldest when the table is full, answered 503 C{too_many_pending} at once
    if its address already has the site's C{maxPendingHandshakesPerPeer}.
    """

    _requestTimer: IDelayedCall | None = None
    _requestLineSeen = False
    _headBytes = 0
    _answered = False
    _refused = False
    _admission: Admission | None = None

    maxHeadSize = DEFAULT_MAX_HEAD_SIZE
    """The head cap used when the site does not define C{maxHeadSize}."""

    requestTimeout: float | None = DEFAULT_REQUEST_TIMEOUT
    """The request timeout used when the site does not define one."""

    def connectionMade(self) -> None:
        """
        Take the limits from the site, then start as Twisted's channel does.
        """
        site = getattr(self, "site", None)
        self.maxHeadSize = int(getattr(site, "maxHeadSize", self.maxHeadSize))
        self.maxHeaders = int(getattr(site, "maxHeaders", self.maxHeaders))
        self.requestTimeout = getattr(site, "requestTimeout", self.requestTimeout)
        # Twisted's own limits, set so that ours always trip first.
        self.MAX_LENGTH = self.maxHeadSize
        self.totalHeadersSize = self.maxHeadSize
        super().connectionMade()  # type: ignore[no-untyped-call, unused-ignore]
        admission = getattr(site, "admission", None)
        if admission is None or self.transport is None:
            return
        address = self.transport.getPeer()
        perPeer = int(getattr(site, "maxPendingHandshakesPerPeer", 0))
        if admission.admit(
            self, peerKey(address), int(getattr(site, "maxPendingHandshakes", 0)), perPeer,
            _describePeer(address),
        ):
            self._admission = admission
        else:
            self._refuse(
                b"503 Service Unavailable", "too_many_pending",
                f"More than {perPeer} connections from this address are waiting to send "
                "their request",
                log=False,
            )

    def _dropPending(self) -> None:
        """
        This is the oldest of too many pending handshakes in the site's
        table (its first request has not arrived): abort it.  Unless the
        connection went to HTTP/2 (with the optional C{h2} package, over
        TLS): Twisted then hands it to another channel without telling this
        one, which only leaves the table here.
        """
        if getattr(self.transport, "negotiatedProtocol", None) == b"h2":
            return
        self._refused = True
        self._cancelRequestTimer()
        self.setTimeout(None)  # type: ignore[no-untyped-call]
        abort = getattr(self.transport, "abortConnection", None)
        if abort is not None:
            abort()

    def dataReceived(self, data: bytes) -> None:
        """
        Start the request timer on the first byte of a request, then parse
        as usual; after a refusal, discard everything.

        @param data: Bytes from the peer.
        """
        if self._refused:
            return
        if (
            data
            and self._requestTimer is None
            and not self._handlingRequest
            and self.requestTimeout
        ):
            self._requestTimer = self.callLater(self.requestTimeout, self._requestTimedOut)  # type: ignore[no-untyped-call]
        super().dataReceived(data)  # type: ignore[no-untyped-call, unused-ignore]

    def lineReceived(self, line: bytes) -> None:
        """
        Count a head line against C{maxHeadSize} (with its CRLF), then parse
        it as usual.

        @param line: A line of the head, without its delimiter.
        """
        if self._refused:
            return
        self._headBytes += len(line) + 2
        if self._headBytes > self.maxHeadSize:
            self._refuseHead(f"Request head is larger than {self.maxHeadSize} bytes")
            return
        if line:
            self._requestLineSeen = True
        super().lineReceived(line)  # type: ignore[no-untyped-call, unused-ignore]

    def lineLengthExceeded(self, line: bytes) -> None:
        """
        A line of the head is longer than C{maxHeadSize}: 414 for the
        request line, 431 for a header.

        @param line: What was buffered (not parsed).
        """
        if self._refused:
            return
        if not self._requestLineSeen:
            self._refuse(
                b"414 URI Too Long", "uri_too_long",
                f"Request line is longer than {self.maxHeadSize} bytes",
            )
        else:
            self._refuseHead(f"Header line is longer than {self.maxHeadSize} bytes")

    def headerReceived(self, line: bytes) -> bool:
        """
        Refuse a header line beyond C{maxHeaders} with 431, else store it as
        usual.

        @param line: One (unfolded) header line.
        @return: Whether the header was valid.
        """
        if self._refused:
            return False
        if self._receivedHeaderCount >= self.maxHeaders:
            self._refuseHead(f"Request has more than {self.maxHeaders} header lines")
            return False
        ok: bool = super().headerReceived(line)  # type: ignore[no-untyped-call, unused-ignore]
        return ok

    def allContentReceived(self) -> None:
        """
        The request arrived whole: stop its timer, reset the head counters
        and let Twisted process it.
        """
        self._cancelRequestTimer()
        self._headBytes = 0
        self._requestLineSeen = False
        self._answered = False
        if self._admission is not None:
            self._admission.arrived(self)
        super().allContentReceived()  # type: ignore[no-untyped-call, unused-ignore]

    def connectionLost(self, reason: Failure) -> None:  # type: ignore[override]
        """
        Stop the request timer, then clean up as Twisted's channel does.

        @param reason: Why the connection ended.
        """
        self._cancelRequestTimer()
        if self._admission is not None:
            self._admission.closed(self, False)
        super().connectionLost(reason)  # type: ignore[no-untyped-call, unused-ignore]

    def _respondToBadRequestAndDisconnect(self) -> None:
        """
        Twisted's answer to a malformed request (a bare 400, then closing):
        stop the request timer too, so that no 408 follows it.
        """
        self._refused = True
        self._cancelRequestTimer()
        super()._respondToBadRequestAndDisconnect()  # type: ignore[no-untyped-call, unused-ignore]

    def _closing(self) -> bool:
        return self.transport is None or bool(getattr(self.transport, "disconnecting", False))

    def _cancelRequestTimer(self) -> None:
        timer, self._requestTimer = self._requestTimer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _refuseHead(self, message: str) -> None:
        self._refuse(b"431 Request Header Fields Too Large", "headers_too_large", message)

    def _refuse(self, status: bytes, code: str, message: str, log: bool = True) -> None:
        self._refused = True
        self._cancelRequestTimer()
        if self._closing():
            return
        self.setTimeout(None)  # type: ignore[no-untyped-call]
        assert self.transport is not None
        if log:
            _log.warn(
                "HMAC site refused a request from {peer}: {code}",
                peer=_describePeer(self.transport.getPeer()), code=code,
            )
        _writeErrorAndClose(self, status, _errorBody(code, message))

    def _requestTimedOut(self) -> None:
        self._requestTimer = None
        if self._refused or self._closing():
            # Already answered and closing (a 400, a 413, the end of a
            # non-persistent exchange): nothing to add.
            return
        assert self.transport is not None
        peer = _describePeer(self.transport.getPeer())
        _log.warn(
            "HMAC site: request from {peer} not received within {timeout} s: {code}",
            peer=peer, timeout=self.requestTimeout, code="request_timeout",
        )
        self._refused = True
        self.setTimeout(None)  # type: ignore[no-untyped-call]
        if not self._answered:
            body = _errorBody(
                "request_timeout",
                f"Request not received within {self.requestTimeout:g} seconds",
            )
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\n"
                b"Content-Type: application/json\r\n"
                b"Cache-Control: no-store\r\n"
                b"Content-Length: %d\r\n"
                b"Connection: close\r\n\r\n%s" % (len(body), body)
            )
        self._closeSoon()

    def _closeSoon(self) -> None:
        """
        Close once what was written is sent, and abort the connection if the
        peer does not let it close (does not read) within C{abortTimeout}.
        """
        if self.abortTimeout is not None and self._abortingCall is None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)  # type: ignore[no-untyped-call]
        self.loseConnection()  # type: ignore[no-untyped-call]


def _hmacChannelProtocol(site: HTTPFactory) -> Any:
    """
    What C{Site.protocol} builds for an L{HMACSite}: Twisted's protocol
    selector (HTTP/2 where negotiated, else HTTP/1.1) over an L{HMACChannel}.
    """
    return _GenericHTTPChannelProtocol(HMACChannel())  # type: ignore[no-untyped-call]


class HMACSite(Site):
    """
    A L{Site} whose requests are L{CappedRequest}s and whose connections are
    L{HMACChannel}s: bodies over C{maxBodySize} are refused with 413 before
    they are buffered, heads over C{maxHeadSize} with 414 or 431, and a
    request that takes more than C{requestTimeout} seconds to arrive with 408.

    @ivar maxBodySize: The cap, in bytes, for every request on this site.
    @ivar maxHeadSize: The cap, in bytes, on a request's head (request line
        and header lines with their CRLFs), and so on each of its lines.
    @ivar maxHeaders: The most header lines in one request.
    @ivar requestTimeout: Seconds from a request's first byte until its
        whole head and body must have arrived, or C{None} for no bound.
    @ivar admission: A table of pending handshakes its connections are
        counted in until their first request has arrived (see
        L{HMACChannel}): the C{admission} of the
        L{txws.server.WebSocketServerFactory} the site serves, so that one
        bound covers both; C{None} (the default) for none.
    @ivar maxPendingHandshakes: Connections pending at most in that table;
        when it is full, the oldest is dropped (0 for no bound; give it the
        factory's option of the same name).
    @ivar maxPendingHandshakesPerPeer: Connections pending at most from one
        address (IPv4, or IPv6 /64); beyond, 503 at once (0 for no bound).
    """

    requestFactory = CappedRequest
    protocol = _hmacChannelProtocol
    admission: Admission | None = None
    maxPendingHandshakes = 0
    maxPendingHandshakesPerPeer = 0

    def __init__(
        self,
        resource: object,
        *,
        maxBodySize: int = DEFAULT_MAX_BODY_SIZE,
        maxHeadSize: int = DEFAULT_MAX_HEAD_SIZE,
        maxHeaders: int = DEFAULT_MAX_HEADERS,
        requestTimeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        """
        @param resource: The root resource (e.g. an L{HMACGuard}).
        @param maxBodySize: The body cap, bytes; use the same value as the
            guard's.
        @param maxHeadSize: The head cap, bytes (16 KiB by default): a longer
            request line is answered 414, a longer header line or head 431.
        @param maxHeaders: The most header lines of a request (431 beyond).
        @param requestTimeout: Seconds a request's head and body may take
            from its first byte (10 by default; 408 beyond), or C{None}.
            The idle timeout between requests is C{Site}'s C{timeout}.
        @param kwargs: Passed to L{Site}; a C{requestFactory} must be a
            L{CappedRequest} subclass.
        @raise TypeError: For a request factory that would not enforce the cap.
        @raise ValueError: For a head cap under 256 bytes, fewer than one
            header, or a non-positive request timeout.
        """
        super().__init__(resource, **kwargs)  # type: ignore[no-untyped-call, unused-ignore]
        factory = self.requestFactory
        if not (isinstance(factory, type) and issubclass(factory, CappedRequest)):
            raise TypeError("HMACSite needs a CappedRequest subclass as requestFactory")
        if maxHeadSize < 256 or maxHeaders < 1:
            raise ValueError("maxHeadSize must be at least 256 and maxHeaders at least 1")
        if requestTimeout is not None and requestTimeout <= 0:
            raise ValueError("requestTimeout must be positive or None")
        self.maxBodySize = maxBodySize
        self.maxHeadSize = maxHeadSize
        self.maxHeaders = maxHeaders
        self.requestTimeout = requestTimeout
