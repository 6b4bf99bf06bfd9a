"""
txws: RFC 6455 WebSockets for Twisted, and HMAC-signed server-to-server HTTP.
"""

__version__ = "0.1.0.dev0"
