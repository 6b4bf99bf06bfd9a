"""
Shared secrets: the key ring and the key-file loader.

Design: a L{KeyRing} is an immutable mapping from key id to secret bytes, in
the order the keys were given (the seed scheme tries them in that order).
Several keys are active at once so that a secret can be rotated without
downtime: add the new key everywhere, move senders to it, then remove the old
one.  The ring never shows a secret in its C{repr} or in an error message.

Key files are JSON objects mapping key id to secret string, the same file for
clients and servers.  L{loadKeyFile} refuses a file that other users may
read or write (any group or other permission bit), checked on the open file
descriptor so the check and the read concern the same file.

Pure module: imports nothing from C{twisted.internet}.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator, Mapping

__all__ = ["KeyFileError", "KeyRing", "loadKeyFile"]

_KEY_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_MAX_KEY_FILE_SIZE = 1 << 20


class KeyFileError(Exception):
    """
    A key file cannot be used; the message says why and how to fix it.
    """


class KeyRing(Mapping[str, bytes]):
    """
    The active keys: key id to secret bytes, read-only.

    Key ids are 1 to 64 characters from C{A-Z a-z 0-9 . _ ~ -} (they travel
    in the v2 C{Authorization} header).  Secrets given as text are used as
    their UTF-8 bytes, as the seed scheme does.
    """

    def __init__(self, keys: Mapping[str, str | bytes]) -> None:
        """
        @param keys: Key id to secret, in order of preference.
        @raise ValueError: If there are no keys, a key id is malformed or a
            secret is empty.
        """
        if not keys:
            raise ValueError("a key ring needs at least one key")
        ring: dict[str, bytes] = {}
        for position, (keyId, secret) in enumerate(keys.items(), 1):
            if not isinstance(keyId, str) or _KEY_ID.fullmatch(keyId) is None:
                # Not echoed: a file with ids and secrets swapped would leak.
                raise ValueError(
                    f"key number {position} has an invalid key id: "
                    "use 1 to 64 characters from A-Z a-z 0-9 . _ ~ -"
                )
            raw = secret.encode("utf-8") if isinstance(secret, str) else secret
            if not isinstance(raw, bytes) or not raw:
                raise ValueError(f"key {keyId!r}: the secret must be a non-empty string")
            ring[keyId] = raw
        self._keys = ring

    def __getitem__(self, keyId: str) -> bytes:
        """
        @param keyId: A key id.
        @return: Its secret.
        @raise KeyError: If the ring has no such key.
        """
        return self._keys[keyId]

    def __iter__(self) -> Iterator[str]:
        """
        @return: The key ids, in order.
        """
        return iter(self._keys)

    def __len__(self) -> int:
        """
        @return: How many keys are active.
        """
        return len(self._keys)

    def __repr__(self) -> str:
        """
        @return: The key ids only, never the secrets.
        """
        return f"KeyRing(ids={list(self._keys)!r})"

    def choose(self, keyId: str | None = None) -> tuple[str, bytes]:
        """
        Pick the key a sender signs with.

        @param keyId: The wanted key id, or C{None} if the ring must hold
            exactly one key.
        @return: The key id and its secret.
        @raise ValueError: If C{keyId} is unknown, or is C{None} and the ring
            holds several keys.
        """
        if keyId is None:
            if len(self._keys) != 1:
                raise ValueError(
                    f"the key ring holds {len(self._keys)} keys; choose one by key id"
                )
            keyId = next(iter(self._keys))
        if keyId not in self._keys:
            raise ValueError(f"no key with id {keyId!r}")
        return keyId, self._keys[keyId]


def loadKeyFile(path: str | os.PathLike[str]) -> KeyRing:
    """
    Load a key file: a JSON object mapping key id to secret string, e.g.
    C{{"backend-1": "..."}}.

    @param path: The file's path.
    @return: The keys, in file order.
    @raise KeyFileError: If the file cannot be read, is readable or writable
        by other users (POSIX), is not a regular file, or does not hold a
        valid key object.  The message names the file and the fix.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as keyFile:
            info = os.fstat(keyFile.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise KeyFileError(f"key file {name} is not a regular file")
            if os.name == "posix" and info.st_mode & 0o077:
                raise KeyFileError(
                    f"key file {name} is accessible by other users "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}); "
                    f"restrict it with: chmod 600 {name}"
                )
            raw = keyFile.read(_MAX_KEY_FILE_SIZE + 1)
    except OSError as e:
        raise KeyFileError(f"cannot read key file {name}: {e.strerror}") from None
    if len(raw) > _MAX_KEY_FILE_SIZE:
        raise KeyFileError(f"key file {name} is larger than 1 MiB")
    try:
        keys = json.loads(raw.decode("utf-8"), object_pairs_hook=_refuseDuplicates)
    except (UnicodeDecodeError, json.JSONDecodeError):
        # The position or text of a JSON error could echo part of a secret.
        raise KeyFileError(f"key file {name} is not valid UTF-8 JSON") from None
    except _DuplicateKeyId:
        raise KeyFileError(f"key file {name}: a key id appears twice") from None
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        raise KeyFileError(
            f'key file {name} must hold a JSON object of key id to secret string, '
            f'e.g. {{"backend-1": "..."}}'
        )
    try:
        return KeyRing(keys)
    except ValueError as e:
        raise KeyFileError(f"key file {name}: {e}") from None


def _refuseDuplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """
    Build a JSON object, refusing a key id given twice (JSON keeps the last
    silently, which would hide a mistake during rotation).
    """
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKeyId()
    return result


class _DuplicateKeyId(Exception):
    """
    Raised while parsing a key file whose JSON object repeats a key.
    """
