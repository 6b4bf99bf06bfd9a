"""
Tests for the hub's command line, C{python -m txws.hub} (C{txws.hub.__main__}):
the C{token} and C{publish} commands.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
import time
from typing import Any

from treq.testing import RequestTraversalAgent
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.web.iweb import IResponse
from twisted.web.resource import IResource

from tests.hmac_support.agents import RecordingAgent, Sent
from tests.hmac_support.resources import RecordingResource
from tests.support import freePort
from tests.typedtrial import SynchronousTestCase
from txws.hmacauth import HMACGuard, KeyRing, canonicalJSON, verifySeed, verifyV2
from txws.hub.__main__ import (
    DEFAULT_TTL,
    DEFAULT_URL,
    TIMEOUT,
    parseArguments,
    publish,
    token,
)
from txws.hub.devkeys import DEV_KEY_FILE
from txws.hub.tokens import TokenError, verifyToken

SECRET = "cli-secret-do-not-print"
KEYS = {"k1": SECRET.encode()}
NOW = 1_790_000_000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CommandLineCase(SynchronousTestCase):
    """
    Key files in a temporary directory, captured output, a clock at L{NOW}.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.mkdir(self.directory)
        self.keyFile = self.writeKeys({"k1": SECRET})
        self.clock = Clock()
        self.clock.advance(NOW)
        self.stdout = io.BytesIO()
        self.textOut = io.StringIO()
        self.stderr = io.StringIO()

    def writeKeys(self, keys: dict[str, str], mode: int = 0o600,
                  name: str = "keys.json") -> str:
        path = os.path.join(self.directory, name)
        with open(path, "w") as keyFile:
            json.dump(keys, keyFile)
        os.chmod(path, mode)
        return path

    def inDirectory(self) -> None:
        here = os.getcwd()
        os.chdir(self.directory)
        self.addCleanup(os.chdir, here)

    def assertOneLine(self, fragment: str) -> str:
        lines = self.stderr.getvalue().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("python -m txws.hub: "), lines[0])
        self.assertIn(fragment, lines[0])
        self.assertNotIn(SECRET, lines[0])
        self.stderr.seek(0)
        self.stderr.truncate()
        return lines[0]


class UsageTests(CommandLineCase):
    """
    Usage errors exit with status 1 and one error line after the usage.
    """

    def assertUsageError(self, *argv: str, fragment: str = "") -> None:
        captured = io.StringIO()
        self.patch(sys, "stderr", captured)
        with self.assertRaises(SystemExit) as raised:
            parseArguments(argv)
        self.assertEqual(raised.exception.code, 1)
        lines = captured.getvalue().splitlines()
        errors = [line for line in lines if ": error: " in line]
        self.assertEqual(len(errors), 1, lines)
        self.assertTrue(errors[0].startswith("python -m txws.hub"), errors[0])
        self.assertIn(fragment, errors[0])

    def test_commands(self) -> None:
        """
        A command is required and must be known.
        """
        self.assertUsageError()
        self.assertUsageError("post", "news", "{}")
        self.assertUsageError("--channel", "news")

    def test_token(self) -> None:
        """
        C{token} needs a valid C{--channel} and a positive finite C{--ttl}.
        """
        self.assertUsageError("token", fragment="--channel")
        self.assertUsageError("token", "--channel", "has space", fragment="valid channel name")
        self.assertUsageError("token", "--channel", "x" * 129, fragment="valid channel name")
        for ttl in ["0", "-5", "nan", "inf", "soon", ""]:
            self.assertUsageError("token", "--channel", "news", "--ttl", ttl,
                                  fragment="positive number of seconds")
        self.assertUsageError("token", "--channel", "news", "extra")

    def test_publish(self) -> None:
        """
        C{publish} needs a valid CHANNEL and DATA that is JSON text (no NaN),
        and a known scheme.
        """
        self.assertUsageError("publish", fragment="CHANNEL")
        self.assertUsageError("publish", "news", fragment="DATA")
        self.assertUsageError("publish", "bad channel!", "{}", fragment="valid channel name")
        for data in ["{", "hello", "{'a': 1}", "NaN", "[Infinity]", "-Infinity", ""]:
            self.assertUsageError("publish", "news", "--", data, fragment="not valid JSON")
        self.assertUsageError("publish", "news", "[" * 100_000, fragment="JSON")
        self.assertUsageError("publish", "--scheme", "v3", "news", "{}", fragment="--scheme")
        self.assertUsageError("publish", "news", "{}", "more")

    def test_arguments(self) -> None:
        """
        Every documented option parses; the defaults are the documented ones.
        """
        arguments = parseArguments(["token", "--channel", "private-a", "--ttl", "60.5",
                                    "--key-file", "f", "--key-id", "k"])
        self.assertEqual((arguments.command, arguments.channel, arguments.ttl,
                          arguments.keyFile, arguments.keyId),
                         ("token", "private-a", 60.5, "f", "k"))
        defaults = parseArguments(["token", "--channel", "c"])
        self.assertEqual((defaults.ttl, defaults.keyFile, defaults.keyId),
                         (DEFAULT_TTL, DEV_KEY_FILE, None))
        self.assertEqual(DEFAULT_TTL, 300)
        arguments = parseArguments(["publish", "--url", "https://hub.example/publish",
                                    "--key-file", "f", "--key-id", "k", "--scheme", "seed",
                                    "news", '{"a": [1, null]}'])
        self.assertEqual((arguments.url, arguments.keyFile, arguments.keyId, arguments.scheme,
                          arguments.channel, arguments.data.value),
                         ("https://hub.example/publish", "f", "k", "seed", "news",
                          {"a": [1, None]}))
        defaults = parseArguments(["publish", "news", "null"])
        self.assertEqual((defaults.url, defaults.keyFile, defaults.keyId, defaults.scheme,
                          defaults.data.value),
                         (DEFAULT_URL, DEV_KEY_FILE, None, "v2", None))
        self.assertEqual(DEFAULT_URL, "http://127.0.0.1:8080/publish")
        self.assertEqual(parseArguments(["publish", "news", "-1"]).data.value, -1)


