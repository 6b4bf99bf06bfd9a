"""
Tests for L{txws.hmacauth.replay}: the bounded in-memory replay store.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from tests.typedtrial import SynchronousTestCase
from txws.hmacauth.replay import (
    KeyedReplayStore,
    MemoryReplayStore,
    ReplayQuotaExceeded,
    ReplayStore,
    ReplayStoreFull,
)


class MemoryReplayStoreTests(SynchronousTestCase):
    """
    L{MemoryReplayStore} remembers tokens for their lifetime, atomically,
    within a fixed number of entries, on an injected clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = MemoryReplayStore(self.clock, maxEntries=3)

    def remember(self, *tokens: str, lifetime: float = 120) -> bool:
        return self.successResultOf(self.store.remember(tokens, lifetime))

    def test_isAReplayStore(self) -> None:
        """
        It satisfies the L{ReplayStore} protocol.
        """
        store: ReplayStore = self.store
        self.assertTrue(self.successResultOf(store.remember(["a"], 1)))

    def test_firstUseThenReplay(self) -> None:
        """
        A token is new once, then seen.
        """
        self.assertTrue(self.remember("a"))
        self.assertFalse(self.remember("a"))
        self.assertTrue(self.remember("b"))

    def test_expiry(self) -> None:
        """
        A token is forgotten exactly when its lifetime has passed.
        """
        self.remember("a", lifetime=120)
        self.clock.advance(119.9)
        self.assertFalse(self.remember("a"))
        self.clock.advance(0.1)
        self.assertEqual(len(self.store), 0)
        self.assertTrue(self.remember("a"))

    def test_atomicAcrossTokens(self) -> None:
        """
        If any token was seen, the answer is C{False} and none of the others
        is recorded.
        """
        self.remember("a")
        self.assertFalse(self.remember("b", "a"))
        self.assertEqual(len(self.store), 1)
        self.assertTrue(self.remember("b", "c"))
        self.assertFalse(self.remember("c"))

    def test_duplicateTokensCountOnce(self) -> None:
        """
        The same token twice in one call is one entry.
        """
        self.assertTrue(self.remember("a", "a"))
        self.assertEqual(len(self.store), 1)

    def test_fullRefusesInsteadOfEvicting(self) -> None:
        """
        When full of unexpired tokens, new ones are refused with the time
        until room appears, and the old ones stay remembered.
        """
        self.remember("a", "b")
        self.clock.advance(20)
        self.remember("c")
        failure = self.failureResultOf(self.store.remember(["d"], 120), ReplayStoreFull)
        assert isinstance(failure.value, ReplayStoreFull)
        self.assertEqual(failure.value.retryAfter, 100)
        self.assertFalse(self.remember("a"))
        self.clock.advance(100)
        self.assertTrue(self.remember("d"))
        self.assertFalse(self.remember("c"))

    def test_retryAfterAtLeastOneSecond(self) -> None:
        """
        C{retryAfter} is never below one second.
        """
        self.remember("a", "b", "c", lifetime=0.5)
        failure = self.failureResultOf(self.store.remember(["d"], 1), ReplayStoreFull)
        assert isinstance(failure.value, ReplayStoreFull)
        self.assertEqual(failure.value.retryAfter, 1.0)

    def test_boundedUnderLoad(self) -> None:
        """
        However many distinct tokens arrive, at most C{maxEntries} are held.
        """
        for n in range(50):
            self.store.remember([str(n)], 10).addErrback(lambda f: f.trap(ReplayStoreFull))
            self.assertLessEqual(len(self.store._expiries), 3)
            self.assertLessEqual(len(self.store._heap), 3)
            self.clock.advance(1)

    def test_refusesNonPositiveCapacity(self) -> None:
        """
        A store must be able to hold something.
        """
        with self.assertRaises(ValueError):
            MemoryReplayStore(self.clock, maxEntries=0)


