"""Deploying a ``ForwarderFactory`` on a real network (``payments_gateway_sweep --deploy-factory``).

The factory has no owner and no constructor arguments: anyone may deploy one, and every deployment works the same.
The relayer deploys it (gas only); the operator then sets the network's ``forwarder_factory`` to its address.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from eth_utils import to_checksum_address

from ..chain.contracts import load_artifact
from ..chain.rpc import client_for
from ..conf import gateway_settings
from ..deposits.relayer import relayer_account
from .sweep_state import broadcast
from .sweeps import fee_per_gas


class DeployError(RuntimeError):
    """The deployment could not be sent or did not succeed."""


@dataclass(frozen=True)
class Deployment:
    network: str
    address: str
    tx_hash: str
    gas_used: int


def deploy_factory(network: str, *, timeout: float = 300, poll: float = 2) -> Deployment:
    """Sign and send the factory's deployment with the relayer key and wait (up to ``timeout`` seconds) for it
    to be mined. Raises :class:`DeployError`, or ``RelayerKeyError`` when the key is missing or wrong."""
    config = gateway_settings.network(network)
    client = client_for(config)
    relayer = relayer_account()
    code = "0x" + load_artifact("ForwarderFactory")["bytecode"].removeprefix("0x")
    gas = int(client.call("eth_estimateGas", [{"from": relayer.address, "data": code}]), 16) * 6 // 5
    max_fee, tip = fee_per_gas(client)
    balance = int(client.call("eth_getBalance", [relayer.address, "pending"]), 16)
    if balance < gas * max_fee:
        raise DeployError(
            f"the relayer {relayer.address} holds {balance} wei on {network!r}, less than the {gas * max_fee} wei the "
            "deployment may cost: send it some gas money first"
        )
    nonce = int(client.call("eth_getTransactionCount", [relayer.address, "pending"]), 16)
    signed = relayer.sign_transaction(
        {"type": 2, "chainId": config.chain_id, "nonce": nonce, "value": 0, "data": code, "gas": gas,
         "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
    )  # fmt: skip
    tx_hash = "0x" + bytes(signed.hash).hex()
    refusal = broadcast(client, "0x" + bytes(signed.raw_transaction).hex())
    if refusal is not None:
        raise DeployError(f"the node refused the deployment: {refusal}")
    deadline = time.monotonic() + timeout
    while (receipt := client.call("eth_getTransactionReceipt", [tx_hash])) is None:
        if time.monotonic() > deadline:
            raise DeployError(f"deployment {tx_hash} not mined within {timeout:.0f} s; look it up in an explorer")
        time.sleep(poll)  # a management command waiting for a block, never a request
    if int(receipt["status"], 16) != 1:
        raise DeployError(f"deployment {tx_hash} reverted")
    return Deployment(network, to_checksum_address(receipt["contractAddress"]), tx_hash, int(receipt["gasUsed"], 16))
