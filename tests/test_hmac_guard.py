"""
Tests for L{txws.hmacauth.guard}: the guard resource (through treq's
C{StubTreq}, on a L{Clock}) and the body-capping site (on a
C{StringTransport}).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from tests.hmac_support.resources import (
    SECRET,
    VECTOR_BODY,
    VECTOR_SIGNATURE,
    VECTOR_TIMESTAMP,
    RecordingResource,
)
from tests.typedtrial import SynchronousTestCase
from txws.hmacauth import (
    CappedRequest,
    HMACGuard,
    HMACSite,
    KeyRing,
    MemoryReplayStore,
    Scheme,
    getIdentity,
    seedSignature,
    signV2,
)

HOST = b"guard.example"
URL = "http://guard.example/api/infer?model=small"
TARGET = b"/api/infer?model=small"
NONCE = "N" * 22
OLD_SECRET = "old-secret-value"


@dataclass
class Answer:
    """
    A response, read whole.
    """

    code: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: bytes) -> list[bytes]:
        return list(self.headers.getRawHeaders(name, []))


def seedHeaders(
    body: bytes = VECTOR_BODY, timestamp: int | str = VECTOR_TIMESTAMP, secret: str = SECRET
) -> dict[bytes, list[bytes]]:
    """
    The seed scheme's headers for C{body}.
    """
    signature = seedSignature(secret.encode(), timestamp, body)
    return {
        b"X-HMAC-Signature": [signature.encode()],
        b"X-HMAC-Timestamp": [str(timestamp).encode()],
        b"Content-Type": [b"application/json"],
    }


def v2Headers(
    method: bytes = b"POST",
    target: bytes = TARGET,
    body: bytes = VECTOR_BODY,
    host: bytes = HOST,
    keyId: str = "k1",
    secret: str = SECRET,
    timestamp: int = VECTOR_TIMESTAMP,
    nonce: str = NONCE,
) -> dict[bytes, list[bytes]]:
    """
    The v2 scheme's C{Authorization} header for a request.
    """
    value = signV2(secret.encode(), keyId, method, host, target, body, timestamp, nonce)
    return {b"Authorization": [value]}


class GuardHarness:
    """
    A guard over a L{RecordingResource}, a clock at the vectors' time and an
    in-memory client.
    """

    def __init__(self, testCase: SynchronousTestCase, **options: Any) -> None:
        self.testCase = testCase
        self.clock = Clock()
        self.clock.advance(VECTOR_TIMESTAMP)
        self.resource = RecordingResource()
        self.store = options.pop("replayStore", None) or MemoryReplayStore(
            self.clock, maxEntries=options.pop("maxEntries", 1000)
        )
        keys = KeyRing({"k1": SECRET, "old": OLD_SECRET})
        self.guard = HMACGuard(
            self.resource, keys, reactor=self.clock, replayStore=self.store, **options
        )
        self.stub: Any = StubTreq(self.guard)

    def send(
        self,
        headers: dict[bytes, list[bytes]],
        body: bytes = VECTOR_BODY,
        method: str = "POST",
        url: str = URL,
    ) -> Deferred[Answer]:
        d = self.stub.request(method, url, headers=headers, data=body)

        def read(response: Any) -> Deferred[Answer]:
            return self.stub.content(response).addCallback(  # type: ignore[no-any-return]
                lambda content: Answer(response.code, response.headers, content)
            )

        return d.addCallback(read)  # type: ignore[no-any-return]

    def answer(self, headers: dict[bytes, list[bytes]], **kwargs: Any) -> Answer:
        result: Answer = self.testCase.successResultOf(self.send(headers, **kwargs))
        return result


class GuardAcceptanceTests(SynchronousTestCase):
    """
    Valid requests reach the wrapped resource, which can read the signer.
    """

    def test_seedVectorAccepted(self) -> None:
        """
        A request carrying the seeds.md vector, exactly as the article's
        mixin sends it, reaches the resource with the exact body.
        """
        harness = GuardHarness(self)
        headers = {
            b"X-HMAC-Signature": [VECTOR_SIGNATURE.encode()],
            b"X-HMAC-Timestamp": [b"1700000000"],
            b"Content-Type": [b"application/json"],
        }
        answer = harness.answer(headers)
        self.assertEqual(answer.code, 200)
        self.assertEqual(answer.json()["keyId"], "k1")
        [seen] = harness.resource.seen
        self.assertEqual(seen.body, VECTOR_BODY)
        identity = seen.identity
        assert identity is not None
        self.assertEqual((identity.keyId, identity.scheme, identity.timestamp, identity.nonce),
                         ("k1", Scheme.SEED, VECTOR_TIMESTAMP, None))

    def test_v2Accepted(self) -> None:
        """
        A v2-signed request is accepted and its identity carries the nonce.
        """
        harness = GuardHarness(self)
        answer = harness.answer(v2Headers())
        self.assertEqual(answer.code, 200)
        identity = harness.resource.seen[0].identity
        assert identity is not None
        self.assertEqual((identity.keyId, identity.scheme, identity.nonce),
                         ("k1", Scheme.V2, NONCE))

    def test_bodyAsReceived(self) -> None:
        """
        Any body bytes, including non-canonical JSON and non-UTF-8, verify as
        received and reach the resource unchanged.
        """
        harness = GuardHarness(self)
        for body in [b'{ "user_id" : 42,\n "text": "hello" }', b"\xff\x00binary", b""]:
            self.assertEqual(harness.answer(seedHeaders(body), body=body).code, 200)
            self.assertEqual(harness.resource.seen[-1].body, body)

    def test_getWithoutBody(self) -> None:
        """
        A GET with no body is signed over the empty body.
        """
        harness = GuardHarness(self)
        headers = v2Headers(method=b"GET", body=b"")
        self.assertEqual(harness.answer(headers, method="GET", body=b"").code, 200)

    def test_keyRotation(self) -> None:
        """
        Every active key is accepted, in both schemes, and named.
        """
        harness = GuardHarness(self)
        answer = harness.answer(seedHeaders(secret=OLD_SECRET))
        self.assertEqual(answer.json()["keyId"], "old")
        answer = harness.answer(v2Headers(keyId="old", secret=OLD_SECRET))
        self.assertEqual(answer.json()["keyId"], "old")

    def test_keyRingReplaceable(self) -> None:
        """
        Assigning a new key ring retires the keys it omits.
        """
        harness = GuardHarness(self)
        harness.guard.keyRing = KeyRing({"new": "new-secret"})
        self.assertEqual(harness.answer(seedHeaders()).json()["code"], "bad_signature")
        answer = harness.answer(v2Headers(keyId="new", secret="new-secret"))
        self.assertEqual(answer.json()["keyId"], "new")

    def test_severalSeedSignatures(self) -> None:
        """
        A seed header with a labelled new-key signature and an old-key
        signature is accepted.
        """
        harness = GuardHarness(self)
        newSig = seedSignature(b"unknown-new", VECTOR_TIMESTAMP, VECTOR_BODY)
        headers = seedHeaders()
        headers[b"X-HMAC-Signature"] = [b"v1=%s v1=%s" % (newSig.encode(),
                                                        headers[b"X-HMAC-Signature"][0])]
        self.assertEqual(harness.answer(headers).code, 200)

    def test_windowEdges(self) -> None:
        """
        Timestamps 60 s behind or ahead of the guard's clock are accepted.
        """
        harness = GuardHarness(self)
        self.assertEqual(harness.answer(seedHeaders(timestamp=VECTOR_TIMESTAMP - 60)).code, 200)
        self.assertEqual(harness.answer(seedHeaders(timestamp=VECTOR_TIMESTAMP + 60)).code, 200)

    def test_transparentTraversal(self) -> None:
        """
        Mounted under C{/api} over a resource tree, the guard consumes no
        segment: C{/api/v1/infer} reaches C{v1}'s child C{infer}.
        """
        tree = Resource()
        v1 = Resource()
        leaf = RecordingResource()
        tree.putChild(b"v1", v1)
        v1.putChild(b"infer", IResource(leaf))
        root = Resource()
        clock = Clock()
        clock.advance(VECTOR_TIMESTAMP)
        root.putChild(b"api", IResource(HMACGuard(tree, {"k1": SECRET.encode()}, reactor=clock)))
        stub: Any = StubTreq(root)
        target = b"/api/v1/infer"
        response = self.successResultOf(stub.post(
            "http://guard.example/api/v1/infer", data=VECTOR_BODY,
            headers=v2Headers(target=target)))
        self.assertEqual(response.code, 200)
        [seen] = leaf.seen
        self.assertEqual(seen.prepath, [b"api", b"v1", b"infer"])
        self.assertEqual(seen.postpath, [])

    def test_guardItselfRendersWrapped(self) -> None:
        """
        A request for the guard's own path renders the wrapped resource.
        """
        root = Resource()
        clock = Clock()
        clock.advance(VECTOR_TIMESTAMP)
        leaf = RecordingResource()
        root.putChild(b"api", IResource(HMACGuard(leaf, {"k1": SECRET.encode()},
                                                  reactor=clock)))
        stub: Any = StubTreq(root)
        response = self.successResultOf(stub.post(
            "http://guard.example/api", data=VECTOR_BODY, headers=v2Headers(target=b"/api")))
        self.assertEqual(response.code, 200)
        self.assertEqual(leaf.seen[0].prepath, [b"api"])

    def test_identityOnlyInsideGuard(self) -> None:
        """
        L{getIdentity} is C{None} for a request the guard never saw.
        """
        self.assertIsNone(getIdentity(object()))


class GuardRefusalTests(SynchronousTestCase):
    """
    Every refusal is a 401 with a JSON code, challenges and the server time;
    the wrapped resource never runs.
    """

    def assertRefused(
        self, harness: GuardHarness, answer: Answer, code: str, status: int = 401
    ) -> dict[str, Any]:
        self.assertEqual(answer.code, status)
        document: dict[str, Any] = answer.json()
        self.assertEqual(document["code"], code)
        self.assertIsInstance(document["message"], str)
        self.assertEqual(answer.header(b"Content-Type"), [b"application/json"])
        self.assertEqual(answer.header(b"X-HMAC-Server-Time"),
                         [b"%d" % int(harness.clock.seconds())])
        self.assertEqual(answer.header(b"Cache-Control"), [b"no-store"])
        self.assertNotIn(SECRET.encode(), answer.body)
        self.assertEqual(harness.resource.seen, [])
        return document

    def refused(self, headers: dict[bytes, list[bytes]], code: str, **kwargs: Any) -> Answer:
        harness = GuardHarness(self)
        answer = harness.answer(headers, **kwargs)
        self.assertRefused(harness, answer, code)
        return answer

    def test_challenges(self) -> None:
        """
        A 401 challenges with both enabled schemes, naming the error.
        """
        answer = self.refused({}, "missing_headers")
        self.assertEqual(answer.header(b"WWW-Authenticate"), [
            b'TXWS-HMAC-SHA256 realm="txws", error="missing_headers"',
            b'HMAC-SHA256 realm="txws", error="missing_headers"',
        ])

    def test_missingHeaders(self) -> None:
        """
        No headers, or only one of the pair, is C{missing_headers}.
        """
        self.refused({}, "missing_headers")
        headers = seedHeaders()
        del headers[b"X-HMAC-Timestamp"]
        self.refused(headers, "missing_headers")
        headers = seedHeaders()
        del headers[b"X-HMAC-Signature"]
        self.refused(headers, "missing_headers")
        self.refused({b"Authorization": [b"Bearer xyz"]}, "missing_headers")

    def test_invalidTimestamp(self) -> None:
        """
        A non-digit timestamp, including non-ASCII bytes, is C{invalid_timestamp}.
        """
        for stamp in [b"+1700000000", b"1700000000.0", "\u0661".encode(), b"\xff"]:
            headers = seedHeaders()
            headers[b"X-HMAC-Timestamp"] = [stamp]
            self.refused(headers, "invalid_timestamp")

    def test_staleAndFuture(self) -> None:
        """
        61 s off either way is C{stale_timestamp}, with a message that says
        which way.
        """
        old = self.refused(seedHeaders(timestamp=VECTOR_TIMESTAMP - 61), "stale_timestamp")
        self.assertIn("old", old.json()["message"])
        future = self.refused(v2Headers(timestamp=VECTOR_TIMESTAMP + 61), "stale_timestamp")
        self.assertIn("future", future.json()["message"])

    def test_badSignatures(self) -> None:
        """
        Tampered bodies, wrong keys, malformed and non-ASCII signatures are
        C{bad_signature}, never a 500.
        """
        self.refused(seedHeaders(), "bad_signature", body=VECTOR_BODY + b" ")
        self.refused(seedHeaders(secret="wrong"), "bad_signature")
        for value in [VECTOR_SIGNATURE.upper().encode(), b"\xc3\xa9" * 32, b"zz", b"v1="]:
            headers = seedHeaders()
            headers[b"X-HMAC-Signature"] = [value]
            self.refused(headers, "bad_signature")
        self.refused({b"Authorization": [b"TXWS-HMAC-SHA256 \xff\xfe"]}, "bad_signature")

    def test_unknownKey(self) -> None:
        """
        A v2 key id the guard does not hold is C{unknown_key}.
        """
        self.refused(v2Headers(keyId="retired", secret="x"), "unknown_key")

    def test_wrongEndpoint(self) -> None:
        """
        A v2 request signed for another path, query, method or host is refused.
        """
        self.refused(v2Headers(target=b"/api/other?model=small"), "bad_signature")
        self.refused(v2Headers(target=b"/api/infer?model=large"), "bad_signature")
        self.refused(v2Headers(method=b"PUT"), "bad_signature")
        self.refused(v2Headers(host=b"other.example"), "bad_signature")

    def test_configuredHosts(self) -> None:
        """
        With C{hosts}, a request correctly signed for another host (and sent
        with that C{Host} header) is refused; its own host is accepted.
        """
        harness = GuardHarness(self, hosts=["api.example"])
        answer = harness.answer(v2Headers())
        document = self.assertRefused(harness, answer, "bad_signature")
        self.assertIn("another host", document["message"])
        harness = GuardHarness(self, hosts=["API.example"])
        headers = v2Headers(host=b"api.example")
        answer = harness.answer(headers, url="http://api.example/api/infer?model=small")
        self.assertEqual(answer.code, 200)

    def test_repeatedAuthorization(self) -> None:
        """
        Two v2 C{Authorization} headers are refused.
        """
        value = v2Headers()[b"Authorization"][0]
        self.refused({b"Authorization": [value, value]}, "bad_signature")

    def test_secretsNeverLogged(self) -> None:
        """
        Each refusal is logged exactly once, with the peer and the code, and
        no secret or signature appears in any log text.
        """
        harness = GuardHarness(self)
        with capturedLogs() as events:
            harness.answer(seedHeaders(secret="wrong"))
        texts = [formatEvent(event) for event in events]
        refusals = [e for e in events if e.get("code") == "bad_signature"]
        self.assertEqual(len(refusals), 1)
        self.assertEqual(refusals[0]["peer"], "127.0.0.1:31337")
        self.assertIn("bad_signature", formatEvent(refusals[0]))
        wrongSig = seedSignature(b"wrong", VECTOR_TIMESTAMP, VECTOR_BODY)
        for text in texts:
            self.assertNotIn(SECRET, text)
            self.assertNotIn(wrongSig, text)

    def test_acceptedNotLoggedAsRefusal(self) -> None:
        """
        An accepted request logs no refusal.
        """
        harness = GuardHarness(self)
        with capturedLogs() as events:
            harness.answer(seedHeaders())
        self.assertEqual([e for e in events if "code" in e], [])

    def test_refusalsCounted(self) -> None:
        """
        C{refused} counts refusals by status and code; an accepted request
        is not among them.
        """
        harness = GuardHarness(self, maxBodySize=len(VECTOR_BODY))
        self.assertEqual(harness.answer(seedHeaders()).code, 200)
        self.assertEqual(harness.answer(seedHeaders()).code, 401)
        self.assertEqual(harness.answer(seedHeaders(secret="wrong")).code, 401)
        self.assertEqual(harness.answer(seedHeaders(secret="wrong")).code, 401)
        self.assertEqual(harness.answer(seedHeaders(), body=VECTOR_BODY + b" ").code, 413)
        self.assertEqual(
            dict(harness.guard.refused),
            {(401, "replayed"): 1, (401, "bad_signature"): 2, (413, "body_too_large"): 1},
        )


class GuardSchemeSelectionTests(SynchronousTestCase):
    """
    Which schemes a guard accepts is configurable.
    """

    def test_v2Only(self) -> None:
        """
        A v2-only guard refuses the seed scheme and challenges with v2 only.
        """
        harness = GuardHarness(self, schemes=[Scheme.V2])
        answer = harness.answer(seedHeaders())
        self.assertEqual(answer.json()["code"], "missing_headers")
        self.assertEqual(answer.header(b"WWW-Authenticate"),
                         [b'TXWS-HMAC-SHA256 realm="txws", error="missing_headers"'])
        self.assertEqual(harness.answer(v2Headers()).code, 200)

    def test_seedOnly(self) -> None:
        """
        A seed-only guard ignores v2 credentials and accepts the seed scheme.
        """
        harness = GuardHarness(self, schemes=[Scheme.SEED], realm="internal")
        answer = harness.answer(v2Headers())
        self.assertEqual(answer.json()["code"], "missing_headers")
        self.assertEqual(answer.header(b"WWW-Authenticate"),
                         [b'HMAC-SHA256 realm="internal", error="missing_headers"'])
        self.assertEqual(harness.answer(seedHeaders()).code, 200)

    def test_v2Preferred(self) -> None:
        """
        With both kinds of credentials, v2 decides: a bad v2 signature is not
        rescued by valid seed headers.
        """
        harness = GuardHarness(self)
        headers = {**seedHeaders(), **v2Headers(method=b"PUT")}
        self.assertEqual(harness.answer(headers).json()["code"], "bad_signature")

    def test_badConfiguration(self) -> None:
        """
        No scheme, a non-positive skew, a negative cap or an unquotable realm
        is refused at construction.
        """
        resource = RecordingResource()
        keys = {"k": b"s"}
        for options in [{"schemes": []}, {"skew": 0}, {"maxBodySize": -1},
                        {"realm": 'a"b'}, {"realm": ""}]:
            with self.assertRaises(ValueError):
                HMACGuard(resource, keys, reactor=Clock(), **options)  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            HMACGuard(object(), keys, reactor=Clock())


class GuardReplayTests(SynchronousTestCase):
    """
    A verified request is accepted once; the store holds only verified ones.
    """

    def test_seedExactReplay(self) -> None:
        """
        Sending the same seed-signed request twice: the second is C{replayed}.
        """
        harness = GuardHarness(self)
        self.assertEqual(harness.answer(seedHeaders()).code, 200)
        harness.clock.advance(30)
        answer = harness.answer(seedHeaders())
        self.assertEqual((answer.code, answer.json()["code"]), (401, "replayed"))
        self.assertEqual(len(harness.resource.seen), 1)

    def test_v2NonceReplay(self) -> None:
        """
        A v2 nonce is single-use per key, even on another valid signature.
        """
        harness = GuardHarness(self)
        self.assertEqual(harness.answer(v2Headers()).code, 200)
        answer = harness.answer(v2Headers(timestamp=VECTOR_TIMESTAMP + 1))
        self.assertEqual(answer.json()["code"], "replayed")
        answer = harness.answer(v2Headers(keyId="old", secret=OLD_SECRET))
        self.assertEqual(answer.code, 200)

    def test_subsetOfSignaturesReplay(self) -> None:
        """
        After a request with two valid signatures, either one alone is a replay.
        """
        harness = GuardHarness(self)
        sigs = [seedSignature(s.encode(), VECTOR_TIMESTAMP, VECTOR_BODY).encode()
                for s in (SECRET, OLD_SECRET)]
        headers = seedHeaders()
        headers[b"X-HMAC-Signature"] = [b" ".join(sigs)]
        self.assertEqual(harness.answer(headers).code, 200)
        for sig in sigs:
            headers[b"X-HMAC-Signature"] = [sig]
            self.assertEqual(harness.answer(headers).json()["code"], "replayed")

    def test_rememberedForTwiceTheSkew(self) -> None:
        """
        Tokens are stored for twice the skew window.
        """
        lifetimes: list[float] = []

        class Store:
            def remember(self, tokens: Sequence[str], lifetime: float) -> Deferred[bool]:
                lifetimes.append(lifetime)
                return succeed(True)

        harness = GuardHarness(self, replayStore=Store(), skew=45)
        self.assertEqual(harness.answer(seedHeaders()).code, 200)
        self.assertEqual(lifetimes, [90])

    def test_onlyVerifiedEnterStore(self) -> None:
        """
        Refused requests leave the store empty.
        """
        harness = GuardHarness(self)
        harness.answer(seedHeaders(secret="wrong"))
        harness.answer(seedHeaders(timestamp=1))
        harness.answer(v2Headers(keyId="nobody"))
        harness.answer({})
        assert isinstance(harness.store, MemoryReplayStore)
        self.assertEqual(len(harness.store), 0)

    def test_storeFull(self) -> None:
        """
        A full store answers 503 with C{Retry-After} instead of forgetting.
        """
        harness = GuardHarness(self, maxEntries=1)
        self.assertEqual(harness.answer(seedHeaders()).code, 200)
        harness.clock.advance(20)
        answer = harness.answer(v2Headers(keyId="old", secret=OLD_SECRET))
        self.assertEqual((answer.code, answer.json()["code"]), (503, "replay_store_full"))
        self.assertEqual(answer.header(b"Retry-After"), [b"100"])
        self.assertEqual(len(harness.resource.seen), 1)

    def test_noisyKeyCannotLockOutOthers(self) -> None:
        """
        A key that sends valid requests until it holds its whole share of
        the store (a quarter by default) gets 429 C{too_many_requests} with
        C{Retry-After} (until its own oldest entry expires), while another
        key is still accepted; when its entries expire, it is accepted again.
        Before per-key bounds, the noisy key filled the store and every
        sender got 503.
        """
        harness = GuardHarness(self, maxEntries=8)
        accepted = 0
        for n in range(12):
            answer = harness.answer(v2Headers(nonce=f"noisy-nonce-{n:06d}"))
            if answer.code == 200:
                accepted += 1
                continue
            document = answer.json()
            self.assertEqual((answer.code, document["code"]), (429, "too_many_requests"))
            self.assertEqual(answer.header(b"Retry-After"), [b"%d" % (122 - n)])
            self.assertEqual(answer.header(b"X-HMAC-Server-Time"),
                             [b"%d" % int(harness.clock.seconds())])
            harness.clock.advance(1)
        self.assertEqual(accepted, 2)
        for n in range(2):
            answer = harness.answer(
                v2Headers(keyId="old", secret=OLD_SECRET, nonce=f"other-nonce-{n:06d}"))
            self.assertEqual(answer.code, 200)
        self.assertEqual(harness.answer(seedHeaders(secret=OLD_SECRET)).code, 429)
        harness.clock.advance(120)
        answer = harness.answer(
            v2Headers(timestamp=VECTOR_TIMESTAMP + 130, nonce="noisy-nonce-again"))
        self.assertEqual(answer.code, 200)

    def test_plainStoreKeepsWorking(self) -> None:
        """
        A store with only C{remember} (the original L{ReplayStore}
        protocol) is still called that way.
        """
        calls: list[tuple[tuple[str, ...], float]] = []

        class Plain:
            def remember(self, tokens: Sequence[str], lifetime: float) -> Deferred[bool]:
                calls.append((tuple(tokens), lifetime))
                return succeed(True)

        harness = GuardHarness(self, replayStore=Plain())
        self.assertEqual(harness.answer(v2Headers()).code, 200)
        self.assertEqual(calls, [((f"v2 k1 {NONCE}",), 120)])

    def test_storeFailure(self) -> None:
        """
        A store that fails gives 503, and the failure is logged.
        """

        class Broken:
            def remember(self, tokens: Sequence[str], lifetime: float) -> Deferred[bool]:
                return fail(RuntimeError("redis down"))

        harness = GuardHarness(self, replayStore=Broken())
        answer = harness.answer(seedHeaders())
        self.assertEqual((answer.code, answer.json()["code"]), (503, "replay_store_unavailable"))
        self.assertNotIn(b"redis", answer.body)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_asynchronousStore(self) -> None:
        """
        The wrapped resource runs only when a slow store has answered.
        """
        pending: list[Deferred[bool]] = []

        class Slow:
            def remember(self, tokens: Sequence[str], lifetime: float) -> Deferred[bool]:
                d: Deferred[bool] = Deferred()
                pending.append(d)
                return d

        harness = GuardHarness(self, replayStore=Slow())
        result = harness.send(seedHeaders())
        self.assertNoResult(result)
        self.assertEqual(harness.resource.seen, [])
        pending[0].callback(True)
        harness.stub.flush()
        self.assertEqual(self.successResultOf(result).code, 200)


class GuardBodyCapTests(SynchronousTestCase):
    """
    The guard refuses bodies over its cap even on a plain L{Site}.
    """

    def test_overCap(self) -> None:
        """
        A body one byte over the cap is 413 C{body_too_large}.
        """
        harness = GuardHarness(self, maxBodySize=len(VECTOR_BODY) - 1)
        answer = harness.answer(seedHeaders())
        self.assertEqual((answer.code, answer.json()["code"]), (413, "body_too_large"))
        self.assertEqual(harness.resource.seen, [])

    def test_atCap(self) -> None:
        """
        A body of exactly the cap is accepted.
        """
        harness = GuardHarness(self, maxBodySize=len(VECTOR_BODY))
        self.assertEqual(harness.answer(seedHeaders()).code, 200)


class CappedSiteTests(SynchronousTestCase):
    """
    L{HMACSite} refuses oversized bodies while they arrive.
    """

    def connect(self, maxBodySize: int = 100) -> tuple[Any, StringTransport, RecordingResource]:
        resource = RecordingResource()
        site = HMACSite(resource, maxBodySize=maxBodySize, reactor=MemoryReactorClock())
        peer = IPv4Address("TCP", "10.0.0.7", 4321)
        channel = cast(Site, site).buildProtocol(peer)  # (Site's, unannotated)
        transport = StringTransport(peerAddress=peer)
        channel.makeConnection(transport)
        self.addCleanup(channel.connectionLost, Failure(ConnectionDone()))
        return channel, transport, resource

    def test_declaredLengthOverCap(self) -> None:
        """
        A C{Content-Length} over the cap is answered 413 from the headers
        alone, the connection closes and the resource never runs.
        """
        channel, transport, resource = self.connect()
        with capturedLogs() as events:
            channel.dataReceived(
                b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000\r\n\r\nab")
        response = transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 413 Content Too Large\r\n"))
        self.assertIn(b"Connection: close\r\n", response)
        head, _, body = response.partition(b"\r\n\r\n")
        self.assertEqual(json.loads(body)["code"], "body_too_large")
        self.assertIn(b"Content-Length: %d\r\n" % len(body), head)
        self.assertTrue(transport.disconnecting)
        channel.dataReceived(b"c" * 1000)
        self.assertEqual(resource.seen, [])
        self.assertEqual(transport.value(), response)
        [event] = [e for e in events if "limit" in e]
        self.assertEqual(event["peer"], "10.0.0.7:4321")

    def test_noContinueWhenRefused(self) -> None:
        """
        C{Expect: 100-continue} for an oversized body gets only the 413.
        """
        channel, transport, _ = self.connect()
        channel.dataReceived(b"POST /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                             b"Content-Length: 101\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))
        self.assertNotIn(b"100 Continue", transport.value())

    def test_declaredLengthAtCap(self) -> None:
        """
        A body of exactly the cap is delivered.
        """
        channel, transport, resource = self.connect()
        channel.dataReceived(b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n"
                             + b"a" * 100)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK"))
        self.assertEqual(resource.seen[0].body, b"a" * 100)

    def test_chunkedOverCap(self) -> None:
        """
        A chunked body is cut off with 413 as soon as it passes the cap.
        """
        channel, transport, resource = self.connect()
        channel.dataReceived(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"40\r\n" + b"a" * 64 + b"\r\n")
        self.assertEqual(transport.value(), b"")
        channel.dataReceived(b"40\r\n" + b"b" * 64 + b"\r\n0\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 413 "))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(resource.seen, [])

    def test_chunkedUnderCap(self) -> None:
        """
        A chunked body under the cap is delivered whole.
        """
        channel, transport, resource = self.connect()
        channel.dataReceived(b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"28\r\n" + b"a" * 40 + b"\r\n28\r\n" + b"b" * 40 + b"\r\n0\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK"))
        self.assertEqual(resource.seen[0].body, b"a" * 40 + b"b" * 40)

    def test_defaultCap(self) -> None:
        """
        The default cap is 1 MiB, for the site and the request class alike.
        """
        self.assertEqual(HMACSite(RecordingResource(), reactor=Clock()).maxBodySize, 1 << 20)
        self.assertEqual(CappedRequest.maxBodySize, 1 << 20)

    def test_requestFactoryMustCap(self) -> None:
        """
        A request factory that would not enforce the cap is refused.
        """
        with self.assertRaises(TypeError):
            HMACSite(RecordingResource(), requestFactory=Request, reactor=Clock())
