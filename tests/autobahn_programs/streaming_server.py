"""
A streaming server in the style of Autobahn's streaming examples: it
receives through the frame-streaming callbacks (onMessageBegin,
onMessageFrameBegin, onMessageFrameData, onMessageFrameEnd, onMessageEnd),
hashes every message as its data arrives without keeping it, and answers
each message with its length, frame count and SHA-256; frames' lengths
are printed as they begin.  "bye" (a one-frame text message) is answered
with a close (1000, "done").

Usage: python streaming_server.py  (prints "listening on PORT")
"""

import hashlib
import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol


class StreamingHashServerProtocol(WebSocketServerProtocol):
    def onMessageBegin(self, isBinary):
        WebSocketServerProtocol.onMessageBegin(self, isBinary)
        self.kind = "binary" if isBinary else "text"
        self.sha256 = hashlib.sha256()
        self.received = 0
        self.frames = 0
        self.head = b""

    def onMessageFrameBegin(self, length):
        WebSocketServerProtocol.onMessageFrameBegin(self, length)
        self.frames += 1
        print(f"frame {self.frames} of a {self.kind} message announces {length} bytes")

    def onMessageFrameData(self, payload):
        self.received += len(payload)
        self.sha256.update(payload)
        if len(self.head) < 16:
            self.head += payload[: 16 - len(self.head)]

    def onMessageFrameEnd(self):
        pass

    def onMessageEnd(self):
        if self.head == b"bye":
            self.sendClose(1000, "done")
            return
        digest = self.sha256.hexdigest()
        summary = f"{self.kind} {self.received} bytes in {self.frames} frames {digest}"
        print(summary)
        self.sendMessage(summary.encode("utf8"))

    def onClose(self, wasClean, code, reason):
        print(f"closed clean={wasClean} code={code} reason={reason}")


def main():
    from twisted.internet import reactor

    factory = WebSocketServerFactory("ws://127.0.0.1")
    factory.protocol = StreamingHashServerProtocol
    # Autobahn closes a closing handshake that takes over 1 s by aborting the
    # connection (its Close frame lost with it): on a loaded test machine a
    # peer can be left unscheduled that long, so allow 30 s.
    factory.setProtocolOptions(maxMessagePayloadSize=8 * 1024 * 1024, closeHandshakeTimeout=30)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    print(f"listening on {port.getHost().port}")
    reactor.run()


if __name__ == "__main__":
    sys.exit(main())
