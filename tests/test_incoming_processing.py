"""Processing an incoming event: the handler runs outside any transaction, between a short claim and a short
record of its outcome, so other processes keep writing while it waits on the network."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from payments_gateway.conf import gateway_settings
from payments_gateway.models import WebhookEvent, WebhookEventStatus, WebhookRequest
from payments_gateway.webhooks.incoming.processing import LEASE, process_event, retry_due_events, store_event

from . import incoming_helpers as h
from .factories import make_incoming_event

pytestmark = pytest.mark.django_db(transaction=True)

HANDLER = "tests.test_incoming_processing.handler"
SEEN: list[dict] = []  # what the handler observed, one dict per call
BEHAVIOUR: list = []  # what the next calls of the handler do (a callable each); empty: return "ok"


def handler(event, payload):
    """Test handler: notes whether it runs in a transaction, then does what the test queued for this call."""
    SEEN.append({"in_transaction": transaction.get_connection().in_atomic_block, "attempts": event.attempts})
    if BEHAVIOUR:
        return BEHAVIOUR.pop(0)(event)
    return "ok"


@pytest.fixture(autouse=True)
def source(settings):
    spec = {"scheme": "standard", "secrets": [h.PARTNER_SECRET], "handler": HANDLER}
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_SOURCES": {"partner": spec}}
    SEEN.clear()
    BEHAVIOUR.clear()
    yield
    BEHAVIOUR.clear()


def stored_event(event_id="evt_1"):
    return make_incoming_event(event_id=event_id, body=h.envelope(event_id))


def in_another_thread(work):
    """Run ``work()`` on another thread, with its own database connection that gives up on a lock after 0.2 s
    instead of waiting 30 s (so a lock held by this thread fails the test at once); returns its exception."""
    errors = []

    def run():
        try:
            connection.ensure_connection()
            with connection.cursor() as cursor:
                if connection.vendor == "sqlite":
                    cursor.execute("PRAGMA busy_timeout = 200")
                else:
                    cursor.execute("SET lock_timeout = '200ms'")
            work()
        except Exception as exc:  # reported to the test
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return errors


def test_while_the_handler_runs_other_connections_write_without_waiting():
    event = stored_event()

    def receiver_stores_another_event(event):
        # What the web server does meanwhile: store a new event and log its request (the receiver's path).
        attempt = WebhookRequest(source="partner", body=h.envelope("evt_2"), valid=True, headers={})
        return repr(in_another_thread(lambda: store_event(attempt, event_id="evt_2", event_type="payment.completed")))

    BEHAVIOUR.append(receiver_stores_another_event)
    assert process_event(event.pk).startswith("processed")

    event.refresh_from_db()
    assert event.result == "[]"  # the other connection's write did not fail with "database is locked"
    assert WebhookEvent.objects.filter(event_id="evt_2").exists()
    assert WebhookRequest.objects.get().event.event_id == "evt_2"
    assert SEEN == [{"in_transaction": False, "attempts": 1}]
    assert event.status == WebhookEventStatus.PROCESSED and event.attempts == 1 and event.next_attempt_at is None


def test_a_handler_that_raises_leaves_the_event_failed_with_its_traceback_for_a_retry():
    event = stored_event()
    now = timezone.now()

    def crash(event):
        raise RuntimeError("upstream said no")

    BEHAVIOUR.append(crash)
    assert process_event(event.pk, now=now).startswith("failed")
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.FAILED and event.attempts == 1
    assert "Traceback" in event.result and "RuntimeError: upstream said no" in event.result
    first_wait = gateway_settings.WEBHOOK_INCOMING_RETRY_SCHEDULE[0]
    assert event.next_attempt_at == now + timedelta(seconds=first_wait)

    assert retry_due_events(now=event.next_attempt_at) == 1
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.PROCESSED and event.result == "ok" and event.attempts == 2


def test_an_event_whose_worker_died_is_left_alone_until_its_lease_ends_then_fails_and_is_retried():
    event = stored_event()
    now = timezone.now()

    def die(event):
        raise SystemExit("the worker is stopped mid-handler")  # not an Exception: nothing records the outcome

    BEHAVIOUR.append(die)
    with pytest.raises(SystemExit):
        process_event(event.pk, now=now)
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.RECEIVED and event.attempts == 1
    assert event.next_attempt_at == now + LEASE and event.result.startswith("Processing: attempt 1 started")

    # While the lease lasts, nobody else runs it: not the task queued twice, not the sweep, not an admin reprocess.
    later = now + LEASE - timedelta(seconds=1)
    assert process_event(event.pk, now=later) == "skipped: being processed by another worker"
    assert process_event(event.pk, now=later, force=True) == "skipped: being processed by another worker"
    assert retry_due_events(now=later) == 0
    assert len(SEEN) == 1

    # Then the attempt counts as failed, and the event is retried on the schedule like any failure.
    lease_end = now + LEASE
    assert retry_due_events(now=lease_end) == 1
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.FAILED and event.attempts == 1
    assert event.result.startswith("Attempt 1 did not finish: its worker stopped before its lease ran out")
    assert event.next_attempt_at == lease_end + timedelta(seconds=gateway_settings.WEBHOOK_INCOMING_RETRY_SCHEDULE[0])
    assert len(SEEN) == 1
    assert retry_due_events(now=event.next_attempt_at) == 1
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.PROCESSED and event.attempts == 2 and len(SEEN) == 2


def test_a_worker_that_outlives_its_lease_does_not_overwrite_the_outcome_of_the_worker_that_took_over():
    event = stored_event()
    now = timezone.now()
    returned = []

    def slow_then_taken_over(event):
        # While this (first) worker is still in its handler, its lease ends and an admin reprocess runs it again.
        returned.append(process_event(event.pk, now=now + LEASE, force=True))
        return "late first worker"

    BEHAVIOUR.append(slow_then_taken_over)
    assert process_event(event.pk, now=now) == "processed, not recorded (lease lost): partner:evt_1"
    assert returned == ["processed: partner:evt_1"]
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.PROCESSED and event.result == "ok" and event.attempts == 2
    assert event.processed_at == now + LEASE
