"""The language of the gateway's customer-facing pages (and e-mails), chosen without ``LocaleMiddleware``.

A shop may run with one language, or with ``LocaleMiddleware`` set up for its own pages only: the customer of the
payment page still gets it in their language. :func:`choose_language` picks one of :data:`LANGUAGES` (the
languages whose catalogues ship in ``payments_gateway/locale``) from, in order: a ``?lang=`` switcher link, the
language cookie (``settings.LANGUAGE_COOKIE_NAME``, shared with Django's ``set_language``), ``Accept-Language``,
then ``settings.LANGUAGE_CODE`` if it is one of ours, else English. :func:`gateway_language` decorates a view so
it runs (and renders) in that language; e-mail senders use ``translation.override(code)`` the same way.

Amounts are shown with the language's number format (``1.234,5`` in German) but never changed: every digit of the
exact decimal is kept, and machine values (copy buttons, wallet requests) stay in base units or plain decimals.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils import formats, translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation.trans_real import parse_accept_lang_header

#: The shipped languages: code, and its name in that language (what the switcher shows).
LANGUAGES: tuple[tuple[str, str], ...] = (("en", "English"), ("de", "Deutsch"), ("es", "Español"), ("fr", "Français"))
CODES = frozenset(code for code, _name in LANGUAGES)
QUERY_PARAMETER = "lang"
FALLBACK = "en"


@dataclass(frozen=True)
class LanguageChoice:
    """The language a request gets; ``switched``: asked for with ``?lang=`` (remembered in the cookie);
    ``unknown``: a ``?lang=`` value we do not ship (the page says so and uses ``code``)."""

    code: str
    switched: bool = False
    unknown: str = ""

    @property
    def error(self) -> str:
        """The sentence for an unknown ``?lang=`` (in the language used instead), or ``""``."""
        if not self.unknown:
            return ""
        with translation.override(self.code):
            return _("The language “%(requested)s” is not available; this page is shown in %(language)s.") % {
                "requested": self.unknown,
                "language": dict(LANGUAGES)[self.code],
            }


def supported(code: object) -> str | None:
    """The shipped language for ``code`` (``"de-AT"`` → ``"de"``), or None."""
    if not isinstance(code, str) or not code or len(code) > 35:
        return None
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return base if base in CODES else None


def default_language() -> str:
    """``settings.LANGUAGE_CODE`` when we ship it, else English."""
    return supported(getattr(settings, "LANGUAGE_CODE", "")) or FALLBACK


def choose_language(request: HttpRequest) -> LanguageChoice:
    """The language for this request (see the module docstring for the order)."""
    requested = request.GET.get(QUERY_PARAMETER)
    if requested is not None:
        code = supported(requested)
        if code:
            return LanguageChoice(code, switched=True)
        return LanguageChoice(_from_client(request), unknown=requested[:35])
    return LanguageChoice(_from_client(request))


def gateway_language(*, remember: bool = False) -> Callable:
    """Decorate a view: it runs in the chosen language (``request.gateway_language``, a :class:`LanguageChoice`),
    its response says ``Content-Language`` and varies on ``Accept-Language`` and ``Cookie``. ``remember``: a
    ``?lang=`` switch is kept in the language cookie (for the HTML pages)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
                choice = _chosen(request)
                with translation.override(choice.code):
                    response = await view(request, *args, **kwargs)
                return _spoken(response, choice, remember)

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
            choice = _chosen(request)
            with translation.override(choice.code):
                response = view(request, *args, **kwargs)
            return _spoken(response, choice, remember)

        return wrapper

    return decorate


def _chosen(request: HttpRequest) -> LanguageChoice:
    choice = choose_language(request)
    request.gateway_language = choice  # type: ignore[attr-defined]
    return choice


def _spoken(response: HttpResponseBase, choice: LanguageChoice, remember: bool) -> HttpResponseBase:
    """The response with ``Content-Language``, ``Vary`` and, when ``remember``, the language cookie of a switch."""
    response["Content-Language"] = choice.code
    patch_vary_headers(response, ("Accept-Language", "Cookie"))
    if remember and choice.switched:
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            choice.code,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
    return response


def switcher_links(request: HttpRequest, current: str) -> list[dict[str, str | bool]]:
    """The language switcher: each shipped language with the URL of this page in it (other query parameters
    kept) and whether it is the current one."""
    query = {k: v for k, v in request.GET.items() if k != QUERY_PARAMETER}
    return [
        {
            "code": code,
            "name": name,
            "url": f"{request.path}?{urlencode(query | {QUERY_PARAMETER: code})}",
            "current": code == current,
        }
        for code, name in LANGUAGES
    ]


def with_language(url: str, code: str | None = None) -> str:
    """``url`` with ``?lang=<code>`` (the active language by default), so what it serves speaks the same."""
    code = code or translation.get_language() or FALLBACK
    return f"{url}{'&' if '?' in url else '?'}{QUERY_PARAMETER}={code}"


def localize_amount(value: str | Decimal | int | None) -> str:
    """An exact amount (``"1234.5"``, a Decimal) in the active language's number format, every digit kept:
    ``"1,234.5"`` in English, ``"1.234,5"`` in German. ``""`` for None; text that is no number is returned as is."""
    if value is None or value == "":
        return ""
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    return formats.number_format(number, use_l10n=True, force_grouping=True)


def _from_client(request: HttpRequest) -> str:
    cookie = supported(request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME))
    if cookie:
        return cookie
    for code, _quality in parse_accept_lang_header(request.headers.get("Accept-Language", "")):
        if code == "*":
            break
        found = supported(code)
        if found:
            return found
    return default_language()
