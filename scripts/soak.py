"""
Soak test: a mixed load against real txws servers on 127.0.0.1 for a
configurable time, printing their memory and open descriptors over time and
a verdict on whether both stay flat.  Not run in CI (it takes minutes by
design); see docs/abuse.md.

Usage, from the repository root::

    PYTHONPATH=. .venv/bin/python scripts/soak.py --duration 600 --interval 15

It starts two processes, C{twistd -n txws --app echo} and C{twistd -n txws
--app hub} (in a temporary directory, killed at the end), and runs, in
threads, until the time is up:

  - echo traffic: persistent clients exchanging messages of 10 B to 64 KiB;
  - handshakes: clients that connect, echo once and close, back to back;
  - the hub: subscribers on a few channels, reading, some leaving and
    coming back; a publisher sending signed publishes on a kept-alive
    connection;
  - bad clients: a slowloris head, oversized heads, a frame announcing
    2^62 bytes, a silent connection dropped after a few seconds, a publish
    whose body never comes (408 after 10 s), a subscriber that never reads
    (evicted with 4008).

Every C{--interval} seconds it prints each server's C{VmRSS} and descriptor
count and the operations done.  The verdict compares the last third of the
samples with the middle third (the first third is warm-up): I{flat} if
neither server's RSS grew by more than C{--rss-tolerance} (default 10%%, and
at least 8 MiB) and neither gained more than C{--fd-tolerance} descriptors
(default 20).  The exit status is 0 for flat, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.abusesupport import (
    HOST,
    Server,
    WebSocket,
    publish,
    raiseFileLimit,
    rawExchange,
)

_MiB = 1024


class Load:
    """
    The load's threads, their counters and their stop signal.
    """

    def __init__(self, echo: Server, hub: Server, keyFile: str) -> None:
        self.echo = echo
        self.hub = hub
        self.keyFile = keyFile
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def spawn(self, name: str, loop: Callable[[], None]) -> None:
        def run() -> None:
            while not self.stopping.is_set():
                try:
                    loop()
                except (OSError, ConnectionError, ValueError, AssertionError) as e:
                    self.count(f"error {name}: {type(e).__name__}")
                    self.stopping.wait(0.2)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    # -- well-behaved --------------------------------------------------------

    def echoTraffic(self) -> None:
        client = WebSocket(self.echo.port, timeout=10)
        try:
            for _ in range(200):
                if self.stopping.is_set():
                    break
                payload = os.urandom(random.choice((10, 1000, 16384, 65536))).hex()
                assert client.echo(payload.encode()) == payload.encode()
                self.count("echo messages")
        finally:
            client.close()

    def handshakes(self) -> None:
        client = WebSocket(self.echo.port, timeout=10)
        assert client.echo(b"hi") == b"hi"
        client.close()
        self.count("handshakes")

    def subscriber(self) -> None:
        channel = random.choice(("news", "sport", "weather"))
        client = WebSocket(self.hub.port, f"/ws?channel={channel}", timeout=10)
        try:
            until = time.monotonic() + random.uniform(2, 20)
            while time.monotonic() < until and not self.stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    client.sock.settimeout(1)
                    frame = client.receive()
                    if frame.opcode == 1:
                        self.count("hub messages received")
        finally:
            client.close()
            self.count("subscriber sessions")

    def publisher(self) -> None:
        sock = socket.create_connection((HOST, self.hub.port), 10)
        try:
            for n in range(500):
                if self.stopping.is_set():
                    break
                channel = random.choice(("news", "sport", "weather"))
                status, _ = publish(self.hub.port, self.keyFile, channel,
                                    {"n": n, "text": "x" * random.choice((10, 1000, 8000))},
                                    sock=sock)
                assert status == 200, status
                self.count("publishes")
                self.stopping.wait(0.02)
        finally:
            sock.close()

    # -- bad clients -----------------------------------------------------------

    def badClients(self) -> None:
        kind = random.choice(("slowloris", "bigHeader", "longLine", "hugeFrame", "silent",
                              "shortBody", "lazySubscriber"))
        port = random.choice((self.echo.port, self.hub.port))
        if kind == "slowloris":
            sock = socket.create_connection((HOST, port), 5)
            with contextlib.closing(sock):
                for byte in b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaa":
                    if self.stopping.wait(0.3):
                        break
                    try:
                        sock.send(bytes([byte]))
                    except OSError:
                        break
        elif kind == "bigHeader":
            rawExchange(port, b"GET /ws HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 100_000
                        + b"\r\n\r\n", timeout=3)
        elif kind == "longLine":
            rawExchange(port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n\r\n", timeout=3)
        elif kind == "hugeFrame":
            client = WebSocket(self.echo.port, timeout=5)
            client.sock.sendall(WebSocket.frame(2, b"x" * 16, declaredLength=1 << 62))
            client.closeCode(5)
            client.close()
        elif kind == "silent":
            sock = socket.create_connection((HOST, port), 5)
            self.stopping.wait(random.uniform(1, 5))
            sock.close()
        elif kind == "shortBody":
            rawExchange(self.hub.port, b"POST /publish HTTP/1.1\r\nHost: h\r\n"
                        b"Content-Length: 100\r\n\r\n{", timeout=12)
        else:
            lazy = WebSocket(self.hub.port, "/ws?channel=news", receiveBuffer=4096)
            self.stopping.wait(random.uniform(2, 8))
            lazy.close()
        self.count(f"bad {kind}")


def sample(server: Server) -> tuple[int, int]:
    """
    @return: C{(RSS KiB, open descriptors)} of a server.
    """
    return server.rssKiB(), server.openFiles()


def verdict(samples: list[tuple[int, int]], rssTolerance: float, fdTolerance: int
            ) -> tuple[bool, str]:
    """
    Compare the last third of the samples with the middle third.

    @return: Whether it is flat, and why.
    """
    third = max(1, len(samples) // 3)
    middle = samples[third:2 * third] or samples
    last = samples[-third:]
    rssMiddle = sum(s[0] for s in middle) / len(middle)
    rssLast = sum(s[0] for s in last) / len(last)
    fdMiddle = sum(s[1] for s in middle) / len(middle)
    fdLast = sum(s[1] for s in last) / len(last)
    allowed = max(rssMiddle * rssTolerance, 8 * _MiB)
    flat = rssLast - rssMiddle <= allowed and fdLast - fdMiddle <= fdTolerance
    return flat, (f"RSS {rssMiddle / _MiB:.1f} -> {rssLast / _MiB:.1f} MiB "
                  f"(allowed +{allowed / _MiB:.1f}), fds {fdMiddle:.0f} -> {fdLast:.0f} "
                  f"(allowed +{fdTolerance})")


def main(argv: list[str] | None = None) -> int:
    """
    Run the soak.

    @param argv: Command-line arguments (default C{sys.argv[1:]}).
    @return: 0 if memory and descriptors stayed flat, else 1.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds (default 300)")
    parser.add_argument("--interval", type=float, default=10, help="seconds between samples")
    parser.add_argument("--echo-clients", type=int, default=4)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--bad-clients", type=int, default=4)
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--fd-tolerance", type=int, default=20)
    options = parser.parse_args(argv)
    raiseFileLimit(4096)
    with tempfile.TemporaryDirectory() as directory:
        echoDir = os.path.join(directory, "echo")
        hubDir = os.path.join(directory, "hub")
        os.makedirs(echoDir)
        os.makedirs(hubDir)
        echo = Server(["--app", "echo"], echoDir)
        hub = Server(["--app", "hub", "--max-subscriber-buffer", "262144"], hubDir)
        load = Load(echo, hub, os.path.join(hubDir, "txws-dev-keys.json"))
        try:
            for n in range(options.echo_clients):
                load.spawn(f"echo-{n}", load.echoTraffic)
            load.spawn("handshakes", load.handshakes)
            for n in range(options.subscribers):
                load.spawn(f"subscriber-{n}", load.subscriber)
            load.spawn("publisher", load.publisher)
            for n in range(options.bad_clients):
                load.spawn(f"bad-{n}", load.badClients)
            samples: dict[str, list[tuple[int, int]]] = {"echo": [], "hub": []}
            started = time.monotonic()
            print(f"{'t (s)':>7} {'echo RSS MiB':>12} {'fds':>5} {'hub RSS MiB':>11} "
                  f"{'fds':>5}  operations", flush=True)
            while True:
                elapsed = time.monotonic() - started
                for name, server in (("echo", echo), ("hub", hub)):
                    if not server.running():
                        print(f"the {name} server died:\n{server.output[-3000:]}")
                        return 1
                    samples[name].append(sample(server))
                (erss, efd), (hrss, hfd) = samples["echo"][-1], samples["hub"][-1]
                with load.lock:
                    ops = dict(load.counts)
                print(f"{elapsed:7.0f} {erss / _MiB:12.1f} {efd:5d} {hrss / _MiB:11.1f} "
                      f"{hfd:5d}  {json.dumps(ops, sort_keys=True)}", flush=True)
                if elapsed >= options.duration:
                    break
                time.sleep(min(options.interval, max(0.1, options.duration - elapsed)))
        finally:
            load.stopping.set()
            for thread in load.threads:
                thread.join(15)
            echo.stop()
            hub.stop()
        flat = True
        for name in ("echo", "hub"):
            ok, why = verdict(samples[name], options.rss_tolerance, options.fd_tolerance)
            flat = flat and ok
            print(f"{name}: {'flat' if ok else 'GROWING'}: {why}")
        errors = {k: v for k, v in load.counts.items() if k.startswith("error")}
        if errors:
            print("client-side errors (expected a few from bad clients' servers "
                  "closing first):", errors)
        print("verdict:", "FLAT" if flat else "NOT FLAT")
        return 0 if flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
