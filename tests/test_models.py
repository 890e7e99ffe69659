"""The domain model's public contract (DESIGN.md): unique constraints, status values, exact fiat decimals."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from payments_gateway.models import (
    CheckoutSession,
    DeliveryState,
    DepositAddress,
    Order,
    OrderStatus,
    PaymentStatus,
    SessionStatus,
    SessionType,
    SubscriptionInterval,
    SubscriptionStatus,
    Transfer,
    TransferStatus,
    WebhookDelivery,
    WebhookEvent,
)
from payments_gateway.money import sum_amounts

from .factories import (
    make_delivery,
    make_deposit_address,
    make_endpoint,
    make_event,
    make_incoming_event,
    make_order,
    make_session,
    make_transfer,
)

pytestmark = pytest.mark.django_db

ADDRESS_A = "0x" + "a1" * 20
ADDRESS_B = "0x" + "b2" * 20


def refused(create, *args, **kwargs):
    """True if the database refuses the row (the surrounding transaction stays usable)."""
    try:
        with transaction.atomic():
            create(*args, **kwargs)
    except IntegrityError:
        return True
    return False


def transfer(amount=5, **fields):
    """A transfer in one fixed transaction (its log 0 unless told otherwise)."""
    return make_transfer(amount=amount, **{"network": "anvil", "tx_hash": "0x" + "cd" * 32} | fields)


def test_deposit_address_is_unique_per_network_and_index_and_per_network_and_address():
    make_deposit_address(network="anvil", index=0, address=ADDRESS_A)
    assert refused(make_deposit_address, network="anvil", index=0, address=ADDRESS_B)
    assert refused(make_deposit_address, network="anvil", index=1, address=ADDRESS_A)
    # The same xpub derives the same addresses on every network: each network has its own row.
    make_deposit_address(network="sepolia", index=0, address=ADDRESS_A)
    make_deposit_address(network="anvil", index=1, address=ADDRESS_B)
    assert DepositAddress.objects.count() == 3


def test_transfer_is_unique_per_network_tx_hash_and_log_index():
    transfer()
    assert refused(transfer, amount=6)
    transfer(log_index=1)  # a second Transfer log in the same transaction
    transfer(log_index=-1, kind="native", asset="ETH")  # the transaction's own value
    transfer(network="sepolia")
    assert refused(transfer, log_index=1)
    assert Transfer.objects.count() == 4
    assert Transfer.objects.get(network="anvil", log_index=0).amount == 5


def test_webhook_delivery_is_unique_per_event_and_endpoint():
    event = make_event(data={"uuid": "x"})
    first, second = (make_endpoint(f"https://shop.example/hook/{n}") for n in (1, 2))
    make_delivery(event, first)
    make_delivery(event, second)
    assert refused(make_delivery, event, first)
    assert WebhookDelivery.objects.count() == 2
    assert event.id.startswith("evt_")
    assert first.secret.startswith("whsec_") and first.secret != second.secret


def test_incoming_webhook_event_is_unique_per_source_and_event_id():
    make_incoming_event(source="transactions", event_id="msg_1")
    make_incoming_event(source="other-shop", event_id="msg_1")
    assert refused(make_incoming_event, source="transactions", event_id="msg_1")
    assert WebhookEvent.objects.count() == 2


def test_order_reference_is_unique_only_when_given():
    make_order(amount=Decimal(1), reference="")
    make_order(amount=Decimal(2), reference="")  # several orders without a reference are fine
    make_order(amount=Decimal(3), reference="SHOP-000001")
    assert refused(make_order, amount=Decimal(4), reference="SHOP-000001")
    assert Order.objects.count() == 3


def test_order_amount_must_be_positive():
    assert refused(make_order, amount=Decimal(0))
    assert not Order.objects.exists()


def test_status_values_are_the_public_contract():
    assert SessionStatus.values == ["open", "complete", "expired", "canceled"]
    assert PaymentStatus.values == ["unpaid", "pending", "partially_paid", "paid", "overpaid"]
    assert TransferStatus.values == ["detected", "confirmed", "reverted"]
    # renewSubscription: the sessions the gateway opens for a subscription's later periods ({{TRANSACTION_TYPE}})
    assert SessionType.values == ["payment", "createSubscription", "renewSubscription"]
    assert SubscriptionStatus.values == ["incomplete", "active", "past_due", "canceled", "unpaid"]
    assert SubscriptionInterval.values == ["day", "week", "month", "year"]
    assert set(OrderStatus.values) >= {"pending", "paid"}
    assert {"pending", "succeeded", "failed"} <= set(DeliveryState.values)  # the API shows these states


def test_new_session_is_open_unpaid_payment_with_its_defaults():
    created = make_session(network="anvil", address=ADDRESS_B)
    created.refresh_from_db()
    assert (created.type, created.status, created.payment_status) == ("payment", "open", "unpaid")
    assert (created.amount_received, created.amount_pending, created.late) == (0, 0, False)
    assert created.address == ADDRESS_B
    assert CheckoutSession.objects.get(uuid=created.uuid) == created


# Prices and rates with more digits than an 8-byte float keeps (15 significant digits).
EXACT = ["1234567890123456.12345678", "0.00000001", "9999999999999999.99999999", "19.99", "0"]


def test_fiat_amounts_are_exact_decimals():
    order = make_order(amount=Decimal("1234567890123456.12345678"), currency="EUR")
    order.refresh_from_db()
    assert type(order.amount) is Decimal
    assert order.amount == Decimal("1234567890123456.12345678")
    rate = Decimal("3456.123456789012345678")  # 22 significant digits
    created = make_session(fiat_amount=Decimal("9999999999999999.99999999"), quote_rate=rate)
    created.refresh_from_db()
    assert created.quote_rate == rate
    assert created.fiat_amount == Decimal("9999999999999999.99999999")


def test_fiat_lookups_and_ordering_are_exact_in_sql():
    for text in EXACT[:-1]:
        make_order(amount=Decimal(text))
    # One hundred-millionth apart: the same float, different prices.
    assert Order.objects.filter(amount=Decimal("1234567890123456.12345678")).count() == 1
    assert not Order.objects.filter(amount=Decimal("1234567890123456.12345677")).exists()
    assert Order.objects.filter(amount__gt=Decimal("1234567890123456.12345677")).count() == 2
    assert Order.objects.filter(amount__lt=Decimal("20")).count() == 2
    by_amount = list(Order.objects.order_by("amount").values_list("amount", flat=True))
    assert by_amount == sorted(Decimal(t) for t in EXACT[:-1])
    assert sum_amounts(Order.objects.all()) == sum(Decimal(t) for t in EXACT[:-1])


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (12.5, "float"),
        (Decimal("0.000000001"), "decimal places"),
        (Decimal("12345678901234567"), "digits before the point"),
        (Decimal("-1"), "non-negative"),
        ("abc", "must be a decimal number"),
    ],
)
def test_fiat_amount_that_does_not_fit_exactly_is_refused(value, why):
    with pytest.raises(ValidationError, match=why), transaction.atomic():
        make_order(amount=value)
    assert not Order.objects.exists()


def test_fiat_column_type_is_exact_on_each_database():
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT data_type, numeric_precision, numeric_scale FROM information_schema.columns "
                "WHERE table_name = 'payments_gateway_order' AND column_name = 'amount'"
            )
            assert cursor.fetchone() == ("numeric", 24, 8)
        else:
            make_order(amount=Decimal("0.1"))
            cursor.execute("SELECT amount, typeof(amount) FROM payments_gateway_order")
            assert cursor.fetchone() == ("0000000000000000.10000000", "text")
