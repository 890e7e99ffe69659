"""The hand-written SQL of ``payments_gateway/hotpath.py`` stores and reads exactly what the ORM would, on SQLite
and on PostgreSQL (where some of it takes another route)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext

from payments_gateway.api.serializers import SessionCreateSerializer
from payments_gateway.events import new_event
from payments_gateway.hotpath import insert_together, select_all
from payments_gateway.models import CheckoutSession, DepositAddress, Event, Order, WebhookEndpoint

from .factories import fresh_address, make_customer, make_endpoint, make_order, unique_number

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def new_rows(reference: str = "") -> tuple[Order, DepositAddress, CheckoutSession, Event]:
    customer = make_customer(email="buyer@example.com")
    order = Order(reference=reference, amount=Decimal("19.99"), currency="USD", customer=customer,
                  metadata={"cart": [1, 2]})  # fmt: skip
    address = DepositAddress(network="test", index=unique_number(), address=fresh_address(), created=NOW,
                             busy_until=NOW + timedelta(hours=25))  # fmt: skip
    session = CheckoutSession(
        order=order, customer=customer, deposit_address=address, payment_methods=[{"network": "test", "asset": "USDC"}],
        network="test", asset="USDC", amount_due=10**30, quote_rate=Decimal("1"), quote_source="fixed", quoted_at=NOW,
        fiat_amount=Decimal("19.99"), fiat_currency="USD", expires_at=NOW + timedelta(hours=1),
        metadata={"note": "ünïcode"}, created=NOW,
    )  # fmt: skip
    event = new_event("payment.created", {"object": "checkout.session", "amount": "19.99"}, session=session)
    return order, address, session, event


def test_insert_together_stores_every_row_linked_as_the_orm_would():
    order, address, session, event = new_rows("A-1")
    with transaction.atomic():
        insert_together(order, address, session, event)
    # Each object has its pk and its links, and still holds the objects it was given (no query to reach them).
    assert None not in (order.pk, address.pk, session.pk, event.pk)
    assert (session.order_id, session.deposit_address_id, event.session_id) == (order.pk, address.pk, session.pk)
    with CaptureQueriesContext(connection) as reads:
        assert (session.order, session.deposit_address, event.session) == (order, address, session)
    assert len(reads) == 0
    assert not any(obj._state.adding for obj in (order, address, session, event))
    # What the database holds is what was given, read back by the ORM.
    stored = CheckoutSession.objects.select_related("order", "deposit_address").get(pk=session.pk)
    assert (stored.amount_due, stored.fiat_amount, stored.metadata) == (10**30, Decimal("19.99"), {"note": "ünïcode"})
    assert (stored.expires_at, stored.created) == (NOW + timedelta(hours=1), NOW)
    assert (stored.order.reference, stored.order.metadata) == ("A-1", {"cart": [1, 2]})
    assert stored.order.customer.email == "buyer@example.com"
    assert stored.order.created is not None and stored.order.uuid == order.uuid
    assert stored.deposit_address.address == address.address
    assert Event.objects.get(pk=event.pk).data == {"object": "checkout.session", "amount": "19.99"}


def test_insert_together_is_one_statement_on_postgresql_and_one_insert_each_elsewhere():
    rows = new_rows()
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        insert_together(*rows)
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("INSERT", "WITH"))]
    assert len(writes) == (1 if connection.vendor == "postgresql" else 4), writes


def test_insert_together_sends_the_save_signals_as_save_does():
    seen = []

    def pre(sender, instance, **kwargs):
        seen.append(("pre", sender.__name__, instance.pk is None))

    def post(sender, instance, created, **kwargs):
        seen.append(("post", sender.__name__, created and instance.pk is not None))

    pre_save.connect(pre)
    post_save.connect(post)
    try:
        with transaction.atomic():
            insert_together(*new_rows())
    finally:
        pre_save.disconnect(pre)
        post_save.disconnect(post)
    for model in ("Order", "DepositAddress", "CheckoutSession"):
        assert ("pre", model, True) in seen and ("post", model, True) in seen
    assert ("post", "Event", True) in seen


def test_insert_together_writes_nothing_when_a_row_breaks_a_constraint():
    make_order(reference="TAKEN")
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_together(*new_rows("TAKEN"))
    assert (Order.objects.count(), DepositAddress.objects.count(), CheckoutSession.objects.count()) == (1, 0, 0)
    assert not Event.objects.exists()


def test_select_all_reads_values_as_the_fields_give_them():
    wanted = make_endpoint("https://a.example/hooks", enabled_events=["payment.created", "*"])
    make_endpoint("https://b.example/hooks", enabled_events=[], active=False)
    rows = select_all(WebhookEndpoint, ["id", "enabled_events", "created"], active=True)
    assert rows == [(wanted.pk, ["payment.created", "*"], wanted.created)]
    assert len(select_all(WebhookEndpoint, ["id"])) == 2  # no condition: every row


def test_a_shared_request_body_keeps_nothing_from_one_request_to_the_next():
    misspelt = SessionCreateSerializer(data={"amount": "19.99", "currency": "USD", "succes_url": "x"})
    assert not misspelt.is_valid()
    good = SessionCreateSerializer(data={"amount": "19.99", "currency": "USD", "asset": "USDC", "network": "test"})
    assert good.is_valid(), good.errors
    wrong_type = SessionCreateSerializer(data={"amount": "19.99", "currency": 840})
    assert not wrong_type.is_valid()
    assert set(misspelt.errors) == {"succes_url"} and set(wrong_type.errors) == {"currency"} and good.errors == {}
    assert good.validated_data["amount"] == "19.99" and "succes_url" not in good.validated_data
    # The fields are built once for the class, not once per request.
    assert misspelt.fields is good.fields
