"""Admin: incoming events and attempts are read-only, filterable, and events can be reprocessed."""

import pytest
from django.contrib.auth.models import Permission, User

from payments_gateway.models import WebhookEvent, WebhookEventStatus, WebhookRequest
from payments_gateway.webhooks.incoming.processing import process_event

from . import incoming_helpers as h

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_sources")]
EVENTS = "/admin/payments_gateway/webhookevent/"
ATTEMPTS = "/admin/payments_gateway/webhookrequest/"


@pytest.fixture
def failed_event(client, django_capture_on_commit_callbacks):
    """An event whose handler crashed (as received over HTTP), plus a refused attempt."""
    h.FAIL_IDS.add("evt_broken")
    body = h.envelope("evt_broken", "payment.completed")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/webhooks/partner/", data=body, content_type="application/json", headers=h.standard_headers(body))
    client.post("/webhooks/partner/", data=body, content_type="application/json", headers={"webhook-id": "x"})
    event = WebhookEvent.objects.get()
    process_event(event.pk)
    event.refresh_from_db()
    assert event.status == WebhookEventStatus.FAILED
    return event


def test_event_list_filters_by_source_type_and_outcome(admin_client, failed_event):
    for query in ("", "?source=partner", "?type=payment.completed", "?status=failed"):
        page = admin_client.get(EVENTS + query)
        assert page.status_code == 200 and "evt_broken" in page.content.decode(), query
    for query in ("?source=github", "?status=processed", "?type=ping"):
        assert "evt_broken" not in admin_client.get(EVENTS + query).content.decode(), query


def test_attempt_list_filters_by_source_validity_and_answer(admin_client, failed_event):
    assert WebhookRequest.objects.count() == 2
    accepted = admin_client.get(ATTEMPTS + "?valid__exact=1&status_code=202").content.decode()
    refused = admin_client.get(ATTEMPTS + "?valid__exact=0").content.decode()
    assert "stored; processing queued" in accepted and "Missing header" not in accepted
    assert "Missing header(s)" in refused and "stored; processing queued" not in refused
    assert admin_client.get(ATTEMPTS + "?source=partner").status_code == 200


def test_event_page_shows_body_and_traceback_and_is_read_only(admin_client, failed_event):
    page = admin_client.get(f"{EVENTS}{failed_event.pk}/change/").content.decode()
    assert "evt_broken" in page and "RuntimeError: handler crashed on purpose" in page
    assert 'name="_save"' not in page
    assert admin_client.get(EVENTS + "add/").status_code == 403
    assert admin_client.post(f"{EVENTS}{failed_event.pk}/delete/", {"post": "yes"}).status_code == 403
    admin_client.post(f"{EVENTS}{failed_event.pk}/change/", {"event_id": "changed", "status": "processed"})
    failed_event.refresh_from_db()
    assert failed_event.event_id == "evt_broken" and failed_event.status == WebhookEventStatus.FAILED
    attempt = WebhookRequest.objects.filter(valid=True).get()
    assert "evt_broken" in admin_client.get(f"{ATTEMPTS}{attempt.pk}/change/").content.decode()


def test_reprocess_action_runs_the_handler_again(
    admin_client, failed_event, sync_tasks, django_capture_on_commit_callbacks
):
    h.FAIL_IDS.clear()  # the bug is fixed
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            EVENTS, {"action": "reprocess_events", "_selected_action": [failed_event.pk]}, follow=True
        )
    assert "1 event(s) queued for reprocessing" in response.content.decode()
    failed_event.refresh_from_db()
    assert failed_event.status == WebhookEventStatus.PROCESSED and failed_event.attempts == 2


def test_reprocess_needs_the_change_permission(client, failed_event, sync_tasks, django_capture_on_commit_callbacks):
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_webhookevent"))
    client.force_login(viewer)
    page = client.get(EVENTS)
    assert page.status_code == 200 and "reprocess_events" not in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(EVENTS, {"action": "reprocess_events", "_selected_action": [failed_event.pk]})
    failed_event.refresh_from_db()
    assert failed_event.attempts == 1
