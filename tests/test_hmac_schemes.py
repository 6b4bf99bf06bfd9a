"""
Tests for L{txws.hmacauth.schemes}: the seed wire format (seeds.md section 2,
with its vectors) and the v2 format (docs/hmac.md, with its vector).
"""

from __future__ import annotations

import hashlib
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.hmac_support.resources import (
    EMPTY_BODY_SIGNATURE,
    SECRET,
    VECTOR_BODY,
    VECTOR_SIGNATURE,
    VECTOR_TIMESTAMP,
)
from tests.typedtrial import SynchronousTestCase
from txws.hmacauth.schemes import (
    FailureCode,
    Scheme,
    VerificationError,
    isV2Authorization,
    parseSeedSignatures,
    parseTimestamp,
    parseV2Authorization,
    seedSignature,
    signSeed,
    signV2,
    v2CanonicalString,
    v2Signature,
    verifySeed,
    verifyV2,
)

KEYS = {"k1": SECRET.encode()}
STAMP = str(VECTOR_TIMESTAMP).encode()

# The v2 vector of docs/hmac.md.
V2_KEY_ID = "backend-1"
V2_NONCE = "AAECAwQFBgcICQoLDA0ODxAR"
V2_HOST = b"inference.internal:8443"
V2_TARGET = b"/v1/infer?model=small&lang=en"
V2_SIGNATURE = "c1cc0be1daed09c8ae4bb766d78dc21ff345d4aca0eedb6c5528b9a179fb4293"
V2_AUTHORIZATION = (
    b"TXWS-HMAC-SHA256 keyId=backend-1,timestamp=1700000000,"
    b"nonce=AAECAwQFBgcICQoLDA0ODxAR,signature=" + V2_SIGNATURE.encode()
)
V2_KEYS = {V2_KEY_ID: SECRET.encode()}


class SeedSignatureTests(SynchronousTestCase):
    """
    The seed scheme's signature, seeds.md section 2.
    """

    def test_vectorWithBody(self) -> None:
        """
        The seeds.md vector for a JSON body is reproduced.
        """
        self.assertEqual(
            seedSignature(SECRET.encode(), VECTOR_TIMESTAMP, VECTOR_BODY), VECTOR_SIGNATURE
        )

    def test_vectorWithEmptyBody(self) -> None:
        """
        The seeds.md vector for an empty body is reproduced.
        """
        self.assertEqual(seedSignature(SECRET.encode(), "1700000000", b""), EMPTY_BODY_SIGNATURE)

    def test_signSeedHeaders(self) -> None:
        """
        L{signSeed} gives exactly the two headers of the scheme.
        """
        self.assertEqual(
            signSeed(SECRET.encode(), VECTOR_TIMESTAMP, VECTOR_BODY),
            {b"X-HMAC-Signature": VECTOR_SIGNATURE.encode(), b"X-HMAC-Timestamp": STAMP},
        )


class TimestampParsingTests(SynchronousTestCase):
    """
    Timestamps are ASCII digits only.
    """

    def test_digits(self) -> None:
        """
        Decimal digits parse to an integer.
        """
        self.assertEqual(parseTimestamp(b"1700000000"), 1700000000)

    def test_refusesEverythingElse(self) -> None:
        """
        Signs, spaces, decimals, exponents, underscores, non-ASCII digits,
        empty values and absurdly long values are all invalid.
        """
        for value in [b"+1700000000", b"-1", b" 1700000000", b"1700000000 ", b"1.7e9",
                      b"1_700_000_000", "\u0661\u0667".encode(), b"", b"1" * 16, b"0x10",
                      b"\xff\xfe"]:
            with self.assertRaises(VerificationError) as raised:
                parseTimestamp(value)
            self.assertEqual(raised.exception.code, FailureCode.INVALID_TIMESTAMP, value)


