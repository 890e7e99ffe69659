"""A subscription's life with time passed in: created with its first session, a year of monthly renewals, a missed
period and its recovery, the grace period, cancellations — each with its events, and renewals exactly once."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from payments_gateway.models import (
    CheckoutSession,
    Customer,
    Event,
    Order,
    Subscription,
    SubscriptionPeriod,
)
from payments_gateway.services.payments import expire_due_sessions
from payments_gateway.services.periods import boundary
from payments_gateway.services.sessions import redirect_url
from payments_gateway.services.subscriptions import (
    cancel_subscription,
    create_subscription_session,
    open_renewal,
    renew_due_subscriptions,
)

from .factories import make_customer, make_payment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("subscription_gateway")]

START = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """``tick(now)``: the renewals task runs at ``now`` (and what it sends after commit is sent)."""

    def run(now):
        with django_capture_on_commit_callbacks(execute=True):
            return renew_due_subscriptions(now=now)

    return run


def subscribe(now=START - timedelta(hours=1), **fields):
    values = {
        "amount": "15.00", "currency": "USD", "asset": "USDC", "network": "test", "interval": "month",
        "description": "Coffee club, monthly", "customer_email": "club@example.com",
        "success_url": "https://shop.example/thanks?type={{TRANSACTION_TYPE}}",
    } | fields  # fmt: skip
    return create_subscription_session(now=now, **values)


def subscription_of(session):
    return Subscription.objects.get(periods__session=session)


def event_types():
    return list(Event.objects.order_by("created", "pk").values_list("type", flat=True))


def open_renewal_session(subscription):
    return subscription.periods.order_by("-number").first().session


def active_subscription(**fields):
    """A subscription whose first session was paid at ``START``: active, in its first period."""
    first = subscribe(**fields)
    make_payment(first, now=START)
    return subscription_of(first)


def renewal_opened(tick):
    """An active subscription, the end of its first period, and the renewal session that the renewals task opened
    3 days before that end."""
    subscription = active_subscription()
    end = subscription.current_period_end
    tick(end - 3 * DAY)
    return subscription, end, open_renewal_session(subscription)


def test_creating_makes_an_incomplete_subscription_its_customer_and_first_session():
    session = subscribe()
    subscription = subscription_of(session)
    assert session.type == "createSubscription" and session.amount_due == 15_000_000
    assert subscription.status == "incomplete" and subscription.current_period_end is None
    assert (subscription.interval, subscription.interval_count, subscription.description) == (
        "month", 1, "Coffee club, monthly")  # fmt: skip
    assert subscription.customer.email == "club@example.com" and session.customer == subscription.customer
    assert subscription.payment_methods == [{"network": "test", "asset": "USDC"}]
    assert event_types() == ["customer.created", "subscription.created", "payment.created"]
    created = Event.objects.get(type="payment.created")
    assert created.data["subscription"] == str(subscription.uuid) and created.data["type"] == "createSubscription"
    assert redirect_url(session.success_url, session).endswith("type=createSubscription")


def test_paid_first_session_activates_it_from_the_confirmation_time():
    session = subscribe()
    make_payment(session, now=START)
    subscription = subscription_of(session)
    assert subscription.status == "active"
    assert subscription.current_period_start == START
    assert subscription.current_period_end == datetime(2025, 2, 28, 10, tzinfo=UTC)
    assert event_types()[-2:] == ["payment.completed", "subscription.activated"]
    assert Event.objects.get(type="subscription.activated").data["current_period_end"] == "2025-02-28T10:00:00+00:00"


def test_a_year_of_monthly_renewals_follows_the_calendar(tick, mailoutbox):
    subscription = active_subscription()
    ends = []
    for number in range(2, 14):
        end = subscription.current_period_end
        assert tick(end - 3 * DAY - timedelta(minutes=1))["renewals"] == 0  # not yet
        assert tick(end - 3 * DAY)["renewals"] == 1
        assert tick(end - 3 * DAY)["renewals"] == 0  # the same run again opens nothing
        renewal = open_renewal_session(subscription)
        assert renewal.type == "renewSubscription" and renewal.amount_due == 15_000_000
        assert renewal.expires_at == end + 7 * DAY  # payable until the grace period ends
        assert redirect_url(renewal.success_url, renewal).endswith("type=renewSubscription")
        make_payment(renewal, now=end - DAY)
        subscription.refresh_from_db()
        assert subscription.status == "active" and subscription.current_period_start == end
        assert subscription.periods.get(number=number).session == renewal
        ends.append(subscription.current_period_end.date().isoformat())
    assert ends == [
        "2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30", "2025-07-31", "2025-08-31", "2025-09-30",
        "2025-10-31", "2025-11-30", "2025-12-31", "2026-01-31", "2026-02-28",
    ]  # fmt: skip
    assert SubscriptionPeriod.objects.count() == 13 and CheckoutSession.objects.count() == 13
    types = event_types()
    assert types.count("subscription.renewal_due") == types.count("subscription.renewed") == 12
    assert types.count("payment.completed") == 13
    renewed = Event.objects.filter(type="payment.completed").order_by("created", "pk").last()
    assert renewed.data["type"] == "renewSubscription" and renewed.data["subscription"] == str(subscription.uuid)
    assert [m.subject for m in mailoutbox] == ["Your renewal of Coffee club, monthly is due"] * 12


def test_a_missed_period_goes_past_due_then_recovers_when_paid(tick, mailoutbox):
    subscription, end, renewal = renewal_opened(tick)
    assert tick(end - timedelta(seconds=1))["refreshed"] == 0  # nothing to do before the period ends
    tick(end)
    subscription.refresh_from_db()
    assert subscription.status == "past_due"
    past_due = Event.objects.get(type="subscription.past_due")
    assert past_due.data["latest_session"] == str(renewal.uuid)
    assert mailoutbox[-1].subject == "Your payment for Coffee club, monthly is past due"
    assert f"https://shop.example/pay/{renewal.uuid}/" in mailoutbox[-1].body
    tick(end + 2 * DAY)
    assert Event.objects.filter(type="subscription.past_due").count() == 1 and len(mailoutbox) == 2

    make_payment(renewal, now=end + 2 * DAY)  # recovery: the period paid is the one that started at ``end``
    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert subscription.current_period_start == end
    assert subscription.current_period_end == boundary(START, "month", 1, 2)
    assert event_types()[-2:] == ["payment.completed", "subscription.renewed"]
    assert Event.objects.get(type="subscription.renewed").data["status"] == "active"


@pytest.mark.parametrize("after_grace", ["canceled", "unpaid"])
def test_unpaid_after_the_grace_period_ends_it(settings, tick, after_grace):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "SUBSCRIPTION_AFTER_GRACE": after_grace}
    subscription, end, renewal = renewal_opened(tick)
    tick(end + 7 * DAY - timedelta(seconds=1))
    assert Subscription.objects.get().status == "past_due"
    tick(end + 7 * DAY)
    expire_due_sessions(now=end + 7 * DAY)
    subscription.refresh_from_db()
    assert subscription.status == after_grace and subscription.ended_at == end + 7 * DAY
    assert subscription.cancellation_reason == ("payment_failed" if after_grace == "canceled" else "")
    assert Event.objects.get(type="subscription.canceled").data["status"] == after_grace
    assert tick(end + 30 * DAY) == {"refreshed": 0, "renewals": 0, "failed": 0}  # no more renewals

    # A late payment of the expired renewal (inside its late payment window) revives an unpaid subscription only.
    make_payment(renewal, now=end + 7 * DAY + timedelta(hours=2))
    subscription.refresh_from_db()
    assert CheckoutSession.objects.get(pk=renewal.pk).status == "complete"
    if after_grace == "unpaid":
        assert subscription.status == "active" and subscription.current_period_start == end
        assert subscription.ended_at is None and "subscription.renewed" in event_types()
    else:
        assert subscription.status == "canceled" and "subscription.renewed" not in event_types()


def test_cancel_at_period_end_opens_no_renewal_and_ends_with_the_period(tick):
    subscription = active_subscription()
    end = subscription.current_period_end
    cancel_subscription(subscription, at_period_end=True, now=START + DAY)
    assert subscription.cancel_at_period_end and subscription.status == "active"
    assert Event.objects.filter(type="subscription.updated").get().data["cancel_at_period_end"] is True
    with pytest.raises(ValidationError) as twice:
        cancel_subscription(subscription, at_period_end=True, now=START + 2 * DAY)
    assert "already set to cancel at the end of its period (2025-02-28 10:00 UTC)" in str(
        twice.value.message_dict["at_period_end"])  # fmt: skip
    tick(end - 3 * DAY)
    assert SubscriptionPeriod.objects.count() == 1  # no renewal for a period that will not come
    tick(end)
    subscription.refresh_from_db()
    assert subscription.status == "canceled" and subscription.ended_at == end
    assert subscription.cancellation_reason == "requested"
    assert event_types()[-1] == "subscription.canceled"


def test_cancel_now_cancels_the_open_renewal_and_twice_is_refused(tick):
    subscription, _end, renewal = renewal_opened(tick)
    cancel_subscription(subscription, now=subscription.current_period_end - 2 * DAY)
    assert subscription.status == "canceled" and subscription.cancellation_reason == "requested"
    renewal.refresh_from_db()
    assert renewal.status == "canceled"  # nobody can pay for it any more
    assert event_types()[-2:] == ["subscription.canceled", "payment.failed"]
    with pytest.raises(ValidationError) as twice:
        cancel_subscription(subscription)
    assert "is already canceled" in twice.value.message_dict["status"][0]
    with pytest.raises(ValidationError):
        cancel_subscription(subscription, at_period_end=True)
    assert Event.objects.filter(type="subscription.canceled").count() == 1


def test_an_incomplete_subscription_cannot_cancel_at_period_end_but_can_now():
    subscription = subscription_of(subscribe())
    with pytest.raises(ValidationError) as excinfo:
        cancel_subscription(subscription, at_period_end=True)
    assert "incomplete subscription has no paid period" in excinfo.value.message_dict["at_period_end"][0]
    cancel_subscription(subscription)
    assert subscription.status == "canceled"
    assert CheckoutSession.objects.get().status == "canceled"


def test_an_incomplete_subscription_ends_when_its_first_session_can_no_longer_be_paid(tick):
    first = subscribe()
    expire_due_sessions(now=first.expires_at)
    tick(first.expires_at + timedelta(hours=23))  # a late payment may still arrive
    assert Subscription.objects.get().status == "incomplete"
    tick(first.expires_at + timedelta(hours=24))
    subscription = Subscription.objects.get()
    assert subscription.status == "canceled" and subscription.cancellation_reason == "incomplete_expired"


def test_a_renewal_paid_early_advances_the_period_and_the_next_opens_only_in_that_period(tick):
    subscription = active_subscription(interval="week")
    end = subscription.current_period_end
    tick(end - 3 * DAY)
    make_payment(open_renewal_session(subscription), now=end - 3 * DAY)
    subscription.refresh_from_db()
    assert subscription.current_period_start == end
    # With 3 days' notice and weekly periods the next renewal is due 4 days into the period, not before it starts.
    assert tick(end - timedelta(minutes=1))["renewals"] == 0
    assert tick(end + 4 * DAY)["renewals"] == 1


def test_open_renewal_twice_opens_one_session():
    subscription = active_subscription()
    due = subscription.current_period_end - 3 * DAY
    assert open_renewal(subscription, now=due) is not None
    assert open_renewal(subscription, now=due) is None
    assert SubscriptionPeriod.objects.count() == 2 and CheckoutSession.objects.count() == 2


def nothing_written():
    return not (Subscription.objects.exists() or CheckoutSession.objects.exists() or Order.objects.exists()
                or Event.objects.exists() or Customer.objects.exists())  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"interval": "fortnight"}, "interval", "unknown interval 'fortnight'"),
        ({"interval_count": 0}, "interval_count", "from 1 to 12"),
        ({"interval_count": 1000}, "interval_count", "from 1 to 12"),
        ({"customer_email": ""}, "customer_email", "give the customer's customer_email"),
        ({"customer_email": "not-an-address"}, "customer_email", "not a valid e-mail address"),
        ({"network": "mars"}, "network", "unknown network 'mars'"),
        ({"amount": "0"}, "amount", "greater than zero"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(fields, field, message):
    with pytest.raises(ValidationError) as excinfo:
        subscribe(**fields)
    assert message in " ".join(excinfo.value.message_dict[field])
    assert nothing_written()


def test_a_customer_without_an_email_is_refused_while_reminders_are_on(settings):
    customer = make_customer(email="")
    with pytest.raises(ValidationError) as excinfo:
        subscribe(customer=str(customer.uuid), customer_email="")
    assert "has no e-mail address" in excinfo.value.message_dict["customer"][0]
    assert not Subscription.objects.exists()
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "SUBSCRIPTION_REMINDERS": False}
    assert subscription_of(subscribe(customer=customer, customer_email="")).customer == customer


def test_reminders_without_public_url_is_a_configuration_error_naming_the_key(settings):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "PUBLIC_URL": None}
    with pytest.raises(ImproperlyConfigured, match=r"PAYMENTS_GATEWAY\['PUBLIC_URL'\] is not set"):
        subscribe()
    assert nothing_written()