class TokenTests(CommandLineCase):
    """
    C{python -m txws.hub token} prints a token that L{verifyToken} accepts.
    """

    def mint(self, *argv: str) -> int:
        return token(parseArguments(["token", *argv]), self.textOut, self.stderr, NOW + 0.25)

    def test_prints(self) -> None:
        """
        One line on stdout, nothing on stderr, status 0; the token verifies
        for its channel and lives C{--ttl} seconds, rounded up.
        """
        status = self.mint("--channel", "private-user-42", "--ttl", "60",
                          "--key-file", self.keyFile)
        self.assertEqual(status, 0)
        self.assertEqual(self.stderr.getvalue(), "")
        output = self.textOut.getvalue()
        self.assertTrue(output.endswith("\n"))
        self.assertEqual(output.count("\n"), 1)
        minted = output.strip()
        self.assertEqual(verifyToken(KEYS, minted, "private-user-42", NOW + 60), "k1")
        with self.assertRaises(TokenError) as raised:
            verifyToken(KEYS, minted, "private-user-42", NOW + 61)
        self.assertEqual(raised.exception.code, "token_expired")
        self.assertEqual(minted.split(".")[3], str(math.ceil(NOW + 0.25 + 60)))

    def test_defaultTTL(self) -> None:
        """
        Without C{--ttl} the token lives 300 seconds.
        """
        self.assertEqual(self.mint("--channel", "private-a", "--key-file", self.keyFile), 0)
        self.assertEqual(self.textOut.getvalue().split(".")[3], str(NOW + 301))

    def test_keyId(self) -> None:
        """
        C{--key-id} picks a key of a file that holds several, and is
        required then.
        """
        several = self.writeKeys({"old": "o-secret", "new": "n-secret"}, name="several.json")
        self.assertEqual(self.mint("--channel", "private-a", "--key-file", several,
                                  "--key-id", "old"), 0)
        self.assertEqual(verifyToken(KeyRing({"old": "o-secret"}), self.textOut.getvalue().strip(),
                                     "private-a", NOW), "old")
        self.assertEqual(self.mint("--channel", "private-a", "--key-file", several), 1)
        self.assertOneLine("choose one by key id")
        self.assertEqual(self.mint("--channel", "private-a", "--key-file", several,
                                  "--key-id", "nope"), 1)
        self.assertOneLine("'nope'")

    def test_defaultKeyFile(self) -> None:
        """
        Without C{--key-file} the development key file in the working
        directory is used.
        """
        self.writeKeys({"dev": SECRET}, name=DEV_KEY_FILE)
        self.inDirectory()
        self.assertEqual(self.mint("--channel", "private-a"), 0)
        self.assertEqual(verifyToken({"dev": SECRET.encode()}, self.textOut.getvalue().strip(),
                                     "private-a", NOW), "dev")

    def test_missingKeyFile(self) -> None:
        """
        A missing development key file is one line saying how to get one; a
        missing named file names it.  Neither is created.
        """
        self.inDirectory()
        self.assertEqual(self.mint("--channel", "private-a"), 1)
        line = self.assertOneLine(DEV_KEY_FILE)
        self.assertIn("No such file", line)
        self.assertIn("--key-file", line)
        self.assertIn("development hub", line)
        self.assertFalse(os.path.exists(DEV_KEY_FILE))
        missing = os.path.join(self.directory, "absent.json")
        self.assertEqual(self.mint("--channel", "private-a", "--key-file", missing), 1)
        line = self.assertOneLine(missing)
        self.assertIn("--key-file", line)
        self.assertEqual(self.textOut.getvalue(), "")

    def test_unusableKeyFile(self) -> None:
        """
        A key file other users may read, or that is not a key file, is
        refused with one line; a key id that cannot sign tokens too.
        """
        unsafe = self.writeKeys({"k1": SECRET}, 0o644, name="unsafe.json")
        self.assertEqual(self.mint("--channel", "private-a", "--key-file", unsafe), 1)
        self.assertOneLine("chmod 600")
        dotted = self.writeKeys({"a.b": SECRET}, name="dotted.json")
        self.assertEqual(self.mint("--channel", "private-a", "--key-file", dotted), 1)
        self.assertOneLine("'.'")
        self.assertEqual(self.textOut.getvalue(), "")


