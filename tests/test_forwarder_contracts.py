"""Forwarder deposit addresses on anvil: ForwarderFactory (contracts/src) and chain/forwarder.py.

Each test pays real deposit addresses on the dev chain and sweeps them with real transactions; the chain is
reverted after each test (``chain`` fixture).
"""

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.logs import DISCARD

from payments_gateway.chain import forwarder
from payments_gateway.chain.contracts import abi, load_artifact

ETH_AMOUNT = 10**16 + 7  # odd wei amounts: a rounding or partial move would show
OTHER_TREASURY = Web3.to_checksum_address("0x" + "5e" * 20)


# --- addresses --------------------------------------------------------------------------------------


def test_offline_addresses_equal_the_factorys_own_prediction(chain):
    salts = [*range(300), 2**31 - 1, 2**64 + 5, 2**256 - 1]
    for treasury in (chain.treasury, OTHER_TREASURY):
        offline = forwarder.deposit_addresses(chain.forwarder_factory, treasury, salts)
        onchain = forwarder.factory_deposit_addresses(chain.rpc, chain.forwarder_factory, treasury, salts)
        assert offline == onchain
        assert len(set(offline)) == len(salts)
        assert all(Web3.is_checksum_address(address) for address in offline)
        assert forwarder.deposit_address(chain.forwarder_factory, treasury, (42).to_bytes(32, "big")) == offline[42]
    factory = chain.contract("ForwarderFactory", chain.forwarder_factory)
    assert factory.functions.initCode(chain.treasury).call() == forwarder.init_code(chain.treasury)
    # The treasury is in the init code, hence in the address: same salt, other treasury, other address.
    assert forwarder.deposit_address(chain.forwarder_factory, OTHER_TREASURY, 0) != forwarder.deposit_address(
        chain.forwarder_factory, chain.treasury, 0
    )


def test_factory_prediction_refuses_an_address_without_a_factory(chain):
    with pytest.raises(ValueError, match="no contract at the forwarder factory address"):
        forwarder.factory_deposit_addresses(chain.rpc, OTHER_TREASURY, chain.treasury, [0])


def test_sweep_calldata_is_the_abi_call_with_sorted_salts():
    factory = Web3().eth.contract(abi=abi("ForwarderFactory"))
    token = Web3.to_checksum_address("0x" + "ab" * 20)
    expected = factory.encode_abi("sweep", [OTHER_TREASURY, token, [1, 5, 9]])
    assert forwarder.sweep_calldata(OTHER_TREASURY, token, [9, 1, 5]) == expected
    eth = factory.encode_abi("sweep", [OTHER_TREASURY, forwarder.ETH, [0]])
    assert forwarder.sweep_calldata(OTHER_TREASURY, None, [0]) == eth
    with pytest.raises(ValueError, match="appears twice"):
        forwarder.sweep_calldata(OTHER_TREASURY, token, [3, 4, 3])
    with pytest.raises(ValueError, match="zero address"):
        forwarder.sweep_calldata(forwarder.ETH, token, [1])
    with pytest.raises(ValueError, match="whole number"):
        forwarder.deposit_address(OTHER_TREASURY, OTHER_TREASURY, -1)


# --- sweeps -----------------------------------------------------------------------------------------


def test_anyone_may_sweep_eth_and_it_reaches_only_the_treasury(chain):
    salts = [3, 4, 10]
    addresses = pay_eth(chain, salts, ETH_AMOUNT)
    stranger = chain.accounts[7]  # not the relayer, not the merchant: nobody in particular
    stranger_before = chain.w3.eth.get_balance(stranger)

    receipt = sweep(chain, None, salts, sender=stranger)

    assert eth_balances(chain, addresses) == [0, 0, 0]
    assert chain.w3.eth.get_balance(chain.treasury) == 3 * ETH_AMOUNT
    fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert chain.w3.eth.get_balance(stranger) == stranger_before - fee  # paid the gas, received nothing
    assert all(chain.w3.eth.get_code(address) == b"" for address in addresses)
    assert forwarder.parse_sweep_logs(receipt["logs"], chain.forwarder_factory) == {
        "addresses": 3,
        "amount": 3 * ETH_AMOUNT,
        "failed_salts": [],
    }


