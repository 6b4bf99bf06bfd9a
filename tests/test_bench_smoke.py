"""
A smoke run of the benchmark harness (C{python -m bench.run --quick}) with
the txws and raw servers and tiny windows, a tiny fan-out run of every
fan-out server, one of the clustered hubs (a Redis broker, two workers)
with the harness's own C{redis-server}, and tiny runs of the compression
cells (compressed echoes, memory per compressed connection, fan-out to
subscribers that negotiated permessage-deflate): they check that the
harness works end to end, never a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThread

from bench import cluster
from bench.cells import CELLS as BENCH_CELLS
from bench.cluster import redisServerPath
from bench.deflate import FrameCounter, compressFresh, jsonPayload, parseAnswer, parseMessages
from bench.fanout import PAYLOAD_SIZE, dataFor, messageFor
from bench.loadgen import maskedFrame, serverFrame
from bench.run import Settings, formatFanoutTable, runBenchmark
from tests.typedtrial import SkipTest, SynchronousTestCase, TestCase

ROOT = Path(__file__).resolve().parent.parent

SERVERS = ["txws", "raw"]
CELLS = ["echo-32B-c1", "echo-1KiB-text-c50", "handshake", "idle-memory"]


def runQuick(output: str) -> subprocess.CompletedProcess[str]:
    """
    Run the harness in quick mode, bounded to 120 seconds.

    @param output: where it writes its JSON results.
    @return: the finished process, its output captured.
    """
    return runHarness(
        [
            "--quick", "--servers", ",".join(SERVERS), "--cells", ",".join(CELLS),
            "--duration", "0.3", "--warmup", "0.1", "--idle", "40", "--output", output,
        ],
        120,
    )


def runHarness(arguments: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """
    Run C{python -m bench.run} with C{arguments} from the repository root.

    @param timeout: the most seconds it may take.
    @return: the finished process, its output captured.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "bench.run", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class BenchmarkHarnessTests(TestCase):
    """
    The benchmark harness drives real servers through the opening handshake
    (RFC 6455 section 4), framed echoes (section 5) and the closing
    handshake (section 7), and reports every cell for every server.
    """

    timeout = 180

    async def test_quickRunReportsEveryCell(self) -> None:
        """
        A quick run of txws and raw exits 0, prints a table row for each
        server and cell, writes positive rates and costs to its JSON, says
        which masking path txws ran, and judges txws against the targets.
        """
        output = os.path.abspath(self.mktemp())
        finished = await deferToThread(runQuick, output)
        self.assertEqual(finished.returncode, 0, finished.stderr[-3000:])
        results: dict[str, Any] = json.loads(Path(output).read_text())
        rows = {(row["server"], row["cell"]): row for row in results["rows"]}
        for server in SERVERS:
            for cell in CELLS:
                self.assertIn(f"| {cell} | {server} |", finished.stdout)
                row = rows[(server, cell)]
                self.assertEqual(row["status"], "ok", row)
                if cell == "idle-memory":
                    self.assertEqual(row["details"]["connections"], 40)
                    self.assertGreater(row["details"]["rssAfterKiB"], 0)
                else:
                    self.assertGreater(row["rate"], 0, row)
                    self.assertGreater(row["cost"], 0, row)
                    self.assertGreater(row["generatorCost"], 0, row)
        path = results["servers"]["txws"]["path"]
        self.assertIn(path, ("C extension", "pure Python"))
        self.assertRegex(finished.stdout, rf"- txws: txws \S+ on Twisted \S+, {path}")
        judged = {(v["server"], v["cell"]) for v in results["targets"]}
        self.assertIn(("txws", "handshake"), judged)


FANOUT_SERVERS = ["raw", "txws", "autobahn", "websockets", "txws-hub"]
FANOUT_SUBSCRIBERS = 5
FANOUT_PUBLISHES = 3


