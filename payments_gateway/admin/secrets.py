"""Showing a new secret once (an API key, a webhook signing secret): on the page that answers the admin's request.

Never through Django's messages framework: its cookie storage (the first choice of the default storage) carries
messages in a cookie that is signed, not encrypted, so the secret would travel back and forth readable by anything
that sees the browser's cookies (a proxy log, a shared machine, an extension). Nothing is kept to show it again,
and the page is marked not to be cached.
"""

from __future__ import annotations

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

TEMPLATE = "admin/payments_gateway/secret_shown_once.html"


def secret_page(
    request: HttpRequest,
    admin_site: AdminSite,
    *,
    title: str,
    intro: str,
    secrets: list[tuple[str, str]],
    back_url: str,
    back_label: str,
) -> TemplateResponse:
    """The page showing ``secrets`` (label, secret) once, with the warning and a link back to ``back_url``."""
    context = {
        **admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "secrets": secrets,
        "back_url": back_url,
        "back_label": back_label,
    }
    response = TemplateResponse(request, TEMPLATE, context)
    add_never_cache_headers(response)
    return response
