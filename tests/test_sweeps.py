"""Forwarder sweeps on anvil: planned from confirmed deposits, signed by the relayer, confirmed from receipts, never
counted as payments, and safe across reorgs, a relayer without gas and several workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from payments_gateway.chain import forwarder
from payments_gateway.models import Event, Sweep, SweptAddress, Transfer
from payments_gateway.scanning import scan_network
from payments_gateway.scanning.balances import BALANCE_CHECK_EVERY
from payments_gateway.services.sweeps import plan_sweeps, refresh_sweeps, run_sweeps
from tests.concurrency import run_together
from tests.factories import make_forwarder_session
from tests.onchain import one_block, paid_and_confirmed

pytestmark = pytest.mark.django_db

USDC = 25_000_000  # 25 USDC
ETH = 10**18


def session_state(session):
    session.refresh_from_db()
    events = Event.objects.filter(session=session).count()
    return (session.status, session.payment_status, session.amount_received, session.amount_pending, events)


def holds(chain, address, asset="ETH"):
    if asset == "ETH":
        return chain.w3.eth.get_balance(address)
    return chain.token(asset).functions.balanceOf(address).call()


def settle(chain):
    """Blocks enough for confirmations and a balance check, then a scan and the sweep task's refresh."""
    chain.mine(BALANCE_CHECK_EVERY + 2)
    scan_network("anvil")
    refresh_sweeps("anvil")


# --- sweeps are not payments ------------------------------------------------------------------------


def test_sweeping_an_eth_and_a_token_deposit_changes_no_session_and_the_sweeps_are_confirmed(forwarder_settings, chain):
    eth = make_forwarder_session(asset="ETH", amount_due=ETH)
    usdc = make_forwarder_session(asset="USDC", amount_due=USDC)
    paid_and_confirmed(chain, (eth, ETH), (usdc, USDC))
    before = {s.pk: session_state(s) for s in (eth, usdc)}
    assert before[eth.pk][:3] == ("complete", "paid", ETH)

    run = run_sweeps("anvil", force=True)
    assert [(s.asset, s.planned_amount) for s in run.sent] == [("USDC", USDC), ("ETH", ETH)]
    settle(chain)

    assert {s.pk: session_state(s) for s in (eth, usdc)} == before  # amounts, statuses, not one new event
    assert Transfer.objects.count() == 2  # neither the token Transfer log out of the address nor the ETH counted
    assert sorted(Sweep.objects.values_list("asset", "amount", "status")) == [
        ("ETH", ETH, "confirmed"),
        ("USDC", USDC, "confirmed"),
    ]
    assert (holds(chain, chain.treasury), holds(chain, chain.treasury, "USDC")) == (ETH, USDC)
    assert (holds(chain, eth.address), holds(chain, usdc.address, "USDC")) == (0, 0)
    assert SweptAddress.objects.get(deposit_address=eth.deposit_address).eth_amount == ETH
    # Swept once: nothing more is planned for these addresses.
    assert plan_sweeps("anvil") == []


@pytest.mark.parametrize("when", ["next block", "same block, after the sweep"])
def test_eth_paid_through_a_contract_in_the_window_of_a_sweep_is_still_credited(forwarder_settings, chain, when):
    session = make_forwarder_session(asset="ETH", amount_due=2 * ETH)
    paid_and_confirmed(chain, (session, ETH))  # half paid, with a plain transfer
    assert session_state(session)[:3] == ("open", "partially_paid", ETH)

    if when == "next block":
        (sweep,) = run_sweeps("anvil", force=True).sent
        chain.forward_eth(session.address, ETH)  # the rest, through a contract: only the balance shows it
    else:
        with one_block(chain):
            (sweep,) = run_sweeps("anvil", force=True).sent
            forward = chain.contract("Forwarder", chain.forwarder).functions.forward(session.address)
            paid = forward.transact({"from": chain.accounts[2], "value": ETH, "maxPriorityFeePerGas": 1})
        receipts = [chain.w3.eth.get_transaction_receipt(h) for h in (sweep.tx_hash, paid)]
        assert receipts[0]["blockNumber"] == receipts[1]["blockNumber"]
        assert receipts[0]["transactionIndex"] < receipts[1]["transactionIndex"]
    settle(chain)
    chain.mine(2)
    scan_network("anvil")

    assert sorted(Transfer.objects.values_list("kind", "amount")) == [("internal", ETH), ("native", ETH)]
    assert session_state(session)[:3] == ("complete", "paid", 2 * ETH)
    assert holds(chain, chain.treasury) == ETH  # what the sweep took; the contract payment waits for the next


def test_a_sweep_someone_else_sends_is_recorded_and_never_a_payment(forwarder_settings, chain):
    session = make_forwarder_session(asset="USDC", amount_due=USDC)
    paid_and_confirmed(chain, (session, USDC))
    before = session_state(session)
    stranger = chain.accounts[7]
    data = forwarder.sweep_calldata(chain.treasury, chain.tokens["USDC"], [session.deposit_address.index])
    chain.w3.eth.send_transaction({"from": stranger, "to": chain.forwarder_factory, "data": data})
    settle(chain)

    sweep = Sweep.objects.get()
    assert (sweep.origin, sweep.sender, sweep.asset, sweep.amount, sweep.status) == (
        "observed",
        stranger,
        "USDC",
        USDC,
        "confirmed",
    )
    assert list(sweep.addresses.all()) == [session.deposit_address]
    assert session_state(session) == before
    assert plan_sweeps("anvil") == []  # nothing left to sweep


