"""
The HMAC replay store in Redis, shared by every node of a cluster.

Design: L{RedisReplayStore} implements L{txws.hmacauth.replay.ReplayStore}
with one Lua script per request: if any of the request's tokens is already
a key, nothing is written and the answer is "seen"; otherwise every token is
written with C{SET ... PX <lifetime>}, all in one atomic step, so a signed
request replayed to any other node is refused for as long as the guard asks
(twice its skew window).  Keys are C{<prefix>{replay}:<sha256 of the
token>}: fixed length, nothing of the signature in Redis, and one hash tag
so that a Redis Cluster can run the multi-key script.  While Redis is
unreachable C{remember} fails with L{BrokerUnavailable} at once and the
guard fails closed (503 C{replay_store_unavailable}, C{Retry-After: 1});
the connection comes back by itself (L{txws.hub.redisbroker.RedisLink}).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, Optional

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from txws.hmacauth.replay import ReplayStoreUnavailable
from txws.hub.broker import BrokerUnavailable
from txws.hub.brokerurl import RedisSettings
from txws.hub.redisbroker import RedisLink, asUnavailable

__all__ = ["RedisReplayStore"]


def _unavailable(reason: Failure) -> Failure:
    """
    Redis unreachable is what the guard knows as an unavailable store (503,
    no traceback: the link logs the outage once).
    """
    if reason.check(BrokerUnavailable):
        return Failure(ReplayStoreUnavailable(str(reason.value)))
    return reason

_log = Logger(namespace="txws.hub.redisreplay")

_REMEMBER = b"""
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '1', 'PX', ARGV[1])
end
return 1
"""


class RedisReplayStore:
    """
    A L{txws.hmacauth.replay.ReplayStore} in Redis (see the module's
    documentation).  It connects on first use; L{stop} disconnects.
    """

    def __init__(
        self,
        settings: RedisSettings,
        reactor: Optional[IReactorTime] = None,
        prefix: str = "txws:",
        connectTimeout: float = 5.0,
        commandTimeout: float = 5.0,
        maxRetryDelay: float = 10.0,
    ) -> None:
        """
        @param settings: the Redis server.
        @param reactor: the reactor (default: the global one).
        @param prefix: the start of every key.
        @param connectTimeout: seconds a connection attempt may take.
        @param commandTimeout: seconds a command may wait for its reply.
        @param maxRetryDelay: the cap on the delay between reconnection
            attempts.
        @raise ValueError: for a prefix with braces.
        """
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain braces")
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        self.settings = settings
        self.prefix = prefix
        self._stopped = False
        self._link = RedisLink(
            settings,
            reactor,
            connectTimeout=connectTimeout,
            commandTimeout=commandTimeout,
            maxRetryDelay=maxRetryDelay,
            onUp=self._up,
            onDown=self._down,
        )
        self._wasUp = False
        self._saidDown = False

    @property
    def available(self) -> bool:
        """
        Whether the connection to Redis is up.
        """
        return self._link.up

    def _up(self, link: RedisLink) -> None:
        if self._saidDown:
            _log.info(
                "HMAC replay store: reconnected to Redis at {where}",
                where=self.settings.describe(),
            )
        self._wasUp = True
        self._saidDown = False

    def _down(self, link: RedisLink, reason: str) -> None:
        if not self._saidDown:
            self._saidDown = True
            _log.warn(
                "HMAC replay store: Redis at {where} unavailable ({reason}); signed "
                "requests are refused (503) until it is back",
                where=self.settings.describe(),
                reason=reason,
            )

    def key(self, token: str) -> str:
        """
        @param token: a replay token.
        @return: the Redis key that records it.
        """
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{self.prefix}{{replay}}:{digest}"

    def remember(self, tokens: Sequence[str], lifetime: float) -> Deferred[bool]:
        """
        See L{txws.hmacauth.replay.ReplayStore.remember}.

        @param tokens: the replay tokens of one verified request.
        @param lifetime: seconds to remember them.
        @return: a Deferred firing with C{True} (recorded) or C{False} (a
            replay), or failing with L{BrokerUnavailable} while Redis is
            unreachable.
        """
        if self._stopped:
            return fail(ReplayStoreUnavailable("the replay store is stopped"))
        keys = sorted({self.key(token) for token in tokens})
        if not keys:
            return fail(ValueError("no replay tokens"))
        milliseconds = max(1, math.ceil(lifetime * 1000))
        d = self._link.ready()
        d.addCallback(lambda protocol: protocol.eval(_REMEMBER, keys, [milliseconds]))

        def answer(reply: Any) -> bool:
            return int(reply) == 1

        d.addCallback(answer)
        d.addErrback(asUnavailable)
        d.addErrback(_unavailable)
        return d

    def stop(self) -> Deferred[None]:
        """
        Disconnect and stop reconnecting.

        @return: a Deferred that fires once disconnected.
        """
        self._stopped = True
        return self._link.stop()
