"""
Command-line client for operators and scripts::

    python -m txws.hmacauth post URL --key-file FILE [--key-id ID]
        [--scheme seed|v2] (--json TEXT | --data-file FILE)

Design: argument parsing, key loading and the request are separate steps so
that L{post} can be tested with an in-memory agent and a clock; L{main} only
wires them to the global reactor with C{react}.  The response body goes to
stdout as received; every failure is one line on stderr.  Exit status: 0 for
a 2xx answer, 1 for anything else (usage errors included).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, NoReturn, TextIO

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.python.failure import Failure
from twisted.web.iweb import IAgent

from txws.hmacauth.client import HMACAgent, HTTPResult, UnexpectedStatus, canonicalJSON, postBody
from txws.hmacauth.keys import KeyFileError, loadKeyFile
from txws.hmacauth.schemes import Scheme

__all__ = [
    "PROG",
    "TIMEOUT",
    "UsageParser",
    "buildParser",
    "main",
    "parseArguments",
    "post",
    "reactCommand",
    "sendSigned",
]

PROG = "python -m txws.hmacauth"
"""The program name in usage and error messages."""

TIMEOUT = 30.0
"""Seconds the whole request may take, connection included."""


class UsageParser(argparse.ArgumentParser):
    """
    An argument parser whose usage errors exit with status 1, not 2 (the
    convention of txws's command-line tools).
    """

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(1, f"{self.prog}: error: {message}\n")


def buildParser() -> argparse.ArgumentParser:
    """
    Describe the command line.

    @return: The parser.
    """
    parser = UsageParser(prog=PROG, description="Send HMAC-signed HTTP requests.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)
    postCommand = commands.add_parser(
        "post", help="POST a signed JSON body and print the response body"
    )
    postCommand.add_argument("url", metavar="URL", help="http:// or https:// URL")
    postCommand.add_argument(
        "--key-file", dest="keyFile", required=True, metavar="FILE",
        help='JSON object of key id to secret, e.g. {"backend-1": "..."}; mode 600',
    )
    postCommand.add_argument(
        "--key-id", dest="keyId", metavar="ID",
        help="the key to sign with (required if the file holds several)",
    )
    postCommand.add_argument(
        "--scheme", choices=[s.value for s in Scheme], default=Scheme.V2.value,
        help="v2 (default; binds method, host and path) or seed (Django/DRF receivers)",
    )
    body = postCommand.add_mutually_exclusive_group(required=True)
    body.add_argument(
        "--json", dest="jsonText", metavar="TEXT",
        help="a JSON value, sent with sorted keys and compact separators",
    )
    body.add_argument(
        "--data-file", dest="dataFile", metavar="FILE", help="a file whose bytes are sent as is"
    )
    return parser


def parseArguments(argv: Sequence[str]) -> argparse.Namespace:
    """
    Parse a command line, exiting with status 1 and a usage line on error.

    @param argv: The arguments after the program name.
    @return: The parsed options.
    """
    return buildParser().parse_args(list(argv))


def _fail(stderr: TextIO, message: str) -> Deferred[int]:
    stderr.write(f"{PROG}: {message}\n")
    return succeed(1)


def post(
    reactor: Any,
    arguments: argparse.Namespace,
    agent: IAgent,
    stdout: BinaryIO,
    stderr: TextIO,
    timeout: float | None = TIMEOUT,
) -> Deferred[int]:
    """
    Run the C{post} command.

    @param reactor: An C{IReactorTime} for timestamps and the timeout.
    @param arguments: From L{parseArguments}.
    @param agent: The C{IAgent} that will carry the signed request.
    @param stdout: Receives the response body.
    @param stderr: Receives a one-line reason on failure.
    @param timeout: Seconds before giving up, or C{None}.
    @return: A L{Deferred} firing with the exit status (0 for 2xx, else 1).
    """
    url: str = arguments.url
    if not url.startswith(("http://", "https://")) or not url.isascii():
        return _fail(stderr, f"not an http:// or https:// URL: {url!r}")
    try:
        keys = loadKeyFile(arguments.keyFile)
        if arguments.jsonText is not None:
            body = canonicalJSON(json.loads(arguments.jsonText))
        else:
            with open(arguments.dataFile, "rb") as dataFile:
                body = dataFile.read()
        signer = HMACAgent(
            agent, keys, arguments.keyId, scheme=Scheme(arguments.scheme), reactor=reactor
        )
    except KeyFileError as e:
        return _fail(stderr, str(e))
    except json.JSONDecodeError as e:
        return _fail(stderr, f"--json is not valid JSON: {e}")
    except OSError as e:
        return _fail(stderr, f"cannot read --data-file {arguments.dataFile}: {e.strerror}")
    except ValueError as e:
        return _fail(stderr, str(e))

    return sendSigned(reactor, signer, url, body, stdout, stderr, timeout=timeout)


def sendSigned(
    reactor: Any,
    signer: HMACAgent,
    url: str,
    body: bytes,
    stdout: BinaryIO,
    stderr: TextIO,
    *,
    prog: str = PROG,
    timeout: float | None = TIMEOUT,
    finalNewline: bool = False,
) -> Deferred[int]:
    """
    POST a body with a signing agent and report the answer as a command
    line tool does: the response body on C{stdout}, a one-line reason on
    C{stderr} for anything but a 2xx answer.

    @param reactor: An C{IReactorTime} for the timeout.
    @param signer: The signing agent.
    @param url: The C{http://} or C{https://} URL.
    @param body: The request body.
    @param stdout: Receives the response body.
    @param stderr: Receives a one-line reason on failure.
    @param prog: The program name that starts error lines.
    @param timeout: Seconds before giving up, or C{None}.
    @param finalNewline: Whether to end a body that lacks one with a newline.
    @return: A L{Deferred} firing with the exit status (0 for 2xx, else 1).
    """
    sent = postBody(signer, url, body)
    if timeout is not None:
        sent.addTimeout(timeout, reactor)

    def complain(message: str) -> int:
        stderr.write(f"{prog}: {message}\n")
        return 1

    def show(answer: bytes) -> None:
        if finalNewline and answer and not answer.endswith(b"\n"):
            answer += b"\n"
        stdout.write(answer)
        stdout.flush()

    def succeeded(result: HTTPResult) -> int:
        show(result.body)
        return 0

    def failed(reason: Failure) -> int:
        if isinstance(reason.value, UnexpectedStatus):
            show(reason.value.result.body)
            return complain(str(reason.value))
        if reason.check(CancelledError, DeferredTimeoutError):
            return complain(f"no answer within {timeout:g} s")
        message = reason.getErrorMessage().replace("\n", " ")
        return complain(f"request failed: {message}")

    return sent.addCallbacks(succeeded, failed)


#: A command that sends with an agent: C{(reactor, arguments, agent,
#: stdout, stderr)} to a Deferred exit status, as L{post} is.
AgentCommand = Callable[[Any, argparse.Namespace, IAgent, BinaryIO, TextIO], "Deferred[int]"]


def reactCommand(command: AgentCommand, arguments: argparse.Namespace) -> NoReturn:
    """
    Run a command with the global reactor and a real agent, and exit with
    its status.

    @param command: the command (e.g. L{post}).
    @param arguments: its parsed arguments.
    """
    from twisted.internet.task import react
    from twisted.web.client import Agent

    def run(reactor: Any) -> Deferred[None]:
        agent = Agent(reactor, connectTimeout=TIMEOUT)

        def exitWith(status: int) -> None:
            raise SystemExit(status)

        done = command(reactor, arguments, agent, sys.stdout.buffer, sys.stderr)
        return done.addCallback(exitWith)

    react(run)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    Run the command line and exit.

    @param argv: The arguments after the program name (default C{sys.argv[1:]}).
    """
    reactCommand(post, parseArguments(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
