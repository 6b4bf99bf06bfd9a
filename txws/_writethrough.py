"""
Writing straight to the socket when a plain TCP transport holds nothing.

Design: Twisted's TCP C{write} only queues the bytes and asks the reactor
to watch the socket for writability; the C{send} happens on the reactor's
next turn, at the price of two C{epoll_ctl} calls and the reactor's write
dispatch per connection that sends.  asyncio's transports, and so
C{websockets}, call C{send} at once when nothing is queued.  Measured with
the benchmark's fan-out cells (bench/README.md): the deferred write is
about two thirds of the server's CPU per delivered message (raw Twisted 17
us, the same with C{socket.send} first 6.3 us).

So for Twisted's own TCP transports (exactly C{tcp.Server} and
C{tcp.Client}, not subclasses or TLS, which have other write paths) a
connection writes with L{writeThrough} (once L{canWriteThrough} said so): when the transport has
nothing queued and is neither closing nor closed, the bytes go to
C{socket.send} now, and only what the kernel does not take (or an error,
which Twisted's own write path then meets and reports as it always does) is
handed to C{transport.write}.  Order is kept because the fast path is taken
only when nothing is queued.  This reads attributes Twisted does not
document (C{dataBuffer}, C{offset}, C{_tempDataLen}); L{canWriteThrough}
checks they exist, else C{transport.write} is used, and
C{TXWS_NO_WRITE_THROUGH=1} turns it off.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import tcp

__all__ = ["canWriteThrough", "writeThrough"]

_PLAIN_TCP = (tcp.Server, tcp.Client)
_NEEDED = ("dataBuffer", "offset", "_tempDataLen", "socket", "connected", "disconnecting")
_DISABLED = bool(os.environ.get("TXWS_NO_WRITE_THROUGH"))
_checked: dict[type, bool] = {}


def canWriteThrough(transport: object) -> bool:
    """
    @param transport: a connection's transport.
    @return: whether L{writeThrough} may write to it (a plain TCP
        transport with the attributes it reads).
    """
    kind = type(transport)
    if _DISABLED or kind not in _PLAIN_TCP:
        return False
    known = _checked.get(kind)
    if known is None:
        # Once per class: the attributes are set in every instance's
        # constructor, so the first connection answers for all.
        known = _checked[kind] = all(hasattr(transport, name) for name in _NEEDED)
    return known


def writeThrough(transport: Any, data: bytes) -> None:
    """
    Write to a transport for which L{canWriteThrough} is true: at once if
    it has nothing queued, else (and for what the kernel does not take) with
    its C{write}.

    @param transport: the transport.
    @param data: the bytes.
    """
    if (
        transport._tempDataLen
        or transport.offset != len(transport.dataBuffer)
        or transport.disconnecting
        or not transport.connected
    ):
        transport.write(data)
        return
    try:
        sent = transport.socket.send(data)
    except OSError:
        # EAGAIN, or an error Twisted's write path will meet and report.
        transport.write(data)
        return
    if sent != len(data):
        transport.write(data[sent:])
