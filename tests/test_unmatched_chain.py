"""Money that arrives wrong, on a real anvil chain: old addresses, unknown tokens, canceled sessions.

Every transfer to any deposit address is recorded; one that settles no session is unmatched (with its reason) and
announced, and never credited to another checkout.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from payments_gateway.models import Event, Order, Transfer
from payments_gateway.scanning import scan_network
from payments_gateway.services.methods import choose_payment_method
from payments_gateway.services.sessions import cancel_session, create_session
from tests.factories import TEST_NETWORK, deploy_token, fresh_address, make_chain_session, make_deposit_address

pytestmark = pytest.mark.django_db


@pytest.fixture
def old_every_5_blocks(anvil_settings):
    """Old addresses' token transfers are read every 5 blocks (the dev chain makes a block a second)."""
    with override_settings(PAYMENTS_GATEWAY={**anvil_settings, "OLD_ADDRESS_SCAN_INTERVAL": 5}):
        yield


def refreshed(obj):
    obj.refresh_from_db()
    return obj


def unmatched_events(session=None):
    events = Event.objects.filter(type="transaction.unmatched").order_by("created", "pk")
    return [(e.data["tx_hash"], e.data["reason"]) for e in (events.filter(session=session) if session else events)]


def old_session(**fields):
    """A USDC session that expired two days ago: its late payment window ended a day ago."""
    now = timezone.now()
    deposit = make_deposit_address(network="anvil", address=fresh_address(), busy_until=now - timedelta(days=1))
    return make_chain_session(
        asset="USDC", amount_due=1_000_000, deposit_address=deposit, created=now - timedelta(days=3),
        expires_at=now - timedelta(days=2), status="expired", **fields,
    )  # fmt: skip


def test_a_stray_payment_to_an_old_address_is_unmatched_and_never_credits_a_new_session(old_every_5_blocks, chain):
    old = old_session()
    new = create_session(amount="1.00", currency="USD", asset="USDC", network="anvil")
    assert new.deposit_address_id != old.deposit_address_id
    scan_network("anvil")

    # A customer pays the old address again from their wallet's history, in USDC and in ETH.
    token_tx = chain.send_token("USDC", old.address, 1_000_000)
    eth_tx = chain.send_eth(old.address, 10**15)
    scan_network("anvil")
    # ETH is in the block bodies read at every block: recorded at once. The old address's token transfers are
    # read every 5 blocks only.
    assert list(Transfer.objects.filter(to_address=old.address).values_list("tx_hash", flat=True)) == [eth_tx]
    chain.mine(3)
    scan_network("anvil")

    transfers = {t.tx_hash: t for t in Transfer.objects.filter(to_address=old.address)}
    assert set(transfers) == {token_tx, eth_tx}
    stray = transfers[token_tx]
    assert (stray.session_id, stray.asset, stray.amount) == (old.pk, "USDC", 1_000_000)
    assert (stray.reason, stray.resolution) == ("after_late_window", "open")
    assert transfers[eth_tx].reason == "wrong_asset"
    assert not Transfer.objects.filter(session=new).exists()
    assert (refreshed(new).payment_status, refreshed(old).payment_status) == ("unpaid", "unpaid")
    assert sorted(unmatched_events(old)) == sorted([(token_tx, "after_late_window"), (eth_tx, "wrong_asset")])


def test_old_addresses_cost_one_log_query_per_chunk_per_interval(old_every_5_blocks, chain, fake_rpc, use_networks):
    proxy = fake_rpc("proxy", upstream=chain.rpc_url)
    use_networks(anvil=chain.network_settings(rpc_urls=[proxy.url], address_chunk=2))
    olds = [old_session() for _ in range(5)]
    make_chain_session(asset="USDC", amount_due=1_000_000)  # one open session
    scan_network("anvil")
    calls = []
    for _ in range(10):
        chain.mine(1)
        proxy.methods.clear()
        scan_network("anvil")
        calls.append(proxy.methods.count("eth_getLogs"))
    # One query per block for the open address; the 5 old ones (3 chunks of 2) once every 5 blocks.
    assert sorted(calls) == [1] * 8 + [4] * 2
    chain.send_token("USDC", olds[4].address, 7)
    chain.mine(5)
    scan_network("anvil")
    assert Transfer.objects.get(to_address=olds[4].address).reason == "after_late_window"


def test_an_unknown_token_is_recorded_with_its_contract_address_and_an_nft_is_not(anvil_settings, chain):
    session = make_chain_session(asset="USDC", amount_due=1_000_000)
    stray = deploy_token(chain, "STRAY")
    nft = _deploy_nft(chain)
    scan_network("anvil")
    tx = chain.send_token("USDC", session.address, 400_000)  # a real partial payment beside it
    stray_tx = _send_unknown(chain, stray, session.address, 5 * 10**18)
    nft_txs = [
        chain._send(nft.functions.mint(session.address, 1).transact({"from": chain.accounts[0]}), True),
        chain._send(nft.functions.mint(chain.accounts[0], 2).transact({"from": chain.accounts[0]}), True),
        chain._send(
            nft.functions.transferFrom(chain.accounts[0], session.address, 2).transact({"from": chain.accounts[0]}),
            True,
        ),
    ]
    chain.mine(2)
    scan_network("anvil")

    # The ERC-721 transfers share the ERC-20 topic and recipient: told apart (a 4th topic) and left out.
    assert not Transfer.objects.filter(tx_hash__in=nft_txs).exists()
    assert Transfer.objects.filter(to_address=session.address).count() == 2

    unknown = Transfer.objects.get(tx_hash=stray_tx)
    assert (unknown.asset, unknown.token_address, unknown.amount) == (stray, stray, 5 * 10**18)
    assert (unknown.session_id, unknown.reason, unknown.resolution) == (session.pk, "unknown_token", "open")
    assert Transfer.objects.get(tx_hash=tx).reason == ""
    session = refreshed(session)
    assert (session.payment_status, session.amount_received) == ("partially_paid", 400_000)
    (event,) = Event.objects.filter(type="transaction.unmatched")
    assert (event.data["asset"], event.data["reason"], event.data["session"]) == (stray, "unknown_token",
                                                                                  str(session.uuid))  # fmt: skip


