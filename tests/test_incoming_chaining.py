"""Chaining two deployments: one's outgoing Standard Webhooks are accepted by the other's receiver, configured
with the secret of the endpoint the first one sends to."""

import json
import time
from datetime import UTC, datetime

import pytest
import requests
from standardwebhooks import Webhook

from payments_gateway.events import emit
from payments_gateway.models import WebhookEndpoint, WebhookEvent, WebhookEventStatus

from . import incoming_helpers as h

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def downstream(settings):
    """Deployment B: a live server whose ``upstream`` source trusts the secret of A's endpoint."""
    with h.live_wsgi_server() as url:
        endpoint = WebhookEndpoint.objects.create(url=f"{url}/webhooks/upstream/", enabled_events=["*"])
        source = {"scheme": "standard", "secrets": [endpoint.secret], "handler": "tests.incoming_helpers.record"}
        settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_SOURCES": {"upstream": source}}
        h.CALLS.clear()
        yield endpoint


def send_as_upstream(endpoint, event, secrets):
    """Deployment A's request, signed by the reference Standard Webhooks implementation."""
    body = json.dumps(event.envelope()).encode()
    now = datetime.fromtimestamp(time.time(), tz=UTC)
    signatures = " ".join(Webhook(secret).sign(event.id, now, body.decode()) for secret in secrets)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": event.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signatures,
    }
    return requests.post(endpoint.url, data=body, headers=headers, timeout=30)


def test_an_upstream_event_is_accepted_stored_and_handled_downstream(downstream, sync_tasks):
    event = emit("payment.completed", {"object": "checkout.session", "uuid": "u-1", "status": "complete"})

    response = send_as_upstream(downstream, event, [downstream.secret])

    assert response.status_code == 202
    stored = WebhookEvent.objects.get(source="upstream")
    assert (stored.event_id, stored.type) == (event.id, "payment.completed")
    assert stored.payload["data"] == event.data
    assert stored.status == WebhookEventStatus.PROCESSED and [("upstream", event.id)] == h.CALLS
    # The upstream retries (a lost answer): stored once, handled once.
    assert send_as_upstream(downstream, event, [downstream.secret]).status_code == 200
    assert WebhookEvent.objects.count() == 1 and len(h.CALLS) == 1


def test_while_upstream_rotates_its_secret_both_signatures_reach_a_receiver_with_the_old_one(downstream):
    event = emit("payment.pending", {"object": "checkout.session", "uuid": "u-2"})
    new_secret = WebhookEndpoint().secret  # a fresh whsec_ secret
    assert send_as_upstream(downstream, event, [new_secret, downstream.secret]).status_code == 202
    # Signed only with a secret the receiver does not have: refused.
    other = emit("payment.pending", {"object": "checkout.session", "uuid": "u-3"})
    assert send_as_upstream(downstream, other, [new_secret]).status_code == 401
    assert list(WebhookEvent.objects.values_list("event_id", flat=True)) == [event.id]
