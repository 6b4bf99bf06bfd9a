"""
A C{websockets} (asyncio) server on 127.0.0.1 and an ephemeral port, for
testing the txws client against a real peer.

Run as C{python -m tests.peers.websockets_server ['<json spec>']}.  It
prints C{{"port": N}} once listening, then serves until its stdin closes
(or it is killed).  What it does depends on the request path:

  - C{/echo}: sends every message back (the subprotocol, if any, is the
    first of C{SUBPROTOCOLS} the client offers);
  - C{/close?code=C&reason=R}: closes at once with that code and reason;
  - C{/forbidden}: refuses the opening handshake with C{403 Forbidden};
  - C{/bomb?size=N}: sends one binary message of N highly compressible
    bytes, then waits for the client to close.

Without a spec websockets negotiates permessage-deflate with its defaults.
A spec's C{deflate} is C{null} (no compression) or the arguments of
C{ServerPerMessageDeflateFactory} (C{server_no_context_takeover},
C{client_no_context_takeover}, C{server_max_window_bits},
C{client_max_window_bits}, C{require_client_max_window_bits},
C{compress_settings}); C{maxSize} sets its message size limit (default
1 MiB).  With a spec, the server prints one report per connection once it
ends: its path, the C{Sec-WebSocket-Extensions} it answered
(C{extensions}), the data frames received and sent with RSV1 set
(C{compressedIn}, C{compressedOut}), the messages it received and the close
code it received (C{closeCode}).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from tests.peers.payloads import makePayload
from tests.peers.websockets_client import FrameCounter

#: The subprotocols this server speaks, in its order of preference.
SUBPROTOCOLS = ("chat.v2", "chat.v1")


def selectSubprotocol(
    connection: ServerConnection, offered: Sequence[Subprotocol]
) -> Optional[Subprotocol]:
    """
    Choose our first subprotocol the client offers; accept clients that offer
    none of them without a subprotocol.
    """
    for name in SUBPROTOCOLS:
        if name in offered:
            return Subprotocol(name)
    return None


def processRequest(connection: ServerConnection, request: Request) -> Optional[Response]:
    """
    Refuse C{/forbidden} with 403; let every other request proceed.
    """
    if urlsplit(request.path).path == "/forbidden":
        return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
    return None


async def serveConnection(ws: ServerConnection) -> int:
    """
    Serve one connection according to its path.

    @return: how many messages it received.
    """
    target = urlsplit(ws.request.path if ws.request is not None else "/")
    query = parse_qs(target.query)
    if target.path == "/close":
        await ws.close(int(query["code"][0]), query.get("reason", [""])[0])
        return 0
    if target.path == "/bomb":
        with contextlib.suppress(ConnectionClosed):
            await ws.send(makePayload(int(query["size"][0]), True))
        await ws.wait_closed()
        return 0
    received = 0
    async for message in ws:
        received += 1
        await ws.send(message)
    return received


def reportingHandler(report: bool) -> Any:
    """
    @param report: whether to print a report per connection.
    @return: the connection handler.
    """

    async def handler(ws: ServerConnection) -> None:
        counter = FrameCounter()
        for extension in ws.protocol.extensions:
            counter.watch(extension)
        received = await serveConnection(ws)
        if report:
            await ws.wait_closed()
            rcvd = ws.protocol.close_rcvd
            print(json.dumps({
                "path": ws.request.path if ws.request is not None else None,
                "extensions": (
                    ws.response.headers.get("Sec-WebSocket-Extensions")
                    if ws.response is not None else None
                ),
                "compressedIn": counter.received,
                "compressedOut": counter.sent,
                "messages": received,
                "closeCode": None if rcvd is None else rcvd.code,
            }), flush=True)

    return handler


def serveArguments(spec: dict[str, Any]) -> dict[str, Any]:
    """
    @return: the C{serve} arguments for the spec's C{deflate} and C{maxSize}.
    """
    arguments: dict[str, Any] = {"max_size": spec.get("maxSize", 2**20)}
    if "deflate" in spec:
        arguments["compression"] = None
        if spec["deflate"] is not None:
            arguments["extensions"] = [ServerPerMessageDeflateFactory(**spec["deflate"])]
    return arguments


async def main() -> None:
    """
    Serve until stdin reaches end of file.
    """
    loop = asyncio.get_running_loop()
    spec = json.loads(sys.argv[1]) if len(sys.argv) > 1 else None
    async with serve(
        reportingHandler(spec is not None),
        "127.0.0.1",
        0,
        select_subprotocol=selectSubprotocol,
        process_request=processRequest,
        ping_interval=None,
        close_timeout=10,
        **serveArguments(spec or {}),
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
