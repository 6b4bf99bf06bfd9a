"""
A streaming client in the style of Autobahn's streaming examples: it sends
a 2 MiB binary message as eight frames, each begun with beginMessageFrame
and its payload sent with sendMessageFrameData in 10,000-byte pieces of
the whole message (the last piece of a frame runs past its end, as the
return value says);
then a text message of three frames sent with sendMessageFrame (its
characters split between frames); then "bye".  It prints the return values
of one frame's pieces, and every answer, and stops when the server closes.

Usage: python streaming_client.py PORT
"""

import hashlib
import sys

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol, connectWS
from twisted.internet import reactor

FRAME = 256 * 1024
PIECE = 10000
DATA = bytes(i * 7 % 251 for i in range(8 * FRAME))
TEXT = "héllo wörld, ünïcode frames ".encode() * 100


class StreamingClientProtocol(WebSocketClientProtocol):
    def onOpen(self):
        self.beginMessage(isBinary=True)
        for start in range(0, len(DATA), FRAME):
            self.beginMessageFrame(FRAME)
            offset = start
            while True:
                # Pieces of the whole message: the last one of a frame runs
                # past its end (a negative return: what was not sent).
                left = self.sendMessageFrameData(DATA[offset : offset + PIECE])
                if start == 0 and (offset == 0 or left <= 0):
                    print(f"piece at {offset}: {left}")
                if left <= 0:
                    break
                offset += PIECE
        self.endMessage()
        print(f"sent binary {len(DATA)} {hashlib.sha256(DATA).hexdigest()}")
        self.beginMessage()
        third = len(TEXT) // 3
        self.sendMessageFrame(TEXT[:third])
        self.sendMessageFrame(TEXT[third : 2 * third])
        self.sendMessageFrame(TEXT[2 * third :])
        self.endMessage()
        print(f"sent text {len(TEXT)} {hashlib.sha256(TEXT).hexdigest()}")
        self.answers = 0

    def onMessage(self, payload, isBinary):
        print(f"answer {payload.decode('utf8')}")
        self.answers += 1
        if self.answers == 2:
            self.sendMessage(b"bye")

    def onClose(self, wasClean, code, reason):
        print(f"closed clean={wasClean} code={code} reason={reason}")
        reactor.stop()


if __name__ == "__main__":
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{int(sys.argv[1])}")
    factory.protocol = StreamingClientProtocol
    # Compression would change what the frames announce; both sides
    # stream uncompressed frames here (Autobahn offers none by default).
    factory.setProtocolOptions(perMessageCompressionOffers=[])
    connectWS(factory)
    reactor.run()
