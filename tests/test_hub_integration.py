"""
End-to-end tests of the hub (C{docs/hub.md}) against real C{twistd -n txws}
processes, over TCP and over TLS (a CA and a server certificate made in the
test; clients verify the chain and the host name, here the certificate's
IP address 127.0.0.1).

Subscribers: txws's own client and the C{websockets} client, subscribing in
the URL and with control messages; a raw socket for the subscriber that
stops reading.  Publishers: C{python -m txws.hub publish}, the sender
written like the Django/DRF article's mixin (seed scheme), and requests
signed here from C{docs/hmac.md} alone for the refused variants.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import time
import warnings
from typing import Any

import requests
from OpenSSL.SSL import Error as SSLError
from service_identity import VerificationError
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.threads import deferToThread
from websockets.asyncio.client import connect as websocketsConnect

from tests.hubsupport import (
    HubProcess,
    RawSubscriber,
    Subscriber,
    SubscriberClosed,
    WebsocketsSubscriber,
    articlePublish,
    channelToken,
    onLoop,
    openSubscriber,
    publishCLI,
    seedHeaders,
    tokenCLI,
    upgradeStatus,
    v2Header,
    writeKeyFile,
)
from tests.tlssupport import TestAuthority
from tests.typedtrial import SkipTest, TestCase
from txws.client import connect

#: The hub's key ring in these tests, and a key it does not hold.
KEYS = {"test-1": "k1-" + "a" * 40, "test-0": "k0-" + "b" * 40}
FOREIGN = ("other", "not-a-key-of-the-hub-" + "c" * 30)

#: Seconds the hub is given for its closing handshakes on shutdown.
CLOSE_TIMEOUT = 3


def message(channel: str, seq: int, data: object) -> dict[str, Any]:
    """
    @return: the C{message} the hub sends, keys in the documented order.
    """
    return {"type": "message", "channel": channel, "seq": seq, "data": data}


class HubTestCase(TestCase):
    """
    Starts hubs with the test key file, over TLS when C{tls} is set.
    """

    tls = False

    def keyFile(self) -> str:
        """
        @return: a key file holding L{KEYS}, written once per test.
        """
        if not hasattr(self, "_keyFile"):
            directory = os.path.abspath(self.mktemp())
            os.makedirs(directory)
            self._keyFile = writeKeyFile(os.path.join(directory, "keys.json"), KEYS)
        return self._keyFile

    def startHub(self, *arguments: str) -> HubProcess:
        """
        Start C{twistd -n txws} with the test keys and C{arguments}.
        """
        files = None
        if self.tls:
            files = TestAuthority().writeServerFiles(self, ("localhost",), ("127.0.0.1",))
        return HubProcess(
            self, "--hmac-keys", self.keyFile(), "--close-timeout", str(CLOSE_TIMEOUT),
            *arguments, tls=files,
        )

    async def subscribe(self, kind: str, hub: HubProcess, query: str) -> Subscriber:
        """
        Open a subscriber, close it at cleanup.
        """
        subscriber = await openSubscriber(kind, hub, query)
        self.addCleanup(subscriber.close)
        return subscriber

    async def subscribed(self, subscriber: Subscriber, channel: str) -> dict[str, Any]:
        """
        @return: the C{subscribed} answer the subscriber receives next, for
            C{channel}.
        """
        answer = await subscriber.nextJSON()
        self.assertEqual(answer.get("type"), "subscribed", answer)
        self.assertEqual(answer["channel"], channel)
        self.assertIsInstance(answer["epoch"], str)
        self.assertIsInstance(answer["seq"], int)
        return dict(answer)

    async def nothingMore(self, subscriber: Subscriber, seconds: float = 0.3) -> None:
        """
        Check that nothing arrives for C{seconds} (used only after a later
        message has proven what was delivered).
        """
        try:
            extra = await subscriber.nextJSON(seconds)
        except TimeoutError:
            return
        self.fail(f"unexpected message {extra!r}")


class DeliveryTCPTests(HubTestCase):
    """
    Publishing over plain TCP reaches every subscriber of the channel and no
    other (C{docs/hub.md}, "Subscribing" and "Publishing"); SIGTERM closes
    them with 1001.
    """

    async def test_deliveryToSubscribersOfTheChannelOnly(self) -> None:
        """
        Three subscribers of C{news} (txws and C{websockets} in the URL, txws
        by control message) receive each message published by the command
        line (v2) and by the article's sender (seed) exactly once, as the
        documented JSON; a subscriber of C{sport} receives only C{sport}'s;
        the answers and C{/healthz} count them.
        """
        hub = self.startHub()
        byURL = await self.subscribe("txws", hub, "channel=news")
        byURL2 = await self.subscribe("websockets", hub, "channel=news")
        byControl = await self.subscribe("txws", hub, "")
        sport = await self.subscribe("websockets", hub, "channel=sport")
        byControl.sendJSON({"type": "subscribe", "channel": "news", "id": "s1"})
        for subscriber in (byURL, byURL2, byControl):
            answer = await self.subscribed(subscriber, "news")
            self.assertEqual(answer["seq"], 0)
            self.assertNotIn("recovered", answer)
        self.assertEqual(answer["id"], "s1")
        await self.subscribed(sport, "sport")

        done = publishCLI(hub, self.keyFile(), "news", '{"title": "hello"}', "--key-id", "test-1")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(json.loads(done.stdout), {"channel": "news", "seq": 1, "delivered": 3})
        answer = articlePublish(hub, KEYS["test-0"], "news", {"title": "second", "n": [1, 2]})
        self.assertEqual(answer, {"channel": "news", "seq": 2, "delivered": 3})
        answer = articlePublish(hub, KEYS["test-1"], "sport", {"goal": True})
        self.assertEqual(answer["delivered"], 1)

        for subscriber in (byURL, byURL2, byControl):
            first = await subscriber.nextJSON()
            self.assertEqual(first, message("news", 1, {"title": "hello"}))
            self.assertEqual(list(first), ["type", "channel", "seq", "data"])
            self.assertEqual(
                await subscriber.nextJSON(), message("news", 2, {"title": "second", "n": [1, 2]})
            )
        self.assertEqual(await sport.nextJSON(), message("sport", 1, {"goal": True}))
        for subscriber in (byURL, byURL2, byControl, sport):
            await self.nothingMore(subscriber, 0.2)

        health = hub.get("/healthz")
        self.assertEqual(health.status_code, 200)
        counts = health.json()
        self.assertEqual(counts["status"], "ok")
        self.assertIsInstance(counts["version"], str)
        self.assertGreater(counts["uptime"], 0)
        self.assertEqual(
            {k: counts[k] for k in ("connections", "channels", "subscriptions", "published")},
            {"connections": 4, "channels": 2, "subscriptions": 4, "published": 3},
        )
        self.assertEqual(counts["evicted"], 0)

    async def test_sigtermClosesEverySubscriberWith1001(self) -> None:
        """
        On SIGTERM every open subscriber sees close code 1001 (one of them
        subscribed to a private channel); a publish arriving meanwhile on a
        kept-alive connection gets 503 C{shutting_down}; the process exits 0
        within the close timeout, also when one subscriber never reads
        (plain TCP only) and so never answers the Close.
        """
        hub = self.startHub()
        token = tokenCLI(self.keyFile(), "private-user-42", keyId="test-0")
        subscribers = [
            await self.subscribe("txws", hub, "channel=news"),
            await self.subscribe("websockets", hub, "channel=news&channel=sport"),
            await self.subscribe("txws", hub, f"channel=private-user-42&token={token}"),
        ]
        for subscriber in subscribers:
            await subscriber.nextJSON()
        silent = None
        if not self.tls:
            silent = RawSubscriber(hub.port, "channel=news")
            self.addCleanup(silent.close)
        session = requests.Session()
        self.addCleanup(session.close)

        def publish(data: int) -> requests.Response:
            body = json.dumps({"channel": "news", "data": data}).encode()
            return session.post(
                hub.url("/publish"), data=body, timeout=10, verify=hub.cafile or True,
                headers={"Content-Type": "application/json", **seedHeaders(KEYS["test-1"], body)},
            )

        self.assertEqual(publish(1).status_code, 200)
        started = time.monotonic()
        hub.process.send_signal(signal.SIGTERM)
        for subscriber in subscribers:
            while True:  # skip the message published above
                try:
                    await subscriber.nextJSON()
                except SubscriberClosed:
                    break
            closeCode, _ = await subscriber.whenClosed(5)
            self.assertEqual(closeCode, 1001)
        if silent is not None:
            # The server is still waiting for the silent one's Close.
            refused = publish(2)
            self.assertEqual(refused.status_code, 503, refused.text)
            self.assertEqual(refused.json()["code"], "shutting_down")
        code = await deferToThread(hub.process.wait, CLOSE_TIMEOUT + 5)
        elapsed = time.monotonic() - started
        self.assertEqual(code, 0, hub.log())
        self.assertLess(elapsed, CLOSE_TIMEOUT + 3)
        if silent is not None:
            frames, closeCode = silent.readUntilClose(5)
            self.assertEqual(closeCode, 1001)
            self.assertEqual(
                [json.loads(payload)["type"] for _, payload in frames], ["subscribed", "message"]
            )


class DeliveryTLSTests(DeliveryTCPTests):
    """
    Delivery and shutdown over TLS (C{ssl:} endpoint), every client
    verifying the test CA and the certificate's name.
    """

    tls = True

    async def test_certificateNamesVerified(self) -> None:
        """
        Clients verify the server certificate's DNS name (C{localhost}, while
        connecting to 127.0.0.1): the right name is accepted, another name
        and the system's trust store refused.
        """
        hub = self.startHub()
        assert hub.cafile is not None
        with open(hub.cafile, "rb") as f:
            authority = Certificate.loadPEM(f.read())
        url = hub.wsURL("channel=news")
        protocol = await connect(
            url, contextFactory=optionsForClientTLS("localhost", trustRoot=authority)
        )
        protocol.sendClose(1000)
        for options in (
            optionsForClientTLS("other.example", trustRoot=authority),
            optionsForClientTLS("localhost"),
        ):
            with self.assertRaises((SSLError, VerificationError, ConnectionError)):
                await connect(url, contextFactory=options, timeout=10)

        async def websocketsClient(serverHostname: str) -> Any:
            context = ssl.create_default_context(cafile=hub.cafile)
            async with websocketsConnect(
                url, ssl=context, server_hostname=serverHostname, proxy=None, open_timeout=10
            ) as ws:
                return json.loads(await asyncio.wait_for(ws.recv(), 10))

        answer = await onLoop(websocketsClient("localhost"))
        self.assertEqual(answer["type"], "subscribed")
        with self.assertRaises(ssl.SSLCertVerificationError):
            await onLoop(websocketsClient("other.example"))

    def test_tlsVersions(self) -> None:
        """
        The server refuses TLS 1.1 and accepts TLS 1.2 and 1.3.
        """
        hub = self.startHub()

        def handshake(version: ssl.TLSVersion) -> str:
            context = ssl.create_default_context(cafile=hub.cafile)
            context.minimum_version = context.maximum_version = version
            if version < ssl.TLSVersion.TLSv1_2:
                context.set_ciphers("DEFAULT:@SECLEVEL=0")
            with (
                socket.create_connection(("127.0.0.1", hub.port), timeout=10) as raw,
                context.wrap_socket(raw, server_hostname="localhost") as tls,
            ):
                return str(tls.version())

        self.assertEqual(handshake(ssl.TLSVersion.TLSv1_2), "TLSv1.2")
        self.assertEqual(handshake(ssl.TLSVersion.TLSv1_3), "TLSv1.3")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                handshake(ssl.TLSVersion.TLSv1_1)
            except ssl.SSLError as e:
                if e.reason == "NO_PROTOCOLS_AVAILABLE":
                    raise SkipTest("this OpenSSL cannot offer TLS 1.1 at all") from e
                # The server's protocol_version alert, not a local refusal.
                self.assertIn(e.reason, ("TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL"))
            else:
                self.fail("a TLS 1.1 handshake succeeded")


class EndpointTests(HubTestCase):
    """
    C{/}, C{/ws} without an upgrade, C{/publish} with another method.
    """

    def test_pageAndPlainRequests(self) -> None:
        """
        C{GET /} serves the HTML page; a plain C{GET /ws} gets 426; a signed
        C{GET /publish} gets 405, an unsigned one 401 or 405.
        """
        hub = self.startHub()
        page = hub.get("/")
        self.assertEqual(page.status_code, 200)
        self.assertIn("text/html", page.headers["Content-Type"])
        self.assertIn('id="status"', page.text)
        self.assertEqual(hub.get("/ws").status_code, 426)
        signed = v2Header("test-1", KEYS["test-1"], f"127.0.0.1:{hub.port}", "/publish", b"",
                          method="GET")
        self.assertEqual(hub.get("/publish", signed).status_code, 405)
        self.assertIn(hub.get("/publish").status_code, (401, 405))


class PublishRefusalTests(HubTestCase):
    """
    Publishes that are not signed right get 401 with the guard's code;
    malformed ones get 400 with a reason; none of them publishes anything
    (C{docs/hub.md}, "Publishing"; C{docs/hmac.md} sections 4 and 5).
    """

    async def test_refusedPublishes(self) -> None:
        """
        Unsigned, tampered, stale, replayed and wrong-key requests get 401;
        bad JSON, a body that is not an object with C{channel} and C{data},
        and a bad channel name get 400; the subscriber's first message is the
        one valid publish that follows.
        """
        hub = self.startHub()
        subscriber = await self.subscribe("websockets", hub, "channel=news")
        await self.subscribed(subscriber, "news")
        secret = KEYS["test-1"]
        host, target = f"127.0.0.1:{hub.port}", "/publish"
        body = b'{"channel":"news","data":{"x":1}}'

        def refused(status: int, code: str, sent: bytes, headers: dict[str, str]) -> None:
            answer = hub.post(target, sent, headers)
            self.assertEqual(answer.status_code, status, f"{headers} {sent!r}: {answer.text}")
            self.assertEqual(answer.json()["code"], code, answer.text)

        refused(401, "missing_headers", body, {})
        refused(401, "bad_signature", b'{"channel":"news","data":{"x":2}}',
                seedHeaders(secret, body))
        refused(401, "bad_signature", body.replace(b"x", b"y"),
                v2Header("test-1", secret, host, target, body))
        refused(401, "stale_timestamp", body,
                seedHeaders(secret, body, int(time.time()) - 3600))
        refused(401, "stale_timestamp", body,
                v2Header("test-1", secret, host, target, body, int(time.time()) + 3600))
        refused(401, "bad_signature", body, seedHeaders(FOREIGN[1], body))
        refused(401, "unknown_key", body, v2Header(*FOREIGN, host, target, body))
        refused(401, "bad_signature", body, v2Header("test-1", FOREIGN[1], host, target, body))

        for sent, code in [
            (b'{"channel": "news", "data": ', "bad_json"),
            (b"\xff\xfe", "bad_json"),
            (b'["news", 1]', "bad_request"),
            (b'{"channel": "news"}', "bad_request"),
            (b'{"data": 1}', "bad_request"),
            (b'{"channel": "bad channel!", "data": 1}', "bad_channel"),
            (b'{"channel": "", "data": 1}', "bad_channel"),
            (b'{"channel": 7, "data": 1}', "bad_channel"),
            (json.dumps({"channel": "x" * 129, "data": 1}).encode(), "bad_channel"),
        ]:
            refused(400, code, sent, v2Header("test-0", KEYS["test-0"], host, target, sent))

        replayable = b'{"channel":"news","data":"once"}'
        headers = seedHeaders(secret, replayable)
        first = hub.post(target, replayable, headers)
        self.assertEqual(first.status_code, 200, first.text)
        self.assertEqual(first.json(), {"channel": "news", "seq": 1, "delivered": 1})
        refused(401, "replayed", replayable, headers)
        v2 = v2Header("test-0", KEYS["test-0"], host, target, replayable)
        self.assertEqual(hub.post(target, replayable, v2).status_code, 200)
        refused(401, "replayed", replayable, v2)

        self.assertEqual(await subscriber.nextJSON(), message("news", 1, "once"))
        self.assertEqual(await subscriber.nextJSON(), message("news", 2, "once"))
        await self.nothingMore(subscriber)

    def test_cliWithWrongKeyFails(self) -> None:
        """
        The command line signing with a key the hub does not hold exits
        non-zero (the hub answered 401), for both schemes.
        """
        hub = self.startHub()
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        foreign = writeKeyFile(os.path.join(directory, "foreign.json"), dict([FOREIGN]))
        for scheme in ("v2", "seed"):
            done = publishCLI(hub, foreign, "news", "1", "--scheme", scheme)
            self.assertNotEqual(done.returncode, 0, done.stdout)
            self.assertIn("401", done.stdout + done.stderr)
        self.assertEqual(hub.get("/healthz").json()["published"], 0)


class PrivateChannelTests(HubTestCase):
    """
    Private channels need a channel token (C{docs/hub.md}, "Channel tokens").
    """

    async def test_tokens(self) -> None:
        """
        A token from C{python -m txws.hub token}, and one made from the
        document's algorithm, open the channel (in the URL and by control
        message); none, expired, forged, unknown-key and wrong-channel
        tokens are refused with the documented codes, 403 in the URL.
        """
        hub = self.startHub()
        channel = "private-user-42"
        secret = KEYS["test-1"]
        now = int(time.time())
        cliToken = tokenCLI(self.keyFile(), channel, ttl=60, keyId="test-0")
        self.assertTrue(cliToken.startswith("txws1."), cliToken)
        good = channelToken("test-1", secret, channel, now + 60)
        expired = channelToken("test-1", secret, channel, now - 10)
        forged = channelToken("test-1", FOREIGN[1], channel, now + 60)
        unknownKey = channelToken(FOREIGN[0], FOREIGN[1], channel, now + 60)
        otherChannel = channelToken("test-1", secret, "private-user-43", now + 60)
        tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")

        byURL = await self.subscribe("txws", hub, f"channel={channel}&token={cliToken}")
        await self.subscribed(byURL, channel)

        control = await self.subscribe("websockets", hub, "")
        control.sendJSON({"type": "subscribe", "channel": channel, "id": 0})
        answer = await control.nextJSON()
        self.assertEqual(answer["type"], "error", answer)
        self.assertEqual((answer["code"], answer["id"]), ("token_required", 0))
        for n, (token, code) in enumerate([
            (expired, "token_expired"),
            (forged, "token_invalid"),
            (tampered, "token_invalid"),
            (unknownKey, "token_invalid"),
            ("txws1.test-1.garbage", "token_invalid"),
            (otherChannel, "token_wrong_channel"),
        ], 1):
            control.sendJSON({"type": "subscribe", "channel": channel, "token": token, "id": n})
            answer = await control.nextJSON()
            self.assertEqual(answer["type"], "error", (code, answer))
            self.assertEqual((answer["code"], answer["id"]), (code, n), answer)
            self.assertEqual(answer.get("channel"), channel)

        for query in (f"channel={channel}", f"channel={channel}&token={expired}",
                      f"channel={channel}&token={otherChannel}"):
            status, _ = upgradeStatus(hub, query)
            self.assertEqual(status, 403, query)
        self.assertEqual(upgradeStatus(hub, "channel=bad%20name")[0], 400)

        control.sendJSON({"type": "subscribe", "channel": channel, "token": good, "id": 9})
        answer = await self.subscribed(control, channel)
        self.assertEqual(answer["id"], 9)
        published = articlePublish(hub, secret, channel, {"for": "user 42"})
        self.assertEqual(published["delivered"], 2)
        for subscriber in (byURL, control):
            self.assertEqual(await subscriber.nextJSON(), message(channel, 1, {"for": "user 42"}))


class ControlMessageTests(HubTestCase):
    """
    Control messages and their answers (C{docs/hub.md}, "Control messages").
    """

    async def test_controlMessages(self) -> None:
        """
        C{ping} gets C{pong}; C{unsubscribe} stops delivery; bad requests get
        C{bad_request} or C{bad_channel} and the connection stays open;
        subscribing twice does not deliver twice.
        """
        hub = self.startHub()
        subscriber = await self.subscribe("txws", hub, "channel=news")
        await self.subscribed(subscriber, "news")
        subscriber.sendJSON({"type": "ping", "id": [1, "a"]})
        self.assertEqual(await subscriber.nextJSON(), {"type": "pong", "id": [1, "a"]})
        for request, code in [
            ({"type": "nonsense", "id": 1}, "bad_request"),
            ([1, 2], "bad_request"),
            ({"type": "subscribe", "channel": "no spaces", "id": 2}, "bad_channel"),
            ({"type": "subscribe", "channel": "news", "since": 1, "id": 3}, "bad_request"),
            ({"type": "subscribe", "channel": "news", "since": -1, "epoch": "e", "id": 4},
             "bad_request"),
            ({"type": "unsubscribe", "channel": "sport", "id": 5}, "not_subscribed"),
        ]:
            subscriber.sendJSON(request)
            answer = await subscriber.nextJSON()
            self.assertEqual((answer.get("type"), answer.get("code")), ("error", code), request)
        subscriber.sendJSON({"type": "subscribe", "channel": "news", "id": 6})
        await self.subscribed(subscriber, "news")
        articlePublish(hub, KEYS["test-1"], "news", 1)
        self.assertEqual(await subscriber.nextJSON(), message("news", 1, 1))
        await self.nothingMore(subscriber)
        subscriber.sendJSON({"type": "unsubscribe", "channel": "news", "id": 7})
        self.assertEqual(
            await subscriber.nextJSON(), {"type": "unsubscribed", "channel": "news", "id": 7}
        )
        self.assertEqual(articlePublish(hub, KEYS["test-1"], "news", 2)["delivered"], 0)
        subscriber.sendJSON({"type": "ping", "id": 8})
        self.assertEqual(await subscriber.nextJSON(), {"type": "pong", "id": 8})


    async def test_resubscribeWithResume(self) -> None:
        """
        Subscribing again to a channel the connection is subscribed to, with
        C{since} and C{epoch}, answers C{subscribed} with C{recovered}, and
        delivers nothing twice.
        """
        hub = self.startHub()
        subscriber = await self.subscribe("websockets", hub, "channel=news")
        epoch = (await self.subscribed(subscriber, "news"))["epoch"]
        articlePublish(hub, KEYS["test-1"], "news", "one")
        self.assertEqual(await subscriber.nextJSON(), message("news", 1, "one"))
        for since, sentEpoch, recovered in ((1, epoch, True), (0, "not-" + epoch, False),
                                            (5, epoch, False)):
            subscriber.sendJSON({"type": "subscribe", "channel": "news", "since": since,
                                 "epoch": sentEpoch, "id": since})
            answer = await self.subscribed(subscriber, "news")
            self.assertEqual((answer.get("recovered"), answer["id"]), (recovered, since), answer)
        articlePublish(hub, KEYS["test-1"], "news", "two")
        self.assertEqual(await subscriber.nextJSON(), message("news", 2, "two"))
        await self.nothingMore(subscriber)


class ResumeTests(HubTestCase):
    """
    Resuming after a reconnect (C{docs/hub.md}, "Sequence numbers, epochs,
    history and resuming").
    """

    async def receiveThree(self, kind: str, hub: HubProcess) -> str:
        """
        Subscribe to C{news}, receive seq 1 to 3, disconnect, publish 4 to 6.

        @return: the epoch of the C{subscribed} answer.
        """
        subscriber = await self.subscribe(kind, hub, "channel=news")
        epoch: str = (await self.subscribed(subscriber, "news"))["epoch"]
        for n in (1, 2, 3):
            articlePublish(hub, KEYS["test-1"], "news", {"n": n})
            self.assertEqual(await subscriber.nextJSON(), message("news", n, {"n": n}))
        subscriber.close()
        await subscriber.whenClosed()
        done = publishCLI(hub, self.keyFile(), "news", '{"n": 4}', "--key-id", "test-0",
                          "--scheme", "seed")
        self.assertEqual(json.loads(done.stdout)["delivered"], 0, done.stderr)
        for n in (5, 6):
            self.assertEqual(articlePublish(hub, KEYS["test-1"], "news", {"n": n})["seq"], n)
        return epoch

    async def resume(
        self, kind: str, hub: HubProcess, since: int, epoch: str
    ) -> tuple[Subscriber, dict[str, Any]]:
        """
        Reconnect and resume C{news} by control message.

        @return: the subscriber and its C{subscribed} answer.
        """
        subscriber = await self.subscribe(kind, hub, "")
        subscriber.sendJSON(
            {"type": "subscribe", "channel": "news", "since": since, "epoch": epoch, "id": 1}
        )
        return subscriber, await self.subscribed(subscriber, "news")

    async def test_resumeReceivesWhatWasMissed(self) -> None:
        """
        Resuming with C{since} 3 and the epoch answers C{recovered: true},
        then delivers 4, 5, 6 in order, then live messages, none twice; with
        either client.
        """
        for kind in ("txws", "websockets"):
            hub = self.startHub()
            epoch = await self.receiveThree(kind, hub)
            subscriber, answer = await self.resume(kind, hub, 3, epoch)
            self.assertEqual(
                (answer["recovered"], answer["epoch"], answer["seq"], answer["id"]),
                (True, epoch, 6, 1),
            )
            for n in (4, 5, 6):
                self.assertEqual(await subscriber.nextJSON(), message("news", n, {"n": n}))
            articlePublish(hub, KEYS["test-1"], "news", {"n": 7})
            self.assertEqual(await subscriber.nextJSON(), message("news", 7, {"n": 7}))
            await self.nothingMore(subscriber, 0.2)

    async def test_resumeNotCovered(self) -> None:
        """
        With C{--history-size 2}, resuming after 3 of 6 answers C{recovered:
        false} with no old messages, and live ones follow; so does a resume
        with another epoch or a C{since} past the latest seq.
        """
        hub = self.startHub("--history-size", "2")
        epoch = await self.receiveThree("websockets", hub)
        subscriber, answer = await self.resume("websockets", hub, 3, epoch)
        self.assertEqual(
            (answer["recovered"], answer["epoch"], answer["seq"]), (False, epoch, 6)
        )
        otherEpoch, answer = await self.resume("txws", hub, 5, "not-" + epoch)
        self.assertEqual((answer["recovered"], answer["epoch"], answer["seq"]), (False, epoch, 6))
        pastLatest, answer = await self.resume("websockets", hub, 99, epoch)
        self.assertEqual((answer["recovered"], answer["epoch"], answer["seq"]), (False, epoch, 6))
        articlePublish(hub, KEYS["test-1"], "news", {"n": 7})
        for each in (subscriber, otherEpoch, pastLatest):
            self.assertEqual(await each.nextJSON(), message("news", 7, {"n": 7}))
            await self.nothingMore(each, 0.2)
        # History still holds 5 and 6 (size 2 after 7: 6 and 7): resuming
        # from 5 is covered again.
        other, answer = await self.resume("txws", hub, 5, epoch)
        self.assertEqual(answer["recovered"], True)
        self.assertEqual(await other.nextJSON(), message("news", 6, {"n": 6}))
        self.assertEqual(await other.nextJSON(), message("news", 7, {"n": 7}))


class SlowSubscriberTests(HubTestCase):
    """
    A subscriber that does not read is evicted with 4008 past its buffer;
    memory stays bounded and the others are not delayed (C{docs/hub.md},
    "Close codes").
    """

    skip = None if os.path.exists("/proc/self/status") else "reading RSS needs Linux's /proc"

    async def test_slowSubscriberEvicted(self) -> None:
        """
        While 300 messages of 128 KiB are published, a raw subscriber that
        never reads is evicted: the server's RSS grows far less than the 38
        MiB published, the other subscriber gets every message within a
        second of its publish, publishing never waits, and the slow one,
        reading at last, finds messages from seq 1 on and then close code
        4008.
        """
        hub = self.startHub("--max-subscriber-buffer", "65536", "--close-timeout", "30",
                            "--max-body-size", "1048576")
        fast = await WebsocketsSubscriber.open(hub.wsURL("channel=bulk"))
        self.addCleanup(fast.close)
        await self.subscribed(fast, "bulk")
        slow = RawSubscriber(hub.port, "channel=bulk")
        self.addCleanup(slow.close)
        pad = "x" * (128 * 1024)
        count = 300
        before = hub.rssKiB()

        published: list[float] = []

        def publishAll() -> tuple[list[int], float]:
            delivered, slowest = [], 0.0
            for n in range(count):
                started = time.monotonic()
                data = {"n": n, "pad": pad}
                delivered.append(articlePublish(hub, KEYS["test-1"], "bulk", data)["delivered"])
                published.append(time.monotonic())
                slowest = max(slowest, published[-1] - started)
            return delivered, slowest

        started = time.monotonic()
        delivered, slowest = await deferToThread(publishAll)
        seqs = []
        for _ in range(count):
            received = await fast.nextJSON(5)
            seqs.append(received["seq"])
            self.assertEqual(received["data"], {"n": received["seq"] - 1, "pad": pad})
        elapsed = time.monotonic() - started
        grown = hub.rssKiB() - before
        # arrivals[0] is the subscribed answer.
        lag = max(a - p for a, p in zip(fast.arrivals[1:], published, strict=True))
        if os.environ.get("TXWS_HUB_FIGURES"):
            print(f"\nRSS {before} KiB -> +{grown} KiB; slowest publish {slowest:.3f} s; "
                  f"all {count} delivered to the fast subscriber in {elapsed:.2f} s, "
                  f"at most {lag:.3f} s after their publish")

        self.assertEqual(seqs, list(range(1, count + 1)))
        self.assertLess(lag, 1.0, "the fast subscriber was delayed")
        self.assertLess(slowest, 1.0, "a publish waited")
        self.assertEqual(delivered[0], 2)
        self.assertEqual(delivered[-1], 1)
        self.assertLess(elapsed, 30)
        self.assertLess(grown, 24 * 1024, f"RSS grew by {grown} KiB")

        frames, code = await deferToThread(slow.readUntilClose, 10)
        self.assertEqual(code, 4008)
        decoded = [json.loads(payload) for _, payload in frames]
        self.assertEqual(decoded[0]["type"], "subscribed")
        got = [m["seq"] for m in decoded[1:]]
        self.assertGreater(len(got), 0)
        self.assertEqual(got, list(range(1, len(got) + 1)))
        self.assertLess(len(got), count)
        # The eviction is counted once the connection has closed: answer the
        # Close as a client does.
        slow.sendClose(4008)
        deadline = time.monotonic() + 5
        while hub.get("/healthz").json()["evicted"] != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(hub.get("/healthz").json()["evicted"], 1)
