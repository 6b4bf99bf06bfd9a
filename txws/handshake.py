"""
The RFC 6455 opening handshake, both sides, as pure functions.

Design: nothing here touches a socket, a clock or an application hook.  The
server side turns the bytes of an HTTP/1.1 upgrade request into a
L{RequestHead} (L{parseRequestHead}), validates it into a L{ConnectionRequest}
(L{validateUpgradeRequest}) and builds the C{101} or error response bytes;
the client side builds the request (L{buildClientRequest}) and checks the
server's answer (L{parseResponseHead}, L{validateUpgradeResponse}).  A bad
request raises L{HandshakeError} carrying the HTTP status to answer with; a
bad response raises L{ResponseError}.  Header names are compared
case-insensitively and token lists are split on commas, as RFC 9110 requires.

@see: U{RFC 6455 section 4<https://www.rfc-editor.org/rfc/rfc6455#section-4>}
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional
from urllib.parse import SplitResult, parse_qs, urlsplit

from txws.deflate import parseExtensionHeader

__all__ = [
    "WEBSOCKET_GUID",
    "ConnectionRequest",
    "ConnectionResponse",
    "HandshakeError",
    "RequestHead",
    "ResponseError",
    "acceptValue",
    "buildAcceptResponse",
    "buildClientRequest",
    "buildErrorResponse",
    "hasToken",
    "headerTokens",
    "joinHeaders",
    "parseExtensions",
    "parseRequestHead",
    "parseResponseHead",
    "parseWebSocketURL",
    "sharedHeader",
    "validateUpgradeRequest",
    "validateUpgradeResponse",
]

#: The GUID of RFC 6455 section 1.3, appended to the key before hashing.
WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP/(\d)\.(\d)")
_HOST = re.compile(r"[A-Za-z0-9\-._~%!$&'()*+,;=:]+")
_STATUS_LINE = re.compile(r"HTTP/1\.(\d) (\d{3})(?: (.*))?")

_REASONS = {
    101: "Switching Protocols",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    426: "Upgrade Required",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HandshakeError(Exception):
    """
    An opening handshake request was refused.

    @ivar status: the HTTP status to answer with (400, 403, 426, 431, ...).
    @ivar reason: a short text for the C{text/plain} body and the log.
    @ivar headers: extra response headers (e.g. C{Sec-WebSocket-Version}).
    """

    def __init__(
        self, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


class ResponseError(Exception):
    """
    A client refuses the server's answer to its opening handshake.

    @ivar status: the HTTP status the server answered with (101 when the
        server accepted but the answer is invalid), 0 if none was parsed.
    @ivar reason: what was wrong.
    """

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(status, reason)
        self.status = status
        self.reason = reason

    def __str__(self) -> str:
        return f"WebSocket handshake failed (HTTP status {self.status}): {self.reason}"


@dataclass
class RequestHead:
    """
    A parsed HTTP/1.1 request line and header block.

    @ivar method: the request method, e.g. C{GET}.
    @ivar target: the request target as sent, e.g. C{/chat?room=1}.
    @ivar version: C{(major, minor)}.
    @ivar rawHeaders: C{(lower-case name, value)} pairs in arrival order.
    """

    method: str
    target: str
    version: tuple[int, int]
    rawHeaders: list[tuple[str, str]]
    _index: Optional[dict[str, list[str]]] = field(default=None, repr=False, compare=False)

    def getAll(self, name: str) -> list[str]:
        """
        @param name: a lower-case header name.
        @return: every value of that header, in order.
        """
        index = self._index
        if index is None:
            # Built once: validation asks for about ten headers.
            index = self._index = {}
            for key, value in self.rawHeaders:
                values = index.get(key)
                if values is None:
                    index[key] = [value]
                else:
                    values.append(value)
        return index.get(name, [])

    def joined(self) -> tuple[dict[str, str], frozenset[str]]:
        """
        @return: header values by name, those of a repeated header joined by
            C{, } (RFC 9110 section 5.3), and the names that were repeated.
        """
        single = dict(self.rawHeaders)
        if len(single) == len(self.rawHeaders):
            # No header repeated, the common case: built in C.
            return single, frozenset()
        seen: set[str] = set()
        repeated: set[str] = set()
        for name, _ in self.rawHeaders:
            (repeated if name in seen else seen).add(name)
        return joinHeaders(self.rawHeaders), frozenset(repeated)


class ConnectionRequest:
    """
    A valid WebSocket opening handshake, as the server application sees it
    in C{onConnect} (the attributes mirror Autobahn's C{ConnectionRequest}).

    Kept compact because a connection keeps it for its lifetime: slots, and
    C{headers} computed from C{rawHeaders} when asked for.

    @ivar peer: the peer's address, as a string such as C{tcp4:127.0.0.1:5555}.
    @ivar rawHeaders: C{(lower-case name, value)} pairs as received.
    @ivar host: the C{Host} header.
    @ivar path: the path of the request target, e.g. C{/chat}.
    @ivar params: query parameters, each name mapped to its list of values.
    @ivar version: the WebSocket protocol version (13).
    @ivar origin: the C{Origin} header, or C{None}.
    @ivar protocols: subprotocols the client offers, in its order.
    @ivar extensions: extensions the client offers, as C{(name, params)}.
    @ivar key: the C{Sec-WebSocket-Key} value.
    """

    __slots__ = (
        "extensions",
        "host",
        "key",
        "origin",
        "params",
        "path",
        "peer",
        "protocols",
        "rawHeaders",
        "version",
    )

    def __init__(
        self,
        peer: str,
        rawHeaders: list[tuple[str, str]],
        host: str,
        path: str,
        params: dict[str, list[str]],
        origin: Optional[str],
        protocols: list[str],
        extensions: list[tuple[str, dict[str, Optional[str]]]],
        key: str,
        version: int = 13,
    ) -> None:
        self.peer = peer
        self.rawHeaders = rawHeaders
        self.host = host
        self.path = path
        self.params = params
        self.origin = origin
        self.protocols = protocols
        self.extensions = extensions
        self.key = key
        self.version = version

    @property
    def headers(self) -> dict[str, str]:
        """
        Header values by lower-case name, repeated headers joined by C{, }
        (a new dictionary on each access).
        """
        return joinHeaders(self.rawHeaders)

    def __repr__(self) -> str:
        return f"<ConnectionRequest {self.path!r} from {self.peer}>"


@dataclass
class ConnectionResponse:
    """
    The server's accepting answer, as the client application sees it in
    C{onConnect} (mirroring Autobahn's C{ConnectionResponse}).

    @ivar peer: the server's address, as a string.
    @ivar headers: header values by lower-case name.
    @ivar version: the WebSocket protocol version (13).
    @ivar protocol: the subprotocol the server chose, or C{None}.
    @ivar extensions: the extensions in effect, as Autobahn lists them:
        the connection's L{txws.deflate.PerMessageDeflate} when
        permessage-deflate was negotiated, else empty.
    """

    peer: str
    headers: dict[str, str]
    version: int = 13
    protocol: Optional[str] = None
    extensions: list[object] = field(default_factory=list)


def acceptValue(key: str | bytes) -> str:
    """
    Compute C{Sec-WebSocket-Accept} for a C{Sec-WebSocket-Key}: base64 of the
    SHA-1 of the key followed by L{WEBSOCKET_GUID} (RFC 6455 section 4.2.2).
    It is a plain hash, not an HMAC.

    @param key: the key exactly as sent in the request.
    @return: the accept value.
    """
    if isinstance(key, str):
        key = key.encode("ascii")
    digest = hashlib.sha1(key + WEBSOCKET_GUID).digest()
    return binascii.b2a_base64(digest, newline=False).decode("ascii")


def headerTokens(values: Iterable[str]) -> list[str]:
    """
    Split comma-separated header values into trimmed, non-empty items.

    @param values: the values of every occurrence of one header.
    @return: the items, in order.
    """
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def hasToken(values: Iterable[str], token: str) -> bool:
    """
    Does a comma-separated header (all its occurrences) list C{token}?

    @param values: the values of every occurrence of the header.
    @param token: a lower-case token.
    @return: whether some item equals C{token}, ignoring case.
    """
    for value in values:
        lowered = value.lower()
        if lowered == token or token in (item.strip(" \t") for item in lowered.split(",")):
            return True
    return False


def joinHeaders(rawHeaders: Iterable[tuple[str, str]]) -> dict[str, str]:
    """
    @param rawHeaders: C{(name, value)} pairs.
    @return: values by name, those of a repeated header joined by C{, }.
    """
    headers: dict[str, str] = {}
    for name, value in rawHeaders:
        headers[name] = headers[name] + ", " + value if name in headers else value
    return headers


def parseExtensions(values: Iterable[str]) -> list[tuple[str, dict[str, Optional[str]]]]:
    """
    Parse C{Sec-WebSocket-Extensions} values (RFC 6455 section 9.1, with
    quoted values: L{txws.deflate.parseExtensionHeader}).

    @param values: the values of every occurrence of the header.
    @return: C{(name, params)} offers in order; a parameter without a value
        maps to C{None} (a repeated parameter to its last value: the
        negotiation itself sees every occurrence, and refuses repeats).
    @raise ValueError: if the header is not valid syntax.
    """
    return [(name, dict(params)) for name, params in parseExtensionHeader(values)]


#: Strings a connection shares with every other one instead of keeping its
#: own copy: common header names and values.  A fixed table, because
#: interning what peers send would let them grow the interpreter's table
#: without bound (interned strings are immortal on CPython 3.12.0-3.12.4
#: and in free-threaded builds: python/cpython#113993).
_SHARED: dict[str, str] = {
    s: s
    for s in (
        "accept",
        "accept-encoding",
        "accept-language",
        "authorization",
        "cache-control",
        "connection",
        "cookie",
        "dnt",
        "forwarded",
        "host",
        "origin",
        "pragma",
        "referer",
        "sec-fetch-dest",
        "sec-fetch-mode",
        "sec-fetch-site",
        "sec-websocket-extensions",
        "sec-websocket-key",
        "sec-websocket-protocol",
        "sec-websocket-version",
        "upgrade",
        "user-agent",
        "via",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "13",
        "Upgrade",
        "upgrade",
        "keep-alive, Upgrade",
        "websocket",
        "no-cache",
        "gzip, deflate",
        "gzip, deflate, br",
        "gzip, deflate, br, zstd",
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "websocket",
        "same-origin",
        "cross-site",
        "empty",
    )
}


def sharedHeader(name: str, value: str) -> tuple[str, str]:
    """
    A header as a connection keeps it for its lifetime: the name lower-cased,
    and common names and values replaced by one string shared by every
    connection.

    @param name: the header name as received.
    @param value: its value, trimmed.
    @return: C{(name, value)}.
    """
    name = name.lower()
    return _SHARED.get(name, name), _SHARED.get(value, value)


#: One header line: a token, a colon and a value without control
#: characters (leading spaces and tabs left out).  Matched only at the start
#: of a line, so that matching as many as there are lines checks them all.
_FIELD_LINE = re.compile(
    r"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*)\r\n", re.MULTILINE
)


def _parseHeaderLines(text: str, start: int) -> list[tuple[str, str]]:
    """
    Parse the header lines of C{text} from offset C{start}, each ending in
    CRLF.
    """
    fields = _FIELD_LINE.findall(text, start)
    if len(fields) == text.count("\n", start):
        # Every line is a plain header line (trailing blanks are rare).
        if " \r" in text or "\t\r" in text:
            return [sharedHeader(name, value.rstrip(" \t")) for name, value in fields]
        return [sharedHeader(name, value) for name, value in fields]
    headers: list[tuple[str, str]] = []
    for line in text[start:-2].split("\r\n"):
        if line[:1] in (" ", "\t"):
            raise HandshakeError(400, "obsolete header line folding is not allowed")
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HandshakeError(400, "malformed header line")
        value = value.strip(" \t")
        if _BAD_VALUE.search(value):
            raise HandshakeError(400, "control character in a header value")
        headers.append(sharedHeader(name, value))
    # Unreachable in practice: the fast path above takes every head whose
    # lines all pass these checks (a fuzzer found none that reaches here).
    return headers  # pragma: no cover


def _splitHead(data: bytes, maxSize: int) -> Optional[tuple[str, int, int]]:
    """
    Find the end of an HTTP head (a start line and header lines).

    @return: C{None} until the blank line has arrived; then the head as text
        (every line with its CRLF, the blank line left out), where its
        first line ends, and how many bytes the head took.
    @raise HandshakeError: 431 when the head is larger than C{maxSize}.
    """
    end = data.find(b"\r\n\r\n", 0, maxSize + 4)
    if end < 0:
        if len(data) >= maxSize:
            raise HandshakeError(431, f"request head exceeds {maxSize} bytes")
        return None
    if end + 4 > maxSize:
        raise HandshakeError(431, f"request head exceeds {maxSize} bytes")
    text = data[: end + 2].decode("iso-8859-1")
    return text, text.index("\r\n"), end + 4


def parseRequestHead(data: bytes, maxSize: int = 16384) -> Optional[tuple[RequestHead, int]]:
    """
    Parse an HTTP/1.1 request line and headers from the start of C{data}.

    @param data: everything received so far.
    @param maxSize: the largest head accepted, terminating blank line
        included.
    @return: C{(head, consumed)} once the blank line has arrived, else
        C{None} (wait for more).
    @raise HandshakeError: 431 when the head is too large (even while still
        incomplete), 400 when it is malformed.
    """
    split = _splitHead(data, maxSize)
    if split is None:
        return None
    text, lineEnd, consumed = split
    match = _REQUEST_LINE.fullmatch(text, 0, lineEnd)
    if match is None:
        raise HandshakeError(400, "malformed request line")
    method, target, major, minor = match.groups()
    headers = _parseHeaderLines(text, lineEnd + 2)
    head = RequestHead(method, target, (int(major), int(minor)), headers)
    return head, consumed


#: A C{Sec-WebSocket-Key} that is 16 bytes in base64 (what
#: C{base64.b64decode(key, validate=True)} accepts as 16 bytes, in one step).
_KEY = re.compile(r"[A-Za-z0-9+/]{22}==")

#: The headers of a 426 answer to a request that is not an upgrade.
_UPGRADE_REQUIRED = (("Upgrade", "websocket"), ("Connection", "Upgrade"))


def _one(fields: dict[str, str], repeated: frozenset[str], name: str, display: str) -> str:
    value = fields.get(name)
    if value is None or name in repeated:
        qualifier = "missing" if value is None else "repeated"
        raise HandshakeError(400, f"{display} header {qualifier}")
    return value


def validateUpgradeRequest(head: RequestHead, peer: str = "") -> ConnectionRequest:
    """
    Check a request against RFC 6455 section 4.2.1.

    @param head: the parsed request.
    @param peer: the peer's address, copied into the result.
    @return: the request, as the application will see it.
    @raise HandshakeError: 405 for a method other than GET; 426 (with
        C{Upgrade: websocket}) when the Upgrade or Connection tokens are
        missing, or (with C{Sec-WebSocket-Version: 13}) for another version;
        400 for anything else that is wrong.
    """
    if head.method != "GET":
        raise HandshakeError(405, "WebSocket handshakes use GET", [("Allow", "GET")])
    if head.version < (1, 1):
        raise HandshakeError(400, "WebSocket handshakes require HTTP/1.1")
    fields, repeated = head.joined()
    upgrade = fields.get("upgrade", "")
    if upgrade != "websocket" and not hasToken([upgrade], "websocket"):
        raise HandshakeError(426, "missing 'Upgrade: websocket' header", _UPGRADE_REQUIRED)
    connection = fields.get("connection", "")
    if connection != "Upgrade" and not hasToken([connection], "upgrade"):
        raise HandshakeError(426, "missing 'Connection: Upgrade' header", _UPGRADE_REQUIRED)
    if fields.get("sec-websocket-version") != "13":
        raise HandshakeError(
            426, "unsupported Sec-WebSocket-Version, 13 required", [("Sec-WebSocket-Version", "13")]
        )
    host = _one(fields, repeated, "host", "Host")
    key = _one(fields, repeated, "sec-websocket-key", "Sec-WebSocket-Key")
    if not _KEY.fullmatch(key):
        raise HandshakeError(400, "Sec-WebSocket-Key is not 16 bytes in base64")
    if "origin" in repeated:
        raise HandshakeError(400, "Origin header repeated")
    target = head.target
    if not target.startswith("/"):
        try:
            parts = _splitURL(target)
        except ValueError:
            raise HandshakeError(400, "malformed request target") from None
        if parts.scheme.lower() not in ("http", "https", "ws", "wss") or not parts.netloc:
            raise HandshakeError(400, "malformed request target")
        target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    path, _, query = target.partition("?")
    offered = fields.get("sec-websocket-protocol")
    protocols = headerTokens([offered]) if offered is not None else []
    if protocols and not all(_TOKEN.fullmatch(p) for p in protocols):
        raise HandshakeError(400, "malformed Sec-WebSocket-Protocol header")
    try:
        offers = fields.get("sec-websocket-extensions")
        extensions = parseExtensions([offers]) if offers is not None else []
    except ValueError:
        raise HandshakeError(400, "malformed Sec-WebSocket-Extensions header") from None
    return ConnectionRequest(
        peer=peer,
        rawHeaders=head.rawHeaders,
        host=host,
        path=path,
        params=parse_qs(query, keep_blank_values=True) if query else {},
        origin=fields.get("origin"),
        protocols=protocols,
        extensions=extensions,
        key=key,
    )


@functools.lru_cache(maxsize=64)
def _cachedHeaderBlock(headers: tuple[tuple[str, str], ...]) -> str:
    # Servers send the same extra headers (Server, ...) with every 101:
    # checked and formatted once.  Bounded, for headers made per request.
    return _headerBlock(headers)


def _headerBlock(headers: Iterable[tuple[str, str]]) -> str:
    lines = []
    for name, value in headers:
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"invalid header name {name!r}")
        if _BAD_VALUE.search(value):
            raise ValueError(f"invalid character in the value of header {name!r}")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines)


def buildAcceptResponse(
    key: str,
    protocol: Optional[str] = None,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """
    Build the server's C{101 Switching Protocols} answer.

    @param key: the client's C{Sec-WebSocket-Key}.
    @param protocol: the chosen subprotocol, if any.
    @param headers: extra headers from the application.
    @return: the response head.
    @raise ValueError: if an extra header is not valid HTTP.
    """
    chosen = [("Sec-WebSocket-Protocol", protocol)] if protocol else []
    extra = _cachedHeaderBlock((*chosen, *headers))
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {acceptValue(key)}\r\n{extra}\r\n"
    ).encode("iso-8859-1")


def buildErrorResponse(
    status: int, reason: str, headers: Iterable[tuple[str, str]] = ()
) -> bytes:
    """
    Build a refusal: the status, a C{text/plain} body with the reason, and
    C{Connection: close}.  It never carries C{Sec-WebSocket-Accept}.

    @param status: the HTTP status.
    @param reason: the body text.
    @param headers: extra headers.
    @return: the whole response.
    """
    body = (reason + "\n").encode("utf-8")
    phrase = _REASONS.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n" + _headerBlock(headers) + "\r\n"
    )
    return head.encode("iso-8859-1") + body


def _splitURL(url: str) -> SplitResult:
    """
    C{urlsplit}, refusing a bracketed host that is not an IPv6 address on
    every Python version (3.11 checks it itself, 3.10 does not).

    @raise ValueError: for a malformed URL.
    """
    parts = urlsplit(url)
    if "[" in parts.netloc:
        ipaddress.IPv6Address(parts.hostname or "")
    return parts


def parseWebSocketURL(url: str) -> tuple[bool, str, int, str]:
    """
    Split a C{ws://} or C{wss://} URL.

    @param url: e.g. C{wss://example.com/chat?room=1}.
    @return: C{(isSecure, host, port, resource)}, the resource being the
        path and query to request (C{/} when empty).
    @raise ValueError: for another scheme, a missing host, a fragment or a
        bad port or bracketed host.
    """
    parts = _splitURL(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a WebSocket URL (scheme must be ws or wss): {url!r}")
    if parts.fragment or url.endswith("#"):
        raise ValueError("WebSocket URLs cannot have a fragment")
    if not parts.hostname:
        raise ValueError(f"WebSocket URL without a host: {url!r}")
    secure = scheme == "wss"
    port = parts.port if parts.port is not None else (443 if secure else 80)
    resource = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return secure, parts.hostname, port, resource


def buildClientRequest(
    host: str,
    port: int,
    resource: str,
    key: str,
    isSecure: bool = False,
    origin: Optional[str] = None,
    protocols: Sequence[str] = (),
    useragent: Optional[str] = None,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """
    Build a client's opening handshake (RFC 6455 section 4.1).

    @param host: the server's host name or address.
    @param port: its port (omitted from C{Host} when it is the default).
    @param resource: path and query.
    @param key: a fresh base64 C{Sec-WebSocket-Key}.
    @param isSecure: whether the connection is C{wss://}.
    @param origin: an C{Origin} header to send, if any.
    @param protocols: subprotocols to offer, in preference order.
    @param useragent: a C{User-Agent} header, if any.
    @param headers: extra headers.
    @return: the request bytes.
    @raise ValueError: if a header or subprotocol is not valid HTTP.
    """
    if not _HOST.fullmatch(host):
        raise ValueError(f"invalid host {host!r}")
    hostValue = f"[{host}]" if ":" in host else host
    if port != (443 if isSecure else 80):
        hostValue += f":{port}"
    extra: list[tuple[str, str]] = []
    if origin is not None:
        extra.append(("Origin", origin))
    if protocols:
        for p in protocols:
            if not _TOKEN.fullmatch(p):
                raise ValueError(f"invalid subprotocol {p!r}")
        extra.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
    if useragent:
        extra.append(("User-Agent", useragent))
    if _BAD_VALUE.search(resource) or " " in resource:
        raise ValueError("invalid characters in the request resource")
    return (
        f"GET {resource} HTTP/1.1\r\n"
        f"Host: {hostValue}\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n" + _headerBlock([*extra, *headers]) + "\r\n"
    ).encode("iso-8859-1")


def parseResponseHead(
    data: bytes, maxSize: int = 16384
) -> Optional[tuple[int, list[tuple[str, str]], int]]:
    """
    Parse the status line and headers of the server's answer.

    @param data: everything received so far.
    @param maxSize: the largest head accepted.
    @return: C{(status, rawHeaders, consumed)} once complete, else C{None}.
    @raise ResponseError: when the head is malformed or too large.
    """
    try:
        split = _splitHead(data, maxSize)
        if split is None:
            return None
        text, lineEnd, consumed = split
        match = _STATUS_LINE.fullmatch(text, 0, lineEnd)
        if match is None:
            raise HandshakeError(400, "malformed status line")
        return int(match.group(2)), _parseHeaderLines(text, lineEnd + 2), consumed
    except HandshakeError as e:
        raise ResponseError(0, e.reason) from None


def validateUpgradeResponse(
    status: int,
    rawHeaders: list[tuple[str, str]],
    key: str,
    protocols: Sequence[str] = (),
    extensionsOffered: bool = False,
) -> tuple[Optional[str], dict[str, str]]:
    """
    Check the server's answer (RFC 6455 section 4.1, the client's checks).
    The answer's extensions are the negotiation's to check
    (L{txws.deflate.parseResponse}), if the client offered any.

    @param status: the HTTP status.
    @param rawHeaders: C{(lower-case name, value)} pairs.
    @param key: the C{Sec-WebSocket-Key} the client sent.
    @param protocols: the subprotocols the client offered.
    @param extensionsOffered: whether the client offered extensions.
    @return: C{(protocol, headers)}: the chosen subprotocol or C{None}, and
        header values by lower-case name.
    @raise ResponseError: if the server refused (any status but 101) or its
        answer is not a valid acceptance.
    """
    if status != 101:
        raise ResponseError(status, "the server refused the WebSocket upgrade")
    headers = joinHeaders(rawHeaders)

    def values(name: str) -> list[str]:
        return [v for n, v in rawHeaders if n == name]

    if not hasToken(values("upgrade"), "websocket"):
        raise ResponseError(status, "missing 'Upgrade: websocket' in the answer")
    if not hasToken(values("connection"), "upgrade"):
        raise ResponseError(status, "missing 'Connection: Upgrade' in the answer")
    accepts = values("sec-websocket-accept")
    if len(accepts) != 1 or not hmac.compare_digest(
        accepts[0].strip().encode("utf-8", "replace"), acceptValue(key).encode("ascii")
    ):
        raise ResponseError(status, "wrong Sec-WebSocket-Accept")
    if values("sec-websocket-extensions") and not extensionsOffered:
        raise ResponseError(status, "the server enabled an extension that was not offered")
    chosen = headerTokens(values("sec-websocket-protocol"))
    if len(chosen) > 1:
        raise ResponseError(status, "the server chose several subprotocols")
    if chosen and chosen[0] not in protocols:
        raise ResponseError(
            status, f"the server chose a subprotocol that was not offered: {chosen[0]!r}"
        )
    return (chosen[0] if chosen else None), headers
