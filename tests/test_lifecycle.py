"""Session state follows its transfers: partial, top-up, pending, paid, overpaid, late, reorg, expiry."""

from datetime import timedelta

import pytest
from django.utils import timezone

from payments_gateway.models import Event, Order, Transfer
from payments_gateway.services.payments import expire_due_sessions, expire_if_due, refresh_session

from .factories import TEST_NETWORK, make_endpoint, make_session, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]


def event_types(session) -> list[str]:
    return list(Event.objects.filter(session=session).order_by("created").values_list("type", flat=True))


def test_partial_then_top_up_then_confirmed():
    session = make_session(amount_due=10_000_000)
    first = make_transfer(session, 4_000_000)
    session = refresh_session(session.pk)
    assert (session.status, session.payment_status) == ("open", "partially_paid")
    assert session.amount_pending == 4_000_000 and session.amount_received == 0

    second = make_transfer(session, 6_000_000)
    session = refresh_session(session.pk)
    assert session.payment_status == "pending"

    Transfer.objects.filter(pk__in=[first.pk, second.pk]).update(status="confirmed")
    session = refresh_session(session.pk)
    assert (session.status, session.payment_status) == ("complete", "paid")
    assert session.amount_received == 10_000_000 and session.completed_at is not None
    assert Order.objects.get(pk=session.order_id).status == "paid"
    assert event_types(session) == [
        "transaction.detected",
        "payment.pending",
        "transaction.detected",
        "payment.pending",
        "transaction.confirmed",
        "transaction.confirmed",
        "payment.completed",
    ]


def test_refresh_is_idempotent():
    session = make_session()
    make_transfer(session, 10_000_000, status="confirmed")
    refresh_session(session.pk)
    count = Event.objects.count()
    refresh_session(session.pk)
    assert Event.objects.count() == count


def test_overpaid_is_flagged_with_the_excess():
    session = make_session(amount_due=10_000_000)
    make_transfer(session, 12_500_000, status="confirmed")
    session = refresh_session(session.pk)
    assert (session.status, session.payment_status) == ("complete", "overpaid")
    assert session.amount_received - session.amount_due == 2_500_000


def test_absolute_tolerance_never_forgives_more_than_one_percent(settings):
    # The README's example tolerance, 10**16 wei (0.01 ETH), on a $10 ETH session of 0.0033 ETH.
    network = TEST_NETWORK | {"native": {"symbol": "ETH", "decimals": 18}}
    settings.PAYMENTS_GATEWAY = {"NETWORKS": {"test": network}, "UNDERPAYMENT_TOLERANCE": {"ETH": 10**16}}
    small = make_session(asset="ETH", amount_due=3_300_000_000_000_000)
    make_transfer(small, 1, status="confirmed", kind="native")
    assert refresh_session(small.pk).payment_status == "partially_paid"
    make_transfer(small, 3_267_000_000_000_000 - 2, status="confirmed", kind="native")
    assert refresh_session(small.pk).payment_status == "partially_paid"  # 1 wei short of 99 %
    make_transfer(small, 1, status="confirmed", kind="native")
    assert refresh_session(small.pk).payment_status == "paid"  # 99 %: the tolerance is capped at 1 %

    # On a large session the configured 10**16 wei applies in full (it is below 1 %).
    big = make_session(asset="ETH", amount_due=10**18)
    make_transfer(big, 10**18 - 10**16, status="confirmed", kind="native")
    assert refresh_session(big.pk).payment_status == "paid"
    other = make_session(asset="ETH", amount_due=10**18)
    make_transfer(other, 10**18 - 10**16 - 1, status="confirmed", kind="native")
    assert refresh_session(other.pk).payment_status == "partially_paid"


def test_underpayment_tolerance_in_percent(settings):
    settings.PAYMENTS_GATEWAY = {"NETWORKS": {"test": TEST_NETWORK}, "UNDERPAYMENT_TOLERANCE": {"USDC": "1%"}}
    session = make_session(amount_due=10_000_000)
    make_transfer(session, 9_900_000, status="confirmed")
    assert refresh_session(session.pk).payment_status == "paid"
    other = make_session(amount_due=10_000_000)
    make_transfer(other, 9_899_999, status="confirmed")
    assert refresh_session(other.pk).payment_status == "partially_paid"


