"""Telling the open checkout pages that their session changed (the push channel's sending half; the pages' half
is ``views/live.py``).

Every save of an existing :class:`~payments_gateway.models.CheckoutSession` (the scanner's ``refresh_session``
saves each session a range touched, the expiry, the customer's choices) calls :func:`session_changed`, wired in
``AppConfig.ready()``; a session's creation does not (no page can be open for it yet).
What it does depends on :func:`push_backend`:

- ``"redis"`` (``PUSH_REDIS_URL`` set): ``PUBLISH`` of the session's uuid once the transaction commits;
- ``"postgres"``: ``pg_notify`` inside the transaction: PostgreSQL delivers it on commit, and never for a
  transaction that rolls back;
- ``"poll"`` (SQLite): nothing to send; each web process reads the ``updated`` time of the sessions its pages show,
  in one query per tick.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from django.db import connection, transaction

from ..conf import gateway_settings

logger = logging.getLogger(__name__)

#: The PostgreSQL NOTIFY channel and the Redis pub/sub channel; the payload is the session's uuid.
CHANNEL = "payments_gateway_sessions"


def push_backend() -> str:
    """How pages are woken: "redis" when ``PUSH_REDIS_URL`` is set, else "postgres" on PostgreSQL, else "poll"."""
    if gateway_settings.PUSH_REDIS_URL:
        return "redis"
    return "postgres" if connection.vendor == "postgresql" else "poll"


def session_changed(uuid: Any) -> None:
    """Wake the open pages of session ``uuid`` when the current transaction commits (at once outside one)."""
    backend = push_backend()
    if backend == "postgres":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(uuid)])
    elif backend == "redis":
        transaction.on_commit(functools.partial(_publish, gateway_settings.PUSH_REDIS_URL, str(uuid)))


def on_session_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` receiver of CheckoutSession. A session just created has no open page to wake."""
    if not kwargs.get("created"):
        session_changed(instance.uuid)


def _publish(url: str, uuid: str) -> None:
    try:
        _redis(url).publish(CHANNEL, uuid)
    except Exception as exc:  # the state is committed; a page not woken sees it at its next reconnect
        logger.warning("push channel: publishing to Redis failed: %s", exc)


@functools.lru_cache(maxsize=4)
def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
