"""
What every fuzz target shares: importing the code under test with atheris'
coverage instrumentation, and running a target from the command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import atheris  # type: ignore[import-untyped, unused-ignore]

__all__ = ["instrumented", "run"]


@contextmanager
def instrumented(enabled: bool) -> Iterator[None]:
    """
    Import txws modules inside this block to instrument them (and only them)
    for coverage guidance.

    @param enabled: Whether to instrument: a target passes
        C{__name__ == "__main__"}, so that importing it elsewhere (the seed
        replay in C{tests/test_fuzz.py}) leaves the modules as they are.
    """
    if not enabled:
        yield
        return
    with atheris.instrument_imports(include=["txws"]):
        yield


def run(testOneInput: Callable[[bytes], None]) -> None:
    """
    Fuzz C{testOneInput} with the libFuzzer options in C{sys.argv}.

    @param testOneInput: The target: raises (or crashes) only on a bug.
    """
    atheris.Setup(sys.argv, testOneInput)
    atheris.Fuzz()