@pytest.mark.parametrize("symbol", ["USDC", "DAI"])
def test_token_sweep_moves_6_and_18_decimal_tokens_and_the_eth_beside_them(chain, symbol):
    decimals = chain.token_decimals[symbol]
    amounts = [12_345_678 * 10 ** (decimals - 6), 10**decimals + 1, 1]
    salts = [0, 1, 2]
    addresses = forwarder.deposit_addresses(chain.forwarder_factory, chain.treasury, salts)
    for address, amount in zip(addresses, amounts):
        chain.send_token(symbol, address, amount)
    chain.send_eth(addresses[1], ETH_AMOUNT)
    token = chain.token(symbol)

    receipt = sweep(chain, token.address, salts)

    assert [token.functions.balanceOf(a).call() for a in addresses] == [0, 0, 0]
    assert token.functions.balanceOf(chain.treasury).call() == sum(amounts)
    assert eth_balances(chain, addresses) == [0, 0, 0]
    assert chain.w3.eth.get_balance(chain.treasury) == ETH_AMOUNT
    moves = token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert {(e.args["from"], e.args["to"], e.args["value"]) for e in moves} == {
        (address, chain.treasury, amount) for address, amount in zip(addresses, amounts)
    }
    assert forwarder.parse_sweep_logs(receipt["logs"], chain.forwarder_factory)["amount"] == sum(amounts)


def test_usdt_like_token_that_returns_nothing_is_swept(chain):
    usdt = deploy_no_return_token(chain)
    salts = [7, 8]
    addresses = forwarder.deposit_addresses(chain.forwarder_factory, chain.treasury, salts)
    for address in addresses:
        transact(chain, usdt.functions.mint(address, 250_000_000))
    # It really is USDT-like: a successful transfer returns no data at all (no bool to check).
    assert (
        chain.w3.eth.call(
            {"from": addresses[0], "to": usdt.address, "data": usdt.encode_abi("transfer", [chain.treasury, 1])}
        )
        == b""
    )

    sweep(chain, usdt.address, salts)

    assert [usdt.functions.balanceOf(a).call() for a in addresses] == [0, 0]
    assert usdt.functions.balanceOf(chain.treasury).call() == 500_000_000


def test_an_address_the_token_refuses_keeps_its_funds_and_the_batch_goes_on(chain):
    usdt = deploy_no_return_token(chain)
    salts = [20, 21, 22]
    addresses = forwarder.deposit_addresses(chain.forwarder_factory, chain.treasury, salts)
    for address in addresses:
        transact(chain, usdt.functions.mint(address, 1_000_000))
    chain.send_eth(addresses[1], ETH_AMOUNT)
    transact(chain, usdt.functions.setBlocked(addresses[1], True))  # as Tether's blacklist does

    receipt = sweep(chain, usdt.address, salts)

    assert [usdt.functions.balanceOf(a).call() for a in addresses] == [0, 1_000_000, 0]
    assert chain.w3.eth.get_balance(addresses[1]) == ETH_AMOUNT  # the whole address was left as it was
    assert forwarder.parse_sweep_logs(receipt["logs"], chain.forwarder_factory) == {
        "addresses": 2,
        "amount": 2_000_000,
        "failed_salts": [21],
    }
    transact(chain, usdt.functions.setBlocked(addresses[1], False))
    sweep(chain, usdt.address, [21])
    assert usdt.functions.balanceOf(chain.treasury).call() == 3_000_000
    assert chain.w3.eth.get_balance(chain.treasury) == ETH_AMOUNT


