"""The incoming-webhook log is bounded: a refused stranger's request keeps only an excerpt, and the purge forgets
every log row after ``WEBHOOK_LOG_RETENTION`` (processed events too, once nothing has mentioned them for as long)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from payments_gateway import tasks
from payments_gateway.conf import gateway_settings
from payments_gateway.models import WebhookEvent, WebhookEventStatus, WebhookRequest
from payments_gateway.schedules import SCHEDULES, ensure_schedules
from payments_gateway.webhooks.incoming.processing import purge_old_logs
from payments_gateway.webhooks.incoming.views import UNVERIFIED_EXCERPT

from . import incoming_helpers as h

pytestmark = pytest.mark.django_db

FULL = 256 * 1024  # the largest body the receiver reads (WEBHOOK_MAX_BODY)


@pytest.fixture(autouse=True)
def sources(settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_SOURCES": h.SOURCES}


def _stored_bytes() -> int:
    rows = WebhookRequest.objects.values_list("body", "headers")
    return sum(len(bytes(body)) + len(json.dumps(headers)) for body, headers in rows)


def test_a_flood_of_unknown_sources_and_bad_signatures_keeps_only_excerpts(client):
    body = h.envelope(pad="x" * FULL)[:FULL]
    junk = {"X-Junk": "j" * 8000}  # headers are as much the stranger's as the body
    for n in range(100):
        assert client.post(f"/webhooks/nobody-{n}/", body, "application/json", headers=junk).status_code == 404
        forged = h.standard_headers(body, secret="whsec_" + "A" * 44) | junk
        assert client.post("/webhooks/partner/", body, "application/json", headers=forged).status_code == 401

    # Every request is still in the audit log, but not what the strangers sent: 200 × 256 KB would be 50 MB.
    assert WebhookRequest.objects.count() == 200
    assert _stored_bytes() <= 200 * 2 * 1024
    assert set(WebhookRequest.objects.values_list("body_size", flat=True)) == {FULL}
    refused = WebhookRequest.objects.filter(source="partner").first()
    assert bytes(refused.body) == body[:UNVERIFIED_EXCERPT]
    assert refused.headers["X-Junk"] == "j" * UNVERIFIED_EXCERPT + "…"


def test_a_verified_request_keeps_its_whole_body_even_when_refused_later(client):
    body = h.envelope("evt_form", pad="x" * 1000)
    response = client.post("/webhooks/partner/", body, "text/plain", headers=h.standard_headers(body))
    assert response.status_code == 400  # signed by the source, but not JSON: the sender's bug, kept to debug it
    attempt = WebhookRequest.objects.get()
    assert attempt.valid and bytes(attempt.body) == body and attempt.body_size == len(body)


def test_the_admin_says_that_only_an_excerpt_is_kept(admin_client, client):
    client.post("/webhooks/nobody/", b"y" * 1000, "application/json")
    attempt = WebhookRequest.objects.get()
    page = admin_client.get(f"/admin/payments_gateway/webhookrequest/{attempt.pk}/change/").content.decode()
    assert f"Only the first {UNVERIFIED_EXCERPT} of 1000 bytes are kept" in page
    assert "y" * UNVERIFIED_EXCERPT in page and "y" * (UNVERIFIED_EXCERPT + 1) not in page


def _event(event_id: str, status: str, received_at) -> WebhookEvent:
    return WebhookEvent.objects.create(
        source="partner", event_id=event_id, type="payment.completed", body=b"{}", status=status,
        received_at=received_at,
    )  # fmt: skip


def _request(received_at, event: WebhookEvent | None = None) -> WebhookRequest:
    return WebhookRequest.objects.create(source="partner", received_at=received_at, body=b"x", event=event)


def test_the_purge_forgets_what_is_older_than_the_retention_and_keeps_the_rest():
    now = timezone.now()
    retention = gateway_settings.WEBHOOK_LOG_RETENTION
    assert retention == timedelta(days=30)  # the default
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    old_request, recent_request = _request(old), _request(recent)
    forgotten = _event("evt_done", WebhookEventStatus.PROCESSED, old)
    _request(old, forgotten)
    # The sender still mentioned it lately (a retry): forgetting it would let the next retry be processed again.
    still_retried = _event("evt_retried", WebhookEventStatus.PROCESSED, old)
    _request(old, still_retried), _request(recent, still_retried)
    failed = _event("evt_failed", WebhookEventStatus.FAILED, old)  # the operator still has to look at it
    waiting = _event("evt_waiting", WebhookEventStatus.RECEIVED, old)  # not handled yet
    fresh = _event("evt_fresh", WebhookEventStatus.PROCESSED, recent)

    assert purge_old_logs(now=now) == {"requests": 3, "events": 1}

    assert set(WebhookRequest.objects.values_list("received_at", flat=True)) == {recent}
    assert not WebhookRequest.objects.filter(pk=old_request.pk).exists()
    assert WebhookRequest.objects.filter(pk=recent_request.pk).exists()
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {still_retried.pk, failed.pk, waiting.pk, fresh.pk}
    # Run again (the task is periodic, and may run in two workers): nothing more to do.
    assert purge_old_logs(now=now) == {"requests": 0, "events": 0}


def test_the_retention_is_a_setting(settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_LOG_RETENTION": timedelta(days=7)}
    now = timezone.now()
    _request(now - timedelta(days=8)), _request(now - timedelta(days=6))
    assert purge_old_logs(now=now) == {"requests": 1, "events": 0}


def test_the_purge_is_a_scheduled_task():
    _request(timezone.now() - timedelta(days=31))
    name = "payments_gateway.purge_incoming_webhook_logs"
    assert SCHEDULES[name]["func"] == "payments_gateway.tasks.purge_incoming_webhook_logs"
    ensure_schedules()
    assert Schedule.objects.get(name=name).func == "payments_gateway.tasks.purge_incoming_webhook_logs"
    assert tasks.purge_incoming_webhook_logs() == {"requests": 1, "events": 0}
    assert not WebhookRequest.objects.exists()
