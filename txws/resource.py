"""
The C{twisted.web} resources of C{autobahn.twisted.resource}, so that an
application with a site moves over by changing that import too:
L{WebSocketResource} (txws's own, from L{txws.server}) and
L{WSGIRootResource}, a root resource that serves a WSGI application
everywhere except below the children it is given.
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from txws.server import WebSocketResource

__all__ = ["WSGIRootResource", "WebSocketResource"]


class WSGIRootResource(Resource):
    """
    A site's root that hands every request to a WSGI resource, except
    those below one of its children (e.g. a L{WebSocketResource} at
    C{/ws}): C{twisted.web.wsgi.WSGIResource} takes no children itself.
    """

    def __init__(self, wsgiResource: IResource, children: Mapping[bytes, IResource]) -> None:
        """
        @param wsgiResource: serves every path without a child.
        @param children: the first path segment of each child, and the
            child.
        """
        Resource.__init__(self)
        self._wsgiResource = wsgiResource
        for path, child in children.items():
            self.putChild(path, child)

    def getChild(self, path: bytes, request: Request) -> IResource:
        """
        The WSGI resource, with the segment given back to it (it sees the
        whole path).

        @param path: the first path segment, which no child has.
        @param request: the request.
        @return: the WSGI resource.
        """
        prepath, postpath = request.prepath, request.postpath
        assert prepath is not None and postpath is not None
        prepath.pop()
        postpath.insert(0, path)
        return self._wsgiResource
