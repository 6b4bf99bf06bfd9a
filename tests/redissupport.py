"""
Real C{redis-server} processes for tests.

Design: each L{RedisServer} runs C{/usr/bin/redis-server} (or the one on
C{PATH}) on a free port of 127.0.0.1, with its data directory in the test's
temporary directory, append-only persistence with C{fsync} at every write
(so a server killed with C{SIGKILL} and started again on the same directory
comes back with its data) and no password unless asked.  Starting waits,
with a deadline, until the server answers C{PING} with C{PONG} (not
C{LOADING}); the test's cleanup kills it.  L{requireRedis} skips a test,
saying why, where no server binary is installed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from typing import Optional

from tests.support import freePort
from tests.tlssupport import ServerFiles
from tests.typedtrial import SkipTest, SynchronousTestCase
from txws.hub.brokerurl import RedisSettings

__all__ = ["RedisServer", "freePort", "redisServerPath", "requireRedis", "startRedis"]

_DEFAULT = "/usr/bin/redis-server"


def redisServerPath() -> Optional[str]:
    """
    @return: the C{redis-server} binary, or C{None} if none is installed.
    """
    if os.access(_DEFAULT, os.X_OK):
        return _DEFAULT
    return shutil.which("redis-server")


def requireRedis() -> str:
    """
    @return: the C{redis-server} binary.
    @raise SkipTest: if none is installed.
    """
    path = redisServerPath()
    if path is None:
        raise SkipTest(
            "redis-server is not installed (/usr/bin/redis-server nor on PATH): "
            "`python3 dev.py test` as root installs Debian's redis-server"
        )
    return path


class RedisServer:
    """
    One C{redis-server} process on 127.0.0.1.

    @ivar port: its port (the same across restarts).
    @ivar directory: its data directory (the same across restarts).
    @ivar password: the password it requires, or C{None}.
    """

    def __init__(
        self, directory: str, password: Optional[str] = None, tls: Optional[ServerFiles] = None
    ) -> None:
        """
        @param directory: where its data and log go (created).
        @param password: a password to require, or C{None}.
        @param tls: credentials to serve TLS only with (its port then takes
            no plain connections), or C{None}.
        """
        self.tls = tls
        self._binary = requireRedis()
        self.directory = os.path.abspath(directory)
        self.password = password
        self.port = freePort()
        self._process: Optional[subprocess.Popen[bytes]] = None
        os.makedirs(self.directory, exist_ok=True)

    def settings(self, db: int = 0, password: Optional[str] = None) -> RedisSettings:
        """
        @param db: the database number.
        @param password: the password to connect with (default: its own).
        @return: settings that connect to it.
        """
        return RedisSettings(
            "localhost" if self.tls else "127.0.0.1",
            self.port,
            db,
            password=password if password else self.password,
            tls=self.tls is not None,
            caFile=self.tls.ca if self.tls else None,
        )

    @property
    def running(self) -> bool:
        """
        Whether its process is alive.
        """
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """
        Start it and wait until it answers C{PING}.

        @param timeout: seconds to wait at most.
        @raise RuntimeError: if it does not answer in time (its log is in
            the message).
        """
        assert not self.running
        if self.tls is None:
            ports = ["--port", str(self.port)]
        else:
            ports = [
                "--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", self.tls.cert, "--tls-key-file", self.tls.key,
                "--tls-ca-cert-file", self.tls.ca, "--tls-auth-clients", "no",
            ]
        arguments = [
            self._binary,
            *ports,
            "--bind", "127.0.0.1",
            "--dir", self.directory,
            "--logfile", os.path.join(self.directory, "redis.log"),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--databases", "4",
        ]
        if self.password is not None:
            arguments += ["--requirepass", self.password]
        self._process = subprocess.Popen(
            arguments, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self._ping():
                return
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not start in {timeout} s: {self.log()[-2000:]}")

    def _ping(self) -> bool:
        try:
            with self._connect(1.0) as s:
                command = b""
                if self.password is not None:
                    secret = self.password.encode()
                    command += b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret)
                command += b"*1\r\n$4\r\nPING\r\n"
                s.sendall(command)
                answer = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                    if b"PONG" in answer or answer.startswith(b"-"):
                        break
                return b"+PONG" in answer
        except OSError:
            return False

    def _connect(self, timeout: float) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        if self.tls is None:
            return s
        context = ssl.create_default_context(cafile=self.tls.ca)
        context.check_hostname = False  # whatever name it was issued for
        return context.wrap_socket(s, server_hostname="localhost")

    def log(self) -> str:
        """
        @return: its log so far.
        """
        try:
            with open(os.path.join(self.directory, "redis.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self) -> None:
        """
        Kill it at once (C{SIGKILL}: no shutdown save), and wait for it.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def wipe(self) -> None:
        """
        Delete its data (only while it is stopped).
        """
        assert not self.running
        for name in os.listdir(self.directory):
            path = os.path.join(self.directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif name != "redis.log":
                os.remove(path)

    def command(self, *arguments: str) -> bytes:
        """
        Run one command with a fresh connection (blocking; for set-up).

        @param arguments: the command and its arguments.
        @return: the raw reply.
        """
        parts = [b"*%d\r\n" % len(arguments)]
        for argument in arguments:
            data = argument.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        with self._connect(5.0) as s:
            if self.password is not None:
                secret = self.password.encode()
                s.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(secret), secret))
                s.recv(1024)
            s.sendall(b"".join(parts))
            return s.recv(65536)


def startRedis(
    case: SynchronousTestCase,
    password: Optional[str] = None,
    tls: Optional[ServerFiles] = None,
) -> RedisServer:
    """
    Start a L{RedisServer} in the test's temporary directory, killed in the
    test's cleanup.

    @param case: the test.
    @param password: a password to require.
    @param tls: credentials to serve TLS with.
    @return: the running server.
    @raise SkipTest: if no C{redis-server} is installed.
    """
    server = RedisServer(os.path.join(case.mktemp(), "redis"), password, tls)
    case.addCleanup(server.kill)
    server.start()
    return server
