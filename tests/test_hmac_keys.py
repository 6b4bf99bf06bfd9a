"""
Tests for L{txws.hmacauth.keys}: the key ring and key files.
"""

from __future__ import annotations

import json
import os

from tests.typedtrial import SynchronousTestCase
from txws.hmacauth.keys import KeyFileError, KeyRing, loadKeyFile

SECRET = "s3cr3t-do-not-print"


class KeyRingTests(SynchronousTestCase):
    """
    L{KeyRing} holds several active keys and never shows a secret.
    """

    def test_mapping(self) -> None:
        """
        Text secrets become their UTF-8 bytes; order is kept.
        """
        ring = KeyRing({"b": "é", "a": b"raw"})
        self.assertEqual(list(ring), ["b", "a"])
        self.assertEqual(ring["b"], "é".encode())
        self.assertEqual(ring["a"], b"raw")
        self.assertEqual(len(ring), 2)
        self.assertIsNone(ring.get("c"))

    def test_reprHidesSecrets(self) -> None:
        """
        The repr lists key ids only.
        """
        text = repr(KeyRing({"backend-1": SECRET}))
        self.assertIn("backend-1", text)
        self.assertNotIn(SECRET, text)

    def test_refusesBadRings(self) -> None:
        """
        An empty ring, an empty secret or a malformed key id is refused, and
        the error does not echo a malformed key id (it may be a secret).
        """
        with self.assertRaises(ValueError):
            KeyRing({})
        with self.assertRaises(ValueError):
            KeyRing({"k": ""})
        for keyId in ["", "has space", "a/b", "k" * 65, "é", SECRET + "!"]:
            with self.assertRaises(ValueError) as raised:
                KeyRing({keyId: "x"})
            if keyId:
                self.assertNotIn(keyId, str(raised.exception))

    def test_choose(self) -> None:
        """
        A sender picks its key by id, or implicitly when there is only one.
        """
        self.assertEqual(KeyRing({"only": "x"}).choose(), ("only", b"x"))
        ring = KeyRing({"a": "1", "b": "2"})
        self.assertEqual(ring.choose("b"), ("b", b"2"))
        with self.assertRaises(ValueError):
            ring.choose()
        with self.assertRaises(ValueError):
            ring.choose("c")


class LoadKeyFileTests(SynchronousTestCase):
    """
    L{loadKeyFile} reads C{{"id": "secret"}} files, private ones only.
    """

    def write(self, content: bytes | str, mode: int = 0o600) -> str:
        path: str = self.mktemp()
        raw = content.encode("utf-8") if isinstance(content, str) else content
        with open(path, "wb") as keyFile:
            keyFile.write(raw)
        os.chmod(path, mode)
        return path

    def assertRefused(self, path: str, *fragments: str) -> str:
        with self.assertRaises(KeyFileError) as raised:
            loadKeyFile(path)
        message = str(raised.exception)
        self.assertNotIn(SECRET, message)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message

    def test_loads(self) -> None:
        """
        A private file of several keys loads in file order.
        """
        path = self.write(json.dumps({"backend-1": SECRET, "backend-0": "old"}))
        ring = loadKeyFile(path)
        self.assertEqual(list(ring), ["backend-1", "backend-0"])
        self.assertEqual(ring["backend-1"], SECRET.encode())

    def test_refusesReadableByOthers(self) -> None:
        """
        Group or world permissions are refused with the fix in the message.
        """
        for mode in (0o644, 0o640, 0o604, 0o620, 0o602, 0o610):
            path = self.write(json.dumps({"k": SECRET}), mode)
            self.assertRefused(path, path, "other users", f"{mode:04o}", f"chmod 600 {path}")

    def test_ownerOnlyModes(self) -> None:
        """
        Read-only for the owner is fine too.
        """
        self.assertEqual(list(loadKeyFile(self.write(json.dumps({"k": "v"}), 0o400))), ["k"])

    def test_refusesBadContent(self) -> None:
        """
        Invalid JSON, non-objects, non-string secrets, duplicate ids, bad ids
        and empty objects are refused without echoing the content.
        """
        contents: list[bytes | str] = [
            "{" + SECRET,
            json.dumps([SECRET]),
            json.dumps({"k": 1}),
            f'{{"k": "{SECRET}", "k": "{SECRET}"}}',
            json.dumps({SECRET + " x": "k"}),
            json.dumps({}),
            json.dumps({"k": ""}),
            b"\xff\xfe" + SECRET.encode(),
        ]
        for content in contents:
            self.assertRefused(self.write(content))

    def test_missingFile(self) -> None:
        """
        A missing file is a L{KeyFileError} naming it.
        """
        path: str = self.mktemp()
        self.assertRefused(path, path)

    def test_directory(self) -> None:
        """
        A directory is not a key file.
        """
        path: str = self.mktemp()
        os.mkdir(path, 0o700)
        self.assertRefused(path, path)

    def test_acceptsPathLike(self) -> None:
        """
        A L{pathlib.Path} works like a string.
        """
        from pathlib import Path

        self.assertEqual(len(loadKeyFile(Path(self.write('{"k": "v"}')))), 1)
