"""
A short, bounded run of every fuzz target in C{fuzz/} (atheris), as CI's
smoke check that the parsers still hold their contracts on inputs the
fuzzer derives from the committed seeds; and a replay of each seed corpus
through its target in this process.

Each target runs as a subprocess for at most C{RUNS} inputs or C{SECONDS}
seconds (whichever comes first) and must exit 0: libFuzzer exits non-zero
on a crash (an assertion of the target, or an exception other than the
parser's own), writing the input under a scratch directory, never into the
committed corpus.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys

from tests.support import requireSpeedups
from tests.typedtrial import SkipTest, SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ("frames", "handshake", "response", "hmac", "tokens", "hmacsite", "deflate")
#: The pure-Python pass (TXWS_NO_EXTENSIONS=1) has no C path for the frame
#: target to compare with; the pass with the extension runs it.
PURE_PYTHON = bool(os.environ.get("TXWS_NO_EXTENSIONS"))
_NO_C_PATH = "the frame target compares the C path with Python: run with the C extension"
RUNS = 200_000
SECONDS = 5


def requireAtheris() -> None:
    """
    Skip on Python 3.10 without atheris: the test extra installs it from
    3.11 on, since PyPI has no wheel of it for 3.10 and building one needs
    clang with libFuzzer.  Everywhere else a missing atheris is an error.
    """
    if sys.version_info < (3, 11) and importlib.util.find_spec("atheris") is None:
        raise SkipTest("atheris is not installed for Python 3.10")


class FuzzTargetTests(SynchronousTestCase):
    """
    Every target survives a bounded fuzzing run from its seed corpus.
    """

    def fuzz(self, target: str) -> None:
        requireAtheris()
        scratch = os.path.abspath(self.mktemp())
        os.makedirs(scratch)
        corpus = os.path.join(ROOT, "fuzz", "corpus", target)
        self.assertTrue(len(os.listdir(corpus)) >= 3, corpus)
        env = dict(os.environ, PYTHONPATH=ROOT)
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "fuzz", f"fuzz_{target}.py"), scratch, corpus,
             f"-runs={RUNS}", f"-max_total_time={SECONDS}", "-rss_limit_mb=1024",
             f"-artifact_prefix={scratch}{os.sep}"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=SECONDS + 60, check=False)
        output = result.stdout.decode("utf-8", "replace")
        self.assertEqual(result.returncode, 0, output[-4000:])
        self.assertIn("Done ", output)

    def test_frames(self) -> None:
        """
        The C and Python frame parsers agree, whatever the bytes and splits.
        """
        if PURE_PYTHON:
            raise SkipTest(_NO_C_PATH)
        requireSpeedups(self)
        self.fuzz("frames")

    def test_handshake(self) -> None:
        """
        The server's handshake parser raises only 4xx L{HandshakeError}s.
        """
        self.fuzz("handshake")

    def test_response(self) -> None:
        """
        The client's answer parser raises only L{ResponseError}s.
        """
        self.fuzz("response")

    def test_hmac(self) -> None:
        """
        The HMAC header parsers raise only L{VerificationError}s.
        """
        self.fuzz("hmac")

    def test_tokens(self) -> None:
        """
        The channel token parser raises only L{TokenError}s.
        """
        self.fuzz("tokens")

    def test_deflate(self) -> None:
        """
        permessage-deflate: bounded inflation gives C{zlib}'s output within
        the limit and only L{DeflateError} (1009 or 1007) otherwise;
        negotiation raises only L{NegotiationError} and agrees end to end.
        """
        self.fuzz("deflate")

    def test_hmacsite(self) -> None:
        """
        An L{HMACSite} connection fed arbitrary bytes and clock steps never
        raises or logs a failure, and answers only with status lines.
        """
        self.fuzz("hmacsite")


class SeedCorpusTests(SynchronousTestCase):
    """
    Every committed seed passes its target's checks when replayed directly
    (no instrumentation needed), so a regression shows as an ordinary
    failure with the seed's name.
    """

    def test_seeds(self) -> None:
        """
        Replay every seed of every target.
        """
        requireAtheris()
        sys.path.insert(0, ROOT)
        self.addCleanup(sys.path.remove, ROOT)
        for target in TARGETS:
            if target == "frames" and PURE_PYTHON:
                continue  # (_NO_C_PATH)
            module = importlib.import_module(f"fuzz.fuzz_{target}")
            corpus = os.path.join(ROOT, "fuzz", "corpus", target)
            for name in sorted(os.listdir(corpus)):
                with open(os.path.join(corpus, name), "rb") as f:
                    data = f.read()
                try:
                    module.testOneInput(data)
                except Exception as e:  # pragma: no cover (a failure)
                    self.fail(f"fuzz/corpus/{target}/{name}: {e!r}")
