"""
What a user judges the package by before running it: the license, the
changelog, and a README whose every link stays inside the repository (the
sdist's contents are checked in L{tests.test_plugin_install}).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tests.tlssupport import ROOT
from tests.typedtrial import SynchronousTestCase

#: Markdown links (C{[text](target)}) and autolinks (C{<scheme:...>}).
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_AUTOLINK = re.compile(r"<[a-z][a-z0-9+.-]*:[^>\s]*>", re.I)


def _prose(markdown: str) -> str:
    """
    @return: C{markdown} without its fenced code blocks and code spans,
        where a URL is text, not a link.
    """
    without = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", without)


def _anchors(markdown: str) -> set[str]:
    """
    @return: the fragment of every heading, as GitHub makes them
        (lower case, punctuation dropped, spaces to dashes, repeats
        numbered).
    """
    seen: Counter[str] = Counter()
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", _prose(markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return anchors


class ReadmeLinksTests(SynchronousTestCase):
    """
    The README links only to files of the repository and to its own
    headings.
    """

    def test_noLinkLeavesTheRepository(self) -> None:
        """
        No Markdown link, autolink or bare URL outside code points outside
        the repository; every linked file exists; every fragment is a
        heading of the README.
        """
        readme = (Path(ROOT) / "README.md").read_text()
        prose = _prose(readme)
        self.assertEqual(re.findall(r"\b(?:https?|ftp)://\S+", prose), [])
        self.assertEqual(_AUTOLINK.findall(prose), [])
        links = _LINK.findall(prose)
        self.assertIn("docs/autobahn.md", links)
        anchors = _anchors(readme)
        for link in links:
            target, _, fragment = link.partition("#")
            if target:
                self.assertNotIn(":", target, link)
                self.assertTrue((Path(ROOT) / target).exists(), f"{link}: no such file")
            else:
                self.assertIn(fragment, anchors, f"{link}: no such heading")

    def test_linkCheckerSeesLinks(self) -> None:
        """
        The checks above would catch an outside link in prose, but not a
        URL shown in code.
        """
        text = "See [x](https://example.com) and `http://127.0.0.1/`.\n```\nhttp://a/\n```\n"
        self.assertEqual(_LINK.findall(_prose(text)), ["https://example.com"])
        self.assertEqual(re.findall(r"https?://\S+", _prose(text)), ["https://example.com)"])


class LicenseTests(SynchronousTestCase):
    """
    The license and the changelog.
    """

    def test_mitLicense(self) -> None:
        """
        LICENSE is the MIT license of the txws developers, as the metadata
        says.
        """
        text = (Path(ROOT) / "LICENSE").read_text()
        self.assertTrue(text.startswith("MIT License\n\nCopyright (c) 2026 the txws developers\n"))
        self.assertIn("THE SOFTWARE IS PROVIDED \"AS IS\"", text)
        self.assertIn('license = "MIT"', (Path(ROOT) / "pyproject.toml").read_text())

    def test_changelogNamesTheVersion(self) -> None:
        """
        CHANGELOG.md has a section for the version being built.
        """
        from txws._version import __version__

        release = __version__.split(".dev")[0]
        text = (Path(ROOT) / "CHANGELOG.md").read_text()
        self.assertIn(f"## txws {release} ", text)
