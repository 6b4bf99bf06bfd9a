"""
URLs of the interop receiver: the article's C{POST /v1/infer}.
"""

from __future__ import annotations

from django.urls import path

from tests.hmac_support.django_receiver.views import infer

urlpatterns = [path("v1/infer", infer)]
