"""Anonymous public actions cannot be repeated at will: the example shop reuses the order's open session when the
same method is chosen again, and past 30 posts per 10 minutes per client and checkout session (or order) the
hosted page's actions and the shop's "Pay with crypto" answer 429 with ``Retry-After``, writing nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.cache import caches

from payments_gateway.models import CheckoutSession, Customer, DepositAddress, Event, Order, SessionStatus
from payments_gateway.services.sessions import cancel_session, create_session

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
ANOTHER_CLIENT = "203.0.113.7"


@pytest.fixture(autouse=True)
def fresh_counts():
    caches["default"].clear()


def pay(client, order, option="test:USDC", **extra):
    return client.post(f"/orders/{order.uuid}/pay/", {"option": option}, **extra)


def written() -> dict[str, int]:
    models = {"sessions": CheckoutSession, "addresses": DepositAddress, "events": Event, "customers": Customer}
    return {name: model.objects.count() for name, model in models.items()} | {"orders": Order.objects.count()}


def assert_too_many(response):
    assert response.status_code == 429, response.content[:200]
    assert 1 <= int(response["Retry-After"]) <= 600


def test_thirty_pay_with_crypto_posts_on_one_order_give_one_session_and_one_address(client, shop_order):
    locations = {pay(client, shop_order)["Location"] for _ in range(30)}
    session = CheckoutSession.objects.get()
    assert locations == {f"/pay/{session.uuid}/"}
    assert session.status == SessionStatus.OPEN
    assert DepositAddress.objects.count() == 1
    assert Event.objects.filter(type="payment.created").count() == 1


def test_another_method_still_starts_a_new_session(client, shop_order):
    pay(client, shop_order)
    pay(client, shop_order, option="test:ETH")
    assert CheckoutSession.objects.filter(status=SessionStatus.OPEN).get().asset == "ETH"
    # Back to USDC: the first session was superseded (canceled), so a new one.
    pay(client, shop_order)
    assert CheckoutSession.objects.filter(status=SessionStatus.OPEN).get().asset == "USDC"
    assert CheckoutSession.objects.count() == 3


def test_the_31st_pay_with_crypto_post_in_a_window_is_429_and_writes_nothing(client, shop_order):
    for n in range(30):  # a customer who cannot make up their mind: each switch is a new session
        assert pay(client, shop_order, option="test:ETH" if n % 2 else "test:USDC").status_code == 302
    before = written()
    assert_too_many(pay(client, shop_order, option="test:USDC"))
    assert written() == before
    # Another client, or the same client on another shop_order, is not affected.
    assert pay(client, shop_order, REMOTE_ADDR=ANOTHER_CLIENT).status_code == 302
    other = Order.objects.create(reference="OTHER", amount=Decimal("5"), currency="USD")
    assert pay(client, other).status_code == 302


def test_the_hosted_pages_31st_action_in_a_window_is_429_and_writes_nothing(client):
    session = create_session(amount="10", currency="USD", asset="USDC", network="test")
    for _ in range(30):
        response = client.post(f"/pay/{session.uuid}/customer", {"email": "not an address"})
        assert response.status_code == 302
    before = written()
    assert_too_many(client.post(f"/pay/{session.uuid}/customer", {"email": "buyer@shop.example"}))
    # The actions share one count: cancel is refused too, and the session stays open.
    assert_too_many(client.post(f"/pay/{session.uuid}/cancel"))
    assert_too_many(client.post(f"/pay/{session.uuid}/test-pay", {"amount": "full"}))
    assert written() == before
    session.refresh_from_db()
    assert session.status == SessionStatus.OPEN and session.customer is None

    # The customer sees a page that says why, not a stack of JSON.
    page = client.post(f"/pay/{session.uuid}/cancel", headers=BROWSER)
    assert_too_many(page)
    assert page["Content-Type"].startswith("text/html") and "Too many requests" in page.content.decode()

    # Another client on this session, and this client on another session, are not affected.
    response = client.post(f"/pay/{session.uuid}/customer", {"email": "buyer@shop.example"}, REMOTE_ADDR=ANOTHER_CLIENT)
    assert response.status_code == 302 and Customer.objects.count() == 1
    other = create_session(amount="10", currency="USD", asset="USDC", network="test")
    assert client.post(f"/pay/{other.uuid}/cancel").status_code == 302
    other.refresh_from_db()
    assert other.status == SessionStatus.CANCELED


def test_reading_the_hosted_page_is_not_counted(client):
    session = create_session(amount="10", currency="USD", asset="USDC", network="test")
    for _ in range(40):
        assert client.get(f"/pay/{session.uuid}/").status_code == 200
    assert client.post(f"/pay/{session.uuid}/cancel").status_code == 302


def test_polling_the_status_past_the_limit_is_429_with_retry_after_per_client_and_session(client):
    from payments_gateway.views.security import POLL_LIMIT, POLL_WINDOW

    session = create_session(amount="10", currency="USD", asset="USDC", network="test")
    for _ in range(POLL_LIMIT):
        assert client.get(f"/pay/{session.uuid}/status").status_code == 200
    refused = client.get(f"/pay/{session.uuid}/status")
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= POLL_WINDOW
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused["X-Frame-Options"] == "DENY"  # still a hosted page's answer, with its headers
    # Another client on this session, and this client on another session, still see their status.
    assert client.get(f"/pay/{session.uuid}/status", REMOTE_ADDR=ANOTHER_CLIENT).status_code == 200
    other = create_session(amount="10", currency="USD", asset="USDC", network="test")
    assert client.get(f"/pay/{other.uuid}/status").status_code == 200
    # The page itself and its actions have counts of their own.
    assert client.get(f"/pay/{session.uuid}/").status_code == 200
    assert client.post(f"/pay/{session.uuid}/customer", {"email": "buyer@shop.example"}).status_code == 302


def test_opening_the_status_stream_past_the_limit_is_429(client):
    from payments_gateway.views.security import STREAM_LIMIT

    session = cancel_session(create_session(amount="10", currency="USD", asset="USDC", network="test"))
    for _ in range(STREAM_LIMIT):
        opened = client.get(f"/pay/{session.uuid}/events")
        # A closed session's stream sends its state once and ends (an open one would keep the test waiting).
        assert opened.status_code == 200 and b"canceled" in b"".join(opened.streaming_content)
    assert_too_many(client.get(f"/pay/{session.uuid}/events"))


def test_the_same_limit_guards_an_async_view():
    """The stream is being rewritten as an async view (ASGI): the decorator keeps working there."""
    from asgiref.sync import async_to_sync
    from django.http import HttpResponse
    from django.test import RequestFactory

    from payments_gateway.ratelimit import rate_limit

    @rate_limit("async-test", limit=2, window=60)
    async def view(request, uuid):
        return HttpResponse("ok")

    request = RequestFactory().get("/pay/x/events")
    answers = [async_to_sync(view)(request, uuid="x").status_code for _ in range(3)]
    assert answers == [200, 200, 429]
