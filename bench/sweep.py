"""Benchmark: gas to collect deposits with forwarder sweeps against the xpub scheme's baseline, on anvil.

    .venv/bin/python bench/sweep.py [--deposits 50]

Starts anvil with the dev contracts (ForwarderFactory, a 6-decimal test USDC) and, in one run, collects
``--deposits`` deposits of USDC and of ETH:

- ours (forwarder scheme): customers pay deposit addresses (CREATE2 addresses, no key, no code); one relayer
  account sends ``ForwarderFactory.sweep`` transactions of 1, 10 and 50 addresses. Measured twice on the same
  addresses: the first sweep of fresh addresses (the headline figures), then, after a second payment to each, the
  repeat sweep. The design deploys nothing that stays, so both should cost the same.
- baseline (xpub scheme): each deposit address is a key (as an HD wallet's would be). USDC: a funded account
  sends it an ETH top-up for gas (a 21,000-gas transfer), then the address signs the token transfer of its whole
  balance to the treasury. ETH: the address signs one 21,000-gas transfer to the treasury.

Gas is what the receipts say (``gasUsed``, refunds included), divided by the deposits collected. The treasury
starts with some ETH and USDC in both cases, so neither pays for the treasury's first storage write or account
creation. Every sweep is checked: the treasury must receive exactly what was paid. It also sends 21,000-gas ETH
to a fresh deposit address and to an already swept one (both must succeed). The last line printed is JSON with
the figures and the targets of issue 10 (exit status 1 if a target is missed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eth_account import Account
from web3 import Web3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from payments_gateway.chain import forwarder  # noqa: E402
from payments_gateway.chain.devchain import start_devchain  # noqa: E402

BATCHES = (1, 10, 50)
TOKEN = "USDC"  # TestToken with 6 decimals on the dev chain
TARGETS = {"erc20_ratio_batch10": 0.85, "erc20_ratio_batch50": 0.8, "topups_needed": 0, "eth_21000_send_ok": True}
TREASURY = Web3.to_checksum_address(Web3.keccak(text="bench/sweep.py treasury")[12:])
ETH_PAYMENT = 3 * 10**16  # 0.03 ETH, plus the deposit's number in wei
USDC_PAYMENT = 25_000_000  # 25 USDC, plus the deposit's number in base units


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deposits", type=int, default=50, help="deposits collected per configuration (50)")
    args = parser.parse_args()
    if args.deposits < max(BATCHES):
        parser.error(f"--deposits must be at least {max(BATCHES)}")

    print("starting anvil and deploying the dev contracts…", flush=True)
    chain = start_devchain()
    try:
        return run(chain, args.deposits)
    finally:
        chain.stop()


def run(chain, n: int) -> int:
    token = chain.token(TOKEN)
    chain.send_token(TOKEN, TREASURY, 1)  # the treasury is not empty: no first-write cost in either scheme
    chain.send_eth(TREASURY, 1)
    bench = Bench(chain, token, n)

    ours: dict[str, dict[int, dict[str, float]]] = {"erc20": {}, "eth": {}}
    for kind, asset in (("erc20", token.address), ("eth", None)):
        for batch in BATCHES:
            salts = bench.fresh_salts()
            first = bench.collect_ours(asset, salts, batch)
            repeat = bench.collect_ours(asset, salts, batch)  # paid again, swept again
            ours[kind][batch] = {"first": first, "repeat": repeat}
    baseline = {"erc20": bench.baseline_erc20(), "eth": bench.baseline_eth()}
    send_ok = bench.eth_21000_sends()

    result: dict = {"deposits": n, "token_decimals": chain.token_decimals[TOKEN], "headline": "first_sweep"}
    for kind in ("erc20", "eth"):
        base = baseline[kind]["per_deposit"]
        result[f"{kind}_baseline_gas_per_deposit"] = base
        for batch in BATCHES:
            first, repeat = ours[kind][batch]["first"], ours[kind][batch]["repeat"]
            result[f"{kind}_gas_per_deposit_batch{batch}"] = round(first)
            result[f"{kind}_repeat_gas_per_deposit_batch{batch}"] = round(repeat)
            result[f"{kind}_ratio_batch{batch}"] = round(first / base, 3)
            result[f"{kind}_repeat_ratio_batch{batch}"] = round(repeat / base, 3)
    result["erc20_baseline_topup_gas"] = baseline["erc20"]["topup"]
    result["erc20_baseline_transfer_gas"] = baseline["erc20"]["transfer"]
    result["topups_needed"] = bench.our_topups  # ours: top-up transactions sent to deposit addresses
    result["deposit_keys_needed"] = 0  # ours: deposit addresses are CREATE2 addresses, nobody has a key
    result["baseline_topups_needed"] = n
    result["baseline_deposit_keys_needed"] = n
    result["eth_21000_send_ok"] = send_ok
    result["targets"] = TARGETS
    missed = [
        key
        for key, target in TARGETS.items()
        if (result[key] > target if isinstance(target, float) else result[key] != target)
    ]
    result["targets_met"] = not missed
    result["targets_missed"] = missed

    print_table(result, baseline)
    print(json.dumps(result))
    return 0 if not missed else 1


class Bench:
    """Deposits, sweeps and the baseline on one chain; every sweep is checked against what was paid."""

    def __init__(self, chain, token, n: int) -> None:
        self.chain, self.w3, self.token, self.n = chain, chain.w3, token, n
        self.relayer = chain.accounts[9]
        self.next_salt = 1_000
        self.our_topups = 0

    def fresh_salts(self) -> list[int]:
        salts = list(range(self.next_salt, self.next_salt + self.n))
        self.next_salt += self.n
        return salts

    def collect_ours(self, asset: str | None, salts: list[int], batch: int) -> float:
        """Pay every deposit address of ``salts`` (customer accounts), then sweep them ``batch`` at a time;
        gas of the sweeps per deposit."""
        addresses = forwarder.deposit_addresses(self.chain.forwarder_factory, TREASURY, salts)
        paid = sum(self.pay(address, asset, i) for i, address in enumerate(addresses))
        before = self.treasury_balance(asset)
        gas = 0
        for start in range(0, len(salts), batch):
            data = forwarder.sweep_calldata(TREASURY, asset, salts[start : start + batch])
            tx = self.w3.eth.send_transaction({"from": self.relayer, "to": self.chain.forwarder_factory, "data": data})
            receipt = self.w3.eth.wait_for_transaction_receipt(tx, poll_latency=0.02)
            assert receipt["status"] == 1, "sweep reverted"
            gas += receipt["gasUsed"]
        moved = self.treasury_balance(asset) - before
        assert moved == paid, f"the treasury received {moved}, the deposits were {paid}"
        assert all(self.w3.eth.get_code(address) == b"" for address in addresses)
        return gas / len(salts)

    def baseline_erc20(self) -> dict[str, float]:
        """xpub: top up each address with ETH for gas, then sign its token transfer to the treasury."""
        topup_gas = transfer_gas = 0
        keys = self.keys("erc20")
        for i, key in enumerate(keys):
            self.pay(key.address, self.token.address, i)
        before = self.treasury_balance(self.token.address)
        for key in keys:
            fee = self.fee_params()
            topup = fee["maxFeePerGas"] * 60_000
            tx = self.w3.eth.send_transaction({"from": self.relayer, "to": key.address, "value": topup, "gas": 21_000})
            topup_gas += self.mined(tx)["gasUsed"]
            amount = self.token.functions.balanceOf(key.address).call()
            call = self.token.functions.transfer(TREASURY, amount).build_transaction(
                {"from": key.address, "nonce": 0, "gas": 60_000, "chainId": self.chain.chain_id, **fee}
            )
            transfer_gas += self.mined(self.send_signed(key, call))["gasUsed"]
        assert self.treasury_balance(self.token.address) - before == sum(USDC_PAYMENT + i for i in range(self.n))
        return {
            "topup": topup_gas / self.n,
            "transfer": transfer_gas / self.n,
            "per_deposit": (topup_gas + transfer_gas) / self.n,
        }

    def baseline_eth(self) -> dict[str, float]:
        """xpub: each address signs one 21,000-gas transfer of its balance (less the fee) to the treasury."""
        gas = 0
        for i, key in enumerate(self.keys("eth")):
            self.pay(key.address, None, i)
            fee = self.fee_params()
            value = self.w3.eth.get_balance(key.address) - 21_000 * fee["maxFeePerGas"]
            tx = {"to": TREASURY, "value": value, "gas": 21_000, "nonce": 0, "chainId": self.chain.chain_id, **fee}
            gas += self.mined(self.send_signed(key, tx))["gasUsed"]
        return {"per_deposit": gas / self.n}

    def eth_21000_sends(self) -> bool:
        """A plain 21,000-gas ETH send to a fresh deposit address, and to the same address after its sweep."""
        salt = self.fresh_salts()[0]
        address = forwarder.deposit_address(self.chain.forwarder_factory, TREASURY, salt)
        ok = []
        for _ in range(2):
            tx = {"from": self.chain.accounts[1], "to": address, "value": ETH_PAYMENT, "gas": 21_000}
            ok.append(self.mined(self.w3.eth.send_transaction(tx), check=False)["status"] == 1)
            data = forwarder.sweep_calldata(TREASURY, None, [salt])
            self.mined(
                self.w3.eth.send_transaction({"from": self.relayer, "to": self.chain.forwarder_factory, "data": data})
            )
        return all(ok)

    # --- helpers ------------------------------------------------------------------------------------

    def pay(self, to: str, asset: str | None, i: int) -> int:
        """A customer pays ``to`` (plain 21,000-gas ETH send, or token transfer); returns the amount."""
        customer = self.chain.accounts[1 + i % 8]
        if asset is None:
            amount = ETH_PAYMENT + i
            tx = self.w3.eth.send_transaction({"from": customer, "to": to, "value": amount, "gas": 21_000})
        else:
            amount = USDC_PAYMENT + i
            tx = self.token.functions.transfer(to, amount).transact({"from": customer})
        self.mined(tx)
        return amount

    def keys(self, label: str) -> list:
        return [Account.from_key(Web3.keccak(text=f"bench/sweep.py {label} {i}")) for i in range(self.n)]

    def treasury_balance(self, asset: str | None) -> int:
        if asset is None:
            return self.w3.eth.get_balance(TREASURY)
        return self.token.functions.balanceOf(TREASURY).call()

    def fee_params(self) -> dict[str, int]:
        base = self.w3.eth.get_block("latest")["baseFeePerGas"]
        return {"maxFeePerGas": 2 * base + 10**9, "maxPriorityFeePerGas": 10**9}

    def send_signed(self, key, tx: dict) -> bytes:
        return self.w3.eth.send_raw_transaction(key.sign_transaction(tx).raw_transaction)

    def mined(self, tx_hash, check: bool = True):
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.02)
        if check:
            assert receipt["status"] == 1, f"transaction {bytes(tx_hash).hex()} reverted"
        return receipt


def print_table(result: dict, baseline: dict) -> None:
    n = result["deposits"]
    print()
    print(f"Gas per deposit, {n} deposits per row (receipts' gasUsed / deposits collected)")
    print(
        f"{'asset':<14} {'scheme':<20} {'first sweep':>12} {'repeat sweep':>13} {'ratio first':>12} "
        f"{'ratio repeat':>13}"
    )
    for kind, label in (("erc20", f"{TOKEN} ({result['token_decimals']} dec)"), ("eth", "ETH")):
        base = result[f"{kind}_baseline_gas_per_deposit"]
        for batch in BATCHES:
            print(
                f"{label:<14} {f'forwarder, batch {batch}':<20} {result[f'{kind}_gas_per_deposit_batch{batch}']:>12,} "
                f"{result[f'{kind}_repeat_gas_per_deposit_batch{batch}']:>13,} "
                f"{result[f'{kind}_ratio_batch{batch}']:>12.3f} {result[f'{kind}_repeat_ratio_batch{batch}']:>13.3f}"
            )
        if kind == "erc20":
            detail = f"(top-up {baseline['erc20']['topup']:,.0f} + transfer {baseline['erc20']['transfer']:,.0f})"
        else:
            detail = "(one signed transfer)"
        print(f"{label:<14} {'xpub baseline':<20} {base:>12,.0f} {'':>13} {detail}")
    print(
        f"top-ups: forwarder {result['topups_needed']}, xpub {result['baseline_topups_needed']}; keys for deposit "
        f"addresses: forwarder 0, xpub {result['baseline_deposit_keys_needed']}; 21,000-gas ETH send to a fresh and "
        f"to a swept deposit address: {'ok' if result['eth_21000_send_ok'] else 'FAILED'}"
    )
    status = "met" if result["targets_met"] else f"MISSED: {', '.join(result['targets_missed'])}"
    print(
        f"targets (first sweeps): {TOKEN} ratio batch 10 {result['erc20_ratio_batch10']} <= "
        f"{TARGETS['erc20_ratio_batch10']}, batch 50 {result['erc20_ratio_batch50']} <= "
        f"{TARGETS['erc20_ratio_batch50']}: {status}"
    )


if __name__ == "__main__":
    sys.exit(main())