def runFanoutSmoke(
    output: str, servers: Sequence[str] = FANOUT_SERVERS, subscribers: int = FANOUT_SUBSCRIBERS,
    cell: str = "fanout-1k",
) -> subprocess.CompletedProcess[str]:
    """
    Run one tiny fan-out cell for some fan-out servers, bounded to 120
    seconds: a few subscribers, exactly a few publishes, no warm-up.

    @param output: where the harness writes its JSON results.
    @param servers: the servers.
    @param subscribers: how many subscribers.
    @param cell: the fan-out cell.
    @return: the finished process, its output captured.
    """
    return runHarness(
        [
            "--cells", cell, "--servers", ",".join(servers),
            "--subscribers", str(subscribers), "--publishes", str(FANOUT_PUBLISHES),
            "--warmup", "0", "--output", output,
        ],
        120,
    )


class FanoutHarnessTests(TestCase):
    """
    The fan-out cells deliver every published text message (RFC 6455
    section 5.6) to every subscriber of every server, the hub's through a
    signed C{POST /publish} (C{docs/hub.md}).
    """

    timeout = 180

    async def test_everySubscriberGetsEveryMessage(self) -> None:
        """
        A tiny fan-out run exits 0 and reports, for every server, that each
        of the subscribers received each publish exactly once, that the
        checking subscriber's copies were the published messages, and (for
        the hub) that every publish was answered with the subscriber count.
        """
        output = os.path.abspath(self.mktemp())
        finished = await deferToThread(runFanoutSmoke, output)
        self.assertEqual(finished.returncode, 0, finished.stderr[-3000:])
        results: dict[str, Any] = json.loads(Path(output).read_text())
        rows = {row["server"]: row for row in results["rows"]}
        self.assertEqual(sorted(rows), sorted(FANOUT_SERVERS))
        for server in FANOUT_SERVERS:
            row = rows[server]
            self.assertEqual(row["status"], "ok", row)
            details = row["details"]
            self.assertEqual(details["subscribers"], FANOUT_SUBSCRIBERS, row)
            self.assertEqual(details["publishes"], FANOUT_PUBLISHES, row)
            self.assertEqual(details["warmupPublishes"], 0, row)
            self.assertEqual(details["deliveries"], FANOUT_SUBSCRIBERS * FANOUT_PUBLISHES, row)
            self.assertEqual(
                details["perSubscriber"], {"min": FANOUT_PUBLISHES, "max": FANOUT_PUBLISHES}, row
            )
            self.assertEqual(details["checkedMessages"], FANOUT_PUBLISHES, row)
            self.assertIn(f"| fanout-1k | {server} | {FANOUT_SUBSCRIBERS} |", finished.stdout)
        self.assertEqual(rows["txws-hub"]["details"]["hubDelivered"], FANOUT_PUBLISHES)
        self.assertEqual(rows["raw"]["details"]["hubDelivered"], 0)


CLUSTER_SERVERS = ["txws-hub", "txws-hub-redis", "txws-hub-workers2"]
CLUSTER_SUBSCRIBERS = 16


class ClusterFanoutHarnessTests(TestCase):
    """
    The clustered fan-out cells: the hub with its Redis broker, and two
    workers of C{twistd txws --workers 2} sharing one port and delivering
    each other's publishes through Redis (C{docs/cluster.md}), each
    subscriber getting each message once (RFC 6455 section 5.6).
    """

    timeout = 180

    async def test_everySubscriberOfTheClusterGetsEveryMessage(self) -> None:
        """
        A tiny run with the harness's own redis-server exits 0; every
        subscriber of every server got every publish exactly once, the
        checking subscriber's copies were the published messages; the
        workers' CPU is summed over three processes, the subscribers are
        spread over both workers, the answers count the subscribers of the
        worker that took the publishes, and Redis's CPU is reported apart.
        No Redis process the harness started is left behind.
        """
        if redisServerPath() is None:
            raise SkipTest("redis-server is not installed (/usr/bin/redis-server nor on PATH)")
        output = os.path.abspath(self.mktemp())
        finished = await deferToThread(
            runFanoutSmoke, output, CLUSTER_SERVERS, CLUSTER_SUBSCRIBERS
        )
        self.assertEqual(finished.returncode, 0, finished.stderr[-3000:])
        results: dict[str, Any] = json.loads(Path(output).read_text())
        rows = {row["server"]: row for row in results["rows"]}
        self.assertEqual(sorted(rows), sorted(CLUSTER_SERVERS))
        for server in CLUSTER_SERVERS:
            row = rows[server]
            self.assertEqual(row["status"], "ok", row)
            details = row["details"]
            self.assertEqual(details["subscribers"], CLUSTER_SUBSCRIBERS, row)
            self.assertEqual(details["publishes"], FANOUT_PUBLISHES, row)
            self.assertEqual(
                details["perSubscriber"], {"min": FANOUT_PUBLISHES, "max": FANOUT_PUBLISHES}, row
            )
            self.assertEqual(details["checkedMessages"], FANOUT_PUBLISHES, row)
            self.assertEqual(details["hubDelivered"], FANOUT_PUBLISHES, row)
            self.assertEqual("redisUsPerPublish" in details, server != "txws-hub", row)
            self.assertIn(f"| fanout-1k | {server} | {CLUSTER_SUBSCRIBERS} |", finished.stdout)
        workers = rows["txws-hub-workers2"]["details"]
        self.assertEqual(workers["processes"], 3)
        connections = workers["connectionsPerWorker"]
        # The subscribers and the publisher's one connection.
        self.assertEqual((len(connections), sum(connections)), (2, CLUSTER_SUBSCRIBERS + 1))
        self.assertIn(workers["publishWorkerSubscribers"] + 1, connections)
        # Spread by SO_REUSEPORT's hash: with 16 subscribers, all on one
        # worker has a chance of 1 in 32,768.
        self.assertTrue(0 < workers["publishWorkerSubscribers"] < CLUSTER_SUBSCRIBERS, connections)
        self.assertEqual(rows["txws-hub-redis"]["details"]["processes"], 1)
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
        ready = results["servers"]["txws-hub-workers2"]
        left = [pid for pid in [ready["pid"], *ready["workerPids"]] if pid in pids]
        self.assertEqual(left, [])


