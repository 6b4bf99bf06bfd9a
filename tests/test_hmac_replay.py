"""
Tests for L{txws.hmacauth.replay}: the bounded in-memory replay store.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from tests.typedtrial import SynchronousTestCase
from txws.hmacauth.replay import MemoryReplayStore, ReplayStore, ReplayStoreFull


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
