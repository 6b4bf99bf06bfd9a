"""
Tests for L{txws.hub.devkeys}: the development key file.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from typing import Any

from tests.typedtrial import SynchronousTestCase
from txws.hmacauth.keys import KeyFileError, KeyRing, loadKeyFile
from txws.hub.devkeys import DEV_KEY_FILE, DEV_KEY_ID, ensureDevKeyFile


class EnsureDevKeyFileTests(SynchronousTestCase):
    """
    L{ensureDevKeyFile} creates a private key file once, then reuses it.
    """

    def setUp(self) -> None:
        self.directory = os.path.abspath(self.mktemp())
        os.mkdir(self.directory)
        self.path = os.path.join(self.directory, DEV_KEY_FILE)

    def setUmask(self, mask: int) -> None:
        old = os.umask(mask)
        self.addCleanup(os.umask, old)

    def writeFile(self, keys: dict[str, str], mode: int) -> None:
        with open(self.path, "w") as keyFile:
            json.dump(keys, keyFile)
        os.chmod(self.path, mode)

    def test_names(self) -> None:
        """
        The file name and key id are the documented ones.
        """
        self.assertEqual((DEV_KEY_FILE, DEV_KEY_ID), ("txws-dev-keys.json", "dev"))

    def test_creates(self) -> None:
        """
        Without a file, one is created holding one random C{dev} key in the
        key-file format, and the returned ring holds the same key.
        """
        ring, created = ensureDevKeyFile(self.path)
        self.assertTrue(created)
        self.assertIsInstance(ring, KeyRing)
        self.assertEqual(list(ring), [DEV_KEY_ID])
        with open(self.path) as keyFile:
            content = json.load(keyFile)
        self.assertEqual(list(content), [DEV_KEY_ID])
        self.assertEqual(ring[DEV_KEY_ID], content[DEV_KEY_ID].encode())
        self.assertGreaterEqual(len(content[DEV_KEY_ID]), 43)
        self.assertEqual(dict(loadKeyFile(self.path)), dict(ring))
        self.assertEqual(os.listdir(self.directory), [DEV_KEY_FILE])

    def test_mode(self) -> None:
        """
        The file is created with mode 0600 whatever the umask: neither a
        permissive umask adds bits nor a restrictive one removes the owner's.
        """
        for mask in (0, 0o022, 0o277):
            self.setUmask(mask)
            ring, created = ensureDevKeyFile(self.path)
            self.assertTrue(created)
            self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
            self.assertEqual(dict(loadKeyFile(self.path)), dict(ring))
            os.unlink(self.path)

    def test_reused(self) -> None:
        """
        A second call loads the file the first made: same secret, not
        created, file unchanged.
        """
        first, created = ensureDevKeyFile(self.path)
        with open(self.path, "rb") as keyFile:
            before = keyFile.read()
        second, createdAgain = ensureDevKeyFile(self.path)
        self.assertEqual((created, createdAgain), (True, False))
        self.assertEqual(second[DEV_KEY_ID], first[DEV_KEY_ID])
        with open(self.path, "rb") as keyFile:
            self.assertEqual(keyFile.read(), before)

    def test_existingFileKept(self) -> None:
        """
        An existing private key file is loaded as it is, whatever keys it
        holds.
        """
        self.writeFile({"mine": "my-secret", "other": "x"}, 0o600)
        ring, created = ensureDevKeyFile(self.path)
        self.assertFalse(created)
        self.assertEqual(dict(ring), {"mine": b"my-secret", "other": b"x"})

    def test_refusesReadableFile(self) -> None:
        """
        An existing file other users may read is refused with
        L{KeyFileError}, and left as it is.
        """
        self.writeFile({"dev": "shared-secret"}, 0o644)
        with self.assertRaises(KeyFileError) as raised:
            ensureDevKeyFile(self.path)
        self.assertIn("chmod 600", str(raised.exception))
        self.assertNotIn("shared-secret", str(raised.exception))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o644)

    def test_differentDirectories(self) -> None:
        """
        Two files made in two directories hold different secrets.
        """
        other = self.mktemp()
        os.mkdir(other)
        first, _ = ensureDevKeyFile(self.path)
        second, _ = ensureDevKeyFile(os.path.join(other, DEV_KEY_FILE))
        self.assertNotEqual(first[DEV_KEY_ID], second[DEV_KEY_ID])

    def test_defaultPath(self) -> None:
        """
        By default the file is L{DEV_KEY_FILE} in the working directory.
        """
        here = os.getcwd()
        os.chdir(self.directory)
        self.addCleanup(os.chdir, here)
        ring, created = ensureDevKeyFile()
        self.assertTrue(created)
        self.assertEqual(dict(loadKeyFile(self.path)), dict(ring))

    def test_pathLike(self) -> None:
        """
        A path-like object is accepted.
        """
        from pathlib import Path

        ring, created = ensureDevKeyFile(Path(self.path))
        self.assertTrue(created)
        self.assertEqual(dict(loadKeyFile(self.path)), dict(ring))

    def loseRace(self) -> None:
        """
        Make the file appear, written by another process, after
        L{ensureDevKeyFile} looked for it and before it creates it.
        """
        self.writeFile({"dev": "winner"}, 0o600)
        realLexists = os.path.lexists

        def lexists(name: Any) -> bool:
            return False if os.fspath(name) == self.path else realLexists(name)

        self.patch(os.path, "lexists", lexists)

    def test_raceLost(self) -> None:
        """
        When another process creates the file first, that file is loaded,
        not replaced, and no temporary file is left behind.
        """
        self.loseRace()
        ring, created = ensureDevKeyFile(self.path)
        self.assertFalse(created)
        self.assertEqual(ring[DEV_KEY_ID], b"winner")
        self.assertEqual(os.listdir(self.directory), [DEV_KEY_FILE])

    def noHardLinks(self) -> None:
        def link(source: Any, destination: Any) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        self.patch(os, "link", link)

    def test_withoutHardLinks(self) -> None:
        """
        On a file system without hard links the file is created in place,
        still mode 0600, and no temporary file is left behind.
        """
        self.noHardLinks()
        ring, created = ensureDevKeyFile(self.path)
        self.assertTrue(created)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        self.assertEqual(dict(loadKeyFile(self.path)), dict(ring))
        self.assertEqual(os.listdir(self.directory), [DEV_KEY_FILE])

    def test_raceLostWithoutHardLinks(self) -> None:
        """
        Without hard links, losing the race also loads the winner's file.
        """
        self.noHardLinks()
        self.loseRace()
        ring, created = ensureDevKeyFile(self.path)
        self.assertFalse(created)
        self.assertEqual(ring[DEV_KEY_ID], b"winner")
        self.assertEqual(os.listdir(self.directory), [DEV_KEY_FILE])

    def test_cannotCreate(self) -> None:
        """
        A directory that does not exist gives a L{KeyFileError} naming the
        file.
        """
        missing = os.path.join(self.directory, "missing", DEV_KEY_FILE)
        with self.assertRaises(KeyFileError) as raised:
            ensureDevKeyFile(missing)
        self.assertIn(missing, str(raised.exception))

    def test_otherLinkErrors(self) -> None:
        """
        A link error other than a missing hard-link feature is reported,
        and the temporary file is removed.
        """
        def link(source: Any, destination: Any) -> None:
            raise OSError(errno.EIO, "Input/output error")

        self.patch(os, "link", link)
        with self.assertRaises(KeyFileError) as raised:
            ensureDevKeyFile(self.path)
        self.assertIn("Input/output error", str(raised.exception))
        self.assertEqual(os.listdir(self.directory), [])

    def test_writeFailureCleansUp(self) -> None:
        """
        A failure while writing removes the partly written file.
        """
        def write(descriptor: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        self.patch(os, "write", write)
        with self.assertRaises(KeyFileError) as raised:
            ensureDevKeyFile(self.path)
        self.assertIn("No space left", str(raised.exception))
        self.assertEqual(os.listdir(self.directory), [])


_RACER = """
import json, sys
from txws.hub.devkeys import ensureDevKeyFile
ring, created = ensureDevKeyFile(sys.argv[1])
print(json.dumps({"created": created, "secret": ring["dev"].decode()}))
"""


class ConcurrentProcessTests(SynchronousTestCase):
    """
    Several processes started at once in one directory agree on one key.
    """

    def test_oneWinner(self) -> None:
        """
        Exactly one process creates the file; all of them end up with its
        secret.
        """
        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        path = os.path.join(directory, DEV_KEY_FILE)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            [root, *filter(None, [environment.get("PYTHONPATH")])])
        racers = [
            subprocess.Popen([sys.executable, "-c", _RACER, path], stdout=subprocess.PIPE,
                             env=environment)
            for _ in range(4)
        ]
        results = []
        try:
            for racer in racers:
                output, _ = racer.communicate(timeout=60)
                self.assertEqual(racer.returncode, 0)
                results.append(json.loads(output))
        finally:
            for racer in racers:
                if racer.poll() is None:
                    racer.kill()
                    racer.wait()
        self.assertEqual(sum(result["created"] for result in results), 1)
        self.assertEqual(len({result["secret"] for result in results}), 1)
        self.assertEqual(dict(loadKeyFile(path)), {"dev": results[0]["secret"].encode()})
        self.assertEqual(os.listdir(directory), [DEV_KEY_FILE])
