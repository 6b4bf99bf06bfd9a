"""
Channel names: the rules of C{docs/hub.md}, written once.

Pure module: imports nothing from C{twisted.internet}.
"""

from __future__ import annotations

import re

__all__ = ["MAX_CHANNEL_LENGTH", "PRIVATE_PREFIX", "isPrivateChannel", "validChannelName"]

#: The longest channel name accepted.
MAX_CHANNEL_LENGTH = 128

#: Channels whose names start with this need a channel token to subscribe.
PRIVATE_PREFIX = "private-"

_NAME = re.compile(rf"[A-Za-z0-9_\-.:/]{{1,{MAX_CHANNEL_LENGTH}}}")


def validChannelName(name: object) -> bool:
    """
    @param name: a candidate channel name (any JSON value).
    @return: whether it is a string of 1 to 128 characters from
        C{A-Z a-z 0-9 _ - . : /}.
    """
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def isPrivateChannel(name: str) -> bool:
    """
    @param name: a valid channel name.
    @return: whether subscribing to it needs a channel token.
    """
    return name.startswith(PRIVATE_PREFIX)
