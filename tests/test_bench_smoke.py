"""
A smoke run of the benchmark harness (C{python -m bench.run --quick}) with
the txws and raw servers and tiny windows: it checks that the harness
works end to end, never a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from twisted.internet.threads import deferToThread

from tests.typedtrial import TestCase

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
