"""The example shop's subscription product: "Coffee club, monthly" is subscribed to from its page, paid on the
hosted page, and the shop's page checks the payment itself; it never goes into the cart."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from payments_gateway.models import CheckoutSession, Subscription
from payments_gateway.services.subscriptions import renew_due_subscriptions

from .factories import make_payment

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("subscription_gateway")]


@pytest.fixture(autouse=True)
def seeded():
    call_command("seed_shop", stdout=io.StringIO())


def subscribe(client, **data):
    return client.post("/products/coffee-club/subscribe/", {"email": "club@example.com", "option": "test:USDC"} | data)


def test_a_customer_subscribes_to_the_coffee_club_and_pays(client, django_capture_on_commit_callbacks, mailoutbox):
    listing = client.get("/").content.decode()
    assert "Coffee club, monthly" in listing and "15.00 USD every month" in listing
    page = client.get("/products/coffee-club/").content.decode()
    assert 'id="subscribe"' in page and "/add/" not in page

    response = subscribe(client)
    session = CheckoutSession.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/pay/{session.uuid}/"
    subscription = Subscription.objects.get()
    assert (subscription.description, subscription.interval, str(subscription.amount.normalize())) == (
        "Coffee club, monthly", "month", "15")  # fmt: skip
    assert subscription.customer.email == "club@example.com" and session.type == "createSubscription"

    back = f"/subscribed/?session={session.uuid}&type=createSubscription"
    assert 'data-paid="false"' in client.get(back).content.decode()  # the redirect alone proves nothing
    make_payment(session, now=timezone.now())
    welcome = client.get(back).content.decode()
    assert 'data-paid="true"' in welcome and "Welcome to the Coffee club, monthly!" in welcome

    subscription.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        renew_due_subscriptions(now=subscription.current_period_end - timedelta(days=3))
    renewal = subscription.periods.get(number=2).session
    assert renewal.success_url.endswith("&type={{TRANSACTION_TYPE}}") and mailoutbox[0].to == ["club@example.com"]
    make_payment(renewal, now=subscription.current_period_end - timedelta(days=1))
    assert "Renewal paid" in client.get(f"/subscribed/?session={renewal.uuid}&type=renewSubscription").content.decode()


def test_any_coin_lets_the_subscriber_choose_on_the_payment_page(client):
    page = client.get("/products/coffee-club/").content.decode()
    assert 'value="any"' in page
    response = subscribe(client, option="any")
    session = CheckoutSession.objects.get()
    assert response["Location"] == f"/pay/{session.uuid}/" and session.deposit_address is None
    assert Subscription.objects.get().payment_methods == session.payment_methods == [
        {"network": "test", "asset": "ETH"}, {"network": "test", "asset": "USDC"}]  # fmt: skip
    assert "Choose how to pay" in client.get(response["Location"]).content.decode()


def test_a_subscription_never_goes_into_the_cart(client):
    response = client.post("/products/coffee-club/add/", {"quantity": 1}, follow=True)
    assert "is a subscription: subscribe on this page" in response.content.decode()
    assert client.session.get("cart", {}) == {}


@pytest.mark.parametrize("data", [{"email": "nope"}, {"option": "mars:DOGE"}])
def test_bad_subscribe_form_says_why_and_creates_nothing(client, data):
    response = subscribe(client, **data)
    assert response.status_code == 302 and response["Location"] == "/products/coffee-club/"
    assert not Subscription.objects.exists() and not CheckoutSession.objects.exists()


def test_an_unknown_session_is_not_a_subscription(client):
    page = client.get("/subscribed/?session=not-a-uuid").content.decode()
    assert "We could not find this payment." in page