class PublishTests(CommandLineCase):
    """
    C{python -m txws.hub publish} POSTs a signed canonical JSON body.
    """

    def setUp(self) -> None:
        super().setUp()
        self.resource = RecordingResource()
        self.guard = HMACGuard(self.resource, KEYS, reactor=self.clock)

    def arguments(self, *argv: str) -> Any:
        return parseArguments(["publish", *argv])

    def invoke(self, *argv: str, agent: Any = None) -> int:
        transport = agent if agent is not None else RequestTraversalAgent(IResource(self.guard))
        status: int = self.successResultOf(
            publish(self.clock, self.arguments(*argv), transport, self.stdout, self.stderr))
        return status

    def record(self, *argv: str) -> Sent:
        recorder = RecordingAgent()
        publish(self.clock, self.arguments(*argv), recorder, self.stdout, self.stderr)
        self.assertEqual(self.stderr.getvalue(), "")
        [sent] = recorder.sent
        return sent

    def test_v2Request(self) -> None:
        """
        By default the request goes to the default URL, signed with v2 over
        the method, host, path, body and clock time; the body is the
        canonical JSON of C{{"channel", "data"}}, sent with its length.
        """
        sent = self.record("--key-file", self.keyFile, "news", '{"title": "h\u00e9llo", "n": 1}')
        body = canonicalJSON({"channel": "news", "data": {"title": "h\u00e9llo", "n": 1}})
        self.assertEqual(body, b'{"channel":"news","data":{"n":1,"title":"h\\u00e9llo"}}')
        self.assertEqual((sent.method, sent.uri, sent.body, sent.producer.length),
                         (b"POST", b"http://127.0.0.1:8080/publish", body, len(body)))
        self.assertEqual(sent.header(b"Content-Type"), [b"application/json"])
        self.assertEqual(sent.header(b"Host"), [b"127.0.0.1:8080"])
        [authorization] = sent.header(b"Authorization")
        verified = verifyV2(KEYS, authorization, b"POST", b"127.0.0.1:8080", b"/publish",
                            body, NOW)
        self.assertEqual((verified.keyId, verified.timestamp), ("k1", NOW))
        self.assertEqual(sent.header(b"X-HMAC-Signature"), [])

    def test_seedRequest(self) -> None:
        """
        C{--scheme seed} sends the article's two headers, which verify.
        """
        sent = self.record("--key-file", self.keyFile, "--scheme", "seed",
                           "--url", "https://hub.example/x/publish", "private-a", "[1, 2]")
        self.assertEqual(sent.uri, b"https://hub.example/x/publish")
        self.assertEqual(sent.body, b'{"channel":"private-a","data":[1,2]}')
        verified = verifySeed(KEYS, sent.header(b"X-HMAC-Signature"),
                              sent.header(b"X-HMAC-Timestamp"), sent.body, NOW)
        self.assertEqual(verified.keyId, "k1")
        self.assertEqual(sent.header(b"Authorization"), [])

    def test_keyId(self) -> None:
        """
        C{--key-id} picks the signing key.
        """
        several = self.writeKeys({"a": "a-secret", "b": "b-secret"}, name="several.json")
        sent = self.record("--key-file", several, "--key-id", "b", "news", "{}")
        verified = verifyV2({"b": b"b-secret"}, sent.header(b"Authorization")[0], b"POST",
                            b"127.0.0.1:8080", b"/publish", sent.body, NOW)
        self.assertEqual(verified.keyId, "b")

    def test_scalarData(self) -> None:
        """
        Any JSON value is DATA, C{null} included.
        """
        for text, value in [("null", None), ("3.5", 3.5), ('"text"', "text"), ("true", True)]:
            sent = self.record("--key-file", self.keyFile, "news", text)
            self.assertEqual(json.loads(sent.body), {"channel": "news", "data": value})

    def test_success(self) -> None:
        """
        A 2xx answer: its body on stdout (newline-terminated), nothing on
        stderr, status 0; both schemes pass the guard.
        """
        for scheme in ("v2", "seed"):
            status = self.invoke("--key-file", self.keyFile, "--scheme", scheme,
                                 "news", '{"title": "hello"}')
            self.assertEqual(status, 0)
            output = self.stdout.getvalue()
            self.assertTrue(output.endswith(b"}\n"))
            self.assertEqual(json.loads(output)["scheme"], scheme)
            self.assertEqual(self.stderr.getvalue(), "")
            self.assertEqual(self.resource.seen[-1].body,
                             b'{"channel":"news","data":{"title":"hello"}}')
            self.assertEqual(self.resource.seen[-1].identity.keyId,  # type: ignore[union-attr]
                             "k1")
            self.stdout.seek(0)
            self.stdout.truncate()

    def test_refused(self) -> None:
        """
        A non-2xx answer: its body on stdout, one line on stderr, status 1.
        """
        wrong = self.writeKeys({"k1": "wrong"}, name="wrong.json")
        self.assertEqual(self.invoke("--key-file", wrong, "news", "{}"), 1)
        self.assertEqual(json.loads(self.stdout.getvalue())["code"], "bad_signature")
        self.assertEqual(self.assertOneLine("401"),
                         "python -m txws.hub: HTTP 401 Unauthorized (bad_signature)")
        self.assertEqual(self.resource.seen, [])

    def assertFails(self, *argv: str, fragment: str, agent: Any = None) -> str:
        self.assertEqual(self.invoke(*argv, agent=agent), 1)
        self.assertEqual(self.resource.seen, [])
        self.assertEqual(self.stdout.getvalue(), b"")
        return self.assertOneLine(fragment)

    def test_localErrors(self) -> None:
        """
        Missing, unsafe or ambiguous key files and non-HTTP URLs fail with
        one line and status 1, sending nothing.
        """
        self.inDirectory()
        line = self.assertFails("news", "{}", fragment=DEV_KEY_FILE)
        self.assertIn("development hub", line)
        self.assertFalse(os.path.exists(DEV_KEY_FILE))
        self.assertFails("--key-file", "/nonexistent/keys.json", "news", "{}",
                         fragment="/nonexistent/keys.json")
        unsafe = self.writeKeys({"k1": SECRET}, 0o644, name="unsafe.json")
        self.assertFails("--key-file", unsafe, "news", "{}", fragment="chmod 600")
        several = self.writeKeys({"a": "1", "b": "2"}, name="several.json")
        self.assertFails("--key-file", several, "news", "{}", fragment="key id")
        self.assertFails("--key-file", several, "--key-id", "c", "news", "{}", fragment="'c'")
        self.assertFails("--key-file", self.keyFile, "--url", "ftp://h/publish", "news", "{}",
                         fragment="URL")
        self.assertFails("--key-file", self.keyFile, "--url", "http://h\u00e9/publish",
                         "news", "{}", fragment="URL")

    def test_connectionError(self) -> None:
        """
        A transport error is one line and status 1.
        """
        class Refusing:
            def request(self, *args: Any) -> Deferred[IResponse]:
                return fail(ConnectionRefusedError("127.0.0.1"))

        self.assertFails("--key-file", self.keyFile, "news", "{}",
                         fragment="request failed", agent=Refusing())

    def test_timeout(self) -> None:
        """
        No answer within the timeout is one line and status 1.
        """
        result = publish(self.clock, self.arguments("--key-file", self.keyFile, "news", "{}"),
                         RecordingAgent(), self.stdout, self.stderr)
        self.clock.advance(TIMEOUT - 1)
        self.assertNoResult(result)
        self.clock.advance(1)
        self.assertEqual(self.successResultOf(result), 1)
        self.assertOneLine("no answer within 30 s")


