"""
Tests for L{txws._timers.TimerWheel}, the coarse timers behind keepalive and
handshake timeouts.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from tests.typedtrial import SynchronousTestCase
from txws._timers import TimerWheel


class TimerWheelTests(SynchronousTestCase):
    """
    Deadlines fire at or up to one resolution after their time, never early.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.fired: list[str] = []
        self.wheel: TimerWheel[str] = TimerWheel(self.clock, self.fired.append, 0.25)

    def test_firesAtDeadline(self) -> None:
        """
        A key scheduled for 20 s fires at 20 s, not before.
        """
        self.wheel.schedule("a", 20)
        self.clock.advance(19.99)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.01)
        self.assertEqual(self.fired, ["a"])

    def test_roundedUp(self) -> None:
        """
        A deadline between buckets fires at the next bucket boundary.
        """
        self.clock.advance(0.1)
        self.wheel.schedule("a", 1)
        self.clock.advance(1)
        self.assertEqual(self.fired, [])
        self.clock.advance(0.15)
        self.assertEqual(self.fired, ["a"])

    def test_orderAndSharing(self) -> None:
        """
        Keys in one bucket share one reactor call; later buckets follow.
        """
        self.wheel.schedule("a", 1)
        self.wheel.schedule("b", 1)
        self.wheel.schedule("c", 5)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(1)
        self.assertEqual(sorted(self.fired), ["a", "b"])
        self.clock.advance(4)
        self.assertEqual(sorted(self.fired), ["a", "b", "c"])

    def test_earlierDeadlineRearms(self) -> None:
        """
        Scheduling an earlier deadline than the armed one moves the call.
        """
        self.wheel.schedule("late", 10)
        self.wheel.schedule("soon", 1)
        self.clock.advance(1)
        self.assertEqual(self.fired, ["soon"])

    def test_cancel(self) -> None:
        """
        A cancelled key does not fire; the others in its bucket do.
        """
        tick = self.wheel.schedule("a", 3)
        self.wheel.schedule("b", 3)
        self.wheel.cancel("a", tick)
        self.assertEqual(self.wheel.pending(), 1)
        self.clock.advance(3)
        self.assertEqual(self.fired, ["b"])
        self.assertEqual(self.wheel.pending(), 0)

    def test_cancelTwice(self) -> None:
        """
        Cancelling a key that is no longer filed (cancelled, or fired)
        changes nothing.
        """
        tick = self.wheel.schedule("a", 3)
        self.wheel.cancel("a", tick)
        self.wheel.cancel("a", tick)
        self.wheel.cancel("a", tick + 1)
        self.assertEqual(self.wheel.pending(), 0)
        tick = self.wheel.schedule("b", 1)
        self.clock.advance(1)
        self.wheel.cancel("b", tick)
        self.assertEqual(self.fired, ["b"])
        self.assertEqual(self.wheel.pending(), 0)

    def test_cancelKeepsTheCall(self) -> None:
        """
        Cancelling the last deadline keeps the reactor call and the bucket,
        so that the next deadline costs neither a new call nor a heap entry;
        the call then fires harmlessly.
        """
        tick = self.wheel.schedule("a", 3)
        call = self.clock.getDelayedCalls()
        self.wheel.cancel("a", tick)
        self.assertEqual(self.clock.getDelayedCalls(), call)
        self.assertEqual(self.wheel.schedule("b", 3), tick)
        self.assertEqual(self.clock.getDelayedCalls(), call)
        self.assertEqual(len(self.wheel._ticks), 1)
        self.wheel.cancel("b", tick)
        self.clock.advance(3)
        self.assertEqual(self.fired, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bucketsBounded(self) -> None:
        """
        Scheduling and cancelling many deadlines in the same moments keeps
        one heap entry per bucket, not one per deadline.
        """
        for _ in range(3):
            for i in range(1000):
                self.wheel.cancel(str(i), self.wheel.schedule(str(i), 10))
            self.clock.advance(0.1)
        self.assertEqual(len(self.wheel._ticks), 2)

    def test_stopIfIdle(self) -> None:
        """
        L{TimerWheel.stopIfIdle} cancels the call once nothing is pending,
        and does nothing while a deadline is.
        """
        tick = self.wheel.schedule("a", 3)
        self.wheel.schedule("b", 5)
        self.wheel.cancel("a", tick)
        self.wheel.stopIfIdle()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(5)
        self.assertEqual(self.fired, ["b"])
        tick = self.wheel.schedule("c", 3)
        self.wheel.cancel("c", tick)
        self.wheel.stopIfIdle()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.wheel.schedule("d", 1)
        self.clock.advance(1)
        self.assertEqual(self.fired, ["b", "d"])

    def test_callbackErrorsContained(self) -> None:
        """
        A callback that raises is logged; the other keys still fire.
        """

        def callback(key: str) -> None:
            self.fired.append(key)
            if key == "bad":
                raise RuntimeError("boom")

        wheel: TimerWheel[str] = TimerWheel(self.clock, callback, 1.0)
        wheel.schedule("bad", 1)
        wheel.schedule("good", 1)
        self.clock.advance(1)
        self.assertEqual(sorted(self.fired), ["bad", "good"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
