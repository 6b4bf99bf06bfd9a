"""
Tests for L{txws.hub.broker}: the broker contract (L{tests.broker_contract})
run against L{MemoryBroker} on a L{Clock}, and what is particular to the
in-process broker (forgetting idle channels, its size, its arguments).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Optional

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from tests.broker_contract import Advance, BrokerContractTests, runAtOnce
from tests.typedtrial import SynchronousTestCase
from txws.hub.broker import Broker, MemoryBroker, Publication


class MemoryBrokerContractTests(BrokerContractTests, SynchronousTestCase):
    """
    L{MemoryBroker} keeps the broker contract, on a L{Clock}.
    """

    def makeBroker(self, historySize: int, historyAge: float) -> tuple[Broker, Optional[Advance]]:
        clock = Clock()

        def advance(seconds: float) -> Deferred[None]:
            clock.advance(seconds)
            return succeed(None)

        return MemoryBroker(clock, historySize=historySize, historyAge=historyAge), advance

    def drive(self, test: Coroutine[Any, Any, None]) -> object:
        runAtOnce(self, test)
        return None


class MemoryBrokerTests(SynchronousTestCase):
    """
    What is particular to L{MemoryBroker}: its Deferreds have fired, it
    delivers before C{publish} answers, and it forgets channels nobody
    listens to once they keep nothing.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.delivered: list[Publication] = []

    def broker(self, historySize: int = 100, historyAge: float = 10.0) -> MemoryBroker:
        broker = MemoryBroker(self.clock, historySize=historySize, historyAge=historyAge)
        self.successResultOf(broker.start(self.delivered.append))
        self.addCleanup(broker.stop)
        return broker

    def test_arguments(self) -> None:
        """
        A negative size or a non-positive age is refused.
        """
        self.assertRaises(ValueError, MemoryBroker, self.clock, historySize=-1)
        self.assertRaises(ValueError, MemoryBroker, self.clock, historyAge=0)
        self.assertRaises(ValueError, MemoryBroker, self.clock, historyAge=-1.0)
        self.assertEqual(MemoryBroker(self.clock, historySize=0).historySize, 0)

    def test_deliversBeforeAnswering(self) -> None:
        """
        The publication is delivered before C{publish}'s Deferred fires
        (the hub counts C{delivered} on that), and every Deferred has
        already fired.
        """
        broker = self.broker()
        self.successResultOf(broker.subscribe("a"))
        seen: list[int] = []
        d = broker.publish("a", b"1")
        d.addCallback(lambda p: seen.append(len(self.delivered)))
        self.assertEqual(seen, [1])
        self.assertIsNone(self.successResultOf(broker.unsubscribe("a")))

    def test_lenCountsChannels(self) -> None:
        """
        C{len()} counts the channels held: subscribed ones and ones with
        history; a channel unsubscribed without history is let go at once.
        """
        broker = self.broker()
        self.assertEqual(len(broker), 0)
        broker.subscribe("a")
        broker.subscribe("b")
        self.assertEqual(len(broker), 2)
        broker.unsubscribe("a")
        self.assertEqual(len(broker), 1)
        broker.publish("b", b"1")
        broker.unsubscribe("b")
        self.assertEqual(len(broker), 1)
        broker.unsubscribe("never")
        self.assertEqual(len(broker), 1)

    def test_sweepForgetsIdleChannels(self) -> None:
        """
        A channel nobody listens to is forgotten by the sweep (every
        C{historyAge} seconds) once its history has expired; its numbering
        starts again in a new epoch.
        """
        broker = self.broker(historyAge=10.0)
        self.clock.advance(1)
        old = self.successResultOf(broker.publish("a", b"1"))
        self.clock.advance(9)
        self.assertEqual(len(broker), 1, "swept at 10 s, when the publication is 9 s old")
        self.clock.advance(9)
        self.assertEqual(len(broker), 1)
        self.clock.advance(1)
        self.assertEqual(len(broker), 0)
        new = self.successResultOf(broker.publish("a", b"2"))
        self.assertEqual(new.sequence, 1)
        self.assertNotEqual(new.epoch, old.epoch)

    def test_ageBoundary(self) -> None:
        """
        History keeps messages "at most C{historyAge} seconds old"
        (C{docs/hub.md}): one exactly that old is still kept, one a moment
        older is not.
        """
        broker = self.broker(historyAge=10.0)
        broker.subscribe("a")
        first = self.successResultOf(broker.publish("a", b"1"))
        self.clock.advance(10)
        history = self.successResultOf(broker.history("a", 0, first.epoch))
        self.assertEqual((history.complete, list(history.publications)), (True, [first]))
        self.clock.advance(0.001)
        history = self.successResultOf(broker.history("a", 0, first.epoch))
        self.assertFalse(history.complete)

    def test_sweepKeepsListenedChannels(self) -> None:
        """
        A subscribed channel is never forgotten, even with nothing kept, so
        its epoch and numbering go on.
        """
        broker = self.broker(historyAge=10.0)
        broker.subscribe("a")
        first = self.successResultOf(broker.publish("a", b"1"))
        self.clock.advance(100)
        self.assertEqual(len(broker), 1)
        second = self.successResultOf(broker.publish("a", b"2"))
        self.assertEqual((second.epoch, second.sequence), (first.epoch, 2))

    def test_sweepKeepsChannelsWithHistory(self) -> None:
        """
        A channel nobody listens to but with history still young is kept,
        so a resume within C{historyAge} is recovered.
        """
        broker = self.broker(historyAge=10.0)
        broker.publish("a", b"1")
        self.clock.advance(6)
        second = self.successResultOf(broker.publish("a", b"2"))
        self.clock.advance(6)
        self.assertEqual(len(broker), 1)
        history = self.successResultOf(broker.history("a", 1, second.epoch))
        self.assertEqual((history.complete, list(history.publications)), (True, [second]))

    def test_noHistoryNoListenerNoState(self) -> None:
        """
        With C{historySize} 0, publishing to a channel nobody listens to
        leaves nothing behind.
        """
        broker = self.broker(historySize=0)
        self.successResultOf(broker.publish("a", b"1"))
        self.assertEqual(len(broker), 0)
        self.assertEqual(self.delivered, [])

    def test_stopStopsTheSweep(self) -> None:
        """
        A stopped broker leaves no timer behind; starting again restarts
        the sweep.
        """
        broker = MemoryBroker(self.clock, historyAge=10.0)
        broker.start(self.delivered.append)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        broker.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        broker.start(self.delivered.append)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        broker.stop()