def test_deposit_address_cannot_be_taken_over_with_another_treasury(chain):
    salt = 5
    victim = forwarder.deposit_address(chain.forwarder_factory, chain.treasury, salt)
    chain.send_token("USDC", victim, 99_000_000)
    chain.send_eth(victim, ETH_AMOUNT)
    usdc = chain.token("USDC")

    # The attacker sweeps the same salt, and deploys a factory of their own, each time with their treasury:
    # both create other addresses, and the victim's money does not move.
    sweep(chain, usdc.address, [salt], treasury=OTHER_TREASURY, sender=chain.accounts[6])
    own_factory = deploy(chain, "ForwarderFactory", sender=chain.accounts[6])
    transact(chain, own_factory.functions.sweep(chain.treasury, usdc.address, [salt]), sender=chain.accounts[6])
    assert own_factory.functions.depositAddress(chain.treasury, salt).call() != victim
    assert forwarder.deposit_address(chain.forwarder_factory, OTHER_TREASURY, salt) != victim
    assert usdc.functions.balanceOf(victim).call() == 99_000_000
    assert chain.w3.eth.get_balance(victim) == ETH_AMOUNT
    assert usdc.functions.balanceOf(OTHER_TREASURY).call() == 0
    assert chain.w3.eth.get_balance(OTHER_TREASURY) == 0

    sweep(chain, usdc.address, [salt], sender=chain.accounts[6])  # the attacker can only pay the merchant
    assert usdc.functions.balanceOf(chain.treasury).call() == 99_000_000
    assert chain.w3.eth.get_balance(chain.treasury) == ETH_AMOUNT


def test_a_repeated_or_replayed_sweep_moves_nothing_twice_and_a_later_payment_is_collected(chain):
    salts = [1, 2]
    addresses = forwarder.deposit_addresses(chain.forwarder_factory, chain.treasury, salts)
    for address in addresses:
        chain.send_token("USDC", address, 5_000_000)
    usdc = chain.token("USDC")
    relayer = Account.from_key(chain.private_keys[8])
    signed = relayer.sign_transaction(
        {
            "to": chain.forwarder_factory,
            "data": forwarder.sweep_calldata(chain.treasury, usdc.address, salts),
            "gas": 500_000,
            "maxFeePerGas": 2 * chain.w3.eth.get_block("latest")["baseFeePerGas"] + 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": chain.w3.eth.get_transaction_count(relayer.address),
            "chainId": chain.chain_id,
        }
    )
    assert receipt_of(chain, chain.w3.eth.send_raw_transaction(signed.raw_transaction))["status"] == 1
    assert usdc.functions.balanceOf(chain.treasury).call() == 10_000_000

    with pytest.raises(Web3RPCError):  # the same signed sweep again: the node refuses it
        chain.w3.eth.send_raw_transaction(signed.raw_transaction)
    again = sweep(chain, usdc.address, salts)  # a new sweep of the same addresses
    assert usdc.functions.balanceOf(chain.treasury).call() == 10_000_000
    assert usdc.events.Transfer().process_receipt(again, errors=DISCARD) == ()
    assert forwarder.parse_sweep_logs(again["logs"], chain.forwarder_factory)["amount"] == 0

    chain.send_token("USDC", addresses[0], 3_000_000)  # a late payment to a swept address
    send_eth_21000(chain, addresses[0], ETH_AMOUNT)
    sweep(chain, usdc.address, salts)
    assert usdc.functions.balanceOf(chain.treasury).call() == 13_000_000
    assert chain.w3.eth.get_balance(chain.treasury) == ETH_AMOUNT
    assert eth_balances(chain, addresses) == [0, 0]


def test_a_reorg_that_drops_a_sweep_leaves_the_balances_to_be_swept_again(chain):
    salts = [11, 12]
    addresses = pay_eth(chain, salts, ETH_AMOUNT)
    chain.send_token("USDC", addresses[0], 7_000_000)
    usdc = chain.token("USDC")
    receipt = sweep(chain, usdc.address, salts)
    assert usdc.functions.balanceOf(chain.treasury).call() == 7_000_000

    chain.rpc("anvil_reorg", [1, []])  # the sweep's block is replaced by an empty one

    assert chain.w3.eth.get_block(receipt["blockNumber"])["transactions"] == []
    assert eth_balances(chain, addresses) == [ETH_AMOUNT, ETH_AMOUNT]
    assert usdc.functions.balanceOf(addresses[0]).call() == 7_000_000
    assert usdc.functions.balanceOf(chain.treasury).call() == 0
    assert all(chain.w3.eth.get_code(address) == b"" for address in addresses)
    sweep(chain, usdc.address, salts)
    assert usdc.functions.balanceOf(chain.treasury).call() == 7_000_000
    assert chain.w3.eth.get_balance(chain.treasury) == 2 * ETH_AMOUNT


