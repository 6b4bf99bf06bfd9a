"""
Tests for L{txws.handshake}: the RFC 6455 opening handshake (section 4),
both the server's side and the client's, organised by RFC section.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from typing import Optional, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.typedtrial import SynchronousTestCase
from txws.handshake import (
    WEBSOCKET_GUID,
    ConnectionRequest,
    HandshakeError,
    RequestHead,
    ResponseError,
    acceptValue,
    buildAcceptResponse,
    buildClientRequest,
    buildErrorResponse,
    headerTokens,
    parseExtensions,
    parseRequestHead,
    parseResponseHead,
    parseWebSocketURL,
    sharedHeader,
    validateUpgradeRequest,
    validateUpgradeResponse,
)

_E = TypeVar("_E", bound=BaseException)

#: Trial's test case (mypy is told trial's untyped assertions are fine in
#: pyproject.toml).
TestCase = SynchronousTestCase


# RFC 6455 section 1.3 / 4.2.2 and the second vector of seeds.md section 1.
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
OTHER_KEY = "x3JJHMbDL1EzLkh9GBhXDw=="
OTHER_ACCEPT = "HSmrc0sMlYUkAGmm5OPpG2HaGWk="

#: The headers of the client handshake in RFC 6455 section 1.2 (minus the
#: subprotocols, which individual tests add).
BASE_HEADERS: list[tuple[str, str]] = [
    ("Host", "server.example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", RFC_KEY),
    ("Sec-WebSocket-Version", "13"),
]


def _request(
    target: str = "/chat",
    method: str = "GET",
    version: str = "HTTP/1.1",
    drop: Sequence[str] = (),
    replace: Sequence[tuple[str, str]] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """
    Build an upgrade request head.

    @param target: the request target.
    @param method: the method.
    @param version: the HTTP version token.
    @param drop: names of L{BASE_HEADERS} to leave out.
    @param replace: C{(name, value)} to use instead of the base header of
        that name.
    @param extra: headers appended after the base ones.
    @return: the request bytes, terminating blank line included.
    """
    replacements = dict(replace)
    headers = [
        (name, replacements.get(name, value)) for name, value in BASE_HEADERS if name not in drop
    ]
    lines = [f"{method} {target} {version}", *(f"{n}: {v}" for n, v in [*headers, *extra])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")


def _validate(data: bytes, peer: str = "") -> ConnectionRequest:
    """
    Parse and validate a complete request head.

    @param data: the request bytes.
    @param peer: the peer address to record.
    @return: the validated request.
    """
    parsed = parseRequestHead(data)
    assert parsed is not None, "incomplete request head"
    return validateUpgradeRequest(parsed[0], peer)


def _response(
    status: str = "101 Switching Protocols",
    accept: str = RFC_ACCEPT,
    drop: Sequence[str] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> bytes:
    """
    Build a server's answer.

    @param status: the status code and phrase.
    @param accept: the C{Sec-WebSocket-Accept} value.
    @param drop: names of the standard headers to leave out.
    @param extra: headers appended.
    @return: the response head.
    """
    headers = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept),
    ]
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{n}: {v}" for n, v in [*headers, *extra] if n not in drop]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("iso-8859-1")


def _checkResponse(data: bytes, key: str = RFC_KEY, protocols: Sequence[str] = ()) -> Optional[str]:
    """
    Parse and validate a complete server answer.

    @param data: the response bytes.
    @param key: the key the client sent.
    @param protocols: the subprotocols the client offered.
    @return: the chosen subprotocol.
    """
    parsed = parseResponseHead(data)
    assert parsed is not None, "incomplete response head"
    status, rawHeaders, _ = parsed
    return validateUpgradeResponse(status, rawHeaders, key, protocols)[0]


def _headerLines(response: bytes) -> list[str]:
    """
    @param response: a response.
    @return: its header lines (status line excluded), lower-cased.
    """
    head = response.split(b"\r\n\r\n", 1)[0].decode("iso-8859-1")
    return [line.lower() for line in head.split("\r\n")[1:]]


class AcceptValueTests(TestCase):
    """
    C{Sec-WebSocket-Accept} (RFC 6455 section 4.2.2, item 5.4).
    """

    def test_rfcVector(self) -> None:
        """
        The RFC's sample key gives the RFC's accept value.
        """
        self.assertEqual(acceptValue(RFC_KEY), RFC_ACCEPT)

    def test_secondVector(self) -> None:
        """
        The second seed vector matches.
        """
        self.assertEqual(acceptValue(OTHER_KEY), OTHER_ACCEPT)

    def test_bytesKey(self) -> None:
        """
        A key given as bytes gives the same value.
        """
        self.assertEqual(acceptValue(RFC_KEY.encode("ascii")), RFC_ACCEPT)

    def test_plainSHA1WithGUID(self) -> None:
        """
        The value is base64(SHA-1(key + GUID)) with the GUID of section 1.3.
        """
        self.assertEqual(WEBSOCKET_GUID, b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
        key = "AAAAAAAAAAAAAAAAAAAAAA=="
        expected = base64.b64encode(hashlib.sha1(key.encode() + WEBSOCKET_GUID).digest())
        self.assertEqual(acceptValue(key), expected.decode())


class ParseRequestHeadTests(TestCase):
    """
    Reading the client's opening handshake as an HTTP/1.1 request head
    (RFC 6455 section 4.2.1; message syntax from RFC 9112 sections 2-5).
    """

    def test_controlCharacterInHeaderLine(self) -> None:
        """
        A control character in a header value is refused with 400.
        """
        data = _request(extra=[("X-Thing", "a\x01b")])
        with self.assertRaises(HandshakeError) as caught:
            parseRequestHead(data)
        self.assertEqual(
            (caught.exception.status, caught.exception.reason),
            (400, "control character in a header value"),
        )

    def test_requestRepr(self) -> None:
        """
        A validated request describes itself by path and peer.
        """
        parsed = parseRequestHead(_request())
        assert parsed is not None
        request = validateUpgradeRequest(parsed[0], "tcp4:10.0.0.1:5000")
        self.assertEqual(repr(request), "<ConnectionRequest '/chat' from tcp4:10.0.0.1:5000>")

    def test_complete(self) -> None:
        """
        A complete head parses into method, target, version and lower-cased
        headers in order; C{consumed} ends after the blank line.
        """
        data = _request(extra=[("X-Thing", "a"), ("x-thing", "b")])
        parsed = parseRequestHead(data + b"\x81\x85extra")
        assert parsed is not None
        head, consumed = parsed
        self.assertEqual(consumed, len(data))
        self.assertEqual((head.method, head.target, head.version), ("GET", "/chat", (1, 1)))
        self.assertEqual(
            head.rawHeaders,
            [(n.lower(), v) for n, v in BASE_HEADERS] + [("x-thing", "a"), ("x-thing", "b")],
        )
        self.assertEqual(head.getAll("x-thing"), ["a", "b"])
        self.assertEqual(head.getAll("absent"), [])

    def test_incompleteAtEveryPrefix(self) -> None:
        """
        Every proper prefix of a head is incomplete: C{None}, not an error.
        """
        data = _request()
        for i in range(len(data)):
            self.assertIsNone(parseRequestHead(data[:i]), repr(data[:i]))

    def test_valuesTrimmed(self) -> None:
        """
        Spaces and tabs around a value are dropped; inner tabs are kept.
        """
        parsed = parseRequestHead(b"GET / HTTP/1.1\r\nX-A: \t a\tb \t\r\nX-B:c\r\n\r\n")
        assert parsed is not None
        self.assertEqual(parsed[0].rawHeaders, [("x-a", "a\tb"), ("x-b", "c")])

    def test_colonsInValuesAndTarget(self) -> None:
        """
        A value may contain colons (a host with its port), and so may an
        absolute request target; only a header's first colon separates.
        """
        parsed = parseRequestHead(
            b"GET http://example.com:8080/a:b HTTP/1.1\r\nHost: example.com:8080\r\n"
            b"X-Time: 12:30:00\r\nX-Empty:\r\nX-Blank: \t \r\n\r\n"
        )
        assert parsed is not None
        self.assertEqual(parsed[0].target, "http://example.com:8080/a:b")
        self.assertEqual(
            parsed[0].rawHeaders,
            [
                ("host", "example.com:8080"),
                ("x-time", "12:30:00"),
                ("x-empty", ""),
                ("x-blank", ""),
            ],
        )

    def test_commonStringsShared(self) -> None:
        """
        Common header names and values are one string shared by every
        request; what else a peer sends is kept as its own string, never
        interned (interned strings are immortal on CPython 3.12.0-3.12.4 and
        free-threaded builds, so peers could grow them without bound).
        """
        data = _request(extra=[("X-Peer-Chosen-Name", "peer chosen value")])
        first = parseRequestHead(data)
        second = parseRequestHead(data)
        assert first is not None and second is not None
        upgrade1 = [h for h in first[0].rawHeaders if h[0] == "upgrade"]
        upgrade2 = [h for h in second[0].rawHeaders if h[0] == "upgrade"]
        self.assertEqual(len(upgrade1), 1)
        self.assertIs(upgrade1[0][0], upgrade2[0][0])
        self.assertIs(upgrade1[0][1], upgrade2[0][1])
        name, value = first[0].rawHeaders[-1]
        self.assertEqual((name, value), ("x-peer-chosen-name", "peer chosen value"))
        self.assertIsNot(name, second[0].rawHeaders[-1][0])
        self.assertEqual(sharedHeader("X-Other", "v"), ("x-other", "v"))
        self.assertIs(sharedHeader("Upgrade", "websocket")[0], sharedHeader("UPGRADE", "x")[0])

    @settings(max_examples=300)
    @given(
        st.lists(
            st.tuples(
                st.text("!#$%&'*+-.^_`|~0123456789AZaz", min_size=1, max_size=8),
                st.text(" \t:aZ0~\x80\xff", max_size=12),
            ),
            max_size=6,
        )
    )
    def test_agreesWithLineByLine(self, headers: list[tuple[str, str]]) -> None:
        """
        Any valid header block parses to what a line-by-line reading gives:
        the lower-cased name, and the value without surrounding spaces and
        tabs.
        """
        block = "".join(f"{name}:{value}\r\n" for name, value in headers)
        parsed = parseRequestHead(b"GET / HTTP/1.1\r\n" + block.encode("iso-8859-1") + b"\r\n")
        assert parsed is not None
        self.assertEqual(
            parsed[0].rawHeaders, [(name.lower(), value.strip(" \t")) for name, value in headers]
        )

    def test_tooLargeWhileIncomplete(self) -> None:
        """
        A head that reaches C{maxSize} without its blank line is refused
        with 431 at once, without waiting for the rest.
        """
        data = b"GET / HTTP/1.1\r\nX-Filler: " + b"a" * 200
        error = self.assertRaises(HandshakeError, parseRequestHead, data, 100)
        self.assertEqual(error.status, 431)
        error = self.assertRaises(HandshakeError, parseRequestHead, data[:100], 100)
        self.assertEqual(error.status, 431)
        self.assertIsNone(parseRequestHead(data[:99], 100))

    def test_tooLargeComplete(self) -> None:
        """
        A complete head longer than C{maxSize} is refused with 431; one of
        exactly C{maxSize} bytes (blank line included) is accepted.
        """
        data = _request()
        self.assertIsNotNone(parseRequestHead(data, len(data)))
        error = self.assertRaises(HandshakeError, parseRequestHead, data, len(data) - 1)
        self.assertEqual(error.status, 431)

    def test_tooLargeDefault(self) -> None:
        """
        The default limit is 16 KiB.
        """
        filler = ("X-Filler", "a" * 16384)
        error = self.assertRaises(HandshakeError, parseRequestHead, _request(extra=[filler]))
        self.assertEqual(error.status, 431)
        self.assertIsNotNone(parseRequestHead(_request(extra=[("X-Filler", "a" * 16000)])))

    def _assertBadRequest(self, data: bytes) -> None:
        """
        Assert that C{data} is refused with 400.

        @param data: a complete request head.
        """
        error = self.assertRaises(HandshakeError, parseRequestHead, data)
        self.assertEqual(error.status, 400, repr(data))

    def test_malformedRequestLine(self) -> None:
        """
        A request line that is not C{method SP target SP HTTP/x.y} is 400.
        """
        for line in (
            b"",
            b"GET /chat",
            b"GET /chat HTTP/1.1 extra",
            b"GET  /chat HTTP/1.1",
            b"GET /chat  HTTP/1.1",
            b"GET /chat http/1.1",
            b"GET /chat HTTP/11",
            b"GET /chat HTTP/1.1 ",
            b" GET /chat HTTP/1.1",
            b"G(T /chat HTTP/1.1",
            b"GET /chat\tHTTP/1.1",
        ):
            self._assertBadRequest(line + b"\r\nHost: x\r\n\r\n")

    def test_controlCharacterInTarget(self) -> None:
        """
        Control characters in the request target are refused with 400
        (RFC 9112 section 3.2: a target is visible characters only).
        """
        for target in (b"/a\x00b", b"/a\x01b", b"/a\x7fb", b"/\x1b[31m"):
            self._assertBadRequest(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")

    def test_malformedHeaderLine(self) -> None:
        """
        A header line without a colon or with a name that is not a token
        (including whitespace before the colon) is 400.
        """
        for line in (b"NoColon", b": value", b"Bad Name: x", b"Host : x", b"X(y): z", b"\xe9: x"):
            self._assertBadRequest(b"GET / HTTP/1.1\r\n" + line + b"\r\n\r\n")

    def test_obsoleteLineFolding(self) -> None:
        """
        A continuation line (obs-fold) is 400 (RFC 9112 section 5.2).
        """
        for fold in (b" folded", b"\tfolded"):
            self._assertBadRequest(b"GET / HTTP/1.1\r\nX-A: a\r\n" + fold + b"\r\n\r\n")

    def test_controlCharacterInValue(self) -> None:
        """
        Control characters other than tab in a value, bare CR or LF
        included, are 400.
        """
        for value in (b"a\x00b", b"a\x1bb", b"a\x7fb", b"a\rb", b"a\nb", b"a\x08b"):
            self._assertBadRequest(b"GET / HTTP/1.1\r\nX-A: " + value + b"\r\n\r\n")


class ValidateUpgradeRequestTests(TestCase):
    """
    The server's checks of the client's opening handshake (RFC 6455
    section 4.2.1) and the information it extracts (section 4.2.2).
    """

    def _assertRefused(
        self, data: bytes, status: int, headers: Optional[list[tuple[str, str]]] = None
    ) -> HandshakeError:
        """
        Assert that a request is refused with C{status}.

        @param data: the complete request.
        @param status: the expected HTTP status.
        @param headers: the expected extra response headers, if checked.
        @return: the error.
        """
        parsed = parseRequestHead(data)
        assert parsed is not None
        error = self.assertRaises(HandshakeError, validateUpgradeRequest, parsed[0])
        assert isinstance(error, HandshakeError)
        self.assertEqual(error.status, status, repr(data))
        if headers is not None:
            self.assertEqual(error.headers, headers, repr(data))
        return error

    def test_rfcExample(self) -> None:
        """
        The section 1.2 example is accepted and its details exposed.
        """
        request = _validate(
            _request(
                extra=[
                    ("Origin", "http://example.com"),
                    ("Sec-WebSocket-Protocol", "chat, superchat"),
                ]
            ),
            "tcp4:127.0.0.1:5555",
        )
        self.assertEqual(request.peer, "tcp4:127.0.0.1:5555")
        self.assertEqual(request.host, "server.example.com")
        self.assertEqual(request.path, "/chat")
        self.assertEqual(request.params, {})
        self.assertEqual(request.version, 13)
        self.assertEqual(request.origin, "http://example.com")
        self.assertEqual(request.protocols, ["chat", "superchat"])
        self.assertEqual(request.extensions, [])
        self.assertEqual(request.key, RFC_KEY)
        self.assertEqual(request.headers["sec-websocket-protocol"], "chat, superchat")
        self.assertEqual(request.rawHeaders[0], ("host", "server.example.com"))

    def test_methodNotGet(self) -> None:
        """
        A method other than C{GET} (case-sensitive) is 405 with C{Allow: GET}.
        """
        for method in ("POST", "HEAD", "PUT", "get", "CONNECT"):
            self._assertRefused(_request(method=method), 405, [("Allow", "GET")])

    def test_http10(self) -> None:
        """
        HTTP/1.0 is refused with 400: the handshake requires HTTP/1.1.
        """
        self._assertRefused(_request(version="HTTP/1.0"), 400)
        self._assertRefused(_request(version="HTTP/0.9"), 400)

    def test_missingUpgrade(self) -> None:
        """
        Without C{Upgrade: websocket} the answer is 426 naming the upgrade.
        """
        expected = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        self._assertRefused(_request(drop=["Upgrade"]), 426, expected)
        self._assertRefused(_request(replace=[("Upgrade", "h2c")]), 426, expected)
        self._assertRefused(_request(replace=[("Upgrade", "websockets")]), 426, expected)

    def test_missingConnectionUpgrade(self) -> None:
        """
        Without the C{upgrade} token in C{Connection} the answer is 426.
        """
        expected = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
        self._assertRefused(_request(drop=["Connection"]), 426, expected)
        self._assertRefused(_request(replace=[("Connection", "keep-alive")]), 426, expected)
        self._assertRefused(_request(replace=[("Connection", "keep-alive upgrade")]), 426)

    def test_upgradeTokensCaseInsensitive(self) -> None:
        """
        C{Upgrade} and C{Connection} are token lists compared without case:
        C{keep-alive, Upgrade}, C{UPGRADE} and C{WebSocket} all qualify.
        """
        for connection in ("keep-alive, Upgrade", "UPGRADE", "upgrade", "Upgrade,keep-alive"):
            for upgrade in ("websocket", "WebSocket", "h2c, websocket"):
                replace = [("Connection", connection), ("Upgrade", upgrade)]
                self.assertEqual(_validate(_request(replace=replace)).path, "/chat")

    def test_connectionOverSeveralHeaders(self) -> None:
        """
        The C{upgrade} token may come in a second C{Connection} header.
        """
        data = _request(replace=[("Connection", "keep-alive")], extra=[("Connection", "Upgrade")])
        self.assertEqual(_validate(data).headers["connection"], "keep-alive, Upgrade")

    def test_versionMissingOrWrong(self) -> None:
        """
        A missing or different C{Sec-WebSocket-Version} is 426 with
        C{Sec-WebSocket-Version: 13} (section 4.4).
        """
        expected = [("Sec-WebSocket-Version", "13")]
        self._assertRefused(_request(drop=["Sec-WebSocket-Version"]), 426, expected)
        for version in ("8", "12", "14", "", "13, 8", "013"):
            replace = [("Sec-WebSocket-Version", version)]
            self._assertRefused(_request(replace=replace), 426, expected)
        self._assertRefused(_request(extra=[("Sec-WebSocket-Version", "8")]), 426, expected)

    def test_host(self) -> None:
        """
        A missing or repeated C{Host} is 400.
        """
        self._assertRefused(_request(drop=["Host"]), 400)
        self._assertRefused(_request(extra=[("Host", "other.example.com")]), 400)

    def test_keyMissingOrRepeated(self) -> None:
        """
        A missing or repeated C{Sec-WebSocket-Key} is 400.
        """
        self._assertRefused(_request(drop=["Sec-WebSocket-Key"]), 400)
        self._assertRefused(_request(extra=[("Sec-WebSocket-Key", OTHER_KEY)]), 400)

    def test_keyNotSixteenBytes(self) -> None:
        """
        A key that is not base64 of exactly 16 bytes is 400.
        """
        for key in (
            "",
            "not base64 at all!",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZQ=!",
            base64.b64encode(b"x" * 15).decode(),
            base64.b64encode(b"x" * 17).decode(),
            "dGhlIHNhbXBsZSBub25jZQ\u00e9=",
        ):
            self._assertRefused(_request(replace=[("Sec-WebSocket-Key", key)]), 400)

    def test_otherKeyAccepted(self) -> None:
        """
        Any base64 16-byte key is accepted and returned as sent.
        """
        request = _validate(_request(replace=[("Sec-WebSocket-Key", OTHER_KEY)]))
        self.assertEqual(request.key, OTHER_KEY)

    def test_absoluteFormTarget(self) -> None:
        """
        An absolute-form target gives its path and query (RFC 9112
        section 3.2.2); an empty path is C{/}.
        """
        for target, path, params in [
            ("ws://server.example.com/chat?room=1", "/chat", {"room": ["1"]}),
            ("http://server.example.com:8080/a/b", "/a/b", {}),
            ("wss://server.example.com", "/", {}),
            ("HTTPS://server.example.com?x=y", "/", {"x": ["y"]}),
        ]:
            request = _validate(_request(target=target))
            self.assertEqual((request.path, request.params), (path, params), target)

    def test_malformedTarget(self) -> None:
        """
        A target that is neither origin-form nor an absolute URL is 400.
        """
        for target in ("*", "chat", "ftp://server.example.com/chat", "http:///chat"):
            self._assertRefused(_request(target=target), 400)

    def test_malformedAbsoluteTarget(self) -> None:
        """
        An absolute-form target with a malformed authority (an unclosed or
        invalid IPv6 literal) is 400, not an unexpected exception.
        """
        for target in ("http://[::1/chat", "http://[nonsense]/chat", "ws://[/"):
            self._assertRefused(_request(target=target), 400)

    def test_queryParameters(self) -> None:
        """
        Query parameters map each name to all its values, blank ones kept,
        percent-escapes decoded.
        """
        request = _validate(_request(target="/chat?a=1&b=2&a=3&empty=&flag&s=%20x+y"))
        self.assertEqual(request.path, "/chat")
        self.assertEqual(
            request.params,
            {"a": ["1", "3"], "b": ["2"], "empty": [""], "flag": [""], "s": [" x y"]},
        )

    def test_protocols(self) -> None:
        """
        Offered subprotocols are collected from every header, in order,
        skipping empty items.
        """
        extra = [("Sec-WebSocket-Protocol", "chat, superchat,,"), ("Sec-WebSocket-Protocol", "v2")]
        self.assertEqual(_validate(_request(extra=extra)).protocols, ["chat", "superchat", "v2"])
        self.assertEqual(_validate(_request()).protocols, [])

    def test_malformedProtocols(self) -> None:
        """
        A subprotocol that is not a token is 400.
        """
        for value in ("chat superchat", "chat, a/b", '"chat"'):
            self._assertRefused(_request(extra=[("Sec-WebSocket-Protocol", value)]), 400)

    def test_extensions(self) -> None:
        """
        Offered extensions are parsed into names and parameters (section
        9.1), quoted values unquoted, value-less parameters C{None}.
        """
        extra = [
            ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits, x-a"),
            ("Sec-WebSocket-Extensions", 'x-b; p=1; q="two"'),
        ]
        self.assertEqual(
            _validate(_request(extra=extra)).extensions,
            [
                ("permessage-deflate", {"client_max_window_bits": None}),
                ("x-a", {}),
                ("x-b", {"p": "1", "q": "two"}),
            ],
        )

    def test_malformedExtensions(self) -> None:
        """
        An extension offer whose name or parameter is not a token is 400.
        """
        for value in ("bad name", "x; bad param=1", "x; =1", "(x)"):
            self._assertRefused(_request(extra=[("Sec-WebSocket-Extensions", value)]), 400)

    def test_origin(self) -> None:
        """
        C{Origin} is exposed when sent, C{None} otherwise, and refused when
        repeated.
        """
        self.assertIsNone(_validate(_request()).origin)
        request = _validate(_request(extra=[("Origin", "https://app.example.com")]))
        self.assertEqual(request.origin, "https://app.example.com")
        self._assertRefused(_request(extra=[("Origin", "https://a"), ("Origin", "https://b")]), 400)

    def test_repeatedHeadersJoined(self) -> None:
        """
        C{headers} joins repeated headers with a comma; C{rawHeaders}
        keeps them apart.
        """
        request = _validate(_request(extra=[("X-Tag", "a"), ("X-Tag", "b")]))
        self.assertEqual(request.headers["x-tag"], "a, b")
        self.assertEqual([v for n, v in request.rawHeaders if n == "x-tag"], ["a", "b"])

    def test_headerNamesCaseInsensitive(self) -> None:
        """
        Header names match whatever their case.
        """
        data = (
            b"GET /chat HTTP/1.1\r\nHOST: h\r\nupgrade: websocket\r\nCONNECTION: upgrade\r\n"
            b"sec-websocket-key: " + RFC_KEY.encode() + b"\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n"
        )
        self.assertEqual(_validate(data).host, "h")

    def test_errorIsValidResponse(self) -> None:
        """
        A refusal becomes an error response carrying the status and the
        error's headers, and no accept value.
        """
        error = self._assertRefused(_request(drop=["Sec-WebSocket-Version"]), 426)
        response = buildErrorResponse(error.status, error.reason, error.headers)
        self.assertTrue(response.startswith(b"HTTP/1.1 426 Upgrade Required\r\n"))
        self.assertIn("sec-websocket-version: 13", _headerLines(response))
        self.assertNotIn(b"Sec-WebSocket-Accept", response)


class HeaderTokenTests(TestCase):
    """
    Comma-separated header lists (RFC 9110 section 5.6.1) and the
    extension grammar (RFC 6455 section 9.1).
    """

    def test_headerTokens(self) -> None:
        """
        Values are split on commas and trimmed; empty items vanish.
        """
        self.assertEqual(headerTokens(["a, b", " ,c ,", ""]), ["a", "b", "c"])

    def test_parseExtensionsEmpty(self) -> None:
        """
        No header means no offers.
        """
        self.assertEqual(parseExtensions([]), [])

    def test_parseExtensionsInvalid(self) -> None:
        """
        A non-token name raises L{ValueError}.
        """
        self.assertRaises(ValueError, parseExtensions, ["a b"])
        self.assertRaises(ValueError, parseExtensions, ["a; b c=1"])


class BuildAcceptResponseTests(TestCase):
    """
    The server's C{101} answer (RFC 6455 section 4.2.2, item 5).
    """

    def test_rfcExample(self) -> None:
        """
        The answer to the RFC's key is byte for byte the RFC's response.
        """
        self.assertEqual(
            buildAcceptResponse(RFC_KEY),
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            b"\r\n",
        )

    def test_protocol(self) -> None:
        """
        A chosen subprotocol is announced after the accept value.
        """
        self.assertEqual(
            buildAcceptResponse(OTHER_KEY, "chat"),
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n"
            b"Sec-WebSocket-Protocol: chat\r\n"
            b"\r\n",
        )

    def test_extraHeaders(self) -> None:
        """
        Extra headers follow in the order given.
        """
        response = buildAcceptResponse(RFC_KEY, None, [("Set-Cookie", "a=b"), ("X-Y", "z")])
        self.assertTrue(response.endswith(b"Set-Cookie: a=b\r\nX-Y: z\r\n\r\n"))
        self.assertNotIn(b"Sec-WebSocket-Protocol", response)

    def test_refusesHeaderInjection(self) -> None:
        """
        A header name that is not a token or a value with CR, LF or another
        control character raises L{ValueError}.
        """
        for headers in (
            [("X-A", "b\r\nSet-Cookie: evil=1")],
            [("X-A", "b\nc")],
            [("X-A", "b\x00")],
            [("X A", "b")],
            [("X-A:", "b")],
            [("X-A\r\nEvil", "b")],
            [("", "b")],
        ):
            self.assertRaises(ValueError, buildAcceptResponse, RFC_KEY, None, headers)
        self.assertRaises(ValueError, buildAcceptResponse, RFC_KEY, "chat\r\nEvil: 1")

    def test_clientAcceptsIt(self) -> None:
        """
        The client's own checks accept the server's answer.
        """
        self.assertEqual(
            _checkResponse(buildAcceptResponse(RFC_KEY, "chat"), RFC_KEY, ["chat"]), "chat"
        )


class BuildErrorResponseTests(TestCase):
    """
    Refusing a handshake (RFC 6455 section 4.2.1: "an HTTP response that
    has an appropriate error code"; section 4.4 for version mismatches).
    """

    def test_seedExample(self) -> None:
        """
        A 400 carries the status line, a C{text/plain} body, its exact
        length and C{Connection: close}.
        """
        self.assertEqual(
            buildErrorResponse(400, "WebSocket not supported on this endpoint"),
            b"HTTP/1.1 400 Bad Request\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 41\r\n"
            b"Connection: close\r\n"
            b"\r\n"
            b"WebSocket not supported on this endpoint\n",
        )

    def test_contentLengthCountsBytes(self) -> None:
        """
        C{Content-Length} counts the UTF-8 bytes of the body.
        """
        for reason in ("", "x", "r\u00e9sum\u00e9 \u20ac", "a\r\nb"):
            response = buildErrorResponse(403, reason)
            _, body = response.split(b"\r\n\r\n", 1)
            self.assertIn(f"content-length: {len(body)}", _headerLines(response))
            self.assertEqual(body, (reason + "\n").encode("utf-8"))

    def test_statusLines(self) -> None:
        """
        Known statuses get their reason phrase, others a generic one.
        """
        for status, line in [
            (400, b"HTTP/1.1 400 Bad Request\r\n"),
            (403, b"HTTP/1.1 403 Forbidden\r\n"),
            (405, b"HTTP/1.1 405 Method Not Allowed\r\n"),
            (426, b"HTTP/1.1 426 Upgrade Required\r\n"),
            (431, b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            (418, b"HTTP/1.1 418 Error\r\n"),
        ]:
            self.assertTrue(buildErrorResponse(status, "no").startswith(line), line)

    def test_extraHeaders(self) -> None:
        """
        Extra headers appear in the head.
        """
        response = buildErrorResponse(405, "no", [("Allow", "GET")])
        self.assertIn("allow: get", _headerLines(response))
        self.assertIn("connection: close", _headerLines(response))

    def test_neverAccept(self) -> None:
        """
        No refusal carries C{Sec-WebSocket-Accept} or C{Upgrade}.
        """
        for status in (400, 403, 405, 426, 431, 500):
            response = buildErrorResponse(status, "no")
            self.assertFalse(
                any(
                    line.startswith(("sec-websocket-accept", "upgrade:"))
                    for line in _headerLines(response)
                )
            )

    def test_refusesHeaderInjection(self) -> None:
        """
        Extra headers are checked like the accept response's.
        """
        self.assertRaises(ValueError, buildErrorResponse, 400, "no", [("X", "a\r\nY: b")])
        self.assertRaises(ValueError, buildErrorResponse, 400, "no", [("X Y", "a")])

    def test_clientSeesRefusal(self) -> None:
        """
        A client parsing a refusal gets a L{ResponseError} with its status.
        """
        error = self.assertRaises(ResponseError, _checkResponse, buildErrorResponse(403, "go away"))
        self.assertEqual(error.status, 403)


class ParseWebSocketURLTests(TestCase):
    """
    WebSocket URIs (RFC 6455 section 3).
    """

    def test_defaults(self) -> None:
        """
        C{ws} defaults to port 80 and C{wss} to 443; an empty path is C{/}.
        """
        self.assertEqual(parseWebSocketURL("ws://example.com"), (False, "example.com", 80, "/"))
        self.assertEqual(parseWebSocketURL("wss://example.com/"), (True, "example.com", 443, "/"))

    def test_explicitPorts(self) -> None:
        """
        An explicit port is used, even one that is the other scheme's default.
        """
        self.assertEqual(
            parseWebSocketURL("ws://example.com:9000/"), (False, "example.com", 9000, "/")
        )
        self.assertEqual(
            parseWebSocketURL("ws://example.com:443/"), (False, "example.com", 443, "/")
        )
        self.assertEqual(parseWebSocketURL("wss://example.com:80/"), (True, "example.com", 80, "/"))

    def test_ipv6(self) -> None:
        """
        An IPv6 literal is returned without its brackets.
        """
        self.assertEqual(parseWebSocketURL("ws://[::1]/"), (False, "::1", 80, "/"))
        self.assertEqual(parseWebSocketURL("wss://[::1]:8443/x"), (True, "::1", 8443, "/x"))

    def test_badBracketedHost(self) -> None:
        """
        A bracketed host that is not an IPv6 address is a C{ValueError} on
        every Python version (3.10's C{urlsplit} lets it through).
        """
        for url in ("ws://[nonsense]/", "ws://[127.0.0.1]:80/", "wss://[::1/"):
            self.assertRaises(ValueError, parseWebSocketURL, url)

    def test_pathAndQuery(self) -> None:
        """
        The resource is the path and the query together.
        """
        self.assertEqual(
            parseWebSocketURL("wss://example.com/chat/room?id=1&x=%20"),
            (True, "example.com", 443, "/chat/room?id=1&x=%20"),
        )
        self.assertEqual(
            parseWebSocketURL("ws://example.com?x=1"), (False, "example.com", 80, "/?x=1")
        )

    def test_schemeCaseInsensitive(self) -> None:
        """
        The scheme is case-insensitive.
        """
        self.assertEqual(parseWebSocketURL("WSS://example.com/")[:3], (True, "example.com", 443))

    def test_refused(self) -> None:
        """
        Other schemes, fragments (section 3: "Fragment identifiers ... MUST
        NOT be used"), missing hosts and bad ports raise L{ValueError}.
        """
        for url in (
            "http://example.com/",
            "https://example.com/",
            "example.com/chat",
            "ws://example.com/chat#frag",
            "ws://example.com/#",
            "ws:///chat",
            "ws://example.com:99999/",
            "ws://example.com:port/",
            "ws://[::1/",
        ):
            self.assertRaises(ValueError, parseWebSocketURL, url)


class BuildClientRequestTests(TestCase):
    """
    The client's opening handshake (RFC 6455 section 4.1).
    """

    def test_rfcExample(self) -> None:
        """
        The section 1.2 example request, byte for byte (our header order).
        """
        self.assertEqual(
            buildClientRequest(
                "server.example.com",
                80,
                "/chat",
                RFC_KEY,
                origin="http://example.com",
                protocols=["chat", "superchat"],
            ),
            b"GET /chat HTTP/1.1\r\n"
            b"Host: server.example.com\r\n"
            b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n"
            b"Origin: http://example.com\r\n"
            b"Sec-WebSocket-Protocol: chat, superchat\r\n"
            b"\r\n",
        )

    def _host(self, host: str, port: int, isSecure: bool) -> str:
        """
        Build a request and read back its C{Host} header.

        @param host: the server's host.
        @param port: the server's port.
        @param isSecure: whether the URL is C{wss}.
        @return: the C{Host} value sent.
        """
        request = buildClientRequest(host, port, "/", RFC_KEY, isSecure=isSecure)
        parsed = parseRequestHead(request)
        assert parsed is not None
        return parsed[0].getAll("host")[0]

    def test_hostPort(self) -> None:
        """
        C{Host} omits the scheme's default port and includes any other
        (section 4.1, item 4).
        """
        self.assertEqual(self._host("example.com", 80, False), "example.com")
        self.assertEqual(self._host("example.com", 443, True), "example.com")
        self.assertEqual(self._host("example.com", 443, False), "example.com:443")
        self.assertEqual(self._host("example.com", 80, True), "example.com:80")
        self.assertEqual(self._host("example.com", 9000, False), "example.com:9000")

    def test_hostIPv6(self) -> None:
        """
        An IPv6 address is bracketed in C{Host}.
        """
        self.assertEqual(self._host("::1", 80, False), "[::1]")
        self.assertEqual(self._host("::1", 8080, False), "[::1]:8080")
        self.assertEqual(self._host("fe80::1", 443, True), "[fe80::1]")

    def test_optionalHeaders(self) -> None:
        """
        Origin, User-Agent and extra headers are sent only when given.
        """
        plain = buildClientRequest("h", 80, "/", RFC_KEY)
        for name in (b"Origin", b"User-Agent", b"Sec-WebSocket-Protocol"):
            self.assertNotIn(name, plain)
        full = buildClientRequest(
            "h", 80, "/", RFC_KEY, origin="https://o", useragent="txws/1", headers=[("X-A", "b")]
        )
        lines = _headerLines(full)
        for line in ("origin: https://o", "user-agent: txws/1", "x-a: b"):
            self.assertIn(line, lines)

    def test_serverAcceptsIt(self) -> None:
        """
        The server's parser accepts the request and sees what was sent.
        """
        request = _validate(
            buildClientRequest(
                "::1",
                9000,
                "/chat?room=a&room=b",
                OTHER_KEY,
                origin="https://app",
                protocols=["v1.chat", "v2"],
            )
        )
        self.assertEqual(
            (request.host, request.path, request.params, request.protocols, request.origin),
            ("[::1]:9000", "/chat", {"room": ["a", "b"]}, ["v1.chat", "v2"], "https://app"),
        )
        self.assertEqual(request.key, OTHER_KEY)

    def test_refusesInvalidSubprotocols(self) -> None:
        """
        A subprotocol that is not a token raises L{ValueError}.
        """
        for protocol in ("", "a b", "a,b", "chat\r\nX: y", "a/b", "\u00e9"):
            self.assertRaises(
                ValueError, buildClientRequest, "h", 80, "/", RFC_KEY, protocols=[protocol]
            )

    def test_refusesInjection(self) -> None:
        """
        CR, LF or control characters in the resource, origin, user agent or
        extra headers raise L{ValueError}.
        """
        for kwargs in (
            {"resource": "/a b"},
            {"resource": "/a\r\nX: y"},
            {"origin": "https://o\r\nX: y"},
            {"useragent": "ua\r\nX: y"},
            {"headers": [("X-A", "b\nc")]},
        ):
            arguments: dict[str, object] = {"resource": "/", **kwargs}
            self.assertRaises(ValueError, buildClientRequest, "h", 80, key=RFC_KEY, **arguments)

    def test_refusesHostInjection(self) -> None:
        """
        A host containing CR, LF, a space or another character not allowed
        in C{Host} raises L{ValueError} rather than splitting the head.
        """
        for host in ("evil.example\r\nX-Injected: 1", "a b", "h\x00", "h/path"):
            self.assertRaises(ValueError, buildClientRequest, host, 80, "/", RFC_KEY)


class ParseResponseHeadTests(TestCase):
    """
    Reading the server's answer (RFC 6455 section 4.1, "the client MUST
    validate the server's response").
    """

    def test_complete(self) -> None:
        """
        A complete answer gives its status, lower-cased headers and the
        length of the head, leaving following frame bytes alone.
        """
        data = _response()
        parsed = parseResponseHead(data + b"\x81\x05Hello")
        self.assertEqual(
            parsed,
            (
                101,
                [
                    ("upgrade", "websocket"),
                    ("connection", "Upgrade"),
                    ("sec-websocket-accept", RFC_ACCEPT),
                ],
                len(data),
            ),
        )

    def test_incomplete(self) -> None:
        """
        Every proper prefix of an answer is C{None}.
        """
        data = _response()
        for i in range(len(data)):
            self.assertIsNone(parseResponseHead(data[:i]))

    def test_noReasonPhrase(self) -> None:
        """
        A status line without a reason phrase is accepted.
        """
        parsed = parseResponseHead(b"HTTP/1.1 101\r\n\r\n")
        self.assertEqual(parsed, (101, [], 16))

    def test_malformed(self) -> None:
        """
        A malformed status or header line raises L{ResponseError}.
        """
        for data in (
            b"HTTP/2 101 Switching Protocols\r\n\r\n",
            b"HTTP/1.1 1010 Nope\r\n\r\n",
            b"ICY 200 OK\r\n\r\n",
            b"HTTP/1.1 101 OK\r\nNoColon\r\n\r\n",
            b"HTTP/1.1 101 OK\r\nX: a\x00b\r\n\r\n",
            b"HTTP/1.1 101 OK\r\n folded\r\n\r\n",
        ):
            error = self.assertRaises(ResponseError, parseResponseHead, data)
            self.assertEqual(error.status, 0, repr(data))

    def test_tooLarge(self) -> None:
        """
        An answer larger than C{maxSize}, complete or not, raises
        L{ResponseError}.
        """
        data = _response(extra=[("X-Filler", "a" * 200)])
        self.assertRaises(ResponseError, parseResponseHead, data, 100)
        self.assertRaises(ResponseError, parseResponseHead, data[:150], 100)


class ValidateUpgradeResponseTests(TestCase):
    """
    The client's checks of the server's answer (RFC 6455 section 4.1,
    the numbered list after "The client MUST validate").
    """

    def _assertRefused(
        self, data: bytes, status: int = 101, key: str = RFC_KEY, protocols: Sequence[str] = ()
    ) -> ResponseError:
        """
        Assert that the answer is refused.

        @param data: the response.
        @param status: the status the error must carry.
        @param key: the key the client sent.
        @param protocols: the subprotocols the client offered.
        @return: the error.
        """
        error = self.assertRaises(ResponseError, _checkResponse, data, key, protocols)
        assert isinstance(error, ResponseError)
        self.assertEqual(error.status, status, repr(data))
        return error

    def test_valid(self) -> None:
        """
        A correct answer is accepted with no subprotocol and its headers.
        """
        parsed = parseResponseHead(_response(extra=[("X-A", "1"), ("X-A", "2")]))
        assert parsed is not None
        protocol, headers = validateUpgradeResponse(parsed[0], parsed[1], RFC_KEY)
        self.assertIsNone(protocol)
        self.assertEqual(headers["sec-websocket-accept"], RFC_ACCEPT)
        self.assertEqual(headers["x-a"], "1, 2")

    def test_notSwitchingProtocols(self) -> None:
        """
        Any status but 101 is a refusal carrying that status (item 1).
        """
        for status in ("200 OK", "302 Found", "400 Bad Request", "403 Forbidden", "426 Nope"):
            error = self._assertRefused(_response(status), int(status[:3]))
            self.assertIn(status[:3], str(error))

    def test_missingUpgrade(self) -> None:
        """
        An answer without C{Upgrade: websocket} is refused (item 2).
        """
        self._assertRefused(_response(drop=["Upgrade"]))
        self._assertRefused(_response(drop=["Upgrade"], extra=[("Upgrade", "h2c")]))

    def test_missingConnection(self) -> None:
        """
        An answer without the C{Upgrade} token in C{Connection} is refused
        (item 3).
        """
        self._assertRefused(_response(drop=["Connection"]))
        self._assertRefused(_response(drop=["Connection"], extra=[("Connection", "close")]))

    def test_tokensCaseInsensitive(self) -> None:
        """
        C{Upgrade} and C{Connection} are matched without case.
        """
        data = _response(
            drop=["Upgrade", "Connection"],
            extra=[("UPGRADE", "WebSocket"), ("connection", "keep-alive, UPGRADE")],
        )
        self.assertIsNone(_checkResponse(data))

    def test_wrongAccept(self) -> None:
        """
        A wrong, missing or repeated C{Sec-WebSocket-Accept} is refused
        (item 4), including the seed article's C{InvalidHashValue==}.
        """
        self._assertRefused(_response(accept="InvalidHashValue=="))
        self._assertRefused(_response(accept=OTHER_ACCEPT))
        self._assertRefused(_response(accept=RFC_ACCEPT.lower()))
        self._assertRefused(_response(accept=""))
        self._assertRefused(_response(drop=["Sec-WebSocket-Accept"]))
        self._assertRefused(_response(extra=[("Sec-WebSocket-Accept", RFC_ACCEPT)]))
        self._assertRefused(_response(), key=OTHER_KEY)

    def test_acceptForOtherKey(self) -> None:
        """
        The second seed vector validates against its own key.
        """
        self.assertIsNone(_checkResponse(_response(accept=OTHER_ACCEPT), OTHER_KEY))

    def test_extensionNotOffered(self) -> None:
        """
        An extension in the answer was not offered, so it is refused (item 5).
        """
        extra = [("Sec-WebSocket-Extensions", "permessage-deflate")]
        self._assertRefused(_response(extra=extra))

    def test_subprotocolChosen(self) -> None:
        """
        A subprotocol among those offered is returned (item 6).
        """
        extra = [("Sec-WebSocket-Protocol", "superchat")]
        self.assertEqual(
            _checkResponse(_response(extra=extra), protocols=["chat", "superchat"]), "superchat"
        )

    def test_subprotocolNotOffered(self) -> None:
        """
        A subprotocol that was not offered is refused, also when none was.
        """
        extra = [("Sec-WebSocket-Protocol", "other")]
        self._assertRefused(_response(extra=extra), protocols=["chat"])
        self._assertRefused(_response(extra=extra))
        self._assertRefused(
            _response(extra=[("Sec-WebSocket-Protocol", "CHAT")]), protocols=["chat"]
        )

    def test_severalSubprotocols(self) -> None:
        """
        The server may choose only one subprotocol.
        """
        offered = ["chat", "superchat"]
        self._assertRefused(
            _response(extra=[("Sec-WebSocket-Protocol", "chat, superchat")]), protocols=offered
        )
        self._assertRefused(
            _response(
                extra=[("Sec-WebSocket-Protocol", "chat"), ("Sec-WebSocket-Protocol", "chat")]
            ),
            protocols=offered,
        )

    def test_errorMessage(self) -> None:
        """
        L{ResponseError} renders its status and reason.
        """
        error = ResponseError(403, "forbidden")
        self.assertEqual(str(error), "WebSocket handshake failed (HTTP status 403): forbidden")
        self.assertEqual((error.status, error.reason), (403, "forbidden"))


_LATIN1 = st.characters(min_codepoint=0, max_codepoint=0xFF)

_requestLines = st.builds(
    lambda method, prefix, rest, version: f"{method} {prefix}{rest} {version}",
    st.sampled_from(["GET", "POST", "get", "GET ", "", "G\x00T"]),
    st.sampled_from(["/", "", "http://", "ws://", "https://[", "http://[::1", "*", "//"]),
    st.text(alphabet=_LATIN1, max_size=20),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "HTTP/x"]),
)

_NAMES = [name for name, _ in BASE_HEADERS] + [
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Origin",
]
_VALUES = st.one_of(
    st.sampled_from(["websocket", "Upgrade", "13", RFC_KEY, "a, b; c=1", ";", "=,", ""]),
    st.text(alphabet=_LATIN1, max_size=30),
)


@st.composite
def _headers(draw: st.DrawFn) -> list[tuple[str, str]]:
    """
    Mostly valid handshake headers: each base header kept, dropped,
    repeated or given a random value, then random extra headers, so that
    validation gets past its early checks often.

    @param draw: hypothesis' draw function.
    @return: C{(name, value)} pairs.
    """
    headers: list[tuple[str, str]] = []
    for name, value in BASE_HEADERS:
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "repeat", "random"]))
        if action != "drop":
            headers.append((name, draw(_VALUES) if action == "random" else value))
        if action == "repeat":
            headers.append((name, draw(_VALUES)))
    names = st.one_of(st.sampled_from(_NAMES), st.text(alphabet=_LATIN1, max_size=10))
    headers += draw(st.lists(st.tuples(names, _VALUES), max_size=5))
    return headers


def _assertHandshakeOutcome(case: TestCase, data: bytes, maxSize: int) -> None:
    """
    Assert that parsing and validating C{data} gives C{None}, a request, or
    a L{HandshakeError} with a 4xx status, and nothing else.

    @param case: the test case.
    @param data: the bytes.
    @param maxSize: the head size limit.
    """
    try:
        parsed = parseRequestHead(data, maxSize)
        if parsed is None:
            return
        head, consumed = parsed
        case.assertIsInstance(head, RequestHead)
        case.assertTrue(0 < consumed <= min(len(data), maxSize))
        case.assertIsInstance(validateUpgradeRequest(head), ConnectionRequest)
    except HandshakeError as e:
        case.assertTrue(400 <= e.status < 500, e.status)


class HandshakeFuzzTests(TestCase):
    """
    The server's handshake parser on hostile input (RFC 6455 section 10.1:
    a server must not be confused by what a client sends): it only ever
    waits, accepts, or refuses with a 4xx status.
    """

    @settings(max_examples=500)
    @given(st.binary(max_size=300), st.booleans(), st.sampled_from([16384, 64]))
    def test_randomBytes(self, data: bytes, terminate: bool, maxSize: int) -> None:
        """
        Arbitrary bytes, with or without a blank line, never raise
        anything but a 4xx L{HandshakeError}.
        """
        _assertHandshakeOutcome(self, data + (b"\r\n\r\n" if terminate else b""), maxSize)

    @settings(max_examples=1000)
    @given(_requestLines, _headers(), st.sampled_from([16384, 100]))
    def test_structured(
        self, requestLine: str, headers: list[tuple[str, str]], maxSize: int
    ) -> None:
        """
        Plausible requests with random targets, names and values never
        raise anything but a 4xx L{HandshakeError}.
        """
        text = "\r\n".join([requestLine, *(f"{n}: {v}" for n, v in headers)]) + "\r\n\r\n"
        _assertHandshakeOutcome(self, text.encode("iso-8859-1"), maxSize)

    @settings(max_examples=300)
    @given(st.binary(max_size=200), st.booleans())
    def test_responseRandomBytes(self, data: bytes, terminate: bool) -> None:
        """
        The client's response parser only waits, parses, or raises
        L{ResponseError}.
        """
        try:
            parsed = parseResponseHead(data + (b"\r\n\r\n" if terminate else b""))
            if parsed is not None:
                status, rawHeaders, _ = parsed
                validateUpgradeResponse(status, rawHeaders, RFC_KEY, ["chat"])
        except ResponseError as e:
            self.assertIsInstance(e.status, int)
