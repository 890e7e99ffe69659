"""Subscriptions under the payment-method rules: the first session may let the customer choose the coin and network
like any session (and the subscription keeps what it offered, in the sessions' format); each renewal is in the
network and asset the customer paid the period before with, on a deposit address of its own."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from payments_gateway.models import CheckoutSession, Subscription
from payments_gateway.services.methods import choose_payment_method
from payments_gateway.services.payments import expire_due_sessions, refresh_session
from payments_gateway.services.reconciliation import credit_transfer
from payments_gateway.services.subscriptions import (
    cancel_subscription,
    create_subscription_session,
    open_renewal,
    renew_due_subscriptions,
)

from .factories import make_payment, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("subscription_gateway")]

START = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
BOTH = [{"network": "test", "asset": "ETH"}, {"network": "test", "asset": "USDC"}]


def subscribe(**fields):
    values = {"amount": "15.00", "currency": "USD", "interval": "month", "description": "Coffee club, monthly",
              "customer_email": "club@example.com"}  # fmt: skip
    return create_subscription_session(**values | {"now": START - timedelta(hours=1)} | fields)


def subscription_of(session):
    return Subscription.objects.get(periods__session=session)


def renewal_of(first, *, pay_with: tuple[str, str]):
    """The customer chooses ``pay_with`` on the first session and pays it; the renewal the task then opens."""
    chosen = choose_payment_method(first, *pay_with, now=START - timedelta(minutes=30))
    make_payment(chosen, now=START)
    subscription = Subscription.objects.get()
    return chosen, open_renewal(subscription, now=subscription.current_period_end - timedelta(days=3))


def test_a_first_session_without_network_and_asset_opens_on_the_chooser(client):
    first = subscribe(now=None)  # open now, so its page is the chooser
    assert (first.network, first.asset, first.amount_due, first.deposit_address) == ("", "", None, None)
    assert first.payment_methods == BOTH
    subscription = Subscription.objects.get()
    assert subscription.payment_methods == first.payment_methods  # main's format: [{"network", "asset"}, ...]
    assert "Choose how to pay" in client.get(f"/pay/{first.uuid}/").content.decode()


@pytest.mark.parametrize(("pay_with", "amount"), [(("test", "USDC"), 15_000_000), (("test", "ETH"), 5 * 10**15)])
def test_the_renewal_is_in_the_method_the_customer_paid_with(client, pay_with, amount):
    first, renewal = renewal_of(subscribe(), pay_with=pay_with)
    assert (renewal.type, renewal.network, renewal.asset, renewal.amount_due) == ("renewSubscription", *pay_with,
                                                                                  amount)  # fmt: skip
    assert renewal.payment_methods == [{"network": pay_with[0], "asset": pay_with[1]}]
    assert "Choose how to pay" not in client.get(f"/pay/{renewal.uuid}/").content.decode()
    # Addresses are never reused: the renewal has its own, made for it.
    assert renewal.deposit_address not in (None, first.deposit_address)
    assert not CheckoutSession.objects.exclude(pk=renewal.pk).filter(deposit_address=renewal.deposit_address).exists()
    # The subscription still says what it offered.
    assert Subscription.objects.get().payment_methods == BOTH


def test_a_renewal_paid_in_full_renews_the_subscription_that_the_customer_chose_for():
    _, renewal = renewal_of(subscribe(), pay_with=("test", "ETH"))
    subscription = Subscription.objects.get()
    end = subscription.current_period_end
    make_payment(renewal, now=end - timedelta(days=1))
    subscription.refresh_from_db()
    assert subscription.status == "active" and subscription.current_period_start == end


def test_a_renewal_paid_to_last_period_s_address_is_unmatched_until_the_merchant_credits_it():
    first, renewal = renewal_of(subscribe(), pay_with=("test", "USDC"))
    end = Subscription.objects.get().current_period_end
    stray = make_transfer(first, renewal.amount_due, status="confirmed", block_time=end - timedelta(days=2))
    refresh_session(first.pk, now=end - timedelta(days=2))
    stray.refresh_from_db()
    # The old address stays the first session's: the money is that session's, unmatched, never the renewal's.
    assert (stray.session_id, stray.reason, stray.resolution) == (first.pk, "after_late_window", "open")
    assert Subscription.objects.get().current_period_start == START
    credit_transfer(stray, renewal, now=end - timedelta(days=1))
    subscription = Subscription.objects.get()
    assert (subscription.status, subscription.current_period_start) == ("active", end)
    assert CheckoutSession.objects.get(pk=renewal.pk).status == "complete"


def test_a_first_session_that_never_chose_ends_the_subscription_after_its_late_window():
    never = subscribe()
    expire_due_sessions(now=never.expires_at)
    renew_due_subscriptions(now=never.expires_at + timedelta(hours=24))  # past the late payment window
    ended = Subscription.objects.get()
    assert (ended.status, ended.cancellation_reason) == ("canceled", "incomplete_expired")
    assert CheckoutSession.objects.get(pk=never.pk).deposit_address is None  # no address was ever taken


def test_canceling_before_the_customer_chose_cancels_the_first_session():
    subscription = subscription_of(subscribe())
    cancel_subscription(subscription, now=START)
    assert subscription.status == "canceled" and subscription.periods.get().session.status == "canceled"


def test_a_first_session_offering_listed_methods_and_the_api_shows_them(api):
    body = {"type": "createSubscription", "interval": "month", "amount": "15.00", "currency": "USD",
            "customer_email": "club@example.com", "payment_methods": [{"network": "test", "asset": "USDC"},
                                                                     {"network": "test", "asset": "ETH"}]}  # fmt: skip
    response = api.post("/api/v1/sessions/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["network"], data["asset"], data["deposit_address"], data["amount_due"]) == (None, None, None, None)
    methods = [{"network": "test", "asset": "USDC", "chain_id": 31337, "decimals": 6},
               {"network": "test", "asset": "ETH", "chain_id": 31337, "decimals": 18}]  # fmt: skip
    assert data["payment_methods"] == methods
    got = api.get(f"/api/v1/subscriptions/{data['subscription']}/").json()
    assert got["payment_methods"] == methods  # described like a session's methods


def test_network_and_asset_with_payment_methods_is_refused_naming_the_field():
    with pytest.raises(ValidationError) as raised:
        subscribe(network="test", asset="USDC", payment_methods=BOTH)
    assert "payment_methods" in raised.value.message_dict and not Subscription.objects.exists()
