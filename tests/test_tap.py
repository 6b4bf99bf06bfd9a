"""
Tests for L{txws.tap}: the options of C{twistd txws} (every option, the
defaults, each usage error) and L{makeService} against a memory reactor
(what listens where, serving which factory, with which TLS policy, and the
order of shutdown).  The TLS policy is checked by in-memory handshakes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any, Optional

from OpenSSL import SSL
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.python import usage
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.tlssupport import ServerFiles, TestAuthority
from tests.typedtrial import SynchronousTestCase
from txws import _tls, _workers, tap
from txws.hmacauth import HMACSite, KeyRing
from txws.hub.brokerurl import MemorySettings, RedisSettings
from txws.hub.redisbroker import RedisBroker
from txws.hub.redisreplay import RedisReplayStore
from txws.options import WebSocketOptions
from txws.server import WebSocketResource, WebSocketServerFactory

_MiB = 1024 * 1024


# -- applications for --app module:callable -----------------------------------


def makeResource() -> Resource:
    """
    @return: a resource (for C{--app tests.test_tap:makeResource}).
    """
    root = Resource()
    root.putChild(b"x", Resource())
    return root


def makeFactory() -> WebSocketServerFactory:
    """
    @return: a factory with options of its own.
    """
    return WebSocketServerFactory(options=WebSocketOptions(autoPingInterval=7))


def makeWebSocketResource() -> WebSocketResource:
    """
    @return: a bare WebSocket resource.
    """
    return WebSocketResource(WebSocketServerFactory())


def makeNothing() -> int:
    """
    @return: something that cannot be served.
    """
    return 42


def makeTrouble() -> Resource:
    """
    @raise RuntimeError: always.
    """
    raise RuntimeError("no database")


notCallable = 3


# -- helpers --------------------------------------------------------------------


class _Case(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self._authority: Optional[TestAuthority] = None
        self._files: Optional[ServerFiles] = None

    def parse(self, *argv: str) -> tap.Options:
        options = tap.Options()
        options.devKeyFile = os.path.join(self.directory, "txws-dev-keys.json")
        options.parseOptions(list(argv))  # type: ignore[no-untyped-call]
        return options

    def refused(self, *argv: str) -> str:
        with self.assertRaises(usage.UsageError) as caught:
            self.parse(*argv)
        return str(caught.exception)

    @property
    def authority(self) -> TestAuthority:
        if self._authority is None:
            self._authority = TestAuthority()
        return self._authority

    @property
    def files(self) -> ServerFiles:
        if self._files is None:
            self._files = self.authority.writeServerFiles(self)
        return self._files

    def keyFile(self, keys: dict[str, str], mode: int = 0o600) -> str:
        path = os.path.join(self.directory, f"keys-{len(os.listdir(self.directory))}.json")
        with open(path, "w") as f:
            json.dump(keys, f)
        os.chmod(path, mode)
        return path


def _handshake(serverContext: SSL.Context, version: int) -> tuple[str, str]:
    """
    A TLS handshake in memory between the server context and a client
    limited to one protocol version (willing to use old ciphers).

    @return: C{("ok", version name)}, or C{("server", reason)} /
        C{("client", reason)} for the side whose handshake failed.
    """
    clientContext = SSL.Context(SSL.TLS_METHOD)
    clientContext.set_min_proto_version(version)
    clientContext.set_max_proto_version(version)
    clientContext.set_cipher_list(b"DEFAULT:@SECLEVEL=0")
    client = SSL.Connection(clientContext, None)
    client.set_connect_state()
    server = SSL.Connection(serverContext, None)
    server.set_accept_state()
    done = {"client": False, "server": False}
    for _ in range(20):
        for name, this, other in (("client", client, server), ("server", server, client)):
            if not done[name]:
                try:
                    this.do_handshake()
                    done[name] = True
                except SSL.WantReadError:
                    pass
                except SSL.Error as e:
                    return name, str(e)
            with contextlib.suppress(SSL.WantReadError):
                other.bio_write(this.bio_read(1 << 16))
        if all(done.values()):
            return "ok", server.get_protocol_version_name()
    return "stuck", ""


# -- Options ---------------------------------------------------------------------


class OptionsDefaultsTests(_Case):
    """
    What C{twistd txws} means without options.
    """

    def test_defaults(self) -> None:
        """
        The hub on C{tcp:8080:interface=127.0.0.1}, default WebSocket
        options, the hub's documented defaults, the development key file.
        """
        options = self.parse()
        self.assertEqual(options.appName, "hub")
        self.assertEqual([each.description for each in options.listeners], [tap.DEFAULT_LISTEN])
        self.assertEqual(tap.DEFAULT_LISTEN, "tcp:8080:interface=127.0.0.1")
        self.assertIsNone(options.listeners[0].tlsOptions)
        self.assertEqual(options.webSocketOptions, WebSocketOptions())
        self.assertEqual(options.givenWebSocketOptions, {})
        self.assertEqual(
            options.hubArguments,
            {
                "historySize": 100,
                "historyAge": 300.0,
                "maxSubscriptions": 100,
                "maxSubscriberBuffer": _MiB,
                "maxBodySize": _MiB,
            },
        )

    def test_devKeyFile(self) -> None:
        """
        Without C{--hmac-keys}, the hub's keys come from the development key
        file, created the first time (owner-only) and reused after.
        """
        first = self.parse()
        assert first.devKey is not None and first.keyRing is not None
        path = os.path.join(self.directory, "txws-dev-keys.json")
        self.assertEqual(first.devKey, tap.DevKey(path, "dev", True))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(list(first.keyRing), ["dev"])
        second = self.parse()
        self.assertEqual(second.devKey, tap.DevKey(path, "dev", False))
        self.assertEqual(second.keyRing, first.keyRing)

    def test_echoNeedsNoKeys(self) -> None:
        """
        C{--app echo} creates no key file.
        """
        options = self.parse("--app", "echo")
        self.assertEqual(options.appName, "echo")
        self.assertIsNone(options.keyRing)
        self.assertEqual(os.listdir(self.directory), [])


class OptionsParsingTests(_Case):
    """
    Every option lands in the right place with the right type.
    """

    def test_deflateFlags(self) -> None:
        """
        C{--deflate} and C{--no-deflate} set C{perMessageDeflate}; neither
        leaves the default (on); both are a usage error.
        """
        self.assertEqual(self.parse("--app", "echo").givenWebSocketOptions, {})
        self.assertTrue(self.parse("--app", "echo").webSocketOptions.perMessageDeflate)
        for flag, value in (("--deflate", True), ("--no-deflate", False)):
            options = self.parse("--app", "echo", flag)
            self.assertEqual(options.givenWebSocketOptions, {"perMessageDeflate": value})
        self.assertRaises(usage.UsageError, self.parse, "--deflate", "--no-deflate")
        e = self.assertRaises(usage.UsageError, self.parse, "--deflate-level", "10")
        self.assertEqual(str(e), "--deflate-level must be between -1 and 9, not 10")

    def test_webSocketOptions(self) -> None:
        """
        Each WebSocket option sets the L{WebSocketOptions} field of the same
        meaning.
        """
        cases = [
            ("--max-message-size", "5000", "maxMessagePayloadSize", 5000),
            ("--max-frame-size", "4000", "maxFramePayloadSize", 4000),
            ("--max-handshake-size", "8192", "maxHandshakeSize", 8192),
            ("--open-timeout", "2.5", "openHandshakeTimeout", 2.5),
            ("--close-timeout", "3", "closeHandshakeTimeout", 3.0),
            ("--ping-interval", "0", "autoPingInterval", 0.0),
            ("--ping-timeout", "7.5", "autoPingTimeout", 7.5),
            ("--max-connections", "1000", "maxConnections", 1000),
            ("--write-buffer-size", "65536", "writeBufferSize", 65536),
            ("--max-message-fragments", "100", "maxMessageFragments", 100),
            ("--max-pending-handshakes", "64", "maxPendingHandshakes", 64),
            ("--max-pending-per-peer", "8", "maxPendingHandshakesPerPeer", 8),
            ("--deflate-level", "1", "perMessageDeflateLevel", 1),
        ]
        self.assertEqual(len(cases), len(tap.WEBSOCKET_OPTIONS))
        for option, text, field, value in cases:
            options = self.parse("--app", "echo", option, text)
            got = getattr(options.webSocketOptions, field)
            self.assertEqual((got, type(got)), (value, type(value)), option)
            self.assertEqual(options.givenWebSocketOptions, {field: value})
            self.assertEqual(
                options.webSocketOptions, WebSocketOptions().replace(**{field: value}), option
            )

    def test_origins(self) -> None:
        """
        C{--allowed-origin} repeats into C{allowedOrigins};
        C{--allow-null-origin} sets C{allowNullOrigin}.
        """
        options = self.parse(
            "--app", "echo",
            "--allowed-origin", "https://example.com",
            "--allowed-origin", "https://*.example.org",
            "--allow-null-origin",
        )
        self.assertEqual(
            options.webSocketOptions.allowedOrigins,
            ("https://example.com", "https://*.example.org"),
        )
        self.assertTrue(options.webSocketOptions.allowNullOrigin)
        self.assertFalse(options.webSocketOptions.originAllowed("https://evil.example"))
        self.assertTrue(options.webSocketOptions.originAllowed("https://a.example.org"))

    def test_hubOptions(self) -> None:
        """
        Each hub option sets the L{txws.hub.Hub} argument of the same name.
        """
        options = self.parse(
            "--history-size", "0",
            "--history-age", "12.5",
            "--max-subscriptions", "3",
            "--max-subscriber-buffer", "4096",
            "--max-body-size", "2048",
            "--broker", "memory",
        )
        self.assertEqual(
            options.hubArguments,
            {
                "historySize": 0,
                "historyAge": 12.5,
                "maxSubscriptions": 3,
                "maxSubscriberBuffer": 4096,
                "maxBodySize": 2048,
            },
        )

    def test_hmacKeys(self) -> None:
        """
        C{--hmac-keys} loads the key file; no development key file is made.
        """
        path = self.keyFile({"backend-1": "s3cret-one", "backend-2": "s3cret-two"})
        options = self.parse("--hmac-keys", path)
        self.assertEqual(options.keyRing, KeyRing({"backend-1": "s3cret-one",
                                                   "backend-2": "s3cret-two"}))
        self.assertIsNone(options.devKey)
        self.assertFalse(os.path.exists(os.path.join(self.directory, "txws-dev-keys.json")))

    def test_listenRepeats(self) -> None:
        """
        Every C{--listen} is kept, in order, and the default is then unused.
        """
        socket = os.path.join(self.directory, "s.sock")
        options = self.parse(
            "--app", "echo",
            "--listen", "tcp:9001:interface=127.0.0.1",
            "--listen", "tcp6:9002:interface=\\:\\:1",
            "--listen", f"unix:{socket}",
        )
        self.assertEqual(
            [each.description for each in options.listeners],
            ["tcp:9001:interface=127.0.0.1", "tcp6:9002:interface=\\:\\:1", f"unix:{socket}"],
        )

    def test_appCallable(self) -> None:
        """
        C{--app module:callable} calls it; a resource or a server factory
        is kept.
        """
        resource = self.parse("--app", "tests.test_tap:makeResource")
        self.assertIsInstance(resource.appObject, Resource)
        self.assertIsNone(resource.keyRing)
        factory = self.parse("--app", "tests.test_tap:makeFactory")
        self.assertIsInstance(factory.appObject, WebSocketServerFactory)

    def test_version(self) -> None:
        """
        C{--version} prints txws's version and exits 0.
        """
        from txws._version import __version__

        output = io.StringIO()
        self.patch(sys, "stdout", output)
        with self.assertRaises(SystemExit) as caught:
            self.parse("--version")
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(output.getvalue(), f"txws {__version__}\n")

    def test_helpIsPlainText(self) -> None:
        """
        The help text names every option and holds no epytext markup.
        """
        text = str(tap.Options())
        for option in [*tap.WEBSOCKET_OPTIONS, *tap.HUB_OPTIONS, "listen", "app", "tls-cert",
                       "tls-key", "tls-chain", "hmac-keys", "broker", "allowed-origin",
                       "allow-null-origin"]:
            self.assertIn(f"--{option}", text)
        for markup in ("C{", "L{", "I{", "@param", "@return"):
            self.assertNotIn(markup, text)


class OptionsErrorTests(_Case):
    """
    Each mistake is a usage error that says what is wrong.
    """

    def test_badNumbers(self) -> None:
        """
        A value that is not a number, or negative, names its option.
        """
        for option in [*tap.WEBSOCKET_OPTIONS, *tap.HUB_OPTIONS]:
            app = [] if option in tap.HUB_OPTIONS else ["--app", "echo"]
            self.assertIn(f"--{option} must be", self.refused(*app, f"--{option}", "lots"))
            self.assertIn(f"--{option} must not be negative",
                          self.refused(*app, f"--{option}", "-1"))

    def test_webSocketOptionLimits(self) -> None:
        """
        Values L{WebSocketOptions} refuses are refused, under the option's
        name.
        """
        message = self.refused("--app", "echo", "--write-buffer-size", "100")
        self.assertIn("--write-buffer-size must be at least 1024", message)
        message = self.refused("--app", "echo", "--max-handshake-size", "100")
        self.assertIn("--max-handshake-size must be at least 256", message)

    def test_hubLimits(self) -> None:
        """
        A hub option below its smallest sensible value is refused.
        """
        self.assertIn("--max-subscriptions must be at least 1",
                      self.refused("--max-subscriptions", "0"))
        self.assertIn("--max-body-size must be at least 1", self.refused("--max-body-size", "0"))

    def test_unknownOption(self) -> None:
        """
        An unknown option is refused.
        """
        self.assertIn("--bogus", self.refused("--bogus"))

    def test_badApp(self) -> None:
        """
        An unknown application name is refused, listing the choices.
        """
        self.assertIn("hub, echo or package.module:callable", self.refused("--app", "chat"))

    def test_hubOnlyOptions(self) -> None:
        """
        Hub options, keys and broker with another application are refused.
        """
        path = self.keyFile({"k": "secret"})
        message = self.refused("--app", "echo", "--history-size", "5", "--hmac-keys", path)
        self.assertIn("--history-size, --hmac-keys only apply to --app hub", message)
        self.assertIn("--broker", self.refused("--app", "echo", "--broker", "memory"))

    def test_badBroker(self) -> None:
        """
        A broker that is neither memory nor a Redis URL is refused, naming
        what is accepted.
        """
        message = self.refused("--broker", "memcached://127.0.0.1:11211")
        self.assertEqual(
            message,
            "--broker: unknown broker URL scheme 'memcached': use redis:// or rediss:// (TLS)",
        )
        self.assertIn("'memory' or a redis:// or rediss:// URL", self.refused("--broker", "mem"))

    def test_keyFileProblems(self) -> None:
        """
        A missing, insecure or malformed key file is refused without its
        content in the message.
        """
        missing = os.path.join(self.directory, "missing.json")
        self.assertIn("cannot read key file", self.refused("--hmac-keys", missing))
        insecure = self.keyFile({"k": "topsecretvalue"}, mode=0o644)
        message = self.refused("--hmac-keys", insecure)
        self.assertIn("accessible by other users", message)
        self.assertNotIn("topsecretvalue", message)
        broken = self.keyFile({"k": "x"})
        with open(broken, "w") as f:
            f.write('{"k": "topsecretvalue"')
        message = self.refused("--hmac-keys", broken)
        self.assertIn("not valid UTF-8 JSON", message)
        self.assertNotIn("topsecretvalue", message)

    def test_insecureDevKeyFile(self) -> None:
        """
        An existing development key file others may read is refused.
        """
        path = os.path.join(self.directory, "txws-dev-keys.json")
        with open(path, "w") as f:
            json.dump({"dev": "topsecretvalue"}, f)
        os.chmod(path, 0o644)
        message = self.refused()
        self.assertIn("development key file cannot be used", message)
        self.assertNotIn("topsecretvalue", message)

    def test_badEndpoints(self) -> None:
        """
        An endpoint of another type, or a malformed one, is refused.
        """
        self.assertIn("unsupported endpoint type 'udp'",
                      self.refused("--app", "echo", "--listen", "udp:53"))
        self.assertIn("--listen tcp:http-ish",
                      self.refused("--app", "echo", "--listen", "tcp:http-ish"))
        self.assertIn("unsupported endpoint type ''", self.refused("--app", "echo", "--listen", ""))

    def test_callableProblems(self) -> None:
        """
        A callable that cannot be imported, is not callable, raises, or
        returns something unservable is refused.
        """
        self.assertIn("cannot import it: ModuleNotFoundError",
                      self.refused("--app", "no_such_module_xyz:make"))
        self.assertIn("cannot import it: AttributeError",
                      self.refused("--app", "tests.test_tap:nothingHere"))
        self.assertIn("not callable", self.refused("--app", "tests.test_tap:notCallable"))
        self.assertIn("calling it failed: RuntimeError: no database",
                      self.refused("--app", "tests.test_tap:makeTrouble"))
        self.assertIn("returned int; expected a twisted.web resource",
                      self.refused("--app", "tests.test_tap:makeNothing"))


class TLSOptionsTests(_Case):
    """
    C{ssl:} listeners and C{--tls-cert}/C{--tls-key}/C{--tls-chain}.
    """

    def assertModernOnly(self, context: SSL.Context) -> None:
        """
        The context refuses TLS 1.0 and 1.1 and accepts 1.2 and 1.3, in
        memory.
        """
        for old in (SSL.TLS1_VERSION, SSL.TLS1_1_VERSION):
            side, reason = _handshake(context, old)
            self.assertEqual(side, "server", reason)
            self.assertIn("unsupported protocol", reason)
        self.assertEqual(_handshake(context, SSL.TLS1_2_VERSION), ("ok", "TLSv1.2"))
        self.assertEqual(_handshake(context, SSL.TLS1_3_VERSION), ("ok", "TLSv1.3"))

    def test_fullSSLString(self) -> None:
        """
        An C{ssl:} string with its own files is parsed by txws and its
        context refuses TLS below 1.2.
        """
        files = self.files
        options = self.parse(
            "--app", "echo",
            "--listen", f"ssl:8443:interface=127.0.0.1:backlog=7:privateKey={files.key}"
                        f":certKey={files.cert}",
        )
        (listener,) = options.listeners
        self.assertEqual(
            listener.ssl,
            _tls.SSLDescription(8443, "127.0.0.1", 7, files.key, files.cert),
        )
        assert listener.tlsOptions is not None
        self.assertModernOnly(listener.tlsOptions.getContext())

    def test_convenienceOptions(self) -> None:
        """
        An C{ssl:} listener naming no key uses C{--tls-cert} and
        C{--tls-key}; several listeners share them.
        """
        files = self.files
        options = self.parse(
            "--app", "echo",
            "--listen", "ssl:8443:interface=0.0.0.0",
            "--listen", "ssl:port=9443",
            "--listen", "tcp:8080",
            "--tls-cert", files.cert,
            "--tls-key", files.key,
        )
        first, second, plain = options.listeners
        assert first.ssl is not None and second.ssl is not None
        self.assertEqual((first.ssl.port, first.ssl.interface), (8443, "0.0.0.0"))
        self.assertEqual((second.ssl.port, second.ssl.interface), (9443, ""))
        self.assertIs(first.tlsOptions, second.tlsOptions)
        self.assertIsNone(plain.tlsOptions)
        assert first.tlsOptions is not None
        self.assertModernOnly(first.tlsOptions.getContext())

    def test_chain(self) -> None:
        """
        With an intermediate CA, C{--tls-chain} (or a certificate file that
        holds the chain) makes the server send it.
        """
        intermediate = TestAuthority(issuer=self.authority, name="txws test intermediate")
        files = intermediate.writeServerFiles(self)
        assert files.chain is not None
        fullchain = os.path.join(self.directory, "fullchain.pem")
        with open(fullchain, "wb") as out:
            for path in (files.cert, files.chain):
                with open(path, "rb") as source:
                    out.write(source.read())
        for extra in (["--tls-cert", files.cert, "--tls-chain", files.chain],
                      ["--tls-cert", fullchain]):
            options = self.parse("--app", "echo", "--listen", "ssl:8443",
                                 "--tls-key", files.key, *extra)
            tlsOptions = options.listeners[0].tlsOptions
            assert tlsOptions is not None
            self.assertEqual(
                [c.get_subject().CN for c in tlsOptions.extraCertChain],
                ["txws test intermediate"],
            )

    def test_combinedKeyAndCertificate(self) -> None:
        """
        C{privateKey=} alone names a file holding key and certificate, as
        Twisted's own C{ssl:} endpoint reads it.
        """
        files = self.files
        combined = os.path.join(self.directory, "server.pem")
        with open(combined, "wb") as out:
            for path in (files.key, files.cert):
                with open(path, "rb") as source:
                    out.write(source.read())
        os.chmod(combined, 0o600)
        options = self.parse("--app", "echo", "--listen", f"ssl:0:privateKey={combined}")
        tlsOptions = options.listeners[0].tlsOptions
        assert tlsOptions is not None
        self.assertModernOnly(tlsOptions.getContext())

    def test_pairing(self) -> None:
        """
        C{--tls-cert} without C{--tls-key} or the reverse, C{--tls-chain}
        alone, and unused TLS files are refused.
        """
        files = self.files
        echo = ["--app", "echo", "--listen", "ssl:8443"]
        self.assertIn("must be given together", self.refused(*echo, "--tls-cert", files.cert))
        self.assertIn("must be given together", self.refused(*echo, "--tls-key", files.key))
        self.assertIn("--tls-chain needs", self.refused(*echo, "--tls-chain", files.cert))
        message = self.refused("--app", "echo", "--tls-cert", files.cert, "--tls-key", files.key)
        self.assertIn("no listener uses them", message)

    def test_noKey(self) -> None:
        """
        An C{ssl:} listener with no key from anywhere is refused.
        """
        message = self.refused("--app", "echo", "--listen", "ssl:8443")
        self.assertIn("--listen ssl:8443: no TLS key", message)

    def test_badSSLStrings(self) -> None:
        """
        C{sslmethod}, unknown parameters, a bad port and a certificate
        without a key are refused.
        """
        files = self.files
        key = f":privateKey={files.key}:certKey={files.cert}"
        cases = [
            (f"ssl:8443{key}:sslmethod=TLSv1_METHOD", "sslmethod is not supported"),
            (f"ssl:8443{key}:colour=blue", "unknown parameter(s) colour"),
            (f"ssl:eighty{key}", "port must be an integer"),
            (f"ssl:70000{key}", "port must be an integer"),
            (f"ssl{key}", "no port"),
            (f"ssl:1:2{key}", "give parameters by name"),
            (f"ssl:8443:certKey={files.cert}", "needs privateKey= too"),
            (f"ssl:8443{key}:interface=a:interface=b", "interface= is given twice"),
        ]
        for description, expected in cases:
            self.assertIn(expected, self.refused("--app", "echo", "--listen", description))

    def test_fileProblems(self) -> None:
        """
        Missing, insecure, encrypted, malformed or mismatched TLS files are
        refused, naming the file and never its content.
        """
        files = self.files
        missing = os.path.join(self.directory, "missing.pem")

        def refusedFiles(cert: str, key: str) -> str:
            return self.refused("--app", "echo", "--listen", "ssl:0",
                                "--tls-cert", cert, "--tls-key", key)

        self.assertIn(f"cannot read TLS certificate file {missing}",
                      refusedFiles(missing, files.key))
        self.assertIn(f"cannot read TLS private key file {missing}",
                      refusedFiles(files.cert, missing))
        self.assertIn("holds no PEM certificate", refusedFiles(files.key, files.key))
        certAsKey = os.path.join(self.directory, "cert-as-key.pem")
        with open(files.cert, "rb") as source, open(certAsKey, "wb") as out:
            out.write(source.read())
        os.chmod(certAsKey, 0o600)
        self.assertIn("holds no PEM private key", refusedFiles(files.cert, certAsKey))
        os.chmod(files.key, 0o644)
        self.assertIn("readable by other users", refusedFiles(files.cert, files.key))
        os.chmod(files.key, 0o640)
        self.assertModernOnly(self.parse("--app", "echo", "--listen", "ssl:0",
                                         "--tls-cert", files.cert, "--tls-key", files.key)
                              .listeners[0].tlsOptions.getContext())  # type: ignore[union-attr]
        other = TestAuthority().writeServerFiles(self)
        self.assertIn("does not match the certificate", refusedFiles(files.cert, other.key))
        with open(files.key, "rb") as source:
            keyPem = source.read()
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(keyPem, None)
        encrypted = os.path.join(self.directory, "encrypted.key")
        with open(encrypted, "wb") as out:
            out.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            ))
        os.chmod(encrypted, 0o600)
        self.assertIn("is encrypted", refusedFiles(files.cert, encrypted))
        garbled = os.path.join(self.directory, "garbled.key")
        with open(garbled, "wb") as out:
            out.write(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0YmxvYg==\n-----END PRIVATE KEY-----\n")
        os.chmod(garbled, 0o600)
        message = refusedFiles(files.cert, garbled)
        self.assertIn("is malformed", message)
        self.assertNotIn("c2VjcmV0YmxvYg", message)


class SplitDescriptionTests(SynchronousTestCase):
    """
    L{txws._tls.splitDescription} reads endpoint strings as Twisted does.
    """

    def test_escapes(self) -> None:
        """
        Backslashes escape C{:}, C{=} and themselves.
        """
        self.assertEqual(
            _tls.splitDescription("ssl:443:interface=\\:\\:1:privateKey=a\\=b\\\\c"),
            (["ssl", "443"], {"interface": "::1", "privateKey": "a=b\\c"}),
        )

    def test_valueWithEquals(self) -> None:
        """
        Only the first C{=} of a field separates name and value.
        """
        self.assertEqual(
            _tls.splitDescription("ssl:1:privateKey=a=b"),
            (["ssl", "1"], {"privateKey": "a=b"}),
        )


# -- makeService --------------------------------------------------------------------


class _RecordingHub:
    """
    Stands in for L{txws.hub.Hub}: records its arguments.
    """

    made: list[_RecordingHub] = []

    def __init__(self, keyRing: KeyRing, **arguments: Any) -> None:
        self.keyRing = keyRing
        self.arguments = arguments
        self.siteObject = Site(Resource())
        self.running = False
        self.parent: Any = None
        _RecordingHub.made.append(self)

    def site(self) -> Site:
        return self.siteObject

    def setServiceParent(self, parent: Any) -> None:
        self.parent = parent
        parent.addService(self)

    def privilegedStartService(self) -> None:
        pass

    def startService(self) -> None:
        self.running = True

    def stopService(self) -> Deferred[None]:
        self.running = False
        return succeed(None)

    name = None


class MakeServiceTests(_Case):
    """
    L{tap.makeService} with a memory reactor.
    """

    def setUp(self) -> None:
        super().setUp()
        self.reactor = MemoryReactorClock()

    def make(self, *argv: str) -> Any:
        service = tap.makeService(self.parse(*argv), reactor=self.reactor)
        assert isinstance(service, tap.TxwsService)
        return service

    def tcpServers(self) -> Any:
        return self.reactor.tcpServers

    def test_echo(self) -> None:
        """
        C{--app echo}: a Site on the default address whose C{/ws} is a
        WebSocket resource with the command line's options and whose C{/}
        says what it is.
        """
        service = self.make("--app", "echo", "--max-message-size", "77")
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        ((port, factory, _backlog, interface),) = self.tcpServers()
        self.assertEqual((port, interface), (8080, "127.0.0.1"))
        self.assertIsInstance(factory, Site)
        self.assertIs(factory, service.site)
        ws = factory.resource.children[b"ws"]
        self.assertIsInstance(ws, WebSocketResource)
        self.assertEqual(ws.factory.options.maxMessagePayloadSize, 77)
        self.assertIsInstance(service.app, tap.WebSocketClosingService)
        assert isinstance(service.app, tap.WebSocketClosingService)
        self.assertIs(service.app.factory, ws.factory)
        index = factory.resource.children[b""]
        self.assertIn(b"txws echo server", index.data)
        self.assertEqual(index.type, "text/plain; charset=utf-8")

    def test_listeners(self) -> None:
        """
        Every C{--listen} listens, in order, serving the same site: plain
        TCP, IPv6 and UNIX sockets through Twisted's endpoints, C{ssl:}
        through txws's TLS context.
        """
        files = self.files
        socket = os.path.join(self.directory, "txws.sock")
        service = self.make(
            "--app", "echo",
            "--listen", "tcp:9001:interface=127.0.0.1:backlog=9",
            "--listen", "tcp6:9002:interface=\\:\\:1",
            "--listen", f"unix:{socket}",
            "--listen", f"ssl:9443:interface=127.0.0.1:privateKey={files.key}:certKey={files.cert}",
            "--listen", "ssl:9444",
            "--tls-cert", files.cert, "--tls-key", files.key,
        )
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        site = service.site
        self.assertEqual(
            [(p, f, b, i) for p, f, b, i in self.reactor.tcpServers],
            [(9001, site, 9, "127.0.0.1"), (9002, site, 50, "::1")],
        )
        self.assertEqual([(path, f) for path, f, *_ in self.reactor.unixServers], [(socket, site)])
        ((port1, f1, context1, _b1, i1), (port2, f2, context2, _b2, i2)) = self.reactor.sslServers
        self.assertEqual((port1, f1, i1, port2, f2, i2),
                         (9443, site, "127.0.0.1", 9444, site, ""))
        for context in (context1, context2):
            side, reason = _handshake(context.getContext(), SSL.TLS1_1_VERSION)
            self.assertEqual(side, "server", reason)
            self.assertEqual(_handshake(context.getContext(), SSL.TLS1_2_VERSION),
                             ("ok", "TLSv1.2"))

    def test_hub(self) -> None:
        """
        The hub gets the key ring, the WebSocket options, the reactor and
        the hub options; it is the first child; its site is served.
        """
        _RecordingHub.made = []
        import txws.hub

        self.patch(txws.hub, "Hub", _RecordingHub)
        path = self.keyFile({"backend-1": "s3cret"})
        service = self.make("--hmac-keys", path, "--history-size", "9", "--ping-interval", "5")
        (hub,) = _RecordingHub.made
        self.assertEqual(hub.keyRing, KeyRing({"backend-1": "s3cret"}))
        self.assertEqual(
            hub.arguments,
            {
                "reactor": self.reactor,
                "options": WebSocketOptions(autoPingInterval=5),
                "historySize": 9,
                "historyAge": 300.0,
                "maxSubscriptions": 100,
                "maxSubscriberBuffer": _MiB,
                "maxBodySize": _MiB,
                "broker": None,
                "replayStore": None,
            },
        )
        self.assertIs(next(iter(service)), hub)
        self.assertIs(service.site, hub.siteObject)
        service.privilegedStartService()
        service.startService()
        self.assertTrue(hub.running)
        ((_port, factory, _backlog, _interface),) = self.tcpServers()
        self.assertIs(factory, hub.siteObject)
        service.stopService()
        self.assertFalse(hub.running)

    def test_realHub(self) -> None:
        """
        With the real L{txws.hub.Hub}, its site is what listens.
        """
        from txws.hub import Hub

        service = self.make("--listen", "tcp:0:interface=127.0.0.1")
        self.assertIsInstance(service.app, Hub)
        assert isinstance(service.app, Hub)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        ((_port, factory, _backlog, _interface),) = self.tcpServers()
        self.assertIs(factory, service.site)
        self.assertEqual(type(factory).__name__, "HMACSite")

    def test_devKeyLogged(self) -> None:
        """
        With the development key file, its path, key id and whether it was
        created are logged once, never the secret.
        """
        options = self.parse()
        assert options.keyRing is not None and options.devKey is not None
        with capturedLogs() as events:
            tap.makeService(options, reactor=self.reactor)
        texts = [str(e) for e in events if "development key file" in str(e.get("log_format"))]
        self.assertEqual(len(texts), 1)
        for event in events:
            for value in event.values():
                self.assertNotIn(options.keyRing["dev"].decode(), str(value))
        self.assertEqual(
            [(e["path"], e["keyId"], e["state"]) for e in events if "path" in e],
            [(options.devKey.path, "dev", "created now")],
        )

    def test_callableFactory(self) -> None:
        """
        A factory from C{--app module:callable} is served as a plain
        WebSocket listener; the command line's WebSocket options are applied
        over its own, and it is closed on stop.
        """
        service = self.make("--app", "tests.test_tap:makeFactory", "--max-frame-size", "123")
        service.privilegedStartService()
        ((_port, factory, _b, _i),) = self.tcpServers()
        self.assertIsInstance(factory, WebSocketServerFactory)
        self.assertEqual(factory.options.maxFramePayloadSize, 123)
        self.assertEqual(factory.options.autoPingInterval, 7)
        assert isinstance(service.app, tap.WebSocketClosingService)
        self.assertIs(service.app.factory, factory)

    def test_callableResource(self) -> None:
        """
        A resource from C{--app module:callable} is served in a Site; a bare
        WebSocket resource also gets its factory closed on stop.
        """
        service = self.make("--app", "tests.test_tap:makeResource")
        self.assertIsInstance(service.site, Site)
        assert isinstance(service.site, Site)
        self.assertIn(b"x", service.site.resource.children)
        self.assertIsNone(service.app)
        bare = self.make("--app", "tests.test_tap:makeWebSocketResource")
        assert isinstance(bare.site, Site)
        assert isinstance(bare.app, tap.WebSocketClosingService)
        self.assertIs(bare.app.factory, bare.site.resource.factory)

    def test_echoSiteBounds(self) -> None:
        """
        C{--app echo} is served in an L{HMACSite} bounded as the opening
        handshake (head size, 408 after the open timeout, no body cap), whose
        connections are pending handshakes of the echo factory.
        """
        service = self.make("--app", "echo", "--max-handshake-size", "4096",
                            "--open-timeout", "3", "--max-pending-handshakes", "64",
                            "--max-pending-per-peer", "4")
        site = service.site
        assert isinstance(site, HMACSite)
        assert isinstance(service.app, tap.WebSocketClosingService)
        factory = service.app.factory
        self.assertEqual((site.maxHeadSize, site.requestTimeout), (4096, 3.0))
        self.assertEqual(site.maxBodySize, sys.maxsize)
        self.assertIs(site.admission, factory.admission)
        self.assertEqual((site.maxPendingHandshakes, site.maxPendingHandshakesPerPeer), (64, 4))
        self.assertEqual(factory.options.maxPendingHandshakes, 64)
        untimed = self.make("--app", "echo", "--open-timeout", "0").site
        assert isinstance(untimed, HMACSite)
        self.assertIsNone(untimed.requestTimeout)

    def test_callableResourceSiteBounds(self) -> None:
        """
        A resource from C{--app module:callable} gets the same head bounds,
        without a pending table (its factories are its own).
        """
        site = self.make("--app", "tests.test_tap:makeResource").site
        assert isinstance(site, HMACSite)
        self.assertEqual(site.maxHeadSize, WebSocketOptions().maxHandshakeSize)
        self.assertIsNone(site.admission)

    def test_listenersStopFirst(self) -> None:
        """
        The application's service is the first child, so it is stopped
        last: listeners stop accepting before WebSockets are closed.
        """
        service = self.make("--app", "echo", "--listen", "tcp:1", "--listen", "tcp:2")
        children = list(service)
        self.assertIsInstance(children[0], tap.WebSocketClosingService)
        self.assertEqual([type(c) for c in children[1:]], [tap.ListeningService] * 2)
        order: list[str] = []
        for child in children:
            original = child.stopService

            def recording(child: Any = child, original: Any = original) -> Any:
                order.append(type(child).__name__)
                return original()

            child.stopService = recording
        service.privilegedStartService()
        service.startService()
        self.assertEqual([s.port is None for s in service.listeners()], [False, False])
        service.stopService()
        self.assertEqual(order, ["ListeningService", "ListeningService",
                                 "WebSocketClosingService"])
        self.assertEqual([s.port for s in service.listeners()], [None, None])


class ServiceTests(SynchronousTestCase):
    """
    The services L{makeService} is built from.
    """

    def test_cleanExit(self) -> None:
        """
        After a shutdown that began with a signal, twistd is told no signal
        was received, so it exits 0 instead of killing itself with it.
        """
        reactor = MemoryReactorClock()
        service = tap.TxwsService(reactor)
        service.startService()
        ((after, args, kwargs),) = reactor.triggers["after"]["shutdown"]
        reactor._exitSignal = 15  # type: ignore[attr-defined]
        installed: list[tuple[int, object]] = []
        self.patch(signal, "signal", lambda number, handler: installed.append((number, handler)))
        after(*args, **kwargs)
        self.assertIsNone(reactor._exitSignal)  # type: ignore[attr-defined]
        # A late signal cannot kill the exiting process either.
        self.assertEqual(
            installed, [(signal.SIGINT, signal.SIG_IGN), (signal.SIGTERM, signal.SIG_IGN)]
        )
        self.assertEqual(len(reactor.triggers["before"]["shutdown"]), 1)

    def test_closingServiceWaitsForCloses(self) -> None:
        """
        The closing service closes with 1001 and fires when the
        connections are gone, cancelling its deadline.
        """
        clock = Clock()
        factory = _StubFactory(closeTimeout=5)
        service = tap.WebSocketClosingService(factory, clock)  # type: ignore[arg-type]
        service.startService()  # type: ignore[no-untyped-call]
        d = service.stopService()
        self.assertEqual(factory.closeCodes, [1001])
        self.assertNoResult(d)
        factory.closing.callback(None)
        self.successResultOf(d)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_closingServiceAbortsAtDeadline(self) -> None:
        """
        Connections still open at the close timeout plus the margin are
        aborted, and the stop completes then.
        """
        clock = Clock()
        factory = _StubFactory(closeTimeout=5)
        service = tap.WebSocketClosingService(factory, clock)  # type: ignore[arg-type]
        service.startService()  # type: ignore[no-untyped-call]
        d = service.stopService()
        clock.advance(5 + tap.SHUTDOWN_MARGIN - 0.1)
        self.assertNoResult(d)
        self.assertEqual(factory.transport.aborted, 0)
        clock.advance(0.1)
        self.successResultOf(d)
        self.assertEqual(factory.transport.aborted, 1)
        factory.closing.callback(None)  # late: no second result

    def test_closingServiceWithoutCloseTimeout(self) -> None:
        """
        With no close timeout, shutdown still ends after a fixed wait.
        """
        clock = Clock()
        factory = _StubFactory(closeTimeout=0)
        service = tap.WebSocketClosingService(factory, clock)  # type: ignore[arg-type]
        service.startService()  # type: ignore[no-untyped-call]
        d = service.stopService()
        clock.advance(tap.SHUTDOWN_WITHOUT_CLOSE_TIMEOUT + tap.SHUTDOWN_MARGIN)
        self.successResultOf(d)

    def test_closingServiceNothingOpen(self) -> None:
        """
        With no connections the stop is immediate.
        """
        clock = Clock()
        factory = WebSocketServerFactory(reactor=clock)
        service = tap.WebSocketClosingService(factory, clock)
        service.startService()  # type: ignore[no-untyped-call]
        self.successResultOf(service.stopService())

    def test_listenFailure(self) -> None:
        """
        An endpoint that cannot listen ends the start with a one-line
        reason (no traceback).
        """
        listener = tap.Listener("tcp:80")
        endpoint: Any = _FailingEndpoint()
        service = tap.ListeningService(listener, endpoint, Site(Resource()), "echo", "/ws")
        with capturedLogs() as events, self.assertRaises(SystemExit) as caught:
            service.privilegedStartService()
        self.assertEqual(
            str(caught.exception),
            "txws: cannot listen on tcp:80: "
            "Couldn't listen on any:80: [Errno 13] Permission denied.",
        )
        self.assertEqual(len([e for e in events if e["log_level"].name == "error"]), 1)

    def test_describe(self) -> None:
        """
        The log names URLs for IPv4 and IPv6, plain and TLS, and a UNIX socket by its path.
        """
        cases = [
            (tap.Listener("tcp:1"), IPv4Address("TCP", "127.0.0.1", 8080), "/ws",
             "http://127.0.0.1:8080/ (WebSocket: ws://127.0.0.1:8080/ws)"),
            (tap.Listener("tcp6:1"), IPv6Address("TCP", "::1", 8080), None,
             "http://[::1]:8080/"),
            (tap.Listener("ssl:1", ssl=_tls.SSLDescription(1)),
             IPv4Address("TCP", "0.0.0.0", 8443), "/", "wss://0.0.0.0:8443/"),
            (tap.Listener("unix:address=/run/txws.sock:mode=600"),
             UNIXAddress(b"/run/txws.sock"), "/ws", "unix:/run/txws.sock (WebSocket path /ws)"),
            (tap.Listener("unix:/run/txws-metrics.sock"),
             UNIXAddress(b"/run/txws-metrics.sock"), None, "unix:/run/txws-metrics.sock"),
        ]
        for listener, address, path, expected in cases:
            endpoint: Any = _FailingEndpoint()
            service = tap.ListeningService(listener, endpoint, Site(Resource()),
                                           "x", path)
            service.port = _Port(address)  # type: ignore[assignment]
            self.assertEqual(service.describe(), expected)


class _StubTransport:
    def __init__(self) -> None:
        self.aborted = 0

    def abortConnection(self) -> None:
        self.aborted += 1


class _StubConnection:
    def __init__(self, transport: _StubTransport) -> None:
        self.transport = transport


class _StubFactory:
    def __init__(self, closeTimeout: float) -> None:
        self.options = WebSocketOptions(closeHandshakeTimeout=closeTimeout)
        self.closeCodes: list[int] = []
        self.closing: Deferred[None] = Deferred()
        self.transport = _StubTransport()

    def closeAll(self, code: int) -> Deferred[None]:
        self.closeCodes.append(code)
        return self.closing

    def connections(self) -> list[_StubConnection]:
        return [_StubConnection(self.transport)]


class _FailingEndpoint:
    def listen(self, factory: object) -> Deferred[object]:
        return fail(CannotListenError("", 80, OSError(13, "Permission denied")))


class _Port:
    def __init__(self, address: object) -> None:
        self.address = address

    def getHost(self) -> object:
        return self.address


# -- --broker and --workers ---------------------------------------------------------

_REDIS = "redis://127.0.0.1:6399/0"


class BrokerOptionsTests(_Case):
    """
    C{--broker}: memory or a Redis URL, checked before anything starts.
    """

    def test_memory(self) -> None:
        """
        Without C{--broker}, and with C{--broker memory}, the broker is in
        this process.
        """
        self.assertEqual(self.parse().brokerSettings, MemorySettings())
        self.assertEqual(self.parse("--broker", "memory").brokerSettings, MemorySettings())

    def test_redis(self) -> None:
        """
        A C{redis://} URL gives its host, port, database and credentials.
        """
        options = self.parse("--broker", "redis://backend:s%40cret@10.0.0.5:6380/3")
        self.assertEqual(
            options.brokerSettings,
            RedisSettings("10.0.0.5", 6380, 3, "backend", "s@cret", False, None),
        )

    def test_rediss(self) -> None:
        """
        A C{rediss://} URL is TLS, with the CA file of C{?ca=}.
        """
        ca = self.authority.writeCAFile(self)
        options = self.parse("--broker", f"rediss://redis.example.com/1?ca={ca}")
        self.assertEqual(
            options.brokerSettings,
            RedisSettings("redis.example.com", 6379, 1, None, None, True, ca),
        )

    def test_badURLs(self) -> None:
        """
        A malformed Redis URL is a usage error naming the wrong part, and
        the password never appears in it.
        """
        cases = {
            "redis://": "names no host",
            "redis://:hunter2@127.0.0.1:99999/0": "port must be a number",
            "redis://:hunter2@127.0.0.1:6379/zero": "must be a database number",
            "redis://hunter2@127.0.0.1/0": "credentials must be",
            "redis://:hunter2@127.0.0.1/0?ca=/tmp/ca.pem": "needs TLS",
            "redis://:hunter2@127.0.0.1/0?timeout=3": "unknown Redis URL parameter",
            "rediss://:hunter2@h/0?ca=/nonexistent/ca.pem": "does not exist",
            "http://:hunter2@127.0.0.1/": "unknown broker URL scheme 'http'",
        }
        for url, expected in cases.items():
            message = self.refused("--broker", url)
            self.assertTrue(message.startswith("--broker: "), message)
            self.assertIn(expected, message)
            self.assertNotIn("hunter2", message)


class WorkersOptionsTests(_Case):
    """
    C{--workers N} and the C{--worker} mark of its processes.
    """

    def test_default(self) -> None:
        """
        One process by default, not a worker.
        """
        options = self.parse()
        self.assertEqual((options.workers, options.workerIndex), (1, None))
        self.assertEqual(self.parse("--workers", "1").workers, 1)

    def test_workers(self) -> None:
        """
        C{--workers N} with a Redis broker and TCP or TLS listeners.
        """
        files = self.files
        options = self.parse(
            "--workers", "3", "--broker", _REDIS,
            "--listen", "tcp:9001:interface=127.0.0.1",
            "--listen", "tcp6:9002:interface=\\:\\:1",
            "--listen", f"ssl:9443:privateKey={files.key}:certKey={files.cert}",
        )
        self.assertEqual(options.workers, 3)
        self.assertIsNone(options.workerIndex)

    def test_needsRedis(self) -> None:
        """
        More than one worker without a Redis broker is refused, saying why.
        """
        for argv in (("--workers", "2"), ("--workers", "2", "--broker", "memory")):
            message = self.refused(*argv)
            self.assertIn("--workers 2 needs a Redis broker (--broker redis://", message)
            self.assertIn("only a broker shared through Redis delivers a publish", message)

    def test_atLeastOne(self) -> None:
        """
        C{--workers 0}, a negative or a non-number are refused.
        """
        self.assertEqual(self.refused("--workers", "0"), "--workers must be at least 1")
        self.assertIn("must not be negative", self.refused("--workers", "-2"))
        self.assertIn("--workers must be a whole number", self.refused("--workers", "two"))

    def test_listenersThatCannotBeShared(self) -> None:
        """
        With workers, C{unix:} and C{systemd:} listeners and port 0 are
        refused.
        """
        socketPath = os.path.join(self.directory, "txws.sock")
        message = self.refused(
            "--workers", "2", "--broker", _REDIS, "--listen", f"unix:{socketPath}"
        )
        self.assertIn(
            f"--listen unix:{socketPath}: --workers 2 shares tcp:, tcp6: and ssl:", message
        )
        self.assertIn("unix: and systemd: listeners cannot be shared", message)
        message = self.refused("--workers", "2", "--broker", _REDIS, "--listen", "tcp:0")
        self.assertIn("--listen tcp:0: --workers 2 needs a fixed port", message)

    def test_hubOnly(self) -> None:
        """
        C{--workers} is a hub option.
        """
        self.assertIn(
            "--workers only apply to --app hub", self.refused("--app", "echo", "--workers", "2")
        )

    def test_workerMark(self) -> None:
        """
        C{--worker I} marks a worker; it is not combined with C{--workers}.
        """
        options = self.parse("--worker", "2", "--broker", _REDIS)
        self.assertEqual((options.workers, options.workerIndex), (1, 2))
        self.assertIn(
            "give only --workers",
            self.refused("--worker", "1", "--workers", "2", "--broker", _REDIS),
        )
        self.assertIn("--worker must be at least 1", self.refused("--worker", "0"))

    def test_workerArguments(self) -> None:
        """
        A worker's options are the parent's, written out in full, without
        C{--workers}: parsed again, they mean the same.
        """
        path = self.keyFile({"k": "secret"})
        parent = self.parse(
            "--workers", "2", "--broker", "redis://:pw@127.0.0.1:6399/1",
            "--hmac-keys", path, "--history-size", "7", "--ping-interval", "2.5",
            "--allowed-origin", "https://a.example", "--allowed-origin", "https://b.example",
            "--allow-null-origin", "--listen", "tcp:9001:interface=127.0.0.1",
            "--listen", "tcp:9002",
        )
        arguments = parent.workerArguments()
        self.assertFalse([a for a in arguments if a.startswith("--workers")])
        self.assertIn("--broker=redis://:pw@127.0.0.1:6399/1", arguments)
        worker = self.parse("--worker=1", *arguments)
        self.assertEqual(worker.workerIndex, 1)
        for name in ("brokerSettings", "hubArguments", "webSocketOptions", "keyRing", "appName"):
            self.assertEqual(getattr(worker, name), getattr(parent, name), name)
        self.assertEqual(
            [listener.description for listener in worker.listeners],
            ["tcp:9001:interface=127.0.0.1", "tcp:9002"],
        )
        self.assertEqual(worker["allowed-origin"], parent["allowed-origin"])


class RedisServiceTests(_Case):
    """
    L{tap.makeService} with C{--broker redis://}, C{--workers} and
    C{--worker}.
    """

    def setUp(self) -> None:
        super().setUp()
        self.reactor = MemoryReactorClock()

    def make(self, *argv: str) -> Any:
        service = tap.makeService(self.parse(*argv), reactor=self.reactor)
        assert isinstance(service, tap.TxwsService)
        return service

    def tcpServers(self) -> Any:
        return self.reactor.tcpServers

    def messages(self, events: Sequence[dict[str, Any]]) -> list[str]:
        from twisted.logger import formatEvent

        return [formatEvent(event) for event in events]

    def test_redisHub(self) -> None:
        """
        With a Redis URL the hub gets a Redis broker (with the history
        options) and a Redis replay store (which the hub stops); the broker
        is logged once without its password.
        """
        _RecordingHub.made = []
        import txws.hub

        self.patch(txws.hub, "Hub", _RecordingHub)
        with capturedLogs() as events:
            service = self.make(
                "--broker", "redis://:topsecret@127.0.0.1:6399/2",
                "--history-size", "9", "--history-age", "60",
            )
        (hub,) = _RecordingHub.made
        broker, store = hub.arguments["broker"], hub.arguments["replayStore"]
        self.assertIsInstance(broker, RedisBroker)
        self.assertIsInstance(store, RedisReplayStore)
        self.assertEqual((broker.historySize, broker.historyAge), (9, 60.0))
        self.assertEqual(broker.settings, RedisSettings("127.0.0.1", 6399, 2, password="topsecret"))
        self.assertEqual(store.settings, broker.settings)
        children = list(service)
        self.assertIs(children[0], hub)
        logged = [m for m in self.messages(events) if m.startswith("hub broker:")]
        self.assertEqual(
            logged,
            ["hub broker: redis://***@127.0.0.1:6399/2 (channel numbering, history and "
             "the HMAC replay store are shared through Redis)"],
        )
        self.assertNotIn("topsecret", "\n".join(self.messages(events)))

    def test_memoryHubLogsBroker(self) -> None:
        """
        The in-process broker is logged too, and the hub makes its own.
        """
        _RecordingHub.made = []
        import txws.hub

        self.patch(txws.hub, "Hub", _RecordingHub)
        with capturedLogs() as events:
            self.make()
        (hub,) = _RecordingHub.made
        self.assertEqual((hub.arguments["broker"], hub.arguments["replayStore"]), (None, None))
        self.assertIn("hub broker: memory (in this process)", self.messages(events))

    def test_supervisor(self) -> None:
        """
        C{--workers N}: the root service runs a supervisor of N workers
        with the worker options and the listeners' addresses, and listens
        on nothing itself.
        """
        with capturedLogs() as events:
            service = self.make(
                "--workers", "2", "--broker", "redis://:pw@127.0.0.1:6399/0",
                "--listen", "tcp:9001:interface=127.0.0.1", "--close-timeout", "4",
            )
        supervisor = service.app
        self.assertIsInstance(supervisor, _workers.WorkerSupervisor)
        self.assertEqual(list(service), [supervisor])
        self.assertEqual(supervisor.count, 2)
        self.assertIn("--listen=tcp:9001:interface=127.0.0.1", supervisor.arguments)
        self.assertEqual(
            supervisor.addresses,
            [_workers.ListenAddress(socket.AF_INET, "127.0.0.1", 9001, 50)],
        )
        self.assertEqual(
            supervisor.stopTimeout, 4 + tap.SHUTDOWN_MARGIN + tap.WORKER_STOP_MARGIN
        )
        self.assertIn(
            "hub broker: redis://***@127.0.0.1:6399/0, shared by 2 workers",
            self.messages(events),
        )
        self.assertEqual(self.tcpServers(), [])

    def test_worker(self) -> None:
        """
        C{--worker I}: every listener binds with C{SO_REUSEPORT} (TLS
        included), a parent watcher runs, and the broker and the
        development key are left for the parent to log.
        """
        files = self.files
        with capturedLogs() as events:
            service = self.make(
                "--worker", "1", "--broker", _REDIS,
                "--listen", "tcp:9001:interface=127.0.0.1",
                "--listen",
                f"ssl:9443:interface=127.0.0.1:privateKey={files.key}:certKey={files.cert}",
            )
        endpoints = [listener.endpoint for listener in service.listeners()]
        self.assertEqual([type(e) for e in endpoints], [_workers.ReusePortEndpoint] * 2)
        self.assertEqual(
            [e.address for e in endpoints],
            [_workers.ListenAddress(socket.AF_INET, "127.0.0.1", 9001, 50),
             _workers.ListenAddress(socket.AF_INET, "127.0.0.1", 9443, 50)],
        )
        self.assertEqual(
            len([s for s in service if isinstance(s, _workers.ParentWatcher)]), 1
        )
        self.assertFalse(
            [m for m in self.messages(events) if m.startswith(("hub broker:", "no --hmac-keys"))]
        )
