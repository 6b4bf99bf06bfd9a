"""
The seed article's DRF authentication class, restated (see
C{/work/shared/spec/seeds.md}, section 2): both headers present, an integer
timestamp, at most 60 seconds of skew, and a constant-time comparison of
C{hex(HMAC-SHA256(secret, timestamp + "." + body))}.  It keeps the article's
method names, which Django REST framework requires.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed


class ServiceUser:
    """
    The identity of an authenticated backend (DRF only needs the flag).
    """

    is_authenticated = True


class HMACAuthentication(BaseAuthentication):  # type: ignore[misc]
    """
    Verify the seed scheme's C{X-HMAC-Signature} and C{X-HMAC-Timestamp}.
    """

    def authenticate(self, request: Any) -> tuple[ServiceUser, None]:
        """
        Accept the request or raise C{AuthenticationFailed}, as the article does.
        """
        signature = request.headers.get("X-HMAC-Signature")
        timestamp = request.headers.get("X-HMAC-Timestamp")
        if not signature or not timestamp:
            raise AuthenticationFailed("Missing HMAC headers")
        try:
            stamp = int(timestamp)
        except ValueError:
            raise AuthenticationFailed("Invalid timestamp") from None
        if abs(time.time() - stamp) > 60:
            raise AuthenticationFailed("Request timestamp too old")
        message = f"{timestamp}.".encode() + request.body
        expected = hmac.new(
            settings.HMAC_SECRET.encode(), message, hashlib.sha256
        ).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise AuthenticationFailed("Invalid HMAC signature")
        return (ServiceUser(), None)

    def authenticate_header(self, request: Any) -> str:
        """
        Make DRF answer 401 (not 403) to a refused request.
        """
        return "HMAC"
