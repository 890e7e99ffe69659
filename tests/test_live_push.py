"""The checkout page's push channel on a real ASGI server (uvicorn, the ``live_server`` fixture): a stream that is
open when the session's state commits receives the new state, woken by the change itself — PostgreSQL
LISTEN/NOTIFY on PostgreSQL, one shared poller per process on SQLite, Redis pub/sub when ``PUSH_REDIS_URL`` is set.
Unknown sessions are 404; a client opening stream after stream for one session gets 429."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
import uuid
from urllib.parse import urlsplit

import pytest
import redis
import requests
from django.db import connection

from payments_gateway.services.live import push_backend
from payments_gateway.services.payments import refresh_session
from payments_gateway.views.security import STREAM_LIMIT
from tests.factories import make_session, make_transfer

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_URL = "redis://127.0.0.1:6379/6"  # this branch's Redis database


class Stream:
    """``GET /pay/<uuid>/events`` read in a thread over a plain socket (a browser's EventSource would do the same;
    closing it is instant); :meth:`next` is the next ``status`` event's data."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.events: queue.Queue = queue.Queue()
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=60)
        self.sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
                          "Connection: close\r\n\r\n".encode())  # fmt: skip
        self.lines = self.sock.makefile("r", encoding="utf-8", newline="\n")
        status = self.lines.readline()
        assert " 200 " in status, status
        headers = []
        while (line := self.lines.readline().strip()) != "":
            headers.append(line.lower())
        assert "content-type: text/event-stream" in headers
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.lines:
                if line.startswith("data: "):
                    self.events.put(json.loads(line[len("data: ") :]))
        except (OSError, ValueError):  # closed by the test
            pass

    def next(self) -> dict:
        return self.events.get(timeout=60)  # a bound against a hang, not a timing assertion

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def pay_in_full(session) -> None:
    make_transfer(session, session.amount_due, status="detected")
    refresh_session(session.pk)


def streams_see_the_payment(live_server) -> None:
    session = make_session()
    pages = [Stream(f"{live_server.url}/pay/{session.uuid}/events") for _ in range(3)]
    try:
        assert all(page.next()["payment_status"] == "unpaid" for page in pages)
        pay_in_full(session)  # committed here, in another thread and connection than the server's
        assert all(page.next()["payment_status"] == "pending" for page in pages)
    finally:
        for page in pages:
            page.close()


def test_open_pages_receive_the_committed_state_change_from_the_database(live_server, test_gateway):
    assert push_backend() == ("postgres" if connection.vendor == "postgresql" else "poll")
    streams_see_the_payment(live_server)


def test_open_pages_receive_the_change_by_redis_pub_sub(live_server, test_gateway, settings):
    settings.PAYMENTS_GATEWAY = test_gateway | {"PUSH_REDIS_URL": REDIS_URL}
    assert push_backend() == "redis"
    published = redis.Redis.from_url(REDIS_URL).pubsub()
    published.subscribe("payments_gateway_sessions")
    published.get_message(timeout=5)  # the subscription's confirmation
    streams_see_the_payment(live_server)
    message = published.get_message(timeout=10)
    assert message and message["type"] == "message"  # the change really went through Redis
    published.close()


def test_a_stream_of_an_unknown_session_is_404(live_server, test_gateway):
    response = requests.get(f"{live_server.url}/pay/{uuid.uuid4()}/events", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_client_opening_stream_after_stream_for_one_session_is_rate_limited(live_server, test_gateway):
    session, other = make_session(), make_session()
    url = f"{live_server.url}/pay/{session.uuid}/events"
    for _ in range(STREAM_LIMIT):
        with requests.get(url, stream=True, timeout=30) as response:
            assert response.status_code == 200
    refused = requests.get(url, stream=True, timeout=30, headers={"Accept": "application/json"})
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert refused.json()["error"]["code"] == "rate_limited"
    # Another session's page in the same browser is not affected.
    with requests.get(f"{live_server.url}/pay/{other.uuid}/events", stream=True, timeout=30) as response:
        assert response.status_code == 200
