"""The merchant sees a session with its transfers and its event timeline in the admin, and can expire it."""

import pytest

from payments_gateway.models import CheckoutSession
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.sessions import create_session

from .factories import make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]


def test_session_page_shows_transfers_and_timeline(admin_client):
    session = create_session(amount="3.00", currency="USD", asset="USDC", network="test")
    transfer = make_transfer(session, 3_000_000, status="confirmed")
    refresh_session(session.pk)
    page = admin_client.get(f"/admin/payments_gateway/checkoutsession/{session.pk}/change/").content.decode()
    assert transfer.tx_hash in page
    for event_type in ("payment.created", "transaction.confirmed", "payment.completed"):
        assert event_type in page
    assert f"/pay/{session.uuid}/" in page


def test_expire_action(admin_client):
    session = create_session(amount="3.00", currency="USD", asset="USDC", network="test")
    response = admin_client.post(
        "/admin/payments_gateway/checkoutsession/",
        {"action": "expire", "_selected_action": [session.pk]},
        follow=True,
    )
    assert "Expired 1 session(s)." in response.content.decode()
    assert CheckoutSession.objects.get(pk=session.pk).status == "expired"
