"""Checking one transaction now, on a hint (an incoming ``transactions`` notice, the dev test wallet).

Only what the node returns is stored: a forged hint (no such transaction, a failed one, one paying an address
that is not ours) stores nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..chain.blocks import BlockInfo, candidate_recipients, native_transfers, token_transfers
from ..chain.rpc import client_for
from ..conf import NetworkConfig, gateway_settings
from ..formats import TX_HASH_RE
from ..models import Transfer
from .result import ScanError
from .store import TransferStore, transfer_rows
from .watched import deposit_addresses

logger = logging.getLogger(__name__)


def check_transaction(network_name: str, tx_hash: str, now: datetime | None = None) -> list[Transfer]:
    """Check one transaction on chain now and store the payments it made to deposit addresses.

    Returns the transfers of that transaction (new or already known), with their current confirmations and
    status; ``[]`` when the node knows no successful, canonical transaction paying a deposit address.
    """
    network = gateway_settings.network(network_name)
    if not isinstance(tx_hash, str) or not TX_HASH_RE.match(tx_hash):
        raise ValueError(f"malformed transaction hash {tx_hash!r}: expected 0x followed by 64 hex digits")
    try:
        return _check(network, tx_hash.lower(), now or timezone.now())
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ScanError(
            f"network {network.name!r}: the RPC answered something malformed about {tx_hash} "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _check(network: NetworkConfig, tx_hash: str, now: datetime) -> list[Transfer]:
    client = client_for(network)
    tx, receipt, head_hex = client.batch(
        [("eth_getTransactionByHash", [tx_hash]), ("eth_getTransactionReceipt", [tx_hash]), ("eth_blockNumber", [])]
    )
    if tx is None or receipt is None:
        logger.info("check_transaction %s on %r: no mined transaction with that hash", tx_hash, network.name)
        return []
    if receipt.get("status") != "0x1":
        logger.info("check_transaction %s on %r: the transaction failed on chain", tx_hash, network.name)
        return []
    block = client.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
    if block is None or block["hash"] != receipt["blockHash"]:
        logger.info("check_transaction %s on %r: its block is not canonical (reorg in progress)", tx_hash, network.name)
        return []
    watched = deposit_addresses(network.name, candidate_recipients(tx, receipt["logs"]))
    if not watched:
        logger.info("check_transaction %s on %r: pays no deposit address", tx_hash, network.name)
        return []
    info = BlockInfo.from_rpc(block)
    seen = native_transfers(network, info, [tx], watched, {tx_hash: receipt}) + token_transfers(
        network, receipt["logs"], watched, {info.number: info}
    )
    with transaction.atomic():
        store = TransferStore(network, int(head_hex, 16), now)
        store.save(transfer_rows(network, seen, watched))
        store.refresh_sessions()
    return list(Transfer.objects.filter(network=network.name, tx_hash=tx_hash).order_by("log_index"))
