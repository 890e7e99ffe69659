"""The hosted pages set their own security headers, whatever the host project's middleware: a Content-Security-Policy
that allows no inline script or style (the page needs none), no framing, and a Referrer-Policy that keeps the
payment's URL on this site. (That the page still works under this policy is shown in Chromium by
tests/test_browser_checkout.py.)"""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import override_settings

from payments_gateway.services.sessions import create_session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

# The project's middleware without the two that would set frame and referrer headers for it.
HEADER_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
)
BARE_MIDDLEWARE = [m for m in settings.MIDDLEWARE if m not in HEADER_MIDDLEWARE]


@pytest.fixture
def session():
    return create_session(
        amount="10", currency="USD", asset="USDC", network="test", success_url="https://shop.example/ok",
        cancel_url="https://shop.example/cart",
    )  # fmt: skip


def assert_protected(response):
    policy = response["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["img-src"] == "'self' data:"  # the QR code is a data: URI
    assert directives["connect-src"] == "'self'"  # polling and the event stream
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"


@override_settings(MIDDLEWARE=BARE_MIDDLEWARE)
def test_every_hosted_page_response_carries_the_headers_without_the_projects_middleware(client, session):
    base = f"/pay/{session.uuid}"
    for path in ("/", "/status", "/qr.png", "/continue"):
        assert_protected(client.get(base + path))
    assert_protected(client.get(base + "/events"))  # the stream's headers (its body is never read here)
    assert_protected(client.post(base + "/customer", {"email": "buyer@shop.example"}))
    cancel = client.post(base + "/cancel")
    assert cancel["Location"] == "https://shop.example/cart"  # the redirect out still works
    assert_protected(cancel)


@override_settings(MIDDLEWARE=BARE_MIDDLEWARE)
def test_the_page_needs_no_inline_script_or_style(client, session):
    page = client.get(f"/pay/{session.uuid}/").content.decode()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|javascript:", page)


def test_the_headers_replace_what_the_projects_middleware_would_set(client, session, settings):
    settings.X_FRAME_OPTIONS = "SAMEORIGIN"
    settings.SECURE_REFERRER_POLICY = "unsafe-url"
    assert_protected(client.get(f"/pay/{session.uuid}/"))


def test_static_files_on_another_origin_are_allowed(client, session, settings):
    settings.STATIC_URL = "https://cdn.shop.example/static/"
    policy = client.get(f"/pay/{session.uuid}/")["Content-Security-Policy"]
    assert "script-src 'self' https://cdn.shop.example;" in policy
    assert "style-src 'self' https://cdn.shop.example;" in policy