class SeedSignatureParsingTests(SynchronousTestCase):
    """
    The C{X-HMAC-Signature} value: lowercase hex, optional C{v1=}, several.
    """

    def test_plainAndLabelled(self) -> None:
        """
        A bare signature and a C{v1=}-labelled one parse to the hex digits.
        """
        sig = VECTOR_SIGNATURE.encode()
        self.assertEqual(parseSeedSignatures(sig), [sig])
        self.assertEqual(parseSeedSignatures(b"v1=" + sig), [sig])

    def test_several(self) -> None:
        """
        Space-separated signatures are all returned, in order.
        """
        a, b = b"a" * 64, b"b" * 64
        self.assertEqual(parseSeedSignatures(a + b" v1=" + b), [a, b])

    def test_malformed(self) -> None:
        """
        Uppercase, short, long, non-hex, non-ASCII, wrongly labelled and too
        many signatures are refused as C{bad_signature}.
        """
        sig = VECTOR_SIGNATURE.encode()
        for value in [sig.upper(), sig[:-1], sig + b"0", b"g" * 64, "é".encode() * 32,
                      b"v2=" + sig, b"v1=", b"v1:" + sig, b" ".join([sig] * 9), b"sha256=" + sig]:
            with self.assertRaises(VerificationError) as raised:
                parseSeedSignatures(value)
            self.assertEqual(raised.exception.code, FailureCode.BAD_SIGNATURE, value)


