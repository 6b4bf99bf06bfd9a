"""
A deliberately broken "WebSocket" server built on raw asyncio streams, for
testing that the txws client refuses an invalid opening handshake answer.

Run as C{python -m tests.peers.raw_http_server}.  It prints C{{"port": N}}
once listening on 127.0.0.1, and answers every request with
C{101 Switching Protocols} carrying C{Sec-WebSocket-Accept:
InvalidHashValue==}, immediately followed by an unmasked text frame
C{"hello"} (which a correct client must never deliver).  For each connection
it then prints how the client hung up: C{{"hangUp": "eof"}} (it closed),
C{{"hangUp": "reset"}} (it aborted), or C{{"hangUp": "timeout"}} if it did
not within 10 seconds.  It
serves until its stdin closes (or it is killed).
"""

from __future__ import annotations

import asyncio
import json
import sys

#: The invalid answer and the data frame sent right behind it.
ANSWER = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: InvalidHashValue==\r\n"
    b"\r\n"
    b"\x81\x05hello"
)


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """
    Read the request's head, send the invalid answer, wait for the client to
    hang up.
    """
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.write(ANSWER)
        await writer.drain()
        while await asyncio.wait_for(reader.read(65536), 10):
            pass
        hangUp = "eof"
    except ConnectionResetError:
        hangUp = "reset"
    except asyncio.TimeoutError:
        hangUp = "timeout"
    except (OSError, asyncio.IncompleteReadError) as e:
        hangUp = type(e).__name__
    print(json.dumps({"hangUp": hangUp}), flush=True)
    writer.close()


async def main() -> None:
    """
    Serve until stdin reaches end of file.
    """
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    asyncio.run(main())