class ProcessTests(SynchronousTestCase):
    """
    C{python -m txws.hub} as a real process: C{main} is wired to the
    commands and to the exit status.
    """

    def runModule(self, *argv: str) -> subprocess.CompletedProcess[str]:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [ROOT, *filter(None, [environment.get("PYTHONPATH")])])
        return subprocess.run([sys.executable, "-m", "txws.hub", *argv], capture_output=True,
                              text=True, env=environment, timeout=60, check=False)

    def test_token(self) -> None:
        """
        C{token} prints a token valid now, and exits with 0.
        """
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        keyFile = os.path.join(directory, "keys.json")
        with open(keyFile, "w") as output:
            json.dump({"k1": SECRET}, output)
        os.chmod(keyFile, 0o600)
        before = time.time()
        done = self.runModule("token", "--channel", "private-x", "--ttl", "30",
                              "--key-file", keyFile)
        self.assertEqual((done.returncode, done.stderr), (0, ""))
        minted = done.stdout.strip()
        self.assertEqual(verifyToken(KEYS, minted, "private-x", time.time()), "k1")
        self.assertGreaterEqual(int(minted.split(".")[3]), before + 30)

    def test_usageError(self) -> None:
        """
        A usage error exits with 1.
        """
        done = self.runModule("publish", "news", "{not json")
        self.assertEqual(done.returncode, 1)
        self.assertIn("not valid JSON", done.stderr)
        self.assertEqual(done.stdout, "")

    def test_publishRefused(self) -> None:
        """
        C{publish} to a port on 127.0.0.1 where nothing listens exits with
        1 after one line.
        """
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        keyFile = os.path.join(directory, "keys.json")
        with open(keyFile, "w") as output:
            json.dump({"k1": SECRET}, output)
        os.chmod(keyFile, 0o600)
        done = self.runModule("publish", "--key-file", keyFile,
                              "--url", f"http://127.0.0.1:{freePort()}/publish", "news", "{}")
        self.assertEqual(done.returncode, 1)
        lines = done.stderr.splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("request failed", lines[0])
        self.assertNotIn(SECRET, done.stderr)