class SeedVerificationTests(SynchronousTestCase):
    """
    L{verifySeed}: the article's receiver checks, in its order, and more.
    """

    def verify(
        self,
        signature: bytes | None = VECTOR_SIGNATURE.encode(),
        timestamp: bytes | None = STAMP,
        body: bytes = VECTOR_BODY,
        now: float = VECTOR_TIMESTAMP,
        keys: dict[str, bytes] | None = None,
        skew: float = 60,
    ) -> object:
        return verifySeed(
            KEYS if keys is None else keys,
            None if signature is None else [signature],
            None if timestamp is None else [timestamp],
            body, now, skew,
        )

    def assertRefused(self, code: FailureCode, **kwargs: object) -> VerificationError:
        with self.assertRaises(VerificationError) as raised:
            self.verify(**kwargs)  # type: ignore[arg-type]
        error: VerificationError = raised.exception
        self.assertEqual(error.code, code)
        return error

    def test_acceptsVector(self) -> None:
        """
        The seeds.md vector verifies and names the key, the scheme and the
        signature as replay token.
        """
        verified = verifySeed(KEYS, [VECTOR_SIGNATURE.encode()], [STAMP], VECTOR_BODY,
                              VECTOR_TIMESTAMP)
        self.assertEqual(verified.keyId, "k1")
        self.assertIs(verified.scheme, Scheme.SEED)
        self.assertEqual(verified.timestamp, VECTOR_TIMESTAMP)
        self.assertIsNone(verified.nonce)
        self.assertEqual(verified.replayTokens, ("seed " + VECTOR_SIGNATURE,))

    def test_acceptsEmptyBodyVector(self) -> None:
        """
        The empty-body vector verifies.
        """
        self.verify(signature=EMPTY_BODY_SIGNATURE.encode(), body=b"")

    def test_missingHeaders(self) -> None:
        """
        A missing or empty header is C{missing_headers}, as in the article.
        """
        self.assertRefused(FailureCode.MISSING_HEADERS, signature=None)
        self.assertRefused(FailureCode.MISSING_HEADERS, timestamp=None)
        self.assertRefused(FailureCode.MISSING_HEADERS, signature=b"")
        error = self.assertRefused(FailureCode.MISSING_HEADERS, timestamp=b"")
        self.assertEqual(error.message, "Missing HMAC headers")

    def test_repeatedHeaders(self) -> None:
        """
        A header sent twice is refused rather than guessed at.
        """
        sig = VECTOR_SIGNATURE.encode()
        with self.assertRaises(VerificationError) as raised:
            verifySeed(KEYS, [sig, sig], [STAMP], VECTOR_BODY, VECTOR_TIMESTAMP)
        self.assertEqual(raised.exception.code, FailureCode.BAD_SIGNATURE)
        with self.assertRaises(VerificationError) as raised:
            verifySeed(KEYS, [sig], [STAMP, STAMP], VECTOR_BODY, VECTOR_TIMESTAMP)
        self.assertEqual(raised.exception.code, FailureCode.INVALID_TIMESTAMP)

    def test_invalidTimestamp(self) -> None:
        """
        A timestamp that is not plain digits is C{invalid_timestamp}.
        """
        error = self.assertRefused(FailureCode.INVALID_TIMESTAMP, timestamp=b"+1700000000")
        self.assertEqual(error.message, "Invalid timestamp")

    def test_windowEdges(self) -> None:
        """
        Exactly 60 s of skew either way is accepted; 61 s is not.
        """
        self.verify(now=VECTOR_TIMESTAMP + 60)
        self.verify(now=VECTOR_TIMESTAMP - 60)
        old = self.assertRefused(FailureCode.STALE_TIMESTAMP, now=VECTOR_TIMESTAMP + 61)
        self.assertEqual(old.message, "Request timestamp too old")
        future = self.assertRefused(FailureCode.STALE_TIMESTAMP, now=VECTOR_TIMESTAMP - 61)
        self.assertEqual(future.message, "Request timestamp is in the future")

    def test_fractionalNow(self) -> None:
        """
        The receiver's clock may have a fraction; the comparison is exact.
        """
        self.verify(now=VECTOR_TIMESTAMP + 60.0)
        self.assertRefused(FailureCode.STALE_TIMESTAMP, now=VECTOR_TIMESTAMP + 60.001)

    def test_customSkew(self) -> None:
        """
        The window follows the C{skew} argument.
        """
        self.verify(now=VECTOR_TIMESTAMP + 5, skew=5)
        self.assertRefused(FailureCode.STALE_TIMESTAMP, now=VECTOR_TIMESTAMP + 6, skew=5)

    def test_staleCheckedBeforeSignature(self) -> None:
        """
        As in the article, an old timestamp is reported even if the signature
        is also wrong.
        """
        self.assertRefused(FailureCode.STALE_TIMESTAMP, signature=b"0" * 64, now=0)

    def test_tamperedBody(self) -> None:
        """
        Changing one byte of the body invalidates the signature.
        """
        error = self.assertRefused(FailureCode.BAD_SIGNATURE,
                                   body=VECTOR_BODY.replace(b"42", b"43"))
        self.assertEqual(error.message, "Invalid HMAC signature")

    def test_exactBytesNotJSON(self) -> None:
        """
        The same JSON value serialized differently is a different message:
        verification runs over bytes, never over re-serialized JSON.
        """
        self.assertRefused(FailureCode.BAD_SIGNATURE,
                           body=b'{"user_id": 42, "text": "hello"}')

    def test_wrongKey(self) -> None:
        """
        A signature made with another secret is refused.
        """
        self.assertRefused(FailureCode.BAD_SIGNATURE, keys={"k1": b"other-secret"})

    def test_malformedSignature(self) -> None:
        """
        Uppercase hex of the right signature is refused: lowercase only.
        """
        self.assertRefused(FailureCode.BAD_SIGNATURE, signature=VECTOR_SIGNATURE.upper().encode())

    def test_rotationTriesEveryKey(self) -> None:
        """
        With several active keys, the one that signed is found and named.
        """
        keys = {"new": b"new-secret", "old": SECRET.encode()}
        self.assertEqual(self.verify(keys=keys).keyId, "old")  # type: ignore[attr-defined]

    def test_labelledAndSeveralSignatures(self) -> None:
        """
        A C{v1=} label and several signatures (new key, old key) are
        accepted, and every signature that verified becomes a replay token.
        """
        keys = {"old": SECRET.encode(), "new": b"new-secret"}
        newSig = seedSignature(b"new-secret", VECTOR_TIMESTAMP, VECTOR_BODY)
        header = f"v1={newSig} v1={VECTOR_SIGNATURE} v1={'0' * 64}".encode()
        verified = verifySeed(keys, [header], [STAMP], VECTOR_BODY, VECTOR_TIMESTAMP)
        self.assertEqual(verified.keyId, "old")
        self.assertEqual(
            sorted(verified.replayTokens), sorted(["seed " + newSig, "seed " + VECTOR_SIGNATURE])
        )

    def test_signsTimestampAsSent(self) -> None:
        """
        The message uses the timestamp bytes received, so a sender that
        zero-pads verifies against the padded text.
        """
        padded = b"0" + STAMP
        sig = seedSignature(SECRET.encode(), padded, VECTOR_BODY).encode()
        self.verify(signature=sig, timestamp=padded)
        self.assertRefused(FailureCode.BAD_SIGNATURE, timestamp=padded)


