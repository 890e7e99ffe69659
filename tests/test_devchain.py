"""The dev chain: anvil starts, the committed contract artifacts deploy and behave, settings point at them."""

import time
from decimal import Decimal

import pytest
from web3 import Web3

from payments_gateway.chain.anvil import DevChainError, find_anvil
from payments_gateway.chain.contracts import abi, load_artifact
from payments_gateway.chain.devchain import CUSTOMER_TOKEN_BALANCE
from payments_gateway.chain.hd import derive_address
from payments_gateway.conf import gateway_settings


def test_tokens_have_their_decimals_and_fund_every_customer(chain):
    expected = {"USDC": 6, "USDT": 6, "DAI": 18}
    for symbol, decimals in expected.items():
        token = chain.token(symbol)
        assert token.functions.decimals().call() == decimals
        assert token.functions.symbol().call() == symbol
        for account in chain.accounts:
            assert token.functions.balanceOf(account).call() == CUSTOMER_TOKEN_BALANCE * 10**decimals


def test_token_transfer_moves_exact_base_units_and_logs_it(chain):
    recipient = Web3.to_checksum_address("0x" + "ab" * 20)
    usdc = chain.token("USDC")
    before = usdc.functions.balanceOf(chain.accounts[1]).call()
    tx_hash = chain.send_token("USDC", recipient, 12_345_678, account_index=1)
    assert usdc.functions.balanceOf(recipient).call() == 12_345_678
    assert usdc.functions.balanceOf(chain.accounts[1]).call() == before - 12_345_678
    receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
    (event,) = usdc.events.Transfer().process_receipt(receipt)
    assert (event.args["from"], event.args["to"], event.args["value"]) == (chain.accounts[1], recipient, 12_345_678)


def test_multicall3_reads_many_eth_balances_in_one_call(chain):
    targets = [Web3.to_checksum_address(f"0x{i:040x}") for i in range(0x1000, 0x1000 + 50)]
    chain.send_eth(targets[3], 7)
    chain.forward_eth(targets[7], 10**18 + 1)  # internal call through a contract: no tx to the target
    multicall = chain.contract("Multicall3", chain.multicall3)
    calls = [(chain.multicall3, False, multicall.encode_abi("getEthBalance", [t])) for t in targets]
    results = multicall.functions.aggregate3(calls).call()
    balances = [int.from_bytes(data, "big") for ok, data in results]
    assert all(ok for ok, _ in results)
    assert balances[3] == 7
    assert balances[7] == 10**18 + 1
    assert sum(balances) == 10**18 + 8
    assert multicall.functions.getEthBalances(targets).call() == balances


def test_price_feed_answers_3000_usd_with_8_decimals_and_can_be_set(chain):
    feed = chain.contract("MockV3Aggregator", chain.price_feeds["ETH/USD"])
    assert feed.functions.decimals().call() == 8
    _, answer, _, updated_at, _ = feed.functions.latestRoundData().call()
    assert answer == 3000 * 10**8
    assert updated_at > 0
    chain.set_eth_usd(Decimal("2512.34"))
    assert feed.functions.latestRoundData().call()[1] == 251234000000


def test_snapshot_revert_isolates_tests(chain):
    head = chain.w3.eth.block_number
    snapshot = chain.snapshot()
    chain.mine(5)
    assert chain.w3.eth.block_number == head + 5
    chain.revert(snapshot)
    assert chain.w3.eth.block_number == head


def test_blocks_after_a_revert_are_stamped_with_the_wall_clock(chain):
    """anvil's evm_revert turns its clock back to the snapshot's time; the dev chain puts it back on the wall
    clock, or blocks mined after a long test would look older than the sessions they pay."""
    snapshot = chain.snapshot()
    time.sleep(2.5)
    chain.mine(1)
    chain.revert(snapshot)
    chain.mine(1)
    assert chain.w3.eth.get_block("latest")["timestamp"] >= int(time.time()) - 1


def test_network_settings_validate_as_a_network(anvil_settings, chain):
    network = gateway_settings.network("anvil")
    assert network.chain_id == chain.w3.eth.chain_id == 31337
    assert network.dev is True
    assert network.tokens["DAI"].address == chain.tokens["DAI"]
    assert network.tokens["USDC"].decimals == 6
    assert network.multicall3 == chain.multicall3
    assert network.price_feeds == {"ETH/USD": chain.price_feeds["ETH/USD"]}
    # The merchant's xpub is not from anvil's mnemonic: no deposit address is a funded customer account.
    assert not {derive_address(gateway_settings.XPUB, index) for index in range(10)} & set(chain.accounts)


def test_artifacts_are_loaded_from_the_package():
    assert {item.get("name") for item in abi("TestToken")} >= {"transfer", "balanceOf", "decimals", "Transfer"}
    assert load_artifact("Multicall3")["evmVersion"] == "cancun"
    with pytest.raises(ValueError, match="unknown contract 'Nope'"):
        load_artifact("Nope")


def test_missing_anvil_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("ANVIL_BIN", str(tmp_path / "no-anvil"))
    with pytest.raises(DevChainError, match="make setup"):
        find_anvil()
