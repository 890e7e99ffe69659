"""The example shop's receiver: verifies with standardwebhooks, marks the order paid once, wired by seed_shop."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from example_shop.shop.models import ProcessedWebhook
from payments_gateway.models import Order, Transfer, WebhookDelivery, WebhookEndpoint
from payments_gateway.services.payments import refresh_session
from payments_gateway.webhooks.outgoing import signing
from payments_gateway.webhooks.outgoing.delivery import event_body

from .factories import make_session, make_transfer
from .http_receiver import live_wsgi_server

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

URL = "/shop/webhooks/"


def _post(client: Client, event, secret: str, msg_id: str | None = None):
    body = event_body(event) if hasattr(event, "envelope") else json.dumps(event).encode()
    endpoint = WebhookEndpoint(secret=secret)
    headers = signing.signed_headers(endpoint, msg_id or getattr(event, "id", "evt_x"), body)
    return client.post(
        URL,
        body,
        content_type="application/json",
        **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()},
    )


def _pay(session):
    """A confirmed transfer for the full amount: the gateway completes the session and emits payment.completed."""
    make_transfer(session, session.amount_due, status="confirmed")
    refresh_session(session.pk)
    return session.events.get(type="payment.completed")


def test_payment_completed_marks_the_order_paid_once(client, settings):
    session = make_session()
    event = _pay(session)
    Order.objects.filter(pk=session.order_id).update(status="pending")  # the shop's view of it, before the webhook

    first = _post(client, event, settings.SHOP_WEBHOOK_SECRET)
    assert first.status_code == 200 and first.json() == {"status": "order paid", "id": event.id}
    assert Order.objects.get(pk=session.order_id).status == "paid"
    assert ProcessedWebhook.objects.get().order_id == session.order_id

    Order.objects.filter(pk=session.order_id).update(status="pending")  # if it ran again, this would flip
    again = _post(client, event, settings.SHOP_WEBHOOK_SECRET)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert Order.objects.get(pk=session.order_id).status == "pending"
    assert ProcessedWebhook.objects.count() == 1


def test_bad_signature_is_400_and_nothing_happens(client, settings):
    session = make_session()
    event = _pay(session)
    Order.objects.filter(pk=session.order_id).update(status="pending")
    response = _post(client, event, signing.new_secret())
    assert response.status_code == 400 and "not verified" in response.json()["error"]
    unsigned = client.post(URL, event_body(event), content_type="application/json")
    assert unsigned.status_code == 400
    assert Order.objects.get(pk=session.order_id).status == "pending"
    assert not ProcessedWebhook.objects.exists()


def test_other_events_and_sample_orders_change_nothing(client, settings):
    from payments_gateway.webhooks.outgoing.samples import sample_data

    session = make_session()
    sample = {"id": "evt_sample", "type": "payment.completed", "created": timezone.now().isoformat(),
              "data": sample_data("payment.completed")}  # fmt: skip
    assert _post(client, sample, settings.SHOP_WEBHOOK_SECRET, "evt_sample").json()["status"] == "unknown order"
    other = {"id": "evt_c", "type": "customer.created", "created": "", "data": {}}
    assert _post(client, other, settings.SHOP_WEBHOOK_SECRET, "evt_c").json()["status"] == "ignored"
    assert Order.objects.get(pk=session.order_id).status == "pending"


def test_seed_registers_the_shop_endpoint_with_its_known_secret(settings):
    call_command("seed_shop", stdout=io.StringIO())
    call_command("seed_shop", stdout=io.StringIO())  # idempotent
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.url == settings.SHOP_WEBHOOK_URL
    assert endpoint.secret == settings.SHOP_WEBHOOK_SECRET and endpoint.active
    assert endpoint.wants("payment.completed")


@pytest.mark.django_db(transaction=True)
def test_demo_wiring_end_to_end_through_a_real_http_server(settings, private_webhook_urls):
    """The shop runs under a real WSGI server; seed_shop points the gateway at it; a payment reaches it."""
    from payments_gateway.webhooks.outgoing.delivery import deliver_due

    with live_wsgi_server() as url:
        settings.SHOP_WEBHOOK_URL = f"{url}/shop/webhooks/"
        call_command("seed_shop", stdout=io.StringIO())
        session = make_session()
        Transfer.objects.all().delete()
        event = _pay(session)
        Order.objects.filter(pk=session.order_id).update(status="pending")
        assert deliver_due() >= 1

    delivery = WebhookDelivery.objects.get(event=event)
    assert delivery.state == "succeeded", delivery.last_error or delivery.last_response
    assert json.loads(delivery.last_response)["status"] == "order paid"
    assert ProcessedWebhook.objects.get(webhook_id=event.id).order_id == session.order_id
    assert Order.objects.get(pk=session.order_id).status == "paid"
