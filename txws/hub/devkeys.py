"""
The development key file: a hub started without keys of its own makes one
key, C{dev}, and keeps it in C{txws-dev-keys.json} in its working directory,
so that C{python -m txws.hub token} and C{publish} run from the same
directory sign with it.

Design: the file is written whole to a private temporary file beside it
(created with C{O_CREAT | O_EXCL}, mode 0600), then hard-linked into place,
which fails if the name exists: no other user can ever read the secret, and
no process can ever read a half-written file.  Whoever loses a race loads
the winner's file.  On a file system without hard links the file is created
in place with C{O_CREAT | O_EXCL} instead.  An existing file is loaded with
L{loadKeyFile}, which refuses one that other users may read.

Pure module: imports nothing from C{twisted.internet}.
"""

from __future__ import annotations

import errno
import json
import os
import secrets

from txws.hmacauth.keys import KeyFileError, KeyRing, loadKeyFile

__all__ = ["DEV_KEY_FILE", "DEV_KEY_ID", "ensureDevKeyFile"]

#: The development key file's name, in the hub's working directory.
DEV_KEY_FILE = "txws-dev-keys.json"

#: The id of the one key in a development key file.
DEV_KEY_ID = "dev"

_CREATE = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}
)


def _writePrivate(name: str, data: bytes) -> None:
    """
    Create C{name}, which must not exist, readable by its owner only, and
    write C{data} to it.

    @raise FileExistsError: If C{name} exists.
    @raise OSError: If it cannot be created or written (it is then removed).
    """
    descriptor = os.open(name, _CREATE, 0o600)
    try:
        if os.name == "posix":
            # The umask may have removed the owner's bits; it cannot add others.
            os.fchmod(descriptor, 0o600)
        written = 0
        while written < len(data):
            written += os.write(descriptor, data[written:])
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        os.unlink(name)
        raise
    os.close(descriptor)


def _publish(name: str, data: bytes) -> bool:
    """
    Make C{name} hold C{data}, complete, if it does not exist yet.

    @return: C{True} if this call created it, C{False} if it existed.
    @raise OSError: If it cannot be created.
    """
    temporary = f"{name}.{secrets.token_hex(8)}.tmp"
    _writePrivate(temporary, data)
    try:
        os.link(temporary, name)
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in _NO_HARD_LINKS:
            raise
        try:
            _writePrivate(name, data)
        except FileExistsError:
            return False
    finally:
        os.unlink(temporary)
    return True


def ensureDevKeyFile(
    path: str | os.PathLike[str] = DEV_KEY_FILE,
) -> tuple[KeyRing, bool]:
    """
    Load the development key file, creating it with a fresh random key
    L{DEV_KEY_ID} if it does not exist.

    @param path: The key file (default L{DEV_KEY_FILE} in the working
        directory).
    @return: The key ring, and whether this call created the file.
    @raise KeyFileError: If an existing file cannot be used (see
        L{loadKeyFile}: for instance, other users may read it), or the file
        cannot be created.
    """
    name = os.fspath(path)
    if not os.path.lexists(name):
        secret = secrets.token_urlsafe(32)
        data = (json.dumps({DEV_KEY_ID: secret}) + "\n").encode("ascii")
        try:
            created = _publish(name, data)
        except OSError as e:
            raise KeyFileError(f"cannot create key file {name}: {e.strerror}") from None
        if created:
            return KeyRing({DEV_KEY_ID: secret}), True
    return loadKeyFile(name), False
