"""
A smoke run of the benchmark harness (C{python -m bench.run --quick}) with
the txws and raw servers and tiny windows, a tiny fan-out run of every
fan-out server, and one of the clustered hubs (a Redis broker, two
workers) with the harness's own C{redis-server}: they check that the
harness works end to end, never a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThread

from bench import cluster
from bench.cells import CELLS as BENCH_CELLS
from bench.cluster import redisServerPath
from bench.fanout import PAYLOAD_SIZE, dataFor, messageFor
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
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [
            sys.executable, "-m", "bench.run", "--quick",
            "--servers", ",".join(SERVERS), "--cells", ",".join(CELLS),
            "--duration", "0.3", "--warmup", "0.1", "--idle", "40", "--output", output,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
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
    output: str, servers: Sequence[str] = FANOUT_SERVERS, subscribers: int = FANOUT_SUBSCRIBERS
) -> subprocess.CompletedProcess[str]:
    """
    Run one tiny fan-out cell for some fan-out servers, bounded to 120
    seconds: a few subscribers, exactly a few publishes, no warm-up.

    @param output: where the harness writes its JSON results.
    @param servers: the servers.
    @param subscribers: how many subscribers.
    @return: the finished process, its output captured.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [
            sys.executable, "-m", "bench.run", "--cells", "fanout-1k",
            "--servers", ",".join(servers),
            "--subscribers", str(subscribers), "--publishes", str(FANOUT_PUBLISHES),
            "--warmup", "0", "--output", output,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
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
