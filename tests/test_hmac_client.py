"""
Tests for L{txws.hmacauth.client} (the signing agent and L{postJSON}) and
for the command-line client in C{txws.hmacauth.__main__}.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, cast

from treq.testing import RequestTraversalAgent
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.web.client import URI
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IBodyProducer, IResponse
from twisted.web.resource import IResource

from tests.hmac_support.agents import RecordingAgent, Sent
from tests.hmac_support.resources import SECRET, VECTOR_BODY, VECTOR_TIMESTAMP, RecordingResource
from tests.typedtrial import SynchronousTestCase
from txws.hmacauth import (
    HMACAgent,
    HMACGuard,
    KeyRing,
    Scheme,
    UnexpectedStatus,
    canonicalJSON,
    postJSON,
    signSeed,
    verifyV2,
)
from txws.hmacauth.__main__ import TIMEOUT, parseArguments, post

NONCE = "n0nce-n0nce-n0nce-n0nce"
KEYS = {"k1": SECRET.encode()}


class SlowProducer:
    """
    A producer of unknown length that delivers its body in two steps.
    """

    length = UNKNOWN_LENGTH

    def __init__(self) -> None:
        self.done: Deferred[None] = Deferred()
        self.consumer: Any = None

    def startProducing(self, consumer: Any) -> Deferred[None]:
        self.consumer = consumer
        consumer.write(VECTOR_BODY[:10])
        return self.done

    def finish(self) -> None:
        self.consumer.write(VECTOR_BODY[10:])
        self.done.callback(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def producerOf(body: bytes) -> IBodyProducer:
    """
    A known-length producer, as treq and Twisted make them.
    """
    from twisted.web.client import FileBodyProducer

    class Immediate:
        def cooperate(self, iterator: Any) -> Any:
            for _ in iterator:
                pass

            class Task:
                def whenDone(self) -> Deferred[None]:
                    return succeed(None)

            return Task()

    return FileBodyProducer(io.BytesIO(body), cooperator=Immediate())


def clockAt(when: float = VECTOR_TIMESTAMP) -> Clock:
    clock = Clock()
    clock.advance(when)
    return clock


class HMACAgentV2Tests(SynchronousTestCase):
    """
    L{HMACAgent} with the v2 scheme signs what the wrapped agent will send.
    """

    def send(
        self,
        url: bytes,
        headers: Headers | None = None,
        producer: IBodyProducer | None = None,
        method: bytes = b"POST",
    ) -> Sent:
        recorder = RecordingAgent()
        agent = HMACAgent(recorder, KEYS, "k1", reactor=clockAt(), nonceFactory=lambda: NONCE)
        agent.request(method, url, headers, producer)
        [sent] = recorder.sent
        return sent

    def test_signs(self) -> None:
        """
        The C{Authorization} header verifies for the method, host with port,
        path and query, body, clock time and nonce that are sent.
        """
        sent = self.send(b"http://inference.internal:8443/v1/infer?model=small",
                         producer=producerOf(VECTOR_BODY))
        self.assertEqual(sent.header(b"Host"), [b"inference.internal:8443"])
        self.assertEqual(sent.body, VECTOR_BODY)
        [authorization] = sent.header(b"Authorization")
        verified = verifyV2(KEYS, authorization, b"POST", b"inference.internal:8443",
                            b"/v1/infer?model=small", VECTOR_BODY, VECTOR_TIMESTAMP)
        self.assertEqual((verified.keyId, verified.nonce, verified.timestamp),
                         ("k1", NONCE, VECTOR_TIMESTAMP))

    def test_hostValues(self) -> None:
        """
        The signed C{Host} is what Twisted's C{Agent} sends: no default
        port, brackets around IPv6; a caller's C{Host} header is kept.
        """
        self.assertEqual(self.send(b"https://api.example/x").header(b"Host"), [b"api.example"])
        self.assertEqual(self.send(b"http://api.example/x").header(b"Host"), [b"api.example"])
        self.assertEqual(self.send(b"http://[::1]:8080/x").header(b"Host"), [b"[::1]:8080"])
        headers = Headers({b"Host": [b"front.example"]})
        sent = self.send(b"http://10.0.0.1/x", headers)
        self.assertEqual(sent.header(b"Host"), [b"front.example"])
        verifyV2(KEYS, sent.header(b"Authorization")[0], b"POST", b"front.example", b"/x", b"",
                 VECTOR_TIMESTAMP)

    def test_originForm(self) -> None:
        """
        The signed target drops the fragment and turns an empty path into C{/}.
        """
        sent = self.send(b"http://h.example?q=1#frag", method=b"GET")
        self.assertEqual(URI.fromBytes(sent.uri).originForm, b"/?q=1")
        verifyV2(KEYS, sent.header(b"Authorization")[0], b"GET", b"h.example", b"/?q=1", b"",
                 VECTOR_TIMESTAMP)

    def test_knownLength(self) -> None:
        """
        A body of unknown length is read whole and forwarded with its
        length, so it is sent with C{Content-Length}, never chunked.
        """
        recorder = RecordingAgent()
        agent = HMACAgent(recorder, KEYS, reactor=clockAt())
        producer = SlowProducer()
        agent.request(b"POST", b"http://h.example/", None, cast(IBodyProducer, producer))
        self.assertEqual(recorder.sent, [])
        producer.finish()
        [sent] = recorder.sent
        self.assertEqual(sent.producer.length, len(VECTOR_BODY))
        self.assertEqual(sent.body, VECTOR_BODY)

    def test_noBody(self) -> None:
        """
        Without a body producer, none is forwarded and the empty body is signed.
        """
        sent = self.send(b"http://h.example/x", method=b"GET")
        self.assertIsNone(sent.producer)
        verifyV2(KEYS, sent.header(b"Authorization")[0], b"GET", b"h.example", b"/x", b"",
                 VECTOR_TIMESTAMP)

    def test_callerHeadersUntouched(self) -> None:
        """
        The caller's L{Headers} is copied; stale signing headers are replaced.
        """
        headers = Headers({b"X-HMAC-Signature": [b"old"], b"Authorization": [b"Basic x"],
                           b"X-Trace": [b"1"]})
        sent = self.send(b"http://h.example/", headers)
        self.assertEqual(sent.header(b"X-HMAC-Signature"), [])
        self.assertEqual(sent.header(b"X-Trace"), [b"1"])
        self.assertEqual(len(sent.header(b"Authorization")), 1)
        self.assertEqual(headers.getRawHeaders(b"Authorization"), [b"Basic x"])

    def test_producerFailure(self) -> None:
        """
        A body producer that fails fails the request; nothing is sent.
        """
        class Failing(SlowProducer):
            def startProducing(self, consumer: Any) -> Deferred[None]:
                return fail(OSError("disk"))

        recorder = RecordingAgent()
        agent = HMACAgent(recorder, KEYS, reactor=clockAt())
        producer = cast(IBodyProducer, Failing())
        self.failureResultOf(agent.request(b"POST", b"http://h/", None, producer), OSError)
        self.assertEqual(recorder.sent, [])

    def test_freshNoncePerRequest(self) -> None:
        """
        The default nonce factory gives every request a new nonce.
        """
        recorder = RecordingAgent()
        agent = HMACAgent(recorder, KEYS, reactor=clockAt())
        for _ in range(3):
            agent.request(b"GET", b"http://h/")
        values = {s.header(b"Authorization")[0].split(b"nonce=")[1] for s in recorder.sent}
        self.assertEqual(len(values), 3)


class HMACAgentSeedTests(SynchronousTestCase):
    """
    L{HMACAgent} with the seed scheme sends the article's headers.
    """

    def test_headers(self) -> None:
        """
        The two headers are those of L{signSeed} at the clock's time.
        """
        recorder = RecordingAgent()
        agent = HMACAgent(recorder, KEYS, scheme=Scheme.SEED, reactor=clockAt())
        agent.request(b"POST", b"http://h/v1/infer", None, producerOf(VECTOR_BODY))
        [sent] = recorder.sent
        for name, value in signSeed(SECRET.encode(), VECTOR_TIMESTAMP, VECTOR_BODY).items():
            self.assertEqual(sent.header(name), [value])
        self.assertEqual(sent.header(b"Authorization"), [])

    def test_keyChoice(self) -> None:
        """
        With several keys a key id is required and must exist.
        """
        keys = KeyRing({"a": "1", "b": "2"})
        with self.assertRaises(ValueError):
            HMACAgent(RecordingAgent(), keys, reactor=Clock())
        with self.assertRaises(ValueError):
            HMACAgent(RecordingAgent(), keys, "c", reactor=Clock())
        self.assertEqual(HMACAgent(RecordingAgent(), keys, "b", reactor=Clock()).keyId, "b")


class RoundTripTests(SynchronousTestCase):
    """
    Our agent against our guard, in memory.
    """

    def setUp(self) -> None:
        self.clock = clockAt()
        self.resource = RecordingResource()
        guard = HMACGuard(self.resource, KEYS, reactor=self.clock)
        self.transport = RequestTraversalAgent(IResource(guard))

    def agent(self, scheme: Scheme = Scheme.V2, keys: dict[str, bytes] = KEYS) -> HMACAgent:
        return HMACAgent(self.transport, keys, scheme=scheme, reactor=self.clock)

    def test_bothSchemes(self) -> None:
        """
        Both schemes are accepted, and the body travels with
        C{Content-Length}, not chunked.
        """
        for scheme in Scheme:
            result = self.successResultOf(
                postJSON(self.agent(scheme), "http://guard.example/v1/infer", {"a": 1}))
            self.assertEqual(result.json()["scheme"], scheme.value)
            seen = self.resource.seen[-1]
            self.assertEqual(seen.headers[b"Content-Length"], [b"7"])
            self.assertNotIn(b"Transfer-Encoding", seen.headers)

    def test_postJSONBody(self) -> None:
        """
        L{postJSON} sends sorted keys, compact separators, ASCII-safe UTF-8
        and C{Content-Type: application/json}.
        """
        payload = {"user_id": 42, "text": "héllo", "nested": {"b": [1, 2], "a": None}}
        result = self.successResultOf(postJSON(self.agent(), "http://guard.example/x", payload))
        self.assertEqual(result.code, 200)
        self.assertEqual(result.phrase, b"OK")
        seen = self.resource.seen[-1]
        self.assertEqual(seen.body,
                         b'{"nested":{"a":null,"b":[1,2]},"text":"h\\u00e9llo","user_id":42}')
        self.assertEqual(seen.headers[b"Content-Type"], [b"application/json"])

    def test_postJSONFailsOnRefusal(self) -> None:
        """
        A non-2xx answer fails the L{Deferred} with L{UnexpectedStatus},
        which carries the response and names the guard's code.
        """
        agent = self.agent(keys={"k1": b"wrong"})
        failure = self.failureResultOf(postJSON(agent, "http://guard.example/x", {}),
                                       UnexpectedStatus)
        assert isinstance(failure.value, UnexpectedStatus)
        self.assertEqual(failure.value.result.code, 401)
        self.assertEqual(failure.value.result.json()["code"], "bad_signature")
        self.assertEqual(str(failure.value), "HTTP 401 Unauthorized (bad_signature)")

    def test_unexpectedStatusWithoutJSON(self) -> None:
        """
        A non-JSON error body gives a plain status line.
        """
        class Teapot(RecordingResource):
            def render(self, request: Any) -> bytes:
                request.setResponseCode(418)
                return b"<html>"

        guard = HMACGuard(Teapot(), KEYS, reactor=self.clock)
        agent = HMACAgent(RequestTraversalAgent(IResource(guard)), KEYS, reactor=self.clock)
        failure = self.failureResultOf(postJSON(agent, "http://g/", {}), UnexpectedStatus)
        self.assertEqual(str(failure.value), "HTTP 418 I'm a teapot")

    def test_canonicalJSON(self) -> None:
        """
        L{canonicalJSON} matches the seed sender and refuses NaN.
        """
        self.assertEqual(canonicalJSON({"user_id": 42, "text": "hello"}), VECTOR_BODY)
        with self.assertRaises(ValueError):
            canonicalJSON({"x": float("nan")})


class CommandLineTests(SynchronousTestCase):
    """
    C{python -m txws.hmacauth post URL --key-file FILE [--key-id ID]
    [--scheme seed|v2] (--json TEXT | --data-file FILE)}.
    """

    def setUp(self) -> None:
        self.clock = clockAt()
        self.resource = RecordingResource()
        self.guard = HMACGuard(self.resource, KEYS, reactor=self.clock)
        self.keyFile = self.writeKeys({"k1": SECRET})
        self.stdout = io.BytesIO()
        self.stderr = io.StringIO()

    def writeKeys(self, keys: dict[str, str], mode: int = 0o600) -> str:
        path: str = self.mktemp()
        with open(path, "w") as keyFile:
            json.dump(keys, keyFile)
        os.chmod(path, mode)
        return path

    def invoke(self, *argv: str, agent: Any = None) -> int:
        arguments = parseArguments(argv)
        transport = agent if agent is not None else RequestTraversalAgent(IResource(self.guard))
        status: int = self.successResultOf(
            post(self.clock, arguments, transport, self.stdout, self.stderr))
        return status

    def assertUsageError(self, *argv: str) -> None:
        with self.assertRaises(SystemExit) as raised:
            parseArguments(argv)
        self.assertEqual(raised.exception.code, 1)

    def test_usage(self) -> None:
        """
        Missing key file, both or neither body options, unknown schemes and
        unknown commands are usage errors with status 1.
        """
        self.patch(__import__("sys"), "stderr", io.StringIO())
        self.assertUsageError()
        self.assertUsageError("get", "http://h/")
        self.assertUsageError("post", "http://h/", "--json", "{}")
        self.assertUsageError("post", "http://h/", "--key-file", "f")
        self.assertUsageError("post", "http://h/", "--key-file", "f", "--json", "{}",
                              "--data-file", "d")
        self.assertUsageError("post", "http://h/", "--key-file", "f", "--json", "{}",
                              "--scheme", "v3")

    def test_arguments(self) -> None:
        """
        All documented options parse; v2 is the default scheme.
        """
        arguments = parseArguments(["post", "http://h/", "--key-file", "f", "--key-id", "k",
                                    "--scheme", "seed", "--data-file", "d"])
        self.assertEqual((arguments.url, arguments.keyFile, arguments.keyId, arguments.scheme,
                          arguments.dataFile, arguments.jsonText),
                         ("http://h/", "f", "k", "seed", "d", None))
        self.assertEqual(parseArguments(["post", "u", "--key-file", "f", "--json", "1"]).scheme,
                         "v2")

    def test_success(self) -> None:
        """
        A 2xx answer: body on stdout, nothing on stderr, status 0; the JSON
        text is sent canonically.
        """
        for scheme in ("v2", "seed"):
            status = self.invoke("post", "http://guard.example/v1/infer", "--key-file",
                              self.keyFile, "--scheme", scheme, "--json",
                              '{"user_id": 42, "text": "hello"}')
            self.assertEqual(status, 0)
            self.assertEqual(json.loads(self.stdout.getvalue())["scheme"], scheme)
            self.assertEqual(self.stderr.getvalue(), "")
            self.assertEqual(self.resource.seen[-1].body, VECTOR_BODY)
            self.stdout.seek(0)
            self.stdout.truncate()

    def test_dataFileSentAsIs(self) -> None:
        """
        C{--data-file} bytes are sent exactly.
        """
        path = self.mktemp()
        raw = b'{ "not" : "canonical" }\n'
        with open(path, "wb") as dataFile:
            dataFile.write(raw)
        status = self.invoke("post", "http://g/", "--key-file", self.keyFile, "--data-file", path)
        self.assertEqual(status, 0)
        self.assertEqual(self.resource.seen[-1].body, raw)

    def test_refused(self) -> None:
        """
        A non-2xx answer: its body on stdout, one line on stderr, status 1.
        """
        keyFile = self.writeKeys({"k1": "wrong"})
        status = self.invoke("post", "http://g/", "--key-file", keyFile, "--json", "{}")
        self.assertEqual(status, 1)
        self.assertEqual(json.loads(self.stdout.getvalue())["code"], "bad_signature")
        self.assertEqual(self.stderr.getvalue(),
                         "python -m txws.hmacauth: HTTP 401 Unauthorized (bad_signature)\n")

    def assertFails(self, *argv: str, fragment: str, agent: Any = None) -> None:
        self.assertEqual(self.invoke(*argv, agent=agent), 1)
        lines = self.stderr.getvalue().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(fragment, lines[0])
        self.assertNotIn(SECRET, lines[0])
        self.assertEqual(self.resource.seen, [])
        self.stderr.seek(0)
        self.stderr.truncate()

    def test_localErrors(self) -> None:
        """
        Unsafe or unreadable key files, ambiguous keys, bad JSON, unreadable
        data files and non-HTTP URLs fail with one line and status 1.
        """
        unsafe = self.writeKeys({"k1": SECRET}, 0o644)
        self.assertFails("post", "http://g/", "--key-file", unsafe, "--json", "{}",
                         fragment="chmod 600")
        self.assertFails("post", "http://g/", "--key-file", "/nonexistent", "--json", "{}",
                         fragment="/nonexistent")
        several = self.writeKeys({"a": "1", "b": "2"})
        self.assertFails("post", "http://g/", "--key-file", several, "--json", "{}",
                         fragment="key id")
        self.assertFails("post", "http://g/", "--key-file", several, "--key-id", "c",
                         "--json", "{}", fragment="'c'")
        self.assertFails("post", "http://g/", "--key-file", self.keyFile, "--json", "{",
                         fragment="not valid JSON")
        self.assertFails("post", "http://g/", "--key-file", self.keyFile, "--data-file",
                         "/nonexistent-data", fragment="--data-file")
        self.assertFails("post", "ftp://g/", "--key-file", self.keyFile, "--json", "{}",
                         fragment="URL")

    def test_connectionError(self) -> None:
        """
        A transport error is one line and status 1.
        """
        class Refusing:
            def request(self, *args: Any) -> Deferred[IResponse]:
                return fail(ConnectionRefusedError("127.0.0.1"))

        self.assertFails("post", "http://g/", "--key-file", self.keyFile, "--json", "{}",
                         fragment="request failed", agent=Refusing())

    def test_timeout(self) -> None:
        """
        No answer within the timeout is one line and status 1.
        """
        arguments = parseArguments(["post", "http://g/", "--key-file", self.keyFile,
                                    "--json", "{}"])
        result = post(self.clock, arguments, RecordingAgent(), self.stdout, self.stderr)
        self.assertNoResult(result)
        self.clock.advance(TIMEOUT)
        self.assertEqual(self.successResultOf(result), 1)
        self.assertIn("no answer within 30 s", self.stderr.getvalue())
