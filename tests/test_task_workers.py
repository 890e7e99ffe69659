"""Real django-q2 clusters (``manage.py qcluster``) on the test database, each test once on the ORM broker and once
on the Redis broker: they deliver webhooks, process incoming events, scan and sweep. Redis keeps queued tasks in
memory only, so work whose task is lost (a Redis restart or FLUSHDB; on the ORM broker, a worker dying with the
tasks it took) must be found again by the periodic tasks: it lives in the database. And with no broker at all,
the requests that queue work still succeed, without a traceback, and the work waits in the database."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule, Task
from django_q.scheduler import scheduler

from payments_gateway import tasks
from payments_gateway.events import emit
from payments_gateway.models import Customer, DeliveryState, Event, Sweep, Transfer, WebhookDelivery, WebhookEvent
from payments_gateway.scanning import scan_network
from payments_gateway.webhooks.incoming.processing import STALE_RECEIVED, enqueue, reprocess
from payments_gateway.webhooks.outgoing.delivery import send_test_event

from . import incoming_helpers as h
from .factories import make_endpoint, make_forwarder_session
from .http_receiver import Receiver, closed_port
from .processes import Broker, Service, child_env, django_command, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ETH = 10**18


@contextmanager
def cluster(broker: Broker):
    """``manage.py qcluster`` (two workers) on this test's settings and broker, stopped afterwards."""
    service = Service(
        f"qcluster-{broker.name}", django_command("qcluster"), child_env(settings.PAYMENTS_GATEWAY, broker)
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()


def post_incoming(client, event_id: str):
    """A signed incoming webhook of source "partner", as its sender posts it; the answer."""
    body = h.envelope(event_id)
    response = client.post("/webhooks/partner/", data=body, content_type="application/json",
                           headers=h.standard_headers(body, msg_id=f"msg_{event_id}"))  # fmt: skip
    assert response.status_code == 202, response.content
    return response


def run_schedules_now() -> None:
    """The cluster's scheduler comes round (it does every 30 s): every periodic task is due and queued."""
    Schedule.objects.update(next_run=timezone.now() - timedelta(seconds=1))
    scheduler()


def emitted(n: int) -> Event:
    with transaction.atomic():
        return emit("customer.created", {"n": n})


def handled(event_ids) -> bool:
    names = {f"from partner:{event_id}" for event_id in event_ids}
    return Customer.objects.filter(name__in=names).count() == len(names)


def all_delivered() -> bool:
    deliveries = WebhookDelivery.objects.all()
    return deliveries.exists() and not deliveries.exclude(state=DeliveryState.SUCCEEDED).exists()


def test_a_cluster_delivers_each_event_and_processes_each_incoming_webhook(
    broker, private_webhook_urls, webhook_sources, client
):
    with Receiver() as receiver, cluster(broker) as service:
        endpoint = make_endpoint(receiver.url())
        events = [send_test_event(endpoint, "payment.created") for _ in range(2)]
        incoming = [f"evt_in_{i}" for i in range(3)]
        for event_id in incoming:
            post_incoming(client, event_id)

        # (Results are saved by the cluster's monitor just after each task.)
        done = lambda: all_delivered() and handled(incoming) and Task.objects.count() >= 5  # noqa: E731
        wait_for(done, 90, "deliveries and incoming events", (service,))

    assert sorted(r.headers["webhook-id"] for r in receiver.requests) == sorted(e.id for e in events)
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}
    # The cluster's workers ran the tasks the requests queued (no periodic run has come round yet).
    ran = Task.objects.values_list("func", flat=True)
    assert sorted(ran) == sorted(
        ["payments_gateway.tasks.deliver_event_webhooks"] * 2 + ["payments_gateway.tasks.process_incoming_webhook"] * 3
    )


def test_the_same_task_queued_many_times_runs_the_handler_once(broker, webhook_sources, client):
    post_incoming(client, "evt_many")
    pk = WebhookEvent.objects.get().pk
    for _ in range(9):  # the sender's retries, a sweep and an admin reprocess may all queue it again
        enqueue(pk)
    assert broker.queued() == 10

    with cluster(broker) as service:
        wait_for(lambda: Task.objects.count() >= 10, 90, "ten tasks run by two workers", (service,))

    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts) == ("processed", 1)
    assert Customer.objects.filter(name="from partner:evt_many").count() == 1  # the handler ran once