def test_transfer_of_another_asset_does_not_count():
    session = make_session(asset="USDC")
    make_transfer(session, 10**30, asset="ETH", status="confirmed")
    assert refresh_session(session.pk).payment_status == "unpaid"


def test_reorg_rolls_a_complete_session_back():
    session = make_session(amount_due=10_000_000)
    keep = make_transfer(session, 4_000_000, status="confirmed")
    lost = make_transfer(session, 6_000_000, status="confirmed")
    assert refresh_session(session.pk).status == "complete"

    Transfer.objects.filter(pk=lost.pk).update(status="reverted")
    session = refresh_session(session.pk)
    assert (session.status, session.payment_status) == ("open", "partially_paid")
    assert session.amount_received == keep.amount and session.completed_at is None
    assert Order.objects.get(pk=session.order_id).status == "pending"
    assert event_types(session)[-2:] == ["transaction.failed", "payment.failed"]


def test_expiry_keeps_a_partial_payment_and_a_late_payment_completes():
    now = timezone.now()
    session = make_session(amount_due=10_000_000, expires_at=now - timedelta(seconds=1))
    make_transfer(session, 3_000_000, status="confirmed")
    refresh_session(session.pk)
    assert expire_due_sessions(now=now) == 1
    session.refresh_from_db()
    assert (session.status, session.payment_status) == ("expired", "partially_paid")
    assert session.amount_received == 3_000_000
    assert expire_due_sessions(now=now) == 0

    make_transfer(session, 7_000_000, status="confirmed", late=True)
    session = refresh_session(session.pk)
    assert (session.status, session.payment_status, session.late) == ("complete", "paid", True)
    assert "payment.expired" in event_types(session)


def test_a_pending_payment_is_not_expired_and_completes_when_it_confirms():
    now = timezone.now()
    session = make_session(amount_due=10_000_000, expires_at=now - timedelta(seconds=1))
    transfer = make_transfer(session, 10_000_000)  # the full amount, not yet confirmed
    assert refresh_session(session.pk, now=now - timedelta(seconds=2)).payment_status == "pending"
    assert expire_due_sessions(now=now) == 0
    assert expire_if_due(session, now=now).status == "open"
    assert "payment.expired" not in event_types(session)

    Transfer.objects.filter(pk=transfer.pk).update(status="confirmed")
    session = refresh_session(session.pk, now=now)
    assert (session.status, session.payment_status) == ("complete", "paid")


def test_a_reverted_pending_payment_past_expiry_then_expires():
    now = timezone.now()
    session = make_session(amount_due=10_000_000, expires_at=now - timedelta(seconds=1))
    transfer = make_transfer(session, 10_000_000)
    refresh_session(session.pk, now=now)
    assert expire_due_sessions(now=now) == 0
    Transfer.objects.filter(pk=transfer.pk).update(status="reverted")
    assert refresh_session(session.pk, now=now).payment_status == "unpaid"
    assert expire_due_sessions(now=now) == 1
    session.refresh_from_db()
    assert session.status == "expired"


def test_expire_on_read():
    session = make_session(expires_at=timezone.now() - timedelta(minutes=1))
    assert expire_if_due(session).status == "expired"
    fresh = make_session()
    assert expire_if_due(fresh).status == "open"


def test_events_are_written_with_deliveries_for_wanting_endpoints():
    everything = make_endpoint("https://shop.example/hook")
    only_expired = make_endpoint("https://shop.example/x", enabled_events=["payment.expired"])
    make_endpoint("https://shop.example/off", active=False)
    session = make_session()
    make_transfer(session, 10_000_000, status="confirmed")
    refresh_session(session.pk)
    completed = Event.objects.get(type="payment.completed")
    assert list(completed.deliveries.values_list("endpoint", flat=True)) == [everything.pk]
    assert not only_expired.deliveries.exists()
    assert completed.data["uuid"] == str(session.uuid) and completed.data["amount_received"] == "10000000"
