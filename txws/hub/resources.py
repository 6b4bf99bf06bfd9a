"""
The hub's HTTP resources: the publish API (behind the HMAC guard), the
health report, the browser page, and the root that holds them beside the
WebSocket endpoint.

Design: the resources parse and answer; publishing itself is the hub's
(L{txws.hub.service.Hub.publish}).  Every answer is JSON with a documented
code, as the HMAC guard's refusals are.
"""

from __future__ import annotations

from collections import Counter
from importlib import resources as packageResources
from typing import TYPE_CHECKING, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from txws._version import __version__
from txws.hub.broker import BrokerUnavailable
from txws.hub.channels import validChannelName
from txws.hub.jsontext import decodeJSON, encodeJSON

if TYPE_CHECKING:
    from txws.hub.broker import Publication
    from txws.hub.service import Hub

__all__ = ["HealthResource", "HubRoot", "PageResource", "PublishResource", "ShuttingDown"]

_log = Logger()

#: The request attribute that holds when a request reached the hub's root
#: (L{HubRoot}), in the reactor's seconds: where publish latency starts.
_ARRIVED_ATTRIBUTE = "_txwsHubArrived"


class ShuttingDown(Exception):
    """
    The hub is stopping and takes no more publications.
    """


def _answer(request: Request, status: int, body: dict[str, object]) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    return encodeJSON(body)


def _error(request: Request, status: int, code: str, message: str) -> bytes:
    return _answer(request, status, {"code": code, "message": message})


class PublishResource(Resource):
    """
    C{POST /publish}: C{{"channel": NAME, "data": ANY}} from an already
    verified request (mount it behind L{txws.hmacauth.HMACGuard}).

    @ivar refused: the requests it refused (after the guard let them
        through), by C{(HTTP status, code)}, the code being the one in the
        JSON answer (C{bad_json}, C{bad_channel}, C{shutting_down}...).
    """

    isLeaf = True

    def __init__(self, hub: Hub, clock: Optional[IReactorTime] = None) -> None:
        """
        @param hub: the hub to publish through.
        @param clock: the clock publish latency is measured with (for the
            hub's C{latencyObserver}), or C{None} not to measure it.
        """
        Resource.__init__(self)
        self._hub = hub
        self._clock = clock
        self.refused: Counter[tuple[int, str]] = Counter()

    def _refuse(self, request: Request, status: int, code: str, message: str) -> bytes:
        self.refused[status, code] += 1
        return _error(request, status, code, message)

    def render(self, request: Request) -> bytes | int:
        """
        Answer any method but C{POST} with 405.

        @param request: the verified request.
        @return: the answer's body, or C{NOT_DONE_YET}.
        """
        if request.method != b"POST":
            request.setHeader(b"Allow", b"POST")
            return self._refuse(request, 405, "method_not_allowed", "publish with POST")
        return self.render_POST(request)

    def render_POST(self, request: Request) -> bytes | int:
        """
        Publish, and answer C{{"channel", "seq", "delivered"}} or an error.

        @param request: the verified request.
        @return: the JSON answer, or C{NOT_DONE_YET}.
        """
        if self._clock is not None and getattr(request, _ARRIVED_ATTRIBUTE, None) is None:
            setattr(request, _ARRIVED_ATTRIBUTE, self._clock.seconds())
        assert request.content is not None
        request.content.seek(0)
        body = request.content.read()
        try:
            message = decodeJSON(body)
        except ValueError:
            return self._refuse(request, 400, "bad_json", "the body is not JSON in UTF-8")
        if not isinstance(message, dict) or "channel" not in message or "data" not in message:
            return self._refuse(
                request, 400, "bad_request", 'the body must be {"channel": NAME, "data": VALUE}'
            )
        channel = message["channel"]
        if not isinstance(channel, str) or not validChannelName(channel):
            return self._refuse(
                request,
                400,
                "bad_channel",
                "channel names are 1 to 128 characters from A-Z a-z 0-9 _ - . : /",
            )
        d = self._hub.publish(channel, encodeJSON(message["data"]))
        d.addCallbacks(
            self._published, self._failed, callbackArgs=(request,), errbackArgs=(request,)
        )
        return NOT_DONE_YET

    def _published(self, result: tuple[Publication, int], request: Request) -> None:
        publication, delivered = result
        observer = self._hub.latencyObserver
        if observer is not None and self._clock is not None:
            observer(self._clock.seconds() - getattr(request, _ARRIVED_ATTRIBUTE))
        if request.finished or request._disconnected:
            return
        answer = {"channel": publication.channel, "seq": publication.sequence}
        request.write(_answer(request, 200, {**answer, "delivered": delivered}))
        request.finish()

    def _failed(self, reason: Failure, request: Request) -> None:
        if reason.check(ShuttingDown):
            body = self._refuse(request, 503, "shutting_down", "the server is shutting down")
        elif reason.check(BrokerUnavailable):
            body = self._refuse(
                request, 503, "unavailable", "the broker cannot take publications now"
            )
        else:
            _log.failure("hub publish failed", reason)
            body = self._refuse(request, 500, "internal_error", "the publication failed")
        if request.finished or request._disconnected:
            return
        request.write(body)
        request.finish()


