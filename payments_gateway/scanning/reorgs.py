"""Reorgs: the hashes of recently scanned blocks, and rewinding the cursor to the fork point.

Nodes such as anvil never flag removed logs, so a reorg is noticed by hashes: each range stores its blocks'
hashes (:func:`remember_blocks`, the last :func:`kept_blocks` of them), and a scan that finds the cursor's block
no longer canonical walks back through them to the newest one that still is (:func:`find_fork`), then
:func:`rewind` reverts what cannot be canonical any more and moves the cursor back. The rescan that follows
settles the rest: a transfer of an orphaned block is reverted, or moved to its new block if it was mined again.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction

from ..chain.blocks import BlockInfo
from ..chain.rpc import RPCClient
from ..conf import NetworkConfig
from ..models import DepositAddress, ScannedBlock, Transfer
from ..services.sweep_state import forget_orphaned_sweeps
from .lease import Lease
from .store import TransferStore

logger = logging.getLogger(__name__)


def kept_blocks(network: NetworkConfig) -> int:
    """How many recent block hashes are kept: deeper than any reorg that could touch an unconfirmed transfer."""
    return max(2 * network.confirmations + 32, 64)


def remember_blocks(network: NetworkConfig, blocks: list[BlockInfo], start: int, end: int) -> None:
    """Store the hashes of blocks ``start..end`` (in the range's transaction) and forget those too old to keep."""
    keep = kept_blocks(network)
    ScannedBlock.objects.filter(network=network.name, number__range=(start, end)).delete()
    ScannedBlock.objects.bulk_create(
        ScannedBlock(network=network.name, number=b.number, hash=b.hash, parent_hash=b.parent_hash)
        for b in blocks
        if b.number > end - keep
    )
    ScannedBlock.objects.filter(network=network.name, number__lte=end - keep).delete()


def find_fork(client: RPCClient, network: NetworkConfig, cursor: int, head: int) -> tuple[int, str]:
    """The newest kept block that is still canonical, as (number, hash); below the kept hashes when none is."""
    keep = kept_blocks(network)
    stored = list(ScannedBlock.objects.filter(network=network.name).order_by("-number")[:keep])
    canonical = client.batch([("eth_getBlockByNumber", [hex(b.number), False]) for b in stored])
    for kept, block in zip(stored, canonical, strict=True):
        if block is not None and block["hash"] == kept.hash:
            return kept.number, kept.hash
    oldest = stored[-1].number if stored else cursor
    # Below the oldest kept hash; if the chain is now shorter than that, it is another chain altogether (a dev
    # chain restarted under the same database): rescan its last blocks.
    fork_number = max(oldest - 1 if head >= oldest else head - keep, -1)
    fork_block = client.call("eth_getBlockByNumber", [hex(fork_number), False]) if fork_number >= 0 else None
    logger.error(
        "network %r: reorg deeper than the %d kept block hashes; rescanning from block %d",
        network.name, keep, fork_number + 1,
    )  # fmt: skip
    return fork_number, fork_block["hash"] if fork_block else ""


def rewind(
    lease: Lease, network: NetworkConfig, fork: tuple[int, str], head: int, now: datetime
) -> tuple[int, set[int]]:
    """Move the cursor back to ``fork`` (number, hash) in one transaction; return (transfers reverted, sessions
    recomputed)."""
    fork_number, fork_hash = fork
    logger.warning(
        "network %r: reorg: block %d is no longer canonical; rewinding %d blocks to %d",
        network.name, lease.number, lease.number - fork_number, fork_number,
    )  # fmt: skip
    with transaction.atomic():
        lease.lock()
        # Transfers above the new head cannot be canonical; those in (fork, head] are settled by the rescan
        # (reverted, or moved to the block that mined the transaction again).
        store = TransferStore(network, head, now)
        reverted = store.revert(Transfer.objects.filter(network=network.name, block_number__gt=max(fork_number, head)))
        ScannedBlock.objects.filter(network=network.name, number__gt=fork_number).delete()
        # A balance read at an orphaned block is no baseline: take it again at the fork point (the rescan reverts
        # internal transfers of orphaned blocks, and the next balance check finds them again).
        DepositAddress.objects.filter(network=network.name, baseline_block__gt=fork_number).update(
            baseline_balance=None, baseline_block=None, baseline_at=None
        )
        forget_orphaned_sweeps(network.name, fork_number)  # pending again until the chain says where they are
        lease.move(fork_number, fork_hash, head)
        store.refresh_sessions()
    return reverted, store.sessions
