"""
The hub's command line, for operators, scripts and development::

    python -m txws.hub token --channel NAME [--ttl SECONDS] [--key-file FILE] [--key-id ID]
    python -m txws.hub publish [--url URL] [--key-file FILE] [--key-id ID]
        [--scheme seed|v2] CHANNEL DATA

C{token} prints a channel token (C{docs/hub.md}, "Channel tokens") for a
private channel; C{publish} POSTs C{{"channel": CHANNEL, "data": DATA}},
HMAC-signed, to a hub's C{/publish} and prints the answer.  Both read the
key file a development hub makes in its working directory
(L{DEV_KEY_FILE}) unless given C{--key-file}.

Design: the pieces of C{python -m txws.hmacauth} are reused (its argument
parser, whose usage errors exit with status 1; L{HMACAgent} and
L{postBody}); L{token} and L{publish} take their clock, agent and output
streams as arguments so that tests drive them in memory, and L{main} only
wires them to the real ones.  Every failure is one line on stderr.  Exit
status: 0 for success (a 2xx answer), 1 for anything else, usage errors
included.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, BinaryIO, NoReturn, TextIO

from twisted.internet.defer import Deferred, succeed
from twisted.web.iweb import IAgent

from txws.hmacauth.__main__ import TIMEOUT, UsageParser, reactCommand, sendSigned
from txws.hmacauth.client import HMACAgent, canonicalJSON
from txws.hmacauth.keys import KeyFileError, KeyRing, loadKeyFile
from txws.hmacauth.schemes import Scheme
from txws.hub.channels import MAX_CHANNEL_LENGTH, validChannelName
from txws.hub.devkeys import DEV_KEY_FILE
from txws.hub.tokens import mintToken

__all__ = [
    "DEFAULT_TTL",
    "DEFAULT_URL",
    "PROG",
    "TIMEOUT",
    "buildParser",
    "main",
    "parseArguments",
    "publish",
    "token",
]

PROG = "python -m txws.hub"
"""The program name in usage and error messages."""

DEFAULT_URL = "http://127.0.0.1:8080/publish"
"""Where C{publish} posts by default: a development hub on this machine."""

DEFAULT_TTL = 300.0
"""Seconds a token minted by C{token} lives by default."""


def _channel(text: str) -> str:
    if not validChannelName(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid channel name: use 1 to {MAX_CHANNEL_LENGTH} "
            "characters from A-Z a-z 0-9 _ - . : /"
        )
    return text


def _ttl(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _refuseConstant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _JSONData:
    """
    A parsed DATA argument (a holder, since the JSON value may be C{null}).
    """

    def __init__(self, value: object) -> None:
        self.value = value


def _jsonData(text: str) -> _JSONData:
    try:
        return _JSONData(json.loads(text, parse_constant=_refuseConstant))
    except ValueError as e:  # json.JSONDecodeError, or NaN and Infinity
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from None
    except RecursionError:
        raise argparse.ArgumentTypeError("JSON nested too deeply") from None


def _addKeyOptions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key-file", dest="keyFile", default=DEV_KEY_FILE, metavar="FILE",
        help=f'JSON object of key id to secret, mode 600 (default: {DEV_KEY_FILE}, '
             "made by a development hub in its working directory)",
    )
    parser.add_argument(
        "--key-id", dest="keyId", metavar="ID",
        help="the key to sign with (required if the file holds several)",
    )


def buildParser() -> argparse.ArgumentParser:
    """
    Describe the command line.

    @return: The parser.
    """
    parser = UsageParser(prog=PROG, description="Mint channel tokens and publish to a txws hub.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=UsageParser)
    tokenCommand = commands.add_parser(
        "token", help="print a channel token for a private channel"
    )
    tokenCommand.add_argument(
        "--channel", required=True, type=_channel, metavar="NAME",
        help="the channel the token opens",
    )
    tokenCommand.add_argument(
        "--ttl", type=_ttl, default=DEFAULT_TTL, metavar="SECONDS",
        help=f"seconds the token lives (default {DEFAULT_TTL:g})",
    )
    _addKeyOptions(tokenCommand)
    publishCommand = commands.add_parser(
        "publish", help="publish a JSON value to a channel and print the hub's answer"
    )
    publishCommand.add_argument(
        "--url", default=DEFAULT_URL, metavar="URL",
        help=f"the hub's publish URL (default {DEFAULT_URL})",
    )
    _addKeyOptions(publishCommand)
    publishCommand.add_argument(
        "--scheme", choices=[s.value for s in Scheme], default=Scheme.V2.value,
        help="v2 (default; binds method, host and path) or seed (the Django/DRF article's)",
    )
    publishCommand.add_argument("channel", metavar="CHANNEL", type=_channel,
                                help="the channel to publish to")
    publishCommand.add_argument("data", metavar="DATA", type=_jsonData,
                                help="the message, as JSON text")
    return parser


def parseArguments(argv: Sequence[str]) -> argparse.Namespace:
    """
    Parse a command line, exiting with status 1 and a usage line on error.

    @param argv: The arguments after the program name.
    @return: The parsed options.
    """
    return buildParser().parse_args(list(argv))


def _complain(stderr: TextIO, message: str) -> int:
    stderr.write(f"{PROG}: {message}\n")
    return 1


def _loadKeys(name: str) -> KeyRing:
    """
    Load a key file, explaining how to get the development one if missing.

    @raise KeyFileError: If it cannot be used.
    """
    try:
        return loadKeyFile(name)
    except KeyFileError as e:
        if os.path.lexists(name):
            raise
        hint = (
            "start a development hub (twistd -n txws) in this directory to create it, "
            "or give --key-file FILE"
        ) if name == DEV_KEY_FILE else "give the hub's key file with --key-file FILE"
        raise KeyFileError(f"{e}; {hint}") from None


def token(arguments: argparse.Namespace, stdout: TextIO, stderr: TextIO, now: float) -> int:
    """
    Run the C{token} command: print a channel token, one line.

    @param arguments: From L{parseArguments}.
    @param stdout: Receives the token.
    @param stderr: Receives a one-line reason on failure.
    @param now: The current Unix time.
    @return: The exit status (0, or 1 on failure).
    """
    try:
        keys = _loadKeys(arguments.keyFile)
        minted = mintToken(keys, arguments.channel, arguments.ttl, now, arguments.keyId)
    except (KeyFileError, ValueError) as e:
        return _complain(stderr, str(e))
    stdout.write(minted + "\n")
    stdout.flush()
    return 0


def _fail(stderr: TextIO, message: str) -> Deferred[int]:
    return succeed(_complain(stderr, message))


def publish(
    reactor: Any,
    arguments: argparse.Namespace,
    agent: IAgent,
    stdout: BinaryIO,
    stderr: TextIO,
    timeout: float | None = TIMEOUT,
) -> Deferred[int]:
    """
    Run the C{publish} command: POST C{{"channel": CHANNEL, "data": DATA}}
    (canonical JSON) signed, and print the answer's body.

    @param reactor: An C{IReactorTime} for timestamps and the timeout.
    @param arguments: From L{parseArguments}.
    @param agent: The C{IAgent} that will carry the signed request.
    @param stdout: Receives the response body (with a final newline added
        if it has none).
    @param stderr: Receives a one-line reason on failure.
    @param timeout: Seconds before giving up, or C{None}.
    @return: A L{Deferred} firing with the exit status (0 for 2xx, else 1).
    """
    url: str = arguments.url
    if not url.startswith(("http://", "https://")) or not url.isascii():
        return _fail(stderr, f"not an http:// or https:// URL: {url!r}")
    try:
        keys = _loadKeys(arguments.keyFile)
        body = canonicalJSON({"channel": arguments.channel, "data": arguments.data.value})
        signer = HMACAgent(
            agent, keys, arguments.keyId, scheme=Scheme(arguments.scheme), reactor=reactor
        )
    except (KeyFileError, ValueError) as e:
        return _fail(stderr, str(e))
    except RecursionError:
        return _fail(stderr, "DATA is nested too deeply")

    return sendSigned(
        reactor, signer, url, body, stdout, stderr, prog=PROG, timeout=timeout, finalNewline=True
    )


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """
    Run the command line and exit.

    @param argv: The arguments after the program name (default C{sys.argv[1:]}).
    """
    arguments = parseArguments(sys.argv[1:] if argv is None else argv)
    if arguments.command == "token":
        raise SystemExit(token(arguments, sys.stdout, sys.stderr, time.time()))
    reactCommand(publish, arguments)


if __name__ == "__main__":
    main()
