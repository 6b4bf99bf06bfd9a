"""
Django settings for the interop receiver: no database, JSON only, and the
article's HMAC authentication class for every view.  The shared secret comes
from the C{TXWS_TEST_HMAC_SECRET} environment variable.
"""

from __future__ import annotations

import os

SECRET_KEY = "txws-interop-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.hmac_support.django_receiver.urls"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
HMAC_SECRET = os.environ.get("TXWS_TEST_HMAC_SECRET", "")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tests.hmac_support.django_receiver.authentication.HMACAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
