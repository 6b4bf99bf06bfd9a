"""
Integration tests of the C{twistd txws} plugin as packaged: a wheel built
from the checkout and installed (not editable) into a fresh directory that
still sees this environment's Twisted, an sdist, the dropin cache of
Twisted's plugin system when the plugin is installed by root and run by an
unprivileged user, and the editable checkout.

Design: the wheel is built from a copy of the packaging files and the
C{txws} package (so the shared working tree gets no C{build/} directory)
with C{pip wheel --no-deps --no-build-isolation}, then installed with
C{pip install --no-deps --target DIR}; twistd runs as C{python -c "from
twisted.scripts.twistd import run; run()"} with C{PYTHONPATH=DIR}, in a
working directory outside the checkout.  The twistd help never shows log
messages, so the dropin cache checks run a real server (the echo app on a
free loopback port) and read its log.
"""

from __future__ import annotations

import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from typing import Any, ClassVar, Optional

from tests.tlssupport import ROOT
from tests.typedtrial import SynchronousTestCase

#: Seconds any one step (a build, a server run) may take.
STEP_TIMEOUT = 120.0

#: How twistd is started: C{python -m twisted} would be C{twist}.
TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]

#: Regenerates every dropin cache on the path (the documented step).
REGENERATE = [
    sys.executable,
    "-c",
    "from twisted.plugin import IPlugin, getPlugins; list(getPlugins(IPlugin))",
]

#: The echo app on a free loopback port, without a pid file.
ECHO_SERVER = [
    *TWISTD, "-n", "--pidfile=", "txws", "--app", "echo",
    "--listen", "tcp:0:interface=127.0.0.1",
]

_CACHE_WARNING = "Unable to write to plugin cache"

#: What a checkout holds that a clone does not (see .gitignore).
_UNTRACKED = (
    ".git", ".venv", "build", "dist", "_trial_temp*", "*.egg-info", "__pycache__", "*.so",
    "*.py[cod]", ".mypy_cache", ".ruff_cache", ".hypothesis", ".coverage*", "htmlcov",
    "txws-dev-keys.json", "dropin.cache", "twistd.pid", "twistd.log*", "results",
)  # fmt: skip

#: Markdown links: C{[text](target)}.
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _unprivilegedUser() -> Optional[pwd.struct_passwd]:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        return None


def _runServer(
    argv: list[str], env: dict[str, str], cwd: str, user: Optional[int] = None
) -> tuple[int, str]:
    """
    Start a server, wait until it announces that it listens, SIGTERM it.

    @return: its exit status and its whole output.
    """
    process = subprocess.Popen(
        argv, env=env, cwd=cwd, user=user, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + STEP_TIMEOUT
    try:
        while b" listening on " not in output:
            left = deadline - time.monotonic()
            if left <= 0 or process.poll() is not None:
                break
            ready, _, _ = select.select([process.stdout], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                output += chunk
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=STEP_TIMEOUT)
        output += rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, output.decode("utf-8", "replace")


def _buildAndInstall() -> None:
    """
    Build the wheel from a copy of the checkout and install it into a new
    directory, as C{InstalledPluginTests.wheel} and C{.target}.
    """
    base = os.path.abspath("plugin-install")
    shutil.rmtree(base, ignore_errors=True)
    source = os.path.join(base, "source")
    # The checkout as a clone has it (what is not tracked left out), so the
    # sdist test sees what MANIFEST.in really lets in.
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_UNTRACKED))
    wheels = os.path.join(base, "wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "wheel", "-q",
         "--no-deps", "--no-build-isolation", "-w", wheels, source],
        check=True, timeout=STEP_TIMEOUT, cwd=base,
    )
    (name,) = os.listdir(wheels)
    target = os.path.join(base, "installed")
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q",
         "--no-deps", "--target", target, os.path.join(wheels, name)],
        check=True, timeout=STEP_TIMEOUT, cwd=base,
    )
    # As a system-wide install: readable by all, writable by root only.
    for directory, _dirs, files in os.walk(base):
        os.chmod(directory, 0o755)
        for file in files:
            os.chmod(os.path.join(directory, file), 0o644)
    InstalledPluginTests.base = base
    InstalledPluginTests.wheel = os.path.join(wheels, name)
    InstalledPluginTests.target = target


