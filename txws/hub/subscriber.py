"""
The hub's WebSocket end: subscriptions from the URL and from JSON control
messages, answers and errors as C{docs/hub.md} specifies.

Design: the protocol only parses and checks what a client asks; the
subscriptions themselves and the fan-out belong to the hub's
L{txws.hub.registry.LocalChannels}, and private channels' tokens to
L{txws.hub.tokens}.  Every refusal is an answer (an HTTP status during the
handshake, an C{error} message after it), never a silent drop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from txws.hub.channels import MAX_CHANNEL_LENGTH, isPrivateChannel, validChannelName
from txws.hub.jsontext import decodeJSON, encodeJSON
from txws.hub.registry import messageFor
from txws.hub.tokens import tokenChannel
from txws.protocol import State
from txws.server import ConnectionDeny, WebSocketServerFactory, WebSocketServerProtocol

if TYPE_CHECKING:
    from typing_extensions import Self

    from txws.handshake import ConnectionRequest
    from txws.hub.broker import Publication
    from txws.hub.service import Hub

__all__ = ["EVICTED_CLOSE_CODE", "HubFactory", "HubProtocol"]

#: The close code of a subscriber evicted for reading too slowly.
EVICTED_CLOSE_CODE = 4008

_BAD_NAME = (
    f"channel names are 1 to {MAX_CHANNEL_LENGTH} characters from A-Z a-z 0-9 _ - . : /"
)


class HubProtocol(WebSocketServerProtocol):
    """
    One subscriber's connection.
    """

    factory: HubFactory
    sendBufferOverflowCode = EVICTED_CLOSE_CODE
    __slots__ = ("_channels", "_urlChannels")
    _channels: dict[str, None]
    _urlChannels: list[str]

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls, *args, **kwargs)
        self._channels = {}
        self._urlChannels = []
        return self

    @property
    def isOpen(self) -> bool:
        """
        Whether messages can still be sent (open, no Close sent).
        """
        return self.state is State.OPEN and self.localCloseCode is None

    @property
    def channels(self) -> list[str]:
        """
        The channels this connection subscribed to, in order.
        """
        return list(self._channels)

    # -- Sending ----------------------------------------------------------------

    def sendControl(self, message: dict[str, object]) -> None:
        """
        Send a JSON control message, if the connection is still open.

        @param message: the JSON object.
        """
        if self.isOpen:
            self.sendMessage(encodeJSON(message))

    def sendError(
        self,
        code: str,
        message: str,
        channel: Optional[str] = None,
        requestId: object = None,
    ) -> None:
        """
        Send an C{error} answer.

        @param code: its documented code.
        @param message: a sentence for people.
        @param channel: the channel it concerns, if any.
        @param requestId: the request's C{id}, if any.
        """
        answer: dict[str, object] = {"type": "error", "code": code, "message": message}
        if channel is not None:
            answer["channel"] = channel
        if requestId is not None:
            answer["id"] = requestId
        self.sendControl(answer)

    def sendPublication(self, publication: Publication) -> None:
        """
        Send one publication to this subscriber alone (history, resumes).

        @param publication: the publication.
        """
        if self.isOpen:
            self.sendMessage(messageFor(publication))

    # -- Handshake --------------------------------------------------------------

    def onConnect(self, request: ConnectionRequest) -> None:
        """
        Check the channels and tokens of the URL; refuse with 400 or 403.

        @param request: the opening handshake.
        @raise ConnectionDeny: for a bad name, too many channels, or a
            private channel without a valid token.
        """
        hub = self.factory.hub
        if hub.stopping:
            raise ConnectionDeny(503, "the server is shutting down")
        names = list(dict.fromkeys(request.params.get("channel", [])))
        if len(names) > hub.maxSubscriptions:
            raise ConnectionDeny(400, f"too many channels: at most {hub.maxSubscriptions}")
        tokens: dict[str, list[str]] = {}
        for token in request.params.get("token", []):
            named = tokenChannel(token)
            if named is not None:
                tokens.setdefault(named, []).append(token)
        for name in names:
            if not validChannelName(name):
                raise ConnectionDeny(400, "bad_channel: " + _BAD_NAME)
            if isPrivateChannel(name):
                # Any of the channel's tokens will do (a stale one beside a
                # fresh one, in either order).
                problems = [hub.checkToken(t, name) for t in tokens.get(name, [None])]
                if None not in problems:
                    code, message = problems[-1]  # type: ignore[misc]
                    raise ConnectionDeny(403, f"{code}: {message}")
        self._urlChannels = names

    def onOpen(self) -> None:
        """
        Subscribe to the URL's channels.
        """
        names, self._urlChannels = self._urlChannels, []
        for name in names:
            self._subscribe(name, None, None, None)

    def subscriptionEnded(self, channel: str) -> None:
        """
        The hub could not complete a subscription: it holds no place.

        @param channel: the channel.
        """
        self._channels.pop(channel, None)

    def _subscribe(
        self, channel: str, since: Optional[int], epoch: Optional[str], requestId: object
    ) -> None:
        self._channels[channel] = None
        self.factory.hub.channels.subscribe(self, channel, since, epoch, requestId)

    # -- Control messages -------------------------------------------------------

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """
        Answer a control message.

        @param payload: the message.
        @param isBinary: whether it is binary (refused).
        """
        if isBinary:
            self.sendError("bad_request", "control messages are JSON text messages")
            return
        try:
            request = decodeJSON(payload)
        except ValueError:
            self.sendError("bad_request", "a control message must be a JSON object")
            return
        if not isinstance(request, dict):
            self.sendError("bad_request", "a control message must be a JSON object")
            return
        requestId = request.get("id")
        kind = request.get("type")
        if kind == "subscribe":
            self._requestSubscribe(request, requestId)
        elif kind == "unsubscribe":
            self._requestUnsubscribe(request, requestId)
        elif kind == "ping":
            answer: dict[str, object] = {"type": "pong"}
            if requestId is not None:
                answer["id"] = requestId
            self.sendControl(answer)
        else:
            self.sendError(
                "bad_request", "type must be subscribe, unsubscribe or ping", None, requestId
            )

    def _requestSubscribe(self, request: dict[str, Any], requestId: object) -> None:
        channel = request.get("channel")
        if not isinstance(channel, str) or not validChannelName(channel):
            self.sendError("bad_channel", _BAD_NAME, None, requestId)
            return
        since = request.get("since")
        epoch = request.get("epoch")
        resuming = since is not None or epoch is not None
        if resuming and (type(since) is not int or since < 0 or not isinstance(epoch, str)):
            self.sendError(
                "bad_request",
                "to resume, give since (a non-negative integer) and epoch (a string)",
                channel,
                requestId,
            )
            return
        if isPrivateChannel(channel):
            problem = self.factory.hub.checkToken(request.get("token"), channel)
            if problem is not None:
                self.sendError(problem[0], problem[1], channel, requestId)
                return
        hub = self.factory.hub
        if channel not in self._channels and len(self._channels) >= hub.maxSubscriptions:
            self.sendError(
                "too_many_subscriptions",
                f"a connection may subscribe to at most {hub.maxSubscriptions} channels",
                channel,
                requestId,
            )
            return
        self._subscribe(channel, since, epoch, requestId)

    def _requestUnsubscribe(self, request: dict[str, Any], requestId: object) -> None:
        channel = request.get("channel")
        if not isinstance(channel, str) or not validChannelName(channel):
            self.sendError("bad_channel", _BAD_NAME, None, requestId)
            return
        if not self.factory.hub.channels.unsubscribe(self, channel):
            self.sendError("not_subscribed", "not subscribed to this channel", channel, requestId)
            return
        self._channels.pop(channel, None)
        answer: dict[str, object] = {"type": "unsubscribed", "channel": channel}
        if requestId is not None:
            answer["id"] = requestId
        self.sendControl(answer)

    # -- Closing ----------------------------------------------------------------

    def onClose(self, wasClean: bool, code: int, reason: str) -> None:
        """
        Leave every channel; count an eviction.
        """
        self.factory.hub.subscriberClosed(self, self.localCloseCode == EVICTED_CLOSE_CODE)
        self._channels.clear()


class HubFactory(WebSocketServerFactory):
    """
    Builds L{HubProtocol} connections for one hub.

    @ivar hub: the hub.
    """

    protocol = HubProtocol

    def __init__(self, hub: Hub, **kwargs: Any) -> None:
        """
        @param hub: the hub the connections subscribe through.
        @param kwargs: L{WebSocketServerFactory} arguments.
        """
        super().__init__(**kwargs)
        self.hub = hub
