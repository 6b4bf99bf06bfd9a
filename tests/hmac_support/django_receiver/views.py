"""
The article's inference endpoint, reduced to an echo: it returns what DRF
parsed and a digest of the exact body bytes it received.
"""

from __future__ import annotations

import hashlib
from typing import Any

from rest_framework.decorators import api_view
from rest_framework.response import Response


@api_view(["POST"])  # type: ignore[untyped-decorator, unused-ignore]
def infer(request: Any) -> Any:
    """
    Echo the parsed payload and the SHA-256 of the raw body.
    """
    return Response({
        "received": request.data,
        "bodySha256": hashlib.sha256(request.body).hexdigest(),
    })
