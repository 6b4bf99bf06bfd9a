"""
Tests for the hub's HTTP resources (L{txws.hub.resources}) through
L{Hub.resource} in an L{HMACSite}, driven over a L{StringTransport}:
C{POST /publish} signed with either scheme of C{docs/hmac.md}, C{GET
/healthz}, the page, and the root's redirect (C{docs/hub.md}, "Endpoints",
"Publishing", "Health").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources as packageResources
from typing import Any, Optional
from urllib.parse import urljoin

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.test_hub_subscriber import (
    NOW,
    OTHER_SECRET,
    SECRET,
    HubHarness,
    SwitchableBroker,
    messages,
)
from tests.typedtrial import SynchronousTestCase
from txws._version import __version__
from txws.hmacauth import HMACSite, signSeed, signV2
from txws.hub.broker import MemoryBroker

HOST = b"hub.example"


@dataclass
class Response:
    """
    An HTTP response, read whole.
    """

    status: int
    headers: dict[bytes, list[bytes]]
    body: bytes

    def header(self, name: bytes) -> Optional[bytes]:
        values = self.headers.get(name.lower())
        return values[0] if values else None

    def json(self) -> Any:
        assert self.header(b"content-type") == b"application/json", self.headers
        return json.loads(self.body)


def parseResponse(raw: bytes) -> Response:
    """
    Parse one HTTP/1.1 response (with a C{Content-Length}, chunked, or
    ending at the end of C{raw}).

    @param raw: what the server wrote.
    @return: the response.
    """
    head, sep, rest = raw.partition(b"\r\n\r\n")
    assert sep, raw
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if headers.get(b"transfer-encoding") == [b"chunked"]:
        body = b""
        while True:
            size, _, rest = rest.partition(b"\r\n")
            length = int(size, 16)
            if not length:
                break
            body, rest = body + rest[:length], rest[length + 2:]
    elif b"content-length" in headers:
        body = rest[: int(headers[b"content-length"][0])]
    else:
        body = rest
    return Response(status, headers, body)


def send(site: Site, method: bytes, target: bytes, body: bytes = b"",
         headers: Optional[dict[bytes, bytes]] = None,
         host: bytes = HOST) -> tuple[Any, StringTransport]:
    """
    Send one request to C{site} on a new connection.

    @return: the channel and its transport (the answer in it, if any yet).
    """
    channel: Any = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
        peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
    )
    channel.makeConnection(transport)
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host]
    for name, value in (headers or {}).items():
        lines.append(name + b": " + value)
    if body or method == b"POST":
        lines.append(b"Content-Length: %d" % len(body))
    channel.dataReceived(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    return channel, transport


def request(site: Site, method: bytes, target: bytes, body: bytes = b"",
            headers: Optional[dict[bytes, bytes]] = None, host: bytes = HOST) -> Response:
    """
    Send one request and read its answer, which must be complete.
    """
    _, transport = send(site, method, target, body, headers, host)
    return parseResponse(transport.value())


def seedSigned(body: bytes, secret: str = SECRET, timestamp: int = int(NOW)) -> dict[bytes, bytes]:
    """
    @return: the seed scheme's headers for C{body}.
    """
    headers = dict(signSeed(secret.encode(), timestamp, body))
    headers[b"Content-Type"] = b"application/json"
    return headers


_nonces = iter(range(10**9))


def v2Signed(method: bytes, target: bytes, body: bytes, secret: str = SECRET,
             keyId: str = "k1", timestamp: int = int(NOW)) -> dict[bytes, bytes]:
    """
    @return: the v2 scheme's headers for a request (a fresh nonce each time).
    """
    nonce = f"nonce-{next(_nonces):016d}"
    value = signV2(secret.encode(), keyId, method, HOST, target, body, timestamp, nonce)
    return {b"Authorization": value, b"Content-Type": b"application/json"}


def publishBody(channel: object = "news", data: object = None) -> bytes:
    """
    @return: a publish body.
    """
    return json.dumps({"channel": channel, "data": data}).encode()


class PublishHarness(HubHarness):
    """
    A hub harness with its site.
    """

    def __init__(self, case: SynchronousTestCase, **kwargs: Any) -> None:
        super().__init__(case, **kwargs)
        self.site = self.hub.site()
        self.site.reactor = self.clock

    def post(self, body: bytes, scheme: str = "seed", target: bytes = b"/publish") -> Response:
        """
        POST a signed body to C{/publish}.
        """
        headers = seedSigned(body) if scheme == "seed" else v2Signed(b"POST", target, body)
        return request(self.site, b"POST", target, body, headers)


class PublishTests(SynchronousTestCase):
    """
    A signed C{POST /publish} publishes and answers C{channel}, C{seq} and
    C{delivered}.
    """

    def test_seedScheme(self) -> None:
        """
        Signed with the seed scheme: 200, the publication reaches the
        channel's subscribers, C{delivered} counts them.
        """
        harness = PublishHarness(self)
        a = harness.open("channel=news")
        b = harness.open("channel=news&channel=sports")
        harness.open("channel=sports")
        response = harness.post(publishBody("news", {"title": "hello"}))
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json(), {"channel": "news", "seq": 1, "delivered": 2})
        for client in (a, b):
            received = client.received()
            self.assertEqual(messages(received), [("news", 1, {"title": "hello"})])
        self.assertEqual(harness.hub.published, 1)

    def test_v2Scheme(self) -> None:
        """
        Signed with v2: 200; the sequence numbers go on.
        """
        harness = PublishHarness(self)
        client = harness.open("channel=news")
        client.received()
        for seq in (1, 2, 3):
            response = harness.post(publishBody("news", seq), scheme="v2")
            self.assertEqual(response.status, 200)
            self.assertEqual(response.json(), {"channel": "news", "seq": seq, "delivered": 1})
        self.assertEqual([m[1] for m in messages(client.received())], [1, 2, 3])
        self.assertEqual(harness.hub.published, 3)

    def test_noSubscribers(self) -> None:
        """
        Publishing to a channel nobody holds here: delivered 0.
        """
        harness = PublishHarness(self)
        response = harness.post(publishBody("nobody", [1, 2]))
        self.assertEqual(response.json(), {"channel": "nobody", "seq": 1, "delivered": 0})

    def test_answerHeaders(self) -> None:
        """
        The answer is JSON, not to be cached.
        """
        harness = PublishHarness(self)
        response = harness.post(publishBody())
        self.assertEqual(response.header(b"content-type"), b"application/json")
        self.assertEqual(response.header(b"cache-control"), b"no-store")

    def test_dataReencodedCompactly(self) -> None:
        """
        C{data} reaches subscribers re-encoded compactly, whatever its
        spacing in the body; non-ASCII text survives.
        """
        harness = PublishHarness(self)
        client = harness.open("channel=news")
        client.received()
        body = b'{ "channel" : "news",\n "data" : { "a" : [ 1 , 2.5 , null ], "t": "caf\\u00e9" } }'
        self.assertEqual(harness.post(body).status, 200)
        self.assertEqual(
            client.payloads(),
            ['{"type":"message","channel":"news","seq":1,"data":{"a":[1,2.5,null],"t":"caf\u00e9"}}'
             .encode()],
        )

    def test_everyJSONValue(self) -> None:
        """
        Any JSON value may be published as C{data}.
        """
        harness = PublishHarness(self)
        client = harness.open("channel=news")
        client.received()
        values: list[object] = [None, True, False, 0, -1, 1.5, "", "x", [], {}, [{"a": {}}]]
        for value in values:
            self.assertEqual(harness.post(publishBody("news", value)).status, 200)
        self.assertEqual([m[2] for m in messages(client.received())], values)

    def test_largeNumbersStayJSON(self) -> None:
        """
        A number too large for a float (valid JSON) must not reach
        subscribers as C{Infinity}, which is not JSON: it is refused with
        C{bad_json}, or published as valid JSON.
        """
        harness = PublishHarness(self)
        client = harness.open("channel=news")
        client.received()
        for number in (b"1e400", b"-1e400"):
            response = harness.post(b'{"channel": "news", "data": ' + number + b"}")
            if response.status == 400:
                self.assertEqual(response.json()["code"], "bad_json")
                continue
            self.assertEqual(response.status, 200)
            for payload in client.payloads():
                json.loads(payload, parse_constant=lambda name: self.fail(f"{name} sent"))


class PublishRefusalTests(SynchronousTestCase):
    """
    Bodies that cannot be published: 400 with a documented code, and
    nothing is published.
    """

    def setUp(self) -> None:
        self.harness = PublishHarness(self)
        self.client = self.harness.open("channel=news")
        self.client.received()

    def assertRefused(self, body: bytes, code: str, status: int = 400) -> None:
        """
        C{body}, correctly signed, is refused with C{status} and C{code},
        and publishes nothing.
        """
        for scheme in ("seed", "v2"):
            response = self.harness.post(body, scheme)
            self.assertEqual(response.status, status, (body[:80], scheme, response))
            answer = response.json()
            self.assertEqual(answer["code"], code, (body[:80], answer))
            self.assertIsInstance(answer["message"], str)
        self.assertEqual(self.client.received(), [])
        self.assertEqual(self.harness.hub.published, 0)

    def test_badJSON(self) -> None:
        """
        A body that is not JSON (or not UTF-8 JSON): C{bad_json}.
        """
        for body in [b"", b"not json", b'{"channel": "news", "data": 1', b"\xff\xfe",
                     b'{"channel": "news", "data": 1} trailing', b"{'channel': 'news'}"]:
            self.assertRefused(body, "bad_json")

    def test_notUTF8(self) -> None:
        """
        JSON in another encoding than UTF-8 (which Python's decoder guesses
        from the bytes) is not accepted: all JSON of the hub is UTF-8.
        """
        text = '{"channel": "news", "data": 1}'
        for encoding in ("utf-16", "utf-16-le", "utf-32"):
            self.assertRefused(text.encode(encoding), "bad_json")

    def test_nonFiniteNumbers(self) -> None:
        """
        C{NaN}, C{Infinity} and C{-Infinity} (which Python's decoder
        accepts) are not JSON: C{bad_json}.
        """
        for constant in (b"NaN", b"Infinity", b"-Infinity"):
            self.assertRefused(b'{"channel": "news", "data": [' + constant + b"]}", "bad_json")

    def test_deeplyNested(self) -> None:
        """
        JSON nested deeper than the decoder goes (a few kilobytes of
        brackets) is the client's problem, not a server error: 400
        C{bad_json}, nothing logged as a failure.
        """
        nested = b"[" * 5000 + b"]" * 5000
        self.assertRefused(b'{"channel": "news", "data": ' + nested + b"}", "bad_json")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_badRequest(self) -> None:
        """
        JSON that is not an object with C{channel} and C{data}:
        C{bad_request}.
        """
        for body in [b"[]", b'["news", 1]', b'"news"', b"42", b"null", b"{}",
                     b'{"channel": "news"}', b'{"data": {"a": 1}}']:
            self.assertRefused(body, "bad_request")

    def test_badChannel(self) -> None:
        """
        A channel name that breaks the rules: C{bad_channel}.
        """
        for channel in ["", "a b", "a" * 129, "caf\u00e9", 42, None, ["news"], {"n": 1}]:
            self.assertRefused(publishBody(channel, 1), "bad_channel")

    def test_longestChannelAccepted(self) -> None:
        """
        A 128-character channel is accepted.
        """
        response = self.harness.post(publishBody("a" * 128, 1))
        self.assertEqual(response.status, 200)

    def test_unavailable(self) -> None:
        """
        A broker that cannot take the publication: 503 C{unavailable}.
        """
        broker = SwitchableBroker(MemoryBroker(self.harness.clock))
        harness = PublishHarness(self, broker=broker)
        broker.down = True
        response = harness.post(publishBody())
        self.assertEqual(response.status, 503)
        self.assertEqual(response.json()["code"], "unavailable")
        self.assertEqual(harness.hub.published, 0)


class PublishAuthenticationTests(SynchronousTestCase):
    """
    Publishing needs a valid, fresh, first-use signature (C{docs/hmac.md}):
    401 otherwise; other methods 405; large bodies 413.
    """

    def setUp(self) -> None:
        self.harness = PublishHarness(self)
        self.client = self.harness.open("channel=news")
        self.client.received()

    def assertUnauthorized(self, response: Response) -> None:
        self.assertEqual(response.status, 401, response)
        answer = response.json()
        self.assertEqual(sorted(answer), ["code", "message"])
        self.assertEqual(self.client.received(), [])
        self.assertEqual(self.harness.hub.published, 0)

    def test_unsigned(self) -> None:
        """
        An unsigned request: 401.
        """
        body = publishBody()
        self.assertUnauthorized(request(self.harness.site, b"POST", b"/publish", body,
                                        {b"Content-Type": b"application/json"}))

    def test_tampered(self) -> None:
        """
        A body other than the one signed, in either scheme: 401.
        """
        signed, sent = publishBody("news", 1), publishBody("news", 2)
        self.assertUnauthorized(request(self.harness.site, b"POST", b"/publish", sent,
                                        seedSigned(signed)))
        self.assertUnauthorized(request(self.harness.site, b"POST", b"/publish", sent,
                                        v2Signed(b"POST", b"/publish", signed)))

    def test_wrongKey(self) -> None:
        """
        A signature with a secret the hub does not hold: 401.
        """
        body = publishBody()
        self.assertUnauthorized(request(self.harness.site, b"POST", b"/publish", body,
                                        seedSigned(body, secret=OTHER_SECRET)))
        self.assertUnauthorized(request(self.harness.site, b"POST", b"/publish", body,
                                        v2Signed(b"POST", b"/publish", body, keyId="k9")))

    def test_stale(self) -> None:
        """
        A timestamp far from the hub's clock: 401.
        """
        body = publishBody()
        self.assertUnauthorized(request(self.harness.site, b"POST", b"/publish", body,
                                        seedSigned(body, timestamp=int(NOW) - 3600)))

    def test_replayed(self) -> None:
        """
        The same signed request twice: the second is refused with 401
        C{replayed}, in both schemes.
        """
        body = publishBody()
        for headers in (seedSigned(body), v2Signed(b"POST", b"/publish", body)):
            first = request(self.harness.site, b"POST", b"/publish", body, headers)
            self.assertEqual(first.status, 200)
            again = request(self.harness.site, b"POST", b"/publish", body, headers)
            self.assertEqual(again.status, 401)
            self.assertEqual(again.json()["code"], "replayed")
        self.assertEqual(self.harness.hub.published, 2)

    def test_signedForAnotherPath(self) -> None:
        """
        A v2 signature for another path: 401.
        """
        body = publishBody()
        self.assertUnauthorized(request(self.harness.site, b"POST", b"/publish", body,
                                        v2Signed(b"POST", b"/other", body)))

    def test_getSigned(self) -> None:
        """
        A signed C{GET /publish}: 405.
        """
        response = request(self.harness.site, b"GET", b"/publish", b"",
                           v2Signed(b"GET", b"/publish", b""))
        self.assertEqual(response.status, 405)
        self.assertEqual(self.harness.hub.published, 0)

    def test_headSigned(self) -> None:
        """
        A signed C{HEAD /publish}: 405, not a server error (twisted.web
        renders C{HEAD} with C{render_GET}, which the resource lacks).
        """
        response = request(self.harness.site, b"HEAD", b"/publish", b"",
                           v2Signed(b"HEAD", b"/publish", b""))
        self.assertEqual(response.status, 405)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_otherMethodsSigned(self) -> None:
        """
        Any method other than C{POST}, signed: 405 (C{docs/hub.md}: "405 |
        a method other than POST").
        """
        for method in (b"PUT", b"DELETE", b"PATCH"):
            response = request(self.harness.site, method, b"/publish", b"",
                               v2Signed(method, b"/publish", b""))
            self.assertEqual(response.status, 405, method)
        self.assertEqual(self.harness.hub.published, 0)

    def test_bodyTooLarge(self) -> None:
        """
        A body over C{maxBodySize}: 413, before anything is published; a
        body of exactly that size is read.
        """
        harness = PublishHarness(self, maxBodySize=200)
        body = publishBody("news", "x" * 200)
        response = harness.post(body)
        self.assertEqual(response.status, 413)
        self.assertEqual(harness.hub.published, 0)
        exact = publishBody("news", "")
        exact = exact[:-1] + b" " * (200 - len(exact)) + b"}"
        self.assertEqual(len(exact), 200)
        self.assertEqual(harness.post(exact).status, 200)

    def test_defaultBodyLimit(self) -> None:
        """
        By default the limit is 1 MiB.
        """
        body = publishBody("news", "x" * (1024 * 1024))
        self.assertEqual(self.harness.post(body).status, 413)


class ShuttingDownTests(SynchronousTestCase):
    """
    Once the hub begins to stop, publishes are refused with 503
    C{shutting_down}.
    """

    def test_shuttingDown(self) -> None:
        """
        After C{stopService} begins (a subscriber still closing), a signed
        publish gets 503 C{shutting_down}; the health report says so.
        """
        harness = PublishHarness(self)
        client = harness.open("channel=news")
        client.received()
        stopped = harness.hub.stopService()
        self.assertNoResult(stopped)
        response = harness.post(publishBody())
        self.assertEqual(response.status, 503)
        self.assertEqual(response.json()["code"], "shutting_down")
        self.assertEqual(harness.hub.published, 0)
        client.protocol.dataReceived(b"")
        client.lost()
        self.successResultOf(stopped)
        response = harness.post(publishBody(), scheme="v2")
        self.assertEqual(response.status, 503)


class HealthTests(SynchronousTestCase):
    """
    C{GET /healthz}: JSON health and counters.
    """

    def test_fields(self) -> None:
        """
        Exactly the documented fields, with this hub's values.
        """
        harness = PublishHarness(self)
        harness.clock.advance(12.5)
        harness.open("channel=news&channel=sports")
        harness.open("channel=news")
        harness.open()
        for i in range(3):
            self.assertEqual(harness.post(publishBody("news", i)).status, 200)
        response = request(harness.site, b"GET", b"/healthz")
        self.assertEqual(response.status, 200)
        report = response.json()
        self.assertEqual(list(report), ["status", "version", "uptime", "connections",
                                        "channels", "subscriptions", "published", "evicted"])
        self.assertEqual(report, {"status": "ok", "version": __version__, "uptime": 12.5,
                                  "connections": 3, "channels": 2, "subscriptions": 3,
                                  "published": 3, "evicted": 0})

    def test_counters(self) -> None:
        """
        The counters follow connections that go, and evictions.
        """
        harness = PublishHarness(self)
        client = harness.open("channel=news")
        harness.hub.evicted = 4
        client.lost()
        report = request(harness.site, b"GET", b"/healthz").json()
        self.assertEqual((report["connections"], report["channels"], report["subscriptions"],
                          report["evicted"]), (0, 0, 0, 4))

    def test_notSigned(self) -> None:
        """
        The health report needs no signature (a load balancer reads it).
        """
        harness = PublishHarness(self)
        self.assertEqual(request(harness.site, b"GET", b"/healthz").status, 200)


class PageTests(SynchronousTestCase):
    """
    C{GET /} serves the browser page; C{/ws} without an upgrade is 426; the
    root mounted below a path redirects to itself with a slash.
    """

    def test_page(self) -> None:
        """
        The page, as HTML, with a Content-Security-Policy.
        """
        harness = PublishHarness(self)
        response = request(harness.site, b"GET", b"/")
        self.assertEqual(response.status, 200)
        contentType = response.header(b"content-type")
        assert contentType is not None
        self.assertTrue(contentType.startswith(b"text/html"), contentType)
        policy = response.header(b"content-security-policy")
        assert policy is not None
        self.assertIn(b"default-src 'none'", policy)
        page = packageResources.files("txws.hub").joinpath("page.html").read_bytes()
        self.assertEqual(response.body, page)

    def test_plainGetOfWebSocket(self) -> None:
        """
        A plain C{GET /ws}: 426 Upgrade Required.
        """
        harness = PublishHarness(self)
        self.assertEqual(request(harness.site, b"GET", b"/ws").status, 426)

    def test_unknownPath(self) -> None:
        """
        Another path: 404.
        """
        harness = PublishHarness(self)
        self.assertEqual(request(harness.site, b"GET", b"/nothing").status, 404)

    def test_redirectBelowAPath(self) -> None:
        """
        Mounted at C{/realtime}, a request for C{/realtime} is redirected to
        C{/realtime/}, its query kept; C{/realtime/} serves the page.
        """
        harness = HubHarness(self)
        root = Resource()
        root.putChild(b"realtime", harness.hub.resource())
        site = HMACSite(root, reactor=harness.clock)
        host = HOST + b":8080"
        response = request(site, b"GET", b"/realtime?channel=news&x=1", host=host)
        self.assertIn(response.status, (301, 302, 303, 307, 308))
        self.assertEqual(self.resolved(b"http://hub.example:8080/realtime?channel=news&x=1",
                                       response),
                         "http://hub.example:8080/realtime/?channel=news&x=1")
        response = request(site, b"GET", b"/realtime", host=host)
        self.assertEqual(self.resolved(b"http://hub.example:8080/realtime", response),
                         "http://hub.example:8080/realtime/")
        response = request(site, b"GET", b"/realtime/")
        self.assertEqual(response.status, 200)
        self.assertTrue((response.header(b"content-type") or b"").startswith(b"text/html"))

    def resolved(self, url: bytes, response: Response) -> str:
        """
        @return: where a browser that asked for C{url} goes on C{response}'s
            C{Location}.
        """
        location = response.header(b"location")
        assert location is not None, response
        return urljoin(url.decode("ascii"), location.decode("ascii"))

    def test_redirectBehindAProxy(self) -> None:
        """
        Behind a proxy (or a port mapping) the client's URL is not the
        hub's socket: the redirect must lead to C{/realtime/} on the host
        and port the client used (a relative C{Location} does), not on the
        hub's own port.
        """
        harness = HubHarness(self)
        root = Resource()
        root.putChild(b"realtime", harness.hub.resource())
        site = HMACSite(root, reactor=harness.clock)
        response = request(site, b"GET", b"/realtime?channel=news", host=b"example.com")
        self.assertEqual(self.resolved(b"https://example.com/realtime?channel=news", response),
                         "https://example.com/realtime/?channel=news")
