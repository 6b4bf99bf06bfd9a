"""
C{python -m txws [options]}: the same server as C{twistd -n txws
[options]}, in the foreground, logging to standard output, without a pid
file; C{python -m txws --help} lists the options.

Design: the command line goes to twistd's own option parser and runner
(L{twisted.scripts.twistd.runApp}) as C{--nodaemon --pidfile= txws
[options]}, with the C{txws} subcommand given directly rather than found
by plugin discovery, so it also works from a checkout that is not on
C{twisted.plugins}' path.  A usage error is printed alone (not after all of
twistd's options) and exits with status 2; SIGTERM and SIGINT stop the
server gracefully and exit 0 (see L{txws.tap}).  The workers of
C{--workers N} are C{python -m txws --worker=I ...} processes, whose log
goes to their parent as JSON lines (L{txws._workers}).
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from twisted.application.service import ServiceMaker
from twisted.python import usage

from txws import tap

__all__ = ["main"]

_PROGRAM = "python -m txws"

#: The same plugin as C{twisted/plugins/txws_plugin.py}.
serviceMaker = ServiceMaker(
    "txws",
    "txws.tap",
    "txws: a WebSocket push hub (default), an echo server, or your own txws application",
    "txws",
)


class _MainOptions(tap.Options):
    synopsis = f"Usage: {_PROGRAM} [options]"


def _serverOptions() -> Any:
    """
    @return: twistd's options whose only subcommand is C{txws}.
    """
    from twisted.scripts import twistd

    serverOptions: Any = getattr(twistd, "ServerOptions")  # noqa: B009 (not re-exported)

    class TxwsServerOptions(serverOptions):  # type: ignore[misc]
        @property
        def subCommands(self) -> list[tuple[str, None, Any, str]]:
            self.loadedPlugins = {serviceMaker.tapname: serviceMaker}
            return [
                (serviceMaker.tapname, None, serviceMaker.options, serviceMaker.description)
            ]

    return TxwsServerOptions()


def main(argv: Optional[list[str]] = None) -> int:
    """
    Run the server until it is stopped.

    @param argv: the plugin's options (default: C{sys.argv[1:]}).
    @return: the process exit status.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in arguments):
        print(_MainOptions())
        return 0
    if "--version" in arguments:
        from txws._version import __version__

        print(f"txws {__version__}")
        return 0
    config = _serverOptions()
    twistdOptions = ["--nodaemon", "--pidfile="]
    if any(a == "--worker" or a.startswith("--worker=") for a in arguments):
        # A worker of --workers: its log goes to its parent as JSON lines.
        twistdOptions.append("--logger=txws._workers.workerLogObserver")
    try:
        config.parseOptions([*twistdOptions, serviceMaker.tapname, *arguments])
    except usage.UsageError as e:
        sys.stderr.write(f"{_PROGRAM}: {e}\n({_PROGRAM} --help lists the options)\n")
        return 2
    from twisted.scripts import twistd

    twistd.runApp(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
