"""The example shop: order → "Pay with crypto" → hosted page → success page that checks the session itself."""

from decimal import Decimal

import pytest

from payments_gateway.models import CheckoutSession
from payments_gateway.services.payments import refresh_session

from .factories import make_order, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]


def pay(client, order, option="test:USDC"):
    return client.post(f"/orders/{order.uuid}/pay/", {"option": option})


def test_order_page_offers_the_configured_networks_and_assets(client, shop_order):
    page = client.get(f"/orders/{shop_order.uuid}/").content.decode()
    assert 'id="pay-with-crypto"' in page
    assert '<option value="test:ETH">ETH on test</option>' in page
    assert '<option value="test:USDC">USDC on test</option>' in page
    assert '<option value="any">Any coin (choose on the payment page)</option>' in page


def test_any_coin_lets_the_customer_choose_on_the_payment_page(client, shop_order):
    response = pay(client, shop_order, option="any")
    session = CheckoutSession.objects.get()
    assert response["Location"] == f"/pay/{session.uuid}/" and session.network == ""
    assert [m["asset"] for m in session.payment_methods] == ["ETH", "USDC"]
    assert "Choose how to pay" in client.get(response["Location"]).content.decode()
    pay(client, shop_order, option="any")  # again (a double click): the same session, not a second address
    assert CheckoutSession.objects.count() == 1
    page = client.get(f"/orders/{shop_order.uuid}/").content.decode()
    assert f'href="/pay/{session.uuid}/">Continue your payment</a>' in page


def test_pay_with_crypto_starts_a_session_and_opens_the_hosted_page(client, shop_order):
    response = pay(client, shop_order)
    session = CheckoutSession.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/pay/{session.uuid}/"
    assert session.order == shop_order and session.amount_due == 24_000_000 and session.asset == "USDC"
    assert session.success_url == f"http://testserver/orders/{shop_order.uuid}/paid/?session={{CHECKOUT_SESSION_ID}}"
    page = client.get(f"/orders/{shop_order.uuid}/").content.decode()
    assert f'href="/pay/{session.uuid}/"' in page  # continue the open payment


def test_unknown_option_is_refused(client, shop_order):
    page = client.post(f"/orders/{shop_order.uuid}/pay/", {"option": "mars:DOGE"}, follow=True).content.decode()
    assert "Choose a network and an asset" in page and not CheckoutSession.objects.exists()


def test_cancel_returns_to_the_order(client, shop_order):
    pay(client, shop_order)
    session = CheckoutSession.objects.get()
    response = client.post(f"/pay/{session.uuid}/cancel")
    assert response["Location"] == f"http://testserver/orders/{shop_order.uuid}/?canceled=1"
    page = client.get(response["Location"]).content.decode()
    assert "Payment canceled" in page and 'id="pay-with-crypto"' in page


def test_success_page_says_paid_only_when_the_session_is_paid(client, shop_order):
    pay(client, shop_order)
    session = CheckoutSession.objects.get()
    success = f"/orders/{shop_order.uuid}/paid/?session={session.uuid}"
    # Visiting the success URL directly (a forged redirect) does not make the shop_order paid.
    page = client.get(success).content.decode()
    assert 'data-paid="false"' in page and "not received your payment" in page
    assert 'data-paid="false"' in client.get(f"/orders/{shop_order.uuid}/paid/?session=garbage").content.decode()

    make_transfer(session, 24_000_000, status="confirmed")
    refresh_session(session.pk)
    continue_to = client.get(f"/pay/{session.uuid}/continue")["Location"]
    assert continue_to == f"http://testserver{success}"
    page = client.get(success).content.decode()
    assert 'data-paid="true"' in page and "Received 24 USDC on test" in page
    assert "Paid — thank you!" in client.get(f"/orders/{shop_order.uuid}/").content.decode()


def test_a_session_of_another_order_does_not_count(client, shop_order):
    pay(client, shop_order)
    session = CheckoutSession.objects.get()
    make_transfer(session, 24_000_000, status="confirmed")
    refresh_session(session.pk)
    other = make_order(reference="OTHER", amount=Decimal("1000"))
    page = client.get(f"/orders/{other.uuid}/paid/?session={session.uuid}").content.decode()
    assert 'data-paid="false"' in page and "could not find this payment" in page


def test_a_rate_with_more_than_18_decimals_still_opens_the_hosted_page(client, shop_order, settings):
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {
        "RATE_PROVIDER": "tests.test_pricing.ManyDecimalsProvider",
        "RATE_PROVIDER_OPTIONS": {"rate": "1.0000000000000000001"},
    }
    response = pay(client, shop_order)
    session = CheckoutSession.objects.get()
    assert response.status_code == 302 and response.url == f"/pay/{session.uuid}/"
    assert session.quote_rate == 1 and session.amount_due == 24_000_000


def test_an_order_never_has_two_open_sessions_and_a_payment_in_progress_hides_the_pay_form(client, shop_order):
    pay(client, shop_order)
    first = CheckoutSession.objects.get()
    pay(client, shop_order, option="test:ETH")  # changed their mind before paying: the first session is canceled
    second = CheckoutSession.objects.get(status="open")
    first.refresh_from_db()
    assert first.status == "canceled" and second.asset == "ETH"

    make_transfer(second, 1)
    refresh_session(second.pk)
    page = client.get(f"/orders/{shop_order.uuid}/").content.decode()
    assert 'id="pay-with-crypto"' not in page
    assert f'href="/pay/{second.uuid}/"' in page and "Continue your ETH payment" in page
    response = client.post(f"/orders/{shop_order.uuid}/pay/", {"option": "test:USDC"}, follow=True)
    assert "already has a session with a payment in progress" in response.content.decode()
    assert CheckoutSession.objects.filter(status="open").get() == second