class V2FormatTests(SynchronousTestCase):
    """
    The v2 canonical string, signature and header (docs/hmac.md).
    """

    def test_canonicalString(self) -> None:
        """
        Eight lines, no final newline, host lowercased, body as hex SHA-256.
        """
        canonical = v2CanonicalString(b"backend-1", STAMP, V2_NONCE.encode(), b"POST",
                                      b"Inference.Internal:8443", V2_TARGET, VECTOR_BODY)
        self.assertEqual(canonical, b"\n".join([
            b"TXWS-HMAC-SHA256", b"backend-1", STAMP, V2_NONCE.encode(), b"POST",
            V2_HOST, V2_TARGET, hashlib.sha256(VECTOR_BODY).hexdigest().encode(),
        ]))

    def test_vector(self) -> None:
        """
        The test vector published in docs/hmac.md is reproduced.
        """
        canonical = v2CanonicalString(b"backend-1", STAMP, V2_NONCE.encode(), b"POST",
                                      V2_HOST, V2_TARGET, VECTOR_BODY)
        self.assertEqual(v2Signature(SECRET.encode(), canonical), V2_SIGNATURE)
        self.assertEqual(
            signV2(SECRET.encode(), V2_KEY_ID, b"POST", V2_HOST, V2_TARGET, VECTOR_BODY,
                   VECTOR_TIMESTAMP, V2_NONCE),
            V2_AUTHORIZATION,
        )

    def test_vectorInDocs(self) -> None:
        """
        docs/hmac.md shows the same vector this module checks.
        """
        from pathlib import Path

        text = (Path(__file__).resolve().parent.parent / "docs" / "hmac.md").read_text("utf-8")
        self.assertIn(V2_SIGNATURE, text)
        self.assertIn(V2_AUTHORIZATION.decode(), text)
        self.assertIn(VECTOR_SIGNATURE, text)

    def test_documentedSenderReproducesVector(self) -> None:
        """
        The Python sender shown in docs/hmac.md, given the vector's time and
        nonce, produces the vector's C{Authorization} header.
        """
        import re
        from pathlib import Path
        from types import SimpleNamespace

        text = (Path(__file__).resolve().parent.parent / "docs" / "hmac.md").read_text("utf-8")
        section = text.split("### A sender, in Python", 1)[1]
        match = re.search(r"```python\n(.*?)```", section, re.S)
        assert match is not None
        namespace: dict[str, Any] = {}
        exec(match.group(1), namespace)
        namespace["time"] = SimpleNamespace(time=lambda: VECTOR_TIMESTAMP + 0.9)
        namespace["secrets"] = SimpleNamespace(token_urlsafe=lambda n: V2_NONCE)
        header = namespace["sign_v2"](
            "POST", "https://inference.internal:8443" + V2_TARGET.decode(), VECTOR_BODY,
            V2_KEY_ID, SECRET,
        )
        self.assertEqual(header.encode(), V2_AUTHORIZATION)

    def test_signRefusesBadKeyIdOrNonce(self) -> None:
        """
        A sender cannot produce a header the receiver would refuse to parse.
        """
        with self.assertRaises(ValueError):
            signV2(b"s", "bad id", b"GET", b"h", b"/", b"", 1, V2_NONCE)
        with self.assertRaises(ValueError):
            signV2(b"s", "k", b"GET", b"h", b"/", b"", 1, "short")

    def test_isV2Authorization(self) -> None:
        """
        The scheme token is recognised case-insensitively, and only it.
        """
        self.assertTrue(isV2Authorization(V2_AUTHORIZATION))
        self.assertTrue(isV2Authorization(b"txws-hmac-sha256 x"))
        self.assertFalse(isV2Authorization(b"Bearer abc"))
        self.assertFalse(isV2Authorization(b""))