class PerKeyShareTests(SynchronousTestCase):
    """
    L{MemoryReplayStore.rememberFor} bounds each key's share of the store, so
    one key cannot fill it for everyone.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = MemoryReplayStore(self.clock, maxEntries=6, maxEntriesPerKey=2)

    def rememberFor(self, keyId: str, *tokens: str, lifetime: float = 120) -> bool:
        return self.successResultOf(self.store.rememberFor(keyId, tokens, lifetime))

    def test_isAKeyedReplayStore(self) -> None:
        """
        It satisfies L{KeyedReplayStore}, recognisably at run time.
        """
        store: KeyedReplayStore = self.store
        self.assertIsInstance(store, KeyedReplayStore)
        self.assertNotIsInstance(object(), KeyedReplayStore)

    def test_keyOverItsShare(self) -> None:
        """
        A key over its share fails with L{ReplayQuotaExceeded} (a
        L{ReplayStoreFull}) naming the key and the time until its own oldest
        token expires; other keys are unaffected.
        """
        self.assertTrue(self.rememberFor("noisy", "a"))
        self.clock.advance(10)
        self.assertTrue(self.rememberFor("noisy", "b"))
        failure = self.failureResultOf(
            self.store.rememberFor("noisy", ["c"], 120), ReplayQuotaExceeded)
        error = failure.value
        assert isinstance(error, ReplayQuotaExceeded)
        self.assertIsInstance(error, ReplayStoreFull)
        self.assertEqual((error.keyId, error.retryAfter), ("noisy", 110))
        self.assertTrue(self.rememberFor("quiet", "c"))
        self.assertEqual((self.store.held("noisy"), self.store.held("quiet")), (2, 1))
        self.clock.advance(110)
        self.assertEqual(self.store.held("noisy"), 1)
        self.assertTrue(self.rememberFor("noisy", "d"))

    def test_replayBeforeQuota(self) -> None:
        """
        A replay is reported as such even when its key is over its share.
        """
        self.rememberFor("noisy", "a", "b")
        self.assertFalse(self.rememberFor("noisy", "a"))

    def test_requestBiggerThanShare(self) -> None:
        """
        One request with more tokens than the share is refused whole.
        """
        self.failureResultOf(
            self.store.rememberFor("k", ["a", "b", "c"], 120), ReplayQuotaExceeded)
        self.assertEqual(len(self.store), 0)

    def test_globalCapStillHolds(self) -> None:
        """
        Many keys within their shares still cannot pass C{maxEntries}: the
        store is full (L{ReplayStoreFull}, not a quota).
        """
        for n in range(3):
            self.assertTrue(self.rememberFor(f"k{n}", f"a{n}", f"b{n}"))
        failure = self.failureResultOf(self.store.rememberFor("k9", ["z"], 120), ReplayStoreFull)
        self.assertNotIsInstance(failure.value, ReplayQuotaExceeded)

    def test_plainRememberCountsAgainstNoKey(self) -> None:
        """
        Tokens recorded with L{MemoryReplayStore.remember} use the global
        capacity but no key's share.
        """
        self.assertTrue(self.successResultOf(self.store.remember(["a", "b", "c"], 120)))
        self.assertTrue(self.rememberFor("k", "d", "e"))
        self.assertEqual(len(self.store), 5)

    def test_boundedPerKeyUnderLoad(self) -> None:
        """
        However many requests one key sends, it holds at most its share, and
        the per-key bookkeeping empties as entries expire.
        """
        for n in range(50):
            self.store.rememberFor("noisy", [str(n)], 10).addErrback(
                lambda f: f.trap(ReplayStoreFull))
            self.assertLessEqual(self.store.held("noisy"), 2)
            self.clock.advance(1)
        self.clock.advance(10)
        self.assertEqual(len(self.store), 0)
        self.assertEqual(self.store._perKey, {})

    def test_defaultShare(self) -> None:
        """
        By default a key may hold a quarter of the store (at least one).
        """
        self.assertEqual(MemoryReplayStore(self.clock).maxEntriesPerKey, 25_000)
        self.assertEqual(MemoryReplayStore(self.clock, maxEntries=2).maxEntriesPerKey, 1)

    def test_badShare(self) -> None:
        """
        A share must be positive and within the capacity.
        """
        for share in (0, 7):
            with self.assertRaises(ValueError):
                MemoryReplayStore(self.clock, maxEntries=6, maxEntriesPerKey=share)
