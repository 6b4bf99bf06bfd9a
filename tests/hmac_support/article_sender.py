"""
A sender written like the seed article's mixin, with C{requests}.

It keeps the article's names (C{sign}, C{post_with_hmac}) and its exact
steps: JSON with sorted keys and compact separators, UTF-8, a timestamp of
C{str(int(time.time()))}, C{hex(HMAC-SHA256(secret, timestamp + "." +
body))}, three headers, C{raise_for_status()} and C{.json()}.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests


class HMACClientMixin:
    """
    The article's signing mixin; C{hmac_secret} plays C{settings.HMAC_SECRET}.
    """

    hmac_secret = ""

    def sign(self, body: bytes, timestamp: str) -> str:
        """
        Sign C{timestamp + "." + body} with the shared secret.
        """
        message = f"{timestamp}.".encode() + body
        return hmac.new(self.hmac_secret.encode(), message, hashlib.sha256).hexdigest()

    def post_with_hmac(self, url: str, payload: dict[str, Any]) -> Any:
        """
        POST C{payload} signed, fail on a non-2xx status, return the JSON answer.
        """
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
        timestamp = str(int(time.time()))
        signature = self.sign(body, timestamp)
        headers = {
            "Content-Type": "application/json",
            "X-HMAC-Signature": signature,
            "X-HMAC-Timestamp": timestamp,
        }
        response = requests.post(url, data=body, headers=headers, timeout=5)
        response.raise_for_status()
        return response.json()


class InferenceClient(HMACClientMixin):
    """
    A service client built on the mixin, as the article's callers are.
    """

    def __init__(self, secret: str) -> None:
        """
        @param secret: The shared secret.
        """
        self.hmac_secret = secret


def sendRaw(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """
    POST exact bytes and headers with C{requests} (for tampered variants).

    @return: The status code and the decoded JSON body.
    """
    response = requests.post(url, data=body, headers=headers, timeout=5)
    return response.status_code, response.json()
