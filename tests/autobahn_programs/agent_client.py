"""
A client written the way Autobahn's agent example is: C{create_client_agent},
C{agent.open(url, options)}, a C{"message"} handler registered with
C{proto.on}, C{await proto.is_open}, a message, a close and
C{await proto.is_closed}.  Then a second C{open} to a port nobody listens
on, whose failure it prints.

Usage: python agent_client.py PORT CLOSED_PORT
"""

import sys

from autobahn.twisted.websocket import WebSocketClientProtocol, create_client_agent
from twisted.internet import task
from twisted.internet.defer import Deferred, ensureDeferred


class Client(WebSocketClientProtocol):
    def onOpen(self):
        print(f"onOpen protocol={self.websocket_protocol_in_use}")

    def onClose(self, wasClean, code, reason):
        print(f"onClose clean={wasClean} code={code} reason={reason}")


async def main(reactor, port, closedPort):
    agent = create_client_agent(reactor)
    options = {"headers": {"x-foo": "bar"}, "protocols": ["chat"]}
    proto = await agent.open(f"ws://127.0.0.1:{port}/ws?a=1", options, protocol_class=Client)
    print(f"opened {type(proto).__name__}")
    received = Deferred()

    def got_message(payload, is_binary=None):
        print(f"on_message {payload!r} is_binary={is_binary}")
        if not received.called:
            received.callback(None)

    proto.on("message", got_message)
    await proto.is_open
    print("is_open fired")
    proto.sendMessage(b"i am a message")
    await received
    proto.sendClose(code=1000, reason="byebye")
    closed = await proto.is_closed
    print(f"is_closed fired with the protocol: {closed is proto}")
    try:
        await agent.open(f"ws://127.0.0.1:{closedPort}/", {})
    except Exception as e:
        print(f"refused: {type(e).__name__}")
    try:
        agent.open("http://127.0.0.1/", {})
    except ValueError as e:
        print(f"bad url: {e}")
    try:
        agent.open(f"ws://127.0.0.1:{port}/", {"nonsense": 1})
    except ValueError as e:
        print(f"bad option: {e}")


if __name__ == "__main__":
    port, closedPort = int(sys.argv[1]), int(sys.argv[2])
    task.react(lambda reactor: ensureDeferred(main(reactor, port, closedPort)))
