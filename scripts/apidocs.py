"""
Build the API reference of txws with pydoctor, as Twisted builds its own:
epytext docstrings, HTML into C{build/apidocs}, and any warning fails the
build (exit status 3; 2 for a docstring syntax error).

Usage, from the repository root (C{python3 dev.py docs} runs exactly this)::

    .venv/bin/python scripts/apidocs.py [--output DIR] [PACKAGE_DIR ...]

The build runs without network access, so there is no intersphinx
inventory for Twisted or the standard library.  Instead, a link that
pydoctor cannot resolve is checked here: a name outside the documented
packages (C{L{Deferred}} imported from Twisted, C{L{os.environ}},
C{L{bytes}}) is accepted when Python can import and resolve it, and stays a
warning otherwise, as does every unresolvable name inside the documented
packages.  So a broken C{L{...}} fails the build whether it points into
txws or outside it, while correct external names render as plain text.
"""

from __future__ import annotations

import argparse
import builtins
import importlib
import re
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

from pydoctor import driver, model

ROOT = Path(__file__).resolve().parent.parent

_UNRESOLVED = re.compile(r'Cannot find link target for "([^"]+)"')


def resolvesOutside(name: str, rootNames: Sequence[str]) -> bool:
    """
    Whether C{name} is a real Python name outside the documented packages.

    @param name: a dotted name, as pydoctor expanded it.
    @param rootNames: the top-level names of the documented packages; a
        name under one of them is never accepted here.
    @return: C{True} if C{name} is a builtin, or a module or an attribute
        of an importable module (a zope interface's attribute, or a name a
        class annotates, counts).
    """
    parts = name.split(".")
    if parts[0] in rootNames:
        return False
    if len(parts) == 1:
        return hasattr(builtins, name)
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        except Exception:
            return False
        for attribute in parts[split:]:
            found = _attribute(found, attribute)
            if found is None:
                return False
        return True
    return False


def _attribute(owner: object, attribute: str) -> object:
    value = getattr(owner, attribute, None)
    if value is not None:
        return value
    interfaceGet = getattr(owner, "queryDescriptionFor", None)
    if interfaceGet is not None:
        return interfaceGet(attribute)
    annotations = getattr(owner, "__annotations__", {})
    if isinstance(owner, type) and attribute in annotations:
        return annotations[attribute]
    return None


class LinkCheckingSystem(model.System):  # type: ignore[misc]  # pydoctor is untyped
    """
    pydoctor's system, with links to importable names outside the
    documented packages accepted (see L{resolvesOutside}).
    """

    def msg(
        self,
        section: str,
        msg: str,
        thresh: int = 0,
        topthresh: int = 100,
        nonl: bool = False,
        wantsnl: bool = True,
        once: bool = False,
    ) -> None:
        """
        Drop the warning for an unresolved link to a real external name;
        pass every other message on.

        @param section: the build step the message belongs to.
        @param msg: the message.
        @param thresh: see C{pydoctor.model.System.msg}.
        @param topthresh: see C{pydoctor.model.System.msg}.
        @param nonl: see C{pydoctor.model.System.msg}.
        @param wantsnl: see C{pydoctor.model.System.msg}.
        @param once: see C{pydoctor.model.System.msg}.
        """
        if section == "resolve_identifier_xref":
            match = _UNRESOLVED.search(msg)
            if match and resolvesOutside(match.group(1), sorted(self.root_names)):
                return
        super().msg(section, msg, thresh, topthresh, nonl, wantsnl, once)


def pydoctorArguments(
    packages: Sequence[str], output: str, projectName: str, projectVersion: str
) -> list[str]:
    """
    @param packages: the package directories to document.
    @param output: the directory the HTML goes to.
    @param projectName: the name shown on every page.
    @param projectVersion: the version shown beside it.
    @return: pydoctor's command line for them, warnings as errors.
    """
    system = f"{LinkCheckingSystem.__module__}.{LinkCheckingSystem.__qualname__}"
    return [
        "--quiet",
        "--warnings-as-errors",
        "--docformat=epytext",
        f"--system-class={system}",
        f"--project-name={projectName}",
        f"--project-version={projectVersion}",
        f"--html-output={output}",
        *packages,
    ]


def main(argv: Sequence[str]) -> int:
    """
    Build the API reference.

    @param argv: the command line, without the program name.
    @return: pydoctor's exit status: 0 when clean.
    """
    parser = argparse.ArgumentParser(description="Build the txws API reference.")
    parser.add_argument("--output", default=str(ROOT / "build" / "apidocs"))
    parser.add_argument("--project-name", default="txws")
    parser.add_argument("--project-version", default=None)
    parser.add_argument("packages", nargs="*", default=[str(ROOT / "txws")])
    args = parser.parse_args(argv)
    version = args.project_version
    if version is None:
        version = str(runpy.run_path(str(ROOT / "txws" / "_version.py"))["__version__"])
    code: int = driver.main(
        pydoctorArguments(args.packages, args.output, args.project_name, version)
    )
    if code == 0:
        print(f"apidocs: {args.output}/index.html")
    else:
        print(f"apidocs: pydoctor reported problems (exit status {code})")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
