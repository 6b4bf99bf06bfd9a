"""
C{python -m txws}: serve the echo application, with embedded defaults, on
C{127.0.0.1:9000} (plain WebSocket) until interrupted.

    python -m txws [--port 9000] [--interface 127.0.0.1] [--max-size BYTES]
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.logger import globalLogBeginner, textFileLogObserver

from txws.apps.echo import echoFactory


def main(argv: list[str] | None = None) -> int:
    """
    Parse the command line and run the echo server.

    @param argv: the arguments (default: C{sys.argv[1:]}).
    @return: the process exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m txws", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument("--max-size", type=int, default=1024 * 1024)
    args = parser.parse_args(argv)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    factory = echoFactory(url=f"ws://{args.interface}:{args.port}")
    factory.setProtocolOptions(
        maxFramePayloadSize=args.max_size, maxMessagePayloadSize=args.max_size
    )
    port = reactor.listenTCP(args.port, factory, interface=args.interface)
    address = port.getHost()
    assert isinstance(address, IPv4Address)
    print(f"txws echo server on ws://{address.host}:{address.port}/ (Ctrl-C to stop)", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
