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
connection writes with L{writerFor}'s function: when the transport has
nothing queued and is neither closing nor closed, the bytes go to
C{socket.send} now, and only what the kernel does not take (or an error,
which Twisted's own write path then meets and reports as it always does) is
handed to C{transport.write}.  Order is kept because the fast path is taken
only when nothing is queued.  This reads attributes Twisted does not
document (C{dataBuffer}, C{offset}, C{_tempDataLen}); L{writerFor} checks
they exist and falls back to C{transport.write} otherwise, and
C{TXWS_NO_WRITE_THROUGH=1} turns it off.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from twisted.internet import tcp

__all__ = ["writerFor"]

_PLAIN_TCP = (tcp.Server, tcp.Client)
_NEEDED = ("dataBuffer", "offset", "_tempDataLen", "socket", "connected", "disconnecting")
_DISABLED = bool(os.environ.get("TXWS_NO_WRITE_THROUGH"))


def writerFor(transport: Any) -> Callable[[bytes], None]:
    """
    @param transport: a connection's transport.
    @return: a function that writes bytes to it: C{transport.write}, or
        for a plain TCP transport one that sends at once when it can.
    """
    write: Callable[[bytes], None] = transport.write
    if (
        _DISABLED
        or type(transport) not in _PLAIN_TCP
        or not all(hasattr(transport, name) for name in _NEEDED)
    ):
        return write
    send = transport.socket.send

    def writeThrough(data: bytes) -> None:
        t = transport
        if t._tempDataLen or t.offset != len(t.dataBuffer) or t.disconnecting or not t.connected:
            write(data)
            return
        try:
            sent = send(data)
        except OSError:
            # EAGAIN, or an error Twisted's write path will meet and report.
            write(data)
            return
        if sent != len(data):
            write(data[sent:])

    return writeThrough
