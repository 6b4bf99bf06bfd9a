"""
The states of a WebSocket connection: L{State} and its transitions, and the
two side machines that say how closing and failing stand (h11-style: each
change checked against its table, L{checkInvariants} between them).

Design: L{State} is the public, Autobahn-like view (CONNECTING, OPEN,
CLOSING, CLOSED; CLOSING means our Close frame is sent).  Closing and
failing need more than that, and used to be six booleans; they are two
small enums instead: L{Ours} (have we sent our Close frame, or failed the
connection) and L{Theirs} (what we still read from the peer).  The
connection (L{txws.protocol.WebSocketProtocol}) changes all three together
in one method, which checks the tables and then the invariants.  Nothing
here does I/O.
"""

from __future__ import annotations

from enum import Enum

__all__ = [
    "OURS_TRANSITIONS",
    "THEIRS_TRANSITIONS",
    "TRANSITIONS",
    "Ours",
    "State",
    "Theirs",
    "checkInvariants",
]


class State(Enum):
    """
    The states of a WebSocket connection (RFC 6455 sections 4 and 7).
    """

    CONNECTING = "CONNECTING"
    OPEN = "OPEN"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"

    # Members are singletons: identity hashing (in C) instead of Enum's
    # Python-level hash of the name, which every state change paid twice.
    __hash__ = object.__hash__



#: Every legal change of state.  CONNECTING goes to OPEN when the opening
#: handshake succeeds, or to CLOSED when it fails or the TCP connection is
#: lost; OPEN goes to CLOSING when either side sends a Close frame, or to
#: CLOSED when TCP is lost without one; CLOSING ends in CLOSED.
TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.CONNECTING, State.OPEN),
        (State.CONNECTING, State.CLOSED),
        (State.OPEN, State.CLOSING),
        (State.OPEN, State.CLOSED),
        (State.CLOSING, State.CLOSED),
    }
)


class Ours(Enum):
    """
    Our side of the closing handshake, a side machine next to L{State}
    (h11-style: legal changes in L{OURS_TRANSITIONS}, checked on every
    change; see L{checkInvariants}).

      - C{ACTIVE}: we have neither sent a Close frame nor failed.
      - C{CLOSE_SENT}: our Close frame is sent (L{WebSocketProtocol.sendClose},
        or the answer to theirs); L{State} is C{CLOSING} or C{CLOSED}.
      - C{FAILED}: we failed the connection (RFC 6455 section 7.1.7): a
        peer's violation, an application error, a timeout.  A Close frame
        with the failure's code went out if the connection was open; data
        frames are discarded from then on and the close is never clean.
    """

    ACTIVE = "ACTIVE"
    CLOSE_SENT = "CLOSE_SENT"
    FAILED = "FAILED"

    __hash__ = object.__hash__


class Theirs(Enum):
    """
    What we still read from the peer, the other side machine.

      - C{READING}: every frame (only data frames are dropped once we are
        L{Ours.FAILED}).
      - C{CLOSE_RECEIVED}: the peer's valid Close frame was read; nothing
        more is.
      - C{STOPPED}: the input is unusable or unwanted (broken framing, an
        invalid Close frame, an internal error, input held beyond its bound,
        a refused or failed opening handshake); nothing more is read.
    """

    READING = "READING"
    CLOSE_RECEIVED = "CLOSE_RECEIVED"
    STOPPED = "STOPPED"

    __hash__ = object.__hash__


#: Every legal change of L{Ours}.
OURS_TRANSITIONS: frozenset[tuple[Ours, Ours]] = frozenset(
    {
        (Ours.ACTIVE, Ours.CLOSE_SENT),
        (Ours.ACTIVE, Ours.FAILED),
        (Ours.CLOSE_SENT, Ours.FAILED),
    }
)

#: Every legal change of L{Theirs}.
THEIRS_TRANSITIONS: frozenset[tuple[Theirs, Theirs]] = frozenset(
    {
        (Theirs.READING, Theirs.CLOSE_RECEIVED),
        (Theirs.READING, Theirs.STOPPED),
    }
)

# Members as module globals: a member looked up on its class costs a
# descriptor call (~45 ns on CPython 3.11).
_OPEN = State.OPEN
_CLOSING = State.CLOSING
_CLOSED = State.CLOSED
_ACTIVE = Ours.ACTIVE
_CLOSE_SENT = Ours.CLOSE_SENT
_CLOSE_RECEIVED = Theirs.CLOSE_RECEIVED


def checkInvariants(state: State, ours: Ours, theirs: Theirs) -> None:
    """
    Assert what must hold between L{State} and the two side machines.

    @raise AssertionError: if it does not.
    """
    sent = state is _CLOSING or ours is _CLOSE_SENT
    if state is _CLOSING:
        assert ours is not _ACTIVE, "CLOSING without a Close frame sent"
    if ours is _CLOSE_SENT:
        assert state is _CLOSING or state is _CLOSED, f"Close sent while {state.name}"
    if theirs is _CLOSE_RECEIVED:
        assert sent or state is _CLOSED, "their Close received and not answered"
    if state is _OPEN:
        assert ours is not _CLOSE_SENT, "OPEN after our Close frame"
