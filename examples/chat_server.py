"""
A chat room: every text message a member sends goes to every member, with
back-pressure done right, so that one member who reads slowly (or not at
all) never makes the server hold unbounded memory or slows the others.

    .venv/bin/python examples/chat_server.py [--port 9000]

Join as C{ws://127.0.0.1:PORT/?name=alice} (any WebSocket client, e.g. two
runs of C{examples/echo_client.py}, or C{python -m websockets URL}).

How the fan-out stays cheap and bounded:

  - C{factory.prepareMessage} frames a message once; C{sendPreparedMessage}
    sends those same bytes to every member (no per-member encoding);
  - a member whose outgoing queue (C{bufferedAmount}: bytes waiting in the
    connection because its socket buffer is full) is over C{--soft-limit}
    skips messages until it drains, and is told how many it missed;
  - C{maxBufferedAmount} (C{--hard-limit}) is the last line: a connection
    whose queue passes it anyway is closed with 1008, never grown.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from txws import (
    ConnectionRequest,
    WebSocketOptions,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)


class ChatMember(WebSocketServerProtocol):
    factory: ChatRoom
    name = "anonymous"
    missed = 0

    def onConnect(self, request: ConnectionRequest) -> None:
        self.name = request.params.get("name", ["anonymous"])[0][:40]

    def onOpen(self) -> None:
        self.factory.join(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            self.sendClose(1003, "text messages only")
            return
        self.factory.broadcast(self.name.encode("utf-8") + b": " + payload)

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        self.factory.leave(self)


class ChatRoom(WebSocketServerFactory):
    protocol = ChatMember

    def __init__(self, softLimit: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.softLimit = softLimit
        self.members: set[ChatMember] = set()

    def join(self, member: ChatMember) -> None:
        self.members.add(member)
        self.broadcast(f"* {member.name} joined ({len(self.members)} here)".encode())

    def leave(self, member: ChatMember) -> None:
        if member in self.members:
            self.members.discard(member)
            self.broadcast(f"* {member.name} left".encode())

    def broadcast(self, text: bytes) -> None:
        prepared = self.prepareMessage(text)  # framed once, for everyone
        for member in list(self.members):
            if member.bufferedAmount > self.softLimit:
                # This member's socket is full and its queue is long: skip
                # rather than queue more.  (Log once per slow spell.)
                if not member.missed:
                    print(f"{member.name} reads too slowly: skipping messages", flush=True)
                member.missed += 1
                continue
            if member.missed:
                note = f"* you missed {member.missed} messages"
                member.sendMessage(note.encode())
                member.missed = 0
            member.sendPreparedMessage(prepared)


def main(reactor: Any, argv: list[str]) -> Deferred[None]:
    parser = argparse.ArgumentParser(description="A WebSocket chat room.")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--soft-limit", type=int, default=256 * 1024,
                        help="queued bytes beyond which a member skips messages")
    parser.add_argument("--hard-limit", type=int, default=4 * 1024 * 1024,
                        help="queued bytes beyond which a member is closed (1008)")
    args = parser.parse_args(argv)
    options = WebSocketOptions(maxBufferedAmount=args.hard_limit)
    room = ChatRoom(args.soft_limit, reactor=reactor, options=options)
    port = reactor.listenTCP(args.port, room, interface="127.0.0.1")
    print(f"chat server on ws://127.0.0.1:{port.getHost().port}/?name=YOU", flush=True)
    return Deferred()


if __name__ == "__main__":
    react(main, [sys.argv[1:]])