class ClusterUnavailableTests(SynchronousTestCase):
    """
    Without C{redis-server}, the servers that need one are reported as not
    available, and nothing is started.
    """

    def test_notAvailable(self) -> None:
        """
        L{bench.run.runBenchmark} records C{not available} for both
        clustered servers when no C{redis-server} is found.
        """
        self.patch(cluster, "redisServerPath", lambda: None)
        settings = Settings(duration=0.1, warmup=0.0, idle=1, subscribers=2, publishes=1)
        lines: list[str] = []
        rows, info = runBenchmark(
            ["txws-hub-redis", "txws-hub-workers2"], [BENCH_CELLS["fanout-1k"]], settings,
            lines.append,
        )
        self.assertEqual([(r.server, r.status) for r in rows],
                         [("txws-hub-redis", "not available"),
                          ("txws-hub-workers2", "not available")])
        self.assertIn("redis-server is not installed", info["txws-hub-workers2"]["detail"])
        self.assertIn("| fanout-1k | txws-hub-redis | not available |", formatFanoutTable(rows))


class FanoutMessageTests(SynchronousTestCase):
    """
    The message every fan-out subscriber receives is the hub's C{message}
    (C{docs/hub.md}, "Messages"), of one size for every publish.
    """

    def test_messageIsTheHubsJson(self) -> None:
        """
        L{messageFor} is the hub's compact JSON, keys in the documented
        order, with the publish's data.
        """
        message = messageFor(7, dataFor(7))
        self.assertTrue(message.startswith(b'{"type":"message","channel":"bench","seq":7,'))
        self.assertEqual(json.loads(message)["data"], dataFor(7))

    def test_sizeIsFixed(self) -> None:
        """
        Publishes with one- to four-digit numbers all give messages of
        L{PAYLOAD_SIZE} bytes, and no two publishes have the same data.
        """
        numbers = [1, 9, 10, 99, 100, 5000]
        self.assertEqual({len(messageFor(n, dataFor(n))) for n in numbers}, {PAYLOAD_SIZE})
        self.assertEqual(len({json.dumps(dataFor(n)) for n in numbers}), len(numbers))


#: The compression cells' servers: those configured for permessage-deflate
#: and the uncompressed references.
DEFLATE_SERVERS = ["raw", "txws", "txws-deflate", "txws-deflate-hubpolicy", "websockets-deflate",
                   "autobahn-deflate"]
DEFLATE_CELLS = ["echo-deflate-1KiB-json-c50", "echo-deflate-64KiB-c1", "deflate-memory"]
DEFLATE_CONNECTIONS = 20


