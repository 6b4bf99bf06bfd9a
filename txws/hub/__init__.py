"""
The txws hub: a WebSocket push server.  Browsers and services subscribe to
channels over WebSocket; backends publish to channels with an HMAC-signed
HTTP C{POST}.  It is the default application of C{twistd txws} and a library
a Twisted application mounts in its own site.  The wire protocol is
specified in C{docs/hub.md}.

Embedding::

    from txws.hmacauth import loadKeyFile
    from txws.hub import Hub

    hub = Hub(loadKeyFile("/etc/myapp/hub-keys.json"))
    hub.setServiceParent(application)          # or hub.startService()
    root.putChild(b"realtime", hub.resource())  # /realtime/ws, /realtime/publish, ...
    site = hub.site()                           # or serve hub.resource() in your own Site
"""

from __future__ import annotations

from txws.hub.broker import Broker, History, MemoryBroker, Publication
from txws.hub.channels import PRIVATE_PREFIX, isPrivateChannel, validChannelName
from txws.hub.service import Hub

__all__ = [
    "PRIVATE_PREFIX",
    "Broker",
    "History",
    "Hub",
    "MemoryBroker",
    "Publication",
    "isPrivateChannel",
    "validChannelName",
]
