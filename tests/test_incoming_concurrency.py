"""Concurrent duplicates: real HTTP requests from 50 threads against a live (threaded) server."""

import pytest
import requests

from payments_gateway.models import Customer, WebhookEvent, WebhookEventStatus, WebhookRequest
from payments_gateway.webhooks.incoming.processing import process_event

from . import incoming_helpers as h
from .concurrency import run_together
from .http_receiver import live_wsgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("webhook_sources")]
N = 50


@pytest.fixture
def server_url():
    with live_wsgi_server() as url:
        yield url


def test_50_concurrent_posts_of_one_event_store_it_once_and_process_it_once(server_url, sync_tasks):
    url = f"{server_url}/webhooks/partner/"
    body = h.envelope("evt_race", "payment.completed")
    # Each request as the sender's retries would be: its own message id and signature.
    headers = [h.standard_headers(body, msg_id=f"msg_{i}") | {"Content-Type": "application/json"} for i in range(N)]

    responses = run_together(N, lambda i: requests.post(url, data=body, headers=headers[i], timeout=120))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200] * (N - 1) + [202], codes
    assert [r.json()["status"] for r in responses].count("accepted") == 1
    event = WebhookEvent.objects.get()
    assert event.event_id == "evt_race" and event.status == WebhookEventStatus.PROCESSED and event.attempts == 1
    assert h.CALLS == [("partner", "evt_race")]
    assert Customer.objects.count() == 1  # the handler's effect happened once
    attempts = WebhookRequest.objects.all()
    assert attempts.count() == N and all(a.valid and a.event_id == event.pk for a in attempts)
    assert sum(a.outcome.startswith("duplicate") for a in attempts) == N - 1


def test_concurrent_workers_on_one_event_run_its_handler_once(server_url):
    body = h.envelope("evt_workers")
    response = requests.post(
        f"{server_url}/webhooks/partner/",
        data=body,
        headers=h.standard_headers(body) | {"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 202
    pk = WebhookEvent.objects.get().pk

    # The task queued twice, a retry sweep and an admin reprocess may all race on one event.
    results = run_together(20, lambda i: process_event(pk))

    assert h.CALLS == [("partner", "evt_workers")]
    assert sum(r.startswith("processed") for r in results) == 1
    assert Customer.objects.count() == 1
    assert WebhookEvent.objects.get().attempts == 1
