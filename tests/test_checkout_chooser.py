"""The hosted page's chooser: each payment method with the exact amount a choice locks, a plain form (no
JavaScript needed, CSRF-protected, rate-limited), switching until a payment is seen, and a clear message on the page
for every bad post, with nothing changed."""

import re

import pytest
from django.test import Client

from payments_gateway.models import CheckoutSession, DepositAddress, Event
from payments_gateway.services.methods import choose_payment_method
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.sessions import create_session
from payments_gateway.views.security import ACTION_LIMIT

from .factories import TEST_NETWORK, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]


@pytest.fixture
def session(use_networks):
    use_networks(test=TEST_NETWORK | {"display_name": "Testnet"})
    return create_session(amount="30.00", currency="USD", cancel_url="https://shop.example/cart")


def page(client, session, query=""):
    return client.get(f"/pay/{session.uuid}/{query}").content.decode()


def choose(client, session, value, **kwargs):
    return client.post(f"/pay/{session.uuid}/method", {"method": value}, **kwargs)


def buttons(html):
    """(value, visible text) of each method button of the chooser."""
    found = re.findall(r'<button type="submit" class="method[^"]*" name="method" value="([^"]*)">(.*?)</button>', html,
                       flags=re.S)  # fmt: skip
    return [(value, " ".join(re.sub(r"<[^>]+>", " ", text).split())) for value, text in found]


def unchanged(session):
    session.refresh_from_db()
    return (session.network, session.asset, session.amount_due, session.deposit_address_id,
            DepositAddress.objects.count(), Event.objects.count())  # fmt: skip


def test_the_chooser_lists_each_method_with_the_exact_amount_and_works_without_javascript(client, session):
    html = page(client, session)
    assert "Choose how to pay" in html and "<script" not in html  # a plain form
    assert buttons(html) == [
        ("test:ETH:10000000000000000", "ETH on Testnet 0.01 ETH"),
        ("test:USDC:30000000", "USDC on Testnet 30 USDC"),
    ]
    assert 'name="csrfmiddlewaretoken"' in html and f'action="/pay/{session.uuid}/method?lang=en"' in html
    response = choose(client, session, "test:ETH:10000000000000000")
    assert response.status_code == 302 and response["Location"] == f"/pay/{session.uuid}/"
    session.refresh_from_db()
    assert (session.asset, session.amount_due) == ("ETH", 10**16)  # the amount the button showed
    paying = page(client, session)
    assert 'Pay <span id="amount-due">0.01</span> ETH' in paying
    assert f'<code id="address">{session.address}</code>' in paying and 'id="switch-method"' in paying


def test_the_customer_switches_until_a_payment_is_seen(client, session):
    choose(client, session, "test:ETH:10000000000000000")
    html = page(client, session, "?change=1")
    assert "(current choice)" in html and "Back to paying in ETH" in html
    choose(client, session, "test:USDC:30000000")
    session.refresh_from_db()
    assert (session.asset, session.amount_due) == ("USDC", 30_000_000)

    make_transfer(session, 1_000_000)
    refresh_session(session.pk)
    html = page(client, session, "?change=1")
    assert "Choose how to pay" not in html and 'id="switch-method"' not in html  # the pay page, no switch link
    before = unchanged(session)
    response = choose(client, session, "test:ETH:10000000000000000", follow=True)
    assert "A payment was already sent to this checkout, so the payment method can no longer change. Pay the rest in " \
           "USDC on test." in response.content.decode()  # fmt: skip
    assert unchanged(session) == before


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("test:DAI:1", "DAI on test is not a payment method of this checkout."),
        ("test:ETH:9999999999999999", "The price in ETH changed to 0.01 ETH. Please check it and choose again."),
        ("test:ETH", "Please choose one of the payment methods below."),
        ("test:ETH:1e16", "Please choose one of the payment methods below."),
        ("", "Please choose one of the payment methods below."),
    ],
)
def test_a_bad_choice_is_a_message_on_the_page_and_changes_nothing(client, session, value, message):
    before = unchanged(session)
    response = choose(client, session, value, follow=True)
    html = response.content.decode()
    assert response.status_code == 200 and message in html and "Choose how to pay" in html
    assert unchanged(session) == before


def test_a_forged_post_without_the_csrf_token_is_refused(session):
    client = Client(enforce_csrf_checks=True)
    before = unchanged(session)
    assert choose(client, session, "test:ETH:10000000000000000").status_code == 403
    assert unchanged(session) == before


def test_the_choice_is_rate_limited_like_the_page_s_other_forms(client, session):
    for _ in range(ACTION_LIMIT):
        choose(client, session, "test:DAI:1")
    response = choose(client, session, "test:ETH:10000000000000000")
    assert response.status_code == 429 and "Retry-After" in response
    assert unchanged(session)[:3] == ("", "", None)


def test_a_session_created_with_a_network_and_asset_never_shows_the_chooser(client):
    fixed = create_session(amount="30.00", currency="USD", network="test", asset="USDC")
    html = page(client, fixed, "?change=1")
    assert "Choose how to pay" not in html and 'id="switch-method"' not in html
    assert 'Pay <span id="amount-due">30</span> USDC' in html


def test_status_json_before_a_choice_says_so(client, session):
    state = client.get(f"/pay/{session.uuid}/status").json()
    assert (state["method_chosen"], state["awaiting_payment"], state["deposit_address"]) == (False, False, None)
    assert state["message"] == "Choose how you want to pay."
    assert client.get(f"/pay/{session.uuid}/qr.png").status_code == 404


def test_an_expired_session_that_never_chose_says_so_and_links_back_to_the_shop(client, session):
    CheckoutSession.objects.filter(pk=session.pk).update(status="expired")
    html = page(client, session)
    assert "This payment expired. Please start a new checkout." in html and "Choose how to pay" not in html
    assert '<a id="back-to-shop" class="button" href="https://shop.example/cart">Back to the shop</a>' in html
    assert choose(client, session, "test:ETH:10000000000000000").status_code == 302
    assert unchanged(session)[:3] == ("", "", None)


def test_choose_payment_method_of_the_service_and_the_page_agree(client, session):
    # The amount a button shows is what the service locks for the same method.
    value = {v.split(":")[1]: v for v, _ in buttons(page(client, session))}["USDC"]
    choose_payment_method(session, "test", "USDC", expected_amount=int(value.split(":")[2]))
    assert session.amount_due == 30_000_000
