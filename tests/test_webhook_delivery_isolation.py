"""One bad delivery never stops the others: an event whose body cannot be built, or a delivery that crashes while
being sent, is recorded with its reason, and every other due delivery of the batch is still sent on schedule.

The rows are written directly (not through the API, which refuses such input at the edge): delivery must hold even
for data that got in some other way.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from payments_gateway import tasks
from payments_gateway.models import DeliveryState, Event, WebhookDelivery, WebhookEndpoint
from payments_gateway.webhooks.outgoing.delivery import deliver_due

from .http_receiver import Receiver, Reply

pytestmark = pytest.mark.django_db

SCHEDULE = [5, 300, 1800]


@pytest.fixture(autouse=True)
def gateway(settings):
    settings.PAYMENTS_GATEWAY = {
        **settings.PAYMENTS_GATEWAY,
        "ALLOW_PRIVATE_WEBHOOK_URLS": True,
        "WEBHOOK_RETRY_SCHEDULE": SCHEDULE,
        "WEBHOOK_TIMEOUT": "2",
    }


def _plant(endpoint: WebhookEndpoint, data: dict, *, due: timezone.datetime) -> WebhookDelivery:
    """An event and its delivery, written directly, due at ``due`` (earlier is claimed first)."""
    event = Event.objects.create(type="payment.completed", data=data)
    return WebhookDelivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=due)


def _good_ones(endpoint: WebhookEndpoint, count: int, *, due: timezone.datetime) -> list[WebhookDelivery]:
    return [_plant(endpoint, {"uuid": f"good-{n}"}, due=due + timedelta(seconds=n)) for n in range(count)]


def test_an_event_whose_body_cannot_be_built_fails_with_its_reason_and_the_batch_is_delivered(admin_client):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL refuses to store a lone surrogate in jsonb: this poison cannot exist there.")
    now = timezone.now()
    with Receiver(Reply(200)) as receiver:
        endpoint = WebhookEndpoint.objects.create(url=receiver.url())
        # JSONField on SQLite stores the escaped "\ud800" and hands back a str that cannot be UTF-8 encoded.
        poisoned = _plant(endpoint, {"note": "\ud800"}, due=now - timedelta(minutes=5))  # first in the batch
        good = _good_ones(endpoint, 3, due=now - timedelta(minutes=1))

        assert tasks.deliver_webhooks() == 4

    poisoned.refresh_from_db()
    assert poisoned.state == DeliveryState.FAILED and poisoned.next_attempt_at is None
    assert poisoned.last_error.startswith("The event's body cannot be built (UnicodeEncodeError")
    (attempt,) = poisoned.attempt_log.all()
    assert not attempt.success and attempt.error == poisoned.last_error

    assert sorted(Webhook(endpoint.secret).verify(r.body, r.headers)["data"]["uuid"] for r in receiver.requests) == [
        "good-0",
        "good-1",
        "good-2",
    ]
    for delivery in good:
        delivery.refresh_from_db()
        assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempts == 1
    # Our own failure says nothing about the endpoint: it is neither failing nor disabled.
    endpoint.refresh_from_db()
    assert endpoint.active and endpoint.failing_since is None
    # Nothing is left to retry: the next run has nothing due.
    assert tasks.deliver_webhooks() == 0

    # The merchant sees why, in the admin: the delivery's page and its attempt log.
    page = admin_client.get(reverse("admin:payments_gateway_webhookdelivery_change", args=[quote(poisoned.pk)]))
    assert page.status_code == 200
    assert "The event&#x27;s body cannot be built (UnicodeEncodeError" in page.content.decode()


def test_a_crash_while_sending_one_delivery_does_not_keep_the_others_from_being_recorded():
    now = timezone.now()
    with Receiver(Reply(500, b"busy"), Reply(200)) as receiver:
        good_endpoint = WebhookEndpoint.objects.create(url=receiver.url())
        # A secret that is not base64 (edited by hand, say): signing the request raises.
        broken_endpoint = WebhookEndpoint.objects.create(url=receiver.url("/other"), secret="whsec_a")
        crashing = _plant(broken_endpoint, {"uuid": "crash"}, due=now - timedelta(minutes=5))  # first in the batch
        retried, delivered = _good_ones(good_endpoint, 2, due=now - timedelta(minutes=1))

        assert deliver_due(now=now) == 3
        assert len(receiver.requests) == 2

    crashing.refresh_from_db()
    assert crashing.state == DeliveryState.PENDING and crashing.attempts == 1
    assert crashing.last_error.startswith("Could not be sent (Error: ")  # binascii.Error
    # A crash may be passing: it is retried on the schedule like any failure, not given up at once.
    assert now + timedelta(seconds=4) <= crashing.next_attempt_at <= now + timedelta(seconds=6)
    assert crashing.attempt_log.get().error == crashing.last_error

    retried.refresh_from_db()
    assert retried.state == DeliveryState.PENDING and retried.last_status_code == 500
    assert now + timedelta(seconds=4) <= retried.next_attempt_at <= now + timedelta(seconds=6)
    delivered.refresh_from_db()
    assert delivered.state == DeliveryState.SUCCEEDED
    # Every delivery of the batch was recorded: none is left holding the batch's claim.
    assert not WebhookDelivery.objects.exclude(claim_token="").exists()