def runDeflateSmoke(output: str) -> subprocess.CompletedProcess[str]:
    """
    Run the compressed echo and memory cells for the compression servers
    with tiny windows and few connections, bounded to 150 seconds.

    @param output: where the harness writes its JSON results.
    @return: the finished process, its output captured.
    """
    return runHarness(
        [
            "--servers", ",".join(DEFLATE_SERVERS),
            "--cells", ",".join(DEFLATE_CELLS), "--duration", "0.3", "--warmup", "0.1",
            "--deflate-connections", str(DEFLATE_CONNECTIONS), "--output", output,
        ],
        150,
    )


class DeflateHarnessTests(TestCase):
    """
    The compression cells: echoes and memory of connections that negotiated
    permessage-deflate (RFC 7692 section 7), every server's compressed
    replies inflated and compared with the message sent.
    """

    timeout = 200

    async def test_everyServerEchoesCompressed(self) -> None:
        """
        A tiny run exits 0; every compression server negotiated
        permessage-deflate, compressed its replies (checked by inflating
        them: the first on every connection, all on one) and is measured;
        the references ran uncompressed; the memory cell reports idle and
        active figures for every connection it opened.
        """
        output = os.path.abspath(self.mktemp())
        finished = await deferToThread(runDeflateSmoke, output)
        self.assertEqual(finished.returncode, 0, finished.stderr[-3000:])
        results: dict[str, Any] = json.loads(Path(output).read_text())
        rows = {(row["server"], row["cell"]): row for row in results["rows"]}
        for server in DEFLATE_SERVERS:
            compressed = server not in ("raw", "txws")
            for cell in DEFLATE_CELLS:
                row = rows[(server, cell)]
                self.assertEqual(row["status"], "ok", row)
                details = row["details"]
                self.assertEqual(details["compressed"], compressed, row)
                self.assertEqual(details["answer"] is not None, compressed, row)
                if compressed:
                    self.assertTrue(details["answer"].startswith("permessage-deflate"), row)
                    # JSON compresses: the replies are smaller than the message.
                    self.assertLess(details["replyBytes"], details["messageBytes"], row)
                self.assertIn(f"| {cell} | {server} |", finished.stdout)
                if cell == "deflate-memory":
                    self.assertEqual(details["connections"], DEFLATE_CONNECTIONS)
                    self.assertEqual(details["checkedReplies"], DEFLATE_CONNECTIONS)
                    self.assertGreater(details["rssActiveKiB"], 0)
                    self.assertIn("idleKiB", details)
                else:
                    connections = BENCH_CELLS[cell].connections
                    self.assertGreaterEqual(details["checkedReplies"], connections, row)
                    self.assertGreater(row["rate"], 0, row)
                    self.assertGreater(row["cost"], 0, row)
        hub = rows[("txws-deflate-hubpolicy", "deflate-memory")]["details"]["answer"]
        self.assertIn("server_no_context_takeover", hub)
        self.assertIn("client_no_context_takeover", hub)
        judged = {(v["server"], v["cell"]) for v in results["targets"]}
        self.assertIn(("txws-deflate", "echo-deflate-1KiB-json-c50"), judged)


DEFLATE_FANOUT_SERVERS = ["raw", "txws", "txws-hub", "websockets-deflate", "autobahn-deflate"]


