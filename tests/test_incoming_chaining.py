"""Chaining two deployments: one's outgoing Standard Webhooks are accepted by the other's receiver, configured
with the secret of the endpoint the first one sends to. Both sides run here: the sender (events, deliveries,
signing of branch outgoing) posts over real HTTP to a live server running the receiver."""

import json
import time
from datetime import UTC, datetime

import pytest
import requests
from standardwebhooks import Webhook

from payments_gateway.events import emit
from payments_gateway.models import (
    DeliveryState,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventStatus,
    WebhookRequest,
)
from payments_gateway.webhooks.outgoing.delivery import deliver_due, redeliver
from payments_gateway.webhooks.outgoing.signing import rotate_secret

from . import incoming_helpers as h
from .factories import make_endpoint
from .http_receiver import live_wsgi_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def downstream(settings, private_webhook_urls):
    """Deployment B: a live server whose ``upstream`` source trusts the secret of A's endpoint (on 127.0.0.1)."""
    with live_wsgi_server() as url:
        endpoint = make_endpoint(f"{url}/webhooks/upstream/", enabled_events=["*"])
        configure_downstream(settings, [endpoint.secret])
        h.CALLS.clear()
        yield endpoint


def configure_downstream(settings, secrets):
    source = {"scheme": "standard", "secrets": secrets, "handler": "tests.incoming_helpers.record"}
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_SOURCES": {"upstream": source}}


def delivered(event):
    deliver_due(event_id=event.id)  # no-op if the after-commit kick has delivered it already
    return WebhookDelivery.objects.get(event=event)


def test_the_real_sender_delivers_to_the_receiver_which_stores_and_handles_once(downstream, sync_tasks):
    event = emit("payment.completed", {"object": "checkout.session", "uuid": "u-1", "status": "complete"})

    delivery = delivered(event)

    assert delivery.state == DeliveryState.SUCCEEDED and delivery.last_status_code == 202
    stored = WebhookEvent.objects.get(source="upstream")
    assert (stored.event_id, stored.type) == (event.id, "payment.completed")
    assert stored.payload["data"] == event.data
    assert stored.headers["Webhook-Id"] == event.id
    assert stored.status == WebhookEventStatus.PROCESSED
    assert list(h.CALLS) == [("upstream", event.id)]

    # The sender redelivers (a lost answer, or an operator's "redeliver"): stored once, handled once.
    redeliver(event)
    delivery = delivered(event)
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.last_status_code == 200
    assert WebhookEvent.objects.count() == 1
    assert list(h.CALLS) == [("upstream", event.id)]
    assert WebhookRequest.objects.filter(source="upstream", valid=True).count() == 2


def test_a_sender_rotating_its_secret_still_reaches_a_receiver_that_has_the_old_one(downstream, settings):
    rotate_secret(downstream)  # the sender now signs with the new and the previous secret
    event = emit("payment.pending", {"object": "checkout.session", "uuid": "u-2"})
    assert delivered(event).last_status_code == 202

    # Once the receiver has only a secret the sender does not use, deliveries are refused and retried later.
    configure_downstream(settings, [WebhookEndpoint().secret])
    refused = emit("payment.pending", {"object": "checkout.session", "uuid": "u-3"})
    delivery = delivered(refused)
    assert delivery.state == DeliveryState.PENDING and delivery.last_status_code == 401
    assert list(WebhookEvent.objects.values_list("event_id", flat=True)) == [event.id]


def test_a_request_signed_by_the_reference_library_is_accepted_too(downstream):
    # Independent of our sender: the official Standard Webhooks library signs with the endpoint's secret.
    event = emit("payment.completed", {"object": "checkout.session", "uuid": "u-4"})
    WebhookDelivery.objects.all().delete()  # this test sends by hand
    body = json.dumps(event.envelope()).encode()
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(downstream.secret).sign(event.id, now, body.decode()),
    }
    assert requests.post(downstream.url, data=body, headers=headers, timeout=30).status_code == 202
    assert WebhookEvent.objects.get().event_id == event.id
