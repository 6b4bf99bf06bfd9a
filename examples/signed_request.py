"""
Send one HMAC-signed POST with the C{txws.hmacauth} client and print the
answer: the sender's side of C{examples/web_site.py}.

    .venv/bin/python examples/signed_request.py URL --key-file keys.json \\
        [--key-id ID] [--scheme v2|seed] [--json '{"hello": "world"}']

It prints the status and the body, and exits 0 for a 2xx answer, 1 for
any other.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from twisted.internet.defer import ensureDeferred
from twisted.internet.task import react
from twisted.web.client import Agent

from txws.hmacauth import HMACAgent, Scheme, UnexpectedStatus, loadKeyFile, postJSON


async def main(reactor: Any, argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="POST signed JSON.")
    parser.add_argument("url")
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--key-id", help="which key to sign with (if the file has several)")
    parser.add_argument("--scheme", choices=["v2", "seed"], default="v2")
    parser.add_argument("--json", default="{}", help="the payload")
    args = parser.parse_args(argv)
    scheme = Scheme.V2 if args.scheme == "v2" else Scheme.SEED
    # The agent signs every request it sends; any IAgent can sit beneath it.
    agent = HMACAgent(Agent(reactor), loadKeyFile(args.key_file), args.key_id,
                      scheme=scheme, reactor=reactor)
    try:
        result = await postJSON(agent, args.url, json.loads(args.json))
    except UnexpectedStatus as e:
        print(f"{e.result.code} {e.result.body.decode('utf-8', 'replace')}", flush=True)
        raise SystemExit(1) from None
    print(f"{result.code} {result.body.decode('utf-8', 'replace')}", flush=True)


if __name__ == "__main__":
    react(lambda reactor, argv: ensureDeferred(main(reactor, argv)), [sys.argv[1:]])
