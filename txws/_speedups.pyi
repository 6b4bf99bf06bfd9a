"""
Type stub for the optional C extension L{txws._speedups}; see L{txws._mask}.
"""

from typing_extensions import Buffer

def mask(data: Buffer, key: Buffer, /) -> bytes:
    """
    Mask or unmask a WebSocket payload (RFC 6455 section 5.3).

    @param data: the payload, a C-contiguous buffer.
    @param key: the 4-octet masking key, a C-contiguous buffer.
    @return: the masked payload, as new L{bytes} of the same length.
    @raise TypeError: if either argument is not a C-contiguous buffer.
    @raise ValueError: if C{key} is not exactly 4 octets long.
    """