def test_work_whose_queued_task_is_lost_is_found_again_by_the_periodic_tasks(
    broker, forwarder_settings, private_webhook_urls, webhook_sources, chain, client
):
    # Paid and confirmed before: a deposit to sweep.
    swept = make_forwarder_session(asset="ETH", amount_due=ETH)
    scan_network("anvil")
    chain.send_eth(swept.address, ETH)
    chain.mine(2)
    scan_network("anvil")
    # Paid now: nobody has scanned it yet.
    later = make_forwarder_session(asset="ETH", amount_due=ETH)
    chain.send_eth(later.address, ETH)

    with Receiver() as receiver:
        make_endpoint(receiver.url())
        sent = [emitted(n) for n in range(2)]  # the outbox: each event kicks its delivery task on commit
        incoming = [f"evt_lost_{i}" for i in range(2)]
        for event_id in incoming:
            post_incoming(client, event_id)
        run_schedules_now()  # scan, sweep, deliveries, incoming retries: queued
        assert broker.queued() >= len(sent) + len(incoming) + 4

        broker.lose_queued_tasks()  # Redis restarted (or FLUSHDB); on the ORM broker, taken by a dead worker
        assert broker.queued() == 0
        # Nothing was done: all of it waits in the database.
        assert WebhookDelivery.objects.filter(state=DeliveryState.PENDING).count() == len(sent)
        assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"received"}
        assert not Sweep.objects.exists() and not Transfer.objects.filter(session=later).exists()

        # Time passes: the incoming events have waited longer than a queued task ever should.
        WebhookEvent.objects.update(received_at=timezone.now() - STALE_RECEIVED - timedelta(seconds=1))
        with cluster(broker) as service:
            run_schedules_now()  # the next periodic run: every task re-finds its work in the database
            wait_for(
                lambda: (
                    handled(incoming)
                    and Sweep.objects.filter(addresses=swept.deposit_address).exists()
                    and Transfer.objects.filter(session=later).exists()
                    and all_delivered()
                ),
                120,
                "the lost work to be found again",
                (service,),
            )
            # The scan's own events (transaction.detected, payment.pending...) were kicked and delivered too.
            wait_for(lambda: all_delivered() and Event.objects.filter(session=later).count() >= 2, 60,
                     "the scan's events", (service,))  # fmt: skip

    events = set(Event.objects.filter(deliveries__isnull=False).values_list("id", flat=True))
    assert {r.headers["webhook-id"] for r in receiver.requests} == events
    assert {e.id for e in sent} <= events
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_with_the_broker_down_requests_succeed_and_the_work_waits_in_the_database(
    monkeypatch, caplog, private_webhook_urls, webhook_sources, client
):
    Broker("redis", f"redis://127.0.0.1:{closed_port()}/2").activate(monkeypatch)  # nothing listens there
    caplog.set_level(logging.WARNING)
    with Receiver() as receiver:
        event = send_test_event(make_endpoint(receiver.url()), "payment.created")
        post_incoming(client, "evt_no_broker")

        assert "Could not queue the delivery of " + event.id in caplog.text
        assert "the periodic sweep will process it" in caplog.text
        with transaction.atomic():  # the admin's "Reprocess" action
            reprocess(WebhookEvent.objects.all())
        assert "reprocess it again once the broker is back" in caplog.text
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"

        # Redis is back; the periodic tasks (which the cluster's scheduler queues) find the work.
        WebhookEvent.objects.update(received_at=timezone.now() - STALE_RECEIVED - timedelta(seconds=1))
        assert tasks.deliver_webhooks() == 1
        assert tasks.retry_incoming_webhooks() == 1

    assert [r.headers["webhook-id"] for r in receiver.requests] == [event.id]
    assert handled(["evt_no_broker"])