# --- the plan ---------------------------------------------------------------------------------------


def test_only_confirmed_deposits_are_planned_and_the_policy_decides_what_is_due(forwarder_settings, chain, settings):
    small, large = make_forwarder_session(amount_due=1_000_000), make_forwarder_session(amount_due=5 * 10**11)
    scan_network("anvil")
    chain.send_token("USDC", small.address, 1_000_000)  # 1 USDC: less than ten times the gas it costs to sweep
    scan_network("anvil")
    assert plan_sweeps("anvil") == []  # detected, not confirmed: nothing to sweep yet

    chain.send_token("USDC", large.address, 5 * 10**11)  # 500,000 USDC
    chain.mine(2)
    scan_network("anvil")
    (batch,) = plan_sweeps("anvil")
    assert [(row.pk, balance) for row, balance in batch.addresses] == [
        (small.deposit_address.pk, 1_000_000),
        (large.deposit_address.pk, 5 * 10**11),
    ]
    assert batch.due and "its gas cost" in batch.reason

    use = dict(forwarder_settings["NETWORKS"]["anvil"], sweep_batch_size=1)
    with override_settings(PAYMENTS_GATEWAY={**forwarder_settings, "NETWORKS": {"anvil": use}}):
        alone, big = plan_sweeps("anvil")  # one address per transaction
        assert [len(b.addresses) for b in (alone, big)] == [1, 1]
        assert not alone.due and "below sweep_min_value_ratio 10" in alone.reason
        assert big.due
        # The oldest deposit is older than sweep_max_age (7 days by default): due whatever it is worth.
        (later, _) = plan_sweeps("anvil", now=timezone.now() + timedelta(days=8))
        assert later.due and "older than 7 days" in later.reason


def test_sweep_batches_are_capped_and_each_address_is_swept_once(forwarder_settings, chain):
    sessions = [make_forwarder_session(amount_due=USDC) for _ in range(5)]
    paid_and_confirmed(chain, *[(s, USDC + i) for i, s in enumerate(sessions)])
    use = dict(forwarder_settings["NETWORKS"]["anvil"], sweep_batch_size=2)
    with override_settings(PAYMENTS_GATEWAY={**forwarder_settings, "NETWORKS": {"anvil": use}}):
        run = run_sweeps("anvil", force=True)
        assert [s.swept.count() for s in run.sent] == [2, 2, 1]
        assert [s.nonce for s in run.sent] == [0, 1, 2]
        settle(chain)
    assert holds(chain, chain.treasury, "USDC") == sum(USDC + i for i in range(5))
    assert set(Sweep.objects.values_list("status", flat=True)) == {"confirmed"}


# --- what can go wrong ------------------------------------------------------------------------------


def test_a_reorg_that_drops_a_sweep_makes_it_pending_and_it_is_sent_again(forwarder_settings, chain):
    session = make_forwarder_session(asset="USDC", amount_due=USDC)
    paid_and_confirmed(chain, (session, USDC))
    before_sweep = chain.snapshot()
    (sweep,) = run_sweeps("anvil", force=True).sent
    settle(chain)
    sweep.refresh_from_db()
    assert sweep.status == "confirmed"

    chain.revert(before_sweep)  # the sweep's block leaves the canonical chain
    chain.mine(12)
    scan_network("anvil")
    sweep.refresh_from_db()
    assert (sweep.status, sweep.block_number, sweep.amount) == ("pending", None, None)
    assert holds(chain, session.address, "USDC") == USDC  # the balance is back at the deposit address

    refresh_sweeps("anvil")  # the node forgot it: the relayer's signed transaction is sent again
    settle(chain)
    sweep.refresh_from_db()
    assert (sweep.status, sweep.amount) == ("confirmed", USDC)
    assert holds(chain, chain.treasury, "USDC") == USDC


def test_a_dropped_sweep_whose_nonce_was_used_fails_and_its_balances_are_swept_by_a_new_one(forwarder_settings, chain):
    session = make_forwarder_session(asset="USDC", amount_due=USDC)
    paid_and_confirmed(chain, (session, USDC))
    before_sweep = chain.snapshot()
    (sweep,) = run_sweeps("anvil", force=True).sent
    chain.revert(before_sweep)
    relayer = chain.accounts[9]  # the relayer key sends something else with that nonce meanwhile
    chain.w3.eth.send_transaction({"from": relayer, "to": relayer, "value": 0, "nonce": sweep.nonce})
    scan_network("anvil")

    refresh_sweeps("anvil")
    sweep.refresh_from_db()
    assert sweep.status == "failed" and "nonce" in sweep.error
    (again,) = run_sweeps("anvil", force=True).sent
    settle(chain)
    again.refresh_from_db()
    assert (again.status, again.amount, again.nonce) == ("confirmed", USDC, sweep.nonce + 1)
    assert holds(chain, chain.treasury, "USDC") == USDC


