"""
End-to-end tests of the hub's browser page (C{GET /}, C{txws/hub/page.html})
in a real headless Chromium against a real C{twistd -n txws} process, with
messages published by C{python -m txws.hub publish}.

The server runs with no keys of its own, so it writes its development key
file into its working directory, and the command line signs with that file,
as the README's quick start does.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import requests
from twisted.internet import reactor as _reactor
from twisted.internet.threads import deferToThread
from twisted.web.resource import Resource

from tests.hubsupport import HubProcess, publishCLI, seedHeaders
from tests.peers.chromium import BrowserPage, Chromium, chromiumMissing
from tests.peers.harness import RecordingRelay
from tests.typedtrial import TestCase
from txws.deflate import RSV1
from txws.frames import parseFrames
from txws.hmacauth import HMACSite, KeyRing
from txws.hub.service import Hub

reactor: Any = _reactor

#: The page's list of received messages, as the text of each item.
MESSAGES = "Array.from(document.querySelectorAll('#messages li'), li => li.textContent)"


def openPage(
    browser: Chromium, base: str, channel: str = "news", network: bool = False
) -> BrowserPage:
    """
    Open the hub's page for C{channel} in a new tab and wait until it is
    subscribed.

    @param base: the hub's C{http://host:port}.
    @param network: record the tab's network events too (C{Network.enable}).
    @return: the page.
    """
    page = browser.newPage()
    if network:
        page.call("Network.enable")
    page.navigate(f"{base}/?channel={channel}")
    page.waitFor("document.getElementById('status').textContent === 'open'")
    page.waitFor(f"window.txwsHub.channels.has({json.dumps(channel)})")
    return page


class HubPageTests(TestCase):
    """
    The page subscribes with the browser's own WebSocket API, shows what is
    published, and resumes after a lost connection (C{docs/hub.md},
    "Sequence numbers, epochs, history and resuming").
    """

    skip = chromiumMissing()

    def setUp(self) -> None:
        self.hub = HubProcess(self)
        self.browser = Chromium()
        self.addCleanup(self.browser.close)

    def openPage(self, channel: str = "news") -> BrowserPage:
        """
        Open the hub's page for C{channel} and wait until it is subscribed.

        @return: the page.
        """
        return openPage(self.browser, self.hub.url(""), channel)

    def publish(self, channel: str, data: object) -> None:
        """
        Publish with the command line, signed with the development key file.
        """
        done = publishCLI(self.hub, self.hub.devKeyFile, channel, json.dumps(data))
        self.assertEqual(done.returncode, 0, f"publish failed: {done.stderr}\n{done.stdout}")

    def test_publishedMessageAppears(self) -> None:
        """
        A message published to the page's channel appears in C{#messages}
        with its seq, and the page's script logs no error.
        """
        page = self.openPage("news")
        self.assertEqual(page.evaluate("document.getElementById('channel').value"), "news")
        self.publish("news", {"hello": "browser"})
        page.waitFor(f"{MESSAGES}.length === 1")
        [text] = page.evaluate(MESSAGES)
        self.assertIn('{"hello":"browser"}', text)
        self.assertIn("#1", text)
        self.assertEqual(page.problems(), [])

    def test_otherChannelNotShown(self) -> None:
        """
        A message published to another channel does not appear; the next
        one to the page's channel does.
        """
        page = self.openPage("sport")
        self.publish("news", {"not": "for sport"})
        self.publish("sport", {"goal": 1})
        page.waitFor(f"{MESSAGES}.length >= 1")
        self.assertEqual(len(page.evaluate(MESSAGES)), 1)
        self.assertIn('{"goal":1}', page.evaluate(MESSAGES)[0])

    def test_dataIsEscaped(self) -> None:
        """
        Markup in a message is shown as text, never parsed as HTML.
        """
        page = self.openPage()
        markup = "<img src=x onerror=\"window.pwned=1\"><b>bold</b>"
        self.publish("news", {"html": markup})
        page.waitFor(f"{MESSAGES}.length === 1")
        self.assertIn(json.dumps(markup), page.evaluate(MESSAGES)[0])
        self.assertEqual(page.evaluate("document.querySelectorAll('#messages img, b').length"), 0)
        self.assertIsNone(page.evaluate("window.pwned"))

    def test_resumesAfterLostConnection(self) -> None:
        """
        After a lost connection the page reconnects, resumes with since and
        epoch (the hub answers C{recovered: true}), and shows every message
        once, in order, with no "missed" notice.
        """
        page = self.openPage()
        self.publish("news", {"n": 1})
        page.waitFor(f"{MESSAGES}.length === 1")
        page.evaluate("window.txwsHub.drop()")
        self.publish("news", {"n": 2})
        page.waitFor("window.txwsHub.lastRecovered === true", timeout=15)
        self.publish("news", {"n": 3})
        page.waitFor(f"{MESSAGES}.length >= 3")
        texts = page.evaluate(MESSAGES)
        self.assertEqual(len(texts), 3, texts)
        for n, text in enumerate(texts, 1):
            self.assertIn(f"#{n}", text)
            self.assertIn(f'{{"n":{n}}}', text)
        self.assertTrue(page.evaluate("document.getElementById('notice').hidden"))
        self.assertGreaterEqual(page.evaluate("window.txwsHub.reconnects"), 1)
        self.assertEqual(page.problems(), [])

    def test_missedMessagesNotice(self) -> None:
        """
        When the hub answers a resume with C{recovered: false} (here: an
        epoch that is not the channel's), the page shows that some messages
        were missed, and goes on showing new ones.
        """
        page = self.openPage()
        page.evaluate("window.txwsHub.channels.get('news').epoch = 'not-the-epoch'")
        page.evaluate("window.txwsHub.drop()")
        page.waitFor("window.txwsHub.lastRecovered === false", timeout=15)
        self.assertFalse(page.evaluate("document.getElementById('notice').hidden"))
        self.assertIn("missed", page.evaluate("document.getElementById('notice').textContent"))
        self.publish("news", {"after": "gap"})
        page.waitFor(f"{MESSAGES}.length === 1")
        self.assertIn('{"after":"gap"}', page.evaluate(MESSAGES)[0])

    def test_reconnectsAfterRestart(self) -> None:
        """
        When the server shuts down the page shows the 1001 close and keeps
        retrying; once a server is back on the same port it reconnects by
        itself, is told the epoch changed (history lost, so the "missed"
        notice shows), and shows new messages.
        """
        page = self.openPage()
        self.publish("news", {"before": "restart"})
        page.waitFor(f"{MESSAGES}.length === 1")
        self.assertEqual(self.hub.terminate(10), 0)
        page.waitFor("window.txwsHub.closeCodes[0] === 1001")
        page.waitFor("window.txwsHub.reconnects >= 2")
        page.waitFor("document.getElementById('status').textContent.startsWith('closed (')")
        self.hub = HubProcess(self, port=self.hub.port, directory=self.hub.directory)
        page.waitFor("window.txwsHub.lastRecovered === false", timeout=20)
        self.assertEqual(page.evaluate("document.getElementById('status').textContent"), "open")
        self.assertIn("missed", page.evaluate("document.getElementById('notice').textContent"))
        self.publish("news", {"after": "restart"})
        page.waitFor(f"{MESSAGES}.length === 2")
        self.assertIn('{"after":"restart"}', page.evaluate(MESSAGES)[1])


class PageCompressionTests(TestCase):
    """
    The browser's own permessage-deflate (RFC 7692) with the hub: Chromium
    offers it, the hub accepts it without context takeover either way
    (C{HUB_DEFLATE_POLICY}) and compresses each publication of 64 bytes or
    more (once for every subscriber); the messages arrive intact; with
    C{--no-deflate} nothing is negotiated.  The page is reached through a
    relay (L{RecordingRelay}) that records the frames the hub sent, which
    the test inflates with C{zlib} on its own.
    """

    skip = chromiumMissing()

    #: Published messages: long and compressible (well over the 64-byte
    #: threshold), short (under it, so sent as they are), non-ASCII text,
    #: and 40 KiB of records.
    MESSAGES: list[object] = [
        {"text": "breaking news, " * 200},
        {"n": 1},
        {"city": "Zürich", "note": "€ 1 — ünïcødé ✓ 😀 " * 30},
        [{"id": i, "name": f"item {i}", "tags": ["a", "b"], "ok": i % 2 == 0}
         for i in range(800)],
        {"n": 2},
    ]

    def publishAll(self, hub: HubProcess) -> None:
        """
        Publish L{MESSAGES} with signed HTTP (the development key file's
        secret, the seed scheme).
        """
        with open(hub.devKeyFile) as f:
            [secret] = json.load(f).values()
        for data in self.MESSAGES:
            body = json.dumps({"channel": "news", "data": data}).encode("utf-8")
            answer = hub.post("/publish", body, seedHeaders(secret, body))
            self.assertEqual(answer.status_code, 200, answer.text)

    def received(self, page: BrowserPage) -> list[object]:
        """
        @return: the C{data} of every hub message the page's WebSocket
            received, as DevTools saw the frames (after inflation).
        """
        found = []
        for method, params in page.events:
            if method == "Network.webSocketFrameReceived":
                message = json.loads(params["response"]["payloadData"])
                if message.get("type") == "message":
                    found.append(message["data"])
        return found

    async def deliver(self, *arguments: str) -> tuple[Any, bytes, list[tuple[bool, bytes]]]:
        """
        Start the hub with C{arguments} behind a relay, open the page
        through the relay, publish L{MESSAGES} and wait until the page shows
        them all, as sent, without script errors.

        @return: the page's C{ws.extensions}, the head of the hub's 101
            answer, and every text frame the hub sent on the WebSocket as
            C{(RSV1 set, payload)}.
        """
        hub = HubProcess(self, *arguments)
        relay = RecordingRelay("127.0.0.1", hub.port)
        port = reactor.listenTCP(0, relay, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        browser = await deferToThread(Chromium)
        self.addCleanup(browser.close)
        base = f"http://127.0.0.1:{port.getHost().port}"
        page = await deferToThread(openPage, browser, base, "news", True)
        await deferToThread(self.publishAll, hub)
        await deferToThread(page.waitFor, f"{MESSAGES}.length === {len(self.MESSAGES)}")
        self.assertEqual(self.received(page), self.MESSAGES)
        self.assertEqual(page.problems(), [])
        extensions = await deferToThread(page.evaluate, "window.txwsHub.socket.extensions")
        [(head, data)] = relay.upgraded()
        frames, consumed, pending, error = parseFrames(data, False, 0, RSV1)
        self.assertEqual((consumed, pending, error), (len(data), None, None))
        text = [(bool(opcode & RSV1), payload) for _fin, opcode, payload in frames
                if opcode & 0x0F == 0x1]
        return extensions, head, text

    async def test_compressionNegotiated(self) -> None:
        """
        Chromium's offer gets the hub's answer (no context takeover both
        ways, 12-bit windows), which the page's C{ws.extensions} shows; the
        hub compressed exactly its messages of 64 bytes or more, each on
        its own (every one inflates with a fresh C{zlib} inflater), to less
        than a third of their size, and the browser got them intact.
        """
        answer = (
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=12; "
            "client_no_context_takeover; client_max_window_bits=12"
        )
        extensions, head, frames = await self.deliver()
        self.assertEqual(extensions, answer)
        self.assertIn(f"\r\nSec-WebSocket-Extensions: {answer}".encode(), head)
        inflated = []
        for compressed, payload in frames:
            if compressed:
                message = zlib.decompressobj(-12).decompress(payload + b"\x00\x00\xff\xff")
                self.assertGreaterEqual(len(message), 64)
            else:
                message = payload
                self.assertLess(len(message), 64)
            inflated.append(json.loads(message))
        self.assertEqual(
            [m["data"] for m in inflated if m["type"] == "message"], self.MESSAGES
        )
        wire = sum(len(p) for c, p in frames if c)
        self.assertLess(wire * 3, sum(len(json.dumps(m)) for m in inflated))
        self.assertGreaterEqual(sum(c for c, _ in frames), 3)

    async def test_noDeflate(self) -> None:
        """
        With C{--no-deflate} the hub declines Chromium's offer: no
        extension, no compressed frame, and the messages arrive all the
        same.
        """
        extensions, head, frames = await self.deliver("--no-deflate")
        self.assertEqual(extensions, "")
        self.assertNotIn(b"Sec-WebSocket-Extensions", head)
        self.assertEqual([c for c, _ in frames], [False] * len(frames))
        self.assertGreater(len(frames), len(self.MESSAGES))


class MountedPageTests(TestCase):
    """
    The page works when the hub is mounted under a prefix of another site
    (the hub as a library): it finds C{ws} relative to its own URL.
    """

    skip = chromiumMissing()

    async def test_pageUnderPrefix(self) -> None:
        """
        Served at C{/hub/} of a site, the page subscribes at C{/hub/ws} and
        shows a message published to C{/hub/publish}.
        """
        secret = "prefix-test-secret-" + "d" * 30
        hub = Hub(KeyRing({"k": secret}), reactor=reactor)
        hub.startService()
        self.addCleanup(hub.stopService)
        root = Resource()
        root.putChild(b"hub", hub.resource())
        port = reactor.listenTCP(0, HMACSite(root), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        base = f"http://127.0.0.1:{port.getHost().port}/hub/"
        browser = await deferToThread(Chromium)
        self.addCleanup(browser.close)
        page = await deferToThread(browser.newPage)
        await deferToThread(page.navigate, base + "?channel=news")
        await deferToThread(
            page.waitFor, "document.getElementById('status').textContent === 'open'"
        )
        await deferToThread(page.waitFor, "window.txwsHub.channels.has('news')")
        self.assertEqual(
            await deferToThread(page.evaluate, "window.txwsHub.socket.url"),
            f"ws://127.0.0.1:{port.getHost().port}/hub/ws?channel=news",
        )
        body = b'{"channel":"news","data":{"mounted":true}}'
        answer = await deferToThread(
            requests.post, base + "publish", data=body, timeout=10,
            headers={"Content-Type": "application/json", **seedHeaders(secret, body)},
        )
        self.assertEqual(answer.json(), {"channel": "news", "seq": 1, "delivered": 1})
        await deferToThread(page.waitFor, f"{MESSAGES}.length === 1")
        self.assertIn('{"mounted":true}', (await deferToThread(page.evaluate, MESSAGES))[0])
