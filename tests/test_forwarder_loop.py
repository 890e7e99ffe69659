"""The whole loop on a network with ``deposit_scheme: "forwarder"``: sessions get CREATE2 deposit addresses, and the
scanner detects, confirms and handles reorgs exactly as for xpub addresses; the hosted page and QR are unchanged.
"""

from __future__ import annotations

import pytest

from payments_gateway.chain import forwarder
from payments_gateway.models import Event, Transfer
from payments_gateway.scanning import scan_network
from payments_gateway.scanning.balances import BALANCE_CHECK_EVERY
from payments_gateway.services.sessions import create_session
from tests.factories import make_forwarder_session
from tests.onchain import paid_then_reorged_away, refreshed
from tests.test_checkout_page import decode_qr

pytestmark = pytest.mark.django_db


def test_sessions_get_forwarder_addresses_bound_to_the_treasury(forwarder_settings, chain):
    sessions = [create_session(asset="USDC", network="anvil", amount="10", currency="USD") for _ in range(3)]
    offline = forwarder.deposit_addresses(chain.forwarder_factory, chain.treasury, [0, 1, 2])
    onchain = forwarder.factory_deposit_addresses(chain.rpc, chain.forwarder_factory, chain.treasury, [0, 1, 2])
    assert [s.deposit_address.address for s in sessions] == offline == onchain
    for session in sessions:
        row = session.deposit_address
        assert (row.scheme, row.treasury, row.factory) == ("forwarder", chain.treasury, chain.forwarder_factory)
        assert chain.w3.eth.get_code(row.address) == b""  # nothing deployed: a 21,000-gas send just works


def test_eth_and_tokens_are_detected_then_confirmed_at_forwarder_addresses(forwarder_settings, chain):
    amounts = {"ETH": 2 * 10**18 + 1, "USDC": 12_345_678, "USDT": 5_000_001, "DAI": 10**23 + 7}
    sessions = {asset: make_forwarder_session(asset=asset, amount_due=amount) for asset, amount in amounts.items()}
    scan_network("anvil")
    gas = chain.w3.eth.send_transaction(
        {"from": chain.accounts[0], "to": sessions["ETH"].address, "value": amounts["ETH"], "gas": 21_000}
    )
    assert chain.w3.eth.get_transaction_receipt(gas)["status"] == 1  # what exchanges send
    for symbol in ("USDC", "USDT", "DAI"):
        chain.send_token(symbol, sessions[symbol].address, amounts[symbol])
    scan_network("anvil")
    assert refreshed(sessions["DAI"]).payment_status == "pending"  # 1 confirmation of 2

    chain.mine(1)
    scan_network("anvil")
    for asset, session in sessions.items():
        session = refreshed(session)
        assert (session.status, session.payment_status, session.amount_received) == ("complete", "paid", amounts[asset])
    assert set(Transfer.objects.values_list("status", flat=True)) == {"confirmed"}


def test_a_reorg_that_drops_the_payment_reopens_the_forwarder_session(forwarder_settings, chain):
    session = make_forwarder_session(asset="USDC", amount_due=5_000_000)
    paid_then_reorged_away(chain, session, 5_000_000)
    assert scan_network("anvil").reorg_depth >= 3
    assert Transfer.objects.get().status == "reverted"
    session = refreshed(session)
    assert (session.status, session.payment_status, session.amount_received) == ("open", "unpaid", 0)
    types = list(Event.objects.filter(session=session).order_by("created", "pk").values_list("type", flat=True))
    assert types[-2:] == ["transaction.failed", "payment.failed"]


def test_eth_paid_through_a_contract_to_a_forwarder_address_is_found_by_the_balance_check(forwarder_settings, chain):
    session = make_forwarder_session(asset="ETH", amount_due=10**18)
    scan_network("anvil")
    chain.forward_eth(session.address, 10**18)
    chain.mine(BALANCE_CHECK_EVERY + 2)
    scan_network("anvil")
    chain.mine(2)
    scan_network("anvil")
    assert Transfer.objects.get().kind == "internal"
    assert refreshed(session).payment_status == "paid"


def test_hosted_page_and_qr_show_the_forwarder_address(forwarder_settings, chain, client):
    session = create_session(asset="USDC", network="anvil", amount="25", currency="USD")
    address = session.deposit_address.address
    page = client.get(f"/pay/{session.uuid}/")
    assert page.status_code == 200 and address in page.content.decode()
    uri = decode_qr(client.get(f"/pay/{session.uuid}/qr.png").content)
    assert uri == f"ethereum:{chain.tokens['USDC']}@31337/transfer?address={address}&uint256=25000000"
