"""
Tests for the hub's WebSocket end (L{txws.hub.subscriber}) and its
subscriptions and fan-out (L{txws.hub.registry}), through a L{Hub} on a
L{Clock} with its L{MemoryBroker}, over in-memory transports: what
C{docs/hub.md} ("Subscribing", "Messages", "Sequence numbers, epochs,
history and resuming", "Error codes", "Close codes") promises a client.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Optional
from urllib.parse import quote

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.support import clientFrame, closeFrame, connectServer, framesIn, upgradeRequest
from tests.test_backlog import PausingTransport, drainAll
from tests.typedtrial import SynchronousTestCase
from txws.frames import parseClosePayload, serializeFrame
from txws.hmacauth import KeyRing
from txws.hub.broker import Broker, BrokerUnavailable, History, MemoryBroker, Publication
from txws.hub.jsontext import encodeJSON
from txws.hub.service import Hub
from txws.hub.subscriber import EVICTED_CLOSE_CODE, HubProtocol
from txws.hub.tokens import mintToken
from txws.options import WebSocketOptions
from txws.protocol import State

#: The hub's clock starts here (Unix time), so that tokens have a real expiry.
NOW = 1_790_000_000.0

SECRET = "hub-test-secret"
OTHER_SECRET = "hub-other-secret"


def ring() -> KeyRing:
    """
    @return: the key ring of the test hubs.
    """
    return KeyRing({"k1": SECRET})


def token(channel: str, ttl: float = 300.0, now: float = NOW, keyRing: Optional[KeyRing] = None,
          keyId: Optional[str] = None) -> str:
    """
    @return: a channel token minted with the test ring (or C{keyRing}).
    """
    return mintToken(keyRing or ring(), channel, ttl, now, keyId)


class RecordingTransport(StringTransport):
    """
    A transport that also keeps every object passed to C{write}, so a test
    can check identity.
    """

    def __init__(self, peerPort: int = 50000) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            hostAddress=IPv4Address("TCP", "127.0.0.1", 9000),
            peerAddress=IPv4Address("TCP", "127.0.0.1", peerPort),
        )
        self.objects: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.objects.append(data)
        super().write(data)  # type: ignore[no-untyped-call]


class Client:
    """
    One subscriber's connection, seen from the client side: what it sends,
    what it received.
    """

    def __init__(self, protocol: HubProtocol, transport: StringTransport) -> None:
        self.protocol = protocol
        self.transport = transport

    def send(self, message: object) -> None:
        """
        Send a JSON control message (text).
        """
        self.sendRaw(json.dumps(message).encode("utf-8"))

    def sendRaw(self, payload: bytes, opcode: int = 0x1) -> None:
        """
        Send one frame with C{payload}.
        """
        self.protocol.dataReceived(clientFrame(opcode, payload))

    def frames(self) -> list[tuple[bool, int, bytes]]:
        """
        @return: the frames received since the last call (and forget them).
        """
        if isinstance(self.transport, PausingTransport):
            data = drainAll(self.transport)
        else:
            data = self.transport.value()
            self.transport.clear()
        return framesIn(data)

    def received(self) -> list[Any]:
        """
        @return: the JSON messages received since the last call; a test
            fails on anything that is not a text message.
        """
        out = []
        for fin, opcode, payload in self.frames():
            assert fin and opcode == 0x1, (fin, opcode, payload)
            out.append(json.loads(payload))
        return out

    def payloads(self) -> list[bytes]:
        """
        @return: the text payloads received since the last call.
        """
        return [payload for _, opcode, payload in self.frames() if opcode == 0x1]

    def lost(self) -> None:
        """
        The TCP connection ends.
        """
        self.protocol.connectionLost(Failure(ConnectionDone()))


class HubHarness:
    """
    A started L{Hub} on a L{Clock} (keepalive off), and subscribers
    connected straight to its factory.
    """

    def __init__(
        self,
        case: SynchronousTestCase,
        broker: Optional[Broker] = None,
        historySize: int = 100,
        historyAge: float = 300.0,
        options: Optional[WebSocketOptions] = None,
        start: bool = True,
        **hubOptions: Any,
    ) -> None:
        self.case = case
        self.clock = Clock()
        self.clock.advance(NOW)
        self.broker = broker or MemoryBroker(
            self.clock, historySize=historySize, historyAge=historyAge
        )
        self.hub = Hub(
            ring(),
            broker=self.broker,
            reactor=self.clock,
            options=options or WebSocketOptions(autoPingInterval=0),
            **hubOptions,
        )
        self._port = 50000
        if start:
            self.hub.startService()
            case.addCleanup(self.stop)

    def stop(self) -> None:
        """
        Stop the hub if it runs, forcing every connection away.
        """
        if not self.hub.running:
            return
        d = self.hub.stopService()
        for connection in self.hub.factory.connections():
            connection.connectionLost(Failure(ConnectionDone()))
        self.case.successResultOf(d)

    def connect(
        self, query: str = "", transport: Optional[StringTransport] = None
    ) -> tuple[HubProtocol, StringTransport]:
        """
        Open a TCP connection and send the opening handshake for
        C{/ws?query}.

        @return: the protocol and its transport (the answer in it).
        """
        self._port += 1
        if transport is None:
            transport = RecordingTransport(self._port)
        protocol, transport = connectServer(self.hub.factory, self._port, transport)
        assert isinstance(protocol, HubProtocol)
        path = "/ws?" + query if query else "/ws"
        protocol.dataReceived(upgradeRequest(path))
        return protocol, transport

    def open(self, query: str = "", transport: Optional[StringTransport] = None) -> Client:
        """
        Open a subscriber; the test fails unless it is accepted.

        @return: the client, with the 101 already read.
        """
        protocol, transport = self.connect(query, transport)
        head, _, rest = transport.value().partition(b"\r\n\r\n")
        self.case.assertTrue(head.startswith(b"HTTP/1.1 101 "), head)
        transport.clear()
        if isinstance(transport, RecordingTransport):
            transport.objects.clear()
        if isinstance(transport, PausingTransport):
            transport.sent.clear()
        transport.write(rest)
        return Client(protocol, transport)

    def refused(self, query: str) -> tuple[int, bytes, bytes]:
        """
        Open a subscriber that must be refused.

        @return: the HTTP status, the head and the body of the answer.
        """
        protocol, transport = self.connect(query)
        head, _, body = transport.value().partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        self.case.assertTrue(transport.disconnecting)
        self.case.assertIsNot(protocol.state, State.OPEN)
        return status, head, body

    def publish(self, channel: str, data: object) -> tuple[Publication, int]:
        """
        Publish a JSON value through the hub.

        @return: the publication and the count of subscribers written to.
        """
        result: tuple[Publication, int] = self.case.successResultOf(
            self.hub.publish(channel, json.dumps(data, separators=(",", ":")).encode())
        )
        return result


def messages(received: list[Any]) -> list[tuple[str, int, Any]]:
    """
    @return: C{(channel, seq, data)} of the C{message}s among C{received}.
    """
    return [(m["channel"], m["seq"], m["data"]) for m in received if m["type"] == "message"]


class URLSubscriptionTests(SynchronousTestCase):
    """
    Channels in the URL: subscribed at once, answered in URL order; a URL
    that cannot be honoured refuses the handshake (400, 403, text/plain).
    """

    def test_answersInURLOrder(self) -> None:
        """
        One C{subscribed} answer per URL channel, in URL order, with the
        channel's epoch and latest sequence number, no C{id} and no
        C{recovered}.
        """
        harness = HubHarness(self)
        harness.publish("sports", 1)
        harness.publish("sports", 2)
        client = harness.open("channel=news&channel=sports&channel=a%2Fb%3Ac")
        answers = client.received()
        self.assertEqual([a["channel"] for a in answers], ["news", "sports", "a/b:c"])
        for answer in answers:
            self.assertEqual(sorted(answer), ["channel", "epoch", "seq", "type"])
            self.assertEqual(answer["type"], "subscribed")
            history = self.successResultOf(harness.broker.history(answer["channel"]))
            self.assertEqual((answer["epoch"], answer["seq"]), (history.epoch, history.latest))
        self.assertEqual([a["seq"] for a in answers], [0, 2, 0])
        self.assertEqual(client.protocol.channels, ["news", "sports", "a/b:c"])

    def test_noChannels(self) -> None:
        """
        A URL without channels opens a connection with no subscription and
        sends nothing.
        """
        harness = HubHarness(self)
        client = harness.open()
        self.assertEqual(client.received(), [])
        self.assertEqual(harness.hub.channels.subscriptionCount, 0)

    def test_urlChannelsReceive(self) -> None:
        """
        URL subscriptions receive publications; other channels' do not
        reach them.
        """
        harness = HubHarness(self)
        client = harness.open("channel=news&channel=sports")
        client.received()
        harness.publish("news", {"n": 1})
        harness.publish("weather", {"n": 2})
        harness.publish("sports", {"n": 3})
        self.assertEqual(
            messages(client.received()), [("news", 1, {"n": 1}), ("sports", 1, {"n": 3})]
        )

    def test_repeatedURLChannelOnce(self) -> None:
        """
        A channel named twice in the URL is one subscription: its
        publications arrive once.
        """
        harness = HubHarness(self)
        client = harness.open("channel=news&channel=news")
        self.assertEqual({a["channel"] for a in client.received()}, {"news"})
        harness.publish("news", 1)
        self.assertEqual(messages(client.received()), [("news", 1, 1)])

    def test_badNameRefused(self) -> None:
        """
        A bad channel name in the URL refuses the handshake with 400 and a
        C{text/plain} reason naming C{bad_channel}, and subscribes nothing.
        """
        harness = HubHarness(self)
        for query in ["channel=", "channel=a%20b", "channel=" + "a" * 129,
                      "channel=news&channel=caf%C3%A9", "channel=news%0A"]:
            status, head, body = harness.refused(query)
            self.assertEqual(status, 400, query)
            self.assertIn(b"content-type: text/plain", head.lower(), query)
            self.assertIn(b"bad_channel", body, query)
        self.assertEqual(harness.hub.channels.subscriptionCount, 0)
        self.assertEqual(len(harness.broker), 0)  # type: ignore[arg-type]

    def test_longestNameAccepted(self) -> None:
        """
        A 128-character name in the URL is accepted.
        """
        harness = HubHarness(self)
        client = harness.open("channel=" + "a" * 128)
        self.assertEqual([a["channel"] for a in client.received()], ["a" * 128])

    def test_tooManyRefused(self) -> None:
        """
        More URL channels than C{maxSubscriptions} refuse the handshake with
        400; exactly that many are accepted.
        """
        harness = HubHarness(self, maxSubscriptions=3)
        status, head, _ = harness.refused("channel=a&channel=b&channel=c&channel=d")
        self.assertEqual(status, 400)
        self.assertIn(b"content-type: text/plain", head.lower())
        self.assertEqual(harness.hub.channels.subscriptionCount, 0)
        client = harness.open("channel=a&channel=b&channel=c")
        self.assertEqual(len(client.received()), 3)

    def test_privateWithoutToken(self) -> None:
        """
        A private channel in the URL without a token: 403, C{text/plain}.
        """
        harness = HubHarness(self)
        status, head, body = harness.refused("channel=news&channel=private-user-42")
        self.assertEqual(status, 403)
        self.assertIn(b"content-type: text/plain", head.lower())
        self.assertIn(b"token_required", body)
        self.assertEqual(harness.hub.channels.subscriptionCount, 0)

    def test_privateWithBadToken(self) -> None:
        """
        A forged, expired, unknown-key, malformed or other channel's token:
        403 each time.
        """
        harness = HubHarness(self)
        channel = "private-user-42"
        good = token(channel)
        forged = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
        expired = token(channel, ttl=10, now=NOW - 20)
        unknown = token(channel, keyRing=KeyRing({"k9": OTHER_SECRET}))
        other = token("private-user-43")
        for bad in [forged, expired, unknown, "garbage", other]:
            status, _, _ = harness.refused(f"channel={channel}&token={quote(bad)}")
            self.assertEqual(status, 403, bad)
        self.assertEqual(harness.hub.channels.subscriptionCount, 0)

    def test_privateWithGoodToken(self) -> None:
        """
        Valid tokens open their private channels, whatever their order in
        the URL.
        """
        harness = HubHarness(self)
        a, b = "private-a", "private-b"
        client = harness.open(
            f"channel={a}&channel=news&channel={b}&token={token(b)}&token={token(a)}"
        )
        self.assertEqual([m["channel"] for m in client.received()], [a, "news", b])
        harness.publish(b, "secret")
        self.assertEqual(messages(client.received()), [(b, 1, "secret")])


    def test_tokenOrderDoesNotMatter(self) -> None:
        """
        "A token names its own channel, so their order does not matter": a
        valid token opens its channel even beside a stale one for the same
        channel, in either order.
        """
        harness = HubHarness(self)
        channel = "private-a"
        stale, fresh = token(channel, ttl=10, now=NOW - 20), token(channel)
        for first, second in ((stale, fresh), (fresh, stale)):
            client = harness.open(f"channel={channel}&token={first}&token={second}")
            self.assertEqual([m["channel"] for m in client.received()], [channel])


class ControlMessageTests(SynchronousTestCase):
    """
    C{subscribe}, C{unsubscribe} and C{ping} control messages, their
    answers and the C{id}s they echo.
    """

    def setUp(self) -> None:
        self.harness = HubHarness(self)
        self.client = self.harness.open()

    def test_subscribe(self) -> None:
        """
        C{subscribe} answers C{subscribed} with the channel, epoch, latest
        seq and id; publications follow.
        """
        self.harness.publish("news", "old")
        self.client.send({"type": "subscribe", "channel": "news", "id": 1})
        [answer] = self.client.received()
        epoch = self.successResultOf(self.harness.broker.history("news")).epoch
        self.assertEqual(
            answer, {"type": "subscribed", "channel": "news", "epoch": epoch, "seq": 1, "id": 1}
        )
        self.harness.publish("news", "new")
        self.assertEqual(messages(self.client.received()), [("news", 2, "new")])

    def test_idsEchoed(self) -> None:
        """
        Any JSON value as C{id} is copied into the answer, falsy ones too.
        """
        for requestId in [0, "", False, "a-b", 2.5, [1, "x"], {"k": {"n": None}}]:
            self.client.send({"type": "ping", "id": requestId})
            self.client.send({"type": "subscribe", "channel": "news", "id": requestId})
            self.client.send({"type": "unsubscribe", "channel": "news", "id": requestId})
            self.client.send({"type": "unsubscribe", "channel": "news", "id": requestId})
            self.client.send({"type": "nonsense", "id": requestId})
            answers = self.client.received()
            self.assertEqual([a["type"] for a in answers],
                             ["pong", "subscribed", "unsubscribed", "error", "error"])
            for answer in answers:
                self.assertIn("id", answer, (requestId, answer))
                self.assertEqual(answer["id"], requestId)
                self.assertIs(type(answer["id"]), type(requestId))

    def test_ping(self) -> None:
        """
        C{ping} answers C{pong} with the id; without an id, a bare C{pong}.
        """
        self.client.send({"type": "ping", "id": "p1"})
        self.client.send({"type": "ping"})
        self.assertEqual(self.client.received(), [{"type": "pong", "id": "p1"}, {"type": "pong"}])

    def test_unsubscribe(self) -> None:
        """
        C{unsubscribe} answers C{unsubscribed} with the channel and id, and
        the channel's publications stop; the hub lets the channel go.
        """
        self.client.send({"type": "subscribe", "channel": "news"})
        self.client.send({"type": "subscribe", "channel": "sports"})
        self.client.received()
        self.client.send({"type": "unsubscribe", "channel": "news", "id": 7})
        self.assertEqual(self.client.received(),
                         [{"type": "unsubscribed", "channel": "news", "id": 7}])
        self.harness.publish("news", 1)
        self.harness.publish("sports", 2)
        self.assertEqual(messages(self.client.received()), [("sports", 1, 2)])
        self.assertEqual(self.client.protocol.channels, ["sports"])
        self.assertEqual(self.harness.hub.channels.channelCount, 1)

    def test_notSubscribed(self) -> None:
        """
        C{unsubscribe} from a channel the connection is not subscribed to:
        C{not_subscribed}, with the channel and id.
        """
        self.client.send({"type": "unsubscribe", "channel": "news", "id": "u"})
        [answer] = self.client.received()
        self.assertEqual(
            {k: answer[k] for k in ("type", "code", "channel", "id")},
            {"type": "error", "code": "not_subscribed", "channel": "news", "id": "u"},
        )
        self.assertIsInstance(answer["message"], str)

    def test_subscribeTwiceDeliversOnce(self) -> None:
        """
        Subscribing again to a channel answers C{subscribed} again and does
        not deliver messages twice; one C{unsubscribe} ends it.
        """
        client = self.harness.open("channel=news")
        client.send({"type": "subscribe", "channel": "news", "id": 1})
        client.send({"type": "subscribe", "channel": "news", "id": 2})
        answers = client.received()
        self.assertEqual([(a["type"], a.get("id")) for a in answers],
                         [("subscribed", None), ("subscribed", 1), ("subscribed", 2)])
        self.harness.publish("news", "once")
        self.assertEqual(messages(client.received()), [("news", 1, "once")])
        self.assertEqual(self.harness.hub.channels.subscriptionCount, 1)
        client.send({"type": "unsubscribe", "channel": "news"})
        client.received()
        self.harness.publish("news", "never")
        self.assertEqual(client.received(), [])

    def test_resubscribeAfterUnsubscribe(self) -> None:
        """
        Subscribing again after unsubscribing works, with the numbering
        going on.
        """
        self.harness.open("channel=news")  # keeps the channel alive
        self.client.send({"type": "subscribe", "channel": "news"})
        self.harness.publish("news", 1)
        self.client.send({"type": "unsubscribe", "channel": "news"})
        self.harness.publish("news", 2)
        self.client.received()
        self.client.send({"type": "subscribe", "channel": "news"})
        self.harness.publish("news", 3)
        received = self.client.received()
        self.assertEqual(received[0]["seq"], 2)
        self.assertEqual(messages(received), [("news", 3, 3)])


class ErrorTests(SynchronousTestCase):
    """
    Every error code of C{docs/hub.md} with its condition; the connection
    stays open after each.
    """

    def setUp(self) -> None:
        self.harness = HubHarness(self, maxSubscriptions=2)
        self.client = self.harness.open()

    def error(self, message: object, raw: Optional[bytes] = None, opcode: int = 0x1) -> Any:
        """
        Send one control message that must get one C{error}; check that the
        connection still answers a ping.

        @return: the error.
        """
        if raw is None:
            self.client.send(message)
        else:
            self.client.sendRaw(raw, opcode)
        answers = self.client.received()
        self.assertEqual(len(answers), 1, answers)
        [answer] = answers
        self.assertEqual(answer["type"], "error", answer)
        self.assertIsInstance(answer["message"], str)
        self.client.send({"type": "ping", "id": "alive"})
        self.assertEqual(self.client.received(), [{"type": "pong", "id": "alive"}])
        self.assertIs(self.client.protocol.state, State.OPEN)
        return answer

    def assertCode(self, answer: Any, code: str, channel: Optional[str] = None,
                   requestId: object = None) -> None:
        """
        C{answer} is an error with C{code} and, when given, C{channel} and
        C{id} (and otherwise without them).
        """
        self.assertEqual(answer["code"], code, answer)
        if channel is None:
            self.assertNotIn("channel", answer)
        else:
            self.assertEqual(answer["channel"], channel)
        if requestId is None:
            self.assertNotIn("id", answer)
        else:
            self.assertEqual(answer["id"], requestId)

    def test_badRequestBinary(self) -> None:
        """
        A binary message: C{bad_request}.
        """
        answer = self.error(None, json.dumps({"type": "ping"}).encode(), opcode=0x2)
        self.assertCode(answer, "bad_request")

    def test_badRequestNotAnObject(self) -> None:
        """
        Text that is not JSON, or JSON that is not an object:
        C{bad_request}.
        """
        for raw in [b"", b"not json", b"{", b"[1]", b'"ping"', b"42", b"null", b"true",
                    b'{"type": "ping"} x', b"NaN"]:
            self.assertCode(self.error(None, raw), "bad_request")

    def test_badRequestDeeplyNested(self) -> None:
        """
        A control message nested deeper than the decoder goes (valid JSON,
        not an object): C{bad_request}, and the connection stays open (not
        a 1011 server error).
        """
        answer = self.error(None, b"[" * 5000 + b"]" * 5000)
        self.assertCode(answer, "bad_request")
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_nonFiniteNumbers(self) -> None:
        """
        C{NaN}, C{Infinity} and a number too large for a float are not JSON
        (Python's decoder takes them): whatever the hub answers a control
        message holding one is valid JSON (it cannot echo them as an
        C{id}); the connection stays open.
        """
        for value in (b"NaN", b"Infinity", b"-Infinity", b"1e400"):
            self.client.sendRaw(b'{"type": "ping", "id": ' + value + b"}")
            for payload in self.client.payloads():
                json.loads(payload, parse_constant=lambda name: self.fail(f"{name} sent"))
            self.client.send({"type": "ping"})
            self.assertEqual(self.client.received(), [{"type": "pong"}])

    def test_badRequestType(self) -> None:
        """
        A missing or unknown C{type}: C{bad_request}, with the id.
        """
        self.assertCode(self.error({"id": 1}), "bad_request", requestId=1)
        for kind in ["Subscribe", "publish", "", 1, None, ["ping"]]:
            self.assertCode(self.error({"type": kind, "id": 2}), "bad_request", requestId=2)

    def test_badRequestResumeFields(self) -> None:
        """
        C{since} not a non-negative integer, C{epoch} not a string, or one
        without the other: C{bad_request}, with the channel and id.
        """
        epoch = "0123456789abcdef"
        fieldSets: list[dict[str, object]] = [
            {"since": -1, "epoch": epoch}, {"since": "3", "epoch": epoch},
            {"since": 1.5, "epoch": epoch}, {"since": True, "epoch": epoch},
            {"since": 3, "epoch": 5}, {"since": 3, "epoch": None},
            {"since": 3}, {"epoch": epoch}, {"since": [1], "epoch": epoch},
        ]
        for fields in fieldSets:
            request: dict[str, object] = {"type": "subscribe", "channel": "news", "id": 3}
            request.update(fields)
            answer = self.error(request)
            self.assertCode(answer, "bad_request", "news", 3)
        self.assertEqual(self.harness.hub.channels.subscriptionCount, 0)

    def test_badChannel(self) -> None:
        """
        A missing, empty, too long, badly spelt or non-string channel, in
        C{subscribe} or C{unsubscribe}: C{bad_channel}, with the id.
        """
        for channel in ["", "a" * 129, "a b", "caf\u00e9", 42, None, ["news"]]:
            for kind in ("subscribe", "unsubscribe"):
                answer = self.error({"type": kind, "channel": channel, "id": 4})
                self.assertCode(answer, "bad_channel", requestId=4)
        answer = self.error({"type": "subscribe", "id": 5})
        self.assertCode(answer, "bad_channel", requestId=5)
        self.assertEqual(self.harness.hub.channels.subscriptionCount, 0)

    def test_tokenRequired(self) -> None:
        """
        A private channel without a token: C{token_required}.
        """
        answer = self.error({"type": "subscribe", "channel": "private-x", "id": 6})
        self.assertCode(answer, "token_required", "private-x", 6)

    def test_tokenInvalid(self) -> None:
        """
        A malformed token, one signed with an unknown key, or a forged one:
        C{token_invalid}.
        """
        channel = "private-x"
        good = token(channel)
        parts = good.split(".")
        forged = ".".join([*parts[:4], token("private-y").split(".")[4]])
        unknown = token(channel, keyRing=KeyRing({"k2": OTHER_SECRET}))
        wrongSecret = token(channel, keyRing=KeyRing({"k1": OTHER_SECRET}))
        for bad in ["", "garbage", "txws1.k1", good + ".x", forged, unknown, wrongSecret, 42]:
            answer = self.error({"type": "subscribe", "channel": channel, "token": bad, "id": 7})
            self.assertCode(answer, "token_invalid", channel, 7)

    def test_tokenExpired(self) -> None:
        """
        A token past its expiry: C{token_expired}; valid until then.
        """
        channel = "private-x"
        soon = token(channel, ttl=10)
        self.harness.clock.advance(10)
        answer = self.error({"type": "subscribe", "channel": channel, "token": soon})
        self.assertCode(answer, "token_expired", channel)
        fresh = token(channel, ttl=10, now=self.harness.clock.seconds())
        self.client.send({"type": "subscribe", "channel": channel, "token": fresh})
        self.assertEqual([a["type"] for a in self.client.received()], ["subscribed"])

    def test_tokenWrongChannel(self) -> None:
        """
        A valid token for another channel: C{token_wrong_channel}.
        """
        answer = self.error(
            {"type": "subscribe", "channel": "private-x", "token": token("private-y"), "id": 8}
        )
        self.assertCode(answer, "token_wrong_channel", "private-x", 8)

    def test_tokenNotNeededForPublic(self) -> None:
        """
        A public channel needs no token (and one given is not checked).
        """
        self.client.send({"type": "subscribe", "channel": "news", "token": "garbage"})
        self.assertEqual([a["type"] for a in self.client.received()], ["subscribed"])

    def test_tooManySubscriptions(self) -> None:
        """
        Past C{maxSubscriptions}: C{too_many_subscriptions}; subscribing
        again to a channel already held is not refused; after an
        unsubscribe there is room again.
        """
        self.client.send({"type": "subscribe", "channel": "a"})
        self.client.send({"type": "subscribe", "channel": "b"})
        self.client.received()
        answer = self.error({"type": "subscribe", "channel": "c", "id": 9})
        self.assertCode(answer, "too_many_subscriptions", "c", 9)
        self.client.send({"type": "subscribe", "channel": "b"})
        self.assertEqual([a["type"] for a in self.client.received()], ["subscribed"])
        self.client.send({"type": "unsubscribe", "channel": "a"})
        self.client.send({"type": "subscribe", "channel": "c"})
        self.assertEqual([a["type"] for a in self.client.received()],
                         ["unsubscribed", "subscribed"])

    def test_tooManyCountsURLChannels(self) -> None:
        """
        URL channels count against C{maxSubscriptions}.
        """
        client = self.harness.open("channel=a&channel=b")
        client.received()
        client.send({"type": "subscribe", "channel": "c"})
        [answer] = client.received()
        self.assertEqual(answer["code"], "too_many_subscriptions")


class SwitchableBroker:
    """
    A L{MemoryBroker} whose C{history} and C{subscribe} fail with
    L{BrokerUnavailable} while C{down} is set.
    """

    def __init__(self, inner: MemoryBroker) -> None:
        self.inner = inner
        self.down = False

    def start(
        self,
        deliver: Callable[[Publication], None],
        lost: Optional[Callable[[str, History], None]] = None,
    ) -> Deferred[None]:
        return self.inner.start(deliver)

    def stop(self) -> Deferred[None]:
        return self.inner.stop()

    def subscribe(self, channel: str) -> Deferred[None]:
        if self.down:
            return fail(BrokerUnavailable("down"))
        return self.inner.subscribe(channel)

    def unsubscribe(self, channel: str) -> Deferred[None]:
        return self.inner.unsubscribe(channel)

    def publish(self, channel: str, data: bytes) -> Deferred[Publication]:
        if self.down:
            return fail(BrokerUnavailable("down"))
        return self.inner.publish(channel, data)

    def history(
        self, channel: str, since: Optional[int] = None, epoch: Optional[str] = None
    ) -> Deferred[History]:
        if self.down:
            return fail(BrokerUnavailable("down"))
        return self.inner.history(channel, since, epoch)


class UnavailableTests(SynchronousTestCase):
    """
    A broker that cannot serve a subscription: C{unavailable}, and the
    connection is left as if it had not asked.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.broker = SwitchableBroker(MemoryBroker(self.clock))
        self.harness = HubHarness(self, broker=self.broker, maxSubscriptions=1)
        self.client = self.harness.open()

    def test_unavailable(self) -> None:
        """
        C{unavailable}, with the channel and id; the connection stays open
        and holds no subscription.
        """
        self.broker.down = True
        self.client.send({"type": "subscribe", "channel": "news", "id": 1})
        [answer] = self.client.received()
        self.assertEqual({k: answer.get(k) for k in ("type", "code", "channel", "id")},
                         {"type": "error", "code": "unavailable", "channel": "news", "id": 1})
        self.flushLoggedErrors(BrokerUnavailable)
        self.assertIs(self.client.protocol.state, State.OPEN)
        self.assertEqual(self.harness.hub.channels.subscriptionCount, 0)
        self.assertFalse(self.harness.hub.channels.isSubscribed(self.client.protocol, "news"))

    def test_failedSubscriptionHoldsNoPlace(self) -> None:
        """
        A subscription the broker failed is not one: it does not count
        against C{maxSubscriptions}, and the connection's channels do not
        list it.
        """
        self.broker.down = True
        self.client.send({"type": "subscribe", "channel": "news"})
        self.client.received()
        self.flushLoggedErrors(BrokerUnavailable)
        self.broker.down = False
        self.client.send({"type": "subscribe", "channel": "sports", "id": 2})
        [answer] = self.client.received()
        self.assertEqual((answer["type"], answer["channel"]), ("subscribed", "sports"), answer)
        self.assertEqual(self.client.protocol.channels, ["sports"])

    def test_retryAfterUnavailable(self) -> None:
        """
        Once the broker is back, the same subscription succeeds and
        receives.
        """
        self.broker.down = True
        self.client.send({"type": "subscribe", "channel": "news"})
        self.client.received()
        self.flushLoggedErrors(BrokerUnavailable)
        self.broker.down = False
        self.client.send({"type": "subscribe", "channel": "news"})
        self.assertEqual([a["type"] for a in self.client.received()], ["subscribed"])
        self.harness.publish("news", 1)
        self.assertEqual(messages(self.client.received()), [("news", 1, 1)])


class ResumeTests(SynchronousTestCase):
    """
    Resuming with C{since} and C{epoch}: recovered with exactly the missed
    messages, or not recovered with none.
    """

    def setUp(self) -> None:
        self.harness = HubHarness(self, historySize=5, historyAge=60.0)

    def published(self, count: int, channel: str = "news") -> list[Publication]:
        return [self.harness.publish(channel, {"n": i})[0] for i in range(count)]

    def resume(self, since: object, epoch: object, channel: str = "news") -> list[Any]:
        client = self.harness.open()
        client.send({"type": "subscribe", "channel": channel, "since": since, "epoch": epoch,
                     "id": "r"})
        self.client = client
        return client.received()

    def test_recovered(self) -> None:
        """
        With the current epoch and history covering everything after
        C{since}: C{recovered} true, the channel's latest seq, then each
        missed message in order, then live messages, none missing or
        repeated.
        """
        published = self.published(4)
        epoch = published[0].epoch
        received = self.resume(1, epoch)
        self.assertEqual(received[0], {"type": "subscribed", "channel": "news", "epoch": epoch,
                                       "seq": 4, "id": "r", "recovered": True})
        self.assertEqual(messages(received[1:]),
                         [("news", 2, {"n": 1}), ("news", 3, {"n": 2}), ("news", 4, {"n": 3})])
        self.assertEqual(len(received), 4)
        self.harness.publish("news", "live")
        self.assertEqual(messages(self.client.received()), [("news", 5, "live")])

    def test_recoveredNothingMissed(self) -> None:
        """
        C{since} equal to the latest seq: recovered, no old messages.
        """
        published = self.published(3)
        received = self.resume(3, published[0].epoch)
        self.assertEqual(len(received), 1)
        self.assertIs(received[0]["recovered"], True)

    def test_recoveredFromZero(self) -> None:
        """
        C{since} 0 in the current epoch, with all of it kept: everything.
        """
        published = self.published(3)
        received = self.resume(0, published[0].epoch)
        self.assertIs(received[0]["recovered"], True)
        self.assertEqual([m[1] for m in messages(received)], [1, 2, 3])

    def test_recoveredMessagesAreTheFanOutBytes(self) -> None:
        """
        A missed message reaches the resuming client as the same JSON live
        subscribers got.
        """
        live = self.harness.open("channel=news")
        live.received()
        published = self.published(1)
        [liveBytes] = live.payloads()
        client = self.harness.open()
        client.send({"type": "subscribe", "channel": "news", "since": 0,
                     "epoch": published[0].epoch})
        payloads = client.payloads()
        self.assertEqual(payloads[1:], [liveBytes])

    def assertNotRecovered(self, received: list[Any]) -> None:
        """
        The answer is C{recovered} false with the current epoch and latest,
        and no old message follows; live ones do.
        """
        history = self.successResultOf(self.harness.broker.history("news"))
        self.assertEqual(received, [{"type": "subscribed", "channel": "news",
                                     "epoch": history.epoch, "seq": history.latest,
                                     "id": "r", "recovered": False}])
        self.harness.publish("news", "live")
        self.assertEqual(messages(self.client.received()),
                         [("news", history.latest + 1, "live")])

    def test_otherEpoch(self) -> None:
        """
        Another epoch: not recovered.
        """
        self.published(3)
        self.assertNotRecovered(self.resume(1, "ffffffffffffffff"))

    def test_sinceBeyondLatest(self) -> None:
        """
        A C{since} larger than the latest seq: not recovered.
        """
        published = self.published(3)
        self.assertNotRecovered(self.resume(4, published[0].epoch))

    def test_evictedFromHistory(self) -> None:
        """
        Messages after C{since} no longer in history (size): not recovered;
        the oldest still covered position is recovered.
        """
        published = self.published(8)
        epoch = published[0].epoch
        self.assertNotRecovered(self.resume(2, epoch))
        received = self.resume(4, epoch)
        self.assertIs(received[0]["recovered"], True)
        self.assertEqual([m[1] for m in messages(received)], [5, 6, 7, 8, 9])

    def test_expired(self) -> None:
        """
        Messages after C{since} expired (age): not recovered.
        """
        keeper = self.harness.open("channel=news")  # the channel lives on
        keeper.received()
        published = self.published(2)
        self.harness.clock.advance(61)
        self.assertNotRecovered(self.resume(1, published[0].epoch))

    def test_forgottenChannel(self) -> None:
        """
        A channel forgotten (no subscribers, nothing kept) starts a new
        epoch: a resume with the old one is not recovered.
        """
        published = self.published(2)
        self.harness.clock.advance(121)
        self.assertNotRecovered(self.resume(2, published[0].epoch))

    def test_resumeWhenAlreadySubscribed(self) -> None:
        """
        A resume on a channel the connection already holds answers
        C{subscribed} again with C{recovered} (it asked to resume), and
        delivers nothing twice.
        """
        client = self.harness.open("channel=news")
        client.received()
        published = self.published(2)
        client.received()
        client.send({"type": "subscribe", "channel": "news", "since": 0,
                     "epoch": published[0].epoch, "id": "again"})
        received = client.received()
        self.assertEqual([m[1] for m in messages(received)], [],
                         "messages the connection already had were sent again")
        [answer] = received
        self.assertEqual((answer["type"], answer["id"], answer["seq"]), ("subscribed", "again", 2))
        self.assertIn("recovered", answer)


class LostTests(SynchronousTestCase):
    """
    A gap the broker cannot fill (C{lost}) is told to every subscriber of
    the channel, as a resume that could not be served.
    """

    def test_subscribersTold(self) -> None:
        """
        Each subscriber of the channel gets C{subscribed} with C{recovered}
        false and the position deliveries go on from; others hear nothing;
        live messages go on.
        """
        harness = HubHarness(self)
        news = harness.open("channel=news")
        other = harness.open("channel=other")
        epoch = news.received()[0]["epoch"]
        other.received()
        harness.hub.channels.lost("news", History("new-" + epoch, 7, (), True))
        self.assertEqual(
            news.received(),
            [{"type": "subscribed", "channel": "news", "epoch": "new-" + epoch, "seq": 7,
              "recovered": False}],
        )
        self.assertEqual(other.received(), [])
        harness.publish("news", "after")
        self.assertEqual(messages(news.received()), [("news", 1, "after")])

    def test_noSubscribers(self) -> None:
        """
        A channel without subscribers here: nothing happens.
        """
        harness = HubHarness(self)
        harness.hub.channels.lost("news", History("e", 3, (), True))
        self.assertEqual(harness.hub.channels.channelCount, 0)


class HeldBroker:
    """
    A L{MemoryBroker} whose C{history} answers are held until released,
    like a broker on the network: each is computed when asked, delivered
    when the test says.
    """

    def __init__(self, inner: MemoryBroker, holdSubscribe: bool = False) -> None:
        self.inner = inner
        self.held: list[tuple[Deferred[History], History]] = []
        self.holdSubscribe = holdSubscribe
        self.heldSubscriptions: list[tuple[Deferred[None], str]] = []

    def start(
        self,
        deliver: Callable[[Publication], None],
        lost: Optional[Callable[[str, History], None]] = None,
    ) -> Deferred[None]:
        return self.inner.start(deliver)

    def stop(self) -> Deferred[None]:
        return self.inner.stop()

    def subscribe(self, channel: str) -> Deferred[None]:
        if not self.holdSubscribe:
            return self.inner.subscribe(channel)
        d: Deferred[None] = Deferred()
        self.heldSubscriptions.append((d, channel))
        return d

    def releaseSubscriptions(self) -> None:
        """
        Let the held subscriptions take effect, then tell their callers.
        """
        held, self.heldSubscriptions = self.heldSubscriptions, []
        for d, channel in held:
            self.inner.subscribe(channel)
            d.callback(None)

    def unsubscribe(self, channel: str) -> Deferred[None]:
        return self.inner.unsubscribe(channel)

    def publish(self, channel: str, data: bytes) -> Deferred[Publication]:
        return self.inner.publish(channel, data)

    def history(
        self, channel: str, since: Optional[int] = None, epoch: Optional[str] = None
    ) -> Deferred[History]:
        if self.holdSubscribe:
            return self.inner.history(channel, since, epoch)
        results: list[History] = []
        self.inner.history(channel, since, epoch).addCallback(results.append)
        d: Deferred[History] = Deferred()
        self.held.append((d, results[0]))
        return d

    def release(self) -> None:
        held, self.held = self.held, []
        for d, history in held:
            d.callback(history)


class PendingSubscriptionTests(SynchronousTestCase):
    """
    Publications that arrive while the broker has not yet answered a
    subscription are buffered, then sent after the answer (and the missed
    messages), each once, in order.
    """

    def setUp(self) -> None:
        self.broker = HeldBroker(MemoryBroker(Clock()))
        self.harness = HubHarness(self, broker=self.broker)

    def test_bufferedWhilePending(self) -> None:
        """
        Published while pending: sent after C{subscribed}, in order.
        """
        client = self.harness.open()
        client.send({"type": "subscribe", "channel": "news"})
        self.assertEqual(client.received(), [])
        self.harness.publish("news", 1)
        self.harness.publish("news", 2)
        self.assertEqual(client.received(), [])
        self.broker.release()
        received = client.received()
        self.assertEqual((received[0]["type"], received[0]["seq"]), ("subscribed", 0))
        self.assertEqual(messages(received[1:]), [("news", 1, 1), ("news", 2, 2)])
        self.harness.publish("news", 3)
        self.assertEqual(messages(client.received()), [("news", 3, 3)])

    def test_resumeWhilePending(self) -> None:
        """
        A resume whose history was computed before more publications: the
        missed ones, then the ones buffered, none twice.
        """
        first = self.harness.publish("news", 1)[0]
        self.harness.publish("news", 2)
        client = self.harness.open()
        client.send({"type": "subscribe", "channel": "news", "since": 1, "epoch": first.epoch})
        self.harness.publish("news", 3)
        self.broker.release()
        received = client.received()
        self.assertIs(received[0]["recovered"], True)
        self.assertEqual([m[1] for m in messages(received)], [2, 3])

    def test_unsubscribeWhilePending(self) -> None:
        """
        Unsubscribing before the broker answers: nothing more arrives, and
        the late answer does not subscribe it.
        """
        client = self.harness.open()
        client.send({"type": "subscribe", "channel": "news"})
        client.send({"type": "unsubscribe", "channel": "news", "id": 1})
        self.assertEqual(client.received(), [{"type": "unsubscribed", "channel": "news", "id": 1}])
        self.broker.release()
        self.harness.publish("news", 1)
        self.assertEqual(client.received(), [])
        self.assertEqual(self.harness.hub.channels.subscriptionCount, 0)

    def test_closedWhilePending(self) -> None:
        """
        A connection gone before the broker answers is forgotten.
        """
        client = self.harness.open()
        client.send({"type": "subscribe", "channel": "news"})
        client.lost()
        self.broker.release()
        self.assertEqual(self.harness.hub.channels.subscriptionCount, 0)
        self.assertEqual(self.harness.publish("news", 1)[1], 0)


class OrderedBroker(HeldBroker):
    """
    A broker on the network, as a queue: C{subscribe} and C{unsubscribe}
    take effect in the order asked, one per L{step}, and are answered then.
    """

    def __init__(self, inner: MemoryBroker) -> None:
        super().__init__(inner)
        self.operations: list[tuple[Callable[[str], Deferred[None]], str, Deferred[None]]] = []

    def subscribe(self, channel: str) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.operations.append((self.inner.subscribe, channel, d))
        return d

    def unsubscribe(self, channel: str) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.operations.append((self.inner.unsubscribe, channel, d))
        return d

    def history(
        self, channel: str, since: Optional[int] = None, epoch: Optional[str] = None
    ) -> Deferred[History]:
        return self.inner.history(channel, since, epoch)

    def step(self) -> None:
        """
        Apply the oldest operation, then answer it.
        """
        operation, channel, d = self.operations.pop(0)
        operation(channel)
        d.callback(None)


class SlowBrokerSubscribeTests(SynchronousTestCase):
    """
    With a broker whose C{subscribe} takes time (one on the network), a
    second subscriber to a channel whose first subscription is still on its
    way waits for it too: the broker's C{subscribe} Deferred is when
    publications start to be delivered (L{Broker.subscribe}).
    """

    def test_secondSubscriberWaitsForBrokerSubscribe(self) -> None:
        """
        A's broker subscription is on its way when B subscribes; a message
        published meanwhile (which the broker does not deliver yet) must not
        leave a gap in B's numbering: B starts after it, or gets it.
        """
        broker = HeldBroker(MemoryBroker(Clock()), holdSubscribe=True)
        harness = HubHarness(self, broker=broker)
        a = harness.open()
        b = harness.open()
        a.send({"type": "subscribe", "channel": "news"})
        b.send({"type": "subscribe", "channel": "news"})
        harness.publish("news", 1)
        broker.releaseSubscriptions()
        harness.publish("news", 2)
        for client in (a, b):
            received = client.received()
            self.assertEqual(received[0]["type"], "subscribed")
            start = received[0]["seq"]
            seqs = [m[1] for m in messages(received)]
            self.assertEqual(seqs, list(range(start + 1, 3)),
                             f"subscribed at seq {start}, then got {seqs}")

    def test_resubscribeWhileBrokerSubscribing(self) -> None:
        """
        A subscribes, unsubscribes and B subscribes before the broker has
        answered A's subscription: B's answer must wait for B's own node
        subscription (the broker stops listening in between), so B's
        numbering has no gap and its epoch is the one its messages carry.
        """
        broker = OrderedBroker(MemoryBroker(Clock()))
        harness = HubHarness(self, broker=broker)
        a = harness.open()
        b = harness.open()
        a.send({"type": "subscribe", "channel": "news"})
        a.send({"type": "unsubscribe", "channel": "news"})
        b.send({"type": "subscribe", "channel": "news"})
        broker.step()  # A's subscribe
        broker.step()  # A's unsubscribe
        harness.publish("news", 1)
        while broker.operations:
            broker.step()  # B's subscribe
        harness.publish("news", 2)
        received = b.received()
        self.assertEqual(received[0]["type"], "subscribed")
        start, epoch = received[0]["seq"], received[0]["epoch"]
        seqs = [m[1] for m in messages(received)]
        self.assertEqual(seqs, list(range(start + 1, 3)),
                         f"subscribed at seq {start}, then got {seqs}")
        current = self.successResultOf(broker.inner.history("news")).epoch
        self.assertEqual(epoch, current)


class FanOutTests(SynchronousTestCase):
    """
    A publication is encoded once, as exactly the documented JSON, and the
    same frame goes to every subscriber.
    """

    def test_exactJSON(self) -> None:
        """
        The message is exactly C{{"type":"message","channel":...,"seq":...,
        "data":...}}, keys in that order, data re-encoded compactly.
        """
        harness = HubHarness(self)
        client = harness.open("channel=news")
        client.received()
        for _ in range(41):
            harness.hub.publish("news", b"0")
        client.payloads()
        harness.hub.publish("news", b'{"title":"hello"}')
        self.assertEqual(client.payloads(),
                         [b'{"type":"message","channel":"news","seq":42,"data":{"title":"hello"}}'])

    def test_sameFrameObject(self) -> None:
        """
        Every subscriber's transport is handed the very same bytes object,
        the one frame of the publication.
        """
        harness = HubHarness(self)
        clients = [harness.open("channel=news") for _ in range(3)]
        other = harness.open("channel=sports")
        for client in clients:
            client.received()
        transports = [c.transport for c in clients]
        for transport in transports:
            assert isinstance(transport, RecordingTransport)
            transport.objects.clear()
        _, delivered = harness.publish("news", {"x": 1})
        self.assertEqual(delivered, 3)
        written = []
        for transport in transports:
            assert isinstance(transport, RecordingTransport)
            self.assertEqual(len(transport.objects), 1)
            written.append(transport.objects[0])
        self.assertIs(written[0], written[1])
        self.assertIs(written[1], written[2])
        self.assertEqual(
            written[0],
            serializeFrame(0x1, b'{"type":"message","channel":"news","seq":1,"data":{"x":1}}'),
        )
        self.assertEqual(other.received()[1:], [])

    def test_deliveredCount(self) -> None:
        """
        The count of subscribers written to: those of the channel here,
        not others, not closed ones.
        """
        harness = HubHarness(self)
        self.assertEqual(harness.publish("news", 1)[1], 0)
        a = harness.open("channel=news")
        harness.open("channel=news&channel=sports")
        harness.open("channel=sports")
        self.assertEqual(harness.publish("news", 2)[1], 2)
        a.lost()
        self.assertEqual(harness.publish("news", 3)[1], 1)

    def test_closingSubscriberSkipped(self) -> None:
        """
        A subscriber whose closing handshake has begun gets no more
        messages, and the others still do.
        """
        harness = HubHarness(self)
        closing = harness.open("channel=news")
        staying = harness.open("channel=news")
        closing.received()
        staying.received()
        closing.protocol.sendClose(1000)
        closing.frames()
        _, delivered = harness.publish("news", 1)
        self.assertEqual(closing.frames(), [])
        self.assertEqual(messages(staying.received()), [("news", 1, 1)])
        self.assertEqual(delivered, 1)

    def test_unicodeData(self) -> None:
        """
        Non-ASCII data and a lone surrogate escape reach subscribers as
        valid UTF-8 text that decodes to the published value.
        """
        harness = HubHarness(self)
        client = harness.open("channel=news")
        client.received()
        harness.publish("news", {"t": "caf\u00e9 \U0001f600"})
        harness.hub.publish("news", encodeJSON({"t": "\ud800"}))
        self.assertEqual([m[2] for m in messages(client.received())],
                         [{"t": "caf\u00e9 \U0001f600"}, {"t": "\ud800"}])


def slowHub(case: SynchronousTestCase) -> HubHarness:
    """
    @return: a hub whose subscribers' transports hold 4 KiB and who may
        queue 8 KiB more.
    """
    return HubHarness(
        case,
        options=WebSocketOptions(autoPingInterval=0, writeBufferSize=4096),
        maxSubscriberBuffer=8192,
    )


class EvictionTests(SynchronousTestCase):
    """
    A subscriber that reads too slowly is closed with 4008 once its queue
    passes C{maxSubscriberBuffer}; the others keep receiving.
    """

    def test_defaultBuffer(self) -> None:
        """
        By default a subscriber may queue 1 MiB (C{--max-subscriber-buffer}).
        """
        harness = HubHarness(self)
        self.assertEqual(harness.hub.factory.options.maxBufferedAmount, 1024 * 1024)

    def test_slowSubscriberEvicted(self) -> None:
        """
        The slow subscriber gets 4008; the fast one gets every message; the
        hub counts one eviction once the connection is gone and stops
        writing to it.
        """
        harness = slowHub(self)
        slow = harness.open("channel=news", transport=PausingTransport())
        fast = harness.open("channel=news")
        fast.received()
        assert isinstance(slow.transport, PausingTransport)
        chunk = "x" * 1000
        for _ in range(30):
            harness.publish("news", chunk)
        self.assertEqual([m[1] for m in messages(fast.received())], list(range(1, 31)))
        self.assertEqual(slow.protocol.localCloseCode, EVICTED_CLOSE_CODE)
        frames = slow.frames()
        closes = [payload for _, opcode, payload in frames if opcode == 0x8]
        self.assertEqual([parseClosePayload(p)[0] for p in closes], [EVICTED_CLOSE_CODE])
        self.assertEqual(frames[-1][1], 0x8)
        self.assertEqual(harness.hub.evicted, 0)
        slow.protocol.dataReceived(closeFrame(EVICTED_CLOSE_CODE))
        slow.lost()
        self.assertEqual(harness.hub.evicted, 1)
        self.assertEqual(harness.publish("news", "after")[1], 1)
        self.assertEqual(harness.hub.channels.subscriberCount("news"), 1)
        self.assertEqual(messages(fast.received()), [("news", 31, "after")])

    def test_evictingPublicationNotCounted(self) -> None:
        """
        The publication that overflows the slow subscriber's queue is
        dropped for it, so C{delivered} does not count it (only the
        subscribers it was written to).
        """
        harness = slowHub(self)
        slow = harness.open("channel=news", transport=PausingTransport())
        harness.open("channel=news")
        counts = []
        for _ in range(30):
            counts.append(harness.publish("news", "x" * 1000)[1])
            if slow.protocol.localCloseCode is not None:
                break
        self.assertEqual(slow.protocol.localCloseCode, EVICTED_CLOSE_CODE)
        self.assertEqual(counts[-1], 1, counts)
        self.assertEqual(harness.publish("news", "after")[1], 1)

    def test_evictionCountedOnCloseTimeout(self) -> None:
        """
        An evicted subscriber that never answers the Close is aborted after
        the close timeout, and counted.
        """
        harness = slowHub(self)
        slow = harness.open("channel=news", transport=PausingTransport())
        for _ in range(30):
            harness.publish("news", "x" * 1000)
        self.assertEqual(slow.protocol.localCloseCode, EVICTED_CLOSE_CODE)
        harness.clock.advance(harness.hub.factory.options.closeHandshakeTimeout + 1)
        self.assertTrue(slow.transport.disconnecting or slow.transport.disconnected)
        slow.lost()
        self.assertEqual(harness.hub.evicted, 1)

    def test_ordinaryCloseNotCounted(self) -> None:
        """
        A subscriber that leaves normally is not counted as evicted.
        """
        harness = HubHarness(self)
        client = harness.open("channel=news")
        client.protocol.dataReceived(closeFrame(1000))
        client.lost()
        self.assertEqual(harness.hub.evicted, 0)


class CloseTests(SynchronousTestCase):
    """
    A connection that goes away leaves all its channels.
    """

    def test_unsubscribedOnClose(self) -> None:
        """
        Once the connection is lost, its subscriptions are gone here and the
        broker no longer delivers to the node for channels nobody holds.
        """
        harness = HubHarness(self, historySize=0)
        client = harness.open("channel=news&channel=sports")
        other = harness.open("channel=sports")
        client.send({"type": "subscribe", "channel": "weather"})
        self.assertEqual(harness.hub.channels.subscriptionCount, 4)
        client.protocol.dataReceived(closeFrame(1000))
        client.lost()
        self.assertEqual(harness.hub.channels.subscriptionCount, 1)
        self.assertEqual(harness.hub.channels.channelCount, 1)
        self.assertEqual(harness.publish("news", 1)[1], 0)
        self.assertEqual(harness.publish("sports", 1)[1], 1)
        self.assertEqual(len(harness.broker), 1)  # type: ignore[arg-type]
        other.lost()
        self.assertEqual(len(harness.broker), 0)  # type: ignore[arg-type]

    def test_abortedConnection(self) -> None:
        """
        A connection lost without a closing handshake leaves its channels
        too.
        """
        harness = HubHarness(self)
        client = harness.open("channel=news")
        client.lost()
        self.assertEqual(harness.hub.channels.subscriptionCount, 0)
        self.assertEqual(harness.hub.factory.connectionCount, 0)


__all__ = [
    "NOW",
    "OTHER_SECRET",
    "SECRET",
    "Client",
    "HeldBroker",
    "HubHarness",
    "RecordingTransport",
    "SwitchableBroker",
    "messages",
    "ring",
    "token",
]
