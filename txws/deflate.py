"""
permessage-deflate (RFC 7692): negotiation and per-message (de)compression.

Design: this module is pure, like L{txws.frames}: it takes header values and
payload bytes and returns values; it uses C{zlib} and the standard library,
does no I/O and imports nothing from C{twisted.internet}.  Three parts:

  - B{Negotiation} (RFC 7692 section 7.1).  L{parseExtensionHeader} parses
    C{Sec-WebSocket-Extensions} strictly (RFC 6455 section 9.1 with quoted
    strings: a comma inside a quoted value does not split the list, a
    repeated parameter is kept so that it can be refused).  On a server,
    L{parseOffers} turns the client's offers into L{PerMessageDeflateOffer}s,
    silently declining the invalid ones as section 5 requires, and a policy
    (L{PerMessageDeflatePolicy}, or an Autobahn application's
    C{perMessageCompressionAccept}) picks one, returning a
    L{PerMessageDeflateOfferAccept} whose C{get_extension_string()} is the
    answer.  On a client, L{buildOfferHeader} formats the offers and
    L{parseResponse} checks the server's answer against what was offered
    (a bad answer raises L{NegotiationError}: the client fails the
    connection).  The four Autobahn classes keep Autobahn's constructor
    arguments and attribute names, so Autobahn callables work unchanged.
  - B{Compression} (section 7.2.1).  A L{Compressor} per connection turns a
    whole message into its payload without the trailing C{00 00 ff ff}.
    With no context takeover it starts every message afresh: small zlib
    states are released after each message, a large one (15/8) is reset
    with C{Z_FULL_FLUSH} instead, as reallocating it costs ~5 times more.
    L{compressOnce} compresses a payload with a fresh context on a shared
    compressor, so a hub frames one message once for every subscriber whose
    compressor has the same L{Compressor.sharedKey}.
  - B{Decompression with bounded inflation} (section 7.2.2).  A
    L{Decompressor} inflates frame by frame and appends C{00 00 ff ff} at
    the end of the message.  Every call to zlib is bounded: it asks for at
    most C{step} bytes, and never more than one byte beyond what the message
    size limit still allows, and it drains C{unconsumed_tail} and whatever
    zlib holds back in further bounded calls.  So a message of exactly the
    limit comes out whole, one byte more raises L{DeflateError} with 1009,
    and a bomb never makes this module hold more than the limit plus one
    byte of output.  Corrupt data raises L{DeflateError} with 1007.

zlib refuses 8 window bits for a raw deflate compressor (madler/zlib#171).
When 8 is negotiated for our compressor it uses 9: zlib never emits a
distance beyond the window size minus 262 bytes (C{MAX_DIST}), so with a
512-byte window every distance is at most 250 and the peer's 256-byte
window decodes the stream (C{tests/test_deflate.py} checks it with an
8-bit inflater).  Inflaters accept 8.

Memory per connection (zlib's formulas, plus ~6 KiB of deflate and ~7 KiB
of inflate state): a compressor holds C{(1 << (windowBits + 2)) +
(1 << (memLevel + 9))} bytes, 256 KiB for 15/8, 32 KiB for 12/5; a
decompressor holds C{1 << windowBits} (allocated at the first output) plus
~7 KiB.  Both are created at the first compressed message, not at the
handshake, and without context takeover a decompressor (and a compressor
under 128 KiB) is released at the end of every message, so an idle
connection without context takeover holds no zlib state at all.

@see: U{RFC 7692<https://www.rfc-editor.org/rfc/rfc7692>}
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Optional, Union

from txws.frames import CloseCode, FrameError, PreparedMessage, encodeFrame

__all__ = [
    "DEFAULT_CLIENT_OFFER",
    "DEFAULT_STEP",
    "EXTENSION_NAME",
    "RSV1",
    "TRAILER",
    "Compressor",
    "Decompressor",
    "DeflateError",
    "NegotiationError",
    "Params",
    "PerMessageDeflate",
    "PerMessageDeflateOffer",
    "PerMessageDeflateOfferAccept",
    "PerMessageDeflatePolicy",
    "PerMessageDeflateResponse",
    "PerMessageDeflateResponseAccept",
    "buildOfferHeader",
    "compressOnce",
    "compressedFrame",
    "deflateMemory",
    "inflateMemory",
    "parseExtensionHeader",
    "parseOffers",
    "parseResponse",
    "zlibWindowBits",
]

#: The extension's registered name.
EXTENSION_NAME = "permessage-deflate"

#: The first-byte bit (C{0x40}) that marks the first frame of a compressed
#: message.
RSV1 = 0x40

#: The empty stored block's last four bytes, removed by the sender and
#: appended by the receiver (RFC 7692 sections 7.2.1 and 7.2.2).
TRAILER = b"\x00\x00\xff\xff"

#: The most output one zlib call may produce while inflating.
DEFAULT_STEP = 65536

#: The most compressed input given to zlib at once: what it hands back as
#: C{unconsumed_tail} after each bounded call (a copy) stays this small.
_INPUT_SLICE = 16384

#: Compressors whose zlib buffers are smaller than this are released between
#: messages when there is no context takeover (see L{Compressor}).
_RELEASE_BELOW = 131072

#: Window bits a peer may negotiate (RFC 7692 section 7.1.2).
_WINDOW_BITS = {str(bits): bits for bits in range(8, 16)}

#: Memory levels zlib accepts.
_MEM_LEVELS = range(1, 10)

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t !-~\x80-\xff])*)"'
_PARAM = re.compile(
    r"[ \t]*;[ \t]*(" + _TOKEN + r")(?:[ \t]*=[ \t]*(?:(" + _TOKEN + r")|" + _QUOTED + r"))?"
)
_NAME = re.compile(r"[ \t]*(" + _TOKEN + r")")
_SEPARATOR = re.compile(r"[ \t]*(?:,|$)")
_ESCAPE = re.compile(r"\\(.)")


class DeflateError(FrameError):
    """
    A compressed message cannot be accepted: the connection must fail.

    A L{FrameError}, so the protocol's one place that turns peer errors into
    a Close handles it.

    @ivar code: L{CloseCode.MESSAGE_TOO_BIG} (1009) when the inflated message
        exceeds the limit, L{CloseCode.INVALID_PAYLOAD} (1007) when the data
        does not inflate.
    """


class NegotiationError(ValueError):
    """
    An extension offer or answer is malformed or invalid.

    A server declines such an offer (RFC 7692 section 5); a client fails the
    connection on such an answer (section 5 and RFC 6455 section 9.1).
    """


#: The parameters of one extension item: C{(name, value or None)} pairs.
Params = list[tuple[str, Optional[str]]]


def parseExtensionHeader(values: Iterable[str]) -> list[tuple[str, Params]]:
    """
    Parse C{Sec-WebSocket-Extensions} strictly (RFC 6455 section 9.1):
    C{extension *(";" param)} items separated by commas, parameter values
    being tokens or quoted strings (unescaped here), optional whitespace
    around separators, empty list items ignored (RFC 9110 section 5.6.1).

    Unlike L{txws.handshake.parseExtensions}, a comma inside a quoted value
    does not split the list, and repeated parameters are all kept (in
    order), so that the caller can refuse them.

    @param values: the values of every occurrence of the header.
    @return: C{(name, params)} items in order, names lower-cased, each
        C{params} a list of C{(name, value)} with C{None} for no value.
    @raise NegotiationError: if the header does not follow the grammar.
    """
    items: list[tuple[str, Params]] = []
    for value in values:
        pos = 0
        end = len(value)
        while pos < end:
            sep = _SEPARATOR.match(value, pos)
            if sep is not None and sep.end() > pos:
                pos = sep.end()
                continue
            name = _NAME.match(value, pos)
            if name is None:
                raise NegotiationError("malformed Sec-WebSocket-Extensions header")
            pos = name.end()
            params: Params = []
            while True:
                param = _PARAM.match(value, pos)
                if param is None:
                    break
                key, token, quoted = param.groups()
                if quoted is not None:
                    token = _ESCAPE.sub(r"\1", quoted)
                params.append((key.lower(), token))
                pos = param.end()
            sep = _SEPARATOR.match(value, pos)
            if sep is None:
                raise NegotiationError("malformed Sec-WebSocket-Extensions header")
            pos = sep.end()
            items.append((name.group(1).lower(), params))
    return items


def _windowBitsValue(name: str, value: Optional[str]) -> int:
    if value is None:
        raise NegotiationError(f"{name} requires a value")
    bits = _WINDOW_BITS.get(value)
    if bits is None:
        raise NegotiationError(f"invalid value for {name}")
    return bits


def _checkWindowBits(name: str, bits: int, allowZero: bool = True) -> None:
    if not (allowZero and bits == 0) and not (type(bits) is int and 8 <= bits <= 15):
        raise ValueError(f"{name} must be between 8 and 15" + (" or 0" if allowZero else ""))


def _checkMemLevel(memLevel: Optional[int]) -> None:
    if memLevel is not None and memLevel not in _MEM_LEVELS:
        raise ValueError("mem_level must be between 1 and 9")


def _checkBool(name: str, value: object, optional: bool = False) -> None:
    if not (type(value) is bool or (optional and value is None)):
        raise TypeError(f"{name} must be a bool")


def zlibWindowBits(bits: int) -> int:
    """
    The window bits to give zlib's compressor for a negotiated value: 8
    becomes 9 (zlib refuses 8 for raw deflate; with 9 every distance is at
    most 250 bytes, within a 256-byte window).

    @param bits: the negotiated window bits, 8 to 15.
    @return: C{bits}, or 9 for 8.
    """
    return 9 if bits == 8 else bits


def deflateMemory(windowBits: int = 15, memLevel: int = 8) -> int:
    """
    @param windowBits: the compressor's window bits (8 counts as 9).
    @param memLevel: its memory level.
    @return: zlib's documented size of a compressor's buffers, in bytes
        (about 6 KiB of state comes on top).
    """
    return (1 << (zlibWindowBits(windowBits) + 2)) + (1 << (memLevel + 9))


def inflateMemory(windowBits: int = 15) -> int:
    """
    @param windowBits: the decompressor's window bits.
    @return: zlib's window for an inflater, in bytes (about 7 KiB of state
        comes on top).
    """
    return 1 << windowBits


class PerMessageDeflateOffer:
    """
    One C{permessage-deflate} offer, as a client makes it and a server sees
    it (the attributes of Autobahn's class of the same name, plus the
    client's two hints).

    @ivar accept_no_context_takeover: the server may ask the client for no
        context takeover.  Always true in a parsed offer (RFC 7692 section
        7.1.1.2 lets a server ask in any case); a client offer with it
        carries C{client_no_context_takeover}.
    @ivar accept_max_window_bits: the client offered C{client_max_window_bits},
        so the server may limit the client's window.
    @ivar request_no_context_takeover: the client asks the server for no
        context takeover (C{server_no_context_takeover}).
    @ivar request_max_window_bits: the window bits the client allows the
        server (C{server_max_window_bits}), 0 for no limit.
    @ivar client_max_window_bits: the value given with
        C{client_max_window_bits} (the client will use no larger window), 0
        if none.
    @ivar client_no_context_takeover: the offer carried
        C{client_no_context_takeover}: the client will not use context
        takeover even if the answer does not ask for it.
    """

    EXTENSION_NAME = EXTENSION_NAME

    __slots__ = (
        "accept_max_window_bits",
        "accept_no_context_takeover",
        "client_max_window_bits",
        "client_no_context_takeover",
        "request_max_window_bits",
        "request_no_context_takeover",
    )

    def __init__(
        self,
        accept_no_context_takeover: bool = True,
        accept_max_window_bits: bool = True,
        request_no_context_takeover: bool = False,
        request_max_window_bits: int = 0,
        client_max_window_bits: int = 0,
        client_no_context_takeover: Optional[bool] = None,
    ) -> None:
        """
        The first four arguments are Autobahn's.

        @param client_max_window_bits: a value to send with
            C{client_max_window_bits} (requires C{accept_max_window_bits}).
        @param client_no_context_takeover: whether the offer carries
            C{client_no_context_takeover}; by default, as
            C{accept_no_context_takeover}.
        @raise ValueError: for window bits outside 8-15 (0 for none).
        @raise TypeError: for flags that are not bools.
        """
        _checkBool("accept_no_context_takeover", accept_no_context_takeover)
        _checkBool("accept_max_window_bits", accept_max_window_bits)
        _checkBool("request_no_context_takeover", request_no_context_takeover)
        _checkWindowBits("request_max_window_bits", request_max_window_bits)
        _checkWindowBits("client_max_window_bits", client_max_window_bits)
        if client_max_window_bits and not accept_max_window_bits:
            raise ValueError("client_max_window_bits requires accept_max_window_bits")
        self.accept_no_context_takeover = accept_no_context_takeover
        self.accept_max_window_bits = accept_max_window_bits
        self.request_no_context_takeover = request_no_context_takeover
        self.request_max_window_bits = request_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.client_no_context_takeover = (
            accept_no_context_takeover
            if client_no_context_takeover is None
            else client_no_context_takeover
        )

    @classmethod
    def parse(cls, params: Sequence[tuple[str, Optional[str]]]) -> PerMessageDeflateOffer:
        """
        Validate the parameters of one offer (RFC 7692 sections 5 and 7.1).

        @param params: C{(name, value)} pairs from L{parseExtensionHeader}.
        @return: the offer.
        @raise NegotiationError: for an unknown or repeated parameter, a
            value given to a flag, a missing C{server_max_window_bits}
            value, or window bits that are not a decimal 8-15 without
            leading zeros: the server declines this offer.
        """
        seen: set[str] = set()
        hintNoContext = False
        acceptWindow = False
        clientBits = 0
        requestNoContext = False
        requestBits = 0
        for name, value in params:
            if name in seen:
                raise NegotiationError(f"duplicate parameter {name}")
            seen.add(name)
            if name == "server_no_context_takeover":
                if value is not None:
                    raise NegotiationError(f"{name} takes no value")
                requestNoContext = True
            elif name == "client_no_context_takeover":
                if value is not None:
                    raise NegotiationError(f"{name} takes no value")
                hintNoContext = True
            elif name == "server_max_window_bits":
                requestBits = _windowBitsValue(name, value)
            elif name == "client_max_window_bits":
                acceptWindow = True
                if value is not None:
                    clientBits = _windowBitsValue(name, value)
            else:
                raise NegotiationError(f"unknown parameter {name}")
        return cls(
            True, acceptWindow, requestNoContext, requestBits, clientBits, hintNoContext
        )

    def get_extension_string(self) -> str:
        """
        @return: the offer as it goes into C{Sec-WebSocket-Extensions}.
        """
        parts = [EXTENSION_NAME]
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.client_max_window_bits:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        elif self.accept_max_window_bits:
            parts.append("client_max_window_bits")
        if self.request_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.request_max_window_bits:
            parts.append(f"server_max_window_bits={self.request_max_window_bits}")
        return "; ".join(parts)

    extensionString = get_extension_string

    def __repr__(self) -> str:
        return (
            "PerMessageDeflateOffer("
            f"accept_no_context_takeover={self.accept_no_context_takeover}, "
            f"accept_max_window_bits={self.accept_max_window_bits}, "
            f"request_no_context_takeover={self.request_no_context_takeover}, "
            f"request_max_window_bits={self.request_max_window_bits}, "
            f"client_max_window_bits={self.client_max_window_bits}, "
            f"client_no_context_takeover={self.client_no_context_takeover})"
        )


#: What a txws client offers by default: C{permessage-deflate;
#: client_max_window_bits} (as browsers and C{websockets} do), so the server
#: may limit our window and we keep context takeover unless asked not to.
DEFAULT_CLIENT_OFFER = PerMessageDeflateOffer(accept_no_context_takeover=False)


class PerMessageDeflateOfferAccept:
    """
    A server's acceptance of one offer, with Autobahn's arguments.

    @ivar offer: the accepted L{PerMessageDeflateOffer}.
    @ivar request_no_context_takeover: ask the client for no context
        takeover (C{client_no_context_takeover} in the answer).
    @ivar request_max_window_bits: limit the client's window
        (C{client_max_window_bits=N} in the answer), 0 for none; only if the
        client offered C{client_max_window_bits}, and lowered to the value
        the client gave with it.
    @ivar no_context_takeover: the server's compressor uses no context
        takeover (C{None}: as the client requested).  When true it is
        announced as C{server_no_context_takeover}, which RFC 7692 section
        7.1.1.1 allows even unrequested.
    @ivar window_bits: the server compressor's window bits (C{None}: as the
        client allowed, else 15); announced as C{server_max_window_bits}
        when set.
    @ivar mem_level: the server compressor's memory level (C{None}: the
        policy's default).
    @ivar max_message_size: a limit on inflated messages, or C{None}.
    """

    EXTENSION_NAME = EXTENSION_NAME

    __slots__ = (
        "max_message_size",
        "mem_level",
        "no_context_takeover",
        "offer",
        "request_max_window_bits",
        "request_no_context_takeover",
        "window_bits",
    )

    def __init__(
        self,
        offer: PerMessageDeflateOffer,
        request_no_context_takeover: bool = False,
        request_max_window_bits: int = 0,
        no_context_takeover: Optional[bool] = None,
        window_bits: Optional[int] = None,
        mem_level: Optional[int] = None,
        max_message_size: Optional[int] = None,
    ) -> None:
        """
        @raise ValueError: when the acceptance contradicts the offer (a
            client window limit the client did not offer, context takeover
            the client refused, a window larger than the client allows) or
            a value is out of range.
        @raise TypeError: for an offer or flag of the wrong type.
        """
        if not isinstance(offer, PerMessageDeflateOffer):
            raise TypeError("offer must be a PerMessageDeflateOffer")
        _checkBool("request_no_context_takeover", request_no_context_takeover)
        _checkWindowBits("request_max_window_bits", request_max_window_bits)
        if request_max_window_bits and not offer.accept_max_window_bits:
            raise ValueError("the client did not offer client_max_window_bits")
        if request_max_window_bits and offer.client_max_window_bits:
            request_max_window_bits = min(request_max_window_bits, offer.client_max_window_bits)
        _checkBool("no_context_takeover", no_context_takeover, optional=True)
        if offer.request_no_context_takeover and no_context_takeover is False:
            raise ValueError("the client requested server_no_context_takeover")
        if window_bits is not None:
            _checkWindowBits("window_bits", window_bits, allowZero=False)
            if offer.request_max_window_bits and window_bits > offer.request_max_window_bits:
                raise ValueError("window_bits exceeds the client's server_max_window_bits")
        _checkMemLevel(mem_level)
        self.offer = offer
        self.request_no_context_takeover = request_no_context_takeover
        self.request_max_window_bits = request_max_window_bits
        self.no_context_takeover = no_context_takeover
        self.window_bits = window_bits
        self.mem_level = mem_level
        self.max_message_size = max_message_size

    @property
    def serverNoContextTakeover(self) -> bool:
        """
        Whether the server's compressor resets after every message.
        """
        if self.no_context_takeover is None:
            return self.offer.request_no_context_takeover
        return self.no_context_takeover

    @property
    def serverMaxWindowBits(self) -> int:
        """
        The server compressor's window bits (8-15).
        """
        return self.window_bits or self.offer.request_max_window_bits or 15

    def get_extension_string(self) -> str:
        """
        @return: the server's C{Sec-WebSocket-Extensions} answer.
        """
        parts = [EXTENSION_NAME]
        if self.serverNoContextTakeover:
            parts.append("server_no_context_takeover")
        if self.window_bits or self.offer.request_max_window_bits:
            parts.append(f"server_max_window_bits={self.serverMaxWindowBits}")
        # A client's client_no_context_takeover hint is confirmed, so that
        # the server, which then releases its inflater after every message,
        # holds the client to it: Autobahn's client sends the hint by default
        # and keeps its context unless the answer asks otherwise.
        if self.request_no_context_takeover or self.offer.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.request_max_window_bits:
            parts.append(f"client_max_window_bits={self.request_max_window_bits}")
        return "; ".join(parts)

    extensionString = get_extension_string

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflateOfferAccept(offer={self.offer!r}, "
            f"request_no_context_takeover={self.request_no_context_takeover}, "
            f"request_max_window_bits={self.request_max_window_bits}, "
            f"no_context_takeover={self.no_context_takeover}, "
            f"window_bits={self.window_bits}, mem_level={self.mem_level}, "
            f"max_message_size={self.max_message_size})"
        )


class PerMessageDeflateResponse:
    """
    The server's answer, as a client sees it (Autobahn's class and
    attributes; window bits 0 when absent).

    @ivar offer: the offer the answer was matched to by L{parseResponse}, or
        C{None}.
    """

    EXTENSION_NAME = EXTENSION_NAME

    __slots__ = (
        "client_max_window_bits",
        "client_no_context_takeover",
        "offer",
        "server_max_window_bits",
        "server_no_context_takeover",
    )

    def __init__(
        self,
        client_max_window_bits: int,
        client_no_context_takeover: bool,
        server_max_window_bits: int,
        server_no_context_takeover: bool,
        offer: Optional[PerMessageDeflateOffer] = None,
    ) -> None:
        self.client_max_window_bits = client_max_window_bits
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.server_no_context_takeover = server_no_context_takeover
        self.offer = offer

    @classmethod
    def parse(cls, params: Sequence[tuple[str, Optional[str]]]) -> PerMessageDeflateResponse:
        """
        Validate the parameters of an answer on their own (L{parseResponse}
        also checks them against the offers).

        @param params: C{(name, value)} pairs from L{parseExtensionHeader}.
        @return: the response.
        @raise NegotiationError: for an unknown or repeated parameter, a
            value given to a flag, or window bits missing or not 8-15.
        """
        seen: set[str] = set()
        values = {
            "client_max_window_bits": 0,
            "server_max_window_bits": 0,
        }
        flags = {"client_no_context_takeover": False, "server_no_context_takeover": False}
        for name, value in params:
            if name in seen:
                raise NegotiationError(f"duplicate parameter {name}")
            seen.add(name)
            if name in flags:
                if value is not None:
                    raise NegotiationError(f"{name} takes no value")
                flags[name] = True
            elif name in values:
                values[name] = _windowBitsValue(name, value)
            else:
                raise NegotiationError(f"unknown parameter {name}")
        return cls(
            values["client_max_window_bits"],
            flags["client_no_context_takeover"],
            values["server_max_window_bits"],
            flags["server_no_context_takeover"],
        )

    def matches(self, offer: PerMessageDeflateOffer) -> Optional[str]:
        """
        Is this answer a valid acceptance of C{offer} (RFC 7692 section
        7.1)?

        @return: C{None} if so, else what is wrong.
        """
        if offer.request_no_context_takeover and not self.server_no_context_takeover:
            return "the answer lacks the requested server_no_context_takeover"
        if offer.request_max_window_bits:
            if not self.server_max_window_bits:
                return "the answer lacks the requested server_max_window_bits"
            if self.server_max_window_bits > offer.request_max_window_bits:
                return "server_max_window_bits exceeds the offered value"
        if self.client_max_window_bits:
            if not offer.accept_max_window_bits:
                return "client_max_window_bits was not offered"
            if offer.client_max_window_bits and (
                self.client_max_window_bits > offer.client_max_window_bits
            ):
                return "client_max_window_bits exceeds the offered value"
        return None

    def __repr__(self) -> str:
        return (
            "PerMessageDeflateResponse("
            f"client_max_window_bits={self.client_max_window_bits}, "
            f"client_no_context_takeover={self.client_no_context_takeover}, "
            f"server_max_window_bits={self.server_max_window_bits}, "
            f"server_no_context_takeover={self.server_no_context_takeover})"
        )


class PerMessageDeflateResponseAccept:
    """
    A client's acceptance of the server's answer, with Autobahn's arguments.

    @ivar response: the L{PerMessageDeflateResponse}.
    @ivar no_context_takeover: the client's compressor uses no context
        takeover (C{None}: as the answer asks, or as the offer hinted).
    @ivar window_bits: the client compressor's window bits (C{None}: as the
        answer allows, else 15).
    @ivar mem_level: the client compressor's memory level.
    @ivar max_message_size: a limit on inflated messages, or C{None}.
    """

    EXTENSION_NAME = EXTENSION_NAME

    __slots__ = ("max_message_size", "mem_level", "no_context_takeover", "response", "window_bits")

    def __init__(
        self,
        response: PerMessageDeflateResponse,
        no_context_takeover: Optional[bool] = None,
        window_bits: Optional[int] = None,
        mem_level: Optional[int] = None,
        max_message_size: Optional[int] = None,
    ) -> None:
        """
        @raise ValueError: when the acceptance contradicts the answer or a
            value is out of range.
        @raise TypeError: for a response or flag of the wrong type.
        """
        if not isinstance(response, PerMessageDeflateResponse):
            raise TypeError("response must be a PerMessageDeflateResponse")
        _checkBool("no_context_takeover", no_context_takeover, optional=True)
        if response.client_no_context_takeover and no_context_takeover is False:
            raise ValueError("the server requested client_no_context_takeover")
        if window_bits is not None:
            _checkWindowBits("window_bits", window_bits, allowZero=False)
            if response.client_max_window_bits and window_bits > response.client_max_window_bits:
                raise ValueError("window_bits exceeds the server's client_max_window_bits")
        _checkMemLevel(mem_level)
        self.response = response
        self.no_context_takeover = no_context_takeover
        self.window_bits = window_bits
        self.mem_level = mem_level
        self.max_message_size = max_message_size

    @property
    def clientNoContextTakeover(self) -> bool:
        """
        Whether the client's compressor resets after every message.
        """
        if self.no_context_takeover is not None:
            return self.no_context_takeover
        offer = self.response.offer
        hinted = offer is not None and offer.client_no_context_takeover
        return self.response.client_no_context_takeover or hinted

    @property
    def clientMaxWindowBits(self) -> int:
        """
        The client compressor's window bits (8-15).
        """
        if self.window_bits:
            return self.window_bits
        offer = self.response.offer
        hint = offer.client_max_window_bits if offer is not None else 0
        return self.response.client_max_window_bits or hint or 15

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflateResponseAccept(response={self.response!r}, "
            f"no_context_takeover={self.no_context_takeover}, "
            f"window_bits={self.window_bits}, mem_level={self.mem_level})"
        )


def parseOffers(
    values: Iterable[str], declined: Optional[list[tuple[Params, str]]] = None
) -> list[PerMessageDeflateOffer]:
    """
    The client's valid C{permessage-deflate} offers, in its order of
    preference; invalid ones are declined (RFC 7692 section 5) and other
    extensions ignored.

    @param values: the values of every C{Sec-WebSocket-Extensions} header.
    @param declined: if given, C{(params, reason)} is appended for every
        declined offer (for the log).
    @return: the offers.
    @raise NegotiationError: if the header is not valid syntax at all
        (the handshake answers 400, as it does today).
    """
    offers = []
    for name, params in parseExtensionHeader(values):
        if name != EXTENSION_NAME:
            continue
        try:
            offers.append(PerMessageDeflateOffer.parse(params))
        except NegotiationError as e:
            if declined is not None:
                declined.append((params, str(e)))
    return offers


def buildOfferHeader(offers: Sequence[PerMessageDeflateOffer] = (DEFAULT_CLIENT_OFFER,)) -> str:
    """
    @param offers: the client's offers, most preferred first.
    @return: the C{Sec-WebSocket-Extensions} value a client sends.
    """
    return ", ".join(offer.get_extension_string() for offer in offers)


def parseResponse(
    values: Iterable[str], offers: Sequence[PerMessageDeflateOffer]
) -> Optional[PerMessageDeflateResponse]:
    """
    Check the server's C{Sec-WebSocket-Extensions} answer against the offers
    the client made.

    @param values: the values of every C{Sec-WebSocket-Extensions} header
        in the answer.
    @param offers: what the client offered.
    @return: the response, its C{offer} set to the first offer it accepts,
        or C{None} when the server enabled no extension.
    @raise NegotiationError: when the answer is malformed, names another
        extension or C{permessage-deflate} twice, has invalid parameters,
        or accepts none of the offers: the client fails the connection.
    """
    items = parseExtensionHeader(values)
    if not items:
        return None
    if len(items) > 1:
        raise NegotiationError("the server enabled more than one extension")
    name, params = items[0]
    if name != EXTENSION_NAME or not offers:
        raise NegotiationError(f"the server enabled an extension that was not offered: {name}")
    response = PerMessageDeflateResponse.parse(params)
    reason = "no offer"
    for offer in offers:
        mismatch = response.matches(offer)
        if mismatch is None:
            response.offer = offer
            return response
        reason = mismatch
    raise NegotiationError(reason)


class PerMessageDeflatePolicy:
    """
    A server's choice among the client's offers: the first offer, in the
    client's order, that the policy can accept.  An instance is callable
    with the offers, so it serves as C{perMessageCompressionAccept}.

    Every setting describes the server: how it compresses, what it asks of
    the client.

    @ivar serverNoContextTakeover: compress every message with a fresh
        context (announced); needed for L{compressOnce} fan-out, and saves
        nothing in memory (the compressor stays allocated).
    @ivar clientNoContextTakeover: ask the client for no context takeover;
        the server's decompressor is then released after every message.
    @ivar serverMaxWindowBits: the server compressor's window bits (lowered
        to what the client allows), announced.
    @ivar clientMaxWindowBits: the window bits asked of the client when it
        offers C{client_max_window_bits}, 0 to ask nothing.  RFC 7692 allows
        8, but clients built on zlib (C{websockets}, Autobahn) refuse an
        answer asking for 8, since zlib cannot compress with it: ask 9 at
        the least.
    @ivar requireClientMaxWindowBits: decline offers without
        C{client_max_window_bits} (whose client may use 15 bits, costing a
        32 KiB window per connection) instead of accepting them.
    @ivar memLevel: the server compressor's memory level.
    """

    __slots__ = (
        "clientMaxWindowBits",
        "clientNoContextTakeover",
        "memLevel",
        "requireClientMaxWindowBits",
        "serverMaxWindowBits",
        "serverNoContextTakeover",
    )

    def __init__(
        self,
        serverNoContextTakeover: bool = False,
        clientNoContextTakeover: bool = False,
        serverMaxWindowBits: int = 12,
        clientMaxWindowBits: int = 12,
        memLevel: int = 5,
        requireClientMaxWindowBits: bool = False,
    ) -> None:
        """
        @raise ValueError: for window bits outside 8-15 (C{clientMaxWindowBits}
            may be 0) or a memory level outside 1-9.
        """
        _checkWindowBits("serverMaxWindowBits", serverMaxWindowBits, allowZero=False)
        _checkWindowBits("clientMaxWindowBits", clientMaxWindowBits)
        _checkMemLevel(memLevel)
        if requireClientMaxWindowBits and not clientMaxWindowBits:
            raise ValueError("requireClientMaxWindowBits needs clientMaxWindowBits")
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
        self.memLevel = memLevel
        self.requireClientMaxWindowBits = requireClientMaxWindowBits

    def accept(
        self, offers: Sequence[PerMessageDeflateOffer]
    ) -> Optional[PerMessageDeflateOfferAccept]:
        """
        @param offers: the client's valid offers, most preferred first.
        @return: the acceptance of the first acceptable offer, or C{None}
            to decline them all.
        """
        for offer in offers:
            # Autobahn hands over offers of other extensions too.
            if not isinstance(offer, PerMessageDeflateOffer):
                continue  # type: ignore[unreachable]
            if self.requireClientMaxWindowBits and not offer.accept_max_window_bits:
                continue
            bits = self.serverMaxWindowBits
            if offer.request_max_window_bits:
                bits = min(bits, offer.request_max_window_bits)
            return PerMessageDeflateOfferAccept(
                offer,
                request_no_context_takeover=self.clientNoContextTakeover,
                request_max_window_bits=(
                    self.clientMaxWindowBits if offer.accept_max_window_bits else 0
                ),
                no_context_takeover=(
                    True if self.serverNoContextTakeover or offer.request_no_context_takeover
                    else None
                ),
                window_bits=bits,
                mem_level=self.memLevel,
            )
        return None

    __call__ = accept

    def __repr__(self) -> str:
        return (
            f"PerMessageDeflatePolicy(serverNoContextTakeover={self.serverNoContextTakeover}, "
            f"clientNoContextTakeover={self.clientNoContextTakeover}, "
            f"serverMaxWindowBits={self.serverMaxWindowBits}, "
            f"clientMaxWindowBits={self.clientMaxWindowBits}, memLevel={self.memLevel}, "
            f"requireClientMaxWindowBits={self.requireClientMaxWindowBits})"
        )


class Compressor:
    """
    Compresses the messages one endpoint sends (RFC 7692 section 7.2.1).

    The zlib state is created at the first compressed message.  With
    context takeover it is kept.  Without, either it is released after every
    message (when its buffers are under 128 KiB, below glibc's mmap
    threshold: a fresh C{compressobj} then costs the same as a reset, ~36 us
    either way for 1 KiB of JSON at 12/5, and an idle connection holds
    nothing), or it is kept and every message ends with C{Z_FULL_FLUSH},
    which forgets the history (for 15/8, where a fresh C{compressobj} costs
    ~170 us against ~36 us).

    @ivar windowBits: the negotiated window bits (8 runs zlib with 9).
    @ivar noContextTakeover: whether every message starts from a fresh
        context.
    @ivar memLevel: zlib's memory level.
    @ivar level: zlib's compression level (-1: zlib's default, 6).
    @ivar threshold: messages shorter than this are sent uncompressed (RSV1
        clear); 0 compresses everything.
    @ivar release: whether the zlib state is released after every message.
    """

    __slots__ = (
        "_flush",
        "_key",
        "_obj",
        "_streaming",
        "level",
        "memLevel",
        "noContextTakeover",
        "release",
        "threshold",
        "windowBits",
    )

    def __init__(
        self,
        windowBits: int = 15,
        noContextTakeover: bool = False,
        memLevel: int = 8,
        level: int = -1,
        threshold: int = 0,
        release: Optional[bool] = None,
    ) -> None:
        """
        @param release: release the zlib state after every message (only
            with no context takeover); by default when its buffers are under
            128 KiB.
        @raise ValueError: for window bits outside 8-15, a memory level
            outside 1-9 or a level outside -1-9.
        """
        _checkWindowBits("windowBits", windowBits, allowZero=False)
        _checkMemLevel(memLevel)
        if not -1 <= level <= 9:
            raise ValueError("level must be between -1 and 9")
        self.windowBits = windowBits
        self.noContextTakeover = noContextTakeover
        self.memLevel = memLevel
        self.level = level
        self.threshold = threshold
        self._obj: Optional[zlib._Compress] = None
        if release is None:
            release = deflateMemory(windowBits, memLevel) < _RELEASE_BELOW
        self.release = noContextTakeover and release
        self._flush = (
            zlib.Z_FULL_FLUSH if noContextTakeover and not self.release else zlib.Z_SYNC_FLUSH
        )
        self._streaming = False
        self._key = (windowBits, memLevel, level) if noContextTakeover else None

    @property
    def sharedKey(self) -> Optional[tuple[int, int, int]]:
        """
        C{(windowBits, memLevel, level)} when every message is compressed
        with a fresh context, so L{compressOnce} with these arguments gives
        bytes this connection may send; else C{None}.
        """
        return self._key

    def sharedFrame(self, message: PreparedMessage) -> Optional[bytes]:
        """
        The frame a server connection with this compressor sends for a
        prepared message, when it is one frame compressed once for every
        connection with the same L{sharedKey} (L{compressedFrame}).

        @param message: the prepared message.
        @return: the whole frame (RSV1 set; the uncompressed frame when
            compressing does not make it smaller, the message is under
            L{threshold} or prepared with C{doNotCompress}), or C{None} when
            this connection compresses on its own (context takeover).
        """
        if message.doNotCompress or len(message.payload) < self.threshold:
            return message.frame
        key = self._key
        if key is None:
            return None
        cache = message.compressed
        if cache is not None:
            found = cache.get(key)
            if found is not None:
                return found[0]
        return compressedFrame(message, key)[0]

    def _new(self) -> zlib._Compress:
        obj = self._obj = zlib.compressobj(
            self.level, zlib.DEFLATED, -zlibWindowBits(self.windowBits), self.memLevel
        )
        return obj

    def compress(self, payload: bytes) -> bytes:
        """
        Compress a whole message.

        @param payload: the message.
        @return: the payload of its frame(s), the first with RSV1 set.
        @raise ValueError: while a streamed message is in progress.
        """
        if self._streaming:
            raise ValueError("a streamed message is in progress")
        obj = self._obj or self._new()
        data = obj.compress(payload) + obj.flush(self._flush)
        if self.release:
            self._obj = None
        return data[:-4]

    def encode(self, payload: bytes) -> tuple[int, bytes]:
        """
        Compress a message unless it is shorter than L{threshold}.

        @param payload: the message.
        @return: C{(rsv, data)}: L{RSV1} and the compressed payload, or 0
            and C{payload} itself when it is short or compressing it would
            not make it smaller.
        """
        if len(payload) < self.threshold:
            return 0, payload
        data = self.compress(payload)
        if len(data) >= len(payload):
            # Incompressible (random or already compressed data grows by up
            # to ~4%, which could push a message near the limit past the
            # peer's frame limit): sent as it is.  The history this
            # compressor took in, which the peer never saw, is dropped; a
            # fresh context refers to none of the peer's, which is valid.
            self._obj = None
            return 0, payload
        return RSV1, data

    def compressFragment(self, data: bytes, fin: bool) -> bytes:
        """
        Compress the next fragment of a streamed message (the first frame
        has RSV1 set, the continuations do not).  Each fragment is flushed,
        so its frame can go out at once.

        @param data: the fragment's data.
        @param fin: whether it is the last fragment.
        @return: the frame's payload.
        """
        obj = self._obj or self._new()
        if not fin:
            self._streaming = True
            return obj.compress(data) + obj.flush(zlib.Z_SYNC_FLUSH)
        self._streaming = False
        out = obj.compress(data) + obj.flush(self._flush)
        if self.release:
            self._obj = None
        return out[:-4]

    @property
    def holdsState(self) -> bool:
        """
        Whether zlib state is allocated (for memory accounting).
        """
        return self._obj is not None


#: Shared compressors of L{compressOnce}, by C{(windowBits, memLevel, level)}.
_shared: dict[tuple[int, int, int], zlib._Compress] = {}


def compressOnce(
    payload: bytes, windowBits: int = 15, memLevel: int = 8, level: int = -1
) -> bytes:
    """
    Compress a message with a fresh context, for every connection whose
    L{Compressor.sharedKey} is C{(windowBits, memLevel, level)}: the hub
    frames it once (RSV1 set) and writes the same bytes to all of them.

    One compressor per key is kept for the process and reset with
    C{Z_FULL_FLUSH} after every message.

    @param payload: the message.
    @return: its compressed payload.
    """
    key = (windowBits, memLevel, level)
    obj = _shared.get(key)
    if obj is None:
        _checkWindowBits("windowBits", windowBits, allowZero=False)
        _checkMemLevel(memLevel)
        obj = _shared[key] = zlib.compressobj(
            level, zlib.DEFLATED, -zlibWindowBits(windowBits), memLevel
        )
    return (obj.compress(payload) + obj.flush(zlib.Z_FULL_FLUSH))[:-4]


def compressedFrame(
    message: PreparedMessage, key: tuple[int, int, int]
) -> tuple[bytes, bytes, int]:
    """
    A prepared message compressed once for every connection whose
    L{Compressor.sharedKey} is C{key}, cached on the message.  When
    compressing does not make it smaller, it is the uncompressed frame.

    @param message: the prepared message.
    @param key: C{(windowBits, memLevel, level)}.
    @return: C{(frame, payload, firstByte)}: the whole unmasked frame a
        server sends, its payload (what a client masks) and its first
        header byte (FIN, RSV1 when compressed, the opcode).
    """
    cache = message.compressed
    if cache is None:
        cache = message.compressed = {}
    found = cache.get(key)
    if found is None:
        payload = compressOnce(message.payload, *key)
        opcode = 0x82 if message.isBinary else 0x81
        if len(payload) >= len(message.payload):
            found = (message.frame, message.payload, opcode)
        else:
            found = (encodeFrame(opcode | RSV1, payload, None), payload, opcode | RSV1)
        cache[key] = found
    return found


class Decompressor:
    """
    Inflates the messages one endpoint receives, with bounded output
    (RFC 7692 section 7.2.2).

    A message is either one frame (L{decompress}) or several (L{feed} or
    L{stream} for each, C{fin} on the last); the first frame of a
    compressed message is the one with RSV1 set, and a message sent with
    RSV1 clear is not given to this object at all.  After a L{DeflateError}
    the object is unusable: the connection fails.

    @ivar windowBits: the negotiated window bits of the peer's compressor.
    @ivar noContextTakeover: whether every message starts from a fresh
        context (the zlib state is then released after each message).
    @ivar maxSize: the limit on a message's inflated size, 0 for none.
    @ivar step: the most output one zlib call produces.
    """

    __slots__ = (
        "_inMessage",
        "_obj",
        "_restarted",
        "_size",
        "maxSize",
        "noContextTakeover",
        "step",
        "windowBits",
    )

    def __init__(
        self,
        windowBits: int = 15,
        noContextTakeover: bool = False,
        maxSize: int = 0,
        step: int = DEFAULT_STEP,
    ) -> None:
        """
        @raise ValueError: for window bits outside 8-15, a negative limit or
            a step below 1.
        """
        _checkWindowBits("windowBits", windowBits, allowZero=False)
        if maxSize < 0 or step < 1:
            raise ValueError("maxSize must be 0 or more and step 1 or more")
        self.windowBits = windowBits
        self.noContextTakeover = noContextTakeover
        self.maxSize = maxSize
        self.step = step
        self._obj: Optional[zlib._Decompress] = None
        self._size = 0
        self._inMessage = False
        self._restarted = False

    @property
    def inMessage(self) -> bool:
        """
        Whether a fragmented message has begun and not ended.
        """
        return self._inMessage

    @property
    def holdsState(self) -> bool:
        """
        Whether zlib state is allocated (for memory accounting).
        """
        return self._obj is not None

    def decompress(self, data: bytes) -> bytes:
        """
        Inflate a whole message that came in one frame.

        @param data: the frame's payload.
        @return: the message.
        @raise DeflateError: 1009 if it inflates beyond L{maxSize}, 1007 if
            it does not inflate.
        """
        if self._inMessage:
            raise ValueError("a fragmented message is in progress")
        obj = self._obj
        if obj is None:
            obj = self._obj = zlib.decompressobj(-self.windowBits)
        limit = self.maxSize
        n = self.step
        if limit and limit < n:
            n = limit + 1
        if len(data) < 4096:
            # The common case, in one bounded call: a short frame that
            # inflates to less than one step with nothing held back.
            try:
                out = obj.decompress(data + TRAILER, n)
            except zlib.error:
                raise DeflateError(CloseCode.INVALID_PAYLOAD, "invalid compressed data") from None
            if len(out) < n and not obj.unconsumed_tail and not obj.eof:
                if self.noContextTakeover:
                    self._obj = None
                return out
            chunks = [out] if out else []
            self._size = len(out)
            if limit and self._size > limit:
                raise _tooBig(limit)
            if obj.eof:
                self._restart(chunks)
                rest = obj.unused_data
                if rest != TRAILER:
                    self._inflate(rest, chunks)
            else:
                self._inflate(obj.unconsumed_tail, chunks)
        else:
            chunks = []
            self._size = 0
            self._inflate(data, chunks)
            self._inflate(TRAILER, chunks)
        self._endMessage()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def feed(self, data: bytes, fin: bool) -> list[bytes]:
        """
        Inflate one frame of a compressed message.

        @param data: the frame's payload.
        @param fin: whether it is the message's last frame.
        @return: the inflated output, as chunks of at most L{step} bytes
            (for the caller's incremental UTF-8 check), possibly none.
        @raise DeflateError: 1009 if the message so far inflates beyond
            L{maxSize}, 1007 if it does not inflate.
        """
        chunks: list[bytes] = []
        self._begin()
        self._inflate(data, chunks)
        if fin:
            self._inflate(TRAILER, chunks)
            self._endMessage()
        return chunks

    def stream(self, data: bytes, fin: bool) -> Iterator[bytes]:
        """
        L{feed} as an iterator: each chunk is inflated only when asked for,
        so a caller that finds invalid UTF-8 stops inflating at once.

        @raise DeflateError: as L{feed}, while iterating.
        """
        self._begin()
        yield from self._inflateEach(data)
        if fin:
            yield from self._inflateEach(TRAILER)
            self._endMessage()

    def _begin(self) -> None:
        if not self._inMessage:
            self._inMessage = True
            self._size = 0
            if self._obj is None:
                self._obj = zlib.decompressobj(-self.windowBits)

    def _endMessage(self) -> None:
        self._inMessage = False
        if self.noContextTakeover:
            self._obj = None

    def _restart(self, chunks: Sequence[bytes]) -> zlib._Decompress:
        # The peer ended a block with BFINAL set (RFC 7692 section 7.2.3.4):
        # zlib's stream is over, but the message (and, with context
        # takeover, the connection) goes on.  The new inflater is primed
        # with the output at hand (the last window of it), so later blocks
        # may refer back into it.
        window = 1 << self.windowBits
        parts: list[bytes] = []
        size = 0
        for chunk in reversed(chunks):
            if size >= window:
                break
            parts.append(chunk)
            size += len(chunk)
        tail = b"".join(reversed(parts))[-window:]
        obj = self._obj = (
            zlib.decompressobj(-self.windowBits, zdict=tail)
            if tail
            else zlib.decompressobj(-self.windowBits)
        )
        return obj

    def _inflate(self, data: bytes, chunks: list[bytes]) -> None:
        chunks.extend(self._inflateEach(data, tuple(chunks)))

    def _inflateEach(self, data: bytes, prior: Sequence[bytes] = ()) -> Iterator[bytes]:
        obj = self._obj
        assert obj is not None
        if self._restarted:
            self._restarted = False
            if data is TRAILER:
                # The message's data ended exactly with a BFINAL block: the
                # trailer would start a stored block that never ends.
                return
        # The last window of output, to prime a restarted inflater.
        recent: list[bytes] = []
        recentSize = 0
        window = 1 << self.windowBits
        limit = self.maxSize
        step = self.step
        view = memoryview(data)
        # Input goes in slices, so the unconsumed tail zlib copies back on
        # every bounded call stays small.
        for start in range(0, max(len(view), 1), _INPUT_SLICE):
            buf: Union[bytes, memoryview] = view[start : start + _INPUT_SLICE]
            while True:
                n = step
                if limit:
                    room = limit - self._size + 1
                    if room < n:
                        n = room
                try:
                    out = obj.decompress(buf, n)
                except zlib.error:
                    raise DeflateError(
                        CloseCode.INVALID_PAYLOAD, "invalid compressed data"
                    ) from None
                if out:
                    self._size += len(out)
                    if limit and self._size > limit:
                        raise _tooBig(limit)
                    recent.append(out)
                    recentSize += len(out)
                    while recentSize - len(recent[0]) >= window:
                        recentSize -= len(recent.pop(0))
                    yield out
                if obj.eof:
                    rest = obj.unused_data
                    obj = self._restart([*prior, *recent])
                    if not rest:
                        self._restarted = start + _INPUT_SLICE >= len(view)
                        break
                    if rest == TRAILER:
                        # The trailer appended to a message that ended with
                        # the final block: nothing follows.
                        break
                    buf = rest
                    continue
                buf = obj.unconsumed_tail
                if not buf and len(out) < n:
                    break


def _tooBig(limit: int) -> DeflateError:
    return DeflateError(
        CloseCode.MESSAGE_TOO_BIG, f"inflated message exceeds the limit of {limit} bytes"
    )


class PerMessageDeflate:
    """
    What one connection negotiated: its L{Compressor} and L{Decompressor}.

    @ivar isServer: which end this is.
    @ivar compressor: for the messages this end sends.
    @ivar decompressor: for the messages it receives.
    @ivar extensionString: the server's answer (on a server), or the
        answer received (on a client).
    """

    __slots__ = ("compressor", "decompressor", "extensionString", "isServer")

    def __init__(
        self, isServer: bool, compressor: Compressor, decompressor: Decompressor,
        extensionString: str,
    ) -> None:
        self.isServer = isServer
        self.compressor = compressor
        self.decompressor = decompressor
        self.extensionString = extensionString

    @classmethod
    def fromOfferAccept(
        cls,
        accept: PerMessageDeflateOfferAccept,
        maxMessageSize: int = 0,
        memLevel: int = 5,
        level: int = -1,
        threshold: int = 0,
        step: int = DEFAULT_STEP,
    ) -> PerMessageDeflate:
        """
        A server's extension, from the acceptance its policy chose.

        @param accept: the acceptance.
        @param maxMessageSize: the connection's message size limit (0 for
            none), lowered to C{accept.max_message_size} if that is set.
        @param memLevel: the compressor's memory level unless the
            acceptance sets one.
        @param level: the compression level.
        @param threshold: see L{Compressor.threshold}.
        @param step: see L{Decompressor.step}.
        @return: the extension.
        """
        offer = accept.offer
        compressor = Compressor(
            accept.serverMaxWindowBits,
            accept.serverNoContextTakeover,
            accept.mem_level or memLevel,
            level,
            threshold,
        )
        decompressor = Decompressor(
            accept.request_max_window_bits or 15,
            accept.request_no_context_takeover or offer.client_no_context_takeover,
            _limit(maxMessageSize, accept.max_message_size),
            step,
        )
        return cls(True, compressor, decompressor, accept.get_extension_string())

    @classmethod
    def fromResponseAccept(
        cls,
        accept: PerMessageDeflateResponseAccept,
        maxMessageSize: int = 0,
        memLevel: int = 5,
        level: int = -1,
        threshold: int = 0,
        step: int = DEFAULT_STEP,
    ) -> PerMessageDeflate:
        """
        A client's extension, from its acceptance of the server's answer.

        @param accept: the acceptance.
        @param maxMessageSize: as for L{fromOfferAccept}.
        @param memLevel: as for L{fromOfferAccept}.
        @param level: as for L{fromOfferAccept}.
        @param threshold: as for L{fromOfferAccept}.
        @param step: as for L{fromOfferAccept}.
        @return: the extension.
        """
        response = accept.response
        compressor = Compressor(
            accept.clientMaxWindowBits,
            accept.clientNoContextTakeover,
            accept.mem_level or memLevel,
            level,
            threshold,
        )
        decompressor = Decompressor(
            response.server_max_window_bits or 15,
            response.server_no_context_takeover,
            _limit(maxMessageSize, accept.max_message_size),
            step,
        )
        parts = [EXTENSION_NAME]
        if response.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if response.server_max_window_bits:
            parts.append(f"server_max_window_bits={response.server_max_window_bits}")
        if response.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if response.client_max_window_bits:
            parts.append(f"client_max_window_bits={response.client_max_window_bits}")
        return cls(False, compressor, decompressor, "; ".join(parts))

    def __repr__(self) -> str:
        side = "server" if self.isServer else "client"
        return f"<PerMessageDeflate {side}: {self.extensionString}>"


def _limit(limit: int, other: Optional[int]) -> int:
    if other:
        return min(limit, other) if limit else other
    return limit


if not TYPE_CHECKING:
    # (Hidden from type checkers.)  Autobahn's other compression classes,
    # imported from here by an application ported by its imports, raise
    # txws.compat.NotInTxws naming them.

    def __getattr__(name: str) -> object:
        if not name.startswith(("PerMessage", "PERMESSAGE")):
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}", name=name)
        from txws._refused import refusedName

        raise refusedName(__name__, name)
