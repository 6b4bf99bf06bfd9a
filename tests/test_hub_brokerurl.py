"""
Tests for L{txws.hub.brokerurl}: C{--broker} values parsed into settings,
every refusal naming what is wrong without repeating a password, and the
endpoints built from them.
"""

from __future__ import annotations

from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.testing import MemoryReactorClock

from tests.tlssupport import TestAuthority
from tests.typedtrial import SynchronousTestCase
from txws.hub.brokerurl import (
    MemorySettings,
    RedisSettings,
    clientEndpoint,
    parseBrokerURL,
)


class ParseTests(SynchronousTestCase):
    """
    L{parseBrokerURL} accepts C{memory} and Redis URLs.
    """

    def test_memory(self) -> None:
        """
        C{memory} is the in-process broker.
        """
        self.assertEqual(parseBrokerURL("memory"), MemorySettings())
        self.assertEqual(MemorySettings().describe(), "memory")

    def test_defaults(self) -> None:
        """
        A bare host gets port 6379, database 0, no credentials, no TLS.
        """
        self.assertEqual(parseBrokerURL("redis://cache"), RedisSettings("cache", 6379, 0))
        self.assertEqual(parseBrokerURL("redis://cache/"), RedisSettings("cache", 6379, 0))

    def test_everything(self) -> None:
        """
        Password, port and database; a user name too; percent-escapes
        undone; the scheme's case does not matter.
        """
        self.assertEqual(
            parseBrokerURL("redis://:p%40ss%3Aw@10.0.0.5:6380/3"),
            RedisSettings("10.0.0.5", 6380, 3, None, "p@ss:w"),
        )
        self.assertEqual(
            parseBrokerURL("REDIS://hub:pw@cache:1/15"),
            RedisSettings("cache", 1, 15, "hub", "pw"),
        )

    def test_ipv6(self) -> None:
        """
        A bracketed IPv6 address.
        """
        settings = parseBrokerURL("redis://[::1]:7000/2")
        self.assertEqual(settings, RedisSettings("::1", 7000, 2))
        assert isinstance(settings, RedisSettings)
        self.assertEqual(settings.describe(), "redis://[::1]:7000/2")

    def test_tls(self) -> None:
        """
        C{rediss://} is TLS, with the system's CAs or a CA file.
        """
        self.assertEqual(parseBrokerURL("rediss://cache"), RedisSettings("cache", tls=True))
        ca = self.mktemp()
        with open(ca, "w") as f:
            f.write("x")
        self.assertEqual(
            parseBrokerURL(f"rediss://:pw@cache:6390/1?ca={ca}"),
            RedisSettings("cache", 6390, 1, None, "pw", True, ca),
        )

    def test_passwordNeverShown(self) -> None:
        """
        Neither C{repr} nor C{describe} shows the password.
        """
        settings = parseBrokerURL("rediss://user:hunter2@cache/1")
        self.assertNotIn("hunter2", repr(settings))
        self.assertEqual(settings.describe(), "rediss://***@cache:6379/1")

    def assertRefused(self, url: str, *words: str) -> None:
        """
        C{url} is refused with a message containing C{words} and not the
        password C{hunter2}.
        """
        with self.assertRaises(ValueError) as caught:
            parseBrokerURL(url)
        message = str(caught.exception)
        for word in words:
            self.assertIn(word, message)
        self.assertNotIn("hunter2", message)

    def test_refusals(self) -> None:
        """
        Each wrong part is named; the password is never repeated.
        """
        self.assertRefused("", "memory")
        self.assertRefused("Memory", "memory")
        self.assertRefused("cache:6379", "memory")
        self.assertRefused("http://:hunter2@cache", "scheme", "'http'")
        self.assertRefused("redis://", "no host")
        self.assertRefused("redis://:hunter2@", "no host")
        self.assertRefused("redis://:hunter2@:6379/0", "no host")
        self.assertRefused("redis://:hunter2@cache:port/0", "port")
        self.assertRefused("redis://:hunter2@cache:0/0", "port")
        self.assertRefused("redis://:hunter2@cache:65536/0", "port")
        self.assertRefused("redis://:hunter2@cache:/0", "port")
        self.assertRefused("redis://:hunter2@cache/zero", "database number")
        self.assertRefused("redis://:hunter2@cache/-1", "database number")
        self.assertRefused("redis://:hunter2@cache/0/1", "database number")
        self.assertRefused("redis://:hunter2@cache/99999999999", "database number")
        self.assertRefused("redis://hunter2@cache/0", "credentials")
        self.assertRefused("redis://user:@cache/0", "password is empty")
        self.assertRefused("redis://:hunter2@cache/0#x", "fragment")
        self.assertRefused("redis://:hunter2@cache/0?timeout=1", "parameter", "'timeout'")
        self.assertRefused("redis://:hunter2@cache/0?ca=/etc/hosts", "rediss://")
        self.assertRefused("rediss://:hunter2@cache/0?ca=", "'ca'")
        self.assertRefused("rediss://:hunter2@cache/0?ca=/a&ca=/b", "'ca'")
        self.assertRefused("rediss://:hunter2@cache/0?ca=/no/such/ca.pem", "does not exist")
        self.assertRefused("redis://:hunter2@[::1/0", "invalid")


class EndpointTests(SynchronousTestCase):
    """
    L{clientEndpoint} connects by host name, with verified TLS for
    C{rediss://}.
    """

    def test_plain(self) -> None:
        """
        C{redis://} is a L{HostnameEndpoint}.
        """
        endpoint = clientEndpoint(RedisSettings("cache"), MemoryReactorClock())
        self.assertIsInstance(endpoint, HostnameEndpoint)

    def test_tlsWithCAFile(self) -> None:
        """
        C{rediss://} with a CA file wraps the connection in TLS.
        """
        ca = TestAuthority().writeCAFile(self)
        endpoint = clientEndpoint(
            RedisSettings("cache", tls=True, caFile=ca), MemoryReactorClock()
        )
        self.assertNotIsInstance(endpoint, HostnameEndpoint)

    def test_badCAFile(self) -> None:
        """
        A CA file that holds no certificate is refused, by name.
        """
        ca = self.mktemp()
        with open(ca, "w") as f:
            f.write("not a certificate")
        with self.assertRaises(ValueError) as caught:
            clientEndpoint(RedisSettings("cache", tls=True, caFile=ca), MemoryReactorClock())
        self.assertIn(ca, str(caught.exception))