class DeflateFanoutHarnessTests(TestCase):
    """
    The fan-out cell with compression: subscribers offer permessage-deflate
    (RFC 7692), and every subscriber of every server that accepts it gets
    every message once, compressed (the checker inflates them).
    """

    timeout = 180

    async def test_everySubscriberGetsEveryCompressedMessage(self) -> None:
        """
        A tiny run exits 0; raw declines compression ("n/a"); the other
        servers negotiated it, the hub without context takeover, and each
        of their subscribers received each publish exactly once, the
        checker's copies compressed and, inflated, the published messages.
        """
        output = os.path.abspath(self.mktemp())
        finished = await deferToThread(
            runFanoutSmoke, output, DEFLATE_FANOUT_SERVERS, FANOUT_SUBSCRIBERS,
            "fanout-deflate-1k",
        )
        self.assertEqual(finished.returncode, 0, finished.stderr[-3000:])
        results: dict[str, Any] = json.loads(Path(output).read_text())
        rows = {row["server"]: row for row in results["rows"]}
        self.assertEqual(rows["raw"]["status"], "n/a (declines compression)")
        for server in DEFLATE_FANOUT_SERVERS[1:]:
            row = rows[server]
            self.assertEqual(row["status"], "ok", row)
            details = row["details"]
            self.assertEqual(
                details["perSubscriber"], {"min": FANOUT_PUBLISHES, "max": FANOUT_PUBLISHES}, row
            )
            self.assertEqual(details["checkedMessages"], FANOUT_PUBLISHES, row)
            self.assertGreaterEqual(details["compressedMessages"], FANOUT_PUBLISHES, row)
            self.assertTrue(details["answer"].startswith("permessage-deflate"), row)
            self.assertIn(f"| fanout-deflate-1k | {server} | {FANOUT_SUBSCRIBERS} |",
                          finished.stdout)
        self.assertIn("server_no_context_takeover", rows["txws-hub"]["details"]["answer"])
        self.assertEqual(rows["txws-hub"]["details"]["hubDelivered"], FANOUT_PUBLISHES)


class DeflateGeneratorTests(SynchronousTestCase):
    """
    The compression cells' generator (L{bench.deflate}): its payloads, its
    reading of the server's answer (RFC 7692 section 7.1) and of frames
    (RFC 6455 section 5.2).
    """

    def test_jsonPayload(self) -> None:
        """
        L{jsonPayload} gives valid JSON of exactly the size asked for (a
        document too small for one record is padding alone), the same for
        the same variant, distinct for others, and compressible.
        """
        for size in (40, 64, 200, 1024, 65536):
            documents = [jsonPayload(size, variant) for variant in range(3)]
            self.assertEqual({len(d) for d in documents}, {size})
            if size >= 200:
                self.assertEqual(len(set(documents)), 3)
            for document in documents:
                self.assertIsInstance(json.loads(document), list)
        self.assertEqual(jsonPayload(1024, 1), jsonPayload(1024, 1))
        self.assertLess(len(compressFresh(jsonPayload(65536))), 65536 // 3)

    def test_compressFresh(self) -> None:
        """
        L{compressFresh} gives a message's payload without the trailing
        C{00 00 ff ff}, which a raw inflater reads back once it is appended.
        """
        payload = jsonPayload(1024)
        inflater = zlib.decompressobj(-15)
        self.assertEqual(inflater.decompress(compressFresh(payload) + b"\x00\x00\xff\xff"),
                         payload)

    def test_parseAnswer(self) -> None:
        """
        L{parseAnswer} reads the enabled permessage-deflate's parameters,
        with zlib's defaults for those absent, and C{None} for no extension.
        """
        head = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                b"client_max_window_bits=12\r\n\r\n")
        answer = parseAnswer(head)
        assert answer is not None
        self.assertEqual(
            (answer.serverNoContextTakeover, answer.clientNoContextTakeover,
             answer.serverMaxWindowBits, answer.clientMaxWindowBits),
            (True, False, 15, 12),
        )
        self.assertIsNone(parseAnswer(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"))

    def test_frameCounterSplitAnywhere(self) -> None:
        """
        L{FrameCounter} counts whole data messages (short, 16-bit and 64-bit
        lengths, masked or not, fragmented, with a control frame between
        fragments) wherever the stream is cut, and L{parseMessages} joins
        their fragments.
        """
        small, medium, large = b"a" * 10, b"b" * 300, b"c" * 70000
        stream = (
            serverFrame(0x1, small)
            + maskedFrame(0x2, medium)
            + bytes([0x01 | 0x40, 3]) + b"xyz"  # a first fragment, RSV1
            + serverFrame(0x9, b"ping")
            + serverFrame(0x0, b"tail")
            + serverFrame(0x2, large)
        )
        for cut in [*range(0, 40), *range(300, 330), len(stream) - 3]:
            counter = FrameCounter(8)
            counted = counter.scan(3, stream[:cut], cut)
            counted += counter.scan(3, stream[cut:], len(stream) - cut)
            self.assertEqual(counted, 4, cut)
            self.assertTrue(counter.betweenFrames(3))
        messages = parseMessages(stream)
        self.assertEqual(
            messages,
            [(0x81, small), (0x82, medium), (0x41, b"xyztail"), (0x82, large)],
        )
