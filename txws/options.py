"""
One frozen options object shared by server and client factories.

Design: a connection reads its limits from C{factory.options}, never from
attributes copied onto itself, so changing a factory's options (with
L{WebSocketOptions.replace} or the factory's C{setProtocolOptions}) affects
connections made afterwards and never leaves two sources of truth.  Defaults
follow the best practice of the field (websockets): 1 MiB frames and
messages, 10 s handshake timeouts, a keepalive ping every 20 s answered
within 20 s.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

__all__ = ["AUTOBAHN_OPTION_NAMES", "WebSocketOptions", "compileOriginPatterns"]

_MiB = 1024 * 1024


@dataclass(frozen=True)
class WebSocketOptions:
    """
    Limits, timeouts and policies of WebSocket connections.

    @ivar maxFramePayloadSize: largest frame payload accepted, in bytes;
        0 for no limit.  A larger frame closes the connection with 1009.
        A frame arriving in several reads has its payload's memory reserved
        (not yet touched) when its header arrives, so this is also the most
        a peer can make a connection reserve: think twice before 0.
    @ivar maxMessagePayloadSize: largest (reassembled) message accepted, in
        bytes; 0 for no limit.  A larger message closes with 1009.
    @ivar maxHandshakeSize: largest HTTP request line plus headers (server)
        or response head (client), in bytes; a larger request gets 431.
    @ivar openHandshakeTimeout: seconds allowed for the opening handshake,
        including an asynchronous C{onConnect}; 0 for none.
    @ivar closeHandshakeTimeout: seconds to wait for the peer's Close (and,
        on a client, for the server to close TCP) before aborting; 0 for none.
    @ivar autoPingInterval: seconds between keepalive pings; 0 disables them.
    @ivar autoPingTimeout: seconds within which a pong must answer a
        keepalive ping, else the connection closes with 1011.
    @ivar autoPingSize: bytes of random payload in keepalive pings (4-125).
    @ivar autoPingRestartOnAnyTraffic: if true, any data received after a
        keepalive ping is taken as proof of life, not only its pong.
    @ivar allowedOrigins: Origin values a server accepts; C{*} wildcards
        match any run of characters within the host part; C{("*",)} accepts
        every Origin.
    @ivar allowNullOrigin: whether a server accepts C{Origin: null}.
    @ivar autoFragmentSize: if non-zero, outgoing messages larger than this
        are sent as several frames of at most this many bytes.
    @ivar maxPendingInput: bytes of input a paused connection keeps before it
        stops its transport from reading (back-pressure to the peer).
    @ivar maxConnections: a server factory refuses opening handshakes with
        503 while this many connections are open; 0 for no limit.  A
        connection counts from the moment its valid upgrade request has
        arrived (also while an asynchronous C{onConnect} decides) until it
        is gone; connections still waiting for their request are bounded
        by C{maxPendingHandshakes} instead.
    @ivar tcpNoDelay: set C{TCP_NODELAY} on TCP transports, so that the last
        segment of a message is not held back by Nagle's algorithm.
    @ivar writeBufferSize: bytes waiting to be sent to the peer beyond which
        the connection stops reading from it and pauses the application's
        producer, until they are sent (the transport's C{bufferSize}).  A
        frame larger than twice this is written in pieces of this size (and
        one byte) as the transport drains.
    @ivar maxBufferedAmount: bytes of frames a connection queues, beyond
        the transport's C{writeBufferSize}, for a peer that does not read
        them fast enough; past it, what is queued is dropped and the
        connection fails with its C{sendBufferOverflowCode} (1008 by
        default).  So a connection's outgoing data never exceeds
        C{writeBufferSize + maxBufferedAmount} plus one frame, whatever the
        application sends.  0 for no limit (then only applications that
        register a producer are protected).
    @ivar maxMessageFragments: the most frames a received message may
        have; a message with more closes the connection with 1009.  0 for
        no limit.  (Memory does not depend on it: short fragments are
        stored together, so a message costs about its size however it is
        fragmented; this bounds the work a peer can cause per message.)
    @ivar perMessageDeflate: negotiate permessage-deflate (RFC 7692): a
        server accepts a client's offer through C{perMessageCompressionAccept},
        a client offers C{perMessageCompressionOffers}.
    @ivar perMessageCompressionAccept: Autobahn's option, side-dependent.
        On a server: called with the client's valid
        L{txws.deflate.PerMessageDeflateOffer}s, in its order of
        preference, it returns the L{txws.deflate.PerMessageDeflateOfferAccept}
        of the one to accept or C{None} to decline them all; C{None} (the
        default) is a L{txws.deflate.PerMessageDeflatePolicy} with its
        defaults (12 window bits both ways, memory level 5, context
        takeover kept), an instance of which may also be given.  On a
        client: called with the server's
        L{txws.deflate.PerMessageDeflateResponse}, it returns a
        L{txws.deflate.PerMessageDeflateResponseAccept}, or C{None} to fail
        the connection; C{None} accepts every valid answer.
    @ivar perMessageCompressionOffers: what a client offers, most preferred
        first (Autobahn's option); C{None} for
        L{txws.deflate.DEFAULT_CLIENT_OFFER}, C{permessage-deflate;
        client_max_window_bits} (what browsers offer).
    @ivar perMessageDeflateMemLevel: zlib's memory level (1-9) for our
        compressor when the acceptance does not set one (a server's policy
        sets its own).  5 with 12 window bits costs 32 KiB per compressing
        connection, against 256 KiB for zlib's defaults 8/15.
    @ivar perMessageDeflateLevel: zlib's compression level for our
        compressor: 1 (fastest) to 9 (smallest), or -1 for zlib's default
        (6).  Compression is most of what a compressed message costs the
        server: for 64 KiB of JSON, level 1 takes 30-40% of the time of
        level 6 for output about a quarter larger.
    @ivar perMessageDeflateThreshold: messages shorter than this many bytes
        are sent uncompressed (RSV1 clear: the extension allows it), since
        compressing them costs more time than it saves bytes; 0 compresses
        everything.
    @ivar maxPendingHandshakes: a server factory's bound on connections
        whose opening handshake is pending: accepted, but their request has
        not arrived yet (so they do not count against C{maxConnections}).
        Once more than this many are pending, the oldest beyond it are
        aborted as soon as the reactor has had a turn to read them; at
        twice this, the oldest is aborted at once for each newcomer, so
        never more than twice this many are pending.  So sockets that send
        nothing (or trickle their request in) only take each other's places
        and cannot lock a well-behaved client out: a client whose request
        comes with its connection is dropped only if more than this many
        connections arrive before the reactor's next turn (a turn accepts
        at most what the listen queue holds: 50 by default).  Keep
        C{maxConnections} plus twice this below the process's limit on open
        files.  0 for no bound (not advised: then only the opening
        handshake timeout bounds them).
    @ivar maxPendingHandshakesPerPeer: a server factory's bound on pending
        handshakes from one peer address (an IPv4 address, or an IPv6 /64
        prefix); a connection beyond it is answered 503 at once, without
        waiting for its request, so that one address cannot push the
        handshakes of others out of the C{maxPendingHandshakes} table.  0
        (the default) for no bound: behind a reverse proxy or a large NAT,
        every client has the same address.
    """

    maxFramePayloadSize: int = _MiB
    maxMessagePayloadSize: int = _MiB
    maxHandshakeSize: int = 16 * 1024
    openHandshakeTimeout: float = 10.0
    closeHandshakeTimeout: float = 10.0
    autoPingInterval: float = 20.0
    autoPingTimeout: float = 20.0
    autoPingSize: int = 4
    autoPingRestartOnAnyTraffic: bool = False
    allowedOrigins: tuple[str, ...] = ("*",)
    allowNullOrigin: bool = False
    autoFragmentSize: int = 0
    maxPendingInput: int = 64 * 1024
    maxConnections: int = 0
    tcpNoDelay: bool = True
    writeBufferSize: int = 256 * 1024
    maxBufferedAmount: int = 4 * _MiB
    maxMessageFragments: int = 65536
    perMessageDeflate: bool = True
    perMessageCompressionAccept: Optional[Callable[[Any], Any]] = None
    perMessageCompressionOffers: Optional[tuple[Any, ...]] = None
    perMessageDeflateMemLevel: int = 5
    perMessageDeflateLevel: int = -1
    perMessageDeflateThreshold: int = 64
    maxPendingHandshakes: int = 512
    maxPendingHandshakesPerPeer: int = 0

    def __post_init__(self) -> None:
        for name in (
            "maxFramePayloadSize",
            "maxMessagePayloadSize",
            "maxHandshakeSize",
            "autoFragmentSize",
            "maxPendingInput",
            "maxConnections",
            "writeBufferSize",
            "maxBufferedAmount",
            "maxMessageFragments",
            "perMessageDeflateThreshold",
            "maxPendingHandshakes",
            "maxPendingHandshakesPerPeer",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
        for name in (
            "openHandshakeTimeout",
            "closeHandshakeTimeout",
            "autoPingInterval",
            "autoPingTimeout",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, not {value!r}")
        if not 4 <= self.autoPingSize <= 125:
            raise ValueError("autoPingSize must be between 4 and 125")
        if self.writeBufferSize < 1024:
            raise ValueError("writeBufferSize must be at least 1024 bytes")
        if self.maxHandshakeSize < 256:
            raise ValueError("maxHandshakeSize must be at least 256 bytes")
        if not 1 <= self.perMessageDeflateMemLevel <= 9:
            raise ValueError("perMessageDeflateMemLevel must be between 1 and 9")
        level = self.perMessageDeflateLevel
        if isinstance(level, bool) or not isinstance(level, int) or not -1 <= level <= 9:
            raise ValueError(f"perMessageDeflateLevel must be between -1 and 9, not {level!r}")
        accept = self.perMessageCompressionAccept
        if accept is not None and not callable(accept):
            raise ValueError("perMessageCompressionAccept must be callable or None")
        offers = self.perMessageCompressionOffers
        if offers is not None:
            from txws.deflate import PerMessageDeflateOffer

            offers = tuple(offers)
            for offer in offers:
                if not isinstance(offer, PerMessageDeflateOffer):
                    raise ValueError(
                        "perMessageCompressionOffers must hold PerMessageDeflateOffer "
                        f"objects, not {type(offer).__name__}"
                    )
            object.__setattr__(self, "perMessageCompressionOffers", offers)
        origins: object = self.allowedOrigins
        if isinstance(origins, str):
            raise ValueError("allowedOrigins must be a sequence of strings, not a string")
        object.__setattr__(self, "allowedOrigins", tuple(self.allowedOrigins))

    def replace(self, **changes: Any) -> WebSocketOptions:
        """
        Return a copy with some options changed.

        @param changes: option names and their new values.
        @return: the new options.
        @raise TypeError: for an unknown option name.
        @raise ValueError: for an invalid value.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            hint = ""
            foreign = [name for name in unknown if name in AUTOBAHN_OPTION_NAMES]
            if foreign:
                hint = " (Autobahn options txws does not implement: " + ", ".join(foreign) + ")"
            raise TypeError(
                "unknown WebSocket option(s): "
                + ", ".join(unknown)
                + hint
                + "; known options: "
                + ", ".join(sorted(known))
            )
        return dataclasses.replace(self, **changes)

    def originAllowed(self, origin: str | None) -> bool:
        """
        Does the policy accept a request with this C{Origin} header?

        Requests without an Origin come from non-browser clients, which can
        send any header they like, so the check does not apply to them.

        @param origin: the header's value, or C{None} when absent.
        @return: whether the request may proceed.
        """
        if origin is None:
            return True
        if origin.strip().lower() == "null":
            return self.allowNullOrigin
        if "*" in self.allowedOrigins:
            return True
        patterns = _originPatternCache.get(self.allowedOrigins)
        if patterns is None:
            patterns = compileOriginPatterns(self.allowedOrigins)
            _originPatternCache[self.allowedOrigins] = patterns
        candidate = origin.strip().lower()
        return any(p.fullmatch(candidate) for p in patterns)


_originPatternCache: dict[tuple[str, ...], list[re.Pattern[str]]] = {}


def compileOriginPatterns(origins: tuple[str, ...]) -> list[re.Pattern[str]]:
    """
    Compile Origin patterns: C{*} matches any run of characters except
    C{/}, so C{https://*.example.com} matches C{https://a.b.example.com} but
    not C{https://example.com.evil.net/.example.com}.  Comparison is
    case-insensitive.

    @param origins: the patterns.
    @return: compiled regular expressions, one per pattern.
    """
    return [
        re.compile(re.escape(o.strip().lower()).replace(r"\*", "[^/]*")) for o in origins
    ]


#: Options Autobahn's C{setProtocolOptions} accepts; used to explain a
#: refusal when an application ported from Autobahn passes one txws lacks.
AUTOBAHN_OPTION_NAMES = frozenset(
    {
        "versions",
        "webStatus",
        "utf8validateIncoming",
        "maskServerFrames",
        "requireMaskedClientFrames",
        "applyMask",
        "maxFramePayloadSize",
        "maxMessagePayloadSize",
        "autoFragmentSize",
        "failByDrop",
        "echoCloseCodeReason",
        "openHandshakeTimeout",
        "closeHandshakeTimeout",
        "tcpNoDelay",
        "perMessageCompressionAccept",
        "perMessageCompressionOffers",
        "autoPingInterval",
        "autoPingTimeout",
        "autoPingSize",
        "autoPingRestartOnAnyTraffic",
        "serveFlashSocketPolicy",
        "flashSocketPolicy",
        "allowedOrigins",
        "allowNullOrigin",
        "maxConnections",
        "trustXForwardedFor",
        "acceptMaskedServerFrames",
        "maskClientFrames",
        "serverConnectionDropTimeout",
        "version",
    }
)
