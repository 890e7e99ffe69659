"""Delivery workers against real HTTP servers on 127.0.0.1: success, retries, timeouts, 410, redirects, 429."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from payments_gateway.events import emit
from payments_gateway.models import DeliveryState, WebhookDelivery
from payments_gateway.webhooks.outgoing import delivery as service
from payments_gateway.webhooks.outgoing.delivery import deliver_due, retry_delay

from .factories import make_endpoint
from .http_receiver import Receiver, Reply, closed_port

pytestmark = pytest.mark.django_db

SCHEDULE = [5, 300, 1800]


@pytest.fixture(autouse=True)
def gateway(settings, private_webhook_urls):
    settings.PAYMENTS_GATEWAY = {
        **settings.PAYMENTS_GATEWAY,
        "WEBHOOK_RETRY_SCHEDULE": SCHEDULE,
        "WEBHOOK_TIMEOUT": "0.5",
    }


def _send(receiver_url: str, event_type: str = "payment.completed"):
    endpoint = make_endpoint(receiver_url)
    event = emit(event_type, {"uuid": "s1", "amount_received": "1000000000000000000"})
    return endpoint, event, WebhookDelivery.objects.get(event=event, endpoint=endpoint)


def _refresh(delivery):
    delivery.refresh_from_db()
    return delivery


def test_200_is_delivered_signed_and_logged():
    with Receiver(Reply(200, b'{"received": true}')) as receiver:
        endpoint, event, delivery = _send(receiver.url())
        now = timezone.now()
        assert deliver_due(now=now) == 1

    delivery = _refresh(delivery)
    assert delivery.state == DeliveryState.SUCCEEDED
    assert delivery.attempts == 1 and delivery.last_status_code == 200
    assert delivery.next_attempt_at is None
    attempt = delivery.attempt_log.get()
    assert attempt.success and attempt.status_code == 200
    assert attempt.response_excerpt == '{"received": true}'

    (request,) = receiver.requests
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload == {
        "id": event.id,
        "type": "payment.completed",
        "created": event.created.isoformat(),
        "data": {"uuid": "s1", "amount_received": "1000000000000000000"},
    }
    assert request.headers["webhook-id"] == event.id
    assert request.headers["content-type"] == "application/json"


def test_500_then_200_retries_on_schedule_with_the_same_webhook_id():
    with Receiver(Reply(500, b"boom"), Reply(200)) as receiver:
        endpoint, event, delivery = _send(receiver.url())
        now = timezone.now()
        deliver_due(now=now)
        delivery = _refresh(delivery)
        assert delivery.state == DeliveryState.PENDING
        assert delivery.last_status_code == 500 and delivery.last_response == "boom"
        # 5 s ± 20 % jitter
        assert now + timedelta(seconds=4) <= delivery.next_attempt_at <= now + timedelta(seconds=6)
        assert endpoint.__class__.objects.get(pk=endpoint.pk).failing_since == now

        assert deliver_due(now=now + timedelta(seconds=3)) == 0  # not due yet
        assert deliver_due(now=now + timedelta(seconds=7)) == 1

    delivery = _refresh(delivery)
    assert delivery.state == DeliveryState.SUCCEEDED and delivery.attempts == 2
    assert [a.status_code for a in delivery.attempt_log.order_by("started_at")] == [500, 200]
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.id, event.id]
    for request in receiver.requests:
        Webhook(endpoint.secret).verify(request.body, request.headers)
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None  # a success ends the run of failures


def test_a_hang_past_the_timeout_is_a_failure_retried_later():
    with Receiver(Reply(hang=True)) as receiver:
        _, _, delivery = _send(receiver.url())
        now = timezone.now()
        deliver_due(now=now)
        assert receiver.arrived.is_set()

    delivery = _refresh(delivery)
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_status_code is None
    assert "timed out after 0.5 s" in delivery.last_error
    assert delivery.next_attempt_at > now
    attempt = delivery.attempt_log.get()
    assert attempt.error == delivery.last_error
    # The log shows how long the endpoint kept the worker: here the whole timeout, never less.
    assert attempt.duration_ms >= 500


def test_410_disables_the_endpoint_and_gives_up():
    with Receiver(Reply(410, b"gone")) as receiver:
        endpoint, _, delivery = _send(receiver.url())
        now = timezone.now()
        deliver_due(now=now)

    delivery = _refresh(delivery)
    endpoint.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED and delivery.next_attempt_at is None
    assert not endpoint.active and "410" in endpoint.disabled_reason and endpoint.disabled_at == now
    # A disabled endpoint gets no new deliveries.
    later = emit("payment.completed", {})
    assert not later.deliveries.exists()


def test_302_is_a_failure_and_the_redirect_is_not_followed():
    with Receiver(Reply(302, b"", {"Location": "/elsewhere"}), Reply(200)) as receiver:
        _, _, delivery = _send(receiver.url())
        now = timezone.now()
        deliver_due(now=now)

    assert [r.path for r in receiver.requests] == ["/hook"]
    delivery = _refresh(delivery)
    assert delivery.state == DeliveryState.PENDING and delivery.last_status_code == 302
    assert delivery.next_attempt_at > now
    assert not delivery.attempt_log.get().success


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status):
    with Receiver(Reply(status, b"slow down", {"Retry-After": "900"})) as receiver:
        _, _, delivery = _send(receiver.url())
        now = timezone.now()
        deliver_due(now=now)

    delivery = _refresh(delivery)
    assert delivery.state == DeliveryState.PENDING and delivery.last_status_code == status
    # The schedule says ~5 s; the receiver asked for 900 s.
    assert now + timedelta(seconds=900) <= delivery.next_attempt_at <= now + timedelta(seconds=901)
    assert deliver_due(now=now + timedelta(seconds=600)) == 0


def test_connection_refused_is_a_failure_retried_later():
    _, _, delivery = _send(f"http://127.0.0.1:{closed_port()}/hook")
    now = timezone.now()
    deliver_due(now=now)

    delivery = _refresh(delivery)
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_error == "connection refused"
    assert delivery.next_attempt_at > now


def test_gives_up_after_the_last_step_of_the_schedule():
    with Receiver(Reply(500)) as receiver:
        _, _, delivery = _send(receiver.url())
        now = timezone.now()
        for _ in range(len(SCHEDULE) + 1):
            assert deliver_due(now=now) == 1
            now += timedelta(days=1)
        assert deliver_due(now=now) == 0

    delivery = _refresh(delivery)
    assert delivery.state == DeliveryState.FAILED and delivery.attempts == len(SCHEDULE) + 1
    assert len(receiver.requests) == len(SCHEDULE) + 1


def test_endpoint_failing_for_five_days_is_disabled():
    with Receiver(Reply(500)) as receiver:
        endpoint, _, delivery = _send(receiver.url())
        start = timezone.now()
        deliver_due(now=start)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=start)
        deliver_due(now=start + timedelta(days=4, hours=23))
        endpoint.refresh_from_db()
        assert endpoint.active and endpoint.failing_since == start

        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=start)
        deliver_due(now=start + timedelta(days=5, seconds=1))

    endpoint.refresh_from_db()
    assert not endpoint.active
    assert endpoint.disabled_reason == "Every delivery failed for 5 days."
    # Its deliveries wait (not lost) and are no longer claimed.
    assert _refresh(delivery).state == DeliveryState.PENDING
    assert deliver_due(now=start + timedelta(days=30)) == 0


def test_response_excerpt_is_capped_at_20_kb():
    with Receiver(Reply(200, b"x" * 100_000)) as receiver:
        _, _, delivery = _send(receiver.url())
        deliver_due()
    excerpt = _refresh(delivery).attempt_log.get().response_excerpt
    assert len(excerpt.encode()) == 20 * 1024


def test_retry_delay_follows_the_schedule_with_jitter():
    delays = [retry_delay(2).total_seconds() for _ in range(50)]
    assert all(240 <= d <= 360 for d in delays)
    assert len(set(delays)) > 1  # jittered, so retries of many deliveries spread out
    assert retry_delay(1, retry_after=10**9).total_seconds() == max(SCHEDULE)


def test_parse_retry_after_accepts_seconds_and_http_dates():
    now = timezone.now().replace(microsecond=0)
    assert service.parse_retry_after("120") == 120
    http_date = (now + timedelta(minutes=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert service.parse_retry_after(http_date, now=now) == 120
    assert service.parse_retry_after("soon") is None
    assert service.parse_retry_after(None) is None


def test_redeliver_sends_the_same_webhook_id_again():
    with Receiver(Reply(200)) as receiver:
        endpoint, event, delivery = _send(receiver.url())
        now = timezone.now()
        deliver_due(now=now)
        service.redeliver(event, now=now)
        assert _refresh(delivery).state == DeliveryState.PENDING
        deliver_due(now=now)

    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.id, event.id]
    assert receiver.requests[0].body == receiver.requests[1].body
    assert _refresh(delivery).attempt_log.count() == 2


def test_send_test_event_of_any_type_reaches_only_that_endpoint():
    with Receiver(Reply(200)) as receiver, Receiver(Reply(200)) as other:
        endpoint = make_endpoint(receiver.url())
        make_endpoint(other.url())
        event = service.send_test_event(endpoint, "refund.completed")
        deliver_due()

    assert not event.livemode
    (request,) = receiver.requests
    payload = Webhook(endpoint.secret).verify(request.body, request.headers)
    assert payload["type"] == "refund.completed" and payload["data"]["status"] == "completed"
    assert other.requests == []
    with pytest.raises(ValueError, match="unknown event type 'payment.nope'"):
        service.send_test_event(endpoint, "payment.nope")


def test_body_is_the_envelope_as_json():
    with Receiver(Reply(200)) as receiver:
        _, event, _ = _send(receiver.url(), "customer.created")
        deliver_due()
    assert json.loads(receiver.requests[0].body)["id"] == event.id
