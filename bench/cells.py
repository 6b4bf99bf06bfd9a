"""
The cells of the benchmark: what is measured, for every server.

A cell has a I{kind} (C{echo}, C{feed}, C{handshake}, C{memory}, C{fanout},
and for permessage-deflate C{deflate-echo} and C{deflate-memory}); the
harness keeps one runner per kind (L{bench.run.RUNNERS}).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CELLS", "QUICK_CELLS", "Cell"]

KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Cell:
    """
    One measurement.

    @ivar name: its name on the command line and in the table.
    @ivar kind: which runner measures it.
    @ivar size: the message size (echo cells).
    @ivar text: text messages instead of binary (echo cells).
    @ivar connections: connections with a message in flight (echo cells),
        or subscribers of each publish (fan-out cells).
    @ivar readSize: if non-zero, the server reads at most this many bytes
        per C{recv} (servers whose transport allows it; others are "n/a").
    @ivar fresh: whether the cell needs a server process of its own (so
        that what earlier cells left in the heap does not blur it).
    @ivar server: whether the cell needs a running server at all (C{feed}
        cells measure txws in a process of their own, without sockets).
    @ivar deflate: the fan-out cell's subscribers offer permessage-deflate
        (the other compression cells are kinds of their own).
    """

    name: str
    kind: str
    size: int = 0
    text: bool = False
    connections: int = 1
    readSize: int = 0
    fresh: bool = False
    server: bool = True
    deflate: bool = False

    @property
    def unit(self) -> str:
        """
        The unit of the cell's cost: server CPU microseconds per message or
        handshake, or resident KiB per connection.
        """
        return {"echo": "us/msg", "feed": "us/msg", "handshake": "us/hs", "memory": "KiB/conn",
                "fanout": "us/delivery", "deflate-echo": "us/msg",
                "deflate-memory": "KiB/conn"}[self.kind]

    @property
    def mode(self) -> str:
        """
        Which variant of the servers the cell runs: C{echo}, or C{fanout}
        (L{bench.fanout_servers}).
        """
        return "fanout" if self.kind == "fanout" else "echo"


def _echo(label: str, size: int, connections: int, text: bool = False, readSize: int = 0) -> Cell:
    name = f"echo-{label}{'-text' if text else ''}-c{connections}"
    if readSize:
        name += f"-r{readSize // KiB}KiB"
    return Cell(name, "echo", size, text, connections, readSize)


CELLS: dict[str, Cell] = {
    cell.name: cell
    for cell in [
        *(
            _echo(label, size, connections, text)
            for label, size, text in [
                ("32B", 32, False),
                ("1KiB", KiB, False),
                ("1KiB", KiB, True),
                ("64KiB", 64 * KiB, False),
                ("1MiB", MiB, False),
            ]
            for connections in (1, 50)
        ),
        # The same 1 MiB echo with the server reading 4 KiB at a time: work
        # must grow linearly with the number of reads.
        _echo("1MiB", MiB, 1, readSize=4 * KiB),
        # txws's receive path alone (no sockets): its cost must grow
        # linearly with the message size, whatever the size of the reads.
        Cell("feed-64KiB-r4KiB", "feed", 64 * KiB, readSize=4 * KiB, server=False),
        Cell("feed-1MiB-r4KiB", "feed", MiB, readSize=4 * KiB, server=False),
        Cell("feed-1MiB-r64KiB", "feed", MiB, readSize=64 * KiB, server=False),
        Cell("handshake", "handshake"),
        Cell("idle-memory", "memory", fresh=True),
        # One publish of a ~100-byte text message to many subscribers.
        Cell("fanout-1k", "fanout", 100, True, 1000),
        Cell("fanout-5k", "fanout", 100, True, 5000),
        # permessage-deflate: compressed echoes of JSON documents (1 KiB
        # and 64 KiB), memory per idle and per active compressed
        # connection, and the 1,000-subscriber fan-out with subscribers that
        # offer compression.
        Cell("echo-deflate-1KiB-json-c50", "deflate-echo", KiB, True, 50),
        Cell("echo-deflate-64KiB-c1", "deflate-echo", 64 * KiB, True, 1),
        Cell("echo-deflate-64KiB-c50", "deflate-echo", 64 * KiB, True, 50),
        # Active: after one 64 KiB message each way (every zlib buffer and
        # window touched, as on a connection that has carried some traffic),
        # or after one 1 KiB message.
        Cell("deflate-memory", "deflate-memory", 64 * KiB, True, fresh=True),
        Cell("deflate-memory-1KiB", "deflate-memory", KiB, True, fresh=True),
        Cell("fanout-deflate-1k", "fanout", 100, True, 1000, deflate=True),
    ]
}

#: What C{--quick} runs when no C{--cells} are given.
QUICK_CELLS = ["echo-32B-c1", "echo-1KiB-text-c50", "echo-64KiB-c50", "handshake", "idle-memory"]
