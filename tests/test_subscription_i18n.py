"""A subscription speaks its customer's language: the language of the hosted page on which they chose how to pay
(or gave their details) is kept with the session, and the reminder e-mails are written in it — subject, text, HTML,
dates and amounts — with links that open the pages in it; without one, the site's LANGUAGE_CODE (when shipped)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from payments_gateway.models import CheckoutSession, Subscription
from payments_gateway.services.subscription_mail import language_of
from payments_gateway.services.subscriptions import create_subscription_session, renew_due_subscriptions

from .factories import make_payment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("subscription_gateway")]

PAID = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)  # the first period ends 2025-04-10 09:00 UTC


def subscribe(**fields):
    values = {"amount": "1234.50", "currency": "USD", "interval": "month", "description": "Coffee club, monthly",
              "customer_email": "ann@example.com"}  # fmt: skip
    return create_subscription_session(**values | fields)


def choose_on_the_page(client, session, language):
    """The customer picks USDC on the hosted page shown in ``language`` (the chooser's own form and value)."""
    page = client.get(f"/pay/{session.uuid}/?lang={language}").content.decode()
    (value,) = re.findall(r'name="method" value="(test:USDC:\d+)"', page)
    client.post(f"/pay/{session.uuid}/method?lang={language}", {"method": value})
    session.refresh_from_db()
    return session


@pytest.fixture
def reminded(django_capture_on_commit_callbacks, mailoutbox):
    """``reminded(session)``: ``session`` (the first) is paid, the renewal opens 3 days before the period ends;
    the e-mail it sends."""

    def remind(session):
        make_payment(session, now=PAID)
        subscription = Subscription.objects.get()
        with django_capture_on_commit_callbacks(execute=True):
            renew_due_subscriptions(now=subscription.current_period_end - timedelta(days=3))
        return mailoutbox[-1]

    return remind


def test_the_language_the_customer_chose_in_is_kept_with_the_session(client):
    session = choose_on_the_page(client, subscribe(), "de")
    assert (session.asset, session.language) == ("USDC", "de")
    assert language_of(Subscription.objects.get()) == "de"


def test_the_reminder_is_written_in_that_language_with_its_dates_amounts_and_links(client, reminded):
    mail = reminded(choose_on_the_page(client, subscribe(), "de"))
    html, _ = mail.alternatives[0]
    assert '<html lang="de">' in html
    assert "1.234,50 USD" in mail.body and "10. April 2025 09:00" in mail.body
    renewal = CheckoutSession.objects.get(type="renewSubscription")
    assert f"https://shop.example/pay/{renewal.uuid}/?lang=de" in mail.body
    assert re.search(r"https://shop\.example/subscriptions/[^/\s]+/\?lang=de", mail.body)


def test_the_customer_form_keeps_its_page_s_language(client, settings):
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {"SUBSCRIPTION_REMINDERS": False}
    session = subscribe(customer_email="", network="test", asset="USDC", now=timezone.now())
    client.post(f"/pay/{session.uuid}/customer?lang=es", {"email": "ana@example.com", "name": "Ana"})
    session.refresh_from_db()
    assert (session.customer.email, session.language) == ("ana@example.com", "es")


@pytest.mark.parametrize(("language_code", "written_in"), [("fr-ca", "fr"), ("ja", "en")])
def test_without_a_known_language_the_site_s_language_code_when_shipped(reminded, settings, language_code,
                                                                       written_in):  # fmt: skip
    settings.LANGUAGE_CODE = language_code
    mail = reminded(subscribe(network="test", asset="USDC", now=PAID - timedelta(hours=1)))
    assert CheckoutSession.objects.exclude(language="").count() == 0
    assert f'<html lang="{written_in}">' in mail.alternatives[0][0]
