"""
A C{websockets} (asyncio) server on 127.0.0.1 and an ephemeral port, for
testing the txws client against a real peer.

Run as C{python -m tests.peers.websockets_server}.  It prints
C{{"port": N}} once listening, then serves until its stdin closes (or it is
killed).  What it does depends on the request path:

  - C{/echo}: sends every message back (the subprotocol, if any, is the
    first of C{SUBPROTOCOLS} the client offers);
  - C{/close?code=C&reason=R}: closes at once with that code and reason;
  - C{/forbidden}: refuses the opening handshake with C{403 Forbidden}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from http import HTTPStatus
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

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


async def handler(ws: ServerConnection) -> None:
    """
    Serve one connection according to its path.
    """
    target = urlsplit(ws.request.path if ws.request is not None else "/")
    if target.path == "/close":
        query = parse_qs(target.query)
        await ws.close(int(query["code"][0]), query.get("reason", [""])[0])
        return
    async for message in ws:
        await ws.send(message)


async def main() -> None:
    """
    Serve until stdin reaches end of file.
    """
    loop = asyncio.get_running_loop()
    async with serve(
        handler,
        "127.0.0.1",
        0,
        select_subprotocol=selectSubprotocol,
        process_request=processRequest,
        ping_interval=None,
        close_timeout=10,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
