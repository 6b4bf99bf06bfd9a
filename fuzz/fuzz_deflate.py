"""
Fuzz permessage-deflate (RFC 7692, L{txws.deflate}): bounded inflation and
extension negotiation.

Inflation: the input's bytes become compressed messages, cut into
fragments at points the fuzzer picks, fed to a L{Decompressor} with a small
limit (one of L{_LIMITS}), a small step and any window bits, with or without
context takeover, through L{Decompressor.decompress}, L{Decompressor.feed}
or L{Decompressor.stream}; the same bytes go to a plain C{zlib} raw
inflater, bounded to the limit plus one byte.  For every input:
L{DeflateError} is the only exception, with 1009 or 1007; no message ever
yields more than the limit, nor a chunk more than the step; and while the
stream stays one zlib stream (no final block followed by more data, which
L{Decompressor} restarts from and C{zlib} does not), the outcome is
C{zlib}'s: the same output when it is within the limit, 1009 when C{zlib}
gives more, 1007 when C{zlib} fails.

Negotiation: the input's text becomes C{Sec-WebSocket-Extensions} values.
L{parseExtensionHeader}, L{parseOffers} and L{parseResponse} raise only
L{NegotiationError}; every offer parsed survives a round trip through its
own C{get_extension_string()}; a L{PerMessageDeflatePolicy} built from the
input accepts without raising, its answer is accepted by a client that made
those offers, and a message compressed by the server so configured inflates
back at the client.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Optional

from fuzz._runner import instrumented, run

with instrumented(__name__ == "__main__"):
    from txws.deflate import (
        DEFAULT_CLIENT_OFFER,
        TRAILER,
        Decompressor,
        DeflateError,
        NegotiationError,
        PerMessageDeflate,
        PerMessageDeflateOffer,
        PerMessageDeflatePolicy,
        PerMessageDeflateResponseAccept,
        parseExtensionHeader,
        parseOffers,
        parseResponse,
    )
    from txws.frames import CloseCode

_LIMITS = (1, 16, 125, 1000, 4096, 20000)
_STEPS = (1, 7, 64, 1024, 65536)
_CLIENT_OFFERS = (
    DEFAULT_CLIENT_OFFER,
    PerMessageDeflateOffer(request_no_context_takeover=True, request_max_window_bits=10),
    PerMessageDeflateOffer(accept_max_window_bits=False, client_max_window_bits=0),
)
_HEADER = 8
"""Option bytes before the compressed stream (inflation) or the text."""


def _cut(stream: bytes, cuts: bytes) -> list[bytes]:
    """
    @return: C{stream} cut at the points C{cuts} scale onto its length.
    """
    points = sorted({octet * len(stream) // 255 for octet in cuts})
    bounds = [0, *points, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


def _reference(
    obj: zlib._Decompress, message: bytes, limit: int
) -> tuple[Optional[set[object]], bool, bool]:
    """
    Inflate one message (with its trailer) with C{zlib} alone, one input
    byte at a time, so that zlib gives every byte it can before it finds an
    error (given more input at once, it may look past the output it was
    asked for and fail in the same call, losing that output).

    @return: what L{Decompressor} may give: the output, or the close codes
        it may raise (1009 alone when more than C{limit} bytes come out of
        valid data; 1007 alone when the data fails within the limit; either
        when it comes out beyond the limit and fails later), or L{None}
        when C{zlib} cannot tell (a final block followed by more data, from
        which L{Decompressor} restarts and C{zlib} does not); whether the
        next message may be compared too; and whether the error is a
        distance beyond the window (which zlib finds only if the history it
        needs is not in the output of the same call).
    """
    chunks: list[bytes] = []
    size = 0
    data = message + TRAILER
    consumed = 0
    while consumed < len(data) and not obj.eof:
        pending = data[consumed : consumed + 1]
        consumed += 1
        while True:
            try:
                out = obj.decompress(pending, 65536)
            except zlib.error as e:
                tooFar = "too far back" in str(e)
                if size > limit:
                    return {CloseCode.MESSAGE_TOO_BIG, CloseCode.INVALID_PAYLOAD}, False, tooFar
                return {CloseCode.INVALID_PAYLOAD}, False, tooFar
            size += len(out)
            if size <= limit:
                chunks.append(out)
            pending = obj.unconsumed_tail
            if not pending and len(out) < 65536:
                break
    if obj.eof and (obj.unused_data + data[consumed:]) not in (b"", TRAILER):
        return (None if size <= limit else {CloseCode.MESSAGE_TOO_BIG}), False, False
    if size > limit:
        return {CloseCode.MESSAGE_TOO_BIG}, False, False
    return {b"".join(chunks)}, not obj.eof, False


def _inflateOne(
    decompressor: Decompressor, api: int, fragments: list[bytes], limit: int, step: int
) -> object:
    """
    Inflate one message through the API chosen.

    @return: the output, or the L{DeflateError}'s code.
    """
    chunks: list[bytes] = []
    try:
        if api == 0:
            chunks.append(decompressor.decompress(b"".join(fragments)))
        else:
            for index, fragment in enumerate(fragments):
                fin = index == len(fragments) - 1
                if api == 1:
                    got = decompressor.feed(fragment, fin)
                else:
                    got = list(decompressor.stream(fragment, fin))
                assert all(0 < len(chunk) <= step for chunk in got), [len(c) for c in got]
                chunks.extend(got)
                assert sum(map(len, chunks)) <= limit, (sum(map(len, chunks)), limit)
    except DeflateError as e:
        assert e.code in (CloseCode.MESSAGE_TOO_BIG, CloseCode.INVALID_PAYLOAD), e.code
        return int(e.code)
    out = b"".join(chunks)
    assert len(out) <= limit, (len(out), limit)
    assert not decompressor.inMessage
    return out


def _inflate(data: bytes) -> None:
    options, limitByte, stepByte = data[1], data[2], data[3]
    windowBits = 8 + (options & 7)
    noContextTakeover = bool(options & 8)
    api = (options >> 4) % 3
    limit = _LIMITS[limitByte % len(_LIMITS)]
    step = _STEPS[stepByte % len(_STEPS)]
    fragments = _cut(data[_HEADER:], data[4:_HEADER])
    # Two messages: the fragments, then the same bytes again as one.
    messages = [fragments, [b"".join(fragments)]]
    decompressor = Decompressor(windowBits, noContextTakeover, limit, step)
    # The negotiated window, and the largest: a stream whose distances
    # reach beyond the window may inflate, as with the largest, or fail.
    strict = zlib.decompressobj(-windowBits)
    lenient = zlib.decompressobj(-15)
    comparable = True
    for message in messages:
        if noContextTakeover:
            strict = zlib.decompressobj(-windowBits)
            lenient = zlib.decompressobj(-15)
            comparable = True
        outcome = _inflateOne(decompressor, api, message, limit, step)
        if comparable:
            whole = b"".join(message)
            expected, comparable, tooFar = _reference(strict, whole, limit)
            if tooFar:
                alternative = _reference(lenient, whole, limit)[0]
                expected = None if expected is None or alternative is None else (
                    expected | alternative)
            else:
                _reference(lenient, whole, limit)
            if expected is not None:
                assert outcome in expected, (outcome, expected, data)
        if isinstance(outcome, int):
            return  # The connection fails: the decompressor is done.


def _roundTripOffers(offers: list[PerMessageDeflateOffer]) -> None:
    for offer in offers:
        again = parseOffers([offer.get_extension_string()])
        assert [repr(o) for o in again] == [repr(offer)], (offer, again)


def _policy(options: int, bits: int) -> PerMessageDeflatePolicy:
    clientBits = (bits >> 3) % 9
    clientMaxWindowBits = 0 if clientBits == 8 else 8 + clientBits
    return PerMessageDeflatePolicy(
        serverNoContextTakeover=bool(options & 1),
        clientNoContextTakeover=bool(options & 2),
        serverMaxWindowBits=8 + (bits & 7),
        clientMaxWindowBits=clientMaxWindowBits,
        memLevel=1 + (options >> 4) % 9,
        requireClientMaxWindowBits=bool(options & 4) and clientMaxWindowBits != 0,
    )


def _negotiate(data: bytes) -> None:
    text = data[_HEADER:].decode("latin-1")
    values = text.split("\n")
    try:
        items = parseExtensionHeader(values)
    except NegotiationError:
        items = None
    if items is not None:
        for name, params in items:
            assert name and name == name.lower()
            for key, value in params:
                assert isinstance(key, str) and (value is None or isinstance(value, str))
    declined: list[tuple[list[tuple[str, Optional[str]]], str]] = []
    try:
        offers = parseOffers(values, declined)
    except NegotiationError:
        assert items is None
        offers = []
    _roundTripOffers(offers)
    # The server's side: a policy from the input, on the client's offers.
    accept = _policy(data[1], data[2]).accept(offers)
    if accept is not None:
        assert accept.offer in offers
        answer = accept.get_extension_string()
        server = PerMessageDeflate.fromOfferAccept(accept, maxMessageSize=65536)
        response = parseResponse([answer], offers)
        assert response is not None and response.offer is not None, answer
        client = PerMessageDeflate.fromResponseAccept(
            PerMessageDeflateResponseAccept(response), maxMessageSize=65536)
        payload = data[_HEADER:] * 3
        for _ in range(2):
            compressed = server.compressor.compress(payload)
            assert client.decompressor.decompress(compressed) == payload, answer
            compressed = client.compressor.compress(payload)
            assert server.decompressor.decompress(compressed) == payload, answer
    # The client's side: the input as the server's answer.
    offered = list(_CLIENT_OFFERS[: 1 + data[3] % len(_CLIENT_OFFERS)])
    try:
        response = parseResponse(values, offered)
    except NegotiationError:
        return
    if response is not None:
        assert response.offer in offered and response.matches(response.offer) is None
        try:
            acceptance = PerMessageDeflateResponseAccept(response)
        except ValueError:  # pragma: no cover (a failure)
            raise AssertionError(f"a valid answer cannot be accepted: {text!r}") from None
        PerMessageDeflate.fromResponseAccept(acceptance, maxMessageSize=1000)


def testOneInput(data: bytes) -> None:
    """
    One input: a mode byte (even: inflation, odd: negotiation), seven option
    bytes, then the compressed stream or the header text.

    @param data: From the fuzzer.
    """
    if len(data) < _HEADER:
        return
    if data[0] & 1:
        _negotiate(data)
    else:
        _inflate(data)


if __name__ == "__main__":
    run(testOneInput)
