"""
Headless Chromium driven through the Chrome DevTools Protocol, for tests
that need a real browser.

Design: L{Chromium} starts Debian's C{/usr/bin/chromium} in a new process
group with a fresh profile directory and C{--remote-debugging-port=0}, and
reads the port it chose from the profile's C{DevToolsActivePort} file.  Each
L{BrowserPage} is one tab with its own DevTools WebSocket connection (the
synchronous C{websockets} client): commands wait for their answer within a
deadline, and the events that arrive meanwhile (console calls, uncaught
exceptions, log entries) are kept for the test to inspect.  Everything is
blocking and bounded; nothing here needs a reactor.  L{Chromium.close}
kills the whole process group and removes the profile.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Optional
from urllib.request import ProxyHandler, Request, build_opener

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

__all__ = ["CHROMIUM", "BrowserPage", "Chromium", "ChromiumError", "chromiumMissing"]

#: Debian's Chromium (installed by C{dev.py test}).
CHROMIUM = "/usr/bin/chromium"

#: Seconds allowed for the browser to start and for one DevTools command.
TIMEOUT = 30.0

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--remote-debugging-port=0",
)


def chromiumMissing() -> Optional[str]:
    """
    @return: why browser tests cannot run here, or C{None} if they can.
    """
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is not installed (python3 dev.py test installs Debian's chromium)"
    return None


class ChromiumError(Exception):
    """
    The browser did not start, a command failed, or a wait timed out.
    """


class BrowserPage:
    """
    One tab, driven over its own DevTools connection.

    @ivar events: every DevTools event received so far, as C{(method,
        params)}.
    """

    def __init__(self, url: str, timeout: float = TIMEOUT) -> None:
        """
        @param url: the tab's DevTools WebSocket URL.
        @param timeout: seconds allowed for each command.
        """
        self._timeout = timeout
        self._ids = itertools.count(1)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._ws: ClientConnection = connect(
            url, proxy=None, max_size=None, open_timeout=timeout, ping_interval=None,
            compression=None,
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """
        Send one DevTools command and wait for its answer.

        @param method: e.g. C{"Page.navigate"}.
        @param params: the command's parameters.
        @return: the command's C{result}.
        @raise ChromiumError: if it failed or no answer came in time.
        """
        commandId = next(self._ids)
        self._ws.send(json.dumps({"id": commandId, "method": method, "params": params}))
        deadline = time.monotonic() + self._timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChromiumError(f"no answer to {method} within {self._timeout} s")
            try:
                raw = self._ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as e:
                raise ChromiumError(f"DevTools connection closed during {method}") from e
            message = json.loads(raw)
            if "method" in message:
                self.events.append((message["method"], message.get("params", {})))
            elif message.get("id") == commandId:
                if "error" in message:
                    raise ChromiumError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """
        Evaluate a JavaScript expression in the page (promises awaited).

        @param expression: the expression.
        @return: its value, as JSON gives it back.
        @raise ChromiumError: if the expression threw.
        """
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"{expression!r} threw: {text}")
        return result.get("result", {}).get("value")

    def waitFor(self, expression: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
        """
        Evaluate C{expression} until it is truthy.

        @param expression: a JavaScript expression.
        @param timeout: seconds allowed.
        @param interval: seconds between two evaluations.
        @return: its first truthy value.
        @raise ChromiumError: if it stayed falsy for C{timeout} seconds.
        """
        deadline = time.monotonic() + timeout
        value: Any = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(interval)
        raise ChromiumError(f"{expression!r} still {value!r} after {timeout} s")

    def navigate(self, url: str, timeout: float = 10.0) -> None:
        """
        Load C{url} and wait until the document has loaded.

        @param url: the page's URL.
        @param timeout: seconds allowed.
        @raise ChromiumError: if navigation failed or did not finish in time.
        """
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise ChromiumError(f"navigating to {url}: {result['errorText']}")
        self.waitFor(
            f"document.readyState === 'complete' && location.href === {json.dumps(url)}",
            timeout,
        )

    def problems(self) -> list[str]:
        """
        @return: the page's uncaught exceptions, console errors and error
            log entries seen so far, as text.
        """
        found = []
        for method, params in self.events:
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(
                    details.get("exception", {}).get("description") or details.get("text", "")
                )
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(a.get("value", "")) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def close(self) -> None:
        """
        Close the DevTools connection.
        """
        self._ws.close()


class Chromium:
    """
    A headless Chromium process with a throwaway profile.

    @ivar port: the DevTools port on 127.0.0.1.
    """

    def __init__(self, timeout: float = TIMEOUT) -> None:
        """
        Start the browser and wait for its DevTools port.

        @param timeout: seconds allowed for starting and for each command.
        @raise ChromiumError: if it did not start in time.
        """
        self._timeout = timeout
        self._pages: list[BrowserPage] = []
        self._profile = tempfile.mkdtemp(prefix="txws-chromium-")
        self._log = open(os.path.join(self._profile, "stderr.log"), "wb")  # noqa: SIM115
        self._process = subprocess.Popen(
            [CHROMIUM, *_FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            start_new_session=True,
        )
        try:
            self.port = self._waitForPort()
        except BaseException:
            self.close()
            raise

    def _waitForPort(self) -> int:
        """
        @return: the port Chromium wrote to C{DevToolsActivePort}.
        @raise ChromiumError: if it exited or wrote nothing in time.
        """
        path = os.path.join(self._profile, "DevToolsActivePort")
        deadline = time.monotonic() + self._timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ChromiumError(
                    f"chromium exited with {self._process.returncode}: {self._stderrTail()}"
                )
            try:
                with open(path) as f:
                    first = f.readline().strip()
                if first.isdigit():
                    return int(first)
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        raise ChromiumError(f"chromium wrote no DevTools port in {self._timeout} s")

    def _stderrTail(self) -> str:
        """
        @return: the end of the browser's stderr.
        """
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace")

    def newPage(self) -> BrowserPage:
        """
        Open a blank tab with the Runtime, Log and Page domains enabled, so
        that everything the next navigation does is recorded.

        @return: the tab.
        """
        request = Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        opener = build_opener(ProxyHandler({}))
        with opener.open(request, timeout=self._timeout) as response:
            target = json.loads(response.read())
        page = BrowserPage(target["webSocketDebuggerUrl"], self._timeout)
        self._pages.append(page)
        for domain in ("Runtime", "Log", "Page"):
            page.call(f"{domain}.enable")
        return page

    def close(self) -> None:
        """
        Close every tab's connection, kill the browser's process group and
        remove its profile directory.
        """
        for page in self._pages:
            with contextlib.suppress(Exception):
                page.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        try:
            self._process.wait(self._timeout)
        finally:
            self._log.close()
            shutil.rmtree(self._profile, ignore_errors=True)
