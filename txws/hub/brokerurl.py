"""
The hub's C{--broker} option: C{memory}, or a Redis URL, parsed into
connection settings.

Design: C{parseBrokerURL} accepts C{memory} (the in-process broker),
C{redis://[[user]:password@]host[:port][/db]} and the same with
C{rediss://} (TLS).  A TLS connection always verifies the server's
certificate and host name, against the system's trust store or against the
CA file named by the C{ca} query parameter (C{rediss://host/0?ca=/etc/ca.pem});
there is no switch to turn verification off.  Every refusal is a
L{ValueError} whose message names the part that is wrong and never repeats
the URL, which may hold a password; L{RedisSettings} keeps the password out
of its C{repr} and L{RedisSettings.describe} gives a loggable form.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Union
from urllib.parse import parse_qs, unquote, urlsplit

from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTCP, IReactorTime, IStreamClientEndpoint
from twisted.internet.ssl import (
    Certificate,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)

__all__ = [
    "DEFAULT_REDIS_PORT",
    "BrokerSettings",
    "MemorySettings",
    "RedisSettings",
    "clientEndpoint",
    "parseBrokerURL",
]

DEFAULT_REDIS_PORT = 6379
"""The port of a Redis URL that names none."""

_MAX_DB = 1 << 31


@dataclass(frozen=True)
class MemorySettings:
    """
    The in-process broker (C{--broker memory}).
    """

    def describe(self) -> str:
        """
        @return: C{"memory"}.
        """
        return "memory"


@dataclass(frozen=True)
class RedisSettings:
    """
    Where a Redis server is and how to talk to it.

    @ivar host: its host name or IP address.
    @ivar port: its TCP port.
    @ivar db: the database number (C{SELECT}).
    @ivar username: the ACL user name, or C{None} (the default user).
    @ivar password: the password (C{AUTH}), or C{None}; never in C{repr}.
    @ivar tls: whether to connect with TLS (C{rediss://}).
    @ivar caFile: with TLS, a PEM file of the CAs to trust instead of the
        system's.
    """

    host: str
    port: int = DEFAULT_REDIS_PORT
    db: int = 0
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    tls: bool = False
    caFile: Optional[str] = None

    def describe(self) -> str:
        """
        @return: the URL without its credentials, for logs and messages.
        """
        scheme = "rediss" if self.tls else "redis"
        host = f"[{self.host}]" if ":" in self.host else self.host
        auth = "***@" if self.password is not None else ""
        return f"{scheme}://{auth}{host}:{self.port}/{self.db}"


#: What C{--broker} selects.
BrokerSettings = Union[MemorySettings, RedisSettings]


def parseBrokerURL(text: str) -> BrokerSettings:
    """
    Parse a C{--broker} value.

    @param text: C{memory}, or a C{redis://} or C{rediss://} URL.
    @return: the settings it names.
    @raise ValueError: naming what is wrong (never echoing a password).
    """
    if text == "memory":
        return MemorySettings()
    scheme, sep, _ = text.partition("://")
    if not sep:
        raise ValueError("a broker is 'memory' or a redis:// or rediss:// URL")
    scheme = scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ValueError(
            f"unknown broker URL scheme {scheme[:20]!r}: use redis:// or rediss:// (TLS)"
        )
    try:
        parts = urlsplit(text)
    except ValueError as e:
        # urlsplit's messages name the part (e.g. an invalid IPv6 address)
        # without repeating the URL.
        raise ValueError(f"invalid Redis URL: {e}") from None
    if parts.fragment:
        raise ValueError("a Redis URL has no #fragment")
    netloc = parts.netloc
    hostPort = netloc.rpartition("@")[2]
    if not hostPort:
        raise ValueError("the Redis URL names no host")
    host = parts.hostname
    if not host:
        raise ValueError("the Redis URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the Redis URL's port must be a number from 1 to 65535") from None
    if port is None:
        if hostPort.endswith(":"):
            raise ValueError("the Redis URL's port is empty")
        port = DEFAULT_REDIS_PORT
    elif port == 0:
        raise ValueError("the Redis URL's port must be a number from 1 to 65535")
    username: Optional[str] = None
    password: Optional[str] = None
    if "@" in netloc:
        userinfo = netloc.rpartition("@")[0]
        user, colon, secret = userinfo.partition(":")
        if not colon:
            raise ValueError(
                "the Redis URL's credentials must be ':password@' or 'user:password@'"
            )
        username = unquote(user) or None
        password = unquote(secret)
        if not password:
            raise ValueError("the Redis URL's password is empty")
    db = 0
    path = parts.path
    if path not in ("", "/"):
        number = path[1:]
        if not (number.isascii() and number.isdigit()) or int(number) >= _MAX_DB:
            raise ValueError("the Redis URL's path must be a database number, e.g. /0")
        db = int(number)
    tls = scheme == "rediss"
    caFile: Optional[str] = None
    if parts.query:
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise ValueError("the Redis URL's query is malformed") from None
        for name, values in query.items():
            if name != "ca":
                raise ValueError(
                    f"unknown Redis URL parameter {name[:30]!r} (only 'ca' is known)"
                )
            if len(values) != 1 or not values[0]:
                raise ValueError("the Redis URL's 'ca' parameter needs exactly one file name")
            caFile = values[0]
        if caFile is not None and not tls:
            raise ValueError("the 'ca' parameter needs TLS: use rediss://")
        if caFile is not None and not os.path.isfile(caFile):
            raise ValueError(f"the Redis CA file {caFile!r} does not exist")
    return RedisSettings(host, port, db, username, password, tls, caFile)


def clientEndpoint(
    settings: RedisSettings, reactor: IReactorTCP, timeout: float = 5.0
) -> IStreamClientEndpoint:
    """
    An endpoint that connects to the Redis server of C{settings}, with TLS
    (certificate and host name verified) for C{rediss://}.

    @param settings: the server.
    @param reactor: the reactor (C{IReactorTCP} and C{IReactorTime}).
    @param timeout: seconds a connection attempt may take.
    @return: the endpoint.
    @raise ValueError: if the CA file cannot be read as a PEM certificate.
    """
    assert IReactorTime.providedBy(reactor)
    endpoint: IStreamClientEndpoint = HostnameEndpoint(
        reactor, settings.host, settings.port, timeout=timeout
    )
    if settings.tls:
        if settings.caFile is not None:
            try:
                with open(settings.caFile, "rb") as f:
                    pem = f.read()
                marker = b"-----BEGIN CERTIFICATE-----"
                certificates = [
                    Certificate.loadPEM(marker + block)
                    for block in pem.split(marker)[1:]
                ]
                if not certificates:
                    raise ValueError("no certificate")
            except Exception as e:
                raise ValueError(
                    f"the Redis CA file {settings.caFile!r} is not a PEM certificate file: "
                    f"{type(e).__name__}"
                ) from None
            options = optionsForClientTLS(
                settings.host, trustRoot=trustRootFromCertificates(certificates)
            )
        else:
            options = optionsForClientTLS(settings.host, trustRoot=platformTrust())
        endpoint = wrapClientTLS(options, endpoint)
    return endpoint
