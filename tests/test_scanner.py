"""The scanner on a real anvil chain: payments found once, confirmations counted, reorgs rolled back."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from payments_gateway.models import ChainCursor, Event, ScannedBlock, SessionStatus, Transfer
from payments_gateway.scanning import check_transaction, scan_network
from payments_gateway.scanning.balances import BALANCE_CHECK_EVERY
from payments_gateway.scanning.store import TransferStore
from tests.concurrency import run_together
from tests.factories import fresh_address, make_chain_session, make_deposit_address, make_transfer
from tests.onchain import one_block, paid_then_reorged_away, refreshed

pytestmark = pytest.mark.django_db


def event_types(session):
    return list(Event.objects.filter(session=session).order_by("created", "pk").values_list("type", flat=True))


def test_eth_and_each_token_are_detected_then_confirmed(anvil_settings, chain):
    amounts = {"ETH": 2 * 10**18 + 1, "USDC": 12_345_678, "USDT": 5_000_001, "DAI": 10**23 + 7}
    sessions = {asset: make_chain_session(asset=asset, amount_due=amount) for asset, amount in amounts.items()}
    scan_network("anvil")  # catch up to the current head
    txs = {"ETH": chain.send_eth(sessions["ETH"].address, amounts["ETH"])}
    for symbol in ("USDC", "USDT", "DAI"):
        txs[symbol] = chain.send_token(symbol, sessions[symbol].address, amounts[symbol])

    scan_network("anvil")
    for asset, session in sessions.items():
        (transfer,) = Transfer.objects.filter(session=session)
        assert (transfer.asset, transfer.amount, transfer.tx_hash) == (asset, amounts[asset], txs[asset])
        assert transfer.to_address == session.address
        assert transfer.from_address == chain.accounts[0]
    # The DAI payment is the last block: 1 confirmation of 2, so that session is not paid yet.
    assert Transfer.objects.get(asset="DAI").status == "detected"
    assert refreshed(sessions["DAI"]).payment_status == "pending"
    assert refreshed(sessions["ETH"]).payment_status == "paid"
    assert Transfer.objects.get(asset="ETH").kind == "native"
    assert Transfer.objects.get(asset="USDC").token_address == chain.tokens["USDC"]

    chain.mine(1)
    scan_network("anvil")
    for session in sessions.values():
        session = refreshed(session)
        assert (session.status, session.payment_status) == (SessionStatus.COMPLETE, "paid")
        assert session.amount_received == session.amount_due
    assert set(Transfer.objects.values_list("status", flat=True)) == {"confirmed"}


def test_partial_payment_then_top_up_to_the_same_address(anvil_settings, chain):
    session = make_chain_session(asset="USDC", amount_due=10_000_000)
    scan_network("anvil")
    chain.send_token("USDC", session.address, 4_000_000)
    chain.mine(2)
    scan_network("anvil")
    session = refreshed(session)
    assert session.payment_status == "partially_paid"
    assert session.amount_received == 4_000_000
    assert session.status == "open"

    chain.send_token("USDC", session.address, 6_000_000, account_index=2)
    chain.mine(2)
    scan_network("anvil")
    session = refreshed(session)
    assert (session.status, session.payment_status, session.amount_received) == ("complete", "paid", 10_000_000)
    assert Transfer.objects.filter(session=session).count() == 2


def test_two_transfers_in_one_block_are_both_counted(anvil_settings, chain):
    eth = make_chain_session(asset="ETH", amount_due=3 * 10**17)
    usdc = make_chain_session(asset="USDC", amount_due=2_000_000)
    scan_network("anvil")
    with one_block(chain):
        chain.send_eth(eth.address, 10**17, account_index=1, wait=False)
        chain.send_eth(eth.address, 2 * 10**17, account_index=2, wait=False)
        chain.send_token("USDC", usdc.address, 1_000_000, account_index=3, wait=False)
        chain.send_token("USDC", usdc.address, 1_000_000, account_index=4, wait=False)
    chain.mine(1)
    scan_network("anvil")
    transfers = list(Transfer.objects.all())
    assert len(transfers) == 4
    assert len({t.block_number for t in transfers}) == 1
    assert len({(t.tx_hash, t.log_index) for t in transfers}) == 4
    assert refreshed(eth).payment_status == "paid"
    assert refreshed(eth).amount_received == 3 * 10**17
    assert refreshed(usdc).amount_received == 2_000_000


def test_transfers_to_addresses_nobody_watches_are_ignored(anvil_settings, chain):
    session = make_chain_session(asset="USDC", amount_due=1_000_000)
    scan_network("anvil")
    stranger = fresh_address()
    chain.send_token("USDC", stranger, 1_000_000)
    chain.send_eth(stranger, 10**18)
    chain.forward_eth(stranger, 10**18)
    chain.send_token("USDC", chain.accounts[5], 1_000_000)
    result = scan_network("anvil")
    assert result.status == "scanned"
    assert Transfer.objects.count() == 0
    assert refreshed(session).payment_status == "unpaid"


def test_confirmations_progress_block_by_block(chain, use_networks):
    use_networks(anvil=chain.network_settings(confirmations=3))
    session = make_chain_session(asset="ETH", amount_due=10**18)
    scan_network("anvil")
    chain.send_eth(session.address, 10**18)
    seen = []
    for _ in range(3):
        scan_network("anvil")
        transfer = Transfer.objects.get()
        seen.append((transfer.confirmations, transfer.status, refreshed(session).payment_status))
        chain.mine(1)
    assert seen == [(1, "detected", "pending"), (2, "detected", "pending"), (3, "confirmed", "paid")]
    assert event_types(session) == [
        "transaction.detected",
        "payment.pending",
        "transaction.confirmed",
        "payment.completed",
    ]


def test_reorg_that_drops_the_payment_reverts_it_and_reopens_the_session(anvil_settings, chain):
    session = make_chain_session(asset="USDC", amount_due=5_000_000)
    old_head = paid_then_reorged_away(chain, session, 5_000_000)
    result = scan_network("anvil")
    assert result.reorg_depth >= 3
    transfer = Transfer.objects.get()
    assert transfer.status == "reverted"
    session = refreshed(session)
    assert (session.status, session.payment_status, session.amount_received) == ("open", "unpaid", 0)
    assert event_types(session)[-2:] == ["transaction.failed", "payment.failed"]
    cursor = ChainCursor.objects.get(network="anvil")
    assert cursor.block_number == chain.w3.eth.block_number > old_head
    assert cursor.block_hash == chain.w3.eth.get_block(cursor.block_number).hash.to_0x_hex()
    hashes = dict(ScannedBlock.objects.filter(network="anvil").values_list("number", "hash"))
    assert hashes[old_head] == chain.w3.eth.get_block(old_head).hash.to_0x_hex()


def test_shorter_chain_after_anvil_reorg_reverts_the_payment(anvil_settings, chain):
    session = make_chain_session(asset="ETH", amount_due=10**18)
    scan_network("anvil")
    chain.send_eth(session.address, 10**18)
    scan_network("anvil")
    assert Transfer.objects.get().status == "detected"
    chain.rpc("anvil_reorg", [1, []])  # replaces the payment's block with an empty one
    scan_network("anvil")
    assert Transfer.objects.get().status == "reverted"
    assert refreshed(session).payment_status == "unpaid"


def test_payment_mined_again_after_a_reorg_moves_to_its_new_block(anvil_settings, chain):
    session = make_chain_session(asset="ETH", amount_due=10**18)
    scan_network("anvil")
    before_payment = chain.snapshot()
    tx_hash = chain.send_eth(session.address, 10**18)
    raw = chain.rpc("eth_getRawTransactionByHash", [tx_hash])
    scan_network("anvil")
    old = Transfer.objects.get()
    chain.revert(before_payment)
    chain.mine(1)
    chain.rpc("eth_sendRawTransaction", [raw])  # the same signed payment, in a later block
    chain.mine(1)
    scan_network("anvil")
    transfer = Transfer.objects.get()  # still one row: the same payment
    assert transfer.tx_hash == tx_hash
    assert transfer.status == "confirmed"
    assert transfer.block_number == old.block_number + 1
    assert transfer.block_hash != old.block_hash
    assert refreshed(session).payment_status == "paid"


def test_restart_resumes_from_the_cursor_and_a_crash_mid_range_loses_nothing(chain, use_networks):
    use_networks(anvil=chain.network_settings(max_block_range=3))
    session = make_chain_session(asset="DAI", amount_due=10**18)
    scan_network("anvil")
    start = ChainCursor.objects.get(network="anvil").block_number
    for _ in range(4):  # four payments in four blocks, spread over two ranges of 3 blocks
        chain.send_token("DAI", session.address, 25 * 10**16)
    chain.mine(2)

    calls = {"n": 0}
    real = TransferStore.refresh_sessions

    def crash_on_second_range(store):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(store)

    with mock.patch.object(TransferStore, "refresh_sessions", crash_on_second_range), pytest.raises(RuntimeError):
        scan_network("anvil")
    cursor = ChainCursor.objects.get(network="anvil")
    assert cursor.block_number == start + 3  # the first range committed, the second rolled back
    assert Transfer.objects.count() == 3
    assert "worker killed" in cursor.last_error
    assert cursor.lease_owner == ""  # released: the next scan needs no lease expiry

    result = scan_network("anvil")
    assert result.from_block == start + 4
    assert Transfer.objects.count() == 4
    assert refreshed(session).payment_status == "paid"
    assert ChainCursor.objects.get(network="anvil").last_error == ""


def test_rescanning_a_range_never_counts_a_payment_twice(anvil_settings, chain):
    session = make_chain_session(asset="USDT", amount_due=3_000_000)
    scan_network("anvil")
    start = ChainCursor.objects.get(network="anvil").block_number
    chain.send_token("USDT", session.address, 1_000_000)
    chain.forward_eth(session.address, 10**15)  # ETH through a contract, found by the balance check
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    events = event_types(session)
    first = sorted(Transfer.objects.values_list("tx_hash", "log_index", "amount", "status"))
    assert len(first) == 2

    ChainCursor.objects.filter(network="anvil").update(block_number=start, block_hash="")
    ScannedBlock.objects.all().delete()
    scan_network("anvil")
    scan_network("anvil")
    assert sorted(Transfer.objects.values_list("tx_hash", "log_index", "amount", "status")) == first
    assert refreshed(session).amount_received == 1_000_000
    assert event_types(session) == events


def test_a_scan_that_died_holding_the_lease_leaves_it_to_the_next_scan_of_its_thread(anvil_settings, chain):
    from payments_gateway.scanning import lease

    scan_network("anvil")
    chain.mine(2)
    lease.acquire("anvil")  # a scan whose database connection dropped: it could not release the lease
    assert scan_network("anvil").status == "scanned"  # not "busy" until the lease runs out (2 minutes)
    assert ChainCursor.objects.get(network="anvil").lease_owner == ""


def test_another_process_holding_the_lease_makes_the_scan_busy(anvil_settings, chain):
    from django.utils import timezone

    scan_network("anvil")
    head = ChainCursor.objects.get(network="anvil").block_number
    chain.mine(2)
    ChainCursor.objects.filter(network="anvil").update(
        lease_owner="other-host:1:abc", lease_expires=timezone.now() + timezone.timedelta(minutes=1)
    )
    assert scan_network("anvil").status == "busy"
    assert ChainCursor.objects.get(network="anvil").block_number == head
    # An expired lease (its holder died) is taken over.
    ChainCursor.objects.filter(network="anvil").update(lease_expires=timezone.now() - timezone.timedelta(seconds=1))
    assert scan_network("anvil").status == "scanned"
    assert ChainCursor.objects.get(network="anvil").block_number == head + 2


@pytest.mark.django_db(transaction=True)
def test_two_scanners_at_once_store_each_payment_once(anvil_settings, chain):
    sessions = [make_chain_session(asset="USDC", amount_due=1_000_000) for _ in range(3)]
    for s in sessions:
        chain.send_token("USDC", s.address, 1_000_000)
        chain.send_eth(s.address, 10**15)
    chain.mine(2)

    def scanner(_):
        return [scan_network("anvil").status for _ in range(3)]

    outcomes = [status for statuses in run_together(4, scanner) for status in statuses]
    assert "scanned" in outcomes
    assert Transfer.objects.count() == 6
    for s in sessions:
        assert refreshed(s).amount_received == 1_000_000
        # One event per transfer, the ETH one too (announced although it does not pay a USDC session); a rescan
        # by the other scanner adds none.
        detected = Event.objects.filter(session=s, type="transaction.detected")
        assert sorted(e.data["asset"] for e in detected) == ["ETH", "USDC"]


def test_eth_paid_through_a_contract_is_found_by_the_balance_check(anvil_settings, chain):
    session = make_chain_session(asset="ETH", amount_due=10**18)
    scan_network("anvil")
    chain.send_eth(session.address, 4 * 10**17)  # a plain transfer: found in the block body
    chain.forward_eth(session.address, 6 * 10**17)  # through the Forwarder: no tx to the address, no log
    chain.mine(BALANCE_CHECK_EVERY)  # the balance check runs every BALANCE_CHECK_EVERY blocks
    scan_network("anvil")
    internal = Transfer.objects.get(kind="internal")
    assert internal.amount == 6 * 10**17
    assert internal.log_index == -2
    assert internal.block_number == chain.w3.eth.block_number
    assert Transfer.objects.get(kind="native").amount == 4 * 10**17
    chain.mine(2)
    scan_network("anvil")
    scan_network("anvil")
    assert Transfer.objects.count() == 2  # the balance is explained now: nothing more recorded
    session = refreshed(session)
    assert (session.payment_status, session.amount_received) == ("paid", 10**18)


def test_check_transaction_stores_a_real_payment_and_ignores_forged_hints(anvil_settings, chain):
    session = make_chain_session(asset="USDC", amount_due=2_000_000)
    tx_hash = chain.send_token("USDC", session.address, 2_000_000)
    chain.mine(1)
    (transfer,) = check_transaction("anvil", tx_hash)
    assert (transfer.amount, transfer.session_id, transfer.status) == (2_000_000, session.pk, "confirmed")
    assert refreshed(session).payment_status == "paid"
    assert [t.pk for t in check_transaction("anvil", tx_hash.upper().replace("0X", "0x"))] == [transfer.pk]

    # Forged or wrong hints change nothing.
    other = chain.send_token("USDC", fresh_address(), 2_000_000)
    assert check_transaction("anvil", other) == []
    assert check_transaction("anvil", "0x" + "ab" * 32) == []
    usdc = chain.token("USDC")
    failed = usdc.functions.transfer(session.address, 10**30).transact({"from": chain.accounts[1], "gas": 200_000})
    assert chain.w3.eth.wait_for_transaction_receipt(failed)["status"] == 0  # mined, reverted: no payment
    assert check_transaction("anvil", failed.to_0x_hex()) == []
    with pytest.raises(ValueError, match="malformed transaction hash"):
        check_transaction("anvil", "0x1234")
    with pytest.raises(ValueError, match="unknown network 'nope'"):
        check_transaction("nope", tx_hash)
    assert Transfer.objects.count() == 1
    # The scanner later finds the same payment and does not count it again.
    scan_network("anvil")
    assert Transfer.objects.count() == 1
    assert refreshed(session).amount_received == 2_000_000


def test_scan_command_and_bad_input(anvil_settings, chain, capsys):
    session = make_chain_session(asset="ETH", amount_due=10**17)
    chain.send_eth(session.address, 10**17)
    call_command("payments_gateway_scan", "--once", "--network", "anvil")
    assert "anvil: blocks 0.." in capsys.readouterr().out
    assert Transfer.objects.count() == 1
    with pytest.raises(CommandError, match="unknown network 'mainnet'; configured networks: anvil"):
        call_command("payments_gateway_scan", "--network", "mainnet")
    with pytest.raises(ValueError, match="unknown network 'mainnet'"):
        scan_network("mainnet")


def test_hand_written_multicall_encoding_matches_the_abi():
    from eth_abi import encode

    from payments_gateway.chain.multicall import AGGREGATE3, GET_ETH_BALANCE, decode_balances, encode_balance_calls

    multicall, addresses = fresh_address(), [fresh_address() for _ in range(7)]
    calls = [(multicall, True, GET_ETH_BALANCE + encode(["address"], [a])) for a in addresses]
    expected = AGGREGATE3 + encode(["(address,bool,bytes)[]"], [calls])
    assert encode_balance_calls(multicall, addresses) == "0x" + expected.hex()
    balances = [0, 1, 2**256 - 1, 10**18, 7, 10**30 + 1, 3]
    answer = "0x" + encode(["(bool,bytes)[]"], [[(True, b.to_bytes(32, "big")) for b in balances]]).hex()
    assert decode_balances(answer, 7) == balances
    for garbage in ["0x", "nope", answer[:-64], None]:
        with pytest.raises(ValueError):
            decode_balances(garbage, 7)
    failed = "0x" + encode(["(bool,bytes)[]"], [[(False, b"")] * 7]).hex()
    with pytest.raises(ValueError, match="failed"):
        decode_balances(failed, 7)


def test_xpub_address_paid_with_the_dev_wallet_completes_the_session(anvil_settings, chain):
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from payments_gateway.chain.devchain import pay_session
    from payments_gateway.chain.hd import derive_address
    from payments_gateway.deposits import allocate_address

    with transaction.atomic():
        deposit = allocate_address("anvil", timezone.now() + timedelta(days=2))
    assert deposit.address == derive_address(anvil_settings["XPUB"], deposit.index)
    session = make_chain_session(asset="USDT", amount_due=7_500_000, deposit_address=deposit)
    pay_session(session, 2_500_000)
    scan_network("anvil")
    assert refreshed(session).payment_status == "partially_paid"
    pay_session(session)  # the rest
    chain.mine(1)
    scan_network("anvil")
    session = refreshed(session)
    assert (session.status, session.payment_status, session.amount_received) == ("complete", "paid", 7_500_000)


def test_late_payment_is_credited_and_marked_late_but_not_after_the_late_window(anvil_settings, chain):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    late = make_chain_session(
        asset="USDC", amount_due=1_000_000, created=now - timedelta(hours=2), expires_at=now - timedelta(minutes=30),
        status="expired",
    )  # fmt: skip
    too_late = make_chain_session(
        asset="USDC", amount_due=1_000_000, created=now - timedelta(hours=30), expires_at=now - timedelta(hours=25),
        status="expired",
    )  # fmt: skip
    chain.send_token("USDC", late.address, 1_000_000)
    chain.send_token("USDC", too_late.address, 1_000_000)
    chain.mine(1)
    scan_network("anvil")
    credited = Transfer.objects.get(to_address=late.address)
    assert (credited.session_id, credited.late) == (late.pk, True)
    late = refreshed(late)
    assert (late.status, late.payment_status, late.late) == ("complete", "paid", True)
    # After expiry + LATE_PAYMENT_WINDOW (24 h) the money is recorded for the session it was meant for, but pays
    # nothing: it waits for the merchant in "Needs attention".
    orphan = Transfer.objects.get(to_address=too_late.address)
    assert (orphan.session_id, orphan.deposit_address_id) == (too_late.pk, too_late.deposit_address_id)
    assert (orphan.reason, orphan.resolution) == ("after_late_window", "open")
    assert refreshed(too_late).payment_status == "unpaid"
    assert event_types(too_late)[-1] == "transaction.unmatched"


def test_eth_reaching_an_idle_address_is_recorded_for_no_session_and_never_credits_its_next_one(anvil_settings, chain):
    from datetime import timedelta

    from django.utils import timezone

    from payments_gateway.models import DepositAddress

    now = timezone.now()
    watched = make_chain_session(asset="ETH", amount_due=10**18)  # keeps the scan looking at block bodies
    idle = make_deposit_address(network="anvil", address=fresh_address(), busy_until=now - timedelta(days=1))
    scan_network("anvil")
    chain.send_eth(idle.address, 5 * 10**17)  # a customer pays an old address from their wallet history
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    stray = Transfer.objects.get(to_address=idle.address)
    assert (stray.session_id, stray.kind, stray.amount) == (None, "native", 5 * 10**17)

    # The address is handed to a new session: the old ETH on it is explained, the session stays unpaid.
    DepositAddress.objects.filter(pk=idle.pk).update(busy_until=now + timedelta(days=2))
    session = make_chain_session(asset="ETH", amount_due=10**17, deposit_address=DepositAddress.objects.get(pk=idle.pk))
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    assert Transfer.objects.filter(to_address=idle.address).count() == 1
    assert refreshed(session).payment_status == "unpaid"
    assert refreshed(watched).payment_status == "unpaid"


def test_a_chain_replaced_under_the_cursor_is_rescanned_and_old_payments_reverted(anvil_settings, chain):
    from django.utils import timezone

    session = make_chain_session(asset="USDC", amount_due=1_000_000)
    scan_network("anvil")
    head = chain.w3.eth.block_number
    # The database remembers a longer, different chain (say the dev chain was restarted): a cursor, kept hashes
    # and a confirmed payment far above today's head.
    fake = "0x" + "de" * 32
    ChainCursor.objects.filter(network="anvil").update(block_number=head + 1000, block_hash=fake)
    ScannedBlock.objects.all().delete()
    ScannedBlock.objects.bulk_create(
        ScannedBlock(network="anvil", number=n, hash=fake, parent_hash=fake) for n in range(head + 900, head + 1001)
    )
    make_transfer(
        session, 1_000_000, status="confirmed", tx_hash="0x" + "77" * 32, block_number=head + 950, block_hash=fake,
        confirmations=50, confirmed_at=timezone.now(),
    )  # fmt: skip
    from payments_gateway.services.payments import refresh_session

    assert refresh_session(session.pk).payment_status == "paid"

    chain.send_token("USDC", session.address, 400_000)
    result = scan_network("anvil")
    assert result.reorg_depth > 1000
    cursor = ChainCursor.objects.get(network="anvil")
    assert cursor.block_number == chain.w3.eth.block_number
    assert Transfer.objects.get(block_hash=fake).status == "reverted"
    session = refreshed(session)
    assert (session.payment_status, session.amount_pending + session.amount_received) == ("partially_paid", 400_000)


def test_a_malformed_deposit_address_row_is_logged_and_skipped(anvil_settings, chain, caplog):
    session = make_chain_session(asset="ETH", amount_due=10**17)
    make_deposit_address(network="anvil", address="0x123", busy_until=session.expires_at)
    chain.send_eth(session.address, 10**17)
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    assert refreshed(session).payment_status == "paid"
    assert "DepositAddress #" in caplog.text and "malformed address '0x123'" in caplog.text


def test_eth_an_address_already_held_is_never_credited_to_its_session(anvil_settings, chain):
    # Address 0 of the merchant's MetaMask/Ledger account is a funded wallet, or ETH reached an address while the
    # gateway watched nothing: the scanner never saw that ETH arrive (no block bodies are read then).
    address = fresh_address()
    scan_network("anvil")
    chain.send_eth(address, 3 * 10**18)
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    assert Transfer.objects.count() == 0

    session = make_chain_session(asset="ETH", amount_due=10**18, address=address)
    for _ in range(3):
        chain.mine(BALANCE_CHECK_EVERY)
        scan_network("anvil")
    session = refreshed(session)
    assert (session.payment_status, session.amount_received, session.amount_pending) == ("unpaid", 0, 0)
    assert not Transfer.objects.filter(to_address=address).exists()

    # A real payment through a contract afterwards is credited, exactly.
    chain.forward_eth(address, 10**18)
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    chain.mine(2)
    scan_network("anvil")
    (internal,) = Transfer.objects.filter(to_address=address)
    assert (internal.kind, internal.amount, internal.session_id) == ("internal", 10**18, session.pk)
    assert refreshed(session).payment_status == "paid"


def test_eth_moved_out_by_the_merchant_then_paid_through_a_contract_is_credited(anvil_settings, chain):
    session = make_chain_session(asset="ETH", amount_due=2 * 10**18)
    scan_network("anvil")
    chain.forward_eth(session.address, 10**18)
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    assert refreshed(session).amount_received + refreshed(session).amount_pending == 10**18

    chain.rpc("anvil_setBalance", [session.address, "0x0"])  # the merchant moves the funds out
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    assert Transfer.objects.count() == 1  # less than before: nothing credited

    chain.forward_eth(session.address, 10**18)  # the customer pays the rest through a contract
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    chain.mine(2)
    scan_network("anvil")
    assert sorted(Transfer.objects.values_list("kind", "amount")) == [("internal", 10**18), ("internal", 10**18)]
    session = refreshed(session)
    assert (session.payment_status, session.amount_received) == ("paid", 2 * 10**18)


def test_a_late_payment_mined_just_before_reuse_goes_to_the_old_session(anvil_settings, chain):
    from datetime import timedelta

    from django.db import transaction
    from django.utils import timezone

    from payments_gateway.conf import gateway_settings
    from payments_gateway.deposits import allocate_address

    now = timezone.now()
    window = gateway_settings.LATE_PAYMENT_WINDOW
    with transaction.atomic():
        deposit = allocate_address("anvil", now + timedelta(minutes=1), now=now)
    # Expired almost a late payment window ago: its address is busy for one more minute.
    old = make_chain_session(
        asset="USDC", amount_due=1_000_000, deposit_address=deposit, created=now - window - timedelta(hours=1),
        expires_at=now + timedelta(minutes=1) - window, status="expired",
    )  # fmt: skip
    chain.send_token("USDC", deposit.address, 1_000_000)  # a late payment, just in time
    # Two minutes later (busy_until passed a minute ago) a new session is created.
    later = now + timedelta(minutes=2)
    with transaction.atomic():
        other = allocate_address("anvil", later + timedelta(days=1), now=later)
    new = make_chain_session(asset="USDC", amount_due=1_000_000, deposit_address=other, created=later)
    chain.mine(1)
    scan_network("anvil")
    transfer = Transfer.objects.get(to_address=deposit.address)
    assert (transfer.session_id, transfer.late) == (old.pk, True)
    assert refreshed(old).payment_status == "paid"
    assert refreshed(new).payment_status == "unpaid"


def test_an_eth_baseline_read_on_an_orphaned_branch_is_taken_again_after_the_reorg(anvil_settings, chain):
    session = make_chain_session(asset="ETH", amount_due=10**18)
    chain.rpc("anvil_setBalance", [session.address, hex(3 * 10**18)])  # the address holds ETH already
    chain.mine(1)
    before = chain.snapshot()
    chain.rpc("anvil_setBalance", [session.address, "0x0"])  # moved out, on a branch about to be orphaned
    chain.mine(1)
    scan_network("anvil")  # the baseline (0) is read on that branch
    chain.revert(before)
    chain.mine(3)  # the canonical chain: the address still holds its 3 ETH
    assert scan_network("anvil").reorg_depth >= 1
    chain.forward_eth(session.address, 10**18)
    chain.mine(BALANCE_CHECK_EVERY)
    scan_network("anvil")
    chain.mine(2)
    scan_network("anvil")
    (internal,) = Transfer.objects.all()
    assert (internal.kind, internal.amount) == ("internal", 10**18)
    session = refreshed(session)
    assert (session.payment_status, session.amount_received) == ("paid", 10**18)