class HealthResource(Resource):
    """
    C{GET /healthz}: the hub's health and counters as JSON.
    """

    isLeaf = True

    def __init__(self, hub: Hub) -> None:
        """
        @param hub: the hub to report on.
        """
        Resource.__init__(self)
        self._hub = hub

    def render_GET(self, request: Request) -> bytes:
        """
        @param request: the request.
        @return: the JSON report.
        """
        hub = self._hub
        return _answer(
            request,
            200,
            {
                "status": "stopping" if hub.stopping else "ok",
                "version": __version__,
                "uptime": round(hub.uptime, 3),
                "connections": hub.factory.connectionCount,
                "channels": hub.channels.channelCount,
                "subscriptions": hub.channels.subscriptionCount,
                "published": hub.published,
                "evicted": hub.evicted,
            },
        )


class PageResource(Resource):
    """
    C{GET /}: the browser page (C{txws/hub/page.html}).
    """

    isLeaf = True

    def __init__(self) -> None:
        Resource.__init__(self)
        self._page = packageResources.files("txws.hub").joinpath("page.html").read_bytes()

    def render_GET(self, request: Request) -> bytes:
        """
        @param request: the request.
        @return: the page.
        """
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(
            b"Content-Security-Policy",
            b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            b"connect-src 'self' ws: wss:",
        )
        return self._page


class HubRoot(Resource):
    """
    The hub's root: its children, and a redirect that adds the slash when
    it is mounted below a path (C{/realtime} to C{/realtime/}), so the
    page's relative URLs resolve.
    """

    def __init__(self, clock: Optional[IReactorTime] = None) -> None:
        """
        @param clock: if given, every request that reaches the root is
            stamped with its time, where the latency of a publish starts
            (before the HMAC guard checks it).
        """
        # (Resource.__init__ is unannotated; calling it through a typed
        # constructor keeps our callers' calls typed.)
        super().__init__()  # type: ignore[no-untyped-call]
        self._clock = clock

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        """
        Stamp the request's arrival, then look the child up as usual.

        @param path: the next path segment.
        @param request: the request.
        @return: the child.
        """
        if self._clock is not None:
            setattr(request, _ARRIVED_ATTRIBUTE, self._clock.seconds())
        child: Resource = super().getChildWithDefault(path, request)  # type: ignore[no-untyped-call]
        return child

    def render_GET(self, request: Request) -> bytes:
        """
        @param request: a request for the root without its slash.
        @return: an empty body (the redirect).
        """
        # Relative, so that it holds behind a proxy that changes the scheme,
        # host or port.
        assert request.prepath is not None
        location = request.prepath[-1] + b"/" if request.prepath else b"/"
        query = request.uri.partition(b"?")[2]
        if query:
            location += b"?" + query
        request.redirect(location)
        return b""
