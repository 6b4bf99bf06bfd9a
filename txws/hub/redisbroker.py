"""
The hub's broker in Redis, shared by every node of a cluster.

Design: a channel's state lives in two Redis keys with the same hash tag
(C{<prefix>{<channel>}:meta}, a hash of its C{epoch} and C{seq}, and
C{<prefix>{<channel>}:log}, a stream), so that a Redis Cluster keeps them
on one shard.  One Lua script per publication (C{EVALSHA}) atomically
creates the epoch if absent (a random one the node proposes), increments the
sequence number, appends the entry to the stream with the explicit ID
C{<seq>-0} and exact C{MAXLEN} trimming, sets both keys to expire after the
history age (so idle channels vanish and get a new epoch next time), and
C{PUBLISH}es C{"<epoch> <seq> <timestamp> <data>"} on the channel's pub/sub
channel C{<prefix>{<channel>}:pub}.  Timestamps are Redis's own clock
(C{TIME}), so nodes with skewed clocks agree on what is too old.  C{history}
is a second script: it reads the stream after the requested position and
drops entries older than the age.  While a node subscribes to a channel it
refreshes the C{meta} key's expiry, so a subscribed channel keeps its epoch
however long it is idle, as with the in-process broker.

Each node holds two connections: one for commands and one for pub/sub
(C{SUBSCRIBE} per channel, as the registry asks).  Delivery is exactly once
and in order while Redis is up: per subscribed channel the node keeps the
epoch and the last sequence number delivered, drops anything at or below
it, and fills a gap (a number skipped) from the stream before going on.

When Redis goes away the node keeps serving its local subscribers;
C{publish}, C{subscribe} and C{history} fail at once with
L{BrokerUnavailable} (nothing is buffered while down).  Both connections
come back by themselves with capped exponential backoff and jitter; the
loss and the recovery are each logged once, never per retry.  Once both are
back, every channel is subscribed again and read from the stream after the
last sequence number delivered, and what was missed is delivered.  When the
stream cannot cover it (entries expired or trimmed, or the epoch changed
because Redis lost its data), the C{lost} callback given to L{RedisBroker.start} is
called with the channel and its current L{History}, and deliveries go on
after that history's C{latest}.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, Optional

import txredisapi
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from txws.hub.broker import BrokerUnavailable, History, Publication, newEpoch
from txws.hub.brokerurl import RedisSettings, clientEndpoint

__all__ = ["RedisBroker", "RedisLink", "asUnavailable"]

_log = Logger(namespace="txws.hub.redisbroker")

#: KEYS: meta, log.  ARGV: proposed epoch, data, history size, ttl (ms),
#: pub/sub channel.  Returns {epoch, seq, timestamp}.
_PUBLISH = b"""
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local t = redis.call('TIME')
local ts = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, seq .. '-0', 't', ts, 'd', ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
redis.call('PUBLISH', ARGV[5], epoch .. ' ' .. seq .. ' ' .. ts .. ' ' .. ARGV[2])
return {epoch, seq, ts}
"""

#: KEYS: meta, log.  ARGV: proposed epoch, ttl (ms), since (or 'none'),
#: epoch of since, age (s).  Returns {epoch, latest, complete, seq, ts,
#: data, seq, ts, data, ...}.
_HISTORY = b"""
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local latest = 0
if not epoch then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'epoch', epoch, 'seq', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  latest = tonumber(redis.call('HGET', KEYS[1], 'seq'))
end
if ARGV[3] == 'none' then
  return {epoch, latest, 1}
end
local since = tonumber(ARGV[3])
if since < 0 or ARGV[4] ~= epoch or since > latest then
  return {epoch, latest, 0}
end
if since == latest then
  return {epoch, latest, 1}
