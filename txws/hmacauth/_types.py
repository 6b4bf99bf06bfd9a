"""
The global reactor, imported lazily for callers that inject none (tests
always inject a C{Clock}).
"""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import IReactorTime

__all__ = ["defaultReactor"]


def defaultReactor() -> IReactorTime:
    """
    @return: The global reactor.
    """
    from twisted.internet import reactor

    return cast(IReactorTime, reactor)
