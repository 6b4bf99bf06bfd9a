"""
The C{twistd txws} plugin: points twistd at L{txws.tap}.

This directory must not hold an C{__init__.py}: Twisted's own
C{twisted/plugins} package finds it on C{sys.path}.
"""

from twisted.application.service import ServiceMaker

txws = ServiceMaker(
    "txws",
    "txws.tap",
    "txws: a WebSocket push hub (default), an echo server, or your own txws application",
    "txws",
)
