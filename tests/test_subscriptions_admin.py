"""Subscriptions in the admin: filters, each period's session inline, cancel actions that ask for a reason and log
it; the dashboard counts active and past-due subscriptions and the monthly recurring revenue per currency."""

from decimal import Decimal

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse

from payments_gateway.models import Subscription
from payments_gateway.services.dashboard import subscription_figures

from .factories import make_customer, make_subscription

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("subscription_gateway")]

CHANGELIST = "/admin/payments_gateway/subscription/"


def test_filters_by_status_interval_and_currency(admin_client):
    make_subscription(interval="year", currency="EUR")
    make_subscription(status="past_due")
    page = admin_client.get(CHANGELIST)
    assert [spec.title for spec in page.context["cl"].filter_specs][:3] == ["status", "interval", "currency"]
    assert admin_client.get(CHANGELIST, {"status__exact": "past_due"}).context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"interval__exact": "year"}).context["cl"].result_count == 1
    assert admin_client.get(CHANGELIST, {"currency__exact": "EUR"}).context["cl"].result_count == 1


def test_the_page_lists_each_period_with_its_session(admin_client):
    subscription = make_subscription()
    session = subscription.periods.get().session
    page = admin_client.get(reverse("admin:payments_gateway_subscription_change", args=[subscription.pk]))
    assert page.status_code == 200
    body = page.content.decode()
    assert reverse("admin:payments_gateway_checkoutsession_change", args=[session.pk]) in body
    assert str(session.uuid) in body and "complete/paid" in body


def test_cancel_action_asks_for_a_reason_then_cancels_and_logs_it(admin_client):
    subscription = make_subscription()
    action = {"action": "cancel_at_period_end", "_selected_action": [subscription.pk]}
    asked = admin_client.post(CHANGELIST, action)
    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    assert not Subscription.objects.get().cancel_at_period_end  # nothing done before the reason is given
    no_reason = admin_client.post(CHANGELIST, action | {"confirm": "yes", "reason": ""})
    assert no_reason.status_code == 200 and not Subscription.objects.get().cancel_at_period_end
    done = admin_client.post(CHANGELIST, action | {"confirm": "yes", "reason": "Customer asked by phone"})
    assert done.status_code == 302
    assert Subscription.objects.get().cancel_at_period_end
    entry = LogEntry.objects.get(object_id=str(subscription.pk))
    assert entry.get_change_message() == "Canceled at the end of its period. Reason: Customer asked by phone"

    now = {"action": "cancel_now", "_selected_action": [subscription.pk], "confirm": "yes", "reason": "Fraud"}
    admin_client.post(CHANGELIST, now)
    assert Subscription.objects.get().status == "canceled"
    twice = admin_client.post(CHANGELIST, now, follow=True)
    assert "is already canceled" in twice.content.decode()
    assert LogEntry.objects.filter(object_id=str(subscription.pk)).count() == 2


def test_subscriptions_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(CHANGELIST + "add/").status_code == 403


def test_dashboard_counts_subscriptions_and_an_exact_monthly_recurring_revenue(admin_client):
    customer = make_customer()
    for _ in range(3):
        make_subscription(customer=customer, interval="year", amount=Decimal("100.00"))  # 3 × 100/12 = 25.00
    make_subscription(amount=Decimal("15.00"))
    make_subscription(amount=Decimal("9.00"), interval="month", interval_count=3, status="past_due")
    make_subscription(amount=Decimal("7.00"), interval="week", currency="EUR")  # 7 × 52 / 12 = 30.333…
    make_subscription(amount=Decimal("99.00"), status="canceled")
    make_subscription(amount=Decimal("99.00"), status="unpaid")
    figures = subscription_figures()
    assert (figures["active"], figures["past_due"]) == (5, 1)
    assert figures["mrr"] == {"EUR": Decimal("30.33"), "USD": Decimal("43.00")}
    page = admin_client.get(reverse("admin:payments_gateway_dashboard")).content.decode()
    assert 'id="pg-subscriptions-active">5<' in page and 'id="pg-subscriptions-past-due">1<' in page
    assert 'data-currency="USD" data-mrr="43.00"' in page and "30.33 EUR" in page
