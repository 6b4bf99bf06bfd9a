"""
A C{websockets} (asyncio) client that runs one scenario against a server and
prints its observations as one JSON object on the last line of stdout.

Run as C{python -m tests.peers.websockets_client '<json spec>'}.  The spec
holds C{url}, C{scenario} and the scenario's parameters; C{cafile} (PEM)
enables TLS verification against a test CA.  C{deflate}, if present, sets
the client's permessage-deflate offer: C{null} offers nothing, an object
gives the arguments of C{ClientPerMessageDeflateFactory}
(C{server_no_context_takeover}, C{client_no_context_takeover},
C{server_max_window_bits}, C{client_max_window_bits}, C{compress_settings});
without it websockets makes its default offer.  Every report then says
what the server answered (C{extensions}, the C{Sec-WebSocket-Extensions}
value or C{None}) and how many data frames went each way with RSV1 set
(C{compressedSent}, C{compressedReceived}).  A spec with C{runs} (a list of
specs, each completed by the outer one's keys) opens one connection per
run, one after the other, and reports C{{"runs": [report, ...]}}.  Every wait is bounded, so the
script always ends; it exits 0 whenever it could report, since the test
decides what the observations mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Optional

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.base import Extension
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Close, Frame
from websockets.typing import Subprotocol

from tests.peers.payloads import makePayload, splitFragments, workloadMessages

#: The bound on every single wait in a scenario, in seconds.
WAIT = 10.0

Report = dict[str, Any]


def closeInfo(frame: Optional[Close]) -> Optional[list[object]]:
    """
    @return: C{[code, reason]} of a Close frame, or C{None}.
    """
    return None if frame is None else [frame.code, frame.reason]


def closedReport(ws: ClientConnection, error: Optional[ConnectionClosed] = None) -> Report:
    """
    @return: what the connection knows about its closing handshake.
    """
    report: Report = {
        "closeCode": ws.close_code,
        "closeReason": ws.close_reason,
        "rcvd": closeInfo(ws.protocol.close_rcvd),
        "sent": closeInfo(ws.protocol.close_sent),
    }
    if error is not None:
        report["error"] = type(error).__name__
    return report


async def recvUntilClosed(ws: ClientConnection) -> Report:
    """
    Read until the server closes the connection.

    @return: the close report, with the messages received before the close.
    """
    received: list[object] = []
    try:
        while True:
            message = await asyncio.wait_for(ws.recv(), WAIT)
            received.append(len(message))
    except ConnectionClosed as e:
        report = closedReport(ws, e)
    report["received"] = received
    return report


async def timedClose(ws: ClientConnection, spec: Report, code: int, reason: str) -> Report:
    """
    Close, allowing the spec's C{closeWithin} seconds (default L{WAIT}) for
    the closing handshake and the server's closing of TCP.

    @return: the close report, with C{closeSeconds} (C{None} if the close
        did not complete in time).
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    seconds: Optional[float] = None
    try:
        await asyncio.wait_for(ws.close(code, reason), spec.get("closeWithin", WAIT))
        seconds = round(loop.time() - start, 3)
    except asyncio.TimeoutError:
        pass
    return {"closeSeconds": seconds, **closedReport(ws)}


async def echo(ws: ClientConnection, spec: Report) -> Report:
    """
    Send a text and a binary message of every size and compare the echoes.
    """
    results: list[list[object]] = []
    for size in spec["sizes"]:
        for isBinary in (False, True):
            payload = makePayload(size, isBinary)
            await ws.send(payload if isBinary else payload.decode("utf-8"))
            answer = await asyncio.wait_for(ws.recv(), WAIT)
            answerBinary = isinstance(answer, bytes)
            answerBytes = answer if isinstance(answer, bytes) else answer.encode("utf-8")
            results.append(
                ["binary" if isBinary else "text", size, answerBinary, answerBytes == payload]
            )
    return {"results": results, **await timedClose(ws, spec, 1000, "echo done")}


