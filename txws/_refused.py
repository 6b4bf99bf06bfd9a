"""
The Autobahn names txws refuses, and the exception that names them: pure,
so that the pure modules (L{txws.deflate}) can refuse names too without
importing Twisted.  L{txws.compat} re-exports all of it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["REFUSED_NAMES", "TABLE", "NotInTxws", "refusedName"]

#: Where the table of Autobahn names is.
TABLE = "docs/autobahn.md"

#: Names of C{autobahn.twisted.websocket} that txws does not provide, with
#: the reason; importing one from C{txws} raises L{NotInTxws}.
REFUSED_NAMES: Mapping[str, str] = {
    "WampWebSocketServerProtocol": "WAMP is not part of txws",
    "WampWebSocketServerFactory": "WAMP is not part of txws",
    "WampWebSocketClientProtocol": "WAMP is not part of txws",
    "WampWebSocketClientFactory": "WAMP is not part of txws",
    "WebSocketAdapterProtocol": "txws has no adapter layer: subclass "
    "WebSocketServerProtocol or WebSocketClientProtocol",
    "WebSocketAdapterFactory": "txws has no adapter layer: subclass "
    "WebSocketServerFactory or WebSocketClientFactory",
    "WrappingWebSocketAdapter": "use WrappingWebSocketServerProtocol or "
    "WrappingWebSocketClientProtocol (txws.wrap)",
    "Message": "txws passes payloads, not message objects",
    "IncomingMessage": "txws passes payloads, not message objects",
    "OutgoingMessage": "txws passes payloads, not message objects",
    "Ping": "txws passes payloads, not ping objects: use sendPing(payload)",
    # autobahn.websocket.compress: txws.deflate has permessage-deflate only.
    "PERMESSAGE_COMPRESSION_EXTENSION": "txws negotiates permessage-deflate only",
    "PerMessageCompress": "txws negotiates permessage-deflate only: use PerMessageDeflate",
    "PerMessageCompressOffer": "use PerMessageDeflateOffer (txws.deflate)",
    "PerMessageCompressOfferAccept": "use PerMessageDeflateOfferAccept (txws.deflate)",
    "PerMessageCompressResponse": "use PerMessageDeflateResponse (txws.deflate)",
    "PerMessageCompressResponseAccept": "use PerMessageDeflateResponseAccept (txws.deflate)",
    "PerMessageBzip2": "permessage-bzip2 is not a standard extension; txws has deflate only",
    "PerMessageBzip2Offer": "permessage-bzip2 is not supported",
    "PerMessageBzip2OfferAccept": "permessage-bzip2 is not supported",
    "PerMessageBzip2Response": "permessage-bzip2 is not supported",
    "PerMessageBzip2ResponseAccept": "permessage-bzip2 is not supported",
}


class NotInTxws(ImportError, NotImplementedError):
    """
    An Autobahn name that txws does not implement was imported or used.  It
    is an C{ImportError} (so C{from txws import Name} fails at once) and a
    C{NotImplementedError}; its message names the Autobahn name and points
    to the table in C{docs/autobahn.md}.
    """


def refusedName(module: str, name: str) -> NotInTxws:
    """
    @param module: the txws module the name was asked of.
    @param name: the attribute asked for.
    @return: the L{NotInTxws} to raise, if C{name} is an Autobahn name txws
        refuses.
    @raise AttributeError: if it is not one (an ordinary missing name).
    """
    why = REFUSED_NAMES.get(name)
    if why is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}", name=name)
    return NotInTxws(
        f"Autobahn's {name} is not implemented by txws: {why} (see {TABLE})",
        name=name,
    )