def test_a_relayer_low_on_gas_sends_nothing_is_reported_and_nothing_is_lost(forwarder_settings, chain, caplog):
    from payments_gateway.conf import gateway_settings
    from payments_gateway.deposits.forwarder import forwarder_findings

    session = make_forwarder_session(asset="USDC", amount_due=USDC)
    paid_and_confirmed(chain, (session, USDC))
    relayer = chain.accounts[9]
    chain.rpc("anvil_setBalance", [relayer, hex(10**9)])

    run = run_sweeps("anvil", force=True)
    assert run.sent == [] and Sweep.objects.count() == 0
    assert "low on gas" in run.problems[0] and relayer in run.problems[0]
    assert any("low on gas" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
    assert any("low on gas" in f for f in forwarder_findings(gateway_settings.network("anvil")))
    assert holds(chain, session.address, "USDC") == USDC  # waits at its address

    chain.rpc("anvil_setBalance", [relayer, hex(10**18)])
    (sweep,) = run_sweeps("anvil", force=True).sent
    settle(chain)
    assert holds(chain, chain.treasury, "USDC") == USDC


def test_a_relayer_below_its_minimum_balance_is_logged_on_every_run(forwarder_settings, chain, caplog):
    chain.rpc("anvil_setBalance", [chain.accounts[9], hex(10**15)])  # below relayer_min_balance (10**16 wei)
    assert run_sweeps("anvil").batches == []  # nothing to sweep, and still the operator hears of it
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"the relayer {chain.accounts[9]} is low on gas: it holds 0.001 ETH, below 0.01 ETH" in warning


def test_a_factory_that_does_not_compute_our_addresses_is_refused_before_anything_is_signed(forwarder_settings, chain):
    wrong = dict(forwarder_settings["NETWORKS"]["anvil"], forwarder_factory=chain.multicall3)  # code, but no factory
    with override_settings(PAYMENTS_GATEWAY={**forwarder_settings, "NETWORKS": {"anvil": wrong}}):
        session = make_forwarder_session(asset="USDC", amount_due=USDC)
        paid_and_confirmed(chain, (session, USDC))
        run = run_sweeps("anvil", force=True)
    assert run.sent == [] and Sweep.objects.count() == 0
    assert "PAYMENTS_GATEWAY['NETWORKS']['anvil']['forwarder_factory']" in run.problems[0]
    assert "--deploy-factory" in run.problems[0]
    assert chain.w3.eth.get_transaction_count(chain.accounts[9]) == 0  # the relayer signed nothing


def test_after_the_treasury_changes_old_addresses_still_sweep_to_the_old_one(forwarder_settings, chain):
    old = make_forwarder_session(asset="USDC", amount_due=USDC)
    old.deposit_address.busy_until = timezone.now() - timedelta(days=1)  # free to be handed out again
    old.deposit_address.save()
    new_treasury = chain.accounts[8]
    moved = dict(forwarder_settings["NETWORKS"]["anvil"], treasury=new_treasury)
    with override_settings(PAYMENTS_GATEWAY={**forwarder_settings, "NETWORKS": {"anvil": moved}}):
        new = make_forwarder_session(asset="USDC", amount_due=USDC)
        # Not the old address (its code can only pay the old treasury): a new one, bound to the new treasury.
        assert new.deposit_address.pk != old.deposit_address.pk
        assert new.deposit_address.treasury == new_treasury
        index = new.deposit_address.index
        assert new.address == forwarder.deposit_address(chain.forwarder_factory, new_treasury, index)
        new_before = holds(chain, new_treasury, "USDC")
        paid_and_confirmed(chain, (old, USDC), (new, USDC + 1))
        run = run_sweeps("anvil", force=True)
        assert sorted(s.treasury for s in run.sent) == sorted([chain.treasury, new_treasury])
        settle(chain)
    assert holds(chain, chain.treasury, "USDC") == USDC
    assert holds(chain, new_treasury, "USDC") - new_before == USDC + 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_sweeping_at_once_sweep_each_address_once_with_distinct_nonces(forwarder_settings, chain):
    sessions = [make_forwarder_session(amount_due=USDC) for _ in range(6)]
    paid_and_confirmed(chain, *[(s, USDC) for s in sessions])
    use = dict(forwarder_settings["NETWORKS"]["anvil"], sweep_batch_size=2)
    with override_settings(PAYMENTS_GATEWAY={**forwarder_settings, "NETWORKS": {"anvil": use}}):
        run_together(3, lambda i: run_sweeps("anvil", force=True))
        settle(chain)
    live = Sweep.objects.exclude(status="failed")
    nonces = list(live.values_list("nonce", flat=True))
    assert len(nonces) == len(set(nonces))
    swept = list(SweptAddress.objects.filter(sweep__in=live).values_list("deposit_address_id", flat=True))
    assert sorted(swept) == sorted(s.deposit_address.pk for s in sessions)  # each address once
    assert holds(chain, chain.treasury, "USDC") == 6 * USDC
