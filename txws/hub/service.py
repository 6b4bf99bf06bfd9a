"""
The hub as a Twisted service: its broker, its subscribers' WebSocket
factory, its resource tree, its counters and its graceful shutdown.

Design: L{Hub} wires the pieces and owns the life cycle; it holds no
protocol logic.  Publishing goes through the broker, which hands every
publication back to the hub's L{txws.hub.registry.LocalChannels} for
fan-out, so the path is the same whether the broker is in this process or
shared by several.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource

from txws.deflate import PerMessageDeflatePolicy
from txws.hmacauth import DEFAULT_MAX_HEAD_SIZE, HMACGuard, HMACSite, KeyRing
from txws.hmacauth.replay import ReplayStore
from txws.hub.broker import Broker, BrokerUnavailable, MemoryBroker, Publication
from txws.hub.registry import LocalChannels
from txws.hub.resources import (
    HealthResource,
    HubRoot,
    PageResource,
    PublishResource,
    ShuttingDown,
)
from txws.hub.subscriber import HubFactory, HubProtocol
from txws.hub.tokens import TokenError, verifyToken
from txws.options import WebSocketOptions
from txws.server import WebSocketResource

__all__ = ["HUB_DEFLATE_POLICY", "Hub"]

_log = Logger()

#: How the hub accepts permessage-deflate unless its options say otherwise:
#: no context takeover either way, so that every published message is
#: compressed once for all its subscribers (L{txws.deflate.compressOnce})
#: and an idle subscriber holds no zlib state at all; 12 window bits and
#: memory level 5 keep the compressor of a message in progress at ~38 KiB.
HUB_DEFLATE_POLICY = PerMessageDeflatePolicy(
    serverNoContextTakeover=True, clientNoContextTakeover=True
)
_MiB = 1024 * 1024


class Hub(Service):
    """
    A push hub.  Start it (C{startService}, or as a child of an
    application) before serving its resource; C{stopService} shuts it down
    gracefully.

    @ivar keyRing: the keys that sign publish requests and channel tokens;
        assign a new L{KeyRing} to rotate keys at run time.
    @ivar factory: the subscribers' WebSocket factory.
    @ivar channels: this node's subscriptions.
    @ivar broker: the channel state.
    @ivar maxSubscriptions: channels one connection may subscribe to.
    @ivar published: publications accepted through this hub's C{/publish}.
    @ivar evicted: subscribers closed for reading too slowly.
    @ivar stopping: whether the hub is shutting down.
    @ivar latencyObserver: if set, called with the seconds each accepted
        publish took from its request reaching the hub's root to its answer
        (with the in-process broker, fan-out to this node's subscribers
        included); L{txws.hub.metrics.HubMetrics} sets it.
    """

    def __init__(
        self,
        keyRing: KeyRing,
        *,
        broker: Optional[Broker] = None,
        reactor: Optional[IReactorTime] = None,
        options: Optional[WebSocketOptions] = None,
        historySize: int = 100,
        historyAge: float = 300.0,
        maxSubscriptions: int = 100,
        maxSubscriberBuffer: int = _MiB,
        replayStore: Optional[ReplayStore] = None,
        maxBodySize: int = _MiB,
    ) -> None:
        """
        @param keyRing: keys that sign publish requests and channel tokens.
        @param broker: the channel state; a L{MemoryBroker} with
            C{historySize} and C{historyAge} if C{None}.
        @param reactor: the reactor (default: the global one).
        @param options: options of the subscribers' WebSocket connections
            (their C{maxBufferedAmount} is replaced by C{maxSubscriberBuffer}).
        @param historySize: messages kept per channel (default broker only).
        @param historyAge: seconds a message is kept (default broker only).
        @param maxSubscriptions: channels one connection may subscribe to.
        @param maxSubscriberBuffer: bytes queued for a subscriber beyond the
            transport's write buffer before it is closed with 4008.
        @param replayStore: the HMAC guard's replay store (in memory if
            C{None}).
        @param maxBodySize: the largest publish body, bytes (413 beyond).
        @raise ValueError: for a limit out of range.
        """
        if maxSubscriptions < 1 or maxSubscriberBuffer < 1 or maxBodySize < 1:
            raise ValueError("maxSubscriptions, maxSubscriberBuffer and maxBodySize must be >= 1")
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        assert reactor is not None
        self._reactor = reactor
        self.keyRing = keyRing
        self.broker: Broker = (
            broker
            if broker is not None
            else MemoryBroker(reactor, historySize=historySize, historyAge=historyAge)
        )
        self.maxSubscriptions = maxSubscriptions
        self.channels = LocalChannels(self.broker)
        options = (options or WebSocketOptions()).replace(maxBufferedAmount=maxSubscriberBuffer)
        if options.perMessageCompressionAccept is None:
            options = options.replace(perMessageCompressionAccept=HUB_DEFLATE_POLICY)
        self.factory = HubFactory(self, reactor=reactor, options=options)
        self._replayStore = replayStore
        self._maxBodySize = maxBodySize
        self.published = 0
        self.evicted = 0
        self.stopping = False
        self.latencyObserver: Optional[Callable[[float], None]] = None
        self._startedAt: Optional[float] = None
        self._inFlight = 0
        self._whenIdle: list[Deferred[None]] = []
        # The guards of every resource tree made, so that setKeyRing reaches them.
        self._guards: list[HMACGuard] = []
        self._publishers: list[PublishResource] = []

    # -- Serving ----------------------------------------------------------------

    def resource(self) -> Resource:
        """
        @return: a new resource tree for the hub: C{/} (the page), C{/ws},
            C{/publish} (HMAC-guarded), C{/healthz}.  Mount it anywhere in
            a site whose requests cap bodies (L{txws.hmacauth.HMACSite}),
            or serve L{site}.
        """
        root = HubRoot(self._reactor)
        root.putChild(b"", PageResource())
        root.putChild(b"ws", WebSocketResource(self.factory))
        publisher = PublishResource(self, self._reactor)
        self._publishers.append(publisher)
        guard = HMACGuard(
            publisher,
            self.keyRing,
            reactor=self._reactor,
            replayStore=self._replayStore,
            maxBodySize=self._maxBodySize,
        )
        self._guards.append(guard)
        root.putChild(b"publish", guard)
        root.putChild(b"healthz", HealthResource(self))
        return root

    def publishesRefused(self) -> dict[tuple[int, str], int]:
        """
        The publish requests refused so far, by C{(HTTP status, code)}: by
        the HMAC guard of every resource tree made (C{401} with
        C{bad_signature}, C{stale_timestamp}, C{replayed}...; C{413},
        C{429}, C{503} of the replay store) and by the publish resource
        behind it (C{400} C{bad_json}, C{bad_channel}; C{405}; C{503}
        C{shutting_down} or C{unavailable}; C{500}).  It may be called
        from another thread than the reactor's (a metrics scrape).

        @return: a new dictionary.
        """
        total: dict[tuple[int, str], int] = {}
        for counter in [g.refused for g in self._guards] + [p.refused for p in self._publishers]:
            # (One C-level copy: safe while the reactor thread counts.)
            for key, count in dict(counter).items():
                total[key] = total.get(key, 0) + count
        return total

    def site(self) -> HMACSite:
        """
        @return: a site serving L{resource}, with the publish body cap; its
            connections count as pending handshakes of the subscribers'
            factory until their first request has arrived.
        """
        # The site's head cap must not cut the WebSocket handshakes the
        # subscribers' options allow.
        options = self.factory.options
        headSize = max(DEFAULT_MAX_HEAD_SIZE, options.maxHandshakeSize)
        site = HMACSite(self.resource(), maxBodySize=self._maxBodySize, maxHeadSize=headSize)
        # Its connections wait for their first request in the subscribers'
        # table of pending handshakes: one bound for both.
        site.admission = self.factory.admission
        site.maxPendingHandshakes = options.maxPendingHandshakes
        site.maxPendingHandshakesPerPeer = options.maxPendingHandshakesPerPeer
        return site

    @property
    def uptime(self) -> float:
        """
        Seconds since the hub started (0 before).
        """
        if self._startedAt is None:
            return 0.0
        return self._reactor.seconds() - self._startedAt

    def setKeyRing(self, keyRing: KeyRing) -> None:
        """
        Replace the keys (rotation): publish requests and channel tokens are
        checked with the new ring from now on.

        @param keyRing: the new keys.
        """
        self.keyRing = keyRing
        for guard in self._guards:
            guard.keyRing = keyRing

    # -- What the pieces ask of the hub -----------------------------------------

    def checkToken(self, token: object, channel: str) -> Optional[tuple[str, str]]:
        """
        Check a private channel's token.

        @param token: what the client presented (C{None} if nothing).
        @param channel: the channel.
        @return: C{None} if the token admits the client, else its error code
            and message.
        """
        if token is None:
            return ("token_required", f"channel {channel} is private: present a channel token")
        try:
            verifyToken(self.keyRing, token, channel, self._reactor.seconds())
        except TokenError as e:
            return (e.code, e.message)
        return None

    def subscriberClosed(self, protocol: HubProtocol, evicted: bool) -> None:
        """
        A subscriber's connection is gone: forget its subscriptions.

        @param protocol: the connection.
        @param evicted: whether it was closed for reading too slowly.
        """
        self.channels.unsubscribeAll(protocol, protocol.channels)
        if evicted:
            self.evicted += 1

    def publish(self, channel: str, data: bytes) -> Deferred[tuple[Publication, int]]:
        """
        Publish to a channel.

        @param channel: a valid channel name.
        @param data: the JSON value, encoded.
        @return: a Deferred firing with the publication and the number of
            subscribers here it was written to, or failing with
            L{ShuttingDown} or the broker's error.
        """
        if self.stopping:
            return fail(ShuttingDown())
        self._inFlight += 1
        d = self.broker.publish(channel, data)

        def published(publication: Publication) -> tuple[Publication, int]:
            self.published += 1
            sequence, count = self.channels.delivered.get(channel, (0, 0))
            if sequence != publication.sequence:
                count = self.channels.subscriberCount(channel)
            return publication, count

        def done(result: object) -> object:
            self._inFlight -= 1
            if not self._inFlight and self._whenIdle:
                waiting, self._whenIdle = self._whenIdle, []
                for w in waiting:
                    w.callback(None)
            return result

        return d.addCallback(published).addBoth(done)

    # -- Life cycle -------------------------------------------------------------

    def _stopReplayStore(self) -> object:
        # A store on the network (Redis) disconnects; the in-memory one has
        # no stop.
        stop = getattr(self._replayStore, "stop", None)
        return stop() if callable(stop) else None

    def startService(self) -> None:
        """
        Start the broker (its deliveries go to this node's subscribers).
        """
        super().startService()  # type: ignore[no-untyped-call]
        self.stopping = False
        self._startedAt = self._reactor.seconds()
        def failed(reason: Failure) -> None:
            if reason.check(BrokerUnavailable):
                # Not yet: the broker said so once and keeps trying; the hub
                # serves meanwhile and publishes answer 503.
                return
            _log.failure("hub broker failed to start", reason)

        self.broker.start(self.channels.deliver, self.channels.lost).addErrback(failed)

    def stopService(self) -> Deferred[None]:
        """
        Refuse new publishes (503), close every subscriber with 1001, wait
        for the closing handshakes up to the close timeout (then they are
        aborted), let publish requests in flight finish, then stop the
        broker.

        @return: a Deferred that fires when all of that is done.
        """
        super().stopService()  # type: ignore[no-untyped-call]
        self.stopping = True
        count = self.factory.connectionCount
        if count:
            _log.info("hub stopping: closing {count} WebSocket connections with 1001", count=count)
        closed = self.factory.closeAll(1001, "server shutting down")
        if self._inFlight:
            idle: Deferred[None] = Deferred()
            self._whenIdle.append(idle)
        else:
            idle = succeed(None)
        done = gatherResults([closed, idle], consumeErrors=True)
        done.addCallback(lambda _: self.broker.stop())
        done.addCallback(lambda _: self._stopReplayStore())
        done.addErrback(lambda reason: _log.failure("hub did not stop cleanly", reason))
        return done.addCallback(lambda _: None)
