"""The outbox: events and deliveries commit or roll back with the change; signals after commit; dead workers."""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.signing import SignedPackage

from payments_gateway.events import emit
from payments_gateway.models import Customer, DeliveryState, Event, WebhookDelivery
from payments_gateway.signals import event_emitted
from payments_gateway.tasks import deliver_event_webhooks
from payments_gateway.webhooks.outgoing.delivery import claim_due, deliver_due, lease_duration

from .concurrency import run_together
from .factories import make_customer, make_endpoint
from .http_receiver import Receiver, Reply


@pytest.fixture
def received_signals():
    seen = []

    def receiver(sender, event, **kwargs):
        seen.append(event)

    event_emitted.connect(receiver)
    yield seen
    event_emitted.disconnect(receiver)


@pytest.mark.django_db(transaction=True)
def test_rolled_back_change_leaves_no_event_no_delivery_no_signal(received_signals):
    make_endpoint("https://shop.example/hooks")
    with pytest.raises(RuntimeError), transaction.atomic():
        make_customer(email="a@example.com")
        emit("customer.created", {"email": "a@example.com"})
        raise RuntimeError("the change fails after the event was written")

    assert not Customer.objects.exists()
    assert not Event.objects.exists() and not WebhookDelivery.objects.exists()
    assert received_signals == []


@pytest.mark.django_db(transaction=True)
def test_committed_change_has_its_event_and_deliveries_and_signal_after_commit(received_signals):
    wants_all = make_endpoint("https://a.example/hooks")
    wants_it = make_endpoint("https://b.example/hooks", enabled_events=["customer.created"])
    make_endpoint("https://c.example/hooks", enabled_events=["payment.completed"])
    make_endpoint("https://d.example/hooks", active=False)

    with transaction.atomic():
        customer = make_customer(email="a@example.com")
        event = emit("customer.created", {"uuid": str(customer.uuid)})
        assert received_signals == []  # not before commit

    assert received_signals == [event] and received_signals[0] is event  # the same object, once
    assert Event.objects.get().data == {"uuid": str(customer.uuid)}
    deliveries = WebhookDelivery.objects.filter(event=event)
    assert {d.endpoint_id for d in deliveries} == {wants_all.pk, wants_it.pk}
    assert all(d.state == DeliveryState.PENDING for d in deliveries)


@pytest.mark.django_db(transaction=True)
def test_commit_queues_a_delivery_task_for_the_event(private_webhook_urls, broker):
    with Receiver(Reply(200)) as receiver:
        endpoint = make_endpoint(receiver.url())
        broker.lose_queued_tasks()
        event = emit("payment.created", {"uuid": "s"})

        assert broker.queued() == 1
        ((_, payload),) = get_broker().dequeue()
        task = SignedPackage.loads(payload)
        assert task["func"] == "payments_gateway.tasks.deliver_event_webhooks"
        assert task["args"] == (event.id,)
        # Run it the way a django-q2 worker would.
        assert deliver_event_webhooks(*task["args"]) == 1

    assert receiver.requests[0].headers["webhook-id"] == event.id
    assert WebhookDelivery.objects.get(endpoint=endpoint).state == DeliveryState.SUCCEEDED


def _worker():
    deliver_due()  # the parent closed its connections before forking: this opens the child's own


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_leaves_the_delivery_to_be_retried(private_webhook_urls, settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_TIMEOUT": 20}
    with Receiver(Reply(hang=True), Reply(200)) as receiver:
        make_endpoint(receiver.url())
        event = emit("payment.completed", {"uuid": "s"})
        delivery = WebhookDelivery.objects.get(event=event)
        connections.close_all()  # the forked worker opens its own connection
        worker = multiprocessing.get_context("fork").Process(target=_worker)
        worker.start()
        assert receiver.arrived.wait(30), "the worker never sent the request"
        os.kill(worker.pid, signal.SIGKILL)  # dies mid-delivery: claimed, posted, never recorded
        worker.join()

        delivery.refresh_from_db()
        assert delivery.state == DeliveryState.PENDING and delivery.attempts == 0
        assert delivery.claim_token  # still claimed by the dead worker ...
        now = timezone.now()
        assert deliver_due(now=now) == 0  # ... whose lease keeps others off for now
        lease_end = delivery.next_attempt_at
        # One delivery claimed: one timeout plus the margin, not a whole batch's worth.
        assert lease_duration(1) - timedelta(seconds=10) < lease_end - now <= lease_duration(1)

        assert deliver_due(now=lease_end) == 1  # lease over: another worker retries it

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.SUCCEEDED
    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.id, event.id]


