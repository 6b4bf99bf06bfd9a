"""
Replay stores: remember what was already accepted, for a while.

Design: the guard hands a store the replay tokens of a request whose
signature has already verified (the seed scheme's signatures, or v2's key id
and nonce) and a lifetime of twice the skew window.  The store answers, in
one atomic step, whether any of the tokens was seen before; if not, it records
them all.  Only verified requests get here, so an attacker without a key
cannot fill a store.

The interface is a L{typing.Protocol} returning a L{Deferred}, so that a
store shared by several servers (Redis: C{SET NX EX} in a script) fits without
changing the guard.  L{MemoryReplayStore} is the in-process default: memory
is bounded by C{maxEntries}; expired entries are dropped lazily (a heap
ordered by expiry) using the injected clock, so no timers are left behind.
When full of unexpired entries it refuses new requests with
L{ReplayStoreFull} (a 503 with C{Retry-After}) rather than evicting: evicting
an unexpired entry would re-open the replay window it guards.

Verified does not mean well-behaved: a noisy or compromised sender with a
valid key could fill the whole store and so lock every other sender out.
Stores that also provide L{KeyedReplayStore} are told which key signed each
request; L{MemoryReplayStore} then holds at most C{maxEntriesPerKey} tokens
per key (a quarter of the capacity by default) and refuses a key over its
share with L{ReplayQuotaExceeded} (a 429 with C{Retry-After} for that sender
only), so the others keep their room.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from txws.hmacauth._types import defaultReactor

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "KeyedReplayStore",
    "MemoryReplayStore",
    "ReplayQuotaExceeded",
    "ReplayStore",
    "ReplayStoreFull",
    "ReplayStoreUnavailable",
]

DEFAULT_MAX_ENTRIES = 100_000
"""Default capacity of L{MemoryReplayStore} (about 25 MB when full)."""


class ReplayStoreFull(Exception):
    """
    The store cannot record more tokens until some expire.

    @ivar retryAfter: Seconds until room is expected, at least 1.
    """

    def __init__(self, retryAfter: float) -> None:
        """
        @param retryAfter: Seconds until the oldest entry expires.
        """
        super().__init__(retryAfter)
        self.retryAfter = retryAfter


class ReplayStoreUnavailable(Exception):
    """
    A store on the network cannot be reached now (it says so once itself;
    the guard answers 503 without logging a traceback per request).
    """


class ReplayQuotaExceeded(ReplayStoreFull):
    """
    One key holds its whole share of the store: that key's requests are
    refused until some of its own tokens expire; other keys are unaffected.

    @ivar keyId: The key over its share.
    @ivar retryAfter: Seconds until that key's oldest token expires, at
        least 1.
    """

    def __init__(self, keyId: str, retryAfter: float) -> None:
        """
        @param keyId: The key over its share.
        @param retryAfter: Seconds until that key's oldest token expires.
        """
        super().__init__(retryAfter)
        self.keyId = keyId


class ReplayStore(Protocol):
    """
    Where verified requests are remembered.
    """

    def remember(self, tokens: Sequence[str], lifetime: float) -> Deferred[bool]:
        """
        Record C{tokens} unless any of them is already recorded, atomically.

        @param tokens: The replay tokens of one verified request.
        @param lifetime: Seconds to remember them.
        @return: A L{Deferred} firing with C{True} if they were recorded
            (first use), C{False} if any was seen within its lifetime
            (a replay; nothing is recorded), or failing with
            L{ReplayStoreFull} or any error if the store cannot answer.
        """


@runtime_checkable
class KeyedReplayStore(ReplayStore, Protocol):
    """
    A L{ReplayStore} that is also told which key signed a request, so that
    it can bound each key's share.  The guard calls L{rememberFor} on stores
    that provide it, L{ReplayStore.remember} on the others.
    """

    def rememberFor(
        self, keyId: str, tokens: Sequence[str], lifetime: float
    ) -> Deferred[bool]:
        """
        Like L{ReplayStore.remember}, counting the tokens against C{keyId}.

        @param keyId: The key that verified the request.
        @param tokens: The replay tokens of that request.
        @param lifetime: Seconds to remember them.
        @return: See L{ReplayStore.remember}; may also fail with
            L{ReplayQuotaExceeded} when C{keyId} holds its whole share.
        """


class MemoryReplayStore:
    """
    A bounded in-memory L{KeyedReplayStore} for one process.

    @ivar maxEntries: The most tokens held at once.
    @ivar maxEntriesPerKey: The most tokens held at once for one key (by
        L{rememberFor}; L{remember} counts against no key).
    """

    def __init__(
        self,
        reactor: IReactorTime | None = None,
        maxEntries: int = DEFAULT_MAX_ENTRIES,
        maxEntriesPerKey: int | None = None,
    ) -> None:
        """
        @param reactor: The clock (an C{IReactorTime}); the global reactor
            if C{None}.
        @param maxEntries: The most tokens held at once.
        @param maxEntriesPerKey: The most tokens held at once for one key;
            a quarter of C{maxEntries} (at least 1) if C{None}, so that no
            single key can fill the store.
        @raise ValueError: If C{maxEntries} or C{maxEntriesPerKey} is not
            positive, or C{maxEntriesPerKey} exceeds C{maxEntries}.
        """
        if maxEntries < 1:
            raise ValueError("maxEntries must be positive")
        if maxEntriesPerKey is None:
            maxEntriesPerKey = max(1, maxEntries // 4)
        if not 1 <= maxEntriesPerKey <= maxEntries:
            raise ValueError("maxEntriesPerKey must be between 1 and maxEntries")
        self._reactor = reactor if reactor is not None else defaultReactor()
        self.maxEntries = maxEntries
        self.maxEntriesPerKey = maxEntriesPerKey
        self._expiries: dict[str, tuple[float, str | None]] = {}
        self._heap: list[tuple[float, str]] = []
        # Per key: a heap of the expiry times of its unexpired tokens.
        self._perKey: dict[str, list[float]] = {}

    def held(self, keyId: str) -> int:
        """
        @param keyId: A key id.
        @return: How many unexpired tokens are held for C{keyId}.
        """
        self._expire(self._reactor.seconds())
        return len(self._perKey.get(keyId, ()))

    def __len__(self) -> int:
        """
        @return: How many unexpired tokens are held.
        """
        self._expire(self._reactor.seconds())
        return len(self._expiries)

    def _expire(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            expiresAt, token = heapq.heappop(heap)
            entry = self._expiries.get(token)
            if entry is None or entry[0] != expiresAt:
                continue
            del self._expiries[token]
            keyId = entry[1]
            if keyId is not None:
                # Entries leave in expiry order, so the key's earliest one goes.
                times = self._perKey[keyId]
                heapq.heappop(times)
                if not times:
                    del self._perKey[keyId]

    def remember(self, tokens: Sequence[str], lifetime: float) -> Deferred[bool]:
        """
        See L{ReplayStore.remember}.  Never evicts an unexpired token; the
        tokens count against no key's share.

        @param tokens: The replay tokens of one verified request.
        @param lifetime: Seconds to remember them.
        @return: See L{ReplayStore.remember}; fires synchronously.
        """
        return self._remember(None, tokens, lifetime)

    def rememberFor(
        self, keyId: str, tokens: Sequence[str], lifetime: float
    ) -> Deferred[bool]:
        """
        See L{KeyedReplayStore.rememberFor}.  A replay is recognised first
        (whatever the quotas); then a key that would hold more than
        C{maxEntriesPerKey} tokens fails with L{ReplayQuotaExceeded}, and a
        store that would hold more than C{maxEntries} with L{ReplayStoreFull}.

        @param keyId: The key that verified the request.
        @param tokens: The replay tokens of that request.
        @param lifetime: Seconds to remember them.
        @return: See L{KeyedReplayStore.rememberFor}; fires synchronously.
        """
        return self._remember(keyId, tokens, lifetime)

    def _remember(
        self, keyId: str | None, tokens: Sequence[str], lifetime: float
    ) -> Deferred[bool]:
        now = self._reactor.seconds()
        self._expire(now)
        if any(token in self._expiries for token in tokens):
            return succeed(False)
        fresh = set(tokens)
        if keyId is not None:
            times = self._perKey.get(keyId, [])
            if len(times) + len(fresh) > self.maxEntriesPerKey:
                retryAfter = times[0] - now if times else lifetime
                return fail(ReplayQuotaExceeded(keyId, max(1.0, retryAfter)))
        if len(self._expiries) + len(fresh) > self.maxEntries:
            retryAfter = self._heap[0][0] - now if self._heap else lifetime
            return fail(ReplayStoreFull(max(1.0, retryAfter)))
        expiresAt = now + lifetime
        for token in fresh:
            self._expiries[token] = (expiresAt, keyId)
            heapq.heappush(self._heap, (expiresAt, token))
            if keyId is not None:
                heapq.heappush(self._perKey.setdefault(keyId, []), expiresAt)
        return succeed(True)