end
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) + tonumber(t[2]) / 1000000 - tonumber(ARGV[5])
local entries = redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+')
local result = {epoch, latest, 0}
local first = nil
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local ts, data
  for i = 1, #fields, 2 do
    if fields[i] == 't' then ts = fields[i + 1] end
    if fields[i] == 'd' then data = fields[i + 1] end
  end
  if tonumber(ts) > cutoff then
    local seq = tonumber(string.match(entry[1], '^(%d+)'))
    if not first then first = seq end
    result[#result + 1] = seq
    result[#result + 1] = ts
    result[#result + 1] = data
  end
end
if first == since + 1 then result[3] = 1 end
return result
"""


def asUnavailable(reason: Failure) -> Failure:
    """
    Turn a Redis client or connection error into L{BrokerUnavailable}
    (an errback).

    @param reason: the failure.
    @return: a L{BrokerUnavailable} failure, or C{reason} if it is another
        kind of error.
    """
    if reason.check(BrokerUnavailable):
        return reason
    if reason.check(txredisapi.RedisError, ConnectionError, OSError):
        return Failure(BrokerUnavailable(f"Redis: {_text(reason.value)}"))
    return reason


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, BaseException) and value.args:
        return " ".join(_text(a) for a in value.args)[:200]
    return str(value)[:200]


class _PromptReplies:
    """
    txredisapi's reply parser without its detour after every bulk string
    (it pauses the transport and goes on in the next reactor iteration, so
    that a long reply does not recurse): the rest of the data is parsed
    here, in a loop.
    """

    line_mode: int
    _leftover: Optional[bytes] = None

    def setLineMode(self, extra: bytes = b"") -> None:
        self.line_mode = 1
        if extra:
            self._leftover = extra

    def dataReceived(self, data: bytes, unpause: bool = False) -> None:
        chunk: Optional[bytes] = data
        while chunk:
            self._leftover = None
            super().dataReceived(chunk)  # type: ignore[misc]
            chunk = self._leftover


class _CommandProtocol(_PromptReplies, txredisapi.RedisProtocol):  # type: ignore[misc]
    """
    A command connection that tells its L{RedisLink} when it is lost.
    """

    link: Optional[RedisLink] = None
    lostReason: Optional[Failure] = None

    def connectionLost(self, why: Failure) -> None:
        self.lostReason = why
        super().connectionLost(why)
        if self.link is not None:
            self.link.protocolLost(self, why)


class _PubSubProtocol(_PromptReplies, txredisapi.SubscriberProtocol):  # type: ignore[misc]
    """
    A pub/sub connection that hands messages to its broker.
    """

    link: Optional[RedisLink] = None
    onMessage: Optional[Callable[[bytes, bytes], None]] = None

    lostReason: Optional[Failure] = None

    def messageReceived(self, pattern: object, channel: bytes, message: bytes) -> None:
        if self.onMessage is not None:
            self.onMessage(channel, message)

    def connectionLost(self, why: Failure) -> None:
        self.lostReason = why
        super().connectionLost(why)
        if self.link is not None:
            self.link.protocolLost(self, why)


def _quietFactory(build: Any) -> Factory:
    """
    A factory for one connection attempt that does not log "Starting
    factory" and "Stopping factory" at every reconnection attempt.
    """
    factory = Factory.forProtocol(build)
    factory.noisy = False
    return factory


class RedisLink:
    """
    One connection to Redis that comes back by itself: capped exponential
    backoff with jitter, authentication and database selection on every
    connection, a C{PING} every C{pingInterval} seconds that drops a
    connection whose server stopped answering, and callbacks when it is up
    and when it is lost (not per failed attempt).

    @ivar protocol: the connected protocol while up, else C{None}.
    @ivar everConnected: whether it has ever been up.
    @ivar lastError: why the last attempt failed or the connection ended.
    """

    def __init__(
        self,
        settings: RedisSettings,
        reactor: Any,
        pubsub: bool = False,
        connectTimeout: float = 5.0,
        commandTimeout: float = 5.0,
        minRetryDelay: float = 0.1,
        maxRetryDelay: float = 10.0,
        pingInterval: float = 5.0,
        onUp: Optional[Callable[[RedisLink], None]] = None,
        onDown: Optional[Callable[[RedisLink, str], None]] = None,
    ) -> None:
        """
        @param settings: the server.
        @param reactor: an C{IReactorTCP} and C{IReactorTime}.
        @param pubsub: whether this is a pub/sub connection.
        @param connectTimeout: seconds one attempt (connect, TLS, C{AUTH},
            C{SELECT}) may take.
        @param commandTimeout: seconds a command may wait for its reply
            before the connection is dropped (not for C{SUBSCRIBE}).
        @param minRetryDelay: the first retry's delay.
        @param maxRetryDelay: the cap on the delay between attempts.
        @param pingInterval: seconds between keepalive C{PING}s.
        @param onUp: called each time the connection is ready.
        @param onDown: called with a reason each time a ready connection is
            lost, and when the very first attempt fails.
        """
        self._settings = settings
        self._reactor = reactor
        self._pubsub = pubsub
        self._connectTimeout = connectTimeout
        self._commandTimeout = commandTimeout
        self._minRetryDelay = minRetryDelay
        self._maxRetryDelay = maxRetryDelay
        self._onUp = onUp
        self._onDown = onDown
        self.protocol: Optional[Any] = None
        self.everConnected = False
        self.lastError = ""
        self._running = False
        self._attempts = 0
        self._inFlight: Optional[Deferred[Any]] = None
        self._handshaking: Optional[Any] = None
        self._retry: Optional[IDelayedCall] = None
        self._firstWaiters: list[Deferred[Any]] = []
        self._closing: list[Deferred[None]] = []
        self._pinger = LoopingCall(self._ping)
        self._pinger.clock = reactor
        self._pingInterval = pingInterval

    @property
    def up(self) -> bool:
        """
        Whether the connection is ready.
        """
        return self.protocol is not None

    def start(self) -> None:
        """
        Connect (if not connecting or connected already) and keep connected.
        """
        if self._running:
            return
        self._running = True
        self._attempt()

    def ready(self) -> Deferred[Any]:
        """
        @return: a Deferred firing with the protocol if the connection is
            up, or, before it has ever been up, once the first attempt
            succeeds; failing with L{BrokerUnavailable} otherwise.
        """
        self.start()
        if self.protocol is not None:
            return succeed(self.protocol)
        if not self.everConnected and self._inFlight is not None and not self._attempts:
            d: Deferred[Any] = Deferred()
            self._firstWaiters.append(d)
            return d
        return fail(BrokerUnavailable(f"Redis is unavailable ({self.lastError or 'down'})"))

    def _attempt(self) -> None:
        self._retry = None
        if not self._running:
            return
        protocolClass = _PubSubProtocol if self._pubsub else _CommandProtocol
        timeout = None if self._pubsub else self._commandTimeout

        def build() -> Any:
            return protocolClass(charset=None, convertNumbers=False, replyTimeout=timeout)

        attempt: Deferred[Any] = clientEndpoint(
            self._settings, self._reactor, self._connectTimeout
        ).connect(_quietFactory(build))
        self._inFlight = attempt
        timer = self._reactor.callLater(self._connectTimeout, attempt.cancel)
        attempt.addCallback(self._handshake)

        def finished(result: object) -> object:
            if timer.active():
                timer.cancel()
            self._inFlight = None
            self._handshaking = None
            return result

        attempt.addBoth(finished)
        attempt.addCallbacks(self._connected, self._failed)

    def _handshake(self, protocol: Any) -> Deferred[Any]:
        protocol.link = self
        self._handshaking = protocol

        async def handshake() -> Any:
            try:
                if self._settings.password is not None:
                    if self._settings.username is not None:
                        await protocol.execute_command(
                            "AUTH", self._settings.username, self._settings.password
                        )
                    else:
                        await protocol.execute_command("AUTH", self._settings.password)
                if self._settings.db:
                    await protocol.execute_command("SELECT", self._settings.db)
                # Fails with LOADING while Redis reads its data back.
                await protocol.execute_command("PING")
            except BaseException:
                protocol.transport.abortConnection()
                lost = protocol.lostReason
                if lost is not None and not lost.check(ConnectionDone):
                    # Say why (e.g. the TLS handshake failed), not just that
                    # the connection is gone.
                    raise BrokerUnavailable(_describeError(lost)) from None
                raise
            return protocol

        return Deferred.fromCoroutine(handshake())

    def _connected(self, protocol: Any) -> None:
        if not self._running or not protocol.connected:
            protocol.transport.abortConnection()
            self._failed(Failure(BrokerUnavailable("connection lost during handshake")))
            return
        self._attempts = 0
        self.everConnected = True
        self.protocol = protocol
        self.lastError = ""
        if not self._pinger.running:
            self._pinger.start(self._pingInterval, now=False)
        if self._onUp is not None:
            self._onUp(self)
        waiters, self._firstWaiters = self._firstWaiters, []
        for d in waiters:
            d.callback(protocol)

    def _failed(self, reason: Failure) -> None:
        self.lastError = _describeError(reason)
        waiters, self._firstWaiters = self._firstWaiters, []
        for d in waiters:
            d.errback(BrokerUnavailable(f"Redis is unavailable ({self.lastError})"))
        if not self._running:
            return
        if not self.everConnected and not self._attempts and self._onDown is not None:
            self._onDown(self, self.lastError)
        self._scheduleRetry()

    def _scheduleRetry(self) -> None:
        if not self._running or self._retry is not None:
            return
        delay = min(self._maxRetryDelay, self._minRetryDelay * 2 ** min(self._attempts, 30))
        self._attempts += 1
        delay *= 0.5 + random.random() / 2
        self._retry = self._reactor.callLater(delay, self._attempt)

    def _ping(self) -> None:
        protocol = self.protocol
        if protocol is None:
            return
        timer = self._reactor.callLater(self._commandTimeout, protocol.transport.abortConnection)

        def answered(_: object) -> None:
            if timer.active():
                timer.cancel()

        protocol.execute_command("PING", apply_timeout=False).addBoth(answered)

    def protocolLost(self, protocol: Any, why: Failure) -> None:
        """
        A connection of this link ended.

        @param protocol: the protocol.
        @param why: the reason.
        """
        protocol.link = None
        closing, self._closing = self._closing, []
        for d in closing:
            d.callback(None)
        if protocol is not self.protocol:
            return
        self.protocol = None
        if self._pinger.running:
            self._pinger.stop()
        self.lastError = _describeError(why)
        if self._onDown is not None and self._running:
            self._onDown(self, self.lastError)
        self._scheduleRetry()

    def stop(self) -> Deferred[None]:
        """
        Disconnect and stop reconnecting.

        @return: a Deferred that fires once the connection is closed.
        """
        self._running = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._pinger.running:
            self._pinger.stop()
        protocol = self.protocol or self._handshaking
        self.protocol = None
        if self._inFlight is not None and protocol is None:
            self._inFlight.cancel()
            return succeed(None)
        if protocol is None or not protocol.connected:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._closing.append(d)
        protocol.transport.loseConnection()
        return d


def _describeError(reason: Failure) -> str:
    value = reason.value
    name = type(value).__name__
    text = _text(value)
    if isinstance(value, BrokerUnavailable):
        return text
    return f"{name}: {text}" if text else name


class _Subscription:
    """
    A channel this node listens to.
    """

    __slots__ = (
        "buffer",
        "channel",
        "epoch",
        "last",
        "overflowed",
        "ready",
        "resync",
        "subscribed",
        "syncing",
    )

    def __init__(self, channel: str) -> None:
        self.channel = channel
        # The epoch and sequence number delivered up to (None: not known yet).
        self.epoch: Optional[str] = None
        self.last = 0
        # Whether SUBSCRIBE has been acknowledged on the current connection.
        self.subscribed = False
        # Whether its position is being read (messages wait in buffer).
        self.syncing = True
        # Whether it must be read from the stream again when possible.
        self.resync = True
        self.buffer: list[Publication] = []
        self.overflowed = False
        # Who waits for the first subscription to be in place.
        self.ready: Optional[list[Deferred[None]]] = []


class RedisBroker:
    """
    The hub's channel state in Redis (see the module's documentation): the
    same contract as L{txws.hub.broker.MemoryBroker}, shared by every node
    connected to the same Redis database with the same C{prefix}.
    """

    def __init__(
        self,
        settings: RedisSettings,
        reactor: Optional[IReactorTime] = None,
        historySize: int = 100,
        historyAge: float = 300.0,
        prefix: str = "txws:",
        connectTimeout: float = 5.0,
        commandTimeout: float = 5.0,
        maxRetryDelay: float = 10.0,
        minRetryDelay: float = 0.1,
    ) -> None:
        """
        @param settings: the Redis server.
        @param reactor: the reactor (default: the global one).
        @param historySize: publications kept per channel (0 keeps none).
        @param historyAge: seconds a publication is kept; also how long an
            idle channel nobody subscribes to keeps its epoch.
        @param prefix: the start of every key and pub/sub channel name, so
            that several hubs can share one database.
        @param connectTimeout: seconds a connection attempt may take.
        @param commandTimeout: seconds a command may wait for its reply.
        @param maxRetryDelay: the cap on the delay between reconnection
            attempts.
        @param minRetryDelay: the delay before the first retry (it doubles
            with each failed attempt, up to C{maxRetryDelay}, with jitter).
        @raise ValueError: for a negative size, a non-positive age or a
            prefix with braces.
        """
        if historySize < 0 or historyAge <= 0:
            raise ValueError("historySize must be >= 0 and historyAge > 0")
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain braces")
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        assert reactor is not None
        self._reactor = reactor
        self.settings = settings
        self.historySize = historySize
        self.historyAge = historyAge
        self.prefix = prefix
        self._ttl = max(1, math.ceil(historyAge * 1000))
        self._maxBuffer = max(1000, 2 * historySize)
        self._commands = RedisLink(
            settings,
            reactor,
            connectTimeout=connectTimeout,
            commandTimeout=commandTimeout,
            maxRetryDelay=maxRetryDelay,
            minRetryDelay=minRetryDelay,
            onUp=self._linkUp,
            onDown=self._linkDown,
        )
        self._pubsub = RedisLink(
            settings,
            reactor,
            pubsub=True,
            connectTimeout=connectTimeout,
            commandTimeout=commandTimeout,
            maxRetryDelay=maxRetryDelay,
            minRetryDelay=minRetryDelay,
            onUp=self._linkUp,
            onDown=self._linkDown,
        )
        self._deliver: Optional[Callable[[Publication], None]] = None
        self._lost: Optional[Callable[[str, History], None]] = None
        self._subscriptions: dict[str, _Subscription] = {}
        self._byPubSubName: dict[bytes, _Subscription] = {}
        self._available = False
        self._wasAvailable = False
        self._saidUnreachable = False
        self._downSince = 0.0
        self._stopped = False
        self._syncRetry: Optional[IDelayedCall] = None
        self._refresher = LoopingCall(self._refresh)
        self._refresher.clock = reactor

    # -- Names ------------------------------------------------------------------

    def _keys(self, channel: str) -> tuple[str, str]:
        base = f"{self.prefix}{{{channel}}}"
        return base + ":meta", base + ":log"

    def _pubSubName(self, channel: str) -> str:
        return f"{self.prefix}{{{channel}}}:pub"

    # -- State ------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """
        Whether both connections to Redis are up.
        """
        return self._available

    def _ensureRunning(self) -> None:
        if self._stopped:
            return
        self._commands.start()
        self._pubsub.start()

    def _linkUp(self, link: RedisLink) -> None:
        if link is self._pubsub:
            for subscription in self._subscriptions.values():
                self._sendSubscribe(subscription)
        if not (self._commands.up and self._pubsub.up) or self._available:
            return
        self._available = True
        where = self.settings.describe()
        if self._wasAvailable:
            _log.info(
                "hub broker: reconnected to Redis at {where} after {seconds:.1f} s",
                where=where,
                seconds=self._reactor.seconds() - self._downSince,
            )
        else:
            _log.info("hub broker: connected to Redis at {where}", where=where)
        self._wasAvailable = True
        if not self._refresher.running:
            self._refresher.start(max(self.historyAge / 3, 0.05), now=False)
        self._syncAll()

    def _linkDown(self, link: RedisLink, reason: str) -> None:
        if not link.everConnected:
            if not self._wasAvailable and not self._saidUnreachable:
                self._saidUnreachable = True
                _log.warn(
                    "hub broker: cannot reach Redis at {where} ({reason}); retrying",
                    where=self.settings.describe(),
                    reason=reason,
                )
            # Subscriptions waiting for the first connection fail with it.
            for subscription in list(self._subscriptions.values()):
                if subscription.ready is not None:
                    self._drop(subscription)
                    self._failReady(subscription, reason)
            return
        if link is self._pubsub:
            for subscription in self._subscriptions.values():
                subscription.subscribed = False
                subscription.resync = True
            # Channels being unsubscribed are gone with the connection.
            for name, subscription in list(self._byPubSubName.items()):
                if self._subscriptions.get(subscription.channel) is not subscription:
                    del self._byPubSubName[name]
        if not self._available:
            return
        self._available = False
        self._downSince = self._reactor.seconds()
        if self._refresher.running:
            self._refresher.stop()
        _log.warn(
            "hub broker: lost Redis at {where} ({reason}); {effect} until it is back, "
            "reconnecting",
            where=self.settings.describe(),
            reason=reason,
            effect=(
                "publishing and subscribing fail"
                if link is self._commands
                else "subscribing fails and deliveries wait"
            ),
        )

    # -- Broker -------------------------------------------------------------------

    def start(
        self,
        deliver: Callable[[Publication], None],
        lost: Optional[Callable[[str, History], None]] = None,
    ) -> Deferred[None]:
        """
        See L{txws.hub.broker.Broker.start}: connect and deliver from now on.

        @param deliver: called with every publication on a subscribed
            channel, in order, once.
        @param lost: called with a channel and its current L{History} when
            this node missed publications on it that Redis no longer holds
            (after Redis was unreachable); deliveries go on after the
            history's C{latest}.
        @return: a Deferred that fires once connected to Redis, or fails
            with L{BrokerUnavailable} if the first attempt fails (the
            broker keeps trying in the background).
        """
        self._ensureRunning()
        d = self._commands.ready()
        d.addCallback(lambda _: self._pubsub.ready())
        # What was published before start and is still on its way is not
        # delivered: deliveries begin after a round trip on the pub/sub
        # connection.
        d.addCallback(lambda _: self.barrier())

        def begin(result: object) -> object:
            if not self._stopped:
                self._deliver = deliver
                self._lost = lost
            return result

        d.addBoth(begin)
        return d

    def stop(self) -> Deferred[None]:
        """
        See L{txws.hub.broker.Broker.stop}.
        """
        self._stopped = True
        self._deliver = None
        self._lost = None
        if self._refresher.running:
            self._refresher.stop()
        if self._syncRetry is not None and self._syncRetry.active():
            self._syncRetry.cancel()
        self._syncRetry = None
        self._available = False
        subscriptions = list(self._subscriptions.values())
        self._subscriptions.clear()
        self._byPubSubName.clear()
        for subscription in subscriptions:
            self._failReady(subscription, "the broker stopped")
        one = self._commands.stop()
        other = self._pubsub.stop()
        d = one.addCallback(lambda _: other)
        d.addCallback(lambda _: None)
        return d

    def subscribe(self, channel: str) -> Deferred[None]:
        """
        See L{txws.hub.broker.Broker.subscribe}; fails with
        L{BrokerUnavailable} while Redis is unreachable.
        """
        if self._stopped:
            return fail(BrokerUnavailable("the broker is stopped"))
        subscription = self._subscriptions.get(channel)
        if subscription is not None:
            if subscription.ready is None:
                return succeed(None)
            d: Deferred[None] = Deferred()
            subscription.ready.append(d)
            return d
        self._ensureRunning()
        if not self._available and (self._wasAvailable or self._saidUnreachable):
            # Down (not merely still connecting for the first time).
            return fail(BrokerUnavailable(f"Redis is unavailable ({self._why()})"))
        subscription = _Subscription(channel)
        self._subscriptions[channel] = subscription
        self._byPubSubName[self._pubSubName(channel).encode("ascii")] = subscription
        d = Deferred()
        assert subscription.ready is not None
        subscription.ready.append(d)
        if self._pubsub.up:
            self._sendSubscribe(subscription)
        else:
            # The first connection is on its way: subscribe once it is up,
            # or fail with it.
            def failed(reason: Failure) -> None:
                if self._subscriptions.get(channel) is subscription:
                    self._drop(subscription)
                    self._failReady(subscription, _text(reason.value))

            self._pubsub.ready().addErrback(failed)
        return d

    def unsubscribe(self, channel: str) -> Deferred[None]:
        """
        See L{txws.hub.broker.Broker.unsubscribe}.
        """
        subscription = self._subscriptions.get(channel)
        if subscription is None:
            return succeed(None)
        del self._subscriptions[channel]
        # Whoever waits for the subscription gets an answer (the registry
        # then finds that nobody wants it any more).
        waiting, subscription.ready = subscription.ready, None
        for w in waiting or ():
            w.callback(None)
        name = self._pubSubName(channel).encode("ascii")
        protocol = self._pubsub.protocol

        def done(_: object) -> None:
            # What Redis sent before it unsubscribed was published before
            # this call, and was delivered meanwhile.
            if self._byPubSubName.get(name) is subscription:
                del self._byPubSubName[name]

        if protocol is None:
            done(None)
            return succeed(None)
        d = protocol.unsubscribe(self._pubSubName(channel))
        d.addErrback(lambda _: None)
        d.addCallback(done)
        return d  # type: ignore[no-any-return]

    def publish(self, channel: str, data: bytes) -> Deferred[Publication]:
        """
        See L{txws.hub.broker.Broker.publish}; fails with
        L{BrokerUnavailable} while Redis is unreachable (nothing is queued).
        Delivery to this node's subscribers may happen after the Deferred
        fires.
        """
        meta, log = self._keys(channel)
        args = (newEpoch(), data, self.historySize, self._ttl, self._pubSubName(channel))

        def parse(reply: Any) -> Publication:
            epoch, sequence, timestamp = reply
            return Publication(
                channel, epoch.decode("ascii"), int(sequence), data, float(timestamp)
            )

        return self._eval(_PUBLISH, (meta, log), args).addCallback(parse)

    def history(
        self, channel: str, since: Optional[int] = None, epoch: Optional[str] = None
    ) -> Deferred[History]:
        """
        See L{txws.hub.broker.Broker.history}; fails with
        L{BrokerUnavailable} while Redis is unreachable.
        """
        meta, log = self._keys(channel)
        position: object = "none" if since is None else since
        args = (newEpoch(), self._ttl, position, epoch or "", self.historyAge)

        def parse(reply: Any) -> History:
            current = reply[0].decode("ascii")
            publications = tuple(
                Publication(channel, current, int(reply[i]), reply[i + 2], float(reply[i + 1]))
                for i in range(3, len(reply), 3)
            )
            return History(current, int(reply[1]), publications, bool(int(reply[2])))

        return self._eval(_HISTORY, (meta, log), args).addCallback(parse)

    def barrier(self) -> Deferred[None]:
        """
        Wait until every message Redis sent this node's pub/sub connection
        before now has been handled (a C{PING} round trip on it): after a
        C{publish} answered, its delivery here has happened.  For tests
        and tools.

        @return: a Deferred that fires then (at once if not connected).
        """
        protocol = self._pubsub.protocol
        if protocol is None:
            return succeed(None)
        d = protocol.execute_command("PING", apply_timeout=False)
        d.addBoth(lambda _: None)
        return d  # type: ignore[no-any-return]

    # -- Commands -----------------------------------------------------------------

    def _why(self) -> str:
        return self._commands.lastError or self._pubsub.lastError or "down"

    def _eval(
        self, script: bytes, keys: tuple[str, ...], args: tuple[object, ...]
    ) -> Deferred[Any]:
        if self._stopped:
            return fail(BrokerUnavailable("the broker is stopped"))
        self._ensureRunning()
        d = self._commands.ready()
        d.addCallback(lambda protocol: protocol.eval(script, list(keys), list(args)))
        d.addErrback(asUnavailable)
        return d

    def _refresh(self) -> None:
        """
        Keep the epoch of every subscribed channel alive.
        """
        protocol = self._commands.protocol
        if protocol is None:
            return
        for channel in self._subscriptions:
            protocol.execute_command("PEXPIRE", self._keys(channel)[0], self._ttl).addErrback(
                lambda _: None
            )

    # -- Subscriptions ------------------------------------------------------------

    def _drop(self, subscription: _Subscription) -> None:
        if self._subscriptions.get(subscription.channel) is subscription:
            del self._subscriptions[subscription.channel]
            self._byPubSubName.pop(self._pubSubName(subscription.channel).encode("ascii"), None)

    def _failReady(self, subscription: _Subscription, why: str) -> None:
        waiting, subscription.ready = subscription.ready, None
        for d in waiting or ():
            d.errback(BrokerUnavailable(f"Redis is unavailable ({why})"))

    def _sendSubscribe(self, subscription: _Subscription) -> None:
        protocol: Any = self._pubsub.protocol
        assert protocol is not None
        subscription.subscribed = False
        subscription.syncing = True
        protocol.onMessage = self._message

        def acknowledged(_: object) -> None:
            if protocol is not self._pubsub.protocol:
                return
            if self._subscriptions.get(subscription.channel) is not subscription:
                return
            subscription.subscribed = True
            if self._available:
                self._sync(subscription)

        def failed(reason: Failure) -> None:
            if self._subscriptions.get(subscription.channel) is not subscription:
                return
            if subscription.ready is not None:
                self._drop(subscription)
                self._failReady(subscription, _text(reason.value))
                self._unsubscribeQuietly(subscription.channel)
            elif protocol is self._pubsub.protocol:
                # Redis refused to subscribe again (e.g. LOADING after a
                # restart): start over on a new connection, which
                # subscribes to everything again.
                _log.info(
                    "hub broker: Redis refused to subscribe to {channel} ({reason}); "
                    "reconnecting",
                    channel=subscription.channel,
                    reason=_text(reason.value),
                )
                current: Any = protocol
                current.transport.abortConnection()

        protocol.subscribe(self._pubSubName(subscription.channel)).addCallbacks(
            acknowledged, failed
        )

    def _syncAll(self) -> None:
        self._syncRetry = None
        for subscription in list(self._subscriptions.values()):
            if subscription.subscribed and subscription.resync:
                self._sync(subscription)

    def _scheduleSyncRetry(self) -> None:
        if self._syncRetry is None and not self._stopped:
            self._syncRetry = self._reactor.callLater(0.5, self._syncAll)

    def _sync(self, subscription: _Subscription) -> None:
        """
        Read a subscription's position (the first time) or what it missed
        (after a gap or a reconnection), then handle what waited meanwhile.
        """
        subscription.syncing = True
        subscription.resync = False
        subscription.overflowed = False
        first = subscription.epoch is None
        if first:
            d = self.history(subscription.channel)
        else:
            d = self.history(subscription.channel, subscription.last, subscription.epoch)

        def arrived(history: History) -> None:
            if self._subscriptions.get(subscription.channel) is not subscription:
                return
            if first:
                subscription.epoch = history.epoch
                subscription.last = max(subscription.last, history.latest)
            elif history.complete:
                for publication in history.publications:
                    self._deliverOne(subscription, publication)
            else:
                subscription.epoch = history.epoch
                subscription.last = history.latest
                if self._lost is not None:
                    lostHistory = History(history.epoch, history.latest, (), False)
                    try:
                        self._lost(subscription.channel, lostHistory)
                    except Exception:
                        _log.failure("hub broker: the lost callback failed")
            buffered, subscription.buffer = subscription.buffer, []
            subscription.syncing = False
            waiting, subscription.ready = subscription.ready, None
            for d in waiting or ():
                d.callback(None)
            if subscription.overflowed:
                subscription.resync = True
                self._sync(subscription)
                return
            for publication in buffered:
                self._accept(subscription, publication)
                if subscription.syncing:
                    break

        def failed(reason: Failure) -> None:
            if self._subscriptions.get(subscription.channel) is not subscription:
                return
            subscription.resync = True
            if subscription.ready is not None and first:
                self._drop(subscription)
                self._failReady(subscription, _text(reason.value))
                self._unsubscribeQuietly(subscription.channel)
                return
            if self._available:
                self._scheduleSyncRetry()

        d.addCallbacks(arrived, failed)

    def _unsubscribeQuietly(self, channel: str) -> None:
        protocol = self._pubsub.protocol
        if protocol is not None and channel not in self._subscriptions:
            protocol.unsubscribe(self._pubSubName(channel)).addErrback(lambda _: None)

    # -- Messages -----------------------------------------------------------------

    def _message(self, name: bytes, message: bytes) -> None:
        subscription = self._byPubSubName.get(name)
        if subscription is None:
            return
        try:
            epoch, sequence, timestamp, data = message.split(b" ", 3)
            publication = Publication(
                subscription.channel,
                epoch.decode("ascii"),
                int(sequence),
                data,
                float(timestamp),
            )
        except ValueError:
            _log.warn("hub broker: ignored a malformed message on {channel}",
                      channel=subscription.channel)
            return
        self._accept(subscription, publication)

    def _accept(self, subscription: _Subscription, publication: Publication) -> None:
        if subscription.syncing:
            if len(subscription.buffer) < self._maxBuffer:
                subscription.buffer.append(publication)
            else:
                subscription.overflowed = True
            return
        if publication.epoch == subscription.epoch:
            if publication.sequence <= subscription.last:
                return
            if publication.sequence == subscription.last + 1:
                self._deliverOne(subscription, publication)
                return
        if self._subscriptions.get(subscription.channel) is not subscription:
            return  # unsubscribing: only the last ones in order still count
        # A gap, or another epoch: read what happened from Redis.
        subscription.buffer.append(publication)
        if self._available:
            self._sync(subscription)
        else:
            subscription.syncing = True
            subscription.resync = True

    def _deliverOne(self, subscription: _Subscription, publication: Publication) -> None:
        if publication.sequence <= subscription.last:
            return
        subscription.last = publication.sequence
        deliver = self._deliver
        if deliver is None:
            return
        try:
            deliver(publication)
        except Exception:
            _log.failure("hub broker: delivering to {channel} failed",
                         channel=subscription.channel)