class V2ParsingTests(SynchronousTestCase):
    """
    Strict parsing of C{Authorization: TXWS-HMAC-SHA256 ...}.
    """

    def assertRefused(self, value: bytes, code: FailureCode) -> None:
        with self.assertRaises(VerificationError) as raised:
            parseV2Authorization(value)
        self.assertEqual(raised.exception.code, code, value)

    def test_parses(self) -> None:
        """
        The four parameters are returned as sent.
        """
        credentials = parseV2Authorization(V2_AUTHORIZATION)
        self.assertEqual(
            (credentials.keyId, credentials.timestamp, credentials.nonce, credentials.signature),
            (b"backend-1", STAMP, V2_NONCE.encode(), V2_SIGNATURE.encode()),
        )

    def test_anyOrderSpacesAndNameCase(self) -> None:
        """
        Parameters may come in any order, with spaces after commas and any
        case in names (RFC 9110 section 11.2).
        """
        value = (b"TXWS-HMAC-SHA256 Signature=" + V2_SIGNATURE.encode()
                 + b", NONCE=" + V2_NONCE.encode() + b",  keyid=backend-1, timestamp=1700000000")
        self.assertEqual(parseV2Authorization(value), parseV2Authorization(V2_AUTHORIZATION))

    def test_missingParameter(self) -> None:
        """
        A missing parameter is C{missing_headers}, naming it.
        """
        value = V2_AUTHORIZATION.replace(b",nonce=" + V2_NONCE.encode(), b"")
        with self.assertRaises(VerificationError) as raised:
            parseV2Authorization(value)
        self.assertEqual(raised.exception.code, FailureCode.MISSING_HEADERS)
        self.assertIn("nonce", raised.exception.message)

    def test_malformed(self) -> None:
        """
        Duplicates, unknown parameters, quoting, empty values, bad alphabets
        and non-ASCII bytes are refused.
        """
        sig = V2_SIGNATURE.encode()
        base = b"TXWS-HMAC-SHA256 keyId=k,timestamp=1700000000,nonce=" + V2_NONCE.encode()
        for value in [
            base + b",signature=" + sig + b",keyId=k",
            base + b",signature=" + sig + b",extra=1",
            base + b',signature="' + sig + b'"',
            base + b",signature=",
            base + b",signature=" + sig.upper(),
            base + b",signature=" + sig + b",",
            base + b",signature=" + sig[:-1] + "é".encode(),
            base.replace(b"keyId=k", b"keyId=a/b") + b",signature=" + sig,
            base.replace(b"keyId=k", b"keyId=" + b"k" * 65) + b",signature=" + sig,
            base.replace(V2_NONCE.encode(), b"short") + b",signature=" + sig,
            base.replace(V2_NONCE.encode(), V2_NONCE.encode() + b"+") + b",signature=" + sig,
            b"TXWS-HMAC-SHA256 " + base[17:].replace(b",", b" ") + b" signature=" + sig,
        ]:
            self.assertRefused(value, FailureCode.BAD_SIGNATURE)

    def test_invalidTimestamp(self) -> None:
        """
        A non-digit timestamp is C{invalid_timestamp}.
        """
        self.assertRefused(V2_AUTHORIZATION.replace(STAMP, b"-" + STAMP),
                           FailureCode.INVALID_TIMESTAMP)

    def test_otherScheme(self) -> None:
        """
        Another C{Authorization} scheme is not ours: C{missing_headers}.
        """
        self.assertRefused(b"Bearer abc", FailureCode.MISSING_HEADERS)


