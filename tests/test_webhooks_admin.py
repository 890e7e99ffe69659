"""Admin for outgoing webhooks: endpoint form (bad input), secret shown once, rotate, test event, redeliver, logs."""

from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.urls import reverse

from payments_gateway.events import emit
from payments_gateway.models import DeliveryState, Event, WebhookDelivery, WebhookEndpoint
from payments_gateway.models.outgoing import EVENT_TYPES

from .factories import make_attempt, make_endpoint, make_event

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("public_dns")]

ADD = reverse("admin:payments_gateway_webhookendpoint_add")
CHANGELIST = reverse("admin:payments_gateway_webhookendpoint_changelist")


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("not a url", "Enter a valid URL."),
        ("https://192.168.0.10/hooks", "resolves to 192.168.0.10, a private address"),
        ("http://shop.example/hooks", "must use https"),
    ],
)
def test_add_form_refuses_bad_urls(admin_client, url, error):
    response = admin_client.post(ADD, {"url": url, "description": "", "active": "on"})
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors["url"])
    assert not WebhookEndpoint.objects.exists()


def test_add_form_refuses_unknown_event_types(admin_client):
    response = admin_client.post(ADD, {"url": "https://shop.example/h", "enabled_events": ["payment.nope"]})
    assert "Select a valid choice" in str(response.context["adminform"].form.errors["enabled_events"])
    assert not WebhookEndpoint.objects.exists()


def test_add_shows_the_secret_once_with_event_type_selection(admin_client):
    form = admin_client.get(ADD).content.decode()
    assert all(f'value="{t}"' in form for t in EVENT_TYPES)
    response = admin_client.post(
        ADD,
        {"url": "https://shop.example/hooks", "enabled_events": ["payment.completed"], "active": "on"},
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.enabled_events == ["payment.completed"]
    assert endpoint.secret in response.content.decode() and endpoint.secret not in _messages(response)

    change = admin_client.get(reverse("admin:payments_gateway_webhookendpoint_change", args=[quote(endpoint.pk)]))
    assert endpoint.secret not in change.content.decode()
    assert endpoint.secret not in admin_client.get(CHANGELIST).content.decode()


def test_rotate_secret_action_shows_the_new_secret(admin_client):
    endpoint = make_endpoint("https://shop.example/hooks")
    old = endpoint.secret
    response = admin_client.post(
        CHANGELIST, {"action": "rotate_secret", helpers_checkbox(): [endpoint.pk]}, follow=True
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.previous_secret == old
    assert endpoint.secret in response.content.decode() and endpoint.secret not in _messages(response)


def test_send_test_event_action_any_type(admin_client):
    endpoint = make_endpoint("https://shop.example/hooks")
    response = admin_client.post(
        CHANGELIST,
        {"action": "send_test_event", "event_type": "transaction.failed", helpers_checkbox(): [endpoint.pk]},
        follow=True,
    )
    event = Event.objects.get()
    assert event.type == "transaction.failed" and not event.livemode
    assert WebhookDelivery.objects.get().endpoint == endpoint
    assert f"Test event {event.id}" in _messages(response)

    response = admin_client.post(
        CHANGELIST, {"action": "send_test_event", "event_type": "", helpers_checkbox(): [endpoint.pk]}, follow=True
    )
    assert "Choose the event type" in _messages(response) and Event.objects.count() == 1


def test_redeliver_from_event_and_delivery_admin(admin_client):
    make_endpoint("https://shop.example/hooks")
    event = emit("payment.completed", {})
    WebhookDelivery.objects.update(state=DeliveryState.FAILED, attempts=9, next_attempt_at=None)

    admin_client.post(
        reverse("admin:payments_gateway_event_changelist"),
        {"action": "redeliver", helpers_checkbox(): [event.pk]},
    )
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.PENDING and delivery.attempts == 0 and delivery.next_attempt_at

    WebhookDelivery.objects.update(state=DeliveryState.FAILED)
    admin_client.post(
        reverse("admin:payments_gateway_webhookdelivery_changelist"),
        {"action": "redeliver", helpers_checkbox(): [delivery.pk]},
    )
    again = WebhookDelivery.objects.get()
    assert again.state == DeliveryState.PENDING
    assert again.pk == delivery.pk  # the delivery itself is sent again, not a copy of it


def test_delivery_logs_per_event_endpoint_and_delivery(admin_client):
    endpoint = make_endpoint("https://shop.example/hooks")
    event = emit("payment.completed", {})
    delivery = WebhookDelivery.objects.get()
    make_attempt(delivery, status_code=500, response_excerpt="upstream exploded")
    WebhookDelivery.objects.update(last_status_code=500, last_error="HTTP 500 from shop")

    event_page = admin_client.get(
        reverse("admin:payments_gateway_event_change", args=[quote(event.pk)])
    ).content.decode()
    assert "https://shop.example/hooks" in event_page and "HTTP 500 from shop" in event_page
    endpoint_page = admin_client.get(
        reverse("admin:payments_gateway_webhookendpoint_change", args=[quote(endpoint.pk)])
    ).content.decode()
    assert event.id in endpoint_page and "HTTP 500 from shop" in endpoint_page
    delivery_page = admin_client.get(
        reverse("admin:payments_gateway_webhookdelivery_change", args=[quote(delivery.pk)])
    ).content.decode()
    assert "upstream exploded" in delivery_page


def test_disabled_endpoints_are_announced(admin_client):
    make_endpoint("https://gone.example/hooks", active=False, disabled_reason="Every delivery failed for 5 days.")
    for name in ("webhookendpoint", "event", "webhookdelivery"):
        response = admin_client.get(reverse(f"admin:payments_gateway_{name}_changelist"))
        assert "https://gone.example/hooks was disabled: Every delivery failed for 5 days." in _messages(response)


def test_enable_action_resumes_a_disabled_endpoint(admin_client):
    endpoint = make_endpoint("https://shop.example/h", active=False, disabled_reason="410")
    admin_client.post(CHANGELIST, {"action": "enable", helpers_checkbox(): [endpoint.pk]})
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.disabled_reason == ""


def helpers_checkbox() -> str:
    from django.contrib.admin import helpers

    return helpers.ACTION_CHECKBOX_NAME


def test_an_event_whose_id_looks_like_an_admin_escape_opens_from_its_changelist_link(admin_client):
    # The admin escapes "_" in primary keys ("_22" would read as '"'); its own links quote the id, so every event
    # opens, whatever hex follows "evt_".
    event = make_event(id="evt_22" + "ab" * 11, type="payment.completed")
    changelist = admin_client.get(reverse("admin:payments_gateway_event_changelist")).content.decode()
    link = reverse("admin:payments_gateway_event_change", args=[quote(event.pk)])
    assert f'href="{link}"' in changelist
    page = admin_client.get(link)
    assert page.status_code == 200 and event.id in page.content.decode()
