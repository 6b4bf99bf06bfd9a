"""
Which connections a server lets in: pending handshakes, bounded apart from
open connections.

Design, after nginx and haproxy: a connection is I{pending} from the moment
it is accepted until its peer has sent a complete, valid request (an
upgrade request, or an HTTP request for a site's channel); only then does it
count as I{open}, against C{maxConnections}.  So sockets that never send a
byte, or trickle their request in, can fill only the pending table, never
lock real clients out of the open slots.  The pending table is bounded too
(C{maxPendingHandshakes}): the I{oldest} pending connections are dropped
for newer ones, so silent sockets only ever take each other's places.

When they are dropped matters.  A well-behaved client sends its request
as soon as it connects; over loopback or a LAN, it is in the socket before
the server has accepted the connection.  But a flood of new connections is
accepted in batches (Twisted accepts all the listen queue holds in one
turn of the reactor), and the reactor reads the new connections only in
its next turn: dropping at once to admit each newcomer would drop a good
client of the last batch before its request was ever read.  So once more
than C{maxPendingHandshakes} are pending, the table is trimmed back to it
at the reactor's turn after next, and only of connections admitted before
the turn in between: every connection has had a turn to be read.  Only
if the table reaches twice the bound (as many again accepted within two
turns: each turn accepts what the listen queue holds, 50 by default) is
the oldest dropped at once for each newcomer.  So never more than twice
C{maxPendingHandshakes} are pending, and a good client whose request came
with its connection is dropped only if more than C{maxPendingHandshakes}
others arrive before the reactor's next turn.  Optionally, pending
connections from
one peer address (an IPv4 address, or an IPv6 /64: one host's usual
allocation) are bounded as well (C{maxPendingHandshakesPerPeer}); a
connection beyond that bound is refused at once, so one address cannot
push anybody else's handshakes out.

Under a flood every dropped or refused connection would make a log line;
L{Tally} makes that one line for the first, then one summary per interval.
"""

from __future__ import annotations

import socket
from typing import Any, Optional, Protocol

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["Admission", "Pending", "Tally", "peerKey"]

_log = Logger()

#: Seconds over which repeated log lines of one kind are summed up.
TALLY_INTERVAL = 10.0


class Pending(Protocol):
    """
    What the pending table asks of a connection.
    """

    def _dropPending(self) -> None:
        """
        This is the oldest of too many pending connections: abort it.
        """


def peerKey(address: object) -> Optional[str]:
    """
    The part of a peer's address that the per-peer bound counts by.

    @param address: a transport's peer address.
    @return: the IPv4 address; for IPv6, its /64 prefix (the IPv4 address of
        an IPv4-mapped one); C{None} for anything else (UNIX sockets), which
        the per-peer bound does not apply to.
    """
    if isinstance(address, IPv4Address):
        return address.host
    if isinstance(address, IPv6Address):
        host = address.host.partition("%")[0]
        try:
            packed = socket.inet_pton(socket.AF_INET6, host)
        except OSError:
            return host
        if packed[:12] == b"\0" * 10 + b"\xff\xff":
            return socket.inet_ntop(socket.AF_INET, packed[12:])
        return socket.inet_ntop(socket.AF_INET6, packed[:8] + b"\0" * 8) + "/64"
    return None


class Tally:
    """
    A log line that would repeat under a flood: the first occurrence after a
    quiet interval is logged in full, later ones within C{interval} seconds
    are counted and logged as one summary line at its end.

    @ivar total: occurrences since the tally was made.
    """

    __slots__ = ("_call", "_clock", "_count", "_fields", "_interval", "_summary", "total")

    def __init__(self, clock: IReactorTime, summary: str, interval: float = TALLY_INTERVAL
                 ) -> None:
        """
        @param clock: the reactor whose clock ends the intervals.
        @param summary: the summary's log format; it may use C{{count}}
            (occurrences not logged in full), C{{interval}} and the
            keywords given to L{note}.
        @param interval: seconds summed up in one summary line.
        """
        self._clock = clock
        self._summary = summary
        self._interval = interval
        self._call: Optional[IDelayedCall] = None
        self._count = 0
        self._fields: dict[str, Any] = {}
        self.total = 0

    def note(self, fmt: str, **fields: Any) -> None:
        """
        One occurrence: logged in full (C{fmt} and C{fields}) if none came
        within the interval before, else counted for the summary.

        @param fmt: the full log line's format.
        @param fields: its keywords (also available to the summary).
        """
        self.total += 1
        if self._call is None:
            _log.info(fmt, **fields)
            self._fields = fields
            self._call = self._clock.callLater(self._interval, self._summarize)
        else:
            self._count += 1

    def _summarize(self) -> None:
        count, self._count = self._count, 0
        if not count:
            self._call = None
            return
        _log.info(self._summary, count=count, interval=self._interval, **self._fields)
        self._call = self._clock.callLater(self._interval, self._summarize)

    def flush(self) -> None:
        """
        Log the summary of what was counted so far, if anything, now, and
        leave nothing behind in the reactor (the next occurrence is logged
        in full again).
        """
        call, self._call = self._call, None
        if call is not None and call.active():
            call.cancel()
        count, self._count = self._count, 0
        if count:
            _log.info(self._summary, count=count, interval=self._interval, **self._fields)


