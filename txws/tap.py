"""
C{twistd txws}: the command-line options and the service of the txws server::

    twistd -n txws [--listen ENDPOINT ...] [--app hub|echo|module:callable] ...

Design: L{Options.postOptions} does everything that can fail (endpoint
strings, TLS files, key files, the application) so that a mistake is a
usage error before anything listens; L{makeService} only wires the result
together.  The root service holds the application's own service first and
the listeners after it: a L{MultiService} stops its children in reverse
order, so on SIGTERM or SIGINT the listeners stop accepting first, then
every WebSocket is closed with 1001 (going away), closing handshakes get
the close timeout, what is left is aborted, and the process exits 0.  TLS
listeners are built by L{txws._tls}, which refuses TLS below 1.2.

C{--broker redis://...} gives the hub a L{RedisBroker} and a
L{txws.hub.redisreplay.RedisReplayStore} on the same server, so every node
shares numbering, history and replay tokens (the hub disconnects both when
it stops).  A Redis that cannot be reached at start does not stop the
server: it serves, publishes answer 503, and the broker reconnects by
itself.  C{--workers N}
makes the root service a L{txws._workers.WorkerSupervisor} instead, which
runs N copies of this server (C{--worker=I}) on the same ports; with
C{--metrics}, each worker serves its metrics on a private UNIX socket
(C{--worker-metrics}) and the parent's C{--metrics} listener serves them
merged (L{txws._metricsmerge}).
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, TypeVar

from twisted.application.service import IService, MultiService, Service
from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    serverFromString,
)
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorCore,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.ssl import CertificateOptions
from twisted.internet.testing import MemoryReactor
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site
from twisted.web.static import Data

from txws import _tls, _workers
from txws._version import __version__
from txws.hmacauth import HMACSite
from txws.hmacauth.keys import KeyFileError, KeyRing, loadKeyFile
from txws.hub.brokerurl import BrokerSettings, MemorySettings, RedisSettings, parseBrokerURL
from txws.hub.redisbroker import RedisBroker
from txws.options import WebSocketOptions
from txws.server import WebSocketResource, WebSocketServerFactory

if TYPE_CHECKING:
    from collections.abc import Iterable

    from prometheus_client import CollectorRegistry
    from prometheus_client.core import Metric

__all__ = [
    "DEFAULT_LISTEN",
    "Options",
    "makeService",
]

_log = Logger(namespace="txws.tap")

#: Where the server listens when no C{--listen} is given.
DEFAULT_LISTEN = "tcp:8080:interface=127.0.0.1"

#: Endpoint types C{--listen} accepts besides C{ssl:} (which txws builds).
PLAIN_ENDPOINT_TYPES = ("tcp", "tcp6", "unix", "systemd")

#: Endpoint types C{--metrics} accepts.
METRICS_ENDPOINT_TYPES = ("tcp", "tcp6", "unix")

#: Seconds given on shutdown beyond the close timeout before the rest of
#: the connections are aborted.
SHUTDOWN_MARGIN = 2.0

#: Seconds given on shutdown to closing handshakes when the close timeout
#: is 0 (none).
SHUTDOWN_WITHOUT_CLOSE_TIMEOUT = 10.0

_MiB = 1024 * 1024
_WS = WebSocketOptions()

#: Command-line option -> (WebSocketOptions field, type).
WEBSOCKET_OPTIONS: dict[str, tuple[str, type]] = {
    "max-message-size": ("maxMessagePayloadSize", int),
    "max-frame-size": ("maxFramePayloadSize", int),
    "max-handshake-size": ("maxHandshakeSize", int),
    "open-timeout": ("openHandshakeTimeout", float),
    "close-timeout": ("closeHandshakeTimeout", float),
    "ping-interval": ("autoPingInterval", float),
    "ping-timeout": ("autoPingTimeout", float),
    "max-connections": ("maxConnections", int),
    "write-buffer-size": ("writeBufferSize", int),
    "max-message-fragments": ("maxMessageFragments", int),
    "deflate-level": ("perMessageDeflateLevel", int),
    "max-pending-handshakes": ("maxPendingHandshakes", int),
    "max-pending-per-peer": ("maxPendingHandshakesPerPeer", int),
}

#: Hub option -> (Hub keyword argument, default, type, smallest value).
HUB_OPTIONS: dict[str, tuple[str, float, type, float]] = {
    "history-size": ("historySize", 100, int, 0),
    "history-age": ("historyAge", 300.0, float, 0),
    "max-subscriptions": ("maxSubscriptions", 100, int, 1),
    "max-subscriber-buffer": ("maxSubscriberBuffer", _MiB, int, 0),
    "max-body-size": ("maxBodySize", _MiB, int, 1),
}


def _coercer(option: str, kind: type) -> Callable[[str], float]:
    """
    @return: a converter of the option's text that names the option when it
        refuses a value.
    """
    what = "a whole number" if kind is int else "a number"

    def coerce(text: str) -> float:
        try:
            value: float = kind(text)
        except ValueError:
            raise ValueError(f"--{option} must be {what}, not {text!r}") from None
        if value < 0 or value != value or value == float("inf"):
            raise ValueError(f"--{option} must not be negative, not {text!r}")
        return value

    return coerce


def _text(text: str) -> str:
    return text


_Method = TypeVar("_Method", bound=Callable[..., None])


def _helpText(text: str) -> Callable[[_Method], _Method]:
    """
    Set an C{opt_} method's help: usage.Options shows its docstring as is.
    """

    def decorate(method: _Method) -> _Method:
        method.__doc__ = text
        return method

    return decorate


@dataclass(frozen=True)
class Listener:
    """
    One C{--listen}, checked.

    @ivar description: the endpoint description as given.
    @ivar ssl: for an C{ssl:} listener, what its description says.
    @ivar tlsOptions: for an C{ssl:} listener, its TLS options (TLS 1.2+).
    """

    description: str
    ssl: Optional[_tls.SSLDescription] = None
    tlsOptions: Optional[CertificateOptions] = None

    def endpoint(self, reactor: Any) -> IStreamServerEndpoint:
        """
        @param reactor: the reactor to listen with.
        @return: the endpoint.
        """
        if self.ssl is not None and self.tlsOptions is not None:
            return _tls.serverEndpoint(reactor, self.ssl, self.tlsOptions)
        endpoint: IStreamServerEndpoint = serverFromString(reactor, self.description)
        return endpoint


@dataclass(frozen=True)
class DevKey:
    """
    The development key file the hub uses when no C{--hmac-keys} is given.

    @ivar path: its absolute path.
    @ivar keyId: the id of its key.
    @ivar created: whether this run created it.
    """

    path: str
    keyId: str
    created: bool


class Options(usage.Options):
    """
    The options of C{twistd txws}; after C{parseOptions}, the checked
    results are in attributes.

    @ivar listeners: the checked C{--listen} endpoints, in order.
    @ivar metricsListener: the checked C{--metrics} endpoint, or C{None}.
    @ivar webSocketOptions: the L{WebSocketOptions} built from the
        command line (defaults for what it does not give).
    @ivar givenWebSocketOptions: the L{WebSocketOptions} fields the command
        line gave explicitly, with their values.
    @ivar appName: C{"hub"}, C{"echo"}, or the C{module:callable} given.
    @ivar appObject: for a C{module:callable}, what it returned (an
        L{IResource} or a L{WebSocketServerFactory}).
    @ivar keyRing: the hub's keys (C{None} for other applications).
    @ivar devKey: the development key file used, or C{None}.
    @ivar hubArguments: keyword arguments for L{txws.hub.Hub} beyond the
        key ring and options.
    @ivar devKeyFile: where the development key file is (tests move it).
    """

    synopsis = "[options]"
    longdesc = (
        "Serve txws: by default the push hub (WebSocket subscribers at /ws, "
        "HMAC-signed POST /publish, /healthz, and a browser page at /). "
        "Stops gracefully on SIGTERM or SIGINT: listeners stop accepting, "
        "WebSockets are closed with 1001, and the process exits 0. "
        "Every TLS listener refuses TLS below 1.2."
    )

    optFlags = [
        [
            "allow-null-origin",
            None,
            "Accept WebSocket handshakes with 'Origin: null' (sandboxed pages, "
            "file: URLs). Refused by default.",
        ],
        [
            "deflate",
            None,
            "Accept permessage-deflate compression when a client offers it (the "
            "default; every browser offers it). The hub compresses each published "
            "message once for all its subscribers and keeps no compression state "
            "between messages; other apps keep 12-bit windows (about 50 KiB per "
            "connection that has used compression both ways).",
        ],
        [
            "no-deflate",
            None,
            "Never compress: decline every permessage-deflate offer.",
        ],
    ]

    optParameters: list[list[Any]] = [
        [
            "app",
            None,
            "hub",
            "What to serve: 'hub' (the push hub), 'echo' (an echo WebSocket at /ws), "
            "or package.module:callable, called with no arguments, returning a "
            "twisted.web resource (served in a Site) or a txws WebSocketServerFactory "
            "(served as a plain WebSocket listener).",
            _text,
        ],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics at /metrics on this endpoint of its own (tcp:, "
            "tcp6: or unix:), e.g. tcp:9100:interface=127.0.0.1; never on the public "
            "listeners. With --workers, the parent serves it: every worker's metrics, "
            "each sample labelled worker=\"I\", and txws_worker_up. Needs "
            "prometheus-client (pip install 'txws[metrics]'). Default: no metrics.",
            _text,
        ],
        [
            "tls-cert",
            None,
            None,
            "Certificate file (PEM) for every ssl: listener that names no privateKey of "
            "its own. Certificates after the first are sent as the chain, so a "
            "fullchain.pem works.",
            _text,
        ],
        ["tls-key", None, None, "Private key file (PEM, unencrypted) for --tls-cert.", _text],
        [
            "tls-chain",
            None,
            None,
            "Optional file of intermediate certificates (PEM) sent after --tls-cert.",
            _text,
        ],
        [
            "hmac-keys",
            None,
            None,
            "Key file of the hub (JSON object of key id to secret, mode 600): it checks "
            "publish signatures and private-channel tokens. Without it the hub creates "
            "or reuses txws-dev-keys.json in the working directory (for development).",
            _text,
        ],
        [
            "broker",
            None,
            None,
            "Where the hub keeps channel state: 'memory' (in this process; the default), "
            "or a Redis URL shared by every node and worker: "
            "redis://[[user]:password@]host[:port][/db], or rediss://... for TLS (the "
            "server's certificate is verified; ?ca=FILE names a private CA). With Redis, "
            "channel numbering, history and the HMAC replay store are shared.",
            _text,
        ],
        [
            "workers",
            None,
            None,
            "Hub: processes serving the same ports (default 1). More than 1 needs a "
            "Redis --broker, through which the workers deliver each other's publishes, "
            "and tcp:, tcp6: or ssl: listeners with fixed ports (Linux: SO_REUSEPORT).",
            _coercer("workers", int),
        ],
        [
            "worker",
            None,
            None,
            "Internal: set by --workers on the processes it starts (this process is "
            "that worker: it binds its ports with SO_REUSEPORT, logs JSON lines for "
            "its parent and stops when the parent is gone).",
            _coercer("worker", int),
        ],
        [
            "worker-metrics",
            None,
            None,
            "Internal: set by --workers with --metrics on the processes it starts (this "
            "worker serves its /metrics on this UNIX socket, in a private directory of "
            "its parent, which merges every worker's).",
            _text,
        ],
        [
            "history-size",
            None,
            None,
            "Hub: messages kept per channel for resuming subscribers (default 100; "
            "0 keeps none).",
            _coercer("history-size", int),
        ],
        [
            "history-age",
            None,
            None,
            "Hub: seconds a message is kept for resuming subscribers (default 300).",
            _coercer("history-age", float),
        ],
        [
            "max-subscriptions",
            None,
            None,
            "Hub: channels one connection may subscribe to (default 100).",
            _coercer("max-subscriptions", int),
        ],
        [
            "max-subscriber-buffer",
            None,
            None,
            "Hub: bytes queued for a slow subscriber before it is closed with 4008 "
            "(default 1048576).",
            _coercer("max-subscriber-buffer", int),
        ],
        [
            "max-body-size",
            None,
            None,
            "Hub: largest publish request body in bytes (default 1048576).",
            _coercer("max-body-size", int),
        ],
        [
            "max-message-size",
            None,
            None,
            "Largest WebSocket message accepted, in bytes; larger closes with 1009 "
            f"(default {_WS.maxMessagePayloadSize}; 0 for no limit).",
            _coercer("max-message-size", int),
        ],
        [
            "max-frame-size",
            None,
            None,
            "Largest WebSocket frame payload accepted, in bytes; larger closes with 1009 "
            f"(default {_WS.maxFramePayloadSize}; 0 for no limit).",
            _coercer("max-frame-size", int),
        ],
        [
            "max-handshake-size",
            None,
            None,
            "Largest opening handshake request (request line and headers), in bytes; "
            f"larger gets 431 (default {_WS.maxHandshakeSize}; at least 256).",
            _coercer("max-handshake-size", int),
        ],
        [
            "open-timeout",
            None,
            None,
            "Seconds allowed for the opening handshake "
            f"(default {_WS.openHandshakeTimeout:g}; 0 for none).",
            _coercer("open-timeout", float),
        ],
        [
            "close-timeout",
            None,
            None,
            "Seconds to wait for the peer's Close before aborting, also on shutdown "
            f"(default {_WS.closeHandshakeTimeout:g}; 0 for none, then shutdown waits "
            f"{SHUTDOWN_WITHOUT_CLOSE_TIMEOUT:g}).",
            _coercer("close-timeout", float),
        ],
        [
            "ping-interval",
            None,
            None,
            f"Seconds between keepalive pings (default {_WS.autoPingInterval:g}; 0 for none).",
            _coercer("ping-interval", float),
        ],
        [
            "ping-timeout",
            None,
            None,
            "Seconds within which a pong must answer a keepalive ping, else the "
            f"connection closes with 1011 (default {_WS.autoPingTimeout:g}).",
            _coercer("ping-timeout", float),
        ],
        [
            "max-connections",
            None,
            None,
            "Most WebSocket connections open at once; more get 503 "
            f"(default {_WS.maxConnections}: no limit).",
            _coercer("max-connections", int),
        ],
        [
            "write-buffer-size",
            None,
            None,
            "Bytes waiting to be sent to a peer beyond which its connection stops "
            f"reading from it (default {_WS.writeBufferSize}; at least 1024).",
            _coercer("write-buffer-size", int),
        ],
        [
            "max-message-fragments",
            None,
            None,
            "Most frames one received message may have; more close the connection "
            f"with 1009 (default {_WS.maxMessageFragments}; 0: no limit).",
            _coercer("max-message-fragments", int),
        ],
        [
            "deflate-level",
            None,
            None,
            "zlib compression level of the messages sent compressed: 1 (fastest) to 9 "
            "(smallest) (default: zlib's, 6).",
            _coercer("deflate-level", int),
        ],
        [
            "max-pending-handshakes",
            None,
            None,
            "Most connections accepted whose request has not arrived yet (they do not "
            "count against --max-connections); when full, the oldest is dropped to admit "
            f"a new one (default {_WS.maxPendingHandshakes}; 0 for no bound).",
            _coercer("max-pending-handshakes", int),
        ],
        [
            "max-pending-per-peer",
            None,
            None,
            "Most such pending connections from one address (IPv4, or IPv6 /64); more "
            f"get 503 at once (default {_WS.maxPendingHandshakesPerPeer}: no bound, "
            "as behind a proxy every client has its address).",
            _coercer("max-pending-per-peer", int),
        ],
    ]

    compData = usage.Completions(
        optActions={
            "tls-cert": usage.CompleteFiles("*.pem"),
            "tls-key": usage.CompleteFiles("*.pem"),
            "tls-chain": usage.CompleteFiles("*.pem"),
            "hmac-keys": usage.CompleteFiles("*.json"),
        }
    )

    devKeyFile: str = "txws-dev-keys.json"

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []
        self["allowed-origin"] = []
        self.listeners: list[Listener] = []
        self.metricsListener: Optional[Listener] = None
        self.webSocketOptions = WebSocketOptions()
        self.givenWebSocketOptions: dict[str, Any] = {}
        self.appName = "hub"
        self.appObject: Optional[object] = None
        self.keyRing: Optional[KeyRing] = None
        self.devKey: Optional[DevKey] = None
        self.hubArguments: dict[str, Any] = {}
        self.brokerSettings: BrokerSettings = MemorySettings()
        self.workers = 1
        self.workerIndex: Optional[int] = None

    @_helpText(
        "Where to listen, as a Twisted server endpoint string; repeat for several: "
        "tcp:8080:interface=127.0.0.1, tcp6:8080:interface=\\:\\:1, "
        "ssl:8443:interface=0.0.0.0:privateKey=key.pem:certKey=cert.pem "
        "(or ssl:8443 with --tls-cert and --tls-key), unix:/run/txws.sock, "
        "systemd:domain=INET:index=0. Default: " + DEFAULT_LISTEN + "."
    )
    def opt_listen(self, description: str) -> None:
        self["listen"].append(description)

    @_helpText(
        "An Origin WebSocket handshakes may come from, e.g. https://example.com or "
        "https://*.example.com; repeat for several. Default: any Origin. Requests "
        "without an Origin (non-browser clients) are not affected."
    )
    def opt_allowed_origin(self, origin: str) -> None:
        self["allowed-origin"].append(origin)

    @_helpText("Print the txws version and exit.")
    def opt_version(self) -> None:
        print(f"txws {__version__}")
        raise SystemExit(0)

    def postOptions(self) -> None:
        """
        Check everything: endpoints, TLS files, WebSocket options, the
        application and its keys.

        @raise usage.UsageError: naming what is wrong.
        """
        self._checkWebSocketOptions()
        self._checkApp()
        self._checkListeners()
        self._checkWorkers()
        self._checkMetrics()

    def _checkWebSocketOptions(self) -> None:
        given: dict[str, Any] = {}
        for option, (field, _kind) in WEBSOCKET_OPTIONS.items():
            if self[option] is not None:
                given[field] = self[option]
        if self["allowed-origin"]:
            given["allowedOrigins"] = tuple(self["allowed-origin"])
        if self["allow-null-origin"]:
            given["allowNullOrigin"] = True
        if self["deflate"] and self["no-deflate"]:
            raise usage.UsageError("--deflate and --no-deflate contradict each other")
        if self["deflate"] or self["no-deflate"]:
            given["perMessageDeflate"] = bool(self["deflate"])
        try:
            self.webSocketOptions = WebSocketOptions(**given)
        except (TypeError, ValueError) as e:
            message = str(e)
            for option, (field, _kind) in WEBSOCKET_OPTIONS.items():
                message = message.replace(field, "--" + option)
            raise usage.UsageError(message) from None
        self.givenWebSocketOptions = given

    def _checkApp(self) -> None:
        app = self["app"]
        self.appName = app
        hubOnly = [
            o
            for o in (*HUB_OPTIONS, "hmac-keys", "broker", "workers", "worker", "worker-metrics")
            if self[o] is not None
        ]
        if app != "hub" and hubOnly:
            raise usage.UsageError(
                ", ".join("--" + o for o in hubOnly) + " only apply to --app hub"
            )
        if app == "hub":
            self._checkHub()
        elif app == "echo":
            pass
        elif ":" in app:
            self.appObject = _loadCallable(app)
        else:
            raise usage.UsageError(
                f"--app must be hub, echo or package.module:callable, not {app!r}"
            )

    def _checkHub(self) -> None:
        broker = self["broker"]
        if broker is not None:
            try:
                self.brokerSettings = parseBrokerURL(broker)
            except ValueError as e:
                # The message names the wrong part, never the URL (a password).
                raise usage.UsageError(f"--broker: {e}") from None
        arguments: dict[str, Any] = {}
        for option, (name, default, _kind, smallest) in HUB_OPTIONS.items():
            value = self[option]
            if value is None:
                value = default
            elif value < smallest:
                raise usage.UsageError(f"--{option} must be at least {smallest:g}")
            arguments[name] = value
        self.hubArguments = arguments
        if self["hmac-keys"] is not None:
            try:
                self.keyRing = loadKeyFile(self["hmac-keys"])
            except KeyFileError as e:
                raise usage.UsageError(f"--hmac-keys: {e}") from None
            return
        from txws.hub.devkeys import DEV_KEY_ID, ensureDevKeyFile

        try:
            self.keyRing, created = ensureDevKeyFile(self.devKeyFile)
        except KeyFileError as e:
            raise usage.UsageError(
                f"no --hmac-keys given, and the development key file cannot be used: {e}"
            ) from None
        keyId = DEV_KEY_ID if DEV_KEY_ID in self.keyRing else next(iter(self.keyRing))
        self.devKey = DevKey(os.path.abspath(self.devKeyFile), keyId, created)

    def _checkListeners(self) -> None:
        cert, key, chain = self["tls-cert"], self["tls-key"], self["tls-chain"]
        if (cert is None) != (key is None):
            raise usage.UsageError("--tls-cert and --tls-key must be given together")
        if chain is not None and cert is None:
            raise usage.UsageError("--tls-chain needs --tls-cert and --tls-key")
        shared: Optional[CertificateOptions] = None
        if cert is not None:
            try:
                shared = _tls.serverContext(cert, key, chain)
            except _tls.TLSConfigurationError as e:
                raise usage.UsageError(str(e)) from None
        sharedUsed = False
        listeners = []
        for description in self["listen"] or [DEFAULT_LISTEN]:
            try:
                positional, _keywords = _tls.splitDescription(description)
                kind = positional[0].lower() if positional else ""
                if kind == "ssl":
                    ssl = _tls.parseSSLDescription(description)
                    if ssl.privateKey is not None and ssl.certKey is not None:
                        tls = _tls.serverContext(
                            ssl.certKey, ssl.privateKey, ssl.extraCertChain, ssl.dhParameters
                        )
                    elif shared is not None:
                        if ssl.dhParameters is not None:
                            tls = _tls.serverContext(cert, key, chain, ssl.dhParameters)
                        else:
                            tls = shared
                        sharedUsed = True
                    else:
                        raise usage.UsageError(
                            f"--listen {description}: no TLS key; name privateKey= and "
                            "certKey= in it, or give --tls-cert and --tls-key"
                        )
                    listeners.append(Listener(description, ssl, tls))
                    continue
            except _tls.TLSConfigurationError as e:
                raise usage.UsageError(f"--listen {description}: {e}") from None
            if kind not in PLAIN_ENDPOINT_TYPES:
                raise usage.UsageError(
                    f"--listen {description}: unsupported endpoint type {kind!r}; use "
                    + ", ".join(t + ":" for t in (*PLAIN_ENDPOINT_TYPES, "ssl"))
                )
            try:
                serverFromString(MemoryReactor(), description)
            except Exception as e:
                raise usage.UsageError(f"--listen {description}: {e}") from None
            listeners.append(Listener(description))
        if shared is not None and not sharedUsed:
            raise usage.UsageError(
                "--tls-cert and --tls-key are given but no listener uses them: add "
                "--listen ssl:PORT (an ssl: listener without privateKey=)"
            )
        self.listeners = listeners

    def _checkWorkers(self) -> None:
        workers, index = self["workers"], self["worker"]
        if index is not None:
            if workers is not None:
                raise usage.UsageError("--worker is set by --workers; give only --workers")
            if index < 1:
                raise usage.UsageError("--worker must be at least 1")
            self.workerIndex = int(index)
        elif self["worker-metrics"] is not None:
            raise usage.UsageError(
                "--worker-metrics is set by --workers on its workers; give --metrics"
            )
        if workers is None:
            workers = 1
        if workers < 1:
            raise usage.UsageError("--workers must be at least 1")
        self.workers = int(workers)
        if self.workers == 1 and self.workerIndex is None:
            return
        what = f"--workers {self.workers}" if self.workerIndex is None else "--worker"
        if self.workerIndex is None and not isinstance(self.brokerSettings, RedisSettings):
            raise usage.UsageError(
                f"{what} needs a Redis broker (--broker redis://HOST:PORT/DB): each worker "
                "is a separate process with its own subscribers, and only a broker shared "
                "through Redis delivers a publish received by one worker to the "
                "subscribers of the others (and shares history and the HMAC replay store)"
            )
        if not _workers.reusePortSupported():
            raise usage.UsageError(
                f"{what} needs SO_REUSEPORT as Linux implements it (every worker binds "
                "the same port); run one process per port instead"
            )
        for listener in self.listeners:
            address = _listenAddress(listener)
            if address is None:
                raise usage.UsageError(
                    f"--listen {listener.description}: {what} shares tcp:, tcp6: and ssl: "
                    "listeners only (each worker binds the same port with SO_REUSEPORT); "
                    "unix: and systemd: listeners cannot be shared this way"
                )
            if address.port == 0:
                raise usage.UsageError(
                    f"--listen {listener.description}: {what} needs a fixed port (each "
                    "worker binds the same one), not 0"
                )

    def _checkMetrics(self) -> None:
        description = self["metrics"]
        socketPath = self["worker-metrics"]
        if socketPath is not None:
            if description is not None:
                raise usage.UsageError(
                    "--worker-metrics and --metrics: a worker serves its metrics on the "
                    "socket its parent gives it only"
                )
            description = "unix:address=" + _escapeEndpoint(socketPath) + ":mode=600:lockfile=0"
        if description is None:
            return
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise usage.UsageError(
                "--metrics needs prometheus-client, which is not installed: "
                "pip install 'txws[metrics]'"
            ) from None
        positional, _keywords = _tls.splitDescription(description)
        kind = positional[0].lower() if positional else ""
        if kind not in METRICS_ENDPOINT_TYPES:
            raise usage.UsageError(
                f"--metrics {description}: unsupported endpoint type {kind!r}; use "
                + ", ".join(t + ":" for t in METRICS_ENDPOINT_TYPES)
            )
        try:
            serverFromString(MemoryReactor(), description)
        except Exception as e:
            raise usage.UsageError(f"--metrics {description}: {e}") from None
        if description in {listener.description for listener in self.listeners}:
            raise usage.UsageError(
                f"--metrics {description}: also a --listen endpoint; metrics get a "
                "listener of their own"
            )
        if self.workers > 1:
            self._checkMetricsPort(description)
        self.metricsListener = Listener(description)

    def _checkMetricsPort(self, description: str) -> None:
        """
        With C{--workers}, the parent binds the C{--metrics} port and every
        worker the C{--listen} ports: one port cannot be both (the workers
        could not bind it, and would be restarted forever).
        """
        endpoint = serverFromString(MemoryReactor(), description)
        if not isinstance(endpoint, (TCP4ServerEndpoint, TCP6ServerEndpoint)):
            return
        port = int(getattr(endpoint, "_port", 0))
        for listener in self.listeners:
            address = _listenAddress(listener)
            if address is not None and address.port == port:
                raise usage.UsageError(
                    f"--metrics {description}: port {port} is also the port of --listen "
                    f"{listener.description}, which every worker binds; the parent's "
                    "metrics need a port of their own"
                )

    def workerArguments(self) -> list[str]:
        """
        @return: the plugin options for a worker of C{--workers}: this
            command line's, checked and written out in full, without
            C{--workers} and C{--metrics} (the parent serves that; its
            supervisor gives each worker C{--worker-metrics}).
        """
        arguments: list[str] = []
        for flag in self.optFlags:
            flagName = str(flag[0])
            if self[flagName]:
                arguments.append(f"--{flagName}")
        for parameter in self.optParameters:
            name: str = parameter[0]
            if name in ("workers", "worker", "metrics", "worker-metrics") or self[name] is None:
                continue
            arguments.append(f"--{name}={self[name]}")
        for listener in self.listeners:
            arguments.append(f"--listen={listener.description}")
        for origin in self["allowed-origin"]:
            arguments.append(f"--allowed-origin={origin}")
        return arguments


def _escapeEndpoint(text: str) -> str:
    """
    @return: C{text} as one value of an endpoint description (its
        backslashes, colons and equals signs escaped).
    """
    return text.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=")


def _listenAddress(listener: Listener) -> Optional[_workers.ListenAddress]:
    """
    @return: where a C{tcp:}, C{tcp6:} or C{ssl:} listener binds, or
        C{None} for another kind.
    """
    if listener.ssl is not None:
        interface = listener.ssl.interface
        family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        return _workers.ListenAddress(
            family, interface, listener.ssl.port, listener.ssl.backlog
        )
    endpoint = serverFromString(MemoryReactor(), listener.description)
    if isinstance(endpoint, TCP6ServerEndpoint):
        family = socket.AF_INET6
    elif isinstance(endpoint, TCP4ServerEndpoint):
        family = socket.AF_INET
    else:
        return None
    interface = getattr(endpoint, "_interface", "")
    if ":" in interface:
        family = socket.AF_INET6
    return _workers.ListenAddress(
        family, interface, int(getattr(endpoint, "_port", 0)),
        int(getattr(endpoint, "_backlog", 50)),
    )


def _loadCallable(spec: str) -> object:
    """
    Import C{package.module:callable}, call it with no arguments and check
    what it returns.

    @raise usage.UsageError: if it cannot be imported or called, or returns
        something that cannot be served.
    """
    moduleName, _, name = spec.partition(":")
    try:
        target: Any = importlib.import_module(moduleName)
        for part in name.split("."):
            target = getattr(target, part)
    except Exception as e:
        raise usage.UsageError(
            f"--app {spec}: cannot import it: {type(e).__name__}: {e}"
        ) from None
    if not callable(target):
        raise usage.UsageError(f"--app {spec}: not callable")
    try:
        result = target()
    except Exception as e:
        raise usage.UsageError(
            f"--app {spec}: calling it failed: {type(e).__name__}: {e}"
        ) from None
    if isinstance(result, WebSocketServerFactory) or IResource.providedBy(result):
        return result
    raise usage.UsageError(
        f"--app {spec} returned {type(result).__name__}; expected a twisted.web "
        "resource or a txws WebSocketServerFactory"
    )


class WebSocketClosingService(Service):
    """
    Closes every connection of a WebSocket factory with 1001 (going away)
    when stopped, and aborts those still open after the close timeout and a
    margin.

    @ivar factory: the factory.
    """

    def __init__(self, factory: WebSocketServerFactory, clock: IReactorTime) -> None:
        """
        @param factory: the factory whose connections to close.
        @param clock: the clock of the deadline.
        """
        self.factory = factory
        self._clock = clock

    def stopService(self) -> Deferred[None]:
        """
        Close the connections.

        @return: a Deferred that fires once they are all gone, or when the
            rest were aborted at the deadline, whichever is first.
        """
        super().stopService()  # type: ignore[no-untyped-call]
        closing = self.factory.closeAll(1001)
        if closing.called:
            return closing
        timeout = self.factory.options.closeHandshakeTimeout or SHUTDOWN_WITHOUT_CLOSE_TIMEOUT
        done: Deferred[None] = Deferred()

        def abortTheRest() -> None:
            left = self.factory.connections()
            _log.warn(
                "{count} WebSocket connection(s) did not close in time; aborting them",
                count=len(left),
            )
            for connection in left:
                transport: Any = connection.transport
                if transport is not None:
                    transport.abortConnection()
            if not done.called:
                done.callback(None)

        deadline = self._clock.callLater(timeout + SHUTDOWN_MARGIN, abortTheRest)

        def closed(result: object) -> None:
            if deadline.active():
                deadline.cancel()
            if not done.called:
                done.callback(None)

        closing.addBoth(closed)
        return done


class ListeningService(Service):
    """
    Listens on one endpoint, logs where, and stops listening when stopped.

    Listening happens in C{privilegedStartService}, so C{twistd --uid} can
    bind ports below 1024 before it drops privileges.

    @ivar listener: the checked C{--listen}.
    @ivar endpoint: the endpoint.
    @ivar factory: the factory served.
    @ivar port: the listening port once listening, else C{None}.
    """

    def __init__(
        self, listener: Listener, endpoint: IStreamServerEndpoint, factory: IProtocolFactory,
        appName: str, webSocketPath: Optional[str], reactor: Any = None,
    ) -> None:
        """
        @param listener: the checked C{--listen}.
        @param endpoint: where to listen.
        @param factory: what to serve there.
        @param appName: the application's name, for the log.
        @param webSocketPath: the path WebSocket clients connect to, for the
            log (C{None} for an application whose paths are its own).
        @param reactor: the reactor; the address is logged once it runs
            (then SIGTERM already stops the server gracefully), or at once
            if C{None}.
        """
        self._reactor = reactor
        self.listener = listener
        self.endpoint = endpoint
        self.factory = factory
        self.port: Optional[IListeningPort] = None
        self._appName = appName
        self._webSocketPath = webSocketPath
        self._listening: Optional[Deferred[IListeningPort]] = None

    def privilegedStartService(self) -> None:
        """
        Start listening.

        @raise SystemExit: if the endpoint refuses at once (e.g. the
            address is in use), with the reason.
        """
        super().privilegedStartService()  # type: ignore[no-untyped-call]
        self._listen()

    def startService(self) -> None:
        """
        Start listening, unless already listening.
        """
        super().startService()  # type: ignore[no-untyped-call]
        self._listen()

    def _listen(self) -> None:
        if self._listening is not None:
            return
        failures: list[Failure] = []
        self._listening = self.endpoint.listen(self.factory)
        self._listening.addCallbacks(self._listened, failures.append)
        if failures:
            reason = failures[0].getErrorMessage()
            _log.error(
                "cannot listen on {description}: {reason}",
                description=self.listener.description,
                reason=reason,
            )
            raise SystemExit(f"txws: cannot listen on {self.listener.description}: {reason}")

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        if self._reactor is not None and not getattr(self._reactor, "running", True):
            self._reactor.callWhenRunning(self._announce)
        else:
            self._announce()
        return port

    def _announce(self) -> None:
        if self.port is None:
            return
        _log.info(
            "txws {app} listening on {where}",
            app=self._appName,
            where=self.describe(),
        )

    def describe(self) -> str:
        """
        @return: where the service listens, as URLs where they apply.
        """
        if self.port is None:
            return self.listener.description
        address: Any = self.port.getHost()
        if isinstance(address, UNIXAddress) and address.name:
            name = address.name
            where = "unix:" + (name.decode("utf-8", "replace") if isinstance(name, bytes) else name)
            if self._webSocketPath is None:
                return where
            return f"{where} (WebSocket path {self._webSocketPath})"
        host = getattr(address, "host", None)
        portNumber = getattr(address, "port", None)
        if host is None or portNumber is None:
            return f"{self.listener.description} ({address})"
        if ":" in host:
            host = f"[{host}]"
        secure = self.listener.ssl is not None
        web = f"{'https' if secure else 'http'}://{host}:{portNumber}/"
        ws = f"{'wss' if secure else 'ws'}://{host}:{portNumber}"
        if self._webSocketPath is None:
            return web
        if self._webSocketPath == "/":
            return ws + "/"
        return f"{web} (WebSocket: {ws}{self._webSocketPath})"

    def stopService(self) -> Deferred[None]:
        """
        Stop listening.

        @return: a Deferred that fires once the port is closed.
        """
        super().stopService()  # type: ignore[no-untyped-call]
        listening, self._listening = self._listening, None
        if listening is None:
            return succeed(None)
        listening.addErrback(lambda failure: None)

        def stop(port: Optional[IListeningPort]) -> Any:
            self.port = None
            return None if port is None else port.stopListening()

        listening.addCallback(stop)
        result: Deferred[None] = listening  # type: ignore[assignment]
        return result


class TxwsService(MultiService):
    """
    The root service of C{twistd txws}: the application's service first,
    then one L{ListeningService} per C{--listen}.

    A stop that began with SIGTERM or SIGINT ends with exit status 0 once
    the graceful shutdown is done: the process was asked to stop and did.
    (C{twistd} would otherwise kill itself with the same signal.)

    @ivar site: the factory every listener serves.
    @ivar app: the application's own service (L{txws.hub.Hub} or a
        L{WebSocketClosingService}), or C{None}.
    """

    def __init__(self, reactor: Any) -> None:
        """
        @param reactor: the reactor that runs the server.
        """
        super().__init__()  # type: ignore[no-untyped-call]
        self._reactor = reactor
        self.site: Optional[IProtocolFactory] = None
        self.app: Optional[IService] = None
        self._stopping = False
        self._arranged = False

    def privilegedStartService(self) -> None:
        """
        Arrange for the signal guard before the children, so that it is in
        place before the listeners announce themselves.
        """
        self._arrangeShutdown()
        super().privilegedStartService()  # type: ignore[no-untyped-call]

    def startService(self) -> None:
        """
        Start the children and arrange for a clean exit status.
        """
        super().startService()  # type: ignore[no-untyped-call]
        self._arrangeShutdown()

    def _arrangeShutdown(self) -> None:
        if self._arranged or not IReactorCore.providedBy(self._reactor):
            return
        self._arranged = True
        # During startup, right after the reactor installed its own signal
        # handlers, and before the listeners announce themselves (after
        # startup): once "listening" is logged, a signal is guarded.
        if getattr(self._reactor, "running", False):
            self._guardSignals()
        else:
            self._reactor.addSystemEventTrigger("during", "startup", self._guardSignals)
        self._reactor.addSystemEventTrigger("before", "shutdown", self._markStopping)
        self._reactor.addSystemEventTrigger("after", "shutdown", self._cleanExit)

    def _markStopping(self) -> None:
        self._stopping = True

    def _guardSignals(self) -> None:
        """
        Wrap the reactor's SIGINT and SIGTERM handlers so that only the
        first signal stops it: a second one (Ctrl-C pressed twice, or sent
        to a whole process group whose parent passes it on as well, as
        C{dev.py serve} does) arriving before the reactor has even begun to
        stop would otherwise ask it to stop twice, and Twisted logs a
        traceback for that.  The shutdown already in progress ends within
        the close timeout.
        """
        for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
            number = getattr(signal, name, None)
            if number is None:
                continue
            try:
                previous = signal.getsignal(number)
            except (ValueError, OSError):  # pragma: no cover (not the main thread)
                return
            if not callable(previous):
                continue
            signal.signal(number, self._onlyOnce(previous))

    def _onlyOnce(self, previous: Callable[[int, Any], Any]) -> Callable[[int, Any], None]:
        def handler(number: int, frame: Any) -> None:
            if self._stopping:
                self._reactor.callFromThread(
                    _log.info, "already shutting down (signal {number})", number=number
                )
                return
            # (Set at once, in the handler: the reactor marks itself
            # stopping only when it gets round to the stop.)
            self._stopping = True
            previous(number, frame)

        return handler

    def _cleanExit(self) -> None:
        """
        After the shutdown: tell twistd no signal was received, so it exits
        0, and ignore SIGINT and SIGTERM from now on, so that one arriving
        while the interpreter exits (when Python has put back the default
        handlers) cannot turn a finished graceful stop into a death by
        signal.
        """
        if getattr(self._reactor, "_exitSignal", None) is not None:
            self._reactor._exitSignal = None
        for name in ("SIGINT", "SIGTERM"):
            try:
                signal.signal(getattr(signal, name), signal.SIG_IGN)
            except (ValueError, OSError):
                return  # not the main thread

    def listeners(self) -> list[ListeningService]:
        """
        @return: the listening services, in C{--listen} order.
        """
        return [s for s in self if isinstance(s, ListeningService)]


def _boundedSite(
    resource: object, options: WebSocketOptions, factory: Optional[WebSocketServerFactory] = None
) -> HMACSite:
    """
    A site for a WebSocket application: its requests' heads are bounded as
    the opening handshake's (C{maxHandshakeSize}: 414 or 431 beyond, and
    408 if the request takes longer than C{openHandshakeTimeout} to
    arrive); bodies are not capped.  Given the factory it serves, its
    connections count as that factory's pending handshakes until their
    first request has arrived.
    """
    site = HMACSite(
        resource,
        maxBodySize=sys.maxsize,
        maxHeadSize=options.maxHandshakeSize,
        requestTimeout=options.openHandshakeTimeout or None,
    )
    if factory is not None:
        site.admission = factory.admission
        site.maxPendingHandshakes = options.maxPendingHandshakes
        site.maxPendingHandshakesPerPeer = options.maxPendingHandshakesPerPeer
    return site


def _echoSite(options: WebSocketOptions, reactor: Any) -> tuple[Site, WebSocketServerFactory]:
    from txws.apps.echo import echoFactory

    factory = echoFactory(options=options, reactor=reactor)
    root = Resource()
    root.putChild(
        b"",
        Data(
            b"txws echo server: connect a WebSocket to /ws and every message comes back.\n",
            "text/plain; charset=utf-8",
        ),
    )
    root.putChild(b"ws", WebSocketResource(factory))
    return _boundedSite(root, options, factory), factory


def makeService(options: Options, reactor: Any = None) -> IService:
    """
    Build the server from checked options.

    @param options: parsed L{Options}.
    @param reactor: the reactor to listen with and time out on (default:
        the global one).
    @return: the root service (a L{TxwsService}).
    """
    if reactor is None:
        from twisted.internet import reactor as globalReactor

        reactor = globalReactor
    root = TxwsService(reactor)
    if options.workers > 1:
        _warnDevKey(options)
        _log.info(
            "hub broker: {broker}, shared by {count} workers",
            broker=options.brokerSettings.describe(),
            count=options.workers,
        )
        return _supervise(options, reactor, root)
    webSocketPath: Optional[str] = None
    served: IProtocolFactory
    # What --metrics counts: the factories, and the hub.
    tracked: Optional[WebSocketServerFactory] = None
    hub: Any = None
    if options.appName == "hub":
        from txws.hub import Hub

        assert options.keyRing is not None
        if options.workerIndex is None:
            # Workers leave both lines to their parent, which logs them once.
            _warnDevKey(options)
            _log.info("hub broker: {broker}", broker=_describeBroker(options.brokerSettings))
        broker: Any = None
        replayStore: Any = None
        settings = options.brokerSettings
        if isinstance(settings, RedisSettings):
            from txws.hub.redisreplay import RedisReplayStore

            broker = RedisBroker(
                settings,
                reactor,
                historySize=options.hubArguments["historySize"],
                historyAge=options.hubArguments["historyAge"],
            )
            replayStore = RedisReplayStore(settings, reactor)
        hub = Hub(
            options.keyRing,
            reactor=reactor,
            options=options.webSocketOptions,
            broker=broker,
            replayStore=replayStore,
            **options.hubArguments,
        )
        root.app = hub
        served = hub.site()
        webSocketPath = "/ws"
    elif options.appName == "echo":
        served, factory = _echoSite(options.webSocketOptions, reactor)
        tracked = factory
        root.app = WebSocketClosingService(factory, reactor)
        webSocketPath = "/ws"
    elif isinstance(options.appObject, WebSocketServerFactory):
        factory = options.appObject
        if options.givenWebSocketOptions:
            factory.setProtocolOptions(**options.givenWebSocketOptions)
        root.app = WebSocketClosingService(factory, reactor)
        tracked = factory
        served = factory
        webSocketPath = "/"
    else:
        resource: Any = options.appObject
        if options.givenWebSocketOptions:
            _log.warn(
                "--app {app} returned a resource: the WebSocket options of the command "
                "line do not reach the factories inside it",
                app=options.appName,
            )
        served = _boundedSite(resource, options.webSocketOptions)
        if isinstance(resource, WebSocketResource):
            tracked = resource.factory
            root.app = WebSocketClosingService(resource.factory, reactor)
    if root.app is not None:
        root.app.setServiceParent(root)
    root.site = served
    for listener in options.listeners:
        endpoint: IStreamServerEndpoint
        if options.workerIndex is not None:
            address = _listenAddress(listener)
            assert address is not None  # Options refuses other listeners
            endpoint = _workers.ReusePortEndpoint(reactor, address, listener.tlsOptions)
        else:
            endpoint = listener.endpoint(reactor)
        ListeningService(  # type: ignore[no-untyped-call]
            listener, endpoint, served, options.appName, webSocketPath, reactor
        ).setServiceParent(root)
    if options.metricsListener is not None:
        _serveMetrics(options, reactor, root, tracked, hub)
    if options.workerIndex is not None:
        _workers.ParentWatcher(reactor).setServiceParent(root)  # type: ignore[no-untyped-call]
    return root


def _serveMetrics(
    options: Options,
    reactor: Any,
    root: TxwsService,
    factory: Optional[WebSocketServerFactory],
    hub: Any,
) -> None:
    """
    C{--metrics}: a site of its own serving C{/metrics} from a registry of
    this server's (so that building several servers in one process never
    registers a collector twice): the WebSocket factory's metrics, the
    hub's, and everything on C{prometheus_client.REGISTRY} (the process
    metrics, and what an application registered there).
    """
    from prometheus_client import REGISTRY, CollectorRegistry

    from txws._metricsmerge import RegistryPage
    from txws.metrics import WebSocketMetrics

    assert options.metricsListener is not None
    registry = CollectorRegistry()
    registry.register(_Forward(REGISTRY))
    if hub is not None:
        factory = hub.factory
    if factory is not None:
        if hub is not None:
            from txws.hub.metrics import HubMetrics
            from txws.hub.subscriber import EVICTED_CLOSE_CODE

            WebSocketMetrics(registry).track(factory, "hub", [EVICTED_CLOSE_CODE])
            HubMetrics(hub, registry)
        else:
            WebSocketMetrics(registry).track(factory, options.appName)
    else:
        _log.info(
            "--app {app} returned a resource: /metrics has the process metrics and what "
            "the application registers on prometheus_client.REGISTRY (e.g. its own "
            "txws.metrics.WebSocketMetrics)",
            app=options.appName,
        )
    _listenForMetrics(options, reactor, root, RegistryPage(registry, reactor))


def _listenForMetrics(
    options: Options, reactor: Any, root: TxwsService, metrics: IResource
) -> None:
    """
    The C{--metrics} listener: a quiet site serving C{metrics} at
    C{/metrics} (gzipped when the scrape accepts it, as Prometheus does),
    and nothing else.
    """
    from twisted.web.resource import EncodingResourceWrapper
    from twisted.web.server import GzipEncoderFactory

    assert options.metricsListener is not None
    metricsRoot = Resource()
    metricsRoot.putChild(
        b"metrics",
        EncodingResourceWrapper(metrics, [GzipEncoderFactory()]),
    )
    listener = options.metricsListener
    site = _QuietSite(metricsRoot)  # type: ignore[no-untyped-call]
    ListeningService(  # type: ignore[no-untyped-call]
        listener, listener.endpoint(reactor), site, "metrics", None, reactor
    ).setServiceParent(root)


class _QuietSite(Site):
    """
    The metrics site: no access log line per request (a scrape every 15
    seconds would be 5,760 lines a day).
    """

    def log(self, request: object) -> None:
        """
        Log nothing.
        """


class _Forward:
    """
    A collector that yields what another registry collects.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


