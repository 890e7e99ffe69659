"""A secret shown once in the admin (a new API key, a webhook endpoint's signing secret, a rotated one) is in the
response page itself and in no cookie: Django's messages framework would carry it in a signed, not encrypted,
cookie (the cookie storage, the default's first choice), readable by anything that sees the browser's cookies."""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from urllib.parse import unquote

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from payments_gateway.models import APIKey, WebhookEndpoint

pytestmark = pytest.mark.django_db

COPY_NOW = "Copy it now: it will not be shown again."


@pytest.fixture
def merchant(client, settings):
    # Everything that can live in a cookie does: messages and the session itself.
    settings.MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "ALLOW_PRIVATE_WEBHOOK_URLS": True}
    client.force_login(get_user_model().objects.create_superuser("merchant", "m@shop.example", "pw"))
    return client


def readable(value: str) -> list[str]:
    """A cookie's value as sent, and as anyone can read a Django-signed value (base64, maybe zlib) without the key."""
    texts = [value, unquote(value)]
    for part in unquote(value).strip('"').split(":"):
        compressed = part.startswith(".")
        try:
            data = base64.urlsafe_b64decode(part.lstrip(".") + "=" * (-len(part.lstrip(".")) % 4))
            texts.append((zlib.decompress(data) if compressed else data).decode("utf-8", "replace"))
        except (binascii.Error, ValueError, zlib.error):
            pass
    return texts


def through_the_browser(client, method: str, url: str, data: dict) -> list:
    """The responses a browser gets for one form post: the post's, then each redirect it follows."""
    responses = [getattr(client, method)(url, data)]
    while responses[-1].status_code in (301, 302, 303):
        responses.append(client.get(responses[-1]["Location"]))
    return responses


def assert_shown_once_never_in_a_cookie(responses: list, secret: str) -> None:
    cookies = [morsel.value for response in responses for morsel in response.cookies.values()]
    assert cookies  # the session cookie at least: the check below looks at something
    for value in cookies:
        assert not any(secret in text for text in readable(value)), "the secret travels in a cookie"
    # It is on the page answering the post itself, with the warning, and not cacheable.
    page = responses[0]
    assert page.status_code == 200 and secret in page.content.decode() and COPY_NOW in page.content.decode()
    assert "no-store" in page["Cache-Control"]


def test_a_new_api_key_is_shown_on_the_page_and_never_in_a_cookie(merchant):
    responses = through_the_browser(
        merchant, "post", reverse("admin:payments_gateway_apikey_add"), {"name": "shop", "scopes": ["read"]}
    )
    (raw,) = {key for r in responses for key in re.findall(r"pgk_[A-Za-z0-9_-]{20,}", r.content.decode())}
    assert APIKey.objects.get_active(raw) == APIKey.objects.get(name="shop")
    assert_shown_once_never_in_a_cookie(responses, raw)
    assert reverse("admin:payments_gateway_apikey_changelist") in responses[0].content.decode()  # the way back


def test_a_new_webhook_endpoints_secret_is_shown_on_the_page_and_never_in_a_cookie(merchant):
    url = "http://127.0.0.1:9/hooks"
    add = reverse("admin:payments_gateway_webhookendpoint_add")
    responses = through_the_browser(merchant, "post", add, {"url": url, "description": "", "active": "on"})
    endpoint = WebhookEndpoint.objects.get(url=url)
    assert_shown_once_never_in_a_cookie(responses, endpoint.secret)


def test_a_rotated_secret_is_shown_on_the_page_and_never_in_a_cookie(merchant):
    endpoints = [WebhookEndpoint.objects.create(url=f"http://127.0.0.1:9/hooks/{n}") for n in range(2)]
    old = [e.secret for e in endpoints]
    changelist = reverse("admin:payments_gateway_webhookendpoint_changelist")
    responses = through_the_browser(
        merchant, "post", changelist, {"action": "rotate_secret", "_selected_action": [e.pk for e in endpoints]}
    )
    for endpoint, previous in zip(endpoints, old, strict=True):
        endpoint.refresh_from_db()
        assert endpoint.secret != previous and endpoint.previous_secret == previous
        assert_shown_once_never_in_a_cookie(responses, endpoint.secret)
        assert endpoint.url in responses[0].content.decode()
        assert previous not in responses[0].content.decode()  # the old one is the receiver's to keep, not shown
