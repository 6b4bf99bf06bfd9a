"""
One C{twisted.web} site serving a WebSocket and an HMAC-guarded API side by
side, on one port:

    /       a plain page
    /ws     a WebSocket (echo), through L{txws.WebSocketResource}
    /api/   JSON that only HMAC-signed requests reach (L{txws.hmacauth})

    .venv/bin/python examples/web_site.py [--port 8080] [--key-file keys.json]

Without C{--key-file} it writes a key file with one random secret (mode
0600) to a temporary directory and prints its path (never the secret).
Then sign a request with it::

    .venv/bin/python examples/signed_request.py http://127.0.0.1:PORT/api/ \\
        --key-file PATH --json '{"hello": "world"}'

An unsigned request (C{curl -X POST http://127.0.0.1:PORT/api/}) gets 401.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import react
from twisted.web.resource import Resource
from twisted.web.server import Request
from twisted.web.static import Data

from txws import WebSocketResource, WebSocketServerFactory, WebSocketServerProtocol
from txws.hmacauth import HMACGuard, HMACSite, getIdentity, loadKeyFile


class Echo(WebSocketServerProtocol):
    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


class API(Resource):
    """
    Reached only by verified requests: C{getIdentity} says who signed.
    """

    isLeaf = True

    def render_POST(self, request: Request) -> bytes:
        identity = getIdentity(request)
        assert identity is not None  # the guard let only signed requests in
        body = request.content.read() if request.content is not None else b""
        request.setHeader(b"Content-Type", b"application/json")
        answer = {"signedBy": identity.keyId, "scheme": identity.scheme.value,
                  "received": json.loads(body or b"null")}
        return json.dumps(answer).encode()


def developmentKeyFile() -> str:
    directory = tempfile.mkdtemp(prefix="txws-example-")
    path = os.path.join(directory, "keys.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"example": secrets.token_urlsafe(32)}, f)
    return path


def main(reactor: Any, argv: list[str]) -> Deferred[None]:
    parser = argparse.ArgumentParser(description="A site with a WebSocket and a signed API.")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--key-file", help='JSON {"key-id": "secret"}, mode 0600')
    args = parser.parse_args(argv)
    keyFile = args.key_file or developmentKeyFile()
    keys = loadKeyFile(keyFile)  # refuses a file others can read

    factory = WebSocketServerFactory(reactor=reactor)
    factory.protocol = Echo
    root = Resource()
    root.putChild(b"", Data(b"Try /ws (WebSocket) and /api/ (signed POST).\n", "text/plain"))
    root.putChild(b"ws", WebSocketResource(factory))
    api = API()  # type: ignore[no-untyped-call]  # (Resource's __init__ is unannotated)
    root.putChild(b"api", HMACGuard(api, keys, reactor=reactor))
    # HMACSite caps request heads and bodies before any resource runs.
    site = HMACSite(root)
    port = reactor.listenTCP(args.port, site, interface="127.0.0.1")
    number = port.getHost().port
    print(f"key file: {keyFile}", flush=True)
    print(f"site on http://127.0.0.1:{number}/ (WebSocket ws://127.0.0.1:{number}/ws)",
          flush=True)
    return Deferred()


if __name__ == "__main__":
    react(main, [sys.argv[1:]])
