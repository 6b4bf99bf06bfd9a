"""
A deliberately broken "WebSocket" server built on raw asyncio streams, for
testing that the txws client refuses an invalid opening handshake answer.

Run as C{python -m tests.peers.raw_http_server}.  It prints C{{"port": N}}
once listening on 127.0.0.1, and answers every request with
C{101 Switching Protocols} carrying C{Sec-WebSocket-Accept:
InvalidHashValue==}, immediately followed by an unmasked text frame
C{"hello"} (which a correct client must never deliver).  A request for
C{/extensions?answer=VALUE} gets a correct C{Sec-WebSocket-Accept} instead,
with C{Sec-WebSocket-Extensions: VALUE} (for answers a client must refuse:
parameters it did not offer, malformed ones), and the same frame behind it,
compressed with RSV1 set.  For each connection
it then prints how the client hung up: C{{"hangUp": "eof"}} (it closed),
C{{"hangUp": "reset"}} (it aborted), or C{{"hangUp": "timeout"}} if it did
not within 10 seconds.  It
serves until its stdin closes (or it is killed).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import sys
import zlib
from urllib.parse import parse_qs, urlsplit

#: The invalid answer and the data frame sent right behind it.
ANSWER = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: InvalidHashValue==\r\n"
    b"\r\n"
    b"\x81\x05hello"
)


#: The GUID of RFC 6455 section 1.3.
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def extensionsAnswer(head: bytes) -> bytes:
    """
    @param head: a request head for C{/extensions?answer=VALUE}.
    @return: a correct 101 answer with that extensions header, and a
        compressed unmasked text frame C{"hello"} behind it.
    """
    requestLine = head.split(b"\r\n", 1)[0].decode("latin-1")
    value = parse_qs(urlsplit(requestLine.split(" ")[1]).query)["answer"][0]
    key = re.search(rb"(?im)^sec-websocket-key:[ \t]*(\S+)", head)
    assert key is not None
    accept = base64.b64encode(hashlib.sha1(key.group(1) + _GUID).digest())
    compressor = zlib.compressobj(wbits=-15)
    hello = (compressor.compress(b"hello") + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
    return (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n"
        b"Sec-WebSocket-Extensions: " + value.encode("latin-1") + b"\r\n"
        b"\r\n" + bytes([0xC1, len(hello)]) + hello
    )


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """
    Read the request's head, send the invalid answer, wait for the client to
    hang up.
    """
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        if head.startswith(b"GET /extensions?"):
            writer.write(extensionsAnswer(head))
        else:
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
