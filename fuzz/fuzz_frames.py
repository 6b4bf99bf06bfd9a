"""
Fuzz the frame parser: the C scanner path (L{txws.frames.parseFrames} with
the extension) against the pure-Python loop (L{parseFramesPython}), on the
whole input and on prefixes and suffixes at split points the fuzzer picks.

For every input: both paths give the same frames, consumed count, pending
frame and error (code and reason), and never raise.  Parsing a prefix, then
(when it stopped at a frame boundary) the rest from where it stopped, gives
the frames of parsing everything at once.
"""

from __future__ import annotations

from fuzz._runner import instrumented, run

with instrumented(__name__ == "__main__"):
    from txws import frames
    from txws._mask import SPEEDUPS

if SPEEDUPS is None or frames._scanFrames is None:  # pragma: no cover
    raise SystemExit("fuzz_frames compares the C path with Python: build txws._speedups")

_LIMITS = (0, 1, 125, 126, 65535, 65536, 1 << 20)
_RSV = (0, 0x40, 0x70)


def _normal(result: tuple[object, ...]) -> tuple[object, ...]:
    found, consumed, pending, error = result
    assert isinstance(found, list)
    assert isinstance(consumed, int)
    normalFrames = [(fin, opcode, bytes(payload)) for fin, opcode, payload in found]
    normalError = None
    if error is not None:
        assert isinstance(error, frames.FrameError), error
        normalError = (error.code, error.reason)
    return normalFrames, consumed, pending, normalError


def _both(data: bytes, requireMask: bool, limit: int, rsv: int) -> tuple[object, ...]:
    fast = _normal(frames.parseFrames(data, requireMask, limit, rsv))
    slow = _normal(frames.parseFramesPython(data, requireMask, limit, rsv))
    assert fast == slow, (data, requireMask, limit, rsv, fast, slow)
    _found, consumed, pending, error = fast
    assert isinstance(consumed, int) and 0 <= consumed <= len(data)
    assert pending is None or error is None
    return fast


def testOneInput(data: bytes) -> None:
    """
    One input: three option bytes, two split bytes, then the stream.

    @param data: From the fuzzer.
    """
    if len(data) < 5:
        return
    requireMask = bool(data[0] & 1)
    limit = _LIMITS[data[1] % len(_LIMITS)]
    rsv = _RSV[data[2] % len(_RSV)]
    splits = {data[3], data[4] * 7}
    stream = data[5:]
    whole = _both(stream, requireMask, limit, rsv)
    wholeFrames, _, _, wholeError = whole
    assert isinstance(wholeFrames, list)
    for split in splits:
        if split > len(stream):
            continue
        prefixFrames, consumed, pending, error = _both(stream[:split], requireMask, limit, rsv)
        _both(stream[split:], requireMask, limit, rsv)
        assert isinstance(prefixFrames, list) and isinstance(consumed, int)
        assert wholeFrames[: len(prefixFrames)] == prefixFrames, (stream, split)
        if error is not None:
            assert (wholeFrames, wholeError) == (prefixFrames, error), (stream, split)
        elif pending is None:
            restFrames, _, _, restError = _both(stream[consumed:], requireMask, limit, rsv)
            assert isinstance(restFrames, list)
            assert prefixFrames + restFrames == wholeFrames, (stream, split)
            assert restError == wholeError, (stream, split)


if __name__ == "__main__":
    run(testOneInput)