async def fragments(ws: ClientConnection, spec: Report) -> Report:
    """
    Send a text message as fragments split inside UTF-8 characters (and a
    binary one as fragments), and return the echoes.
    """
    pieces = splitFragments()
    await ws.send(pieces, text=True)
    text = await asyncio.wait_for(ws.recv(), WAIT)
    await ws.send(pieces)
    binary = await asyncio.wait_for(ws.recv(), WAIT)
    await asyncio.wait_for(ws.close(), WAIT)
    return {
        "text": text if isinstance(text, str) else None,
        "binary": binary.hex() if isinstance(binary, bytes) else None,
        "fragmentCount": len(pieces),
    }


async def ping(ws: ClientConnection, spec: Report) -> Report:
    """
    Send pings and wait for the matching pongs (websockets matches a pong to
    its ping by payload).
    """
    latencies = []
    for payload in (b"", b"txws-ping", bytes(range(125))):
        waiter = await ws.ping(payload)
        latencies.append(await asyncio.wait_for(waiter, WAIT))
    await ws.send("after pings")
    after = await asyncio.wait_for(ws.recv(), WAIT)
    await asyncio.wait_for(ws.close(), WAIT)
    return {"pongs": len(latencies), "after": after}


async def clientClose(ws: ClientConnection, spec: Report) -> Report:
    """
    Start the closing handshake with the spec's code and reason.
    """
    await ws.send("before close")
    await asyncio.wait_for(ws.recv(), WAIT)
    await asyncio.wait_for(ws.close(spec["code"], spec["reason"]), WAIT)
    return closedReport(ws)


async def awaitClose(ws: ClientConnection, spec: Report) -> Report:
    """
    Say hello, then wait for the server to close the connection.
    """
    with contextlib.suppress(ConnectionClosed):
        await ws.send("waiting for your close")
    return await recvUntilClosed(ws)


