"""The hosted checkout page, its QR code, live status (JSON + SSE), customer form, cancel and continue."""

import json
import subprocess
import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from eth_utils import to_checksum_address

from payments_gateway.models import CheckoutSession, Customer, Event, Transfer
from payments_gateway.services.payloads import amount_to_pay, payment_uri
from payments_gateway.services.payments import refresh_session
from payments_gateway.services.sessions import create_session
from payments_gateway.views import live

from .factories import TEST_NETWORK, make_customer, make_transfer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("test_gateway")]
TOKEN = to_checksum_address(TEST_NETWORK["tokens"]["USDC"]["address"])


def new(**kwargs):
    fields = {"amount": "25.00", "currency": "USD", "asset": "USDC", "network": "test",
              "success_url": "https://shop.example/done/{{UUID}}?type={{TRANSACTION_TYPE}}",
              "cancel_url": "https://shop.example/order?session={CHECKOUT_SESSION_ID}"} | kwargs  # fmt: skip
    return create_session(**fields)


def status(client, session):
    return client.get(f"/pay/{session.uuid}/status").json()


def decode_qr(png: bytes) -> str:
    result = subprocess.run(["zbarimg", "--raw", "-q", "-"], input=png, capture_output=True, check=True)
    return result.stdout.decode().strip()


def test_page_shows_what_to_pay(client):
    session = new()
    page = client.get(f"/pay/{session.uuid}/").content.decode()
    address = session.deposit_address.address
    assert 'Pay <span id="amount-due">25</span> USDC' in page
    assert f'<code id="address">{address}</code>' in page and '<code id="amount-to-pay">25</code>' in page
    assert page.count('class="copy"') == 2
    assert 'src="data:image/png;base64,' in page and 'id="countdown"' in page
    assert "Waiting for your payment." in page
    assert '<noscript><meta http-equiv="refresh"' in page and 'id="refresh"' in page
    assert 'name="viewport" content="width=device-width' in page
    assert 'id="customer-form"' in page and 'id="cancel-form"' in page
    assert "test wallet" not in page  # not a dev network


def test_qr_code_is_the_exact_eip681_uri_of_what_remains(client):
    token_session = new()
    address = token_session.deposit_address.address
    png = client.get(f"/pay/{token_session.uuid}/qr.png")
    assert png["Content-Type"] == "image/png"
    assert decode_qr(png.content) == f"ethereum:{TOKEN}@31337/transfer?address={address}&uint256=25000000"
    make_transfer(token_session, 10_000_000)
    refresh_session(token_session.pk)
    remainder = decode_qr(client.get(f"/pay/{token_session.uuid}/qr.png").content)
    assert remainder == f"ethereum:{TOKEN}@31337/transfer?address={address}&uint256=15000000"

    eth_session = new(asset="ETH")
    uri = decode_qr(client.get(f"/pay/{eth_session.uuid}/qr.png").content)
    assert uri == f"ethereum:{eth_session.deposit_address.address}@31337?value=8333333333333334"


def test_status_follows_the_payment(client):
    session = new()
    assert status(client, session)["message"] == "Waiting for your payment."
    first = make_transfer(session, 10_000_000, confirmations=1)
    refresh_session(session.pk)
    state = status(client, session)
    assert state["payment_status"] == "partially_paid" and state["amount_remaining_display"] == "15"
    assert state["message"] == "Partially paid: 15 USDC still to pay to the same address."
    second = make_transfer(session, 15_000_000, confirmations=1)
    Transfer.objects.filter(pk=first.pk).update(confirmations=2)
    refresh_session(session.pk)
    state = status(client, session)
    assert state["payment_status"] == "pending" and (state["confirmations"], state["confirmations_required"]) == (1, 3)
    assert state["message"] == "Payment received, waiting for confirmations (1/3)."
    Transfer.objects.filter(pk__in=[first.pk, second.pk]).update(status="confirmed", confirmations=3)
    refresh_session(session.pk)
    state = status(client, session)
    assert (state["status"], state["payment_status"], state["message"]) == ("complete", "paid", "Paid — thank you!")
    page = client.get(f"/pay/{session.uuid}/").content.decode()
    assert 'id="continue"' in page and 'id="pay-box" hidden' in page


def test_pending_payment_is_not_asked_for_again(client):
    session = new()
    assert amount_to_pay(session) == 25_000_000
    make_transfer(session, 25_000_000, confirmations=1)
    session = refresh_session(session.pk)
    assert session.payment_status == "pending"
    assert amount_to_pay(session) == 0 and payment_uri(session) is None
    state = status(client, session)
    assert (state["status"], state["awaiting_payment"], state["amount_to_pay"]) == ("open", False, "0")
    assert state["message"] == "Payment received, waiting for confirmations (1/3)."
    page = client.get(f"/pay/{session.uuid}/").content.decode()
    assert 'id="pay-box" hidden' in page
    assert "uint256=25000000" not in page  # no QR code / wallet link asking for the amount again
    assert client.get(f"/pay/{session.uuid}/qr.png").status_code == 404


def test_within_tolerance_pending_asks_for_nothing(client, settings):
    settings.PAYMENTS_GATEWAY = settings.PAYMENTS_GATEWAY | {"UNDERPAYMENT_TOLERANCE": {"USDC": "1%"}}
    session = new()
    make_transfer(session, 24_900_000, confirmations=1)  # 0.1 USDC short, inside the 1 % tolerance
    session = refresh_session(session.pk)
    assert session.payment_status == "pending" and session.amount_remaining == 100_000
    assert amount_to_pay(session) == 0
    assert status(client, session)["awaiting_payment"] is False


