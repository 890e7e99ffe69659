"""What every hosted page (payment, refund and subscription pages) shares: the shop's branding, the
language switcher and the theme stylesheet. A page renders ``payments_gateway/base.html`` (extends it) with
:func:`page_context` and is decorated with :func:`hosted_page` (security headers + language)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_GET

from ..conf import gateway_settings
from ..i18n import LanguageChoice, gateway_language, switcher_links, with_language
from .security import hosted_page_headers

THEME_MAX_AGE = 300  # seconds: a changed accent colour shows within minutes, the stylesheet is not refetched per page


def hosted_page(*, remember_language: bool = False) -> Callable:
    """Decorate a hosted-page view: the pages' security headers, and the customer's language (a ``?lang=``
    switch is remembered in a cookie when ``remember_language``: the HTML pages)."""

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        return hosted_page_headers(gateway_language(remember=remember_language)(view))

    return decorate


def page_context(request: HttpRequest) -> dict[str, Any]:
    """The base template's context: branding, the language and its switcher, a message for an unknown ``?lang=``."""
    choice: LanguageChoice = getattr(request, "gateway_language", LanguageChoice(translation.get_language() or "en"))
    return {
        "branding": gateway_settings.CHECKOUT_BRANDING,
        "theme_url": reverse("payments_gateway:checkout-theme") if gateway_settings.CHECKOUT_BRANDING.accent_color
        else "",
        "language": choice.code,
        "languages": switcher_links(request, choice.code),
        "language_error": choice.error,
    }  # fmt: skip


def back_to_page(request: HttpRequest, session: Any, query: str = "") -> str:
    """The URL of ``session``'s page to redirect a form's answer to (see :func:`in_posted_language`)."""
    return in_posted_language(
        request, reverse("payments_gateway:checkout", args=[session.uuid]) + (f"?{query}" if query else "")
    )


def in_posted_language(request: HttpRequest, url: str) -> str:
    """``url`` of a hosted page to redirect a form's answer to: with ``?lang=`` when the form was posted with one
    (the pages' forms are), so the page that shows the outcome speaks the same language."""
    choice = getattr(request, "gateway_language", None)
    return with_language(url, choice.code) if choice is not None and choice.switched else url


@hosted_page_headers
@require_GET
def theme(request: HttpRequest) -> HttpResponse:
    """``GET /pay/theme.css``: the accent colour of ``CHECKOUT_BRANDING`` as CSS variables (a stylesheet of our
    own origin, as the pages' Content-Security-Policy allows no inline style)."""
    branding = gateway_settings.CHECKOUT_BRANDING
    css = ""
    if branding.accent_color:
        css = f":root {{ --accent: {branding.accent_color}; --on-accent: {branding.text_on_accent}; }}\n"
    response = HttpResponse(css, content_type="text/css; charset=utf-8")
    response["Cache-Control"] = f"public, max-age={THEME_MAX_AGE}"
    return response