class Admission:
    """
    A server's pending handshakes, oldest first, and its count of open
    connections (see the module's design notes).

    @ivar openCount: connections admitted as open and not yet gone.
    @ivar dropped: a L{Tally} of pending connections dropped as the oldest.
    @ivar refused: a L{Tally} of connections refused by the per-peer bound.
    @ivar timedOut: a L{Tally} of pending connections whose handshake timed
        out (logged by the connections themselves).
    """

    __slots__ = (
        "_clock",
        "_cutoff",
        "_limit",
        "_pending",
        "_perPeer",
        "_serial",
        "_trim",
        "dropped",
        "openCount",
        "refused",
        "timedOut",
    )

    def __init__(self, clock: IReactorTime) -> None:
        """
        @param clock: the reactor whose turns pace the trimming of the
            table and whose clock paces the tallies' summaries.
        """
        self._clock = clock
        # (A dict keeps insertion order: its first key is the oldest.)  Each
        # value: the peer key, and the serial number of the admission.
        self._pending: dict[Pending, tuple[Optional[str], int]] = {}
        self._perPeer: dict[str, int] = {}
        self._serial = 0
        self._trim: Optional[IDelayedCall] = None
        self._cutoff = 0
        self._limit = 0
        self.openCount = 0
        self.dropped = Tally(
            clock,
            "Dropped {count} more pending handshakes, the oldest, in the last "
            "{interval:g} s (maxPendingHandshakes {limit})",
        )
        self.refused = Tally(
            clock,
            "Refused {count} more connections with 503 in the last {interval:g} s: too "
            "many pending handshakes from one address (maxPendingHandshakesPerPeer {limit})",
        )
        self.timedOut = Tally(
            clock,
            "{count} more opening handshakes timed out in the last {interval:g} s",
        )

    @property
    def pendingCount(self) -> int:
        """
        Connections accepted whose request has not arrived yet.
        """
        return len(self._pending)

    def admit(self, connection: Pending, key: Optional[str], limit: int, perPeer: int,
              peer: str) -> bool:
        """
        A connection was accepted: make it pending, unless its peer already
        has C{perPeer} pending (then the caller refuses it).  If twice
        C{limit} are pending, the oldest is dropped at once; if more than
        C{limit} are, the oldest beyond it are dropped at the reactor's turn
        after next (see the module's design notes).

        @param connection: the new connection.
        @param key: its L{peerKey}.
        @param limit: C{maxPendingHandshakes} (0 for no bound).
        @param perPeer: C{maxPendingHandshakesPerPeer} (0 for no bound).
        @param peer: the connection's description, for the log.
        @return: whether it was admitted.
        """
        if perPeer and key is not None and self._perPeer.get(key, 0) >= perPeer:
            self.refused.note(
                "Refused a connection from {peer} with 503: {limit} handshakes from its "
                "address already pending (maxPendingHandshakesPerPeer)",
                peer=peer, limit=perPeer,
            )
            return False
        pending = self._pending
        if limit:
            while len(pending) >= 2 * limit:
                self._drop(next(iter(pending)), limit)
        self._serial += 1
        pending[connection] = (key, self._serial)
        if key is not None:
            self._perPeer[key] = self._perPeer.get(key, 0) + 1
        if limit and len(pending) > limit and self._trim is None:
            self._limit = limit
            self._trim = self._clock.callLater(0, self._turnPassed)
        return True

    def _drop(self, connection: Pending, limit: int) -> None:
        self._release(connection)
        self.dropped.note(
            "Dropped the oldest pending handshake to keep pending handshakes within "
            "maxPendingHandshakes ({limit})",
            limit=limit,
        )
        connection._dropPending()

    def _turnPassed(self) -> None:
        """
        The reactor's next turn: what is pending now will have been read
        once by the turn after, when the table is trimmed.
        """
        self._cutoff = self._serial
        self._trim = self._clock.callLater(0, self._trimOldest)

    def _trimOldest(self) -> None:
        """
        Drop the oldest pending connections admitted before the last turn
        until at most the bound are pending; start again if newer ones keep
        the table over it.
        """
        self._trim = None
        limit = self._limit
        pending = self._pending
        while len(pending) > limit:
            oldest = next(iter(pending))
            if pending[oldest][1] > self._cutoff:
                break
            self._drop(oldest, limit)
        if len(pending) > limit:
            self._trim = self._clock.callLater(0, self._turnPassed)

    def arrived(self, connection: Pending) -> None:
        """
        A pending connection's request has arrived: it leaves the table
        (without becoming open: a site's HTTP connection).
        """
        self._release(connection)

    def opened(self, connection: Pending) -> None:
        """
        A connection counts as open from now on (it leaves the table if it
        was pending).
        """
        self._release(connection)
        self.openCount += 1

    def closed(self, connection: Pending, wasOpen: bool) -> None:
        """
        A connection is gone.

        @param wasOpen: whether it had been counted by L{opened}.
        """
        self._release(connection)
        if wasOpen:
            self.openCount -= 1

    def _release(self, connection: Pending) -> None:
        entry = self._pending.pop(connection, None)
        if entry is not None and entry[0] is not None:
            key = entry[0]
            left = self._perPeer[key] - 1
            if left:
                self._perPeer[key] = left
            else:
                del self._perPeer[key]

    def flush(self) -> None:
        """
        Log the tallies' summaries now and cancel their timers, and the
        trimming's if nothing is pending (when a factory's last connection
        is gone, so that nothing stays in the reactor).
        """
        if not self._pending:
            trim, self._trim = self._trim, None
            if trim is not None and trim.active():
                trim.cancel()
        self.dropped.flush()
        self.refused.flush()
        self.timedOut.flush()
