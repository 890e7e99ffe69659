"""Reminder e-mails (text and HTML) carry the signed link to the customer's own page, which shows the status, the
next due date and the renewal's pay link, and cancels in two steps without JavaScript."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from payments_gateway.models import Subscription
from payments_gateway.services.subscription_mail import page_token
from payments_gateway.services.subscriptions import create_subscription_session, renew_due_subscriptions
from payments_gateway.views.security import ACTION_LIMIT

from .factories import make_payment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("subscription_gateway")]


@pytest.fixture
def subscription():
    """An active monthly subscription, paid an hour ago."""
    session = create_subscription_session(
        amount="15.00", currency="USD", asset="USDC", network="test", interval="month",
        description="Coffee club, monthly", customer_email="club@example.com", now=timezone.now() - timedelta(hours=2),
    )  # fmt: skip
    make_payment(session, now=timezone.now() - timedelta(hours=1))
    return Subscription.objects.get()


@pytest.fixture
def renewal_due(subscription, django_capture_on_commit_callbacks, mailoutbox):
    """The renewal of ``subscription`` opened (the task ran 3 days before the period ends): its reminder e-mail."""
    with django_capture_on_commit_callbacks(execute=True):
        renew_due_subscriptions(now=subscription.current_period_end - timedelta(days=3))
    (mail,) = mailoutbox
    return mail


def page_path(mail) -> str:
    url = re.search(r"https://shop\.example(/subscriptions/[^/\s]+/)", mail.body)
    assert url, mail.body
    return url.group(1)


def test_the_renewal_reminder_is_text_and_html_with_the_pay_link_and_the_page_link(subscription, renewal_due):
    renewal = subscription.periods.get(number=2).session
    assert renewal_due.to == ["club@example.com"]
    assert renewal_due.subject == "Your renewal of Coffee club, monthly is due"
    assert "15.00 USD" in renewal_due.body
    assert f"https://shop.example/pay/{renewal.uuid}/" in renewal_due.body
    html, mimetype = renewal_due.alternatives[0]
    assert mimetype == "text/html" and f'href="https://shop.example/pay/{renewal.uuid}/?lang=en"' in html
    assert f"https://shop.example{page_path(renewal_due)}" in html


def test_the_page_shows_status_due_date_and_the_open_renewal(client, subscription, renewal_due):
    response = client.get(page_path(renewal_due))
    assert response.status_code == 200
    page = response.content.decode()
    renewal = subscription.periods.get(number=2).session
    assert 'data-status="active"' in page and "Next payment due:" in page
    assert "15.00 USD every month" in page
    assert f'href="/pay/{renewal.uuid}/?lang=en"' in page  # the payment page speaks the same language
    assert response["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in response["Content-Security-Policy"]


def test_cancel_asks_for_confirmation_then_ends_the_subscription_with_its_period(client, subscription):
    page = f"/subscriptions/{page_token(subscription)}/"
    assert 'id="cancel-start"' in client.get(page).content.decode()
    confirm = client.get(page + "cancel")
    assert confirm.status_code == 200 and "Yes, cancel my subscription" in confirm.content.decode()
    subscription.refresh_from_db()
    assert not subscription.cancel_at_period_end  # asking is not cancelling
    done = client.post(page + "cancel", follow=True)
    subscription.refresh_from_db()
    assert subscription.cancel_at_period_end and subscription.status == "active"
    shown = done.content.decode()
    assert "will end with the period already paid" in shown and 'id="cancel-start"' not in shown
    assert client.post(page + "cancel").status_code == 302  # again: nothing more to cancel, no error
    assert Subscription.objects.get().canceled_at == subscription.canceled_at


def test_the_page_and_its_confirmation_have_the_shop_s_layout_and_keep_the_language(client, settings, subscription):
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {"CHECKOUT_BRANDING": {
        "name": "Mug Shop", "logo_url": "https://cdn.mugs.example/logo.svg", "accent_color": "#0b6e4f"}}  # fmt: skip
    page = f"/subscriptions/{page_token(subscription)}/"
    response = client.get(page + "?lang=fr")
    html = response.content.decode()
    assert response["Content-Language"] == "fr" and '<html lang="fr">' in html
    assert '<span class="shop-name">Mug Shop</span>' in html and '<link rel="stylesheet" href="/pay/theme.css">' in html
    assert "img-src 'self' data: https://cdn.mugs.example;" in response["Content-Security-Policy"]
    switcher = re.findall(r'<a href="([^"]+)" lang="([a-z]+)"', html)
    assert switcher == [(f"{page}?lang={code}", code) for code in ("en", "de", "es", "fr")]
    assert '<input type="hidden" name="lang" value="fr">' in html  # the GET form to the confirmation keeps it
    confirm = client.get(page + "cancel?lang=fr").content.decode()
    assert f'action="{page}cancel?lang=fr"' in confirm and f'href="{page}?lang=fr"' in confirm
    done = client.post(page + "cancel?lang=fr")
    assert done.status_code == 302 and done["Location"] == f"{page}?lang=fr"


def test_a_past_due_subscription_is_canceled_at_once(client, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(status="past_due")
    client.post(f"/subscriptions/{page_token(subscription)}/cancel")
    assert Subscription.objects.get().status == "canceled"


def test_a_forged_or_altered_token_is_404(client, subscription):
    token = page_token(subscription)
    assert client.get(f"/subscriptions/{token[:-2]}xx/").status_code == 404
    assert client.post(f"/subscriptions/{subscription.uuid}/cancel").status_code == 404
    assert Subscription.objects.get().status == "active"


def test_cancel_posts_are_rate_limited(client, subscription):
    url = f"/subscriptions/{page_token(subscription)}/cancel"
    for _ in range(ACTION_LIMIT):
        client.post(url)
    refused = client.post(url)
    assert refused.status_code == 429 and refused["Retry-After"]


def test_past_due_reminder_names_the_due_date_and_links_the_renewal(
    subscription, renewal_due, django_capture_on_commit_callbacks, mailoutbox
):
    with django_capture_on_commit_callbacks(execute=True):
        renew_due_subscriptions(now=subscription.current_period_end)
    mail = mailoutbox[-1]
    assert mail.subject == "Your payment for Coffee club, monthly is past due"
    assert "has not arrived yet" in mail.body
    assert f"/pay/{subscription.periods.get(number=2).session.uuid}/" in mail.body


def test_no_reminder_when_reminders_are_off(settings, subscription, django_capture_on_commit_callbacks, mailoutbox):
    settings.PAYMENTS_GATEWAY = {**settings.PAYMENTS_GATEWAY, "SUBSCRIPTION_REMINDERS": False}
    with django_capture_on_commit_callbacks(execute=True):
        assert renew_due_subscriptions(now=subscription.current_period_end - timedelta(days=3))["renewals"] == 1
    assert mailoutbox == []
