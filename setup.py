"""
Build configuration for the optional C extension.

Everything else lives in C{pyproject.toml}.  The masking extension is marked
optional: when no C compiler is available (or C{TXWS_NO_EXTENSIONS} is set)
the install still succeeds and L{txws._mask} falls back to pure Python, which
produces identical bytes.
"""

import os

from setuptools import Extension, setup

extensions = []
if not os.environ.get("TXWS_NO_EXTENSIONS"):
    extensions.append(
        Extension("txws._speedups", ["txws/_speedups.c"], optional=True)
    )

setup(ext_modules=extensions)
