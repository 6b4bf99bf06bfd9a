"""
What txws's permessage-deflate negotiation must answer (RFC 7692 section
7.1), for the interop tests: the server policies they run against and the
answer each gives to an offer, worked out independently of
L{txws.deflate}'s code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from txws.deflate import PerMessageDeflate, PerMessageDeflateOffer, PerMessageDeflatePolicy
from txws.hub.service import HUB_DEFLATE_POLICY

__all__ = ["POLICIES", "answerSettings", "declineAll", "expectedAnswer", "txwsSettings"]


def expectedAnswer(policy: PerMessageDeflatePolicy, offer: dict[str, Any]) -> Optional[str]:
    """
    The answer RFC 7692 section 7.1 leads to for an offer and a txws
    policy, worked out from the policy's documented meaning: the server's
    window is the smaller of its own and the one the client allows, always
    announced; no context takeover when either side wants it (the client's
    C{client_no_context_takeover} hint included, which the answer
    confirms); the client's window limited only if the client offered
    C{client_max_window_bits} and the policy asks, to the smaller of both.

    @param offer: the offer's parameters as C{websockets}'
        C{ClientPerMessageDeflateFactory} arguments (C{None} for absent
        window bits, C{True} for C{client_max_window_bits} without value).

    @return: the C{Sec-WebSocket-Extensions} value, or C{None} when the
        policy declines.
    """
    offered = offer["client_max_window_bits"]
    if policy.requireClientMaxWindowBits and offered is None:
        return None
    parts = ["permessage-deflate"]
    if policy.serverNoContextTakeover or offer["server_no_context_takeover"]:
        parts.append("server_no_context_takeover")
    serverBits = min(policy.serverMaxWindowBits, offer["server_max_window_bits"] or 15)
    parts.append(f"server_max_window_bits={serverBits}")
    # The client's hint is confirmed (the server holds the client to it).
    if policy.clientNoContextTakeover or offer["client_no_context_takeover"]:
        parts.append("client_no_context_takeover")
    if offered is not None and policy.clientMaxWindowBits:
        limit = 15 if offered is True else offered
        parts.append(f"client_max_window_bits={min(policy.clientMaxWindowBits, limit)}")
    return "; ".join(parts)


def declineAll(offers: Sequence[PerMessageDeflateOffer]) -> None:
    """
    A C{perMessageCompressionAccept} that declines every offer.
    """
    return None


#: The txws server policies the matrix runs against, by name.
POLICIES: dict[str, PerMessageDeflatePolicy] = {
    "default": PerMessageDeflatePolicy(),
    "hub": HUB_DEFLATE_POLICY,
    "serverWindow9": PerMessageDeflatePolicy(serverMaxWindowBits=9),
    "serverWindow15": PerMessageDeflatePolicy(serverMaxWindowBits=15, memLevel=9),
    "clientWindowUnlimited": PerMessageDeflatePolicy(clientMaxWindowBits=0),
    "clientWindow8": PerMessageDeflatePolicy(clientMaxWindowBits=8),
    "clientWindow15": PerMessageDeflatePolicy(clientMaxWindowBits=15),
    "requireClientWindow": PerMessageDeflatePolicy(requireClientMaxWindowBits=True),
}


def txwsSettings(deflate: PerMessageDeflate) -> tuple[bool, int, bool, int]:
    """
    @return: a txws connection's permessage-deflate settings, whichever
        end it is: C{(server no context takeover, server window, client no
        context takeover, client window)}.
    """
    server, client = (
        (deflate.compressor, deflate.decompressor) if deflate.isServer
        else (deflate.decompressor, deflate.compressor)
    )
    return (server.noContextTakeover, server.windowBits,
            client.noContextTakeover, client.windowBits)


def answerSettings(
    answer: str, offer: Optional[PerMessageDeflateOffer] = None
) -> tuple[bool, int, bool, int]:
    """
    The settings an answer binds both ends to (RFC 7692 sections 7.1.1 and
    7.1.2): what it names, 15 window bits where it names none, except that
    a client keeps the hints of the offer accepted (C{client_no_context_takeover},
    a value given with C{client_max_window_bits}).

    @param offer: the offer accepted, if its hints count.
    @return: as L{txwsSettings}.
    """
    params = dict(
        [*p.strip().split("="), ""][:2] for p in answer.split(";")[1:]
    )
    hintBits = offer.client_max_window_bits if offer is not None else 0
    hintNoContext = offer is not None and offer.client_no_context_takeover
    return (
        "server_no_context_takeover" in params,
        int(params.get("server_max_window_bits") or 15),
        "client_no_context_takeover" in params or hintNoContext,
        int(params.get("client_max_window_bits") or hintBits or 15),
    )
