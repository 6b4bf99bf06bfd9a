"""
The programs in C{examples/}, each run as a real process on 127.0.0.1 and
checked for what its docstring and C{examples/README.md} promise, so that
none rots; and a check that every example has a test here and a line in
the README.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path
from typing import Any

import treq
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater

from tests.peers.harness import (
    PeerProcess,
    RecordingClientProtocol,
    bounded,
    dropConnections,
    reactor,
)
from tests.support import upgradeRequest
from tests.typedtrial import SynchronousTestCase, TestCase
from txws import connect

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def runExample(testCase: TestCase, name: str, *args: str) -> PeerProcess:
    """
    Start C{python examples/NAME ARGS} with the checkout importable and no
    proxy variables; the test's cleanup stops it.

    @return: the process.
    """
    process = PeerProcess(name, stdinStops=False)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONIOENCODING"] = "utf-8"
    reactor.spawnProcess(
        process, sys.executable, [sys.executable, "-u", str(EXAMPLES / name), *args],
        env=env, path=str(ROOT),
    )
    testCase.addCleanup(process.stop)
    return process


async def serving(
    testCase: TestCase, name: str, pattern: str, *args: str
) -> tuple[PeerProcess, int]:
    """
    Start a server example and wait for the line announcing its port.

    @param pattern: a regular expression whose first group is the port.
    @return: the process and the port.
    """
    process = runExample(testCase, name, *args)
    match = await process.waitForLine(pattern)
    return process, int(match.group(1))


async def finished(process: PeerProcess) -> int:
    """
    @return: the exit status of a process expected to end by itself.
    """
    code: int = await bounded(process.ended)
    return code


async def openClient(testCase: TestCase, url: str, **arguments: Any) -> RecordingClientProtocol:
    """
    @return: an open recording txws client, dropped at the test's end.
    """
    protocol = await bounded(
        connect(url, protocolClass=RecordingClientProtocol, reactor=reactor, proxy=None,
                **arguments)
    )
    assert isinstance(protocol, RecordingClientProtocol)
    testCase.addCleanup(dropConnections, protocol.factory)
    return protocol


async def nextMatching(client: RecordingClientProtocol, pattern: bytes) -> bytes:
    """
    @return: the first message from now on matching C{pattern} (others,
        such as join notices or ticks, are skipped).
    """
    while True:
        payload, _ = await client.nextMessage()
        if re.search(pattern, payload):
            return payload


class EchoExampleTests(TestCase):
    """
    C{echo_server.py} and C{echo_client.py}.
    """

    async def test_clientGetsEchoes(self) -> None:
        """
        The client sends each message given, prints each echo, closes with
        1000 and exits 0; the server sees the clean close.
        """
        server, port = await serving(self, "echo_server.py", r"on ws://127\.0\.0\.1:(\d+)/")
        client = runExample(self, "echo_client.py", f"ws://127.0.0.1:{port}/", "hello", "wörld")
        self.assertEqual(await finished(client), 0, "\n".join(client.lines))
        self.assertEqual(
            client.lines, ["received: hello", "received: wörld", "closed with 1000"]
        )
        await server.waitForLine(r"^closed: clean=True code=1000$")

    async def test_clientReportsRefusal(self) -> None:
        """
        Against a port where nothing listens, the client exits non-zero
        saying why.
        """
        server, port = await serving(self, "echo_server.py", r"on ws://127\.0\.0\.1:(\d+)/")
        await server.stop()
        client = runExample(self, "echo_client.py", f"ws://127.0.0.1:{port}/", "hello")
        self.assertNotEqual(await finished(client), 0)
        self.assertIn(b"ConnectionRefusedError", client.stderr)


class _SilentMember(Protocol):
    """
    A chat member that sends the opening handshake, then stops reading.
    """

    def __init__(self) -> None:
        self.received = b""
        self.grew: Deferred[None] | None = None
        self.waitingFor = b""

    def connectionMade(self) -> None:
        self.transport.write(upgradeRequest("/?name=bob"))  # type: ignore[union-attr]

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.grew is not None and self.waitingFor in self.received:
            grew, self.grew = self.grew, None
            grew.callback(None)

    def waitFor(self, text: bytes) -> Deferred[None]:
        self.waitingFor = text
        self.grew = Deferred()
        return bounded(self.grew)


class ChatExampleTests(TestCase):
    """
    C{chat_server.py}: fan-out, and a slow member that skips messages
    instead of holding memory or slowing the others.
    """

    async def test_fanOutReachesEveryMember(self) -> None:
        """
        A message from one member reaches both members, named.
        """
        _, port = await serving(self, "chat_server.py", r"on ws://127\.0\.0\.1:(\d+)/")
        alice = await openClient(self, f"ws://127.0.0.1:{port}/?name=alice")
        bob = await openClient(self, f"ws://127.0.0.1:{port}/?name=bob")
        await nextMatching(alice, rb"^\* bob joined \(2 here\)$")
        alice.sendMessage(b"hi everyone")
        for member in (alice, bob):
            self.assertEqual(await nextMatching(member, rb"hi everyone"), b"alice: hi everyone")

    async def test_slowMemberSkipsAndIsToldHowMany(self) -> None:
        """
        While one member does not read, the others get every message (10 MiB
        in all) and the slow one skips messages, which the server logs once;
        once it reads again, it is told how many it missed.
        """
        server, port = await serving(
            self, "chat_server.py", r"on ws://127\.0\.0\.1:(\d+)/", "--soft-limit", "65536"
        )
        bob = _SilentMember()
        await bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), bob))
        self.addCleanup(lambda: bob.transport.abortConnection())  # type: ignore[union-attr]
        await bob.waitFor(b"bob joined")
        bob.transport.pauseProducing()  # type: ignore[union-attr]
        alice = await openClient(self, f"ws://127.0.0.1:{port}/?name=alice")
        await nextMatching(alice, rb"alice joined")
        chunk = b"x" * (64 * 1024)
        for number in range(160):
            alice.sendMessage(b"%d " % number + chunk)
            echoed = await nextMatching(alice, rb"^alice: ")
            self.assertTrue(echoed.startswith(b"alice: %d x" % number))
        bob.transport.resumeProducing()  # type: ignore[union-attr]
        # Until bob's queue has drained, what alice sends is skipped for him.
        for _ in range(200):
            alice.sendMessage(b"done")
            await nextMatching(alice, rb"^alice: done$")
            if b"alice: done" in bob.received:
                break
            await deferLater(reactor, 0.05)
        self.assertIn(b"alice: done", bob.received)
        missed = re.search(rb"\* you missed (\d+) messages", bob.received)
        assert missed is not None, "the slow member was not told"
        self.assertGreater(int(missed.group(1)), 0)
        await server.waitForLine(r"^bob reads too slowly: skipping messages$")
        self.assertEqual(sum("reads too slowly" in line for line in server.lines), 1)
        self.assertLess(bob.received.count(b"alice: ") - bob.received.count(b"alice: done"), 160)


class WebSiteExampleTests(TestCase):
    """
    C{web_site.py} with C{signed_request.py}: a WebSocket and an HMAC-guarded
    API on one port.
    """

    def keyFile(self, secret: str) -> str:
        """
        @return: a key file (mode 0600) with the key C{test}.
        """
        path = os.path.abspath(self.mktemp())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"test": secret}, f)
        return path

    async def startSite(self, *args: str) -> tuple[PeerProcess, int]:
        return await serving(self, "web_site.py", r"site on http://127\.0\.0\.1:(\d+)/", *args)

    async def test_signedRequestAccepted(self) -> None:
        """
        A request signed with the site's key gets 200 and the API sees who
        signed it and the payload.
        """
        keys = self.keyFile("a" * 40)
        _, port = await self.startSite("--key-file", keys)
        client = runExample(self, "signed_request.py", f"http://127.0.0.1:{port}/api/",
                            "--key-file", keys, "--json", '{"hello": "world"}')
        self.assertEqual(await finished(client), 0, client.stderr)
        status, _, body = client.lines[0].partition(" ")
        self.assertEqual(status, "200")
        self.assertEqual(
            json.loads(body),
            {"signedBy": "test", "scheme": "v2", "received": {"hello": "world"}},
        )

    async def test_seedSchemeAccepted(self) -> None:
        """
        The seed (Django/DRF) scheme is accepted too.
        """
        keys = self.keyFile("b" * 40)
        _, port = await self.startSite("--key-file", keys)
        client = runExample(self, "signed_request.py", f"http://127.0.0.1:{port}/api/",
                            "--key-file", keys, "--scheme", "seed")
        self.assertEqual(await finished(client), 0, client.stderr)
        self.assertIn('"scheme": "seed"', client.lines[0])

    async def test_unsignedAndWronglySignedRefused(self) -> None:
        """
        An unsigned POST gets 401 with a JSON reason; one signed with another
        secret gets 401 too, and the client exits 1.
        """
        _, port = await self.startSite("--key-file", self.keyFile("c" * 40))
        url = f"http://127.0.0.1:{port}/api/"
        response = await bounded(treq.post(url, b"{}", persistent=False))
        self.assertEqual(response.code, 401)
        body: bytes = await bounded(treq.content(response))
        self.assertEqual(json.loads(body)["code"], "missing_headers")
        client = runExample(self, "signed_request.py", f"http://127.0.0.1:{port}/api/",
                            "--key-file", self.keyFile("d" * 40))
        self.assertEqual(await finished(client), 1)
        self.assertTrue(client.lines[0].startswith("401 "), client.lines)

    async def test_webSocketAndPageBeside(self) -> None:
        """
        C{/ws} is a WebSocket (echo) and C{/} a plain page, on the same port.
        """
        _, port = await self.startSite("--key-file", self.keyFile("e" * 40))
        client = await openClient(self, f"ws://127.0.0.1:{port}/ws")
        client.sendMessage(b"beside the API", True)
        self.assertEqual(await client.nextMessage(), (b"beside the API", True))
        response = await bounded(treq.get(f"http://127.0.0.1:{port}/", persistent=False))
        self.assertEqual(response.code, 200)
        self.assertIn(b"/ws", await bounded(treq.content(response)))

    async def test_developmentKeyFile(self) -> None:
        """
        Without C{--key-file} the site writes a random key to a private
        file, prints its path (not the secret), and signs with it work.
        """
        site, port = await self.startSite()
        path = (await site.waitForLine(r"^key file: (.+)$")).group(1)
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            (secret,) = json.load(f).values()
        self.assertFalse(any(secret in line for line in site.lines))
        client = runExample(self, "signed_request.py", f"http://127.0.0.1:{port}/api/",
                            "--key-file", path)
        self.assertEqual(await finished(client), 0, client.stderr)
        self.assertIn('"signedBy": "example"', client.lines[0])


class TLSExampleTests(TestCase):
    """
    C{tls_echo_server.py} with C{echo_client.py --ca}.
    """

    async def test_clientVerifiesAgainstGeneratedCA(self) -> None:
        """
        The client, trusting only the CA the server generated, echoes over
        C{wss://localhost}; trusting the system's authorities instead, it
        fails verification.
        """
        caFile = os.path.abspath(self.mktemp())
        _, port = await serving(self, "tls_echo_server.py", r"on wss://localhost:(\d+)/",
                                "--ca-file", caFile)
        url = f"wss://localhost:{port}/"
        client = runExample(self, "echo_client.py", url, "secret hello", "--ca", caFile)
        self.assertEqual(await finished(client), 0, client.stderr)
        self.assertEqual(client.lines, ["received: secret hello", "closed with 1000"])
        untrusting = runExample(self, "echo_client.py", url, "hello")
        self.assertNotEqual(await finished(untrusting), 0)
        self.assertIn(b"certificate verify failed", untrusting.stderr)
        self.assertEqual(untrusting.lines, [])


class WrapExampleTests(TestCase):
    """
    C{wrap_server.py}: a line protocol over WebSocket and over TCP.
    """

    async def test_sameProtocolBothWays(self) -> None:
        """
        Binary messages carry the stream over WebSocket (also as base64
        text); plain TCP reaches the same protocol.
        """
        process = runExample(self, "wrap_server.py")
        wsPort = int((await process.waitForLine(r"on ws://127\.0\.0\.1:(\d+)/")).group(1))
        tcpPort = int((await process.waitForLine(r"on tcp://127\.0\.0\.1:(\d+)$")).group(1))
        client = await openClient(self, f"ws://127.0.0.1:{wsPort}/", protocols=["binary"])
        client.sendMessage(b"hello\r\n", True)
        self.assertEqual(await client.nextMessage(), (b"HELLO\r\n", True))
        textClient = await openClient(self, f"ws://127.0.0.1:{wsPort}/", protocols=["base64"])
        textClient.sendMessage(base64.b64encode(b"as text\r\n"))
        payload, isBinary = await textClient.nextMessage()
        self.assertEqual((base64.b64decode(payload), isBinary), (b"AS TEXT\r\n", False))

        class Line(Protocol):
            def __init__(self) -> None:
                self.got: Deferred[bytes] = Deferred()

            def dataReceived(self, data: bytes) -> None:
                self.got.callback(data)

        line = Line()
        await bounded(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", tcpPort), line))
        self.addCleanup(lambda: line.transport.loseConnection())  # type: ignore[union-attr]
        line.transport.write(b"over tcp\r\n")  # type: ignore[union-attr]
        self.assertEqual(await bounded(line.got), b"OVER TCP\r\n")


class AutobahnExampleTests(TestCase):
    """
    C{autobahn_broadcast.py}, run as it is (txws) and with its import line
    switched to Autobahn: the same behaviour from the same code.
    """

    OURS = "from txws import WebSocketServerFactory, WebSocketServerProtocol\n"
    THEIRS = (
        "from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol\n"
    )

    def autobahnCopy(self) -> str:
        """
        @return: a copy of the example with Autobahn's import line, which is
            checked to be the only line that differs.
        """
        source = (EXAMPLES / "autobahn_broadcast.py").read_text()
        self.assertEqual(source.count(self.OURS), 1)
        variant = source.replace(self.OURS, self.THEIRS)
        changed = [a for a, b in zip(source.splitlines(), variant.splitlines(), strict=True)
                   if a != b]
        self.assertEqual(changed, [self.OURS.strip()])
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "autobahn_broadcast.py").write_text(variant)
        return str(directory / "autobahn_broadcast.py")

    async def checkBroadcast(self, process: PeerProcess) -> None:
        port = int((await process.waitForLine(r"BroadcastServerFactory starting on (\d+)"))
                   .group(1))
        first = await openClient(self, f"ws://127.0.0.1:{port}/")
        second = await openClient(self, f"ws://127.0.0.1:{port}/")
        await process.waitForLine(r"registered client tcp4:127\.0\.0\.1:\d+")
        await nextMatching(second, rb"^tick \d+$")
        first.sendMessage("grüße".encode())
        for client in (first, second):
            message = await nextMatching(client, rb"from")
            self.assertRegex(message.decode(), r"^grüße from tcp4:127\.0\.0\.1:\d+$")

    async def test_runsOnTxws(self) -> None:
        """
        As shipped, on txws: messages and ticks reach every client.
        """
        await self.checkBroadcast(runExample(self, "autobahn_broadcast.py", "0", "0.2"))

    async def test_sameFileRunsOnAutobahn(self) -> None:
        """
        With only the import line changed, the file runs on Autobahn and
        behaves the same.
        """
        path = self.autobahnCopy()
        process = PeerProcess("autobahn_broadcast (Autobahn)", stdinStops=False)
        reactor.spawnProcess(process, sys.executable, [sys.executable, "-u", path, "0", "0.2"],
                             env={**os.environ, "PYTHONPATH": str(ROOT),
                                  "PYTHONIOENCODING": "utf-8"})
        self.addCleanup(process.stop)
        await self.checkBroadcast(process)


#: Each example and the test class that runs it.
COVERED: dict[str, type[TestCase]] = {
    "echo_server.py": EchoExampleTests,
    "echo_client.py": EchoExampleTests,
    "chat_server.py": ChatExampleTests,
    "web_site.py": WebSiteExampleTests,
    "signed_request.py": WebSiteExampleTests,
    "tls_echo_server.py": TLSExampleTests,
    "wrap_server.py": WrapExampleTests,
    "autobahn_broadcast.py": AutobahnExampleTests,
}


class EveryExampleTestedTests(SynchronousTestCase):
    """
    A new example without a test (or without a README line) fails here.
    """

    def test_everyExampleHasATest(self) -> None:
        """
        Every file in C{examples/} but the README is an example listed in
        L{COVERED}, and each listed example exists and is run by its class's
        tests (its name appears in the class's source).
        """
        files = {p.name for p in EXAMPLES.iterdir() if p.is_file() and p.name != "README.md"}
        self.assertEqual(files, set(COVERED))
        source = Path(__file__).read_text()
        for name, case in COVERED.items():
            start = source.index(f"class {case.__name__}(")
            end = source.find("\nclass ", start + 1)
            self.assertIn(f'"{name}"', source[start:end], f"{case.__name__} never runs {name}")

    def test_everyExampleInReadme(self) -> None:
        """
        C{examples/README.md} says how to run each example.
        """
        readme = (EXAMPLES / "README.md").read_text()
        for name in COVERED:
            self.assertIn(f"examples/{name}", readme)