def test_a_canceled_session_never_completes_its_payment_is_unmatched(anvil_settings, chain):
    session = cancel_session(make_chain_session(asset="USDC", amount_due=1_000_000))
    assert session.status == "canceled"
    scan_network("anvil")
    tx = chain.send_token("USDC", session.address, 1_000_000)
    chain.mine(2)
    scan_network("anvil")

    session = refreshed(session)
    assert (session.status, session.payment_status, session.amount_received) == ("canceled", "unpaid", 0)
    assert Order.objects.get(pk=session.order_id).status == "pending"
    transfer = Transfer.objects.get(tx_hash=tx)
    assert (transfer.session_id, transfer.reason, transfer.resolution) == (session.pk, "closed_session", "open")
    assert unmatched_events(session) == [(tx, "closed_session")]
    assert not Event.objects.filter(type="payment.completed").exists()


def test_a_superseded_session_paid_late_leaves_one_complete_session_per_order(anvil_settings, chain):
    first = create_session(amount="2.00", currency="USD", asset="USDC", network="anvil", reference="R-1")
    second = create_session(order="R-1", asset="DAI", network="anvil")  # the customer chose DAI instead
    assert refreshed(first).status == "canceled"
    scan_network("anvil")
    chain.send_token("DAI", second.address, second.amount_due)
    chain.send_token("USDC", first.address, first.amount_due)  # and paid the first address too
    chain.mine(2)
    scan_network("anvil")

    assert refreshed(second).status == "complete"
    assert (refreshed(first).status, refreshed(first).payment_status) == ("canceled", "unpaid")
    assert Transfer.objects.get(to_address=first.address).reason == "closed_session"
    assert [s.status for s in Order.objects.get(reference="R-1").sessions.all()].count("complete") == 1


def test_a_payment_to_the_network_the_customer_switched_away_from_is_unmatched_for_this_session(chain, use_networks):
    use_networks(anvil=chain.network_settings(confirmations=2), other=TEST_NETWORK | {"chain_id": 8453})
    session = create_session(amount="1.00", currency="USD", payment_methods=[
        {"network": "anvil", "asset": "USDC"}, {"network": "other", "asset": "USDC"}])  # fmt: skip
    choose_payment_method(session, "anvil", "USDC")
    old = session.address
    scan_network("anvil")
    session = choose_payment_method(session, "other", "USDC")  # the customer changed their mind
    assert session.deposit_address.network == "other"  # index 0 there too: the same string, another network
    tx = chain.send_token("USDC", old, 1_000_000)  # ...but their wallet still paid the first address
    chain.mine(2)
    scan_network("anvil")

    transfer = Transfer.objects.get(tx_hash=tx)
    assert (transfer.session_id, transfer.reason, transfer.resolution) == (session.pk, "wrong_asset", "open")
    assert unmatched_events(session) == [(tx, "wrong_asset")]
    session = refreshed(session)
    assert (session.network, session.status, session.payment_status) == ("other", "open", "unpaid")


def test_a_second_full_payment_is_an_excess_transfer(anvil_settings, chain):
    session = make_chain_session(asset="USDC", amount_due=1_000_000)
    scan_network("anvil")
    first = chain.send_token("USDC", session.address, 1_000_000)
    again = chain.send_token("USDC", session.address, 1_000_000, account_index=1)
    chain.mine(2)
    scan_network("anvil")
    session = refreshed(session)
    assert (session.status, session.payment_status, session.amount_received) == ("complete", "paid", 1_000_000)
    assert Transfer.objects.get(tx_hash=first).reason == ""
    assert (Transfer.objects.get(tx_hash=again).reason, Transfer.objects.get(tx_hash=again).resolution) == (
        "excess", "open",
    )  # fmt: skip


def _deploy_nft(chain):
    from payments_gateway.chain.contracts import load_artifact

    artifact = load_artifact("TestNFT")
    factory = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = chain.w3.eth.wait_for_transaction_receipt(factory.constructor().transact({"from": chain.accounts[0]}))
    return chain.w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def _send_unknown(chain, token: str, to: str, amount: int) -> str:
    from payments_gateway.chain.contracts import abi

    contract = chain.w3.eth.contract(address=token, abi=abi("TestToken"))
    return chain._send(contract.functions.transfer(to, amount).transact({"from": chain.accounts[0]}), True)


def test_the_scanner_address_cache_follows_added_and_replaced_rows():
    from payments_gateway.models import DepositAddress
    from payments_gateway.scanning.watched import all_addresses

    first = [make_deposit_address(network="cache", index=i, address=fresh_address()) for i in range(3)]
    assert {w.pk for w in all_addresses("cache").values()} == {d.pk for d in first}
    added = make_deposit_address(network="cache", index=3, address=fresh_address())
    assert all_addresses("cache")[added.address.lower()].pk == added.pk
    # Rows deleted and made again at the same indexes and addresses (a test database, a benchmark): new ids.
    DepositAddress.objects.filter(network="cache").delete()
    again = [make_deposit_address(network="cache", index=i, address=d.address) for i, d in enumerate([*first, added])]
    again.append(make_deposit_address(network="cache", index=4, address=fresh_address()))
    assert {w.pk for w in all_addresses("cache").values()} == {d.pk for d in again}