class InstalledPluginTests(SynchronousTestCase):
    """
    The plugin from a wheel installed without C{-e}.
    """

    base: ClassVar[str] = ""
    wheel: ClassVar[str] = ""
    target: ClassVar[str] = ""

    def setUp(self) -> None:
        # Built once for all the tests of the class (trial has no
        # setUpClass), in trial's working directory.
        if not InstalledPluginTests.target:
            _buildAndInstall()

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
        env["PYTHONPATH"] = self.target
        return env

    def workingDirectory(self) -> str:
        path: str = os.path.abspath(self.mktemp())
        os.makedirs(path)
        os.chmod(path, 0o755)
        return path

    def runHere(
        self, argv: list[str], user: Optional[int] = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=self.environment(), cwd=self.workingDirectory(), user=user,
            capture_output=True, text=True, timeout=STEP_TIMEOUT,
        )

    @property
    def pluginFile(self) -> str:
        return os.path.join(self.target, "twisted", "plugins", "txws_plugin.py")

    @property
    def cacheFile(self) -> str:
        return os.path.join(self.target, "twisted", "plugins", "dropin.cache")

    def makeCacheStale(self) -> float:
        """
        Regenerate the cache, then date it before the plugin file (as after
        an upgrade that installed a newer plugin).

        @return: the cache's modification time now.
        """
        regenerated = self.runHere(REGENERATE)
        self.assertEqual((regenerated.returncode, regenerated.stderr), (0, ""))
        stale = os.stat(self.pluginFile).st_mtime - 60
        os.utime(self.cacheFile, (stale, stale))
        return stale

    def test_wheelContents(self) -> None:
        """
        The wheel holds the plugin module, the hub's page and the C source,
        and no C{__init__.py} or C{dropin.cache} under C{twisted/}.
        """
        with zipfile.ZipFile(self.wheel) as wheel:
            names = set(wheel.namelist())
        self.assertIn("twisted/plugins/txws_plugin.py", names)
        self.assertIn("txws/hub/page.html", names)
        self.assertIn("txws/tap.py", names)
        self.assertIn("txws/_speedups.c", names)
        under = sorted(n for n in names if n.startswith("twisted/"))
        self.assertEqual(under, ["twisted/plugins/txws_plugin.py"])
        self.assertFalse([n for n in names if n.endswith("dropin.cache")])
        self.assertFalse([n for n in names if n.startswith("tests/")])
        (license,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        with zipfile.ZipFile(self.wheel) as wheel:
            (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
            self.assertMetadata(wheel.read(metadata).decode("utf-8"))
            self.assertIn(b"Copyright (c) 2026 the txws developers", wheel.read(license))

    def assertMetadata(self, metadata: str) -> None:
        """
        The core metadata states the license as an SPDX expression with its
        file, and the classifiers.
        """
        self.assertIn("License-Expression: MIT\n", metadata)
        self.assertIn("License-File: LICENSE\n", metadata)
        for classifier in ("Framework :: Twisted", "Typing :: Typed",
                           "Programming Language :: Python :: 3.11"):  # fmt: skip
            self.assertIn(f"Classifier: {classifier}\n", metadata)

    def test_sdistContents(self) -> None:
        """
        The sdist, built from the checkout as a clone has it, holds the
        plugin module, the hub's page, the license, the changelog, and every
        file the README links to; it leaves the test suite out on purpose
        (MANIFEST.in: it needs the whole checkout).
        """
        output = os.path.abspath(self.mktemp())
        os.makedirs(output)
        source = os.path.join(self.base, "source")
        subprocess.run(
            [sys.executable, "-c",
             "import sys; from setuptools import build_meta; "
             "build_meta.build_sdist(sys.argv[1])", output],
            check=True, cwd=source, timeout=STEP_TIMEOUT, capture_output=True,
        )
        (name,) = os.listdir(output)
        with tarfile.open(os.path.join(output, name)) as sdist:
            members = {m.name.split("/", 1)[1]: m for m in sdist.getmembers() if "/" in m.name}
            names = set(members)
            readme = sdist.extractfile(members["README.md"])
            pkgInfo = sdist.extractfile(members["PKG-INFO"])
            assert readme is not None and pkgInfo is not None
            links = _LINK.findall(readme.read().decode("utf-8"))
            self.assertMetadata(pkgInfo.read().decode("utf-8"))
        for expected in ("twisted/plugins/txws_plugin.py", "txws/hub/page.html", "txws/tap.py",
                         "txws/_speedups.c", "setup.py", "pyproject.toml", "LICENSE",
                         "CHANGELOG.md", "docs/autobahn.md"):
            self.assertIn(expected, names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertFalse([n for n in names if n.startswith(("tests/", "fuzz/", "scripts/"))])
        files = [link.split("#")[0] for link in links if not link.startswith("#")]
        self.assertIn("docs/autobahn.md", files)
        self.assertEqual([f for f in files if f not in names], [])

    def test_twistdListsPlugin(self) -> None:
        """
        C{twistd --help} lists C{txws}, run from the installed copy (not
        the checkout), and C{twistd txws --help} shows its options.
        """
        where = self.runHere([sys.executable, "-c",
                           "import txws, twisted, twisted.plugins.txws_plugin as p; "
                           "print(txws.__file__); print(p.__file__); print(twisted.__file__)"])
        self.assertEqual(where.returncode, 0, where.stderr)
        txwsFile, pluginFile, twistedFile = where.stdout.split()
        self.assertTrue(txwsFile.startswith(self.target + os.sep), txwsFile)
        self.assertEqual(pluginFile, self.pluginFile)
        self.assertFalse(twistedFile.startswith(self.target), twistedFile)
        listing = self.runHere([*TWISTD, "--help"])
        self.assertEqual(listing.returncode, 0, listing.stderr)
        commands = listing.stdout.split("Commands:", 1)[1]
        self.assertIn("    txws ", commands)
        helpText = self.runHere([*TWISTD, "txws", "--help"])
        self.assertEqual(helpText.returncode, 0, helpText.stderr)
        self.assertIn("Usage: twistd [options] txws [options]", helpText.stdout)
        self.assertIn("--listen=", helpText.stdout)

    def test_unprivilegedUserAfterRegeneration(self) -> None:
        """
        Installed by root, a stale cache makes an unprivileged twistd log
        that it cannot write the cache; once root regenerates the cache
        (the documented step), the unprivileged server starts and stops
        with a clean log.
        """
        user = _unprivilegedUser()
        if user is None:
            raise self.skipTest("needs root and a 'nobody' user to run as an unprivileged user")
        self.makeCacheStale()
        code, output = _runServer(ECHO_SERVER, self.environment(), self.workingDirectory(),
                                  user.pw_uid)
        self.assertIn(_CACHE_WARNING, output)
        self.assertEqual(code, 0, output)

        regenerated = self.runHere(REGENERATE)
        self.assertEqual((regenerated.returncode, regenerated.stderr), (0, ""))
        before = os.stat(self.cacheFile).st_mtime
        code, output = _runServer(ECHO_SERVER, self.environment(), self.workingDirectory(),
                                  user.pw_uid)
        self.assertEqual(code, 0, output)
        self.assertIn("txws echo listening on http://127.0.0.1:", output)
        self.assertNotIn(_CACHE_WARNING, output)
        self.assertNotIn("Traceback", output)
        self.assertEqual(os.stat(self.cacheFile).st_mtime, before)

    def test_staleCacheRegenerated(self) -> None:
        """
        A cache older than the plugin file is rewritten, without error, by
        a user who may write it; the server then starts and lists txws.
        """
        stale = self.makeCacheStale()
        code, output = _runServer(ECHO_SERVER, self.environment(), self.workingDirectory())
        self.assertEqual(code, 0, output)
        self.assertIn("txws echo listening on http://127.0.0.1:", output)
        self.assertNotIn(_CACHE_WARNING, output)
        self.assertNotIn("Traceback", output)
        self.assertGreater(os.stat(self.cacheFile).st_mtime, stale)
        self.assertGreaterEqual(
            os.stat(self.cacheFile).st_mtime, os.stat(self.pluginFile).st_mtime
        )
        with open(self.cacheFile, "rb") as f:
            self.assertIn(b"txws_plugin", f.read())


class CheckoutPluginTests(SynchronousTestCase):
    """
    The editable development install (C{dev.py}) finds the plugin with the
    checkout on C{PYTHONPATH}, as C{dev.py test} and C{dev.py serve} set it.
    """

    def test_twistdFromCheckout(self) -> None:
        """
        twistd lists txws, loaded from the checkout's C{twisted/plugins}.
        """
        env: dict[str, Any] = dict(os.environ, PYTHONPATH=ROOT)
        cwd = os.path.abspath(self.mktemp())
        os.makedirs(cwd)
        listing = subprocess.run([*TWISTD, "--help"], env=env, cwd=cwd, capture_output=True,
                                 text=True, timeout=STEP_TIMEOUT)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        self.assertIn("    txws ", listing.stdout.split("Commands:", 1)[1])
        where = subprocess.run(
            [sys.executable, "-c", "import twisted.plugins.txws_plugin as p; print(p.__file__)"],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT,
        )
        self.assertEqual(
            where.stdout.strip(), os.path.join(ROOT, "twisted", "plugins", "txws_plugin.py")
        )
