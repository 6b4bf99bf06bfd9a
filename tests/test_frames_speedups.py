"""
The C frame scanner and encoder (L{txws._speedups.scanFrames} and
L{txws._speedups.encodeFrame}) give exactly what the pure-Python
L{txws.frames} code gives, for valid and invalid input alike.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import requireSpeedups
from tests.test_frames import VECTORS, FramesTestCase, _frames
from tests.typedtrial import SynchronousTestCase
from txws import _mask
from txws import frames as framesModule
from txws._mask import SPEEDUPS
from txws.frames import (
    ParsedFrame,
    _firstByteTable,
    encodeFramePython,
    parseFrames,
    parseFramesPython,
    serializeFrame,
)

#: Payload lengths around every boundary of the length encoding.
_BOUNDARY_LENGTHS = [0, 1, 7, 8, 125, 126, 127, 65535, 65536, 65537]


def _comparable(result: tuple[Any, ...]) -> tuple[Any, ...]:
    """
    A parse result with its L{FrameError} (compared by identity) replaced by
    its code and reason, and payloads as bytes (the pure-Python parser
    slices a bytearray or memoryview input into its own type).
    """
    frames, consumed, pending, error = result
    frames = [(fin, opcode, bytes(payload)) for fin, opcode, payload in frames]
    return frames, consumed, pending, None if error is None else (error.code, error.reason)


def _wire(frames: list[tuple[ParsedFrame, Optional[bytes]]]) -> bytes:
    return b"".join(serializeFrame(op, p, fin, key) for (fin, op, p), key in frames)


class ScanFramesAgreementTests(FramesTestCase):
    """
    L{parseFrames} with the C scanner returns what L{parseFramesPython}
    returns: the same frames, offset, pending header and error.
    """

    def setUp(self) -> None:
        requireSpeedups(self)

    def _agree(self, data: bytes, requireMask: bool, limit: int = 0, allowedRsv: int = 0) -> None:
        expected = _comparable(parseFramesPython(data, requireMask, limit, allowedRsv))
        for given_ in (data, bytearray(data), memoryview(data)):
            got = parseFrames(given_, requireMask, limit, allowedRsv)  # type: ignore[arg-type]
            self.assertEqual(_comparable(got), expected)

    def test_usedWhenBuilt(self) -> None:
        """
        With the extension in use, L{parseFrames} goes through its scanner.
        """
        if SPEEDUPS is None:
            self.skipTest("TXWS_NO_EXTENSIONS is set")
        self.assertIs(framesModule._scanFrames, SPEEDUPS.scanFrames)

    def test_rfcVectors(self) -> None:
        """
        Every section 5.7 example, whole and cut after every byte.
        """
        for name, wire, requireMask, _ in VECTORS:
            for end in range(len(wire) + 1):
                with self.subTest(name=name, end=end):
                    self._agree(wire[:end], requireMask)

    def test_lengthBoundaries(self) -> None:
        """
        Payloads around 125/126 and 65535/65536 bytes, masked and not,
        under limits just below, at and above their length.
        """
        for length in _BOUNDARY_LENGTHS:
            payload = os.urandom(length)
            for key in (None, os.urandom(4)):
                wire = serializeFrame(0x2, payload, True, key)
                for limit in (0, max(length - 1, 1), length, length + 1):
                    self._agree(wire, key is not None, limit)
                    self._agree(wire + wire[:3], key is not None, limit)

    def test_violations(self) -> None:
        """
        Each stateless violation stops the scanner at the offending frame,
        after the valid frames before it, with Python's error.
        """
        good = serializeFrame(0x1, b"ok", True, b"abcd")
        bad = [
            bytes([0xC1, 0x80]) + b"abcd",  # RSV1 without an extension
            bytes([0x83, 0x80]) + b"abcd",  # reserved opcode
            bytes([0x09, 0x80]) + b"abcd",  # fragmented ping
            bytes([0x89, 0xFE, 0x00, 0x7E]) + b"abcd",  # ping over 125
            bytes([0x82, 0x05]) + b"hello",  # unmasked from a client
            bytes([0x82, 0xFE, 0x00, 0x05]) + b"abcd",  # non-minimal 16-bit
            bytes([0x82, 0xFF]) + (5).to_bytes(8, "big") + b"abcd",  # non-minimal 64-bit
            bytes([0x82, 0xFF]) + (1 << 63).to_bytes(8, "big") + b"abcd",  # top bit set
        ]
        for frame in bad:
            with self.subTest(frame=frame.hex()):
                self._agree(good + frame, True)
                self._agree(good + good + frame + good, True, 1000)
        self._agree(good + bytes([0x82, 0x05]) + b"hello", False)
        self._agree(serializeFrame(0x2, b"x" * 20, True, b"abcd"), True, 10)

    def test_limits(self) -> None:
        """
        Limits that are negative or beyond 64 bits behave as in Python
        (every frame too large; no limit).
        """
        wire = _wire([((True, 0x2, b"abc"), b"abcd")] * 3)
        for limit in (-1, -(2**70), 2**70, 2**63, 3, 2):
            self._agree(wire, True, limit)

    def test_allowedRsv(self) -> None:
        """
        RSV bits an extension allows are accepted by both.
        """
        wire = bytes([0xC1, 0x82]) + b"abcd" + b"xy"
        for allowedRsv in (0, 0x40, 0x70):
            self._agree(wire, True, 0, allowedRsv)

    @settings(max_examples=400)
    @given(
        st.binary(max_size=200),
        st.booleans(),
        st.sampled_from([0, 1, 5, 125, 126, 65536]),
        st.sampled_from([0, 0x40, 0x70]),
    )
    def test_randomBytes(self, data: bytes, requireMask: bool, limit: int, allowedRsv: int) -> None:
        """
        Arbitrary bytes give the same result.
        """
        self._agree(data, requireMask, limit, allowedRsv)

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.lists(_frames(), max_size=5),
        st.binary(max_size=30),
        st.booleans(),
        st.sampled_from([0, 10, 200]),
        st.integers(min_value=0, max_value=2**20),
    )
    def test_framesThenGarbage(
        self,
        frames: list[tuple[ParsedFrame, Optional[bytes]]],
        garbage: bytes,
        requireMask: bool,
        limit: int,
        cut: int,
    ) -> None:
        """
        Frames of either direction, then random bytes, cut anywhere.
        """
        wire = _wire(frames) + garbage
        self._agree(wire, requireMask, limit)
        self._agree(wire[: cut % (len(wire) + 1)], requireMask, limit)


class ScanFramesArgumentTests(SynchronousTestCase):
    """
    The C scanner refuses malformed arguments cleanly.
    """

    def setUp(self) -> None:
        self.scan: Any = requireSpeedups(self).scanFrames
        self.table = _firstByteTable(0)

    def test_argumentCount(self) -> None:
        """
        Exactly four positional arguments.
        """
        self.assertRaises(TypeError, self.scan, b"", True, 0)

    def test_table(self) -> None:
        """
        The first-byte table must be 256 bytes.
        """
        self.assertRaises(TypeError, self.scan, b"", True, 0, self.table[:255])
        self.assertRaises(TypeError, self.scan, b"", True, 0, bytearray(self.table))

    def test_data(self) -> None:
        """
        Data must be a buffer.
        """
        self.assertRaises(TypeError, self.scan, "text", True, 0, self.table)

    def test_limit(self) -> None:
        """
        The limit must be an integer.
        """
        self.assertRaises(TypeError, self.scan, b"", True, "0", self.table)

    def test_result(self) -> None:
        """
        The frames and the offset where scanning stopped.
        """
        wire = serializeFrame(0x1, b"hi", True, b"abcd")
        self.assertEqual(
            self.scan(wire + wire[:3], True, 0, self.table), ([(True, 1, b"hi")], len(wire))
        )


class EncodeFrameAgreementTests(FramesTestCase):
    """
    The C L{encodeFrame} gives the bytes of L{encodeFramePython}.
    """

    def setUp(self) -> None:
        self.encode: Any = requireSpeedups(self).encodeFrame

    def test_usedWhenBuilt(self) -> None:
        """
        With the extension in use, L{txws.frames.encodeFrame} is the C one.
        """
        if SPEEDUPS is None:
            self.skipTest("TXWS_NO_EXTENSIONS is set")
        self.assertIs(framesModule.encodeFrame, SPEEDUPS.encodeFrame)

    def test_lengthBoundaries(self) -> None:
        """
        Every length encoding, masked and not, every FIN/RSV/opcode mix.
        """
        for length in [*_BOUNDARY_LENGTHS, 70000]:
            payload = os.urandom(length)
            for key in (None, os.urandom(4)):
                for firstByte in (0x82, 0x01, 0x8A, 0xC1, 0x70, 0x00):
                    with self.subTest(length=length, key=key, firstByte=firstByte):
                        self.assertEqual(
                            self.encode(firstByte, payload, key),
                            encodeFramePython(firstByte, payload, key),
                        )

    @settings(max_examples=300)
    @given(
        st.integers(min_value=0, max_value=255),
        st.binary(max_size=300),
        st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    )
    def test_random(self, firstByte: int, payload: bytes, key: Optional[bytes]) -> None:
        """
        Arbitrary first bytes, payloads and keys; bytes-like payloads too.
        """
        expected = encodeFramePython(firstByte, payload, key)
        for given_ in (payload, bytearray(payload), memoryview(payload)):
            self.assertEqual(self.encode(firstByte, given_, key), expected)

    def test_largeMasked(self) -> None:
        """
        A payload past the size where the GIL is released while masking.
        """
        payload = os.urandom(300_000)
        key = b"\x01\x02\x03\x04"
        self.assertEqual(self.encode(0x82, payload, key), encodeFramePython(0x82, payload, key))

    def test_badArguments(self) -> None:
        """
        Bad first bytes, keys, payloads and argument counts are refused.
        """
        self.assertRaises(ValueError, self.encode, 256, b"", None)
        self.assertRaises(ValueError, self.encode, -1, b"", None)
        self.assertRaises(TypeError, self.encode, "x", b"", None)
        self.assertRaises(ValueError, self.encode, 0x82, b"", b"abc")
        self.assertRaises(TypeError, self.encode, 0x82, "text", None)
        self.assertRaises(TypeError, self.encode, 0x82, b"")


class StubTests(SynchronousTestCase):
    """
    C{txws/_speedups.pyi} declares exactly what the built extension offers
    (mypy checks the package's uses against the stub; this checks the stub
    against the extension).
    """

    def test_stubMatchesExtension(self) -> None:
        """
        The stub's functions and classes are the extension's public names.
        """
        import ast
        from pathlib import Path

        speedups = requireSpeedups(self)
        stub = ast.parse((Path(_mask.__file__).parent / "_speedups.pyi").read_text())
        declared = {
            node.name for node in stub.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        }
        offered = {name for name in dir(speedups) if not name.startswith("_")}
        self.assertEqual(declared, offered)
