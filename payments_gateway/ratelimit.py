"""One rate limiter for the app's public actions, on Django's cache framework: ``limit`` requests per ``window``
seconds per client, then 429 with ``Retry-After``.

It replaces hand-rolled counters (a dict in the process, a counter row per client in the database): the counts
live in the cache named by ``PAYMENTS_GATEWAY["RATE_LIMIT_CACHE"]`` (default ``"default"``), with the cache's own
expiry. Django's default cache, ``LocMemCache``, is **per process**: with several web processes each counts on
its own, so a client gets up to that many times the limit. A deployment with several processes or machines
points the setting at a shared cache, e.g. ``django.core.cache.backends.redis.RedisCache``.

A window opens with a client's first request and lasts ``window`` seconds; its end is stored beside the count, so
``Retry-After`` is exact and backends whose ``incr`` resets the expiry (database, file) cannot stretch it.

Who is "a client": the request's address (``REMOTE_ADDR``; behind a reverse proxy, have the proxy's trusted header
copied into it) together with the session the request acts on, taken from the URL (a checkout session's or an
order's uuid), so that customers sharing one address (an office, a mobile carrier's NAT) do not share a limit.
Never the Django session cookie: a client that drops its cookies would get a fresh count with each request.

Use it as a decorator, on a plain view, an async view or a DRF view alike::

    @rate_limit("hosted-page", limit=30, window=600)
    def cancel(request, uuid): ...

    class StatusView(APIView):
        @method_decorator(rate_limit("status", limit=120, window=60))
        def get(self, request, uuid): ...

A refused request never reaches the view, so it writes nothing.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.translation import gettext

from .conf import gateway_settings

KEY_PREFIX = "payments_gateway:ratelimit"


def rate_limit(
    scope: str, *, limit: int, window: int, key: Callable[[HttpRequest, dict[str, Any]], str] | None = None
) -> Callable:
    """Decorate a view: at most ``limit`` requests per ``window`` seconds per client (see :func:`client_key`,
    or pass ``key(request, view_kwargs)``) in ``scope``; beyond it, 429 with ``Retry-After``.

    Views sharing a ``scope`` share one count per client.
    """
    key = key or client_key

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        # An async view (the checkout page's stream): counted in an executor thread (never one per request).
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
                retry_after = await sync_to_async(hit, thread_sensitive=False)(
                    scope, key(request, kwargs), limit=limit, window=window
                )
                if retry_after is not None:
                    return too_many_requests(request, retry_after)
                return await view(request, *args, **kwargs)

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            retry_after = hit(scope, key(request, kwargs), limit=limit, window=window)
            if retry_after is not None:
                return too_many_requests(request, retry_after)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def hit(scope: str, client: str, *, limit: int, window: int, now: float | None = None) -> int | None:
    """Count one request of ``client`` in ``scope``. Returns None when it is within ``limit`` for the current
    window, else the whole seconds until the window ends (for ``Retry-After``)."""
    cache = caches[gateway_settings.RATE_LIMIT_CACHE]
    now = time.time() if now is None else now
    anchor = f"{KEY_PREFIX}:{scope}:{hashlib.sha256(client.encode()).hexdigest()[:32]}"
    end = cache.get(anchor)
    if end is None or end <= now:
        if end is not None:
            cache.delete(anchor)  # ended, but not yet evicted
        # The first request opens the window. Of two processes racing here one add wins, and both read its end.
        cache.add(anchor, now + window, timeout=window)
        end = cache.get(anchor, now + window)
    left = max(1, math.ceil(end - now))
    counter = f"{anchor}:{int(end * 1000)}"
    if cache.add(counter, 1, timeout=left):
        count = 1
    else:
        try:
            count = cache.incr(counter)
        except ValueError:  # expired between the add and the incr: a new window
            cache.add(counter, 1, timeout=left)
            count = 1
    return None if count <= limit else left


def client_key(request: HttpRequest, view_kwargs: dict[str, Any]) -> str:
    """The client's address and what the request acts on (the URL's arguments, e.g. a session's uuid)."""
    acted_on = ",".join(f"{name}={value}" for name, value in sorted(view_kwargs.items()))
    return f"{request.META.get('REMOTE_ADDR', '')}|{acted_on}"


def too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    """429 with ``Retry-After``: a short page for a browser, the API's JSON error shape for anything else."""
    message = gettext("Too many requests. Please try again in %(seconds)s seconds.") % {"seconds": retry_after}
    if request.get_preferred_type(["application/json", "text/html"]) == "text/html":
        response = HttpResponse(f"<!doctype html><title>429</title><p>{message}</p>", status=429)
    else:
        response = JsonResponse({"error": {"status": 429, "code": "rate_limited", "message": message}}, status=429)
    response["Retry-After"] = str(retry_after)
    return response
