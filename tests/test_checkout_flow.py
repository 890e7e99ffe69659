"""Checkout end to end: API → hosted page → real transfers on anvil found by the scanner → paid; expiry task."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from payments_gateway import tasks
from payments_gateway.models import CheckoutSession, Event, IdempotencyKey
from payments_gateway.scanning import scan_network
from payments_gateway.services.sessions import create_session

from .factories import make_api_key, make_idempotency_key

pytestmark = pytest.mark.django_db


def event_types(session) -> list[str]:
    return list(Event.objects.filter(session=session).order_by("created", "pk").values_list("type", flat=True))


@pytest.mark.anvil
def test_partial_payment_top_up_and_confirmations_on_anvil(anvil_settings, chain, api, client):
    body = {"amount": "30.00", "currency": "USD", "asset": "USDC", "network": "anvil",
            "success_url": "https://shop.example/thanks?s={CHECKOUT_SESSION_ID}"}  # fmt: skip
    created = api.post("/api/v1/sessions/", json.dumps(body), content_type="application/json").json()
    address, uuid = created["deposit_address"], created["uuid"]
    assert created["amount_due"] == "30000000"
    scan_network("anvil")  # catch up to the head before paying

    chain.send_token("USDC", address, 10_000_000)
    scan_network("anvil")
    state = client.get(f"/pay/{uuid}/status").json()
    assert (state["payment_status"], state["amount_remaining_display"]) == ("partially_paid", "20")
    assert state["payment_uri"].endswith(f"/transfer?address={address}&uint256=20000000")

    chain.send_token("USDC", address, 20_000_000)
    scan_network("anvil")
    state = client.get(f"/pay/{uuid}/status").json()
    assert state["payment_status"] == "pending"
    assert (state["confirmations"], state["confirmations_required"]) == (1, 2)

    chain.mine(1)
    scan_network("anvil")
    state = client.get(f"/pay/{uuid}/status").json()
    assert (state["status"], state["payment_status"]) == ("complete", "paid")
    assert client.get(f"/pay/{uuid}/continue")["Location"] == f"https://shop.example/thanks?s={uuid}"
    data = api.get(f"/api/v1/sessions/{uuid}/").json()
    assert data["amount_received"] == "30000000" and data["status"] == "complete"
    session = CheckoutSession.objects.get(uuid=uuid)
    assert session.order.status == "paid"
    types = event_types(session)
    assert types[0] == "payment.created" and types[-1] == "payment.completed"
    assert types.count("transaction.detected") == 2 and types.count("transaction.confirmed") == 2


@pytest.mark.anvil
def test_eth_quote_from_the_chainlink_feed_then_paid_on_anvil(anvil_settings, chain, settings, client):
    settings.PAYMENTS_GATEWAY = anvil_settings | {"RATE_PROVIDER": "chainlink"}
    chain.set_eth_usd("2000")
    session = create_session(amount="50.00", currency="USD", asset="ETH", network="anvil")
    assert session.amount_due == 25 * 10**15 and session.quote_rate == 2000
    chain.set_eth_usd("4000")  # the quote is locked: a new price changes nothing for this session
    scan_network("anvil")
    chain.send_eth(session.deposit_address.address, session.amount_due)
    chain.mine(1)
    scan_network("anvil")
    session.refresh_from_db()
    assert (session.status, session.payment_status, session.amount_due) == ("complete", "paid", 25 * 10**15)


def test_expiry_task_expires_due_sessions_once(test_gateway):
    due = create_session(amount="5", currency="USD", asset="USDC", network="test")
    later = create_session(amount="5", currency="USD", asset="USDC", network="test")
    CheckoutSession.objects.filter(pk=due.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert tasks.expire_sessions() == 1
    assert tasks.expire_sessions() == 0
    due.refresh_from_db(), later.refresh_from_db()
    assert (due.status, later.status) == ("expired", "open")
    assert event_types(due) == ["payment.created", "payment.expired"]


def test_idempotency_records_are_purged_after_the_ttl():
    key, _ = make_api_key()
    old = make_idempotency_key(key, key="old")
    IdempotencyKey.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(hours=25))
    make_idempotency_key(key, key="new")
    assert tasks.purge_idempotency_keys() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.anvil
def test_test_wallet_pays_half_then_the_rest_on_the_dev_chain(anvil_settings, chain, settings, client):
    settings.PAYMENTS_GATEWAY = anvil_settings | {
        "NETWORKS": {"anvil": chain.network_settings(confirmations=2, dev=True)}
    }
    session = create_session(amount="10.00", currency="USD", asset="USDT", network="anvil")
    page = client.get(f"/pay/{session.uuid}/").content.decode()
    assert "Pay half of it with test wallet" in page and "Pay the full amount with test wallet" in page

    page = client.post(f"/pay/{session.uuid}/test-pay", {"amount": "half"}, follow=True).content.decode()
    assert "Test wallet sent half of it" in page
    state = client.get(f"/pay/{session.uuid}/status").json()
    assert (state["payment_status"], state["amount_remaining_display"]) == ("partially_paid", "5")

    client.post(f"/pay/{session.uuid}/test-pay", {"amount": "full"})
    chain.mine(1)
    scan_network("anvil")
    state = client.get(f"/pay/{session.uuid}/status").json()
    assert (state["status"], state["payment_status"], state["amount_received"]) == ("complete", "paid", "10000000")
    assert "test wallet" not in client.get(f"/pay/{session.uuid}/").content.decode()
