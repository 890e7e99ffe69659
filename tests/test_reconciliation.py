"""Unmatched transfers: why a transfer settles nothing, derived from facts; credit and dismiss; the dashboard."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from payments_gateway.models import Event, Transfer
from payments_gateway.services.dashboard import received_totals, unmatched_totals
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.reconciliation import credit_transfer, dismiss_transfer, unmatched_transfers

from .factories import make_session, make_transfer, make_unmatched

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]


def event_types(session) -> list[str]:
    return list(Event.objects.filter(session=session).order_by("created", "pk").values_list("type", flat=True))


def expired_session(**fields):
    now = timezone.now()
    return make_session(created=now - timedelta(days=3), expires_at=now - timedelta(days=2), status="expired",
                        **fields)  # fmt: skip


def after_window(session, amount, **fields):
    """A confirmed payment to ``session``'s address a day after its late payment window ended."""
    return make_transfer(session, amount, status="confirmed", block_time=session.expires_at + timedelta(days=2),
                         **fields)  # fmt: skip


def test_a_payment_after_the_late_window_is_unmatched_then_credited_completes_the_session():
    session = expired_session(amount_due=10_000_000)
    stray = after_window(session, 10_000_000)
    session = refresh_session(session.pk)
    stray.refresh_from_db()
    assert (session.status, session.payment_status) == ("expired", "unpaid")
    assert (stray.reason, stray.resolution) == ("after_late_window", "open")
    assert list(unmatched_transfers()) == [stray]
    refresh_session(session.pk)
    assert event_types(session).count("transaction.unmatched") == 1  # announced once

    merchant = get_user_model().objects.create_user("merchant")
    credit_transfer(stray, session, user=merchant, note="customer wrote in; late but honoured")
    stray.refresh_from_db()
    session.refresh_from_db()
    assert (stray.resolution, stray.resolved_by, stray.resolution_note) == (
        "credited", merchant, "customer wrote in; late but honoured",
    )  # fmt: skip
    assert (session.status, session.payment_status, session.late) == ("complete", "paid", True)
    assert event_types(session)[-1] == "payment.completed"
    assert not unmatched_transfers().exists()


def test_credit_to_another_session_of_the_order_and_what_is_refused():
    old = expired_session(amount_due=10_000_000)
    stray = after_window(old, 10_000_000)
    refresh_session(old.pk)
    new = make_session(order=old.order, amount_due=10_000_000)
    eth = make_session(asset="ETH", amount_due=10**16)
    canceled = make_session(status="canceled")

    for target, fragment in ((eth, "takes ETH on test"), (canceled, "is canceled")):
        with pytest.raises(ValidationError) as info:
            credit_transfer(stray, target)
        assert fragment in info.value.message_dict["session"][0]
    stray.refresh_from_db()
    assert (stray.session_id, stray.resolution) == (old.pk, "open")  # nothing written

    credit_transfer(stray, new)
    assert refresh_session(new.pk).status == "complete"
    assert refresh_session(old.pk).payment_status == "unpaid"
    with pytest.raises(ValidationError, match="does not need attention: it is credited"):
        credit_transfer(stray, new)


def test_dismiss_needs_a_note():
    stray = make_unmatched()
    with pytest.raises(ValidationError) as info:
        dismiss_transfer(stray, note="  ")
    assert "note" in info.value.message_dict
    with pytest.raises(ValidationError, match="cannot be stored"):
        dismiss_transfer(stray, note="bad \x00")
    dismiss_transfer(stray, note="dust from an airdrop")
    stray.refresh_from_db()
    assert (stray.resolution, stray.resolution_note) == ("dismissed", "dust from an airdrop")
    assert stray.resolved_at is not None


def test_a_second_full_payment_is_excess_until_a_reorg_takes_the_first_away():
    session = make_session(amount_due=10_000_000)
    first = make_transfer(session, 10_000_000, status="confirmed")
    second = make_transfer(session, 10_000_000, status="confirmed")
    session = refresh_session(session.pk)
    second.refresh_from_db()
    assert (session.payment_status, session.amount_received) == ("paid", 10_000_000)
    assert (second.reason, second.resolution) == ("excess", "open")

    Transfer.objects.filter(pk=first.pk).update(status="reverted")
    session = refresh_session(session.pk)
    second.refresh_from_db()
    assert (session.status, session.payment_status, session.amount_received) == ("complete", "paid", 10_000_000)
    assert (second.reason, second.resolution) == ("", "")  # it pays now


def test_a_late_partial_payment_sets_the_late_flag():
    now = timezone.now()
    session = make_session(amount_due=10_000_000, expires_at=now - timedelta(hours=1), status="expired")
    make_transfer(session, 4_000_000, status="confirmed", block_time=now - timedelta(minutes=5))
    session = refresh_session(session.pk)
    assert (session.status, session.payment_status, session.late) == ("expired", "partially_paid", True)


def test_the_dashboard_counts_unmatched_money_apart_from_what_was_received():
    session = make_session(amount_due=10_000_000)
    make_transfer(session, 10_000_000, status="confirmed", confirmed_at=timezone.now())
    make_unmatched(session, 5_000_000)
    make_unmatched(session, 2_000_000)
    make_unmatched(None, 7, asset="ETH")
    make_unmatched(session, 9, status="reverted")
    refresh_session(session.pk)
    assert [(t.asset, t.units) for t in received_totals()] == [("USDC", 10_000_000)]
    assert [(t.asset, t.count, t.units, t.display) for t in unmatched_totals()] == [
        ("ETH", 1, 7, "0.000000000000000007 ETH"),
        ("USDT", 2, 7_000_000, "7000000 base units of USDT"),
    ]


@pytest.mark.django_db(transaction=True)
def test_the_migration_lists_stored_transfers_of_no_session_as_unmatched_after_the_payment_methods_one():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    app, before = "payments_gateway", "0012_checkout_payment_methods"
    executor = MigrationExecutor(connection)
    executor.migrate([(app, before)])
    old = executor.loader.project_state([(app, before)]).apps
    now = timezone.now()
    order = old.get_model(app, "Order").objects.create(amount=Decimal("5"), currency="USD")
    # A session still choosing (no network, asset, amount or address), possible since the payment methods.
    old.get_model(app, "CheckoutSession").objects.create(
        order=order, fiat_amount=Decimal("5"), fiat_currency="USD", expires_at=now,
        payment_methods=[{"network": "test", "asset": "USDC"}],
    )  # fmt: skip
    address = old.get_model(app, "DepositAddress").objects.create(network="test", index=3, address="0x" + "03" * 20)
    transfers = old.get_model(app, "Transfer").objects
    common = {"network": "test", "kind": "erc20", "block_hash": "0x" + "00" * 32, "to_address": address.address,
              "deposit_address": address, "asset": "USDC", "amount": 5}  # fmt: skip
    transfers.create(tx_hash="0x" + "01" * 32, block_number=1, status="confirmed", **common)
    transfers.create(tx_hash="0x" + "02" * 32, block_number=2, status="reverted", **common)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes(app))
    assert sorted(Transfer.objects.values_list("status", "reason", "resolution")) == [
        ("confirmed", "closed_session", "open"), ("reverted", "", ""),
    ]  # fmt: skip
