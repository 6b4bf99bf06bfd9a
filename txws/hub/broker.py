"""
The hub's channel state behind one small interface, and its in-process
implementation.

Design: a broker numbers each channel's publications, keeps a bounded
history of them, and tells its node of every publication on a channel the
node has subscribed to.  It knows nothing of WebSocket connections: the
hub keeps its own subscribers per channel and asks the broker only whether
the node as a whole listens to a channel.  Every method answers with a
Deferred, so that a broker on the network (Redis) fits the same interface
as the in-process one, whose Deferreds have already fired.  One contract
test suite (C{tests/broker_contract.py}) runs against every implementation.

Sequence numbers belong to an I{epoch}: an opaque string that changes
whenever the numbering starts again (a new broker, or a channel forgotten
because nobody listened and nothing was kept), so that a client resuming
with a number from another epoch learns that history cannot cover it.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

__all__ = ["Broker", "BrokerUnavailable", "History", "MemoryBroker", "Publication"]


@dataclass(frozen=True)
class Publication:
    """
    One message published to a channel.

    @ivar channel: the channel's name.
    @ivar epoch: the epoch of C{sequence}.
    @ivar sequence: its number in the channel, from 1.
    @ivar data: the published JSON value, encoded (UTF-8).
    @ivar timestamp: when it was published (the broker's clock).
    """

    channel: str
    epoch: str
    sequence: int
    data: bytes
    timestamp: float


@dataclass(frozen=True)
class History:
    """
    What a broker can tell of a channel's past.

    @ivar epoch: the channel's current epoch.
    @ivar latest: the sequence number of its latest publication (0 if none).
    @ivar publications: retained publications after the requested one, in
        order.
    @ivar complete: whether C{publications} are I{all} the publications
        after the requested one in the requested epoch (always true when
        no position was requested).
    """

    epoch: str
    latest: int
    publications: Sequence[Publication]
    complete: bool


class BrokerUnavailable(Exception):
    """
    The broker cannot serve the request now (its Deferred fails with this).
    """


class Broker(Protocol):
    """
    What the hub needs of its channel state.
    """

    def start(
        self,
        deliver: Callable[[Publication], None],
        lost: Optional[Callable[[str, History], None]] = None,
    ) -> Deferred[None]:
        """
        Start; from now on call C{deliver} with every publication on a
        channel this node subscribed to, in each channel's order, exactly
        once.  A broker that can lose publications (one on the network,
        while it is unreachable) delivers what it missed once it can, and
        calls C{lost} for a channel whose missed publications it no longer
        holds; deliveries then go on after the history's C{latest}.

        @param deliver: the node's callback.
        @param lost: the node's callback for a gap it cannot fill.
        @return: a Deferred that fires when the broker is ready.
        """

    def stop(self) -> Deferred[None]:
        """
        Stop delivering and let go of every resource.

        @return: a Deferred that fires when stopped.
        """

    def subscribe(self, channel: str) -> Deferred[None]:
        """
        This node listens to C{channel} from now on.

        @param channel: a valid channel name.
        @return: a Deferred that fires once publications will be delivered.
        """

    def unsubscribe(self, channel: str) -> Deferred[None]:
        """
        This node no longer listens to C{channel}.

        @param channel: a valid channel name.
        @return: a Deferred that fires when done.
        """

    def publish(self, channel: str, data: bytes) -> Deferred[Publication]:
        """
        Publish to a channel: number it, keep it in history, deliver it.

        @param channel: a valid channel name.
        @param data: the JSON value, encoded.
        @return: a Deferred firing with the L{Publication}, or failing with
            L{BrokerUnavailable}.
        """

    def history(
        self, channel: str, since: Optional[int] = None, epoch: Optional[str] = None
    ) -> Deferred[History]:
        """
        The channel's epoch and latest sequence number and, if C{since} is
        given, the retained publications after it.

        @param channel: a valid channel name.
        @param since: the last sequence number the caller has, or C{None}.
        @param epoch: the epoch of C{since}.
        @return: a Deferred firing with the L{History}.
        """


def newEpoch() -> str:
    """
    @return: a fresh random epoch (16 hexadecimal digits).
    """
    return os.urandom(8).hex()


class _Channel:
    """
    The state of one channel in a L{MemoryBroker}.
    """

    __slots__ = ("epoch", "kept", "latest", "listened")

    def __init__(self) -> None:
        self.epoch = newEpoch()
        self.latest = 0
        self.kept: deque[Publication] = deque()
        self.listened = False


class MemoryBroker:
    """
    The in-process broker, the hub's embedded default: channel state in
    this process's memory, bounded per channel by C{historySize} messages
    and C{historyAge} seconds.  Channels nobody listens to and that keep no
    history are forgotten (a sweep every C{historyAge} seconds), so memory
    follows what is live.
    """

    def __init__(
        self,
        reactor: Optional[IReactorTime] = None,
        historySize: int = 100,
        historyAge: float = 300.0,
    ) -> None:
        """
        @param reactor: the clock (default: the global reactor).
        @param historySize: publications kept per channel (0 keeps none).
        @param historyAge: seconds a publication is kept.
        @raise ValueError: for a negative size or a non-positive age.
        """
        if historySize < 0 or historyAge <= 0:
            raise ValueError("historySize must be >= 0 and historyAge > 0")
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        assert reactor is not None
        self._clock = reactor
        self.historySize = historySize
        self.historyAge = historyAge
        self._channels: dict[str, _Channel] = {}
        self._deliver: Optional[Callable[[Publication], None]] = None
        self._sweeper = LoopingCall(self._sweep)
        self._sweeper.clock = reactor

    def __len__(self) -> int:
        """
        @return: the number of channels held.
        """
        return len(self._channels)

    def start(
        self,
        deliver: Callable[[Publication], None],
        lost: Optional[Callable[[str, History], None]] = None,
    ) -> Deferred[None]:
        """
        See L{Broker.start}; this broker never loses a publication, so it
        never calls C{lost}.
        """
        self._deliver = deliver
        if not self._sweeper.running:
            self._sweeper.start(self.historyAge, now=False)
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """
        See L{Broker.stop}.
        """
        self._deliver = None
        if self._sweeper.running:
            self._sweeper.stop()
        return succeed(None)

    def _channel(self, name: str) -> _Channel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _Channel()
        return channel

    def _expire(self, channel: _Channel) -> None:
        kept = channel.kept
        if kept:
            oldest = self._clock.seconds() - self.historyAge
            while kept and kept[0].timestamp < oldest:
                kept.popleft()

    def _sweep(self) -> None:
        for name, channel in list(self._channels.items()):
            self._expire(channel)
            if not channel.listened and not channel.kept:
                del self._channels[name]

    def subscribe(self, channel: str) -> Deferred[None]:
        """
        See L{Broker.subscribe}.
        """
        self._channel(channel).listened = True
        return succeed(None)

    def unsubscribe(self, channel: str) -> Deferred[None]:
        """
        See L{Broker.unsubscribe}.
        """
        state = self._channels.get(channel)
        if state is not None:
            state.listened = False
            self._expire(state)
            if not state.kept:
                del self._channels[channel]
        return succeed(None)

    def publish(self, channel: str, data: bytes) -> Deferred[Publication]:
        """
        See L{Broker.publish}; delivery happens before the Deferred fires.
        """
        state = self._channel(channel)
        state.latest += 1
        publication = Publication(channel, state.epoch, state.latest, data, self._clock.seconds())
        if self.historySize:
            kept = state.kept
            kept.append(publication)
            if len(kept) > self.historySize:
                kept.popleft()
        if state.listened and self._deliver is not None:
            self._deliver(publication)
        elif not state.listened and not self.historySize:
            # Nothing to remember and nobody to tell: keep no state.
            del self._channels[channel]
        return succeed(publication)

    def history(
        self, channel: str, since: Optional[int] = None, epoch: Optional[str] = None
    ) -> Deferred[History]:
        """
        See L{Broker.history}.
        """
        state = self._channel(channel)
        self._expire(state)
        latest = state.latest
        if since is None:
            return succeed(History(state.epoch, latest, (), True))
        kept = state.kept
        first = kept[0].sequence if kept else latest + 1
        if epoch != state.epoch or since > latest or since < 0:
            return succeed(History(state.epoch, latest, (), False))
        start = max(since + 1 - first, 0)
        publications = tuple(kept[i] for i in range(start, len(kept)))
        return succeed(History(state.epoch, latest, publications, since + 1 >= first))
