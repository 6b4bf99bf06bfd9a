"""
Tests for L{txws.hub.jsontext}: strict JSON both ways, and a nesting bound
that does not depend on the Python version.
"""

from __future__ import annotations

import json

from tests.typedtrial import SynchronousTestCase
from txws.hub.jsontext import MAX_DEPTH, decodeJSON, encodeJSON


def nested(depth: int, opening: bytes = b"[", closing: bytes = b"]") -> bytes:
    """
    @return: C{depth} arrays one inside the other.
    """
    return opening * depth + closing * depth


class DepthTests(SynchronousTestCase):
    """
    Arrays and objects nest at most L{MAX_DEPTH} deep, whatever the
    interpreter's own recursion limit.
    """

    def test_atTheBound(self) -> None:
        """
        L{MAX_DEPTH} levels decode; one more is a C{ValueError}, for
        arrays, objects and the two mixed.
        """
        self.assertEqual(decodeJSON(nested(MAX_DEPTH)), json.loads(nested(MAX_DEPTH)))
        with self.assertRaises(ValueError) as caught:
            decodeJSON(nested(MAX_DEPTH + 1))
        self.assertEqual(str(caught.exception), f"JSON nested deeper than {MAX_DEPTH} levels")
        objects = b'{"a":' * (MAX_DEPTH - 1) + b"{}" + b"}" * (MAX_DEPTH - 1)
        self.assertIsInstance(decodeJSON(objects), dict)
        self.assertRaises(ValueError, decodeJSON, b'{"a":' + objects + b"}")
        mixed = b'[{"a":' * (MAX_DEPTH // 2) + b"1" + b"}]" * (MAX_DEPTH // 2)
        self.assertIsInstance(decodeJSON(mixed), list)
        self.assertRaises(ValueError, decodeJSON, b"[" + mixed + b"]")

    def test_farTooDeep(self) -> None:
        """
        Nesting far beyond the bound (what some Python versions decode and
        others refuse with C{RecursionError}) is a C{ValueError} on every
        version.
        """
        for depth in (5000, 100_000):
            self.assertRaises(ValueError, decodeJSON, nested(depth))

    def test_manyShallow(self) -> None:
        """
        Many brackets that do not nest deeply are fine: only depth counts.
        """
        document = [{"id": i, "tags": [i, [i]]} for i in range(2000)]
        self.assertEqual(decodeJSON(encodeJSON(document)), document)

    def test_bracketsInStrings(self) -> None:
        """
        Brackets inside strings (escaped quotes included) are text, not
        nesting.
        """
        for text in ("[{" * MAX_DEPTH, '\\"[' * (MAX_DEPTH * 2), "\\\\" + "[" * (MAX_DEPTH * 2)):
            data = b'{"a": "' + text.encode() + b'", "b": [[1]], "c": "]"}'
            self.assertEqual(decodeJSON(data), json.loads(data), text[:8])
        # Outside the strings it is nesting again, escapes or not.
        for inner in (b'"x"', b'"\\"x"'):
            deep = b"[" * (MAX_DEPTH + 1) + inner + b"]" * (MAX_DEPTH + 1)
            self.assertRaises(ValueError, decodeJSON, deep)


class StrictnessTests(SynchronousTestCase):
    """
    What Python's C{json} accepts beyond JSON is refused.
    """

    def test_nonFinite(self) -> None:
        """
        C{NaN}, C{Infinity} and numbers that overflow a double are not JSON.
        """
        for data in (b"NaN", b"[Infinity]", b"-Infinity", b"1e400"):
            self.assertRaises(ValueError, decodeJSON, data)
        self.assertRaises(ValueError, encodeJSON, float("nan"))

    def test_notUTF8(self) -> None:
        """
        UTF-16 text is refused.
        """
        self.assertRaises(ValueError, decodeJSON, '["x"]'.encode("utf-16"))