@pytest.mark.parametrize("asset", ["ETH", "USDC"])
@pytest.mark.parametrize("deposit_first", [True, False], ids=["deposit_then_sweep", "sweep_then_deposit"])
def test_a_deposit_in_the_same_block_as_a_sweep_is_not_lost(chain, asset, deposit_first):
    salt = 30
    address = forwarder.deposit_address(chain.forwarder_factory, chain.treasury, salt)
    token = None if asset == "ETH" else chain.token(asset)
    first_payment, second_payment = 4_000_000, 1_234_567
    pay(chain, token, address, first_payment)  # already there before the block

    def send_deposit(tip):
        return pay(chain, token, address, second_payment, wait=False, tip=tip, account_index=2)

    def send_sweep(tip):
        data = forwarder.sweep_calldata(chain.treasury, token and token.address, [salt])
        tx = {"from": chain.accounts[3], "to": chain.forwarder_factory, "data": data, "gas": 500_000}
        return chain.w3.eth.send_transaction({**tx, "maxPriorityFeePerGas": tip, "maxFeePerGas": 100 * 10**9})

    chain.rpc("evm_setAutomine", [False])
    try:  # the one sent first also has the higher tip: by either rule anvil puts it first in the block
        if deposit_first:
            deposit_tx, sweep_tx = send_deposit(2 * 10**9), send_sweep(10**9)
        else:
            sweep_tx, deposit_tx = send_sweep(2 * 10**9), send_deposit(10**9)
        chain.mine(1)
    finally:
        chain.rpc("evm_setAutomine", [True])
    deposit, swept = (chain.w3.eth.get_transaction_receipt(tx) for tx in (deposit_tx, sweep_tx))
    assert deposit["status"] == swept["status"] == 1
    assert deposit["blockNumber"] == swept["blockNumber"]
    assert (deposit["transactionIndex"] < swept["transactionIndex"]) == deposit_first

    if deposit_first:
        assert balance(chain, token, chain.treasury) == first_payment + second_payment
        assert balance(chain, token, address) == 0
    else:  # the sweep took the first payment; the second waits at the address, which is plain again
        assert balance(chain, token, chain.treasury) == first_payment
        assert balance(chain, token, address) == second_payment
        assert chain.w3.eth.get_code(address) == b""
        sweep(chain, token and token.address, [salt])
        assert balance(chain, token, chain.treasury) == first_payment + second_payment
    assert balance(chain, token, address) == 0


def test_a_21000_gas_eth_send_succeeds_before_and_after_the_address_is_swept(chain):
    address = forwarder.deposit_address(chain.forwarder_factory, chain.treasury, 77)
    before = send_eth_21000(chain, address, ETH_AMOUNT)
    sweep(chain, None, [77])
    after = send_eth_21000(chain, address, ETH_AMOUNT + 1)
    sweep(chain, None, [77])
    again = send_eth_21000(chain, address, ETH_AMOUNT + 2)

    assert [r["gasUsed"] for r in (before, after, again)] == [21_000, 21_000, 21_000]
    assert chain.w3.eth.get_code(address) == b""
    assert chain.w3.eth.get_balance(address) == ETH_AMOUNT + 2
    assert chain.w3.eth.get_balance(chain.treasury) == 2 * ETH_AMOUNT + 1


def test_sweep_refuses_unsorted_salts_and_a_treasury_that_would_lose_the_funds(chain):
    addresses = pay_eth(chain, [1, 2], ETH_AMOUNT)
    factory = chain.contract("ForwarderFactory", chain.forwarder_factory)
    # Unsorted or repeated salts could put one address twice in a transaction; refused before anything moves.
    for salts in ([2, 1], [1, 1]):
        assert transact(chain, factory.functions.sweep(chain.treasury, forwarder.ETH, salts), gas=500_000) == 0
    for treasury in (forwarder.ETH, chain.forwarder_factory):
        assert transact(chain, factory.functions.sweep(treasury, forwarder.ETH, [1, 2]), gas=500_000) == 0
    assert eth_balances(chain, addresses) == [ETH_AMOUNT, ETH_AMOUNT]