#: Seconds a worker is given to stop beyond its own shutdown bound (the
#: close timeout and L{SHUTDOWN_MARGIN}) before its parent kills it.
WORKER_STOP_MARGIN = 5.0


def _supervise(options: Options, reactor: Any, root: TxwsService) -> TxwsService:
    """
    The root service of C{--workers N}: no hub here, a
    L{txws._workers.WorkerSupervisor} that runs N workers, and with
    C{--metrics} the listener that serves their metrics merged.
    """
    addresses = []
    for listener in options.listeners:
        address = _listenAddress(listener)
        assert address is not None  # Options refuses other listeners
        addresses.append(address)
    closing = options.webSocketOptions.closeHandshakeTimeout or SHUTDOWN_WITHOUT_CLOSE_TIMEOUT
    supervisor = _workers.WorkerSupervisor(
        reactor,
        options.workers,
        options.workerArguments(),
        addresses,
        stopTimeout=closing + SHUTDOWN_MARGIN + WORKER_STOP_MARGIN,
        workerMetrics=options.metricsListener is not None,
    )
    root.app = supervisor
    supervisor.setServiceParent(root)  # type: ignore[no-untyped-call]
    if options.metricsListener is not None:
        from txws._metricsmerge import WorkerMetricsResource

        _listenForMetrics(options, reactor, root, WorkerMetricsResource(supervisor, reactor))
    return root


def _warnDevKey(options: Options) -> None:
    if options.devKey is not None:
        _log.warn(
            "no --hmac-keys given: using the development key file {path} "
            "(key id {keyId}, {state}); give --hmac-keys FILE in production",
            path=options.devKey.path,
            keyId=options.devKey.keyId,
            state="created now" if options.devKey.created else "already there",
        )


def _describeBroker(settings: BrokerSettings) -> str:
    if isinstance(settings, RedisSettings):
        return (
            f"{settings.describe()} (channel numbering, history and the HMAC replay "
            "store are shared through Redis)"
        )
    return "memory (in this process)"


