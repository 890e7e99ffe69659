"""The receiver ``POST /webhooks/<source>/``: answers, the attempt log, storage once, processing in a task."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from payments_gateway.conf import gateway_settings
from payments_gateway.models import Customer, WebhookEvent, WebhookEventStatus, WebhookRequest
from payments_gateway.tasks import process_incoming_webhook, retry_incoming_webhooks
from payments_gateway.webhooks.incoming.processing import process_event, retry_due_events

from . import incoming_helpers as h

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_sources")]


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    def post(source, body, headers=None, content_type="application/json", **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                f"/webhooks/{source}/", data=body, content_type=content_type, headers=headers or {}, **extra
            )

    return post


def signed_post(post, body, **kwargs):
    return post("partner", body, h.standard_headers(body), **kwargs)


# --- accepted -------------------------------------------------------------------------------------------


def test_signed_event_is_stored_logged_and_processed_by_the_task(post, sync_tasks):
    body = h.envelope("evt_1", "payment.completed")
    response = signed_post(post, body, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 202
    assert response.json() == {"status": "accepted", "event": "evt_1"}
    event = WebhookEvent.objects.get()
    assert (event.source, event.event_id, event.type) == ("partner", "evt_1", "payment.completed")
    assert bytes(event.body) == body
    assert event.status == WebhookEventStatus.PROCESSED and event.result == "recorded" and event.attempts == 1
    assert h.CALLS == [("partner", "evt_1")]
    attempt = WebhookRequest.objects.get()
    assert attempt.valid and attempt.status_code == 202 and attempt.event == event
    assert attempt.remote_addr == "203.0.113.9"
    assert bytes(attempt.body) == body
    assert attempt.headers["Webhook-Id"] == "msg_1"


def test_the_view_answers_after_storing_and_queues_the_processing_task(post):
    response = signed_post(post, h.envelope("evt_q"))
    assert response.status_code == 202
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEventStatus.RECEIVED and h.CALLS == []
    queued = OrmQ.objects.get()
    assert queued.func() == "payments_gateway.tasks.process_incoming_webhook"
    assert queued.task["args"] == (event.pk,)
    # A worker runs the queued task.
    process_incoming_webhook(*queued.task["args"])
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.PROCESSED and h.CALLS == [("partner", "evt_q")]


def test_duplicate_answers_200_and_is_not_processed_again(post, sync_tasks):
    body = h.envelope("evt_dup")
    assert signed_post(post, body).status_code == 202
    # The sender retries with the same event (a new signature, a new timestamp).
    response = post("partner", body, h.standard_headers(body, msg_id="msg_retry"))
    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "event": "evt_dup"}
    assert WebhookEvent.objects.count() == 1
    assert h.CALLS == [("partner", "evt_dup")]
    first, second = WebhookRequest.objects.order_by("pk")
    assert second.event_id == first.event_id and second.status_code == 200
    assert second.outcome == f"duplicate of stored event #{first.event_id}"


def test_a_duplicate_with_a_different_body_keeps_the_stored_one(post):
    signed_post(post, h.envelope("evt_x", "payment.completed"))
    response = signed_post(post, h.envelope("evt_x", "payment.failed"))
    assert response.status_code == 200
    assert WebhookEvent.objects.get().type == "payment.completed"
    assert "differs" in WebhookRequest.objects.order_by("pk").last().outcome


def test_events_are_unique_per_source_not_globally(post):
    body = h.envelope("same-id")
    assert signed_post(post, body).status_code == 202
    stamp = str(int(timezone.now().timestamp()))
    headers = {"X-Timestamp": stamp, "X-Signature": h.hmac_hex(h.STAMPED_SECRET, f"{stamp}.".encode() + body)}
    assert post("stamped", body, headers).status_code == 202
    assert sorted(WebhookEvent.objects.values_list("source", flat=True)) == ["partner", "stamped"]


def test_hmac_source_with_id_and_type_in_headers(post):
    body = b'{"zen": "Keep it logically awesome."}'
    headers = {
        "X-Hub-Signature-256": "sha256=" + h.hmac_hex(h.GITHUB_SECRET, body),
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-GitHub-Event": "ping",
    }
    assert post("github", body, headers).status_code == 202
    event = WebhookEvent.objects.get()
    assert (event.event_id, event.type) == ("72d3162e-cc78-11e3-81ab-4c9367dc0958", "ping")


def test_body_of_exactly_the_limit_is_accepted(post, settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_MAX_BODY": 1000}
    body = h.envelope("evt_big", pad="")
    body = h.envelope("evt_big", pad="x" * (1000 - len(body)))
    assert len(body) == 1000
    assert signed_post(post, body).status_code == 202


# --- refused ---------------------------------------------------------------------------------------------


def assert_refused(response, status, message, *, valid):
    assert response.status_code == status, response.content
    assert message in response.json()["error"]
    assert WebhookEvent.objects.count() == 0
    assert h.CALLS == [] and OrmQ.objects.count() == 0 and Customer.objects.count() == 0
    attempt = WebhookRequest.objects.get()
    assert attempt.status_code == status and message in attempt.outcome
    assert attempt.valid is valid and attempt.event is None


def test_missing_signature_is_400(post):
    body = h.envelope()
    headers = h.standard_headers(body)
    del headers["webhook-signature"]
    assert_refused(post("partner", body, headers), 400, "Missing header(s): webhook-signature", valid=False)


def test_bad_signature_is_401(post):
    body = h.envelope()
    headers = h.standard_headers(body, secret="whsec_" + "A" * 44)
    assert_refused(post("partner", body, headers), 401, "No webhook-signature matches", valid=False)


def test_body_changed_after_signing_is_401(post):
    headers = h.standard_headers(h.envelope("evt_1"))
    assert_refused(post("partner", h.envelope("evt_2"), headers), 401, "No webhook-signature", valid=False)


def test_stale_timestamp_is_401(post):
    body = h.envelope()
    headers = h.standard_headers(body, at=timezone.now().timestamp() - 301)
    assert_refused(post("partner", body, headers), 401, "webhook-timestamp is too old", valid=False)


def test_stale_hmac_timestamp_is_401(post):
    body = h.envelope()
    stamp = str(int(timezone.now().timestamp()) + 400)
    headers = {"X-Timestamp": stamp, "X-Signature": h.hmac_hex(h.STAMPED_SECRET, f"{stamp}.".encode() + body)}
    assert_refused(post("stamped", body, headers), 401, "X-Timestamp is too far in the future", valid=False)


def test_unknown_source_is_404(post):
    body = h.envelope()
    assert_refused(post("nobody", body, h.standard_headers(body)), 404, "Unknown webhook source 'nobody'", valid=False)


def test_body_over_the_limit_is_413_before_any_check(post, settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_MAX_BODY": 1000}
    body = h.envelope(pad="x" * 1000)
    assert_refused(signed_post(post, body), 413, "over the limit of 1000 bytes", valid=False)
    assert bytes(WebhookRequest.objects.get().body) == b""  # the oversized body is not kept


def test_default_limit_is_256_kb(post):
    assert gateway_settings.WEBHOOK_MAX_BODY == 256 * 1024
    body = h.envelope(pad="x" * 256 * 1024)
    assert_refused(signed_post(post, body), 413, f"over the limit of {256 * 1024} bytes", valid=False)


def test_wrong_content_type_after_a_valid_signature_is_400(post):
    body = h.envelope()
    response = post("partner", body, h.standard_headers(body), content_type="application/x-www-form-urlencoded")
    assert_refused(response, 400, "Content-Type must be application/json", valid=True)


def test_malformed_json_after_a_valid_signature_is_400_github_vector(post):
    # GitHub's published test vector: a valid signature over a body that is not JSON.
    headers = {
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "X-GitHub-Delivery": "d1",
        "X-GitHub-Event": "ping",
    }
    assert_refused(post("github", b"Hello, World!", headers), 400, "The body is not valid JSON", valid=True)


def test_deeply_nested_json_is_400_not_a_crash(post):
    # web3's dependencies raise the recursion limit to 100000 at import: json.loads alone would overflow the C
    # stack on this body (a segfault, the worker gone), not raise RecursionError.
    import sys

    assert sys.getrecursionlimit() >= 100_000
    body = b"[" * 100_000 + b"]" * 100_000
    assert_refused(signed_post(post, body), 400, "nested deeper than 100 levels", valid=True)


def test_nesting_within_the_limit_and_brackets_in_strings_are_fine(post):
    body = json.dumps({"id": "evt_deep", "type": "x", "data": [[[[["]]]]]]]]]" * 50]]]]]}).encode()
    assert signed_post(post, body).status_code == 202


def test_a_body_that_is_not_utf8_is_400(post):
    body = json.dumps({"id": "evt_16", "type": "x"}).encode("utf-16")
    assert_refused(signed_post(post, body), 400, "The body must be UTF-8 JSON", valid=True)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"type": "payment.completed"}, "The event has no id: field 'id'"),
        ({"id": "evt_1"}, "The event has no type: field 'type'"),
        ({"id": "", "type": "x"}, "The event has no id"),
        ({"id": ["evt_1"], "type": "x"}, "The event has no id"),
        ({"id": "e" * 201, "type": "x"}, "id is longer than 200"),
        (["evt_1"], "The body must be a JSON object"),
        ({"id": "evt\u0000", "type": "x"}, "id must be printable text"),
        ({"id": "evt_1", "type": "\ud800"}, "type must be printable text"),
    ],
)
def test_event_without_id_or_type_is_400(post, document, message):
    body = json.dumps(document).encode()
    assert_refused(post("partner", body, h.standard_headers(body)), 400, message, valid=True)


def test_credentials_in_headers_are_not_logged(post):
    body = h.envelope()
    post("partner", body, h.standard_headers(body) | {"Authorization": "Bearer s3cret", "Cookie": "sid=1"})
    logged = WebhookRequest.objects.get().headers
    assert logged["Authorization"] == "[redacted]" and logged["Cookie"] == "[redacted]"
    assert "s3cret" not in json.dumps(logged)


def test_only_post(client):
    response = client.get("/webhooks/partner/")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"


# --- handler failures, retries ---------------------------------------------------------------------------


def test_crashing_handler_keeps_the_event_failed_with_traceback_and_retries_with_backoff(post, sync_tasks):
    h.FAIL_IDS.add("evt_bad")
    started = timezone.now()
    response = signed_post(post, h.envelope("evt_bad"))
    assert response.status_code == 202  # stored: the sender must not resend, we retry ourselves
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEventStatus.FAILED and event.attempts == 1
    assert "Traceback" in event.result and "RuntimeError: handler crashed on purpose" in event.result
    # The handler's own transaction rolled back: nothing half-done.
    assert Customer.objects.count() == 0
    schedule = gateway_settings.WEBHOOK_INCOMING_RETRY_SCHEDULE
    assert started + timedelta(seconds=schedule[0]) <= event.next_attempt_at
    assert event.next_attempt_at <= timezone.now() + timedelta(seconds=schedule[0])

    # Not before its time; then once per step of the schedule, until the cap.
    now = event.next_attempt_at
    assert retry_due_events(now=now - timedelta(seconds=1)) == 0
    for attempt, wait in enumerate(schedule[1:], start=2):
        assert retry_due_events(now=now) == 1
        event.refresh_from_db()
        assert event.attempts == attempt and event.next_attempt_at == now + timedelta(seconds=wait)
        now = event.next_attempt_at
    assert retry_due_events(now=now) == 1
    event.refresh_from_db()
    assert event.attempts == len(schedule) + 1 and event.next_attempt_at is None
    assert event.status == WebhookEventStatus.FAILED
    assert retry_due_events(now=now + timedelta(days=30)) == 0  # capped: only the admin can reprocess it
    assert len(h.CALLS) == len(schedule) + 1

    # Once the bug is fixed, the next retry succeeds.
    h.FAIL_IDS.clear()
    assert process_event(event.pk, force=True).startswith("processed")
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.PROCESSED and event.result == "recorded"
    assert Customer.objects.count() == 1


def test_a_failure_then_a_success_on_retry(post, sync_tasks):
    h.FAIL_IDS.add("evt_flaky")
    signed_post(post, h.envelope("evt_flaky"))
    event = WebhookEvent.objects.get()
    h.FAIL_IDS.clear()
    assert retry_due_events(now=event.next_attempt_at) == 1
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.PROCESSED and event.attempts == 2 and event.next_attempt_at is None


def test_an_event_whose_task_was_lost_is_picked_up_by_the_periodic_task(post):
    response = signed_post(post, h.envelope("evt_lost"))
    assert response.status_code == 202
    OrmQ.objects.all().delete()  # the worker that took the task died with it
    assert retry_due_events(now=timezone.now()) == 0  # its task may still be on the way
    assert retry_due_events(now=timezone.now() + timedelta(minutes=3)) == 1
    assert WebhookEvent.objects.get().status == WebhookEventStatus.PROCESSED


def test_processing_twice_runs_the_handler_once(post):
    signed_post(post, h.envelope("evt_twice"))
    event = WebhookEvent.objects.get()
    assert process_event(event.pk).startswith("processed")
    assert process_event(event.pk) == "skipped: already processed"
    assert retry_incoming_webhooks() == 0
    assert h.CALLS == [("partner", "evt_twice")]


def test_an_event_whose_source_was_removed_fails_with_a_clear_reason(post, settings):
    signed_post(post, h.envelope("evt_orphan"))
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_SOURCES": {}}
    process_event(WebhookEvent.objects.get().pk)
    event = WebhookEvent.objects.get()
    assert event.status == WebhookEventStatus.FAILED
    assert "source 'partner' is no longer in WEBHOOK_SOURCES" in event.result


def test_the_retry_sweep_stops_starting_events_when_its_time_is_up(post):
    for n in range(3):
        signed_post(post, h.envelope(f"evt_late_{n}"))
    later = timezone.now() + timedelta(minutes=3)
    assert retry_due_events(now=later, time_budget=-1) == 0  # out of time before the first
    assert retry_due_events(now=later) == 3
