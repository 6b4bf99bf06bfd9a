"""
This node's subscribers, per channel, and the fan-out of publications to
them.

Design: a channel's live subscribers are a set of connections.  A
publication is encoded to JSON once and framed once (a
L{txws.frames.PreparedMessage}); the same frame bytes go to every live
subscriber's transport, with no per-subscriber serialization.  A
connection's own bound on what it queues (C{maxBufferedAmount}, the hub's
C{maxSubscriberBuffer}) protects the others from a slow one: it is closed
with 4008 instead of holding memory, and the loop goes on.

A subscription is first I{pending}: the broker is asked for the channel's
epoch and latest sequence number (and, to resume, the publications after
the client's last one).  Publications that arrive meanwhile are buffered
for that subscriber; once the broker answers, the client gets its
C{subscribed} answer, the missed publications, then the buffered ones it
has not seen, and only then joins the live set.  So a subscriber sees every
sequence number after its starting point once, in order, whatever the
broker's timing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure

from txws.frames import PreparedMessage
from txws.hub.broker import Broker, History, Publication
from txws.protocol import Disconnected

if TYPE_CHECKING:
    from txws.hub.subscriber import HubProtocol

__all__ = ["LocalChannels", "messageFor"]

_log = Logger()


def messageFor(publication: Publication) -> bytes:
    """
    @param publication: a publication.
    @return: the C{message} JSON every subscriber receives for it (channel
        names need no escaping).
    """
    return b"".join(
        (
            b'{"type":"message","channel":"',
            publication.channel.encode("ascii"),
            b'","seq":',
            str(publication.sequence).encode("ascii"),
            b',"data":',
            publication.data,
            b"}",
        )
    )


class _Pending:
    """
    A subscription waiting for the broker's answer.
    """

    __slots__ = ("buffered", "epoch", "requestId", "since")

    def __init__(self, since: Optional[int], epoch: Optional[str], requestId: object) -> None:
        self.since = since
        self.epoch = epoch
        self.requestId = requestId
        self.buffered: list[Publication] = []


class LocalChannels:
    """
    This node's subscriptions, and the broker callback that fans
    publications out to them.

    @ivar delivered: for each channel, the sequence number of its latest
        publication fanned out here and the number of subscribers it was
        written to.
    @ivar deliveries: publications written to live subscribers here by
        fan-out, in all (history sent to resuming subscribers not counted).
    """

    def __init__(self, broker: Broker) -> None:
        """
        @param broker: the channel state.
        """
        self._broker = broker
        # Live subscribers per channel, each with the sequence number of the
        # last publication it was sent before it went live.
        self._live: dict[str, dict[HubProtocol, int]] = {}
        self._pending: dict[str, dict[HubProtocol, _Pending]] = {}
        # Channels whose node subscription is on its way, with who waits.
        self._subscribing: dict[str, list[tuple[HubProtocol, _Pending]]] = {}
        self.delivered: dict[str, tuple[int, int]] = {}
        self.deliveries = 0

    @property
    def channelCount(self) -> int:
        """
        Channels with at least one subscriber (live or pending) here.
        """
        return len(self._live.keys() | self._pending.keys())

    @property
    def subscriptionCount(self) -> int:
        """
        Subscriptions here, live or pending.
        """
        return sum(map(len, self._live.values())) + sum(map(len, self._pending.values()))

    @property
    def subscriberConnections(self) -> int:
        """
        Connections subscribed (live or pending) to at least one channel
        here.
        """
        return len(set().union(*self._live.values(), *self._pending.values()))

    def subscriberCount(self, channel: str) -> int:
        """
        @param channel: a channel name.
        @return: its live subscribers here.
        """
        return len(self._live.get(channel, ()))

    def isSubscribed(self, protocol: HubProtocol, channel: str) -> bool:
        """
        @return: whether C{protocol} is subscribed (or subscribing) to
            C{channel}.
        """
        return protocol in self._live.get(channel, ()) or protocol in self._pending.get(
            channel, ()
        )

    # -- Fan-out --------------------------------------------------------------

    def deliver(self, publication: Publication) -> None:
        """
        The broker's callback: write the publication to every subscriber of
        its channel here.

        @param publication: the publication.
        """
        channel = publication.channel
        pending = self._pending.get(channel)
        if pending:
            for waiting in pending.values():
                waiting.buffered.append(publication)
        subscribers = self._live.get(channel)
        if not subscribers:
            self.delivered[channel] = (publication.sequence, 0)
            return
        prepared = PreparedMessage(messageFor(publication), False)
        written = 0
        # A copy: a subscriber that fails here may leave the set at once.
        for subscriber in tuple(subscribers):
            try:
                subscriber.sendPreparedMessage(prepared)
            except Disconnected:
                continue
            # (Not if this very message overflowed its queue: then it was
            # dropped, and the subscriber is closing with 4008.)
            if subscriber.localCloseCode is None:
                written += 1
        self.delivered[channel] = (publication.sequence, written)
        self.deliveries += written

    def lost(self, channel: str, history: History) -> None:
        """
        The broker's callback for publications this node missed and can no
        longer get (a broker on the network that was unreachable): every
        subscriber of the channel here is told, as a resume that could not
        be served is, with an unsolicited C{subscribed} answer whose
        C{recovered} is false and whose C{epoch} and C{seq} are where
        deliveries go on from.

        @param channel: the channel.
        @param history: its current epoch and latest sequence number.
        """
        subscribers = self._live.get(channel)
        if not subscribers:
            return
        _log.warn(
            "hub lost publications on {channel} for {count} subscribers: they are told",
            channel=channel,
            count=len(subscribers),
        )
        for subscriber in tuple(subscribers):
            subscribers[subscriber] = history.latest
            subscriber.sendControl(_subscribedAnswer(channel, history, None, False))

    # -- Subscribing ----------------------------------------------------------

    def subscribe(
        self,
        protocol: HubProtocol,
        channel: str,
        since: Optional[int] = None,
        epoch: Optional[str] = None,
        requestId: object = None,
    ) -> None:
        """
        Subscribe a connection to a channel; it gets its C{subscribed}
        answer (and, to resume, what it missed) when the broker has
        answered.  A connection already subscribed gets the answer again
        and, to resume, what it missed before it subscribed, never what it
        received since.

        @param protocol: the subscriber.
        @param channel: a valid channel name (checked, token included, by
            the caller).
        @param since: the last sequence number it saw, to resume.
        @param epoch: the epoch of C{since}.
        @param requestId: the request's C{id}, echoed.
        """
        if self.isSubscribed(protocol, channel):
            self._broker.history(channel, since, epoch).addCallbacks(
                self._answerAgain,
                self._brokerFailed,
                callbackArgs=(protocol, channel, since, requestId),
                errbackArgs=(protocol, channel, requestId, False),
            )
            return
        first = channel not in self._live and channel not in self._pending
        waiting = _Pending(since, epoch, requestId)
        self._pending.setdefault(channel, {})[protocol] = waiting
        if first:
            # History is read only once the node listens to the channel, so
            # that nothing published in between is lost; later subscribers
            # wait for that too.
            waiters = self._subscribing[channel] = [(protocol, waiting)]
            self._broker.subscribe(channel).addCallbacks(
                self._nodeSubscribed,
                self._nodeSubscribeFailed,
                callbackArgs=(channel, waiters),
                errbackArgs=(channel, waiters),
            )
        elif channel in self._subscribing:
            self._subscribing[channel].append((protocol, waiting))
        else:
            self._askHistory(protocol, channel, waiting)

    def _nodeSubscribed(
        self, _: object, channel: str, waiters: list[tuple[HubProtocol, _Pending]]
    ) -> None:
        # Only this answer's own waiters: the channel may have gone idle and
        # been subscribed to anew meanwhile, with a list of its own.
        if self._subscribing.get(channel) is waiters:
            del self._subscribing[channel]
        for protocol, waiting in waiters:
            self._askHistory(protocol, channel, waiting)

    def _nodeSubscribeFailed(
        self, reason: Failure, channel: str, waiters: list[tuple[HubProtocol, _Pending]]
    ) -> None:
        if self._subscribing.get(channel) is waiters:
            del self._subscribing[channel]
        for protocol, waiting in waiters:
            if self._pending.get(channel, {}).get(protocol) is waiting:
                self._brokerFailed(reason, protocol, channel, waiting.requestId, True)

    def _askHistory(self, protocol: HubProtocol, channel: str, waiting: _Pending) -> None:
        if self._pending.get(channel, {}).get(protocol) is not waiting:
            return  # unsubscribed or gone meanwhile
        self._broker.history(channel, waiting.since, waiting.epoch).addCallbacks(
            self._historyArrived,
            self._brokerFailed,
            callbackArgs=(protocol, channel, waiting),
            errbackArgs=(protocol, channel, waiting.requestId, True),
        )

    def _answerAgain(
        self,
        history: History,
        protocol: HubProtocol,
        channel: str,
        since: Optional[int],
        requestId: object,
    ) -> None:
        recovered = None if since is None else history.complete
        protocol.sendControl(_subscribedAnswer(channel, history, requestId, recovered))
        joinedAt = self._live.get(channel, {}).get(protocol)
        if recovered and joinedAt is not None:
            for publication in history.publications:
                if publication.sequence > joinedAt:
                    break
                protocol.sendPublication(publication)

    def _historyArrived(
        self, history: History, protocol: HubProtocol, channel: str, waiting: _Pending
    ) -> None:
        pending = self._pending.get(channel)
        if pending is None or pending.get(protocol) is not waiting:
            return  # unsubscribed or gone meanwhile
        del pending[protocol]
        if not pending:
            del self._pending[channel]
        resuming = waiting.since is not None
        recovered = resuming and history.complete
        protocol.sendControl(
            _subscribedAnswer(channel, history, waiting.requestId, recovered if resuming else None)
        )
        last = waiting.since if recovered and waiting.since is not None else history.latest
        if recovered:
            for publication in history.publications:
                if publication.sequence > last:
                    protocol.sendPublication(publication)
                    last = publication.sequence
        for publication in waiting.buffered:
            if publication.sequence > last and publication.epoch == history.epoch:
                protocol.sendPublication(publication)
                last = publication.sequence
        if protocol.isOpen:
            self._live.setdefault(channel, {})[protocol] = last
        else:
            self._channelMayBeIdle(channel)

    def _brokerFailed(
        self, reason: Failure, protocol: HubProtocol, channel: str, requestId: object, new: bool
    ) -> None:
        _log.failure(
            "hub broker failed a subscription to {channel} for {peer}",
            reason,
            channel=channel,
            peer=protocol.peer,
        )
        if new:
            self._forget(protocol, channel)
            protocol.subscriptionEnded(channel)
        protocol.sendError("unavailable", "the broker cannot serve this now", channel, requestId)

    def unsubscribe(self, protocol: HubProtocol, channel: str) -> bool:
        """
        End a connection's subscription to a channel.

        @return: whether it was subscribed.
        """
        if not self.isSubscribed(protocol, channel):
            return False
        self._forget(protocol, channel)
        return True

    def unsubscribeAll(self, protocol: HubProtocol, channels: Iterable[str]) -> None:
        """
        End every subscription of a connection that is gone.

        @param channels: the channels it subscribed to.
        """
        for channel in channels:
            self._forget(protocol, channel)

    def _forget(self, protocol: HubProtocol, channel: str) -> None:
        live = self._live.get(channel)
        if live is not None:
            live.pop(protocol, None)
            if not live:
                del self._live[channel]
        pending = self._pending.get(channel)
        if pending is not None:
            pending.pop(protocol, None)
            if not pending:
                del self._pending[channel]
        self._channelMayBeIdle(channel)

    def _channelMayBeIdle(self, channel: str) -> None:
        if channel in self._live or channel in self._pending:
            return
        self.delivered.pop(channel, None)
        self._subscribing.pop(channel, None)
        self._broker.unsubscribe(channel).addErrback(
            lambda reason: _log.failure(
                "hub broker failed to unsubscribe from {channel}", reason, channel=channel
            )
        )


def _subscribedAnswer(
    channel: str, history: History, requestId: object, recovered: Optional[bool]
) -> dict[str, object]:
    answer: dict[str, object] = {
        "type": "subscribed",
        "channel": channel,
        "epoch": history.epoch,
        "seq": history.latest,
    }
    if requestId is not None:
        answer["id"] = requestId
    if recovered is not None:
        answer["recovered"] = recovered
    return answer
