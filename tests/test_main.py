"""
Tests for C{python -m txws}: the same server as C{twistd -n txws}, started
as a real process and reached over loopback by the txws client.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from tests.support import freePort
from tests.tlssupport import PROCESS_TIMEOUT, ROOT, startServer
from tests.typedtrial import SynchronousTestCase, TestCase
from txws.client import WebSocketClientProtocol, connect

#: The echo application on a free loopback port.
ECHO = ["--app", "echo", "--listen", "tcp:0:interface=127.0.0.1"]


class _Collector(WebSocketClientProtocol):
    def __init__(self) -> None:
        self.received: Deferred[tuple[bytes, bool]] = Deferred()
        self.closed: Deferred[tuple[bool, int | None]] = Deferred()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.received.callback((payload, isBinary))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.closed.callback((wasClean, code))


class _Silent(Protocol):
    """
    Opens a WebSocket, then reads but never answers (not even the Close).
    """

    def __init__(self) -> None:
        self.received = b""
        self.upgraded: Deferred[None] = Deferred()
        self.lost: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.transport.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if b"\r\n\r\n" in self.received and not self.upgraded.called:
            self.upgraded.callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lost.callback(None)


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "txws", *arguments],
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
    )


class MainTests(TestCase):
    """
    C{python -m txws [options]}.
    """

    async def echoThenStop(self, signalName: str) -> None:
        server = startServer(self, ECHO, viaModule=True)
        (port,) = await server.ready
        self.assertIn(f"ws://127.0.0.1:{port}/ws", server.text())
        client = await connect(f"ws://127.0.0.1:{port}/ws", protocolClass=_Collector)
        assert isinstance(client, _Collector)
        client.sendMessage("héllo".encode())
        payload = await client.received.addTimeout(10, reactor)
        self.assertEqual(payload, ("héllo".encode(), False))
        server.transport.signalProcess(signalName)
        wasClean, code = await client.closed.addTimeout(15, reactor)
        self.assertEqual((wasClean, code), (True, 1001))
        await server.stop()
        self.assertEqual((server.exitCode, server.signal), (0, None), server.text())
        self.assertNotIn("Traceback", server.text())
        self.assertNotIn("Unhandled", server.text())

    async def test_echoThenSIGTERM(self) -> None:
        """
        It echoes a text message over a real connection; on SIGTERM the
        client sees close code 1001 (going away) and the process exits 0
        without a traceback.
        """
        await self.echoThenStop("TERM")

    async def test_echoThenSIGINT(self) -> None:
        """
        Ctrl-C (SIGINT) stops it the same way.
        """
        await self.echoThenStop("INT")

    async def test_silentPeerAbortedAndSignalTwice(self) -> None:
        """
        A peer that never answers the Close is aborted once the close
        timeout has passed, so the process still exits 0 in bounded time;
        a second SIGTERM while it waits (Ctrl-C pressed twice) leaves no
        traceback.
        """
        server = startServer(self, [*ECHO, "--close-timeout", "2"], viaModule=True)
        (port,) = await server.ready
        silent = _Silent()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        await endpoint.connect(Factory.forProtocol(lambda: silent))
        await silent.upgraded.addTimeout(10, reactor)
        started = time.monotonic()
        server.transport.signalProcess("TERM")
        await deferLater(reactor, 0.5)
        self.assertTrue(server.running(), server.text())
        server.transport.signalProcess("TERM")
        await silent.lost.addTimeout(15, reactor)
        await server.stop()
        elapsed = time.monotonic() - started
        self.assertEqual((server.exitCode, server.signal), (0, None), server.text())
        self.assertNotIn("Traceback", server.text())
        self.assertIn("already shutting down", server.text())
        self.assertIn(b"\x88\x02\x03\xe9", silent.received)  # Close frame, 1001
        self.assertGreater(elapsed, 1.5)
        self.assertLess(elapsed, 2 + 2 + 5)

    def test_help(self) -> None:
        """
        C{--help} prints the plugin's options as plain text under its own
        name, and exits 0.
        """
        result = _run("--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(result.stdout.startswith("Usage: python -m txws [options]"))
        for option in ("--listen=", "--app=", "--tls-cert=", "--hmac-keys=", "--close-timeout="):
            self.assertIn(option, result.stdout)
        for markup in ("C{", "L{", "@param", "I{"):
            self.assertNotIn(markup, result.stdout)

    def test_everyOptionHelped(self) -> None:
        """
        Every option of the plugin has a help text of its own, in plain
        text (no epytext markup, no docstring fields), and the help shows
        each one with its text beside it.
        """
        from txws import tap

        options = tap.Options()
        names = sorted({name.rstrip("=") for name in options.longOpt})
        self.assertGreater(len(names), 20)
        help = _run("--help").stdout
        markup = re.compile(r"[CLIBU]\{|@(param|return|raise|ivar|type)\b")
        for name in names:
            doc = options.docs.get(name) or ""
            self.assertGreater(len(doc.split()), 2, f"--{name} has no help")
            self.assertIsNone(markup.search(doc), f"--{name}: {doc!r}")
            shown = re.search(rf"^\s+(?:-\w, )?--{re.escape(name)}=?\s+(\S.*)$", help, re.M)
            self.assertIsNotNone(shown, f"--{name} is not in the help")
        self.assertIsNone(markup.search(help))

    def test_usageError(self) -> None:
        """
        A bad option is one line on standard error and exit status 2,
        before anything listens.
        """
        result = _run("--app", "echo", "--listen", "bogus:1")
        self.assertEqual(result.returncode, 2)
        self.assertIn("python -m txws: --listen bogus:1: unsupported endpoint type", result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertNotIn("listening on", result.stdout)


#: Runs C{dev.py serve} with the twistd of the interpreter running the tests
#: (in CI and for C{python3 dev.py test} that is C{.venv/bin}, dev.py's own).
_DEV_SERVE = (
    "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import dev; "
    "dev.BIN = Path(sys.executable).parent; sys.exit(dev.serve(sys.argv[2:]))"
)


class DevServeTests(SynchronousTestCase):
    """
    The README's quick start, C{python3 dev.py serve} (C{twistd -n txws}
    under a forwarding parent), stopped as a terminal or a service manager
    stops it.
    """

    def serve(self) -> tuple[subprocess.Popen[bytes], int]:
        """
        Start the quick-start hub on a free port, in a process group of its
        own, and wait until it listens.

        @return: the C{dev.py} process and the port.
        """
        keys = os.path.abspath(self.mktemp())
        with open(keys, "w", opener=lambda path, flags: os.open(path, flags, 0o600)) as f:
            json.dump({"dev": "s" * 40}, f)
        port = freePort()
        process = subprocess.Popen(
            [sys.executable, "-c", _DEV_SERVE, ROOT, "--hmac-keys", keys,
             "--listen", f"tcp:{port}:interface=127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.addCleanup(self.killGroup, process)
        self.output = b""
        deadline = time.monotonic() + PROCESS_TIMEOUT
        assert process.stdout is not None
        while f"127.0.0.1:{port}/".encode() not in self.output:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
            chunk = os.read(process.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                self.fail(f"dev.py serve did not listen on {port}:\n{self.output.decode()}")
            self.output += chunk
        return process, port

    def killGroup(self, process: subprocess.Popen[bytes]) -> None:
        """
        Leave nothing behind, whatever the test did.
        """
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(PROCESS_TIMEOUT)

    def stoppedCleanly(self, process: subprocess.Popen[bytes], port: int) -> None:
        """
        The process exits 0 without a traceback, no process of its group
        is left, and the port can be bound again.
        """
        rest, _ = process.communicate(timeout=PROCESS_TIMEOUT)
        output = (self.output + rest).decode("utf-8", "replace")
        self.assertEqual(process.returncode, 0, output)
        self.assertNotIn("Traceback", output)
        self.assertIn("Main loop terminated", output)
        with self.assertRaises(ProcessLookupError):
            os.killpg(process.pid, 0)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))

    def test_ctrlC(self) -> None:
        """
        Ctrl-C (SIGINT to the whole process group, as a terminal sends it)
        stops both processes gracefully.
        """
        process, port = self.serve()
        os.killpg(process.pid, signal.SIGINT)
        self.stoppedCleanly(process, port)

    def test_sigterm(self) -> None:
        """
        SIGTERM to C{dev.py} alone (as C{kill} or a service manager sends
        it) is passed on to the server, which stops gracefully.
        """
        process, port = self.serve()
        process.send_signal(signal.SIGTERM)
        self.stoppedCleanly(process, port)
