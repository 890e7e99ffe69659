"""Blocks, transactions and logs as the node returns them, read into plain values: the payments they make.

Nothing here touches the database: :func:`native_transfers` and :func:`token_transfers` take the recipients to
look for (lowercase addresses) and return :class:`SeenTransfer` values; the scanning package decides what they
mean for a session. A block or log that does not belong to the block hashes being read raises
:class:`ChainMoved` (a reorg under the range being read).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_utils import to_checksum_address

from ..conf import NetworkConfig
from ..models import TransferKind

#: keccak("Transfer(address,address,uint256)"), the topic of ERC-20 (and ERC-721) transfers.
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
#: ``Transfer.log_index`` of a plain native transfer (the transaction's value) ...
NATIVE_LOG_INDEX = -1
#: ... and of native coin that reached an address through a contract (found by its balance).
INTERNAL_LOG_INDEX = -2


class ChainMoved(Exception):
    """The chain changed under a range being read (a reorg in progress): stop here, the next scan rewinds."""


@dataclass(frozen=True)
class BlockInfo:
    """A block's number, hash, parent hash and time."""

    number: int
    hash: str
    parent_hash: str
    timestamp: datetime

    @classmethod
    def from_rpc(cls, block: dict[str, Any]) -> BlockInfo:
        return cls(
            number=int(block["number"], 16),
            hash=block["hash"],
            parent_hash=block["parentHash"],
            timestamp=datetime.fromtimestamp(int(block["timestamp"], 16), tz=UTC),
        )


@dataclass(frozen=True)
class SeenTransfer:
    """A payment read from the chain: ``amount`` base units of ``asset`` to ``to`` (a lowercase address)."""

    block: BlockInfo
    tx_hash: str
    log_index: int
    kind: str
    from_address: str
    to: str
    asset: str
    token_address: str
    amount: int


def native_transfers(
    network: NetworkConfig,
    block: BlockInfo,
    txs: Iterable[dict[str, Any]],
    recipients: Container[str],
    receipts: dict[str, dict[str, Any]],
) -> list[SeenTransfer]:
    """Transactions of ``block`` that sent a positive value to one of ``recipients`` and succeeded (their
    receipt, keyed by lowercase hash, says so)."""
    found = []
    for tx in txs:
        to = (tx.get("to") or "").lower()
        value = int(tx.get("value") or "0x0", 16)
        receipt = receipts.get(tx["hash"].lower())
        if to not in recipients or value <= 0 or receipt is None or receipt.get("status") != "0x1":
            continue
        if receipt.get("blockHash") != block.hash:
            raise ChainMoved(f"receipt of {tx['hash']} is from another block")
        found.append(
            SeenTransfer(
                block=block,
                tx_hash=tx["hash"].lower(),
                log_index=NATIVE_LOG_INDEX,
                kind=TransferKind.NATIVE,
                from_address=to_checksum_address(tx["from"]),
                to=to,
                asset=network.native.symbol,
                token_address="",
                amount=value,
            )
        )
    return found


def token_transfers(
    network: NetworkConfig, logs: Iterable[dict[str, Any]], recipients: Container[str], blocks: dict[int, BlockInfo]
) -> list[SeenTransfer]:
    """ERC-20 ``Transfer`` logs of any token contract paying one of ``recipients``, from ``blocks``.

    ``asset`` is the symbol of a configured token, or the contract's EIP-55 address for any other token. ERC-721
    ``Transfer`` logs (same topic, the token id indexed as a fourth topic, no data) are not payments: skipped.
    """
    tokens = {t.address.lower(): t.symbol for t in network.tokens.values() if t.address}
    found = []
    for log in logs:
        topics = log.get("topics") or []
        if log.get("removed") or len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
            continue
        to = "0x" + topics[2][-40:].lower()
        data = log.get("data") or "0x"
        if to not in recipients or len(data) != 66:
            continue
        amount = int(data, 16)
        block = blocks.get(int(log["blockNumber"], 16))
        if block is None or block.hash != log.get("blockHash"):
            raise ChainMoved(f"log of {log.get('transactionHash')} is from block {log.get('blockHash')}")
        if amount <= 0:
            continue
        contract = to_checksum_address(log["address"])
        found.append(
            SeenTransfer(
                block=block,
                tx_hash=log["transactionHash"].lower(),
                log_index=int(log["logIndex"], 16),
                kind=TransferKind.TOKEN,
                from_address=to_checksum_address("0x" + topics[1][-40:]),
                to=to,
                asset=tokens.get(contract.lower(), contract),
                token_address=contract,
                amount=amount,
            )
        )
    return found


def candidate_recipients(tx: dict[str, Any], logs: list[dict[str, Any]]) -> set[str]:
    """Every address (lowercase) that ``tx`` may have paid: its ``to`` if it carried value, and the recipients of
    the ERC-20 transfers (any token) among its ``logs``."""
    found = set()
    if tx.get("to") and int(tx.get("value") or "0x0", 16) > 0:
        found.add(tx["to"].lower())
    for log in logs:
        topics = log.get("topics") or []
        if len(topics) == 3 and topics[0] == TRANSFER_TOPIC:
            found.add("0x" + topics[2][-40:].lower())
    return found