def test_factory_has_no_owner_no_admin_and_holds_nothing(chain):
    functions = {item["name"] for item in abi("ForwarderFactory") if item["type"] == "function"}
    assert functions == {"sweep", "depositAddress", "depositAddresses", "initCode"}
    assert load_artifact("ForwarderFactory")["evmVersion"] == "cancun"
    # Nobody can park ETH in it, nor call something that is not there.
    for tx in ({"value": 1}, {"data": "0xdeadbeef"}):
        sent = chain.w3.eth.send_transaction(
            {"from": chain.accounts[0], "to": chain.forwarder_factory, "gas": 100_000, **tx}
        )
        assert receipt_of(chain, sent)["status"] == 0
    pay_eth(chain, [1], ETH_AMOUNT)
    sweep(chain, None, [1])
    assert chain.w3.eth.get_balance(chain.forwarder_factory) == 0
    assert chain.w3.eth.get_storage_at(chain.forwarder_factory, 0) == bytes(32)


def test_devchain_deploys_the_factory_with_an_empty_keyless_treasury(devchain):
    assert len(devchain.w3.eth.get_code(devchain.forwarder_factory)) > 0
    assert devchain.w3.eth.get_code(devchain.treasury) == b""
    assert devchain.treasury not in devchain.accounts


# --- helpers ----------------------------------------------------------------------------------------


def sweep(chain, asset, salts, *, treasury=None, sender=None):
    """Send a sweep built by ``forwarder.sweep_calldata`` and return its receipt (it must succeed)."""
    data = forwarder.sweep_calldata(treasury or chain.treasury, asset, salts)
    tx = chain.w3.eth.send_transaction(
        {"from": sender or chain.accounts[9], "to": chain.forwarder_factory, "data": data}
    )
    receipt = receipt_of(chain, tx)
    assert receipt["status"] == 1
    return receipt


def pay_eth(chain, salts, amount):
    addresses = forwarder.deposit_addresses(chain.forwarder_factory, chain.treasury, salts)
    for address in addresses:
        send_eth_21000(chain, address, amount)
    return addresses


def send_eth_21000(chain, to, amount, account_index=4):
    """A plain ETH send with exactly 21,000 gas, as exchanges send it; returns the receipt (status 1)."""
    tx = chain.w3.eth.send_transaction(
        {"from": chain.accounts[account_index], "to": to, "value": amount, "gas": 21_000}
    )
    receipt = receipt_of(chain, tx)
    assert receipt["status"] == 1
    return receipt


def pay(chain, token, to, amount, *, wait=True, tip=None, account_index=1):
    fees = {"maxPriorityFeePerGas": tip, "maxFeePerGas": 100 * 10**9, "gas": 100_000} if tip else {}
    sender = chain.accounts[account_index]
    if token is None:
        tx = chain.w3.eth.send_transaction({"from": sender, "to": to, "value": amount, **fees})
    else:
        tx = token.functions.transfer(to, amount).transact({"from": sender, **fees})
    if wait:
        assert receipt_of(chain, tx)["status"] == 1
    return tx


def balance(chain, token, holder):
    return chain.w3.eth.get_balance(holder) if token is None else token.functions.balanceOf(holder).call()


def eth_balances(chain, addresses):
    return [chain.w3.eth.get_balance(address) for address in addresses]


def deploy(chain, name, *args, sender=None):
    artifact = load_artifact(name)
    contract = chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    tx = contract.constructor(*args).transact({"from": sender or chain.accounts[0]})
    address = receipt_of(chain, tx)["contractAddress"]
    return chain.contract(name, address)


def deploy_no_return_token(chain):
    return deploy(chain, "NoReturnToken", "Tether USD (no return value)", "USDT0", 6)


def transact(chain, fn, *, sender=None, gas=None):
    """Send a contract call and return its receipt's status; without ``gas`` it must succeed."""
    options = {"from": sender or chain.accounts[0], **({"gas": gas} if gas else {})}
    status = receipt_of(chain, fn.transact(options))["status"]
    assert gas or status == 1
    return status


def receipt_of(chain, tx):
    return chain.w3.eth.wait_for_transaction_receipt(tx, timeout=60, poll_latency=0.05)
