"""
Coarse timers shared by all the connections of a factory.

Design: every connection needs a keepalive deadline for its whole life, an
opening-handshake deadline at its start and a closing-handshake deadline at
its end.  A Twisted C{DelayedCall} per
deadline costs about 600 bytes and a heap operation on the reactor each
time it is set or cancelled, which matters at thousands of idle
connections.  A L{TimerWheel} instead files each deadline in a bucket of
C{resolution} seconds (a set entry, some tens of bytes) and keeps one
C{DelayedCall} for the earliest non-empty bucket.  Deadlines fire up to
C{resolution} late, never early; keepalive and handshake timeouts do not
need more precision than that.

Cancelling a deadline neither disarms the C{DelayedCall} nor forgets its
bucket, even when that was the last deadline: a busy server schedules and
cancels thousands of deadlines a second, and re-creating a C{DelayedCall}
and a heap entry each time the wheel empties for a moment cost about a
tenth of an opening+closing handshake.  Buckets are reused until their time
comes (at most delay/resolution of them), and the owner calls L{stopIfIdle}
when it knows nothing is left to wait for (a factory, when its last
connection ends), so that no timer outlives the connections.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Generic, Optional, TypeVar

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["TimerWheel"]

_log = Logger()
_K = TypeVar("_K")


class TimerWheel(Generic[_K]):
    """
    Calls C{callback(key)} once each scheduled key's deadline has passed.
    """

    __slots__ = (
        "_buckets",
        "_call",
        "_callTick",
        "_callback",
        "_pending",
        "_reactor",
        "_resolution",
        "_ticks",
    )

    def __init__(
        self, reactor: IReactorTime, callback: Callable[[_K], object], resolution: float = 0.25
    ) -> None:
        """
        @param reactor: the clock.
        @param callback: called with each key whose deadline has come.
        @param resolution: the bucket width, in seconds.
        """
        self._reactor = reactor
        self._callback = callback
        self._resolution = resolution
        self._buckets: dict[int, set[_K]] = {}
        self._ticks: list[int] = []
        self._pending = 0
        self._call: Optional[IDelayedCall] = None
        self._callTick = 0

    def schedule(self, key: _K, delay: float) -> int:
        """
        File C{key} to be called back C{delay} seconds from now (rounded up
        to the resolution).

        @return: the bucket, for L{cancel}.
        """
        tick = math.ceil((self._reactor.seconds() + delay) / self._resolution)
        bucket = self._buckets.get(tick)
        if bucket is None:
            bucket = self._buckets[tick] = set()
            heapq.heappush(self._ticks, tick)
        if self._call is None or tick < self._callTick:
            self._arm()
        if key not in bucket:
            bucket.add(key)
            self._pending += 1
        return tick

    def cancel(self, key: _K, tick: int) -> None:
        """
        Forget C{key}'s deadline in bucket C{tick}, if it is still pending.
        """
        bucket = self._buckets.get(tick)
        if bucket is not None and key in bucket:
            bucket.remove(key)
            self._pending -= 1

    def stopIfIdle(self) -> None:
        """
        If no deadline is pending, cancel the reactor call and forget the
        buckets.
        """
        if self._pending:
            return
        self._buckets.clear()
        self._ticks.clear()
        self._arm()

    def pending(self) -> int:
        """
        @return: how many deadlines are filed.
        """
        return self._pending

    def _arm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if not self._ticks:
            return
        self._callTick = self._ticks[0]
        delay = max(0.0, self._callTick * self._resolution - self._reactor.seconds())
        self._call = self._reactor.callLater(delay, self._fire)

    def _fire(self) -> None:
        self._call = None
        now = self._reactor.seconds()
        while self._ticks and self._ticks[0] * self._resolution <= now:
            tick = heapq.heappop(self._ticks)
            bucket = self._buckets.pop(tick, ())
            self._pending -= len(bucket)
            for key in bucket:
                try:
                    self._callback(key)
                except Exception:
                    _log.failure("A timer callback raised")
        self._arm()