class V2VerificationTests(SynchronousTestCase):
    """
    L{verifyV2}: everything signed is bound.
    """

    def verify(self, **changes: object) -> object:
        arguments: dict[str, object] = dict(
            keys=V2_KEYS, authorization=V2_AUTHORIZATION, method=b"POST", host=V2_HOST,
            target=V2_TARGET, body=VECTOR_BODY, now=VECTOR_TIMESTAMP, skew=60,
        )
        arguments.update(changes)
        return verifyV2(**arguments)  # type: ignore[arg-type]

    def assertRefused(self, code: FailureCode, **changes: object) -> VerificationError:
        with self.assertRaises(VerificationError) as raised:
            self.verify(**changes)
        error: VerificationError = raised.exception
        self.assertEqual(error.code, code, changes)
        return error

    def test_acceptsVector(self) -> None:
        """
        The docs vector verifies; the replay token is key id and nonce.
        """
        verified = verifyV2(V2_KEYS, V2_AUTHORIZATION, b"POST", V2_HOST, V2_TARGET,
                            VECTOR_BODY, VECTOR_TIMESTAMP)
        self.assertEqual(verified.keyId, V2_KEY_ID)
        self.assertIs(verified.scheme, Scheme.V2)
        self.assertEqual(verified.nonce, V2_NONCE)
        self.assertEqual(verified.replayTokens, (f"v2 {V2_KEY_ID} {V2_NONCE}",))

    def test_hostCaseInsensitive(self) -> None:
        """
        Host names compare without case, as DNS does.
        """
        self.verify(host=V2_HOST.upper())

    def test_everyPartIsBound(self) -> None:
        """
        Another method, path, query, host, port or body breaks the signature.
        """
        for changes in [
            {"method": b"PUT"},
            {"target": b"/v1/other?model=small&lang=en"},
            {"target": b"/v1/infer?model=large&lang=en"},
            {"target": b"/v1/infer"},
            {"host": b"other.internal:8443"},
            {"host": b"inference.internal"},
            {"body": VECTOR_BODY + b" "},
        ]:
            self.assertRefused(FailureCode.BAD_SIGNATURE, **changes)

    def test_keyIdIsBound(self) -> None:
        """
        Relabelling a signature with another key id that has the same secret
        still fails: the key id is part of the signed string.
        """
        value = V2_AUTHORIZATION.replace(b"keyId=backend-1", b"keyId=backend-2")
        keys = {"backend-2": SECRET.encode()}
        self.assertRefused(FailureCode.BAD_SIGNATURE, keys=keys, authorization=value)

    def test_unknownKey(self) -> None:
        """
        A key id the ring does not hold is C{unknown_key}.
        """
        self.assertRefused(FailureCode.UNKNOWN_KEY, keys={"other": b"x"})

    def test_window(self) -> None:
        """
        The 60 s window applies both ways.
        """
        self.verify(now=VECTOR_TIMESTAMP + 60)
        self.assertRefused(FailureCode.STALE_TIMESTAMP, now=VECTOR_TIMESTAMP + 61)
        self.assertRefused(FailureCode.STALE_TIMESTAMP, now=VECTOR_TIMESTAMP - 61)

    def test_wrongSecret(self) -> None:
        """
        The right key id with another secret fails.
        """
        self.assertRefused(FailureCode.BAD_SIGNATURE, keys={V2_KEY_ID: b"nope"})


class ParsersNeverCrashTests(SynchronousTestCase):
    """
    Arbitrary bytes in any header end as L{VerificationError}, nothing else.
    """

    @given(st.binary(max_size=300), st.binary(max_size=40), st.binary(max_size=40))
    def test_seed(self, signature: bytes, timestamp: bytes, body: bytes) -> None:
        """
        L{verifySeed} raises only L{VerificationError} on junk.
        """
        with self.assertRaises(VerificationError):
            verifySeed(KEYS, [signature], [timestamp], body, VECTOR_TIMESTAMP)

    @given(st.binary(max_size=300), st.binary(max_size=40))
    def test_v2(self, tail: bytes, host: bytes) -> None:
        """
        L{verifyV2} raises only L{VerificationError} on junk after the scheme.
        """
        with self.assertRaises(VerificationError):
            verifyV2(V2_KEYS, b"TXWS-HMAC-SHA256 " + tail, b"GET", host, b"/", b"",
                     VECTOR_TIMESTAMP)

    @given(st.lists(st.sampled_from([b"keyId=", b"nonce=", b"timestamp=", b"signature=",
                                     b",", b" ", b"=", b"a" * 20, b"0" * 64, b"170",
                                     "é".encode()]), max_size=20))
    def test_v2Structured(self, parts: list[bytes]) -> None:
        """
        Near-miss parameter lists also end as L{VerificationError}.
        """
        with self.assertRaises(VerificationError):
            verifyV2(V2_KEYS, b"TXWS-HMAC-SHA256 " + b"".join(parts), b"GET", b"h", b"/",
                     b"", VECTOR_TIMESTAMP)
