"""Refunds on a real anvil chain: the merchant pays from their own wallet and the scanner sees it; a pasted
transaction hash is checked on chain."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from payments_gateway.models import Event, Refund
from payments_gateway.scanning import scan_network
from payments_gateway.scanning.refunds import submit_payment
from payments_gateway.services.refunds import create_refund
from tests.factories import fresh_address, make_chain_session

pytestmark = pytest.mark.django_db

MERCHANT = 9  # the dev account that plays the merchant's own wallet


def overpaid(chain, asset="USDC", due=1_000_000, sent=1_500_000):
    session = make_chain_session(asset=asset, amount_due=due)
    scan_network("anvil")
    (chain.send_eth if asset == "ETH" else lambda to, amount: chain.send_token(asset, to, amount))(
        session.address, sent
    )
    chain.mine(2)
    scan_network("anvil")
    session.refresh_from_db()
    assert session.payment_status == "overpaid"
    return session


def refreshed(refund):
    refund.refresh_from_db()
    return refund


def test_a_refund_paid_from_the_merchant_wallet_is_detected_and_completes(anvil_settings, chain):
    session = overpaid(chain)
    customer = chain.accounts[5]
    refund = create_refund(session=session, address=customer.lower())
    assert (refund.amount, refund.status) == (500_000, "initiated")

    tx = chain.send_token("USDC", customer, 500_000, account_index=MERCHANT)
    scan_network("anvil")
    refund = refreshed(refund)
    assert (refund.status, refund.tx_hash) == ("initiated", tx)  # seen, one confirmation of two
    chain.mine(1)
    scan_network("anvil")
    refund = refreshed(refund)
    assert (refund.status, refund.tx_hash) == ("completed", tx)
    (event,) = Event.objects.filter(type="refund.completed")
    assert (event.data["tx_hash"], event.data["address"], event.session_id) == (tx, customer, session.pk)


def test_an_eth_refund_is_found_in_the_block_bodies(anvil_settings, chain):
    session = overpaid(chain, asset="ETH", due=10**17, sent=3 * 10**17)
    refund = create_refund(session=session, address=fresh_address())
    tx = chain.send_eth(refund.address, 2 * 10**17, account_index=MERCHANT)
    chain.mine(2)
    scan_network("anvil")
    assert (refreshed(refund).status, refreshed(refund).tx_hash) == ("completed", tx)


def test_too_little_another_address_or_before_the_refund_does_not_complete(anvil_settings, chain):
    session = overpaid(chain)
    customer = fresh_address()
    refund = create_refund(session=session, address=customer, amount=200_000)
    early = create_refund(session=session, address=customer, amount=100_000, now=timezone.now() + timedelta(hours=1))
    chain.send_token("USDC", customer, 199_999, account_index=MERCHANT)  # too little (and before `early`)
    chain.send_token("USDC", fresh_address(), 200_000, account_index=MERCHANT)  # to someone else
    chain.send_token("DAI", customer, 10**18, account_index=MERCHANT)  # another asset
    chain.mine(3)
    scan_network("anvil")
    assert [(r.status, r.tx_hash) for r in (refreshed(refund), refreshed(early))] == [("initiated", "")] * 2
    assert not Event.objects.filter(type="refund.completed").exists()


def test_a_pasted_transaction_hash_is_checked_on_chain(anvil_settings, chain):
    session = overpaid(chain)
    customer = fresh_address()
    refund = create_refund(session=session, address=customer)
    wrong = chain.send_token("USDC", fresh_address(), 500_000, account_index=MERCHANT)
    short = chain.send_token("USDC", customer, 1, account_index=MERCHANT)
    cases = {
        "0x1234": "a transaction hash is 0x followed by 64 hexadecimal characters.",
        "0x" + "ab" * 32: f"no mined transaction 0x{'ab' * 32} on anvil.",
        wrong: f"transaction {wrong} sends no USDC to {customer}.",
        short: f"transaction {short} sends 1 base units; the refund is 500000.",
    }
    for tx_hash, message in cases.items():
        with pytest.raises(ValidationError) as info:
            submit_payment(refund, tx_hash)
        assert info.value.message_dict == {"tx_hash": [message]}
    assert (refreshed(refund).status, refreshed(refund).tx_hash) == ("initiated", "")

    right = chain.send_token("USDC", customer, 500_000, account_index=MERCHANT)
    assert submit_payment(refund, right) is False  # one confirmation of two: noted
    assert (refreshed(refund).status, refreshed(refund).tx_hash) == ("initiated", right)
    chain.mine(1)
    scan_network("anvil")
    assert refreshed(refund).status == "completed"
    assert Refund.objects.get().completed_at is not None
