"""
The receive path of txws alone, without sockets: a server connection with
a null transport is fed masked messages cut into reads of a given size, and
the CPU time per message is measured in this process.

    python -m bench.feed --size BYTES --chunk BYTES [--seconds S] [--cpu 1]

prints one JSON line (C{{"usPerMessage", "messages", "seconds", "path"}}).
This isolates how txws's own work grows with the message size and with the
number of reads a message arrives in (linear work: no buffer is copied again
for every read), apart from what the transport costs.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock

from bench.loadgen import makeKey, makePayload, maskedFrame, serverFrame, upgradeRequest
from bench.servers import MAX_MESSAGE, pinToCpu

__all__ = ["NullTransport", "feedCost", "main"]


class NullTransport:
    """
    Just enough of a TCP transport for a connection: writes are counted
    (the first few kept, to check the echo), everything else does nothing.
    """

    def __init__(self) -> None:
        self.written = 0
        self.kept: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if len(self.kept) < 4:
            self.kept.append(bytes(data))

    def writeSequence(self, data: list[bytes]) -> None:
        for piece in data:
            self.write(piece)

    def getPeer(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 40000)

    def getHost(self) -> IPv4Address:
        return IPv4Address("TCP", "127.0.0.1", 9000)

    def setTcpNoDelay(self, enabled: bool) -> None:
        pass

    def registerProducer(self, producer: Any, streaming: bool) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def loseConnection(self) -> None:
        pass

    def abortConnection(self) -> None:
        pass


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def feedCost(size: int, chunk: int, seconds: float, text: bool = False) -> dict[str, Any]:
    """
    Feed an echo connection messages of C{size} bytes in reads of C{chunk}
    bytes for about C{seconds} of CPU time.

    @return: C{usPerMessage}, C{messages}, C{seconds} and the masking C{path}.
    @raise RuntimeError: if the connection does not echo the message.
    """
    from txws._mask import HAVE_SPEEDUPS
    from txws.apps.echo import echoFactory
    from txws.options import WebSocketOptions

    options = WebSocketOptions(
        maxFramePayloadSize=MAX_MESSAGE, maxMessagePayloadSize=MAX_MESSAGE
    )
    factory = echoFactory(reactor=Clock(), options=options)
    protocol: Any = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    transport = NullTransport()
    protocol.makeConnection(transport)
    protocol.dataReceived(upgradeRequest(9000, makeKey()))
    if not transport.kept or not transport.kept[0].startswith(b"HTTP/1.1 101"):
        raise RuntimeError("the opening handshake failed")
    opcode = 0x1 if text else 0x2
    payload = makePayload(size, text)
    frame = maskedFrame(opcode, payload)
    pieces = [frame[i : i + chunk] for i in range(0, len(frame), chunk)]
    transport.kept.clear()
    handshake = transport.written
    receive = protocol.dataReceived
    for piece in pieces:
        receive(piece)
    if b"".join(transport.kept) != serverFrame(opcode, payload)[: sum(map(len, transport.kept))]:
        raise RuntimeError("the echo is not the message")
    expected = transport.written - handshake
    batch = max(1, int(2**22 // max(size, 1)))
    messages = 0
    started = _cpu()
    elapsed = 0.0
    while elapsed < seconds:
        for _ in range(batch):
            for piece in pieces:
                receive(piece)
        messages += batch
        elapsed = _cpu() - started
    if transport.written - handshake != expected * (messages + 1):
        raise RuntimeError("not every message was echoed")
    return {
        "usPerMessage": elapsed / messages * 1e6,
        "messages": messages,
        "seconds": round(elapsed, 3),
        "reads": len(pieces),
        "path": "C extension" if HAVE_SPEEDUPS else "pure Python",
    }


def main(argv: list[str] | None = None) -> int:
    """
    Measure once and print the JSON line.
    """
    parser = argparse.ArgumentParser(prog="python -m bench.feed", description=__doc__)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--chunk", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--text", action="store_true")
    parser.add_argument("--cpu", type=int, default=1)
    args = parser.parse_args(argv)
    pinToCpu(args.cpu)
    print(json.dumps(feedCost(args.size, args.chunk, args.seconds, args.text)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