def test_a_payment_in_another_asset_is_announced_and_shown_but_does_not_pay(client):
    session = new()  # 25 USDC
    wrong = make_transfer(session, 25_000_000, asset="USDT", status="confirmed", confirmations=3)
    session = refresh_session(session.pk)
    assert (session.status, session.payment_status, session.amount_received) == ("open", "unpaid", 0)
    announced = Event.objects.filter(session=session, type__startswith="transaction.").order_by("created")
    assert [(e.type, e.data["asset"], e.data["tx_hash"]) for e in announced] == [
        ("transaction.detected", "USDT", wrong.tx_hash),
        ("transaction.confirmed", "USDT", wrong.tx_hash),
        ("transaction.unmatched", "USDT", wrong.tx_hash),
    ]
    expected = "A payment in USDT was received; this checkout expects USDC. Contact the merchant for a refund."
    assert status(client, session)["wrong_asset_message"] == expected
    assert expected in client.get(f"/pay/{session.uuid}/").content.decode()

    other = new()
    assert status(client, other)["wrong_asset_message"] is None
    assert 'id="wrong-asset" class="warning" hidden' in client.get(f"/pay/{other.uuid}/").content.decode()


def test_overpayment_is_flagged_with_the_excess(client):
    session = new()
    make_transfer(session, 26_500_000, status="confirmed")
    refresh_session(session.pk)
    assert status(client, session)["message"] == "Paid — thank you! You sent 1.5 USDC more than the amount due."


def test_a_page_never_shows_a_stale_open_session(client):
    session = new()
    CheckoutSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    page = client.get(f"/pay/{session.uuid}/").content.decode()
    assert "This payment expired" in page and 'data-status="expired"' in page
    assert status(client, session)["status"] == "expired"
    assert Event.objects.filter(type="payment.expired").count() == 1


def test_sse_stream_sends_the_state_and_ends_when_the_session_is_done(client, monkeypatch):
    session = new()
    monkeypatch.setattr(live, "WSGI_STREAM_SECONDS", 0)  # the test client is a WSGI server
    response = client.get(f"/pay/{session.uuid}/events")
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("retry: 2000\n\n")
    events = [block for block in body.split("\n\n") if block.startswith("event: status")]
    assert len(events) == 1
    assert json.loads(events[0].split("data: ", 1)[1])["payment_status"] == "unpaid"

    make_transfer(session, 25_000_000, status="confirmed")
    refresh_session(session.pk)
    monkeypatch.setattr(live, "WSGI_STREAM_SECONDS", 3600)  # ends because the session is complete, not by time
    body = b"".join(client.get(f"/pay/{session.uuid}/events").streaming_content).decode()
    assert '"status": "complete"' in body


def test_unknown_session_is_404_everywhere(client):
    missing = uuid.uuid4()
    assert client.get(f"/pay/{missing}/").status_code == 404
    response = client.get(f"/pay/{missing}/status")
    assert response.status_code == 404 and response.json()["error"]["message"] == f"No payment {missing}."
    assert client.get(f"/pay/{missing}/events").status_code == 404
    assert client.post(f"/pay/{missing}/cancel").status_code == 404


def test_customer_form_creates_a_customer_and_never_takes_over_an_existing_one(client):
    victim = make_customer(email="second-buyer@example.com", name="Earlier Buyer")
    first = new()
    response = client.post(f"/pay/{first.uuid}/customer", {"email": "second-buyer@example.com", "name": "Someone Else"})
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.customer != victim and first.customer.email == "second-buyer@example.com"
    victim.refresh_from_db()
    assert victim.name == "Earlier Buyer" and not victim.sessions.exists()
    assert Event.objects.filter(type="customer.created").count() == 1
    page = client.get(f"/pay/{first.uuid}/").content.decode()
    assert 'id="customer-form"' not in page and "second-buyer@example.com" in page

    third = new()
    page = client.post(f"/pay/{third.uuid}/customer", {"email": "nope"}, follow=True).content.decode()
    assert "Enter a valid e-mail address." in page and Customer.objects.count() == 2
    too_long = "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".com"
    response = client.post(f"/pay/{third.uuid}/customer", {"email": too_long}, follow=True)
    assert response.status_code == 200 and "at most 254 characters" in response.content.decode()
    assert Customer.objects.count() == 2


def test_cancel_redirects_to_cancel_url_with_placeholders(client):
    session = new()
    response = client.post(f"/pay/{session.uuid}/cancel")
    assert response.status_code == 302
    assert response["Location"] == f"https://shop.example/order?session={session.uuid}"
    session.refresh_from_db()
    assert session.status == "canceled"
    assert client.get(f"/pay/{session.uuid}/status").json()["message"] == "This payment was canceled."


def test_cancel_is_refused_once_money_was_seen(client):
    session = new()
    make_transfer(session, 1_000_000)
    refresh_session(session.pk)
    page = client.post(f"/pay/{session.uuid}/cancel", follow=True).content.decode()
    assert "cannot be canceled" in page
    session.refresh_from_db()
    assert session.status == "open"


def test_continue_goes_to_success_url_only_when_paid(client):
    session = new()
    assert client.get(f"/pay/{session.uuid}/continue")["Location"] == f"/pay/{session.uuid}/"
    make_transfer(session, 25_000_000, status="confirmed")
    refresh_session(session.pk)
    response = client.get(f"/pay/{session.uuid}/continue")
    assert response["Location"] == f"https://shop.example/done/{session.uuid}?type=payment"


def test_test_wallet_is_refused_off_a_dev_chain(client):
    session = new()
    assert client.post(f"/pay/{session.uuid}/test-pay", {"amount": "full"}).status_code == 404


def test_forms_need_csrf():
    session = new()
    csrf_client = Client(enforce_csrf_checks=True)
    assert csrf_client.post(f"/pay/{session.uuid}/cancel").status_code == 403
    session.refresh_from_db()
    assert session.status == "open"
