"""
The package version, kept apart so that modules can read it without
importing the package's public names.
"""

__version__ = "0.1.0.dev0"
