"""create_session validates everything before writing, then allocates, quotes and emits in one transaction."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from payments_gateway.models import CheckoutSession, Customer, DepositAddress, Event, Order
from payments_gateway.services.customers import attach_customer
from payments_gateway.services.payloads import session_payload
from payments_gateway.services.payments import expire_if_due, refresh_session
from payments_gateway.services.sessions import cancel_session, create_session, redirect_url

from .factories import make_customer, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]


def nothing_written():
    return not (CheckoutSession.objects.exists() or Order.objects.exists() or DepositAddress.objects.exists()
                or Event.objects.exists())  # fmt: skip


def new(**kwargs):
    fields = {"amount": "25.00", "currency": "USD", "asset": "USDC", "network": "test"} | kwargs
    return create_session(**fields)


def test_creates_order_session_address_quote_and_event():
    now = timezone.now()
    session = new(reference="A-1", metadata={"cart": "7"}, success_url="https://shop.example/ok?s={{UUID}}", now=now)
    session.refresh_from_db()
    assert session.status == "open" and session.payment_status == "unpaid"
    assert session.amount_due == 25_000_000
    assert (session.fiat_amount, session.fiat_currency, session.quote_rate) == (Decimal("25"), "USD", Decimal(1))
    assert session.quote_source == "fixed" and session.quoted_at == now
    assert session.expires_at == now + timedelta(hours=24)
    assert session.order.reference == "A-1" and session.order.amount == Decimal("25.00")
    assert session.deposit_address.address.startswith("0x") and len(session.deposit_address.address) == 42
    assert session.deposit_address.busy_until == session.expires_at + timedelta(hours=24)
    event = Event.objects.get()
    assert event.type == "payment.created" and event.session == session
    assert event.data["uuid"] == str(session.uuid) and event.data["amount_due"] == "25000000"
    # The event says what the stored session says (it is written with the rows, in one statement on PostgreSQL).
    assert event.data["deposit_address"] == session.deposit_address.address
    assert event.data == session_payload(CheckoutSession.objects.get(pk=session.pk), new=True)


def test_two_sessions_get_two_addresses():
    first, second = new(), new()
    assert first.deposit_address.address != second.deposit_address.address


def test_an_order_can_be_paid_again_after_its_session_expired():
    first = new(reference="A-2")
    expire_if_due(first, now=first.expires_at)
    second = create_session(order="A-2", asset="ETH", network="test")
    assert second.order == first.order
    assert second.amount_due == 8_333_333_333_333_334  # 25 USD at 3000, rounded up


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"network": "mars"}, "network", "unknown network 'mars'; configured networks: test"),
        ({"asset": "DOGE"}, "asset", "unknown asset 'DOGE' on network 'test'; known: ETH, USDC"),
        ({"amount": "0"}, "amount", "greater than zero"),
        ({"amount": "-5"}, "amount", "no sign"),
        ({"amount": "1.001"}, "amount", "USD has 2 decimal places"),
        ({"amount": "100.5", "currency": "JPY"}, "amount", "JPY has 0 decimal places"),
        ({"amount": "ten"}, "amount", "is not an amount"),
        ({"currency": "XYZ"}, "currency", "unknown currency 'XYZ'"),
        ({"success_url": "javascript:alert(1)"}, "success_url", "not a valid http(s) URL"),
        ({"cancel_url": "not a url"}, "cancel_url", "not a valid http(s) URL"),
        ({"customer": "6f1c0b8e-0000-0000-0000-000000000000"}, "customer", "no customer"),
        ({"type": "createSubscription"}, "type", "use services.subscriptions.create_subscription_session"),
        ({"type": "renewSubscription"}, "type", "opened by the gateway"),
        ({"type": "gift"}, "type", "unknown type 'gift'"),
        ({"metadata": ["x"]}, "metadata", "JSON object"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(fields, field, message):
    with pytest.raises(ValidationError) as excinfo:
        new(**fields)
    assert message in " ".join(excinfo.value.message_dict[field])
    assert nothing_written()


def test_no_rate_for_the_pair_is_a_field_error():
    with pytest.raises(ValidationError) as excinfo:
        new(currency="EUR", asset="ETH")
    assert "no ETH/EUR rate" in excinfo.value.message_dict["asset"][0]
    assert nothing_written()


def test_order_and_reference_errors():
    new(reference="R-1")
    with pytest.raises(ValidationError, match="pass order='R-1'"):
        new(reference="R-1")
    with pytest.raises(ValidationError, match="no order with reference 'nope'"):
        create_session(order="nope", asset="USDC", network="test")
    with pytest.raises(ValidationError, match="not both"):
        create_session(order="R-1", amount="1", currency="USD", asset="USDC", network="test")
    assert CheckoutSession.objects.count() == 1


def test_a_new_session_for_an_order_supersedes_its_unpaid_open_session():
    first = new(reference="S-1")
    second = create_session(order="S-1", asset="ETH", network="test")
    first.refresh_from_db()
    assert (first.status, second.status) == ("canceled", "open")
    assert CheckoutSession.objects.filter(order=first.order, status="open").get() == second
    failed = Event.objects.get(session=first, type="payment.failed")
    assert failed.data["reason"] == "superseded" and failed.data["status"] == "canceled"


@pytest.mark.parametrize("transfer", ["detected", "wrong asset"])
def test_an_order_with_a_payment_in_progress_gets_no_second_session(transfer):
    first = new(reference="S-2")
    if transfer == "detected":
        make_transfer(first, 1_000_000)  # partially paid, unconfirmed
    else:
        make_transfer(first, 25_000_000, asset="DAI", status="confirmed")
    refresh_session(first.pk)
    with pytest.raises(ValidationError) as excinfo:
        create_session(order="S-2", asset="ETH", network="test")
    assert excinfo.value.message_dict == {
        "order": [f"order S-2 already has a session with a payment in progress: {first.uuid}"]
    }
    first.refresh_from_db()
    assert first.status == "open" and CheckoutSession.objects.count() == 1
    assert not Event.objects.filter(type="payment.failed").exists()


def test_paid_order_cannot_get_a_new_session():
    session = new(reference="P-1")
    make_transfer(session, session.amount_due, status="confirmed")
    refresh_session(session.pk)
    with pytest.raises(ValidationError, match="already paid"):
        create_session(order="P-1", asset="USDC", network="test")


def test_placeholders_are_replaced_url_encoded():
    session = new(success_url="https://s.example/done/{{UUID}}?t={{TRANSACTION_TYPE}}&id={CHECKOUT_SESSION_ID}")
    url = redirect_url(session.success_url, session)
    assert url == f"https://s.example/done/{session.uuid}?t=payment&id={session.uuid}"


def test_customer_form_never_links_or_changes_an_existing_customer():
    victim = make_customer(email="first-buyer@example.com", name="")
    first, second = new(), new()
    created = attach_customer(first, email="FIRST-BUYER@example.com", name="Someone Else")
    assert created != victim
    victim.refresh_from_db()
    assert victim.name == "" and not victim.sessions.exists() and not victim.orders.exists()
    assert attach_customer(second, email="first-buyer@example.com") not in {victim, created}
    assert Customer.objects.count() == 3
    assert Event.objects.filter(type="customer.created").count() == 2
    assert not Event.objects.filter(type="customer.updated").exists()
    with pytest.raises(ValidationError, match="valid e-mail"):
        attach_customer(first, email="not-an-email")


def test_customer_form_refuses_an_email_longer_than_the_column():
    too_long = "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".com"  # 259 characters, valid otherwise
    with pytest.raises(ValidationError, match="at most 254 characters"):
        attach_customer(new(), email=too_long)
    assert not Customer.objects.exists()


def test_merchant_links_an_existing_customer_by_uuid():
    known = make_customer(email="first-buyer@example.com")
    session = new(customer=str(known.uuid))
    assert session.customer == known and session.order.customer == known


def test_cancel_only_an_unpaid_open_session():
    unpaid, partly = new(), new()
    assert cancel_session(unpaid).status == "canceled"
    make_transfer(partly, 1_000_000)
    refresh_session(partly.pk)
    assert cancel_session(partly).status == "open"  # money already seen is never dropped


@pytest.mark.parametrize(
    "url", ["http://exa mple.com/", "http://:80/", "https://shop.example:99999/", "//shop.example/x", "mailto:a@b.c"]
)
def test_malformed_redirect_urls_are_refused(url):
    with pytest.raises(ValidationError, match="not a valid http"):
        new(cancel_url=url)


@pytest.mark.parametrize(
    "url",
    ["http://localhost:8000/cart", "https://intranet-shop/x?y=1", "http://127.0.0.1/ok/{{UUID}}", "http://[::1]/"],
)
def test_local_and_single_label_urls_are_fine(url):
    assert new(success_url=url).success_url == url
