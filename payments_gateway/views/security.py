"""The hosted pages' own protections (``/pay/<uuid>/...``): their security headers, and the rate limit of their
public actions.

Headers are set by the app itself whatever the host project's middleware does: the payment page must not depend
on ``SecurityMiddleware`` or ``XFrameOptionsMiddleware`` being installed or configured.

- ``Content-Security-Policy``: scripts, styles, fetches and the SSE stream from this origin only (and from
  ``STATIC_URL``'s origin when static files live on a CDN), images also as ``data:`` URIs (the QR code, wallet
  icons) and from the origin of the shop's logo (``CHECKOUT_BRANDING["logo_url"]``); no inline script or style is
  needed, so none is allowed. The browser wallet is an extension: it needs no origin here. ``form-action`` is left
  out on purpose: the cancel form's answer redirects to the shop's ``cancel_url``, on any origin, and browsers
  apply ``form-action`` to that redirect too.
- ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``: no site can frame the page to trick a click.
- ``Referrer-Policy: same-origin``: the page's URL (which is the payment's capability) never leaves for another
  site, e.g. the shop's success page or an explorer; the success redirect itself needs no referrer.
- ``X-Content-Type-Options: nosniff``.

:data:`hosted_page_action`: anyone holding a payment link can post its forms (customer details, cancel, method
choice, test wallet), so each client may post at most :data:`ACTION_LIMIT` of them per checkout session per
:data:`ACTION_WINDOW` seconds (``payments_gateway.ratelimit``); then 429 with ``Retry-After``.

The page's live status is limited the same way, per client and checkout session: :data:`hosted_page_poll` for
``GET /pay/<uuid>/status`` (the page polls every few seconds without JavaScript's stream) and
:data:`hosted_page_stream` for opening the push channel ``/pay/<uuid>/events`` (a browser reopens it when a
stream ends or drops; a script opening thousands of streams for one session is refused). Both work on
sync and async views alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from ..conf import gateway_settings
from ..ratelimit import rate_limit

# The same for every hosted page; {static} is the static files' origin when it is not this one.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'{static}; style-src 'self'{static}; img-src 'self' data:{logo}; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
# Far more than a customer needs (a form or two, a change of mind), far fewer than a script would send.
ACTION_LIMIT, ACTION_WINDOW = 30, 600

# A page polls every 2 to 10 s: a customer with a few tabs open stays far below these; a scraping loop does not.
POLL_LIMIT, POLL_WINDOW = 120, 60
# An open page reconnects its stream about twice a minute; a few tabs and flaky networks fit in this.
STREAM_LIMIT, STREAM_WINDOW = 20, 60

#: Decorator for the hosted page's public POST actions; they all share one count per client and checkout session.
hosted_page_action = rate_limit("hosted-page-action", limit=ACTION_LIMIT, window=ACTION_WINDOW)
#: Decorator for ``GET /pay/<uuid>/status``.
hosted_page_poll = rate_limit("hosted-page-status", limit=POLL_LIMIT, window=POLL_WINDOW)
#: Decorator for the live status stream ``/pay/<uuid>/events`` (sync or async view).
hosted_page_stream = rate_limit("hosted-page-stream", limit=STREAM_LIMIT, window=STREAM_WINDOW)


def hosted_page_headers(view: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a hosted-page view: its responses carry the headers above, replacing any the project set."""

    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
            return _with_headers(await view(request, *args, **kwargs))

        return async_wrapper

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        return _with_headers(view(request, *args, **kwargs))

    return wrapper


def _with_headers(response: HttpResponseBase) -> HttpResponseBase:
    response["Content-Security-Policy"] = content_security_policy()
    for name, value in HEADERS.items():
        response[name] = value
    return response


def content_security_policy() -> str:
    """The policy, with ``STATIC_URL``'s origin allowed for scripts and styles when it is absolute, and the logo's
    origin for images."""
    parts = urlsplit(settings.STATIC_URL or "")
    static = f" {parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""
    logo = gateway_settings.CHECKOUT_BRANDING.logo_origin
    return CONTENT_SECURITY_POLICY.format(static=static, logo=f" {logo}" if logo else "")
