"""
Programs written here against Autobahn|Python's Twisted API, in the style
of Autobahn's own examples, and the machinery that runs each of them twice:
as written, on Autobahn, and with only its imports switched to txws (the
move the README promises).  The programs themselves are plain scripts
(untyped, as Autobahn's examples are; mypy leaves them out) that print what
they see, one fact per line.

Design: L{switchImports} rewrites the C{from MODULE import} lines of a
program by a mapping of module names and refuses a program that still
mentions a module the mapping does not cover, so the import lines are
provably the only difference.  L{startProgram} runs a variant as a
subprocess with the real reactor (a L{PeerProcess}); L{transcript} waits
for it to end and returns its lines.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.peers.harness import PROJECT_ROOT, TIMEOUT, PeerProcess, bounded, reactor
from tests.typedtrial import TestCase

__all__ = [
    "LIBRARIES",
    "TO_AUTOBAHN",
    "TO_TXWS",
    "listeningPort",
    "startProgram",
    "startScript",
    "stopped",
    "switchImports",
    "transcript",
    "variant",
]

#: The directory of the programs.
PROGRAMS = Path(__file__).parent

#: Autobahn's modules and the txws modules that hold the same names.
TO_TXWS: Mapping[str, str] = {
    "autobahn.twisted.websocket": "txws",
    "autobahn.twisted.resource": "txws.resource",
    "autobahn.websocket.types": "txws",
    "autobahn.websocket.compress": "txws.deflate",
}

#: The other way, for programs written against txws's top-level names.
TO_AUTOBAHN: Mapping[str, str] = {"txws": "autobahn.twisted.websocket"}

#: The two libraries a program runs on.
LIBRARIES = ("autobahn", "txws")

_IMPORT = re.compile(r"^(\s*)from ([\w.]+) import ", re.M)


def switchImports(source: str, mapping: Mapping[str, str]) -> str:
    """
    Rewrite the C{from MODULE import ...} lines of a program.

    @param source: the program's text.
    @param mapping: module names and their replacements.
    @return: the rewritten text; only those lines differ.
    @raise ValueError: if no line was rewritten, or if an import of a
        module of the same library that the mapping does not cover is
        left (the program would still depend on it).
    """
    switched = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal switched
        module = match.group(2)
        if module not in mapping:
            return match.group(0)
        switched += 1
        return f"{match.group(1)}from {mapping[module]} import "

    result = _IMPORT.sub(replace, source)
    if not switched:
        raise ValueError("no import line to switch")
    roots = {name.split(".")[0] for name in mapping}
    for match in _IMPORT.finditer(result):
        module = match.group(2)
        if module.split(".")[0] in roots and module not in mapping.values():
            raise ValueError(f"the program still imports {module}, which has no counterpart")
    if re.search(rf"^\s*import ({'|'.join(roots)})\b", result, re.M):
        raise ValueError("the program imports a library module by plain import")
    return result


def variant(testCase: TestCase, name: str, library: str) -> str:
    """
    @param testCase: the test that runs it (its temporary directory holds
        the switched copy).
    @param name: a program of this directory, without C{.py}.
    @param library: C{"autobahn"} (the program as written) or C{"txws"}
        (its imports switched by L{TO_TXWS}).
    @return: the path of the file to run.
    """
    original = PROGRAMS / f"{name}.py"
    if library == "autobahn":
        return str(original)
    if library != "txws":
        raise ValueError(f"unknown library {library!r}")
    directory = Path(testCase.mktemp()).resolve()
    directory.mkdir(parents=True)
    path = directory / original.name
    path.write_text(switchImports(original.read_text(), TO_TXWS))
    return str(path)


def startScript(testCase: TestCase, path: str, *args: str) -> PeerProcess:
    """
    Run a script file with the real reactor until the test ends (its
    cleanup stops it), seeing this checkout's C{txws}.

    @param testCase: the test that owns the process.
    @param path: the script.
    @param args: its command line arguments.
    @return: the process protocol.
    """
    peer = PeerProcess(Path(path).stem, stdinStops=False)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PROJECT_ROOT, env.get("PYTHONPATH")]))
    reactor.spawnProcess(
        peer, sys.executable, [sys.executable, "-u", path, *args], env=env, path=PROJECT_ROOT
    )
    testCase.addCleanup(peer.stop)
    return peer


def startProgram(testCase: TestCase, name: str, library: str, *args: str) -> PeerProcess:
    """
    Run a program of this directory on one library.

    @see: L{variant}, L{startScript}
    """
    return startScript(testCase, variant(testCase, name, library), *args)


async def listeningPort(server: PeerProcess) -> int:
    """
    @return: the port a server program printed it listens on.
    """
    match = await server.waitForLine(r"^listening on (\d+)$")
    return int(match.group(1))


async def transcript(peer: PeerProcess, seconds: float = TIMEOUT) -> list[str]:
    """
    Wait for a program to exit by itself.

    @return: the lines it printed.
    @raise RuntimeError: if it exited with a non-zero status or wrote a
        traceback (the message holds its output).
    """
    code = await bounded(peer.ended, seconds)
    errors = peer.stderr.decode("utf-8", "replace")
    if code != 0 or "Traceback" in errors:
        raise RuntimeError(
            f"{peer.name} exited with {code}; stdout:\n" + "\n".join(peer.lines)
            + "\nstderr:\n" + errors
        )  # fmt: skip
    return list(peer.lines)


async def stopped(peer: PeerProcess) -> list[str]:
    """
    Stop a server program (SIGTERM) and return what it printed; it must
    not have written a traceback.
    """
    await peer.stop()
    errors = peer.stderr.decode("utf-8", "replace")
    if "Traceback" in errors:
        raise RuntimeError(f"{peer.name} wrote a traceback:\n{errors}")
    return [line for line in peer.lines if not line.startswith("listening on ")]
