#!/usr/bin/env python3
"""
Developer entry point: the only commands the README asks anyone to type.

    python3 dev.py serve   start the txws server (twistd -n txws: the push hub
                           on http://127.0.0.1:8080/; options after serve go
                           to it, e.g. --app echo)
    python3 dev.py test    lint, type-check, build the API reference and run the
                           whole test suite
    python3 dev.py docs    build the API reference into build/apidocs
    python3 dev.py versions
                           run the unit tests on every other CPython 3.10-3.13
                           found on this machine (each in its own .venv-3.X,
                           txws installed from this checkout as a wheel)

Both create (or refresh) a private virtual environment in C{.venv} holding
this checkout and its test dependencies, so a fresh machine needs nothing
but Python 3 and access to the package registry.  The environment is
rebuilt when the packaging files change.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".txws-installed"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "setup.py", "txws/_speedups.c"):
        path = ROOT / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensureEnvironment() -> None:
    """
    Create the virtual environment and install this checkout into it, unless
    it is already current.
    """
    wanted = _fingerprint()
    if STAMP.exists() and STAMP.read_text() == wanted and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("dev.py: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print("dev.py: installing txws and its test dependencies into .venv", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip", "setuptools", "wheel"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[test]"], check=True, cwd=ROOT)
    STAMP.write_text(wanted)


#: Debian packages the tests use, with the file each one installs.
SYSTEM_PACKAGES = {
    "chromium": "/usr/bin/chromium",  # tests/test_hub_browser.py
    "redis-server": "/usr/bin/redis-server",  # the Redis broker's tests
}


def ensureSystemPackages() -> None:
    """
    Install the Debian packages in L{SYSTEM_PACKAGES} that are missing, when
    running as root with C{apt-get}; otherwise say which tests will skip.
    Never fails the run: a test whose package is missing skips, saying why.
    """
    missing = [name for name, path in SYSTEM_PACKAGES.items() if not os.path.exists(path)]
    if not missing:
        return
    names = " ".join(missing)
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None or geteuid() != 0 or shutil.which("apt-get") is None:
        why = "apt-get is not available" if shutil.which("apt-get") is None else "not root"
        print(f"dev.py: {names} missing and {why}: the browser (and Redis) tests will be"
              " skipped", flush=True)
        return
    print(f"dev.py: installing Debian packages {names} (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    ok = all(
        subprocess.run(["apt-get", *step], env=env, stdout=subprocess.DEVNULL).returncode == 0
        for step in (
            ["update", "-qq"],
            ["install", "-y", "-qq", "--no-install-recommends", *missing],
        )
    )
    if not ok:
        print(f"dev.py: apt-get could not install {names}: the tests needing them will be"
              " skipped", flush=True)


def _run(argv: list[str]) -> int:
    print("$ " + " ".join(argv), flush=True)
    return subprocess.run(argv, cwd=ROOT).returncode


def serve(args: list[str]) -> int:
    """
    Run C{twistd -n txws} from C{.venv} in the checkout (extra arguments are
    passed on to the plugin, e.g. C{--app echo}).  Ctrl-C (which the
    terminal sends to both processes) and SIGTERM reach twistd, which
    stops gracefully; this process waits for it.
    """
    import signal

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    ))
    twistd = str(BIN / "twistd")
    child = subprocess.Popen([twistd, "-n", "--pidfile=", "txws", *args], cwd=ROOT, env=env)

    def forward(number: int, frame: object) -> None:
        # From a terminal twistd gets Ctrl-C itself too; it ignores repeats.
        child.send_signal(number)

    # Handlers, not SIG_IGN: the child must not inherit ignored signals.
    previous = {n: signal.signal(n, forward) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def test(args: list[str]) -> int:
    """
    Run ruff, mypy --strict, the API reference build (warnings are errors)
    and the trial suite under coverage.
    """
    ensureSystemPackages()
    for name, step in (
        ("ruff", [str(BIN / "ruff"), "check", "txws", "tests", "bench", "fuzz", "scripts",
                  "examples", "dev.py", "setup.py"]),
        ("mypy", [str(BIN / "mypy")]),
        ("apidocs", _apidocsCommand([])),
    ):
        if _run(step) != 0:
            print("0 passed, 1 failed: " + name)
            return 1
    # Twice: with the C extension, and with TXWS_NO_EXTENSIONS=1 (the pure-Python
    # path every install without a compiler runs); coverage is of both together.
    _run([str(PYTHON), "-m", "coverage", "erase"])
    for extra in ({}, {"TXWS_NO_EXTENSIONS": "1"}):
        prefix = "".join(f"{k}={v} " for k, v in extra.items())
        print(f"$ {prefix}coverage run -p -m twisted.trial " + " ".join(args or ["tests"]),
              flush=True)
        env = dict(os.environ, PYTHONPATH=str(ROOT), **extra)
        proc = subprocess.Popen(
            [str(PYTHON), "-m", "coverage", "run", "-p", "-m", "twisted.trial",
             *(args or ["tests"])],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert proc.stdout is not None
        tail: list[str] = []
        for line in proc.stdout:
            sys.stdout.write(line)
            tail = [*tail[-20:], line]
        code = proc.wait()
        _summarise("".join(tail), code)
        if code != 0:
            return code
    if _run([str(PYTHON), "-m", "coverage", "combine", "-q"]) != 0:
        return 1
    if not args:
        # The pure wire-format code and the reassembler: every line and branch.
        full = "txws/frames.py,txws/handshake.py,txws/_reassembly.py"
        if _run([str(PYTHON), "-m", "coverage", "report", "--fail-under=100",
                 f"--include={full}"]) != 0:
            return 1
        return _run([str(PYTHON), "-m", "coverage", "report"])
    return 0


def _apidocsCommand(args: list[str]) -> list[str]:
    return [str(PYTHON), str(ROOT / "scripts" / "apidocs.py"), *args]


def docs(args: list[str]) -> int:
    """
    Build the API reference into C{build/apidocs} (pydoctor, epytext; any
    warning, such as a broken C{L{...}} link, fails the build).  Extra
    arguments go to C{scripts/apidocs.py}, e.g. C{--output DIR}.
    """
    return _run(_apidocsCommand(args))


#: Python versions the package metadata claims, and the one C{.venv} uses.
VERSIONS = ("3.10", "3.11", "3.12", "3.13")

#: What C{versions} runs: the modules that test the library and the hub in
#: process (no peer processes, browsers or Redis), and the interop tests
#: with the C{websockets} and Autobahn peers.
PORTABLE_TESTS = (
    "tests.test_frames", "tests.test_handshake", "tests.test_protocol",
    "tests.test_reassembly", "tests.test_deflate", "tests.test_deflate_protocol",
    "tests.test_deflate_bombs", "tests.test_server", "tests.test_client",
    "tests.test_compat", "tests.test_hub_service", "tests.test_hub_publish",
    "tests.test_hub_subscriber", "tests.test_hub_jsontext", "tests.test_hmac_guard",
    "tests.test_hmac_schemes", "tests.test_metrics", "tests.test_metricsmerge",
    "tests.test_interop_websockets", "tests.test_interop_autobahn", "tests.test_tap",
)

#: Their dependencies (the test extra without the linters, the type
#: checker, the documentation builder and atheris, which has no wheel for
#: every version).
PORTABLE_DEPENDENCIES = (
    "hypothesis", "websockets", "autobahn", "treq", "requests", "django",
    "djangorestframework", "prometheus-client",
)


def _interpreter(version: str) -> Optional[str]:
    """
    @return: a CPython of that version on this machine (on C{PATH}, or
        installed by pyenv), or C{None}.
    """
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(c) for c in sorted(pyenv.glob(f"{version}.*/bin/python"), reverse=True)]
    onPath = shutil.which(f"python{version}")
    if onPath:
        candidates.append(onPath)
    for candidate in candidates:
        # (A pyenv shim of a version that is not selected exists and fails.)
        ran = subprocess.run([candidate, "-c", "pass"], capture_output=True)
        if ran.returncode == 0:
            return candidate
    return None


def versions(args: list[str]) -> int:
    """
    Run L{PORTABLE_TESTS} (or the modules given) on every other CPython of
    L{VERSIONS} found here, each with txws installed from this checkout as
    a wheel (its C extension built for that version) into C{.venv-3.X},
    from a copy of C{tests} and C{docs} so that the installed package, not
    the checkout's source, is what runs.
    """
    import tempfile

    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    results: dict[str, str] = {}
    for version in VERSIONS:
        python = _interpreter(version)
        if version == current or python is None:
            results[version] = "this .venv" if version == current else "not found"
            continue
        target = ROOT / f".venv-{version}"
        made = (target / "bin" / "python").exists()
        if not made and _run([python, "-m", "venv", str(target)]) != 0:
            results[version] = "venv failed"
            continue
        pip = [str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
        # The dependencies once, then this checkout again each time (its
        # version number does not change with its source).
        if _run([*pip, "install", str(ROOT), *PORTABLE_DEPENDENCIES]) != 0 or _run(
            [*pip, "install", "--force-reinstall", "--no-deps", str(ROOT)]
        ) != 0:
            results[version] = "install failed"
            continue
        with tempfile.TemporaryDirectory() as work:
            for name in ("tests", "docs"):
                shutil.copytree(ROOT / name, Path(work) / name)
            print(f"$ (python {version}) trial " + " ".join(args or PORTABLE_TESTS), flush=True)
            proc = subprocess.run(
                [str(target / "bin" / "python"), "-m", "twisted.trial",
                 *(args or PORTABLE_TESTS)],
                cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
        sys.stdout.write(proc.stdout)
        results[version] = (proc.stdout.strip().splitlines() or ["no output"])[-1]
    for version, verdict in results.items():
        print(f"python {version}: {verdict}")
    return 0 if all(
        v.startswith("PASSED") or v in ("this .venv", "not found") for v in results.values()
    ) else 1


def _summarise(tail: str, code: int) -> None:
    """
    Print trial's verdict as the plain "N passed, N failed" line CI reads.
    """
    ran = re.search(r"^Ran (\d+) tests?", tail, re.M)
    verdict = tail.splitlines()[-1] if tail else ""
    counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", verdict)}
    failed = sum(counts.get(k, 0) for k in ("failures", "errors", "unexpectedSuccesses"))
    skipped = counts.get("skips", 0) + counts.get("expectedFailures", 0)
    total = int(ran.group(1)) if ran else 0
    if code != 0 and failed == 0:
        failed = 1
    print(f"tests: {max(total - failed - skipped, 0)} passed, {failed} failed, {skipped} skipped")


def main() -> int:
    commands = {"serve": serve, "test": test, "docs": docs, "versions": versions}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    ensureEnvironment()
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
