"""
Tests for L{txws.hub.tokens}: channel tokens for private channels
(C{docs/hub.md}, "Channel tokens").
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.typedtrial import SynchronousTestCase
from txws.hmacauth.keys import KeyRing
from txws.hub.tokens import (
    MAX_TOKEN_LENGTH,
    TokenError,
    mintToken,
    tokenChannel,
    verifyToken,
)

SECRET = "token-secret-do-not-print"
RING = KeyRing({"dev": SECRET})
CHANNEL = "private-user-42"
NOW = 1_790_000_000.0


def b64(raw: bytes) -> str:
    """
    base64url without padding, written out here rather than taken from the
    module under test.
    """
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def handMade(secret: str, keyId: str, channel: str, expiry: str) -> str:
    """
    A token built by hand from the specification.
    """
    message = f"txws-channel-token-v1\n{keyId}\n{channel}\n{expiry}".encode()
    signature = b64(hmac.new(secret.encode(), message, hashlib.sha256).digest())
    return f"txws1.{keyId}.{b64(channel.encode())}.{expiry}.{signature}"


def withPart(token: str, index: int, value: str) -> str:
    parts = token.split(".")
    parts[index] = value
    return ".".join(parts)


class MintTests(SynchronousTestCase):
    """
    L{mintToken} writes the format of C{docs/hub.md}.
    """

    def test_knownVector(self) -> None:
        """
        A minted token is exactly the one built by hand from the
        specification, with the channel spelled in base64url.
        """
        token = mintToken(RING, CHANNEL, 300, NOW)
        self.assertEqual(token, handMade(SECRET, "dev", CHANNEL, "1790000300"))
        self.assertEqual(token.split(".")[2], "cHJpdmF0ZS11c2VyLTQy")
        self.assertTrue(token.isascii())

    def test_fixedVector(self) -> None:
        """
        A vector computed once outside Python (C{openssl dgst -sha256 -hmac}),
        so that a mistake shared by the module and L{handMade} is noticed.
        """
        self.assertEqual(
            handMade("test-secret", "k1", "private-a", "1700000300"),
            "txws1.k1.cHJpdmF0ZS1h.1700000300."
            "LFfQejp1L7SyV9ghOljcAnb20V0Gqi2q956ouD0Vt_8",
        )
        ring = KeyRing({"k1": "test-secret"})
        self.assertEqual(
            mintToken(ring, "private-a", 300, 1_700_000_000),
            "txws1.k1.cHJpdmF0ZS1h.1700000300.LFfQejp1L7SyV9ghOljcAnb20V0Gqi2q956ouD0Vt_8",
        )

    def test_expiryRoundedUp(self) -> None:
        """
        The expiry is C{now + ttl} rounded up, so a token lives at least
        C{ttl} seconds; a whole sum is kept as is.
        """
        self.assertEqual(mintToken(RING, CHANNEL, 0.5, 100.2).split(".")[3], "101")
        self.assertEqual(mintToken(RING, CHANNEL, 10, 100.0).split(".")[3], "110")
        self.assertEqual(mintToken(RING, CHANNEL, 0.1, 100.9).split(".")[3], "101")

    def test_keyChoice(self) -> None:
        """
        The key is chosen with L{KeyRing.choose}: by id, or the only one.
        """
        ring = KeyRing({"old": "o", "new": "n"})
        token = mintToken(ring, CHANNEL, 60, NOW, "old")
        self.assertEqual(token.split(".")[1], "old")
        self.assertEqual(token, handMade("o", "old", CHANNEL, "1790000060"))
        with self.assertRaises(ValueError):
            mintToken(ring, CHANNEL, 60, NOW)
        with self.assertRaises(ValueError):
            mintToken(ring, CHANNEL, 60, NOW, "missing")

    def test_refusals(self) -> None:
        """
        Invalid channel names, non-positive or non-finite lifetimes, and key
        ids containing a dot are refused with L{ValueError}, never echoing a
        secret.
        """
        for channel in ["", "a b", "x" * 129, "é", "news\n"]:
            with self.assertRaises(ValueError):
                mintToken(RING, channel, 60, NOW)
        for ttl in [0, -1, 0.0, float("nan"), float("inf"), float("-inf")]:
            with self.assertRaises(ValueError):
                mintToken(RING, CHANNEL, ttl, NOW)
        with self.assertRaises(ValueError):
            mintToken(RING, CHANNEL, 60, float("inf"))
        with self.assertRaises(ValueError) as raised:
            mintToken(KeyRing({"a.b": SECRET}), CHANNEL, 60, NOW)
        self.assertNotIn(SECRET, str(raised.exception))


class VerifyTests(SynchronousTestCase):
    """
    L{verifyToken} checks shape, key, signature, expiry, then channel.
    """

    def assertRefused(self, token: object, code: str, channel: str = CHANNEL,
                      now: float = NOW, ring: object = RING) -> TokenError:
        with self.assertRaises(TokenError) as raised:
            verifyToken(ring, token, channel, now)  # type: ignore[arg-type]
        error: TokenError = raised.exception
        self.assertEqual(error.code, code)
        self.assertNotIn(SECRET, error.message)
        if isinstance(token, str) and token.count(".") == 4 and token.split(".")[4]:
            self.assertNotIn(token.split(".")[4], error.message)
        return error

    def test_roundTrip(self) -> None:
        """
        A minted token verifies for its channel and gives its key id.
        """
        token = mintToken(RING, CHANNEL, 300, NOW)
        self.assertEqual(verifyToken(RING, token, CHANNEL, NOW), "dev")
        self.assertEqual(verifyToken({"dev": SECRET.encode()}, token, CHANNEL, NOW), "dev")

    def test_handMadeAccepted(self) -> None:
        """
        A token built by hand from the specification verifies, for every
        kind of character a channel name may hold.
        """
        channel = "AZaz09_-.:/x"
        token = handMade(SECRET, "dev", channel, "1790000001")
        self.assertEqual(verifyToken(RING, token, channel, NOW), "dev")

    def test_expiryBoundary(self) -> None:
        """
        A token is accepted up to the second before its expiry and refused
        from its expiry on.
        """
        token = handMade(SECRET, "dev", CHANNEL, "1790000000")
        self.assertEqual(verifyToken(RING, token, CHANNEL, 1_789_999_999), "dev")
        self.assertEqual(verifyToken(RING, token, CHANNEL, 1_789_999_999.999), "dev")
        self.assertRefused(token, "token_expired", now=1_790_000_000)
        self.assertRefused(token, "token_expired", now=1_790_000_000.5)
        minted = mintToken(RING, CHANNEL, 300, NOW)
        self.assertRefused(minted, "token_expired", now=NOW + 300)
        self.assertEqual(verifyToken(RING, minted, CHANNEL, NOW + 299), "dev")

    def test_wrongChannel(self) -> None:
        """
        A valid token for another channel is C{token_wrong_channel}.
        """
        token = mintToken(RING, "private-user-43", 300, NOW)
        self.assertRefused(token, "token_wrong_channel")
        self.assertRefused(token, "token_wrong_channel", channel="not a channel")

    def test_order(self) -> None:
        """
        The checks run in the documented order: a forged token is invalid
        even when expired or for another channel, and an expired token is
        expired even when for another channel.
        """
        expiredElsewhere = handMade(SECRET, "dev", "private-other", "1000")
        self.assertRefused(expiredElsewhere, "token_expired")
        forged = handMade("not-the-secret", "dev", "private-other", "1000")
        self.assertRefused(forged, "token_invalid")
        unknown = handMade(SECRET, "nobody", "private-other", "1000")
        self.assertRefused(unknown, "token_invalid")

    def test_unknownKey(self) -> None:
        """
        A token signed with a key id the ring does not hold is invalid.
        """
        token = mintToken(KeyRing({"other": SECRET}), CHANNEL, 300, NOW)
        error = self.assertRefused(token, "token_invalid")
        self.assertIn("unknown key", error.message)

    def test_forged(self) -> None:
        """
        A token signed with another secret under a known key id is invalid.
        """
        token = mintToken(KeyRing({"dev": "guess"}), CHANNEL, 300, NOW)
        error = self.assertRefused(token, "token_invalid")
        self.assertIn("signature", error.message)

    def test_tamperEachPart(self) -> None:
        """
        Changing any single part of a valid token makes it invalid, even
        into another well-formed value (a later expiry, another channel).
        """
        ring = KeyRing({"dev": SECRET, "dew": SECRET})
        token = mintToken(ring, CHANNEL, 300, NOW, "dev")
        signature = token.split(".")[4]
        otherSignature = ("B" if signature[0] == "A" else "A") + signature[1:]
        for index, value in [
            (0, "txws2"),
            (0, "TXWS1"),
            (1, "dew"),
            (2, b64(b"private-user-43")),
            (3, "1790000301"),
            (3, "9999999999"),
            (4, otherSignature),
            (4, signature[:-1] + ("A" if signature[-1] != "A" else "Q")),
        ]:
            self.assertRefused(withPart(token, index, value), "token_invalid", ring=ring)

    def test_canonicalSpellingsOnly(self) -> None:
        """
        Other spellings of a valid token's parts (padding, non-canonical
        base64 bits, leading zeros, signs) are refused, so a token has one
        spelling.
        """
        token = mintToken(RING, CHANNEL, 300, NOW)
        channel64 = token.split(".")[2]
        signature = token.split(".")[4]
        # "cHJpdmF0ZS11c2VyLTQy" has no spare bits; "news" does.
        news = handMade(SECRET, "dev", "news", "1790000300")
        self.assertEqual(news.split(".")[2], "bmV3cw")
        self.assertEqual(verifyToken(RING, news, "news", NOW), "dev")
        variants = [
            withPart(token, 2, channel64 + "=="),
            withPart(news, 2, "bmV3cx"),
            withPart(token, 3, "01790000300"),
            withPart(token, 3, "+1790000300"),
            withPart(token, 3, " 1790000300"),
            withPart(token, 3, "1790000300 "),
            withPart(token, 3, "1_790_000_300"),
            withPart(token, 3, "\u0661790000300"),
            withPart(token, 4, signature + "="),
            withPart(token, 4, signature[:-1] + chr(ord(signature[-1]) ^ 1)),
            token + "\n",
            " " + token,
        ]
        for variant in variants:
            self.assertRefused(variant, "token_invalid", channel=CHANNEL)
        # Correctly signed, but an expiry spelled in a way int() would take.
        for expiry in ["01790000300", "+1790000300", " 1790000300", "1_790_000_300",
                       "\u0661790000300", "1790000300\n"]:
            signed = handMade(SECRET, "dev", CHANNEL, expiry)
            self.assertRefused(signed, "token_invalid", channel=CHANNEL)
            self.assertIsNone(tokenChannel(signed))

    def test_malformed(self) -> None:
        """
        Wrong part counts, empty parts, base64 that is not a channel name,
        over-long tokens and non-strings are invalid.
        """
        token = mintToken(RING, CHANNEL, 300, NOW)
        longName = "private-" + "x" * 120
        tooLongChannel = "private-" + "x" * 121
        self.assertEqual(verifyToken(RING, mintToken(RING, longName, 1, NOW), longName, NOW),
                         "dev")
        for bad in [
            "",
            "txws1",
            token + ".extra",
            token.rsplit(".", 1)[0],
            withPart(token, 1, ""),
            withPart(token, 2, ""),
            withPart(token, 3, ""),
            withPart(token, 4, ""),
            withPart(token, 2, b64(b"has space")),
            withPart(token, 2, b64("caf\u00e9".encode())),
            withPart(token, 2, b64(b"\xff\xfe")),
            withPart(token, 2, b64(tooLongChannel.encode())),
            withPart(token, 2, "a"),
            withPart(token, 2, "cHJp*mF0ZS11c2VyLTQy"),
            handMade(SECRET, "dev", "x" * 129, "1790000300"),
            "txws1.dev." + "A" * (MAX_TOKEN_LENGTH) + ".1790000300." + "A" * 43,
            token.encode(),
            None,
            42,
            ["txws1"],
        ]:
            self.assertRefused(bad, "token_invalid")

    def test_lengthLimit(self) -> None:
        """
        A token longer than L{MAX_TOKEN_LENGTH} is refused before anything
        else, even if its signature is right.
        """
        keyId = "k" * 64
        ring = {keyId: SECRET.encode()}
        expiry = "1" + "0" * (MAX_TOKEN_LENGTH - 240)
        token = handMade(SECRET, keyId, "private-" + "x" * 120, expiry)
        self.assertGreater(len(token), MAX_TOKEN_LENGTH)
        self.assertRefused(token, "token_invalid", channel="private-" + "x" * 120, ring=ring)
        fits = handMade(SECRET, keyId, "private-" + "x" * 120, expiry[: -(len(token) - 1024)])
        self.assertEqual(len(fits), MAX_TOKEN_LENGTH)
        self.assertEqual(verifyToken(ring, fits, "private-" + "x" * 120, NOW), keyId)

    def test_keyRotation(self) -> None:
        """
        A token minted with an old key verifies while that key is in the
        ring, beside the new one, and is refused once the key is removed.
        """
        before = KeyRing({"2026-01": "old-secret"})
        during = KeyRing({"2026-06": "new-secret", "2026-01": "old-secret"})
        after = KeyRing({"2026-06": "new-secret"})
        old = mintToken(before, CHANNEL, 300, NOW)
        new = mintToken(during, CHANNEL, 300, NOW, "2026-06")
        self.assertEqual(verifyToken(during, old, CHANNEL, NOW), "2026-01")
        self.assertEqual(verifyToken(during, new, CHANNEL, NOW), "2026-06")
        self.assertEqual(verifyToken(after, new, CHANNEL, NOW), "2026-06")
        with self.assertRaises(TokenError) as raised:
            verifyToken(after, old, CHANNEL, NOW)
        self.assertEqual(raised.exception.code, "token_invalid")

    def test_errorText(self) -> None:
        """
        L{TokenError} carries its code and message, and shows both.
        """
        error = TokenError("token_expired", "the channel token has expired")
        self.assertEqual((error.code, error.message),
                         ("token_expired", "the channel token has expired"))
        self.assertEqual(str(error), "token_expired: the channel token has expired")


_TOKEN_ALPHABET = st.sampled_from(
    [*"txws1.devABCZabcz0189_-=+/ \n\u00e9\u0661", "txws1.", ".dev.", "\x00"]
)


def _mutations() -> st.SearchStrategy[str]:
    """
    Valid tokens with a few characters replaced, inserted or deleted.
    """
    token = mintToken(RING, CHANNEL, 300, NOW)

    def mutate(edits: list[tuple[int, int, str]]) -> str:
        text = token
        for kind, position, character in edits:
            position %= len(text) + 1
            if kind == 0:
                text = text[:position] + character + text[position + 1:]
            elif kind == 1:
                text = text[:position] + character + text[position:]
            else:
                text = text[:position] + text[position + 1:]
        return text

    edit = st.tuples(st.integers(0, 2), st.integers(0, 2000), st.characters())
    return st.lists(edit, min_size=1, max_size=4).map(mutate)


class FuzzTests(SynchronousTestCase):
    """
    Whatever it is given, L{verifyToken} raises only L{TokenError} and
    L{tokenChannel} returns a channel or C{None}.
    """

    def check(self, candidate: object, channel: str = CHANNEL) -> None:
        try:
            keyId = verifyToken(RING, candidate, channel, NOW)
        except TokenError as e:
            self.assertIn(e.code, ("token_invalid", "token_expired", "token_wrong_channel"))
            self.assertNotIn(SECRET, e.message)
        else:
            # Only the one true token can pass.
            self.assertEqual(keyId, "dev")
            self.assertEqual(candidate, mintToken(RING, channel, 300, NOW))
        named = tokenChannel(candidate)
        self.assertTrue(named is None or isinstance(named, str))

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=1100))
    def test_anyText(self, candidate: str) -> None:
        """
        Arbitrary text.
        """
        self.check(candidate)

    @settings(max_examples=300, deadline=None)
    @given(st.lists(_TOKEN_ALPHABET, max_size=80).map("".join))
    def test_tokenLikeText(self, candidate: str) -> None:
        """
        Text made of the characters and pieces tokens are made of.
        """
        self.check(candidate)

    @settings(max_examples=300, deadline=None)
    @given(_mutations())
    def test_mutatedTokens(self, candidate: str) -> None:
        """
        A valid token with a few edits never verifies unless the edits
        cancelled out.
        """
        self.check(candidate)

    @settings(max_examples=200, deadline=None)
    @given(st.one_of(st.none(), st.integers(), st.floats(), st.binary(), st.booleans(),
                     st.lists(st.text(max_size=5), max_size=5),
                     st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)))
    def test_notText(self, candidate: object) -> None:
        """
        Values that are not strings (as a JSON control message may carry).
        """
        with self.assertRaises(TokenError) as raised:
            verifyToken(RING, candidate, CHANNEL, NOW)
        self.assertEqual(raised.exception.code, "token_invalid")
        self.assertIsNone(tokenChannel(candidate))

    @settings(max_examples=200, deadline=None)
    @given(
        st.text(alphabet="ABCXYZabcxyz0189_-.:/", min_size=1, max_size=128),
        st.floats(min_value=0.001, max_value=1e6),
        st.floats(min_value=0, max_value=4e9),
    )
    def test_roundTrip(self, channel: str, ttl: float, now: float) -> None:
        """
        Every minted token names its channel and verifies for it until its
        expiry, which is at least C{ttl} away.
        """
        token = mintToken(RING, channel, ttl, now)
        self.assertEqual(tokenChannel(token), channel)
        self.assertEqual(verifyToken(RING, token, channel, now), "dev")
        expiry = int(token.split(".")[3])
        self.assertGreaterEqual(expiry, now + ttl)
        self.assertLess(expiry, now + ttl + 1)
        self.assertEqual(verifyToken(RING, token, channel, expiry - 1), "dev")
        with self.assertRaises(TokenError):
            verifyToken(RING, token, channel, expiry)


class TokenChannelTests(SynchronousTestCase):
    """
    L{tokenChannel} reads the channel a token names, without verifying.
    """

    def test_wellFormed(self) -> None:
        """
        The channel of a well-formed token, even an expired or forged one.
        """
        self.assertEqual(tokenChannel(mintToken(RING, CHANNEL, 300, NOW)), CHANNEL)
        self.assertEqual(tokenChannel(handMade("forged", "x", "private-b", "1")), "private-b")

    def test_malformed(self) -> None:
        """
        C{None} for anything that is not a well-formed token.
        """
        token = mintToken(RING, CHANNEL, 300, NOW)
        for bad in [None, 1, b"txws1", "", "nonsense", token + ".x",
                    withPart(token, 2, b64(b"bad name")), withPart(token, 3, "-1")]:
            self.assertIsNone(tokenChannel(bad))
