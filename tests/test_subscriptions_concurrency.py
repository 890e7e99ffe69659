"""Renewals are exactly once: two worker processes running the renewals task at the same moment (three times
each) open one session per subscription and period, and send one reminder each."""

from datetime import UTC, datetime, timedelta

import pytest

from payments_gateway.models import CheckoutSession, Event, Subscription, SubscriptionPeriod
from payments_gateway.services.subscriptions import create_subscription_session

from .factories import make_endpoint, make_payment
from .processes import child_env, run_together

START = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)
SUBSCRIPTIONS = 30


@pytest.mark.django_db(transaction=True)
def test_two_processes_open_each_renewal_once(subscription_gateway, broker):
    for _ in range(SUBSCRIPTIONS):
        session = create_subscription_session(
            amount="15.00", currency="USD", asset="USDC", network="test", interval="month",
            customer_email="club@example.com", now=START - timedelta(hours=1),
        )  # fmt: skip
        make_payment(session, now=START)
    due = Subscription.objects.first().current_period_end - timedelta(days=3)

    # The merchant listens: each event the workers emit is kicked onto the broker (ORM or Redis), once.
    make_endpoint("https://shop.example/hooks")
    broker.lose_queued_tasks()
    env = child_env(subscription_gateway, broker)
    results = run_together("tests.renewal_worker", [due.isoformat()], env)

    assert sum(r["renewals"] for r in results) == SUBSCRIPTIONS
    assert sum(r["mails"] for r in results) == SUBSCRIPTIONS
    assert sum(r["failed"] for r in results) == 0
    assert SubscriptionPeriod.objects.filter(number=2).count() == SUBSCRIPTIONS
    assert CheckoutSession.objects.filter(type="renewSubscription").count() == SUBSCRIPTIONS
    assert Event.objects.filter(type="subscription.renewal_due").count() == SUBSCRIPTIONS
    for subscription in Subscription.objects.all():
        assert subscription.periods.count() == 2
    kicked = Event.objects.filter(deliveries__isnull=False).distinct().count()
    assert kicked >= SUBSCRIPTIONS and broker.queued() == kicked