class AgainstHubTests(CommandLineCase):
    """
    The commands against a real L{Hub} in memory: what C{publish} sends is
    what the hub's C{/publish} accepts, and what C{token} prints is what
    the hub admits.
    """

    def setUp(self) -> None:
        super().setUp()
        from txws.hub import Hub

        self.hub = Hub(KeyRing({"k1": SECRET}), reactor=self.clock)
        self.hub.startService()
        self.agent = RequestTraversalAgent(self.hub.resource())

    def test_publish(self) -> None:
        """
        Both schemes publish; the hub answers with the channel and its
        sequence number, printed as received.
        """
        for seq, scheme in enumerate(["v2", "seed"], 1):
            arguments = parseArguments(["publish", "--key-file", self.keyFile, "--scheme",
                                        scheme, "news", '{"title": "hello"}'])
            status = self.successResultOf(
                publish(self.clock, arguments, self.agent, self.stdout, self.stderr))
            self.assertEqual((status, self.stderr.getvalue()), (0, ""))
            answer = json.loads(self.stdout.getvalue())
            self.assertEqual((answer["channel"], answer["seq"]), ("news", seq))
            self.stdout.seek(0)
            self.stdout.truncate()

    def test_publishRefusedByHub(self) -> None:
        """
        A key the hub does not hold is refused with 401 and status 1.
        """
        other = self.writeKeys({"k1": "not-the-hub-secret"}, name="other.json")
        arguments = parseArguments(["publish", "--key-file", other, "news", "1"])
        status = self.successResultOf(
            publish(self.clock, arguments, self.agent, self.stdout, self.stderr))
        self.assertEqual(status, 1)
        self.assertOneLine("HTTP 401")

    def test_token(self) -> None:
        """
        The hub admits a printed token to its channel, until it expires.
        """
        arguments = parseArguments(["token", "--key-file", self.keyFile, "--channel",
                                    "private-user-42", "--ttl", "60"])
        self.assertEqual(token(arguments, self.textOut, self.stderr, self.clock.seconds()), 0)
        minted = self.textOut.getvalue().strip()
        self.assertIsNone(self.hub.checkToken(minted, "private-user-42"))
        refusal = self.hub.checkToken(minted, "private-user-43")
        self.assertEqual(refusal and refusal[0], "token_wrong_channel")
        self.clock.advance(60)
        refusal = self.hub.checkToken(minted, "private-user-42")
        self.assertEqual(refusal and refusal[0], "token_expired")
