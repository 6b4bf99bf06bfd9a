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
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Protocol

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from txws.hmacauth._types import defaultReactor

__all__ = ["DEFAULT_MAX_ENTRIES", "MemoryReplayStore", "ReplayStore", "ReplayStoreFull"]

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


class MemoryReplayStore:
    """
    A bounded in-memory L{ReplayStore} for one process.
    """

    def __init__(
        self, reactor: IReactorTime | None = None, maxEntries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        """
        @param reactor: The clock (an C{IReactorTime}); the global reactor
            if C{None}.
        @param maxEntries: The most tokens held at once.
        @raise ValueError: If C{maxEntries} is not positive.
        """
        if maxEntries < 1:
            raise ValueError("maxEntries must be positive")
        self._reactor = reactor if reactor is not None else defaultReactor()
        self._maxEntries = maxEntries
        self._expiries: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []

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
            if self._expiries.get(token) == expiresAt:
                del self._expiries[token]

    def remember(self, tokens: Sequence[str], lifetime: float) -> Deferred[bool]:
        """
        See L{ReplayStore.remember}.  Never evicts an unexpired token.

        @param tokens: The replay tokens of one verified request.
        @param lifetime: Seconds to remember them.
        @return: See L{ReplayStore.remember}; fires synchronously.
        """
        now = self._reactor.seconds()
        self._expire(now)
        if any(token in self._expiries for token in tokens):
            return succeed(False)
        fresh = set(tokens)
        if len(self._expiries) + len(fresh) > self._maxEntries:
            retryAfter = self._heap[0][0] - now if self._heap else lifetime
            return fail(ReplayStoreFull(max(1.0, retryAfter)))
        expiresAt = now + lifetime
        for token in fresh:
            self._expiries[token] = expiresAt
            heapq.heappush(self._heap, (expiresAt, token))
        return succeed(True)
