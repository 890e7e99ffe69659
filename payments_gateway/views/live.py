"""The checkout page's push channel, ``GET /pay/<uuid>/events`` (Server-Sent Events), served asynchronously.

Under ASGI an open page costs a coroutine and a waiter, never a thread: the stream sleeps until its session
changes. Each process (each event loop) has one :class:`Hub` holding the waiters of its open pages by session, and
one listener that wakes them, chosen by :func:`~payments_gateway.services.live.push_backend`:

- PostgreSQL: ``LISTEN`` on its own psycopg async connection (the sending half NOTIFYs on commit);
- Redis (``PUSH_REDIS_URL``): a pub/sub subscription;
- SQLite: one poller per process reading the ``updated`` time of every watched session in one query per
  :data:`POLL_SECONDS`, only while pages are open.

A listener that loses its connection wakes every page (each re-reads its session) and reconnects. Under WSGI the
view still works: the stream is a plain generator that re-reads the session every second (that holds a thread per
open page, which is why the example shop serves ``example_shop.asgi``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection
from django.utils import translation

from ..models import CheckoutSession, SessionStatus
from ..services.live import CHANNEL, push_backend
from ..services.payments import expire_if_due
from .presentation import checkout_state

logger = logging.getLogger(__name__)

#: An async stream ends after this long (the browser's EventSource reconnects after RETRY_MS).
LIVE_STREAM_SECONDS = 300
#: The WSGI fallback re-reads the session this often and ends sooner: it holds a worker thread.
POLL_SECONDS_WSGI, WSGI_STREAM_SECONDS = 1, 30
RETRY_MS = 2000
#: The SQLite poller's tick (one query for every session watched by this process).
POLL_SECONDS = 0.1
#: A comment line this often: a proxy keeps the connection, and the server notices a page that went away.
KEEPALIVE_SECONDS = 15
#: How often a listener checks whether any page is still open (it disconnects when none is).
IDLE_CHECK_SECONDS = 1.0
#: Seconds before a listener that failed tries to reconnect.
RECONNECT_SECONDS = 1.0


async def async_stream(session: CheckoutSession, language: str | None) -> AsyncIterator[str]:
    """The SSE stream of ``session`` for an ASGI server: a ``status`` event now and at each change."""
    hub = Hub.current()
    waiter = hub.watch(str(session.uuid), session.updated)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        deadline = time.monotonic() + LIVE_STREAM_SECONDS
        last: dict[str, Any] | None = None
        while True:
            waiter.clear()  # a change from here on wakes the wait below
            session, state = await hub.read(str(session.uuid), session.pk, language)
            event, last = _status_event(state, last)
            if event:
                yield event
            if session.status != SessionStatus.OPEN or time.monotonic() >= deadline:
                return
            # Read again when woken, when the session is due to expire (expiry happens on read) or the stream ends;
            # in between, only a keep-alive line (no read: thousands of idle pages cost no queries).
            until = min(deadline, time.monotonic() + max(state["seconds_left"], 0) + 0.5)
            while (left := until - time.monotonic()) > 0:
                try:
                    await asyncio.wait_for(waiter.wait(), timeout=min(left, KEEPALIVE_SECONDS))
                    break
                except TimeoutError:
                    yield ": keep-alive\n\n"
    finally:
        hub.unwatch(str(session.uuid), waiter)


def sync_stream(pk: int, language: str | None) -> Iterator[str]:
    """The SSE stream for a WSGI server (a thread per page): re-reads the session every second for 30 s."""
    yield f"retry: {RETRY_MS}\n\n"
    deadline = time.monotonic() + WSGI_STREAM_SECONDS
    last: dict[str, Any] | None = None
    while True:
        session, state = _read(pk, language)
        event, last = _status_event(state, last)
        if event:
            yield event
        if session.status != SessionStatus.OPEN or time.monotonic() >= deadline:
            return
        time.sleep(POLL_SECONDS_WSGI)


def _status_event(state: dict[str, Any], last: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """The ``status`` event of ``state`` ("" when nothing but the countdown changed since ``last``), and what to
    compare the next state with."""
    changed = {k: v for k, v in state.items() if k != "seconds_left"}
    return (f"event: status\ndata: {json.dumps(state)}\n\n" if changed != last else ""), changed


def _read(pk: int, language: str | None) -> tuple[CheckoutSession, dict[str, Any]]:
    session = expire_if_due(CheckoutSession.objects.select_related("order", "deposit_address").get(pk=pk))
    with translation.override(language):
        return session, checkout_state(session)


def read_closing(function: Any, *args: Any) -> Any:
    """``function(*args)`` in an executor thread of the event loop, then that thread's database connection closed:
    those threads serve every page and outlive requests, so nothing else would ever close it."""
    try:
        return function(*args)
    finally:
        connection.close()


class Hub:
    """The open pages of one event loop, by session uuid, and the one listener that wakes them."""

    _hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()

    @classmethod
    def current(cls) -> Hub:
        loop = asyncio.get_running_loop()
        if loop not in cls._hubs:
            cls._hubs[loop] = cls()
        return cls._hubs[loop]

    def __init__(self) -> None:
        self.waiters: dict[str, set[asyncio.Event]] = {}
        self.known: dict[str, Any] = {}  # the poller's last seen ``updated`` per session
        self.backend = ""
        # One read per session, language and wake, shared by every page of the session that it wakes.
        self.generation: dict[str, int] = {}
        self._reads: dict[tuple[str, str | None, int], asyncio.Future] = {}
        self._counter = itertools.count(1)
        self._listener: asyncio.Task | None = None
        self._someone = asyncio.Event()  # the poller sleeps while no page is open

    def watch(self, uuid: str, updated: Any) -> asyncio.Event:
        waiter = asyncio.Event()
        self.waiters.setdefault(uuid, set()).add(waiter)
        self.known.setdefault(uuid, updated)
        self.generation[uuid] = next(self._counter)  # a new page never takes a read started before it opened
        self._someone.set()
        backend = push_backend()
        if self._listener is None or self._listener.done() or backend != self.backend:
            if self._listener is not None:
                self._listener.cancel()  # the settings changed (a test's override_settings)
            self.backend = backend
            self._listener = asyncio.get_running_loop().create_task(self._listen())
        return waiter

    def unwatch(self, uuid: str, waiter: asyncio.Event) -> None:
        waiting = self.waiters.get(uuid, set())
        waiting.discard(waiter)
        if not waiting:
            self.waiters.pop(uuid, None)
            self.known.pop(uuid, None)
            self.generation.pop(uuid, None)
        if not self.waiters:
            self._someone.clear()

    async def read(self, uuid: str, pk: int, language: str | None) -> tuple[CheckoutSession, dict[str, Any]]:
        """The session and its page state, read once for all the pages of ``uuid`` in ``language`` that the same
        change woke (a read started before the latest wake is never reused: its key has an older generation)."""
        key = (uuid, language, self.generation.get(uuid, 0))
        future = self._reads.get(key)
        if future is None:
            future = asyncio.ensure_future(sync_to_async(read_closing, thread_sensitive=False)(_read, pk, language))
            self._reads[key] = future
            future.add_done_callback(lambda _: self._reads.pop(key, None))
        return await asyncio.shield(future)

    def wake(self, uuid: str) -> None:
        self.generation[uuid] = next(self._counter)
        for waiter in self.waiters.get(uuid, ()):
            waiter.set()

    def wake_all(self) -> None:
        for uuid in list(self.waiters):
            self.wake(uuid)

    async def _listen(self) -> None:
        listen = {"postgres": self._listen_postgres, "redis": self._listen_redis, "poll": self._poll}[self.backend]
        while True:
            await self._someone.wait()  # no connection is held while no page is open
            try:
                await listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("push channel (%s): %s; pages re-read their session, reconnecting", self.backend, exc)
                self.wake_all()  # whatever was missed meanwhile is read again
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen_postgres(self) -> None:
        import psycopg

        # Django's own parameters (sslmode and the other OPTIONS included), without its sync cursor and adapters.
        params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
        conn = await psycopg.AsyncConnection.connect(
            autocommit=True, **params | {"application_name": "payments_gateway push"}
        )
        async with conn:
            await conn.execute(f"LISTEN {CHANNEL}")
            self.wake_all()  # changes made before LISTEN took effect
            while self.waiters:
                async for notify in conn.notifies(timeout=IDLE_CHECK_SECONDS):
                    self.wake(notify.payload)

    async def _listen_redis(self) -> None:
        import redis.asyncio

        from ..conf import gateway_settings

        client = redis.asyncio.Redis.from_url(gateway_settings.PUSH_REDIS_URL)
        try:
            pubsub = client.pubsub()
            await pubsub.subscribe(CHANNEL)
            self.wake_all()
            while self.waiters:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=IDLE_CHECK_SECONDS)
                if message and message.get("type") == "message":
                    data = message["data"]
                    self.wake(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            await client.aclose()

    async def _poll(self) -> None:
        while self.waiters:
            watched = list(self.waiters)
            rows = await sync_to_async(read_closing, thread_sensitive=False)(_updated_times, watched)
            for uuid, updated in rows.items():
                if self.known.get(uuid) != updated:
                    self.known[uuid] = updated
                    self.wake(uuid)
            await asyncio.sleep(POLL_SECONDS)


def _updated_times(uuids: list[str]) -> dict[str, Any]:
    """``{uuid: updated}`` of the sessions ``uuids``, in one query per 500."""
    found: dict[str, Any] = {}
    for start in range(0, len(uuids), 500):
        rows = CheckoutSession.objects.filter(uuid__in=uuids[start : start + 500]).values_list("uuid", "updated")
        found |= {str(uuid): updated for uuid, updated in rows}
    return found