@pytest.mark.django_db(transaction=True)
def test_two_claims_never_take_the_same_delivery():
    endpoint = make_endpoint("https://a.example/hooks")
    for i in range(5):
        emit("payment.created", {"n": i})
    now = timezone.now()
    _, first = claim_due(limit=3, now=now)
    _, second = claim_due(limit=10, now=now)
    assert len(first) == 3 and len(second) == 2
    assert not {d.pk for d in first} & {d.pk for d in second}
    assert all(d.endpoint == endpoint for d in first + second)


@pytest.mark.django_db
def test_a_late_worker_does_not_overwrite_a_newer_claim(private_webhook_urls):
    from payments_gateway.webhooks.outgoing.delivery import Outcome, record_attempts, redeliver

    make_endpoint("https://a.example/hooks")
    event = emit("payment.completed", {})
    now = timezone.now()
    token, (delivery,) = claim_due(now=now)
    redeliver(event, now=now)  # meanwhile the merchant redelivers: a new, unclaimed delivery
    record_attempts([(delivery, Outcome(status_code=500, error="late"), now)], token=token, now=now)

    fresh = WebhookDelivery.objects.get(pk=delivery.pk)
    assert fresh.state == DeliveryState.PENDING and fresh.attempts == 0 and fresh.next_attempt_at == now
    assert fresh.attempt_log.get().error == "late"  # the late attempt is still logged


@pytest.mark.django_db
def test_the_periodic_task_is_scheduled_and_delivers_due_webhooks(private_webhook_urls):
    from django_q.models import Schedule

    from payments_gateway.tasks import deliver_webhooks

    schedule = Schedule.objects.get(name="payments_gateway.deliver_webhooks")
    assert schedule.func == "payments_gateway.tasks.deliver_webhooks"
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 1 and schedule.repeats == -1

    with Receiver(Reply(200)) as receiver:
        make_endpoint(receiver.url())
        events = [emit("payment.created", {"n": n}) for n in range(25)]  # more than one batch
        assert deliver_webhooks() == 25
    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(e.id for e in events)


@pytest.mark.django_db(transaction=True)
def test_test_events_do_not_fire_the_in_process_signal(received_signals):
    from payments_gateway.webhooks.outgoing.delivery import send_test_event

    endpoint = make_endpoint("https://a.example/hooks")
    event = send_test_event(endpoint, "payment.completed")
    assert received_signals == []  # no shop code may act on sample data
    assert WebhookDelivery.objects.get().event == event


@pytest.mark.parametrize("value", [0, -1, "soon", 1.5])
def test_webhook_timeout_setting_is_validated(settings, value):
    from django.core.exceptions import ImproperlyConfigured

    from payments_gateway.conf import gateway_settings

    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "WEBHOOK_TIMEOUT": value}
    with pytest.raises(ImproperlyConfigured, match=r"PAYMENTS_GATEWAY\['WEBHOOK_TIMEOUT'\]"):
        gateway_settings.WEBHOOK_TIMEOUT


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_claim_disjoint_deliveries():
    make_endpoint("https://a.example/hooks")
    for i in range(40):
        emit("payment.created", {"n": i})
    now = timezone.now()

    def worker(_):
        claimed = []
        while batch := claim_due(limit=3, now=now)[1]:
            claimed += [d.pk for d in batch]
        return claimed

    ids = [pk for claimed in run_together(4, worker) for pk in claimed]
    assert len(ids) == len(set(ids)) == 40  # every delivery claimed, none twice
