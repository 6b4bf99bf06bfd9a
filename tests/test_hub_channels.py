"""
Tests for L{txws.hub.channels}: the channel name rules of C{docs/hub.md}
("Channel names").
"""

from __future__ import annotations

import string

from tests.typedtrial import SynchronousTestCase
from txws.hub.channels import (
    MAX_CHANNEL_LENGTH,
    PRIVATE_PREFIX,
    isPrivateChannel,
    validChannelName,
)

#: Every character docs/hub.md allows, written out from the document.
ALLOWED = string.ascii_uppercase + string.ascii_lowercase + string.digits + "_-.:/"


class ValidChannelNameTests(SynchronousTestCase):
    """
    A channel name is 1 to 128 characters from C{A-Z a-z 0-9 _ - . : /}.
    """

    def test_lengthBounds(self) -> None:
        """
        1 and 128 characters are accepted; 0 and 129 are not.
        """
        self.assertEqual(MAX_CHANNEL_LENGTH, 128)
        self.assertTrue(validChannelName("a"))
        self.assertTrue(validChannelName("a" * 128))
        self.assertFalse(validChannelName(""))
        self.assertFalse(validChannelName("a" * 129))
        self.assertFalse(validChannelName("a" * 10_000))

    def test_everyAllowedCharacter(self) -> None:
        """
        Each allowed character makes a valid name alone and within a name.
        """
        self.assertEqual(len(ALLOWED), 26 + 26 + 10 + 5)
        for c in ALLOWED:
            self.assertTrue(validChannelName(c), repr(c))
            self.assertTrue(validChannelName(f"news{c}x"), repr(c))
        self.assertTrue(validChannelName(ALLOWED))
        self.assertTrue(validChannelName("private-user-42"))
        self.assertTrue(validChannelName("a/b:c.d_e-f"))

    def test_everyOtherCharacterRefused(self) -> None:
        """
        Every other character of the first 0x3000 code points is refused,
        alone, at the start, in the middle and at the end of a name.
        """
        for point in range(0x3000):
            c = chr(point)
            if c in ALLOWED:
                continue
            for name in (c, c + "news", "ne" + c + "ws", "news" + c):
                self.assertFalse(validChannelName(name), repr(name))

    def test_lookalikesRefused(self) -> None:
        """
        Unicode digits and letters, whitespace and line ends (which a
        careless C{$} or C{\\d} would let through) are refused.
        """
        for name in ["news\n", "\nnews", "news\r\n", "\u0661\u0662",
                     "\uff4e\uff45\uff57\uff53", "caf\u00e9", "\u00f1",
                     "news ", " news", "news\t", "a\x00b", "news\u2028", "\u00df", "\u0130",
                     "\ufeffnews", "\U0001f600", "a\ud800"]:
            self.assertFalse(validChannelName(name), repr(name))

    def test_notStrings(self) -> None:
        """
        Values that are not strings are refused, even when their text would
        be a valid name.
        """
        for value in [None, 42, 4.2, True, b"news", bytearray(b"news"), ["news"], {"news": 1},
                      ("news",), object()]:
            self.assertFalse(validChannelName(value), repr(value))

    def test_strSubclass(self) -> None:
        """
        A C{str} subclass (what a JSON decoder never makes) is judged by
        its text.
        """

        class Name(str):
            pass

        self.assertTrue(validChannelName(Name("news")))
        self.assertFalse(validChannelName(Name("new s")))


class IsPrivateChannelTests(SynchronousTestCase):
    """
    Names that start with C{private-} are private channels.
    """

    def test_prefix(self) -> None:
        """
        C{private-} opens a private channel, whatever follows (even
        nothing); the prefix elsewhere, in other case or without its dash
        does not.
        """
        self.assertEqual(PRIVATE_PREFIX, "private-")
        for name in ["private-user-42", "private-", "private--", "private-a/b"]:
            self.assertTrue(isPrivateChannel(name), name)
        for name in ["private", "Private-user", "PRIVATE-x", "privatex", "user-private-1",
                     "news", "private_user", "private.user", "xprivate-"]:
            self.assertFalse(isPrivateChannel(name), name)
