"""
The TLS policy of C{twistd txws}: every TLS listener refuses protocol
versions below TLS 1.2, whatever its description says.

Design: Twisted's C{ssl:} endpoint parser builds its context with Twisted's
default minimum version and loads its files only when it is asked for the
endpoint, so txws does not use it.  L{parseSSLDescription} reads the same
C{ssl:} description (port, interface, backlog, privateKey, certKey,
extraCertChain, dhParameters), L{serverContext} loads and checks the files
and builds a L{CertificateOptions} whose context is made at once (so a
missing file, an encrypted key or a key that does not match its
certificate is found before anything listens) with
C{raiseMinimumTo=TLSVersion.TLSv1_2} and, on the context itself,
C{set_min_proto_version(TLS1_2_VERSION)}; L{serverEndpoint} listens with an
L{SSL4ServerEndpoint} given that context.  A certificate file may hold the
whole chain (e.g. Let's Encrypt's C{fullchain.pem}): its first certificate
is the server's, the others are sent as the chain.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL
from OpenSSL.crypto import X509, PKey
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.interfaces import IReactorSSL
from twisted.internet.ssl import CertificateOptions, DiffieHellmanParameters, TLSVersion
from twisted.python.filepath import FilePath

__all__ = [
    "MINIMUM_TLS_VERSION",
    "SSLDescription",
    "TLSConfigurationError",
    "parseSSLDescription",
    "serverContext",
    "serverEndpoint",
    "splitDescription",
]

#: The oldest protocol version any txws TLS listener accepts.
MINIMUM_TLS_VERSION = TLSVersion.TLSv1_2

_MAX_PEM_FILE = 1 << 20
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL
)
_SSL_KEYWORDS = (
    "port",
    "interface",
    "backlog",
    "privateKey",
    "certKey",
    "extraCertChain",
    "dhParameters",
)


class TLSConfigurationError(ValueError):
    """
    A TLS listener cannot be set up; the message says why, naming the file
    or parameter (never a key's content).
    """


@dataclass(frozen=True)
class SSLDescription:
    """
    What an C{ssl:} server endpoint description says.

    @ivar port: the TCP port (0 for any free port).
    @ivar interface: the address to bind (C{""} for every IPv4 address).
    @ivar backlog: the listen queue length.
    @ivar privateKey: the private key file, or C{None} when the
        description names none.
    @ivar certKey: the certificate file (C{privateKey} itself when only
        that is named, as Twisted does), or C{None}.
    @ivar extraCertChain: a file of intermediate certificates, or C{None}.
    @ivar dhParameters: a file of Diffie-Hellman parameters, or C{None}.
    """

    port: int
    interface: str = ""
    backlog: int = 50
    privateKey: Optional[str] = None
    certKey: Optional[str] = None
    extraCertChain: Optional[str] = None
    dhParameters: Optional[str] = None


def splitDescription(description: str) -> tuple[list[str], dict[str, str]]:
    """
    Split an endpoint description the way Twisted does: fields separated by
    C{:}, a field with C{=} is a keyword argument, a backslash escapes the
    next character (C{\\:}, C{\\=}, C{\\\\}).

    @param description: e.g. C{ssl:8443:interface=127.0.0.1}.
    @return: the positional fields (the first is the endpoint type) and the
        keyword fields.
    @raise TLSConfigurationError: if a keyword appears twice.
    """
    fields: list[tuple[str, Optional[str]]] = []
    key: list[str] = []
    value: Optional[list[str]] = None
    escaped = False

    def finish() -> None:
        fields.append(("".join(key), None if value is None else "".join(value)))

    for char in description:
        current = key if value is None else value
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            finish()
            key, value = [], None
        elif char == "=" and value is None:
            value = []
        else:
            current.append(char)
    finish()
    positional: list[str] = []
    keywords: dict[str, str] = {}
    for name, argument in fields:
        if argument is None:
            positional.append(name)
        elif name in keywords:
            raise TLSConfigurationError(f"{name}= is given twice in {description!r}")
        else:
            keywords[name] = argument
    return positional, keywords


def parseSSLDescription(description: str) -> SSLDescription:
    """
    Read an C{ssl:} server endpoint description.

    @param description: e.g. C{ssl:8443:interface=0.0.0.0:privateKey=k.pem}.
    @return: what it says.
    @raise TLSConfigurationError: for another endpoint type, a missing or
        bad port or backlog, an unknown parameter (including C{sslmethod}:
        the protocol versions are txws's policy), or a certificate or chain
        named without a private key.
    """
    positional, keywords = splitDescription(description)
    if not positional or positional[0].lower() != "ssl":
        raise TLSConfigurationError(f"{description!r} is not an ssl: endpoint")
    arguments = positional[1:]
    if len(arguments) > 1:
        raise TLSConfigurationError(
            f"{description!r}: after the port, give parameters by name "
            "(interface=, backlog=, privateKey=, certKey=, extraCertChain=, dhParameters=)"
        )
    if arguments:
        if "port" in keywords:
            raise TLSConfigurationError(f"{description!r}: the port is given twice")
        keywords["port"] = arguments[0]
    if "sslmethod" in keywords:
        raise TLSConfigurationError(
            f"{description!r}: sslmethod is not supported; txws accepts TLS 1.2 and newer"
        )
    unknown = sorted(set(keywords) - set(_SSL_KEYWORDS))
    if unknown:
        raise TLSConfigurationError(
            f"{description!r}: unknown parameter(s) {', '.join(unknown)}; "
            f"known: {', '.join(_SSL_KEYWORDS)}"
        )
    if "port" not in keywords:
        raise TLSConfigurationError(f"{description!r}: no port")
    port = _integer(description, "port", keywords["port"], 0, 65535)
    backlog = _integer(description, "backlog", keywords.get("backlog", "50"), 1, 1 << 16)
    privateKey = keywords.get("privateKey") or None
    certKey = keywords.get("certKey") or None
    chain = keywords.get("extraCertChain") or None
    if privateKey is None and (certKey is not None or chain is not None):
        raise TLSConfigurationError(
            f"{description!r}: certKey= or extraCertChain= needs privateKey= too"
        )
    return SSLDescription(
        port=port,
        interface=keywords.get("interface", ""),
        backlog=backlog,
        privateKey=privateKey,
        certKey=certKey if certKey is not None else privateKey,
        extraCertChain=chain,
        dhParameters=keywords.get("dhParameters") or None,
    )


def _integer(description: str, name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not low <= value <= high:
        raise TLSConfigurationError(
            f"{description!r}: {name} must be an integer from {low} to {high}, not {text!r}"
        )
    return value


def _readFile(path: str, what: str, private: bool = False) -> bytes:
    """
    Read a PEM file, refusing a private one that other users may read or
    anyone but its owner may write.
    """
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise TLSConfigurationError(f"{what} {path} is not a regular file")
            if private and os.name == "posix" and info.st_mode & 0o026:
                raise TLSConfigurationError(
                    f"{what} {path} is readable by other users or writable by its group "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}); "
                    f"restrict it with: chmod 600 {path} (or 640 for a group such as ssl-cert)"
                )
            data = f.read(_MAX_PEM_FILE + 1)
    except OSError as e:
        raise TLSConfigurationError(f"cannot read {what} {path}: {e.strerror}") from None
    if len(data) > _MAX_PEM_FILE:
        raise TLSConfigurationError(f"{what} {path} is larger than 1 MiB")
    return data


def _certificates(path: str, what: str) -> list[X509]:
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(_readFile(path, what))
              if m.group(1) == b"CERTIFICATE"]
    if not blocks:
        raise TLSConfigurationError(f"{what} {path} holds no PEM certificate")
    try:
        return [X509.from_cryptography(x509.load_pem_x509_certificate(b)) for b in blocks]
    except ValueError:
        raise TLSConfigurationError(f"{what} {path} holds a malformed certificate") from None


def _privateKey(path: str) -> PKey:
    data = _readFile(path, "TLS private key file", private=True)
    blocks = [m for m in _PEM_BLOCK.finditer(data) if m.group(1).endswith(b"PRIVATE KEY")]
    if not blocks:
        raise TLSConfigurationError(f"TLS private key file {path} holds no PEM private key")
    if blocks[0].group(1) == b"ENCRYPTED PRIVATE KEY" or b"ENCRYPTED" in blocks[0].group(0):
        raise TLSConfigurationError(
            f"TLS private key file {path} is encrypted; give an unencrypted key "
            "readable only by the server's user"
        )
    try:
        key = serialization.load_pem_private_key(blocks[0].group(0), password=None)
        return PKey.from_cryptography_key(key)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        # Never the exception's text: it could quote part of the key.
        raise TLSConfigurationError(f"TLS private key file {path} is malformed") from None


def serverContext(
    certPath: str,
    keyPath: str,
    chainPath: Optional[str] = None,
    dhPath: Optional[str] = None,
) -> CertificateOptions:
    """
    Load a server's certificate and key and build its TLS options: TLS 1.2
    and newer only.

    @param certPath: the certificate file (PEM); certificates after the
        first are sent as the chain.
    @param keyPath: the private key file (PEM, unencrypted; neither
        readable by other users nor writable by its group); may be the same
        file as C{certPath}.
    @param chainPath: a file of intermediate certificates, if any.
    @param dhPath: a file of Diffie-Hellman parameters, if any.
    @return: options whose context is already made.
    @raise TLSConfigurationError: for a file that cannot be read or used, or
        a key that does not match the certificate.
    """
    certificates = _certificates(certPath, "TLS certificate file")
    chain = certificates[1:]
    if chainPath is not None:
        chain += _certificates(chainPath, "TLS chain file")
    key = _privateKey(keyPath)
    dhParameters = None
    if dhPath is not None:
        _readFile(dhPath, "Diffie-Hellman parameters file")
        dhParameters = DiffieHellmanParameters.fromFile(FilePath(dhPath))
    options = CertificateOptions(
        privateKey=key,
        certificate=certificates[0],
        extraCertChain=chain or None,
        raiseMinimumTo=MINIMUM_TLS_VERSION,
        dhParameters=dhParameters,
    )
    try:
        context = options.getContext()
    except SSL.Error:
        raise TLSConfigurationError(
            f"TLS private key {keyPath} does not match the certificate in {certPath}"
            + (f", or the parameters in {dhPath} are invalid" if dhPath else "")
        ) from None
    # Belt and braces: the minimum is also set on the context itself, which
    # CertificateOptions keeps and uses for every connection.
    context.set_min_proto_version(SSL.TLS1_2_VERSION)
    return options


def serverEndpoint(
    reactor: IReactorSSL, description: SSLDescription, options: CertificateOptions
) -> SSL4ServerEndpoint:
    """
    @param reactor: the reactor to listen with.
    @param description: where to listen.
    @param options: the TLS options (from L{serverContext}).
    @return: the endpoint.
    """
    return SSL4ServerEndpoint(
        reactor,
        description.port,
        options,
        backlog=description.backlog,
        interface=description.interface,
    )
