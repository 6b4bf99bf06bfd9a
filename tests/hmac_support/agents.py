"""
In-memory agents for the command-line and client tests: an agent that
records the requests it is given, with their bodies read, and never
answers.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from zope.interface import implementer

__all__ = ["RecordingAgent", "Sent"]


class Sent:
    """
    One request handed to L{RecordingAgent}, with its body read.
    """

    def __init__(self, method: bytes, uri: bytes, headers: Headers, producer: Any) -> None:
        self.method = method
        self.uri = uri
        self.headers = headers
        self.producer = producer
        self.body = b""
        if producer is not None:
            chunks: list[bytes] = []

            class Consumer:
                def write(self, data: bytes) -> None:
                    chunks.append(data)

            producer.startProducing(Consumer())
            self.body = b"".join(chunks)

    def header(self, name: bytes) -> list[bytes]:
        return list(self.headers.getRawHeaders(name, []))


@implementer(IAgent)
class RecordingAgent:
    """
    An agent that records requests and never answers.
    """

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def request(
        self,
        method: bytes,
        uri: bytes,
        headers: Headers | None = None,
        bodyProducer: IBodyProducer | None = None,
    ) -> Deferred[IResponse]:
        self.sent.append(Sent(method, uri, headers or Headers(), bodyProducer))
        return Deferred()
