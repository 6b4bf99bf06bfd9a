"""
Tests for C{scripts/apidocs.py}, the API reference build that C{dev.py
test} runs: the same command, on tiny generated packages, fails for a
broken link inside the package or to a name Python cannot resolve, and
passes for correct internal and external links.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.typedtrial import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "apidocs.py")


class APIDocsBuildTests(SynchronousTestCase):
    """
    The pydoctor build with warnings as errors and offline checks of
    external names.
    """

    def build(self, docstring: str) -> tuple[int, str]:
        """
        Document a package C{demo} whose module C{demo.thing} has a function
        C{helper} and a class C{Thing} with the given docstring.

        @return: the build's exit status and output.
        """
        base = os.path.abspath(self.mktemp())
        package = os.path.join(base, "demo")
        os.makedirs(package)
        with open(os.path.join(package, "__init__.py"), "w") as f:
            f.write('"""\nA package to document.\n"""\n')
        with open(os.path.join(package, "thing.py"), "w") as f:
            f.write(textwrap.dedent(f'''\
                """
                A module.
                """

                from twisted.internet.defer import Deferred


                def helper() -> None:
                    """
                    Help.
                    """


                class Thing:
                    """
                    {docstring}
                    """

                    def later(self) -> "Deferred[None]":
                        """
                        @return: nothing yet.
                        """
                        return Deferred()
                '''))
        result = subprocess.run(
            [sys.executable, SCRIPT, "--output", os.path.join(base, "html"),
             "--project-name", "demo", "--project-version", "1", package],
            capture_output=True, text=True, timeout=120,
        )
        return result.returncode, result.stdout + result.stderr

    def test_goodLinksBuild(self) -> None:
        """
        Links to the package's own names, to an imported Twisted name, to a
        dotted standard-library name and to a builtin build without warning.
        """
        code, output = self.build(
            "See L{helper}, L{demo.thing.Thing.later}, L{Deferred}, L{os.environ} and L{bytes}."
        )
        self.assertEqual(code, 0, output)
        self.assertIn("index.html", output)

    def test_brokenInternalLinkFails(self) -> None:
        """
        C{L{nonexistent}} fails the build, naming the target.
        """
        code, output = self.build("See L{nonexistent}.")
        self.assertEqual(code, 3, output)
        self.assertIn('Cannot find link target for "nonexistent"', output)

    def test_brokenDottedInternalLinkFails(self) -> None:
        """
        A dotted name under the documented package that does not exist fails
        the build.
        """
        code, output = self.build("See L{demo.thing.missing}.")
        self.assertEqual(code, 3, output)
        self.assertIn('"demo.thing.missing"', output)

    def test_brokenExternalLinkFails(self) -> None:
        """
        A misspelt external name, which Python cannot resolve, fails the
        build too.
        """
        code, output = self.build("See L{twisted.internet.defer.Deferredd}.")
        self.assertEqual(code, 3, output)
        self.assertIn('"twisted.internet.defer.Deferredd"', output)

    def test_docstringSyntaxErrorFails(self) -> None:
        """
        An epytext syntax error (an unknown inline markup) fails the build.
        """
        code, output = self.build("Broken X{markup}.")
        self.assertNotEqual(code, 0, output)
        self.assertIn("bad docstring", output)
