"""
Helpers for the HMAC interop tests: a Django + DRF receiver written like the
seed article's authentication class, and a sender written like the article's
mixin (with C{requests}).  They deliberately mirror the article's code, names
included, so the tests prove compatibility with it rather than with us.
"""
