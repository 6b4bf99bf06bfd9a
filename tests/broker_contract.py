"""
The contract every hub broker (L{txws.hub.broker.Broker}) keeps, as a mixin
of tests run against each implementation.

Design: each test is written once as a coroutine that awaits the broker's
Deferreds.  A test case that mixes L{BrokerContractTests} in says how to run
one (L{BrokerContractTests.drive}): an in-process broker's Deferreds have
already fired, so a L{SynchronousTestCase} runs the coroutine to its end at
once and insists that it finished; a broker on the network (Redis) would
return the Deferred to an asynchronous trial C{TestCase} instead.  Time
passes through the C{advance} function L{BrokerContractTests.makeBroker}
returns (a L{Clock} for the in-process broker); a broker whose time passes
only for real returns C{None}, and the tests of the age bound are skipped
for it.  Deliveries may be asynchronous: tests wait with
L{BrokerContractTests.settle} before looking at them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Optional, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from tests.typedtrial import SkipTest, SynchronousTestCase
from txws.hub.broker import Broker, History, Publication

__all__ = ["Advance", "BrokerContractTests", "contract", "runAtOnce"]

#: Lets that many seconds pass for a broker (returns when they have).
Advance = Callable[[float], Deferred[None]]

_T = TypeVar("_T")

_Test = Callable[["BrokerContractTests"], Coroutine[Any, Any, None]]


def contract(test: _Test) -> Callable[[BrokerContractTests], object]:
    """
    Turn a contract coroutine into a test method run by
    L{BrokerContractTests.drive}.

    @param test: the coroutine function.
    @return: the test method.
    """

    @functools.wraps(test)
    def run(self: BrokerContractTests) -> object:
        return self.drive(test(self))

    return run


class BrokerContractTests:
    """
    Mixin for a trial test case: the L{Broker} contract of
    C{txws/hub/broker.py}'s docstrings.

    @cvar epochPerBroker: whether a new broker object starts new epochs
        (true for the in-process broker; a shared store may keep its epochs
        across its clients).
    """

    epochPerBroker = True

    # -- What an implementation provides ----------------------------------------

    def makeBroker(self, historySize: int, historyAge: float) -> tuple[Broker, Optional[Advance]]:
        """
        Make a new, not yet started broker; the test case stops it.

        @param historySize: publications kept per channel.
        @param historyAge: seconds a publication is kept.
        @return: the broker and a way to let time pass for it, or C{None}
            if time passes only for real.
        """
        raise NotImplementedError()

    def drive(self, test: Coroutine[Any, Any, None]) -> object:
        """
        Run one contract test.

        @param test: the test's coroutine.
        @return: what the test method returns (a Deferred for an
            asynchronous test case).
        """
        raise NotImplementedError()

    def settle(self) -> Deferred[None]:
        """
        Wait until publications made so far have been delivered.

        @return: a Deferred that fires then (at once by default: the
            in-process broker delivers before C{publish} answers).
        """
        return succeed(None)

    # -- Helpers ----------------------------------------------------------------

    def _case(self) -> SynchronousTestCase:
        assert isinstance(self, SynchronousTestCase)
        return self

    async def started(
        self, historySize: int = 100, historyAge: float = 300.0
    ) -> tuple[Broker, list[Publication], Optional[Advance]]:
        """
        A started broker whose deliveries are recorded.

        @return: the broker, the list its deliveries go to, and C{advance}.
        """
        broker, advance = self.makeBroker(historySize, historyAge)
        delivered: list[Publication] = []
        await broker.start(delivered.append)
        self._case().addCleanup(broker.stop)
        return broker, delivered, advance

    async def publishAll(self, broker: Broker, channel: str, count: int) -> list[Publication]:
        """
        Publish C{count} messages C{0}, C{1}, ... to C{channel}.

        @return: the publications.
        """
        return [await broker.publish(channel, str(i).encode()) for i in range(count)]

    def sequences(self, publications: Any) -> list[tuple[str, int]]:
        """
        @return: C{(channel, sequence)} of each publication.
        """
        return [(p.channel, p.sequence) for p in publications]

    def needTime(self, advance: Optional[Advance]) -> Advance:
        """
        @return: C{advance}.
        @raise SkipTest: if the broker cannot be told that time passes.
        """
        if advance is None:
            raise SkipTest("time passes only for real for this broker")
        return advance

    # -- Numbering ----------------------------------------------------------------

    @contract
    async def test_sequencePerChannel(self) -> None:
        """
        Each channel numbers its publications 1, 2, 3, ... independently,
        and a publication carries its channel, epoch and data.
        """
        case = self._case()
        broker, _, _ = await self.started()
        a1 = await broker.publish("a", b'"x"')
        a2 = await broker.publish("a", b"2")
        b1 = await broker.publish("b", b"{}")
        a3 = await broker.publish("a", b"[3]")
        case.assertEqual(
            self.sequences([a1, a2, b1, a3]), [("a", 1), ("a", 2), ("b", 1), ("a", 3)]
        )
        case.assertEqual([a1.data, a2.data, b1.data, a3.data], [b'"x"', b"2", b"{}", b"[3]"])
        history = await broker.history("a")
        case.assertEqual({a1.epoch, a2.epoch, a3.epoch}, {history.epoch})
        case.assertEqual((await broker.history("b")).epoch, b1.epoch)

    @contract
    async def test_freshChannel(self) -> None:
        """
        A channel never published to has latest 0, no publications, and a
        history without a position is complete.
        """
        case = self._case()
        broker, _, _ = await self.started()
        history = await broker.history("fresh")
        case.assertIsInstance(history, History)
        case.assertIsInstance(history.epoch, str)
        case.assertTrue(history.epoch)
        case.assertEqual((history.latest, tuple(history.publications), history.complete),
                         (0, (), True))

    # -- Delivery -----------------------------------------------------------------

    @contract
    async def test_deliveryOnlySubscribed(self) -> None:
        """
        Only publications on channels this node subscribed to are
        delivered.
        """
        case = self._case()
        broker, delivered, _ = await self.started()
        await broker.subscribe("a")
        await broker.publish("b", b"1")
        await broker.publish("a", b"2")
        await broker.publish("c", b"3")
        await self.settle()
        case.assertEqual([(p.channel, p.data) for p in delivered], [("a", b"2")])

    @contract
    async def test_deliveryInOrderExactlyOnce(self) -> None:
        """
        Publications are delivered in each channel's order, each once, as
        the very publications C{publish} answered with.
        """
        case = self._case()
        broker, delivered, _ = await self.started()
        await broker.subscribe("a")
        await broker.subscribe("b")
        published = []
        for i in range(5):
            published.append(await broker.publish("a", str(i).encode()))
            published.append(await broker.publish("b", str(i).encode()))
        await self.settle()
        case.assertEqual(
            [p.sequence for p in delivered if p.channel == "a"], [1, 2, 3, 4, 5]
        )
        case.assertEqual(
            [p.sequence for p in delivered if p.channel == "b"], [1, 2, 3, 4, 5]
        )
        case.assertEqual(sorted(delivered, key=lambda p: (p.channel, p.sequence)),
                         sorted(published, key=lambda p: (p.channel, p.sequence)))

    @contract
    async def test_subscribeTwiceDeliversOnce(self) -> None:
        """
        Subscribing twice to a channel still delivers each publication once.
        """
        case = self._case()
        broker, delivered, _ = await self.started()
        await broker.subscribe("a")
        await broker.subscribe("a")
        await broker.publish("a", b"1")
        await self.settle()
        case.assertEqual(self.sequences(delivered), [("a", 1)])

    @contract
    async def test_deliveryAfterStartOnly(self) -> None:
        """
        Nothing published before C{start} is delivered; what is published
        after it is.
        """
        case = self._case()
        broker, _ = self.makeBroker(100, 300.0)
        await broker.subscribe("a")
        await broker.publish("a", b"before")
        delivered: list[Publication] = []
        await broker.start(delivered.append)
        case.addCleanup(broker.stop)
        await self.settle()
        case.assertEqual(delivered, [])
        await broker.publish("a", b"after")
        await self.settle()
        case.assertEqual([(p.sequence, p.data) for p in delivered], [(2, b"after")])

    @contract
    async def test_unsubscribeStopsDelivery(self) -> None:
        """
        After C{unsubscribe}, a channel's publications are no longer
        delivered; other channels' still are.
        """
        case = self._case()
        broker, delivered, _ = await self.started()
        await broker.subscribe("a")
        await broker.subscribe("b")
        await broker.publish("a", b"1")
        await broker.unsubscribe("a")
        await broker.publish("a", b"2")
        await broker.publish("b", b"3")
        await self.settle()
        case.assertEqual([p.data for p in delivered], [b"1", b"3"])

    @contract
    async def test_stopStopsDelivery(self) -> None:
        """
        After C{stop}, nothing more is delivered.
        """
        case = self._case()
        broker, _ = self.makeBroker(100, 300.0)
        delivered: list[Publication] = []
        await broker.start(delivered.append)
        await broker.subscribe("a")
        await broker.publish("a", b"1")
        await self.settle()
        await broker.stop()
        case.assertEqual(len(delivered), 1)
        # An in-process broker can still be published to after it stopped;
        # whatever happens, nobody is told any more.
        with contextlib.suppress(Exception):
            await broker.publish("a", b"2")
        await self.settle()
        case.assertEqual([p.data for p in delivered], [b"1"])

    # -- History ------------------------------------------------------------------

    @contract
    async def test_historyWithoutPosition(self) -> None:
        """
        C{history(channel)} gives the epoch and latest sequence number, no
        publications, complete.
        """
        case = self._case()
        broker, _, _ = await self.started()
        published = await self.publishAll(broker, "a", 3)
        history = await broker.history("a")
        case.assertEqual(
            (history.epoch, history.latest, tuple(history.publications), history.complete),
            (published[0].epoch, 3, (), True),
        )

    @contract
    async def test_historySince(self) -> None:
        """
        C{history(channel, since=N, epoch)} gives exactly the publications
        after N, in order, complete; C{since} equal to the latest gives none,
        complete.
        """
        case = self._case()
        broker, _, _ = await self.started()
        published = await self.publishAll(broker, "a", 5)
        epoch = published[0].epoch
        for since in range(6):
            history = await broker.history("a", since, epoch)
            case.assertEqual(list(history.publications), published[since:], since)
            case.assertTrue(history.complete, since)
            case.assertEqual((history.epoch, history.latest), (epoch, 5))

    @contract
    async def test_historyOtherChannelsApart(self) -> None:
        """
        A channel's history holds only its own publications.
        """
        case = self._case()
        broker, _, _ = await self.started()
        a = await self.publishAll(broker, "a", 2)
        await self.publishAll(broker, "b", 3)
        history = await broker.history("a", 0, a[0].epoch)
        case.assertEqual(list(history.publications), a)

    @contract
    async def test_wrongEpochIncomplete(self) -> None:
        """
        A position in another epoch is not complete.
        """
        case = self._case()
        broker, _, _ = await self.started()
        published = await self.publishAll(broker, "a", 3)
        history = await broker.history("a", 1, "0000000000000000")
        case.assertFalse(history.complete)
        case.assertEqual((history.epoch, history.latest), (published[0].epoch, 3))

    @contract
    async def test_sinceBeyondLatestIncomplete(self) -> None:
        """
        A position after the latest publication is not complete (the
        caller's numbering is not this one).
        """
        case = self._case()
        broker, _, _ = await self.started()
        published = await self.publishAll(broker, "a", 3)
        history = await broker.history("a", 4, published[0].epoch)
        case.assertFalse(history.complete)
        case.assertEqual(list(history.publications), [])
        case.assertEqual(history.latest, 3)

    @contract
    async def test_sizeBound(self) -> None:
        """
        Only the last C{historySize} publications are kept: a position
        older than them is not complete; one within them gets the rest.
        """
        case = self._case()
        broker, _, _ = await self.started(historySize=3)
        published = await self.publishAll(broker, "a", 5)
        epoch = published[0].epoch
        for since in (0, 1):
            history = await broker.history("a", since, epoch)
            case.assertFalse(history.complete, since)
            case.assertTrue(set(history.publications) <= set(published[2:]), since)
        for since in (2, 3, 4, 5):
            history = await broker.history("a", since, epoch)
            case.assertTrue(history.complete, since)
            case.assertEqual(list(history.publications), published[since:], since)

    @contract
    async def test_noHistoryKept(self) -> None:
        """
        With C{historySize} 0 nothing is kept: any position before the
        latest is incomplete, the latest itself is complete, and numbering
        goes on while the channel is subscribed.
        """
        case = self._case()
        broker, delivered, _ = await self.started(historySize=0)
        await broker.subscribe("a")
        published = await self.publishAll(broker, "a", 3)
        case.assertEqual([p.sequence for p in published], [1, 2, 3])
        epoch = published[0].epoch
        history = await broker.history("a", 2, epoch)
        case.assertEqual((history.complete, tuple(history.publications)), (False, ()))
        history = await broker.history("a", 3, epoch)
        case.assertEqual((history.complete, tuple(history.publications)), (True, ()))
        await self.settle()
        case.assertEqual(len(delivered), 3)

    @contract
    async def test_ageBound(self) -> None:
        """
        Publications older than C{historyAge} are dropped: a position before
        them is incomplete, a position after them gets the younger ones.
        """
        case = self._case()
        broker, _, advance = await self.started(historyAge=10.0)
        advance = self.needTime(advance)
        await broker.subscribe("a")
        first = await broker.publish("a", b"1")
        await advance(6.0)
        second = await broker.publish("a", b"2")
        await advance(6.0)
        history = await broker.history("a", 0, first.epoch)
        case.assertFalse(history.complete)
        history = await broker.history("a", 1, first.epoch)
        case.assertTrue(history.complete)
        case.assertEqual(list(history.publications), [second])
        await advance(6.0)
        history = await broker.history("a", 1, first.epoch)
        case.assertFalse(history.complete)
        history = await broker.history("a", 2, first.epoch)
        case.assertEqual((history.complete, tuple(history.publications)), (True, ()))
        case.assertEqual((history.epoch, history.latest), (first.epoch, 2))

    # -- Epochs -------------------------------------------------------------------

    @contract
    async def test_epochStableWhileChannelLives(self) -> None:
        """
        While a channel is subscribed, its epoch does not change, however
        much is published and however long it lasts.
        """
        case = self._case()
        broker, _, advance = await self.started(historySize=2, historyAge=10.0)
        await broker.subscribe("a")
        epoch = (await broker.history("a")).epoch
        published = await self.publishAll(broker, "a", 5)
        case.assertEqual({p.epoch for p in published}, {epoch})
        if advance is not None:
            await advance(25.0)
            await broker.publish("a", b"later")
        history = await broker.history("a")
        case.assertEqual(history.epoch, epoch)
        case.assertEqual(history.latest, 6 if advance is not None else 5)

    @contract
    async def test_epochPerBroker(self) -> None:
        """
        A new broker numbers in a new epoch.
        """
        if not self.epochPerBroker:
            raise SkipTest("this broker's epochs outlive its clients")
        case = self._case()
        first, _, _ = await self.started()
        second, _, _ = await self.started()
        await first.subscribe("a")
        await second.subscribe("a")
        one = await first.publish("a", b"1")
        other = await second.publish("a", b"1")
        case.assertNotEqual(one.epoch, other.epoch)
        case.assertNotEqual((await first.history("b")).epoch, (await second.history("b")).epoch)


def runAtOnce(case: SynchronousTestCase, test: Coroutine[Any, Any, _T]) -> _T:
    """
    Run a coroutine that awaits only Deferreds which have already fired.

    @param case: the test (whose failure exception it raises).
    @param test: the coroutine.
    @return: its result.
    @raise Exception: what the coroutine raised.
    """
    d = Deferred.fromCoroutine(test)
    results: list[Any] = []
    d.addBoth(results.append)
    if not results:
        d.cancel()
        results.clear()
        case.fail("the test waited for a Deferred that had not fired")
    [result] = results
    if isinstance(result, Failure):
        result.raiseException()
    value: _T = result
    return value