async def tooBig(ws: ClientConnection, spec: Report) -> Report:
    """
    Send a message of the spec's size (highly compressible binary; in
    C{fragments} frames if given), then wait for the server's reaction.
    """
    payload = makePayload(spec["size"], True)
    pieces = spec.get("fragments", 0)
    with contextlib.suppress(ConnectionClosed):
        if pieces:
            step = -(-len(payload) // pieces)
            await ws.send([payload[i:i + step] for i in range(0, len(payload), step)])
        else:
            await ws.send(payload)
    return await recvUntilClosed(ws)


async def drop(ws: ClientConnection, spec: Report) -> Report:
    """
    Exchange one message, then drop the TCP connection without a Close frame.
    """
    await ws.send("about to drop")
    answer = await asyncio.wait_for(ws.recv(), WAIT)
    ws.transport.abort()
    return {"answer": answer}


async def idle(ws: ClientConnection, spec: Report) -> Report:
    """
    Exchange a message, stay idle for the spec's seconds, exchange another.
    """
    await ws.send("before idle")
    first = await asyncio.wait_for(ws.recv(), WAIT)
    await asyncio.sleep(spec["seconds"])
    try:
        await ws.send("after idle")
        second: object = await asyncio.wait_for(ws.recv(), WAIT)
    except ConnectionClosed as e:
        return {"first": first, "second": None, **closedReport(ws, e)}
    await asyncio.wait_for(ws.close(), WAIT)
    return {"first": first, "second": second, **closedReport(ws)}


async def deflateEcho(ws: ClientConnection, spec: Report) -> Report:
    """
    Send the spec's C{workload} (C{[kind, size, count]} items, see
    L{tests.peers.payloads.workloadMessages}), each message whole or, with
    C{fragments} (a count), split into that many frames, and compare every
    echo.

    @return: C{results}: per item, C{[kind, size, count, echoes intact]};
        then the close report.
    """
    results: list[list[object]] = []
    pieces = spec.get("fragments", 0)
    for kind, size, count in spec["workload"]:
        intact = 0
        for payload, isBinary in workloadMessages(kind, size, count):
            if pieces:
                step = max(1, -(-len(payload) // pieces))
                parts = [payload[i:i + step] for i in range(0, len(payload), step)] or [b""]
                await ws.send(parts, text=not isBinary)
            else:
                await ws.send(payload if isBinary else payload.decode("utf-8"))
            answer = await asyncio.wait_for(ws.recv(), WAIT)
            answerBytes = answer if isinstance(answer, bytes) else answer.encode("utf-8")
            intact += isinstance(answer, bytes) == isBinary and answerBytes == payload
        results.append([kind, size, count, intact])
    return {"results": results, **await timedClose(ws, spec, 1000, "deflate done")}


SCENARIOS: dict[str, Callable[[ClientConnection, Report], Awaitable[Report]]] = {
    "echo": echo,
    "fragments": fragments,
    "ping": ping,
    "clientClose": clientClose,
    "awaitClose": awaitClose,
    "tooBig": tooBig,
    "drop": drop,
    "idle": idle,
    "deflateEcho": deflateEcho,
}


class FrameCounter:
    """
    Counts the data frames a negotiated permessage-deflate extension sees
    with RSV1 set, by wrapping its C{encode} and C{decode}.
    """

    def __init__(self) -> None:
        self.sent = 0
        self.received = 0

    def watch(self, extension: Extension) -> None:
        """
        Wrap C{extension}'s methods.
        """
        encode, decode = extension.encode, extension.decode

        def counting_encode(frame: Frame) -> Frame:
            encoded = encode(frame)
            self.sent += encoded.rsv1
            return encoded

        def counting_decode(frame: Frame, *, max_size: Optional[int] = None) -> Frame:
            self.received += frame.rsv1
            return decode(frame, max_size=max_size)

        extension.encode = counting_encode  # type: ignore[method-assign]
        extension.decode = counting_decode  # type: ignore[method-assign]


def connectArguments(spec: Report) -> dict[str, Any]:
    """
    @return: the C{connect} arguments for the spec's C{deflate}.
    """
    if "deflate" not in spec:
        return {}
    if spec["deflate"] is None:
        return {"compression": None}
    return {
        "compression": None,
        "extensions": [ClientPerMessageDeflateFactory(**spec["deflate"])],
    }


async def run(spec: Report) -> Report:
    """
    Connect and run the scenario named in C{spec}.
    """
    context: Optional[ssl.SSLContext] = None
    if spec.get("cafile"):
        context = ssl.create_default_context(cafile=spec["cafile"])
    if "runs" in spec:
        outer = {k: v for k, v in spec.items() if k != "runs"}
        runs = []
        for run_ in spec["runs"]:
            try:
                runs.append(await run({**outer, **run_}))
            except Exception as e:
                runs.append({"exception": f"{type(e).__name__}: {e}"})
        return {"runs": runs}
    scenario = SCENARIOS[spec["scenario"]]
    counter = FrameCounter()
    async with connect(
        spec["url"],
        ssl=context,
        proxy=None,
        subprotocols=[Subprotocol(p) for p in spec.get("subprotocols", [])] or None,
        open_timeout=WAIT,
        close_timeout=spec.get("closeWithin", WAIT),
        ping_interval=None,
        max_size=spec.get("maxSize", 2**20),
        **connectArguments(spec),
    ) as ws:
        for extension in ws.protocol.extensions:
            counter.watch(extension)
        report = await scenario(ws, spec)
        report["subprotocol"] = ws.subprotocol
        assert ws.response is not None
        report["extensions"] = ws.response.headers.get("Sec-WebSocket-Extensions")
        report["compressedSent"] = counter.sent
        report["compressedReceived"] = counter.received
        return report


def main(argv: list[str]) -> int:
    """
    Run the scenario given as JSON in C{argv[1]} and print the report.
    """
    spec = json.loads(argv[1])
    try:
        report = asyncio.run(run(spec))
    except Exception as e:
        report = {"exception": f"{type(e).__name__}: {e}"}
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
