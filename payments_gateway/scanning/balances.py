"""ETH that reached a deposit address through a contract (a Safe, a forwarder): found by balance, not by log.

When a scan reaches a block number divisible by :data:`BALANCE_CHECK_EVERY`, the watched addresses' balances are
read through Multicall3. Only what an address GAINED counts: its balance minus its baseline
(``DepositAddress.baseline_balance`` at ``baseline_block``) minus the ETH transfers stored for it after the
baseline block; that surplus is stored as an ``internal`` transfer seen at that block (log index -2, a synthetic
tx hash). ETH the address already held (address 0 of a funded wallet, an old session's payment, ETH sent while
nobody watched it) is in the baseline and never credited. The baseline is taken by the first scan that watches
the address after its current session was created, at the block that scan starts from (the last block scanned
before it, so a payment made once the session exists is after it); a balance below baseline plus transfers (the
merchant moved funds out) credits nothing and re-baselines. ETH a forwarder sweep took counts as still there
(``services/sweep_state.py``), so a sweep is never mistaken for funds moved out.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import transaction
from eth_utils import keccak

from ..chain.blocks import INTERNAL_LOG_INDEX, BlockInfo, SeenTransfer
from ..chain.multicall import MulticallError, eth_balances
from ..chain.rpc import RPCClient, RPCResponseError
from ..conf import NetworkConfig
from ..models import DepositAddress, Transfer, TransferKind, TransferStatus
from ..services.sweep_state import swept_eth_since
from .lease import Lease
from .store import TransferStore, transfer_rows
from .watched import Watched, baselines

logger = logging.getLogger(__name__)

# The balance check runs when a scan reaches a block number divisible by this: at most every few blocks while
# polling (its cost grows with the watched addresses, unlike the rest of a scan), once per catch-up scan.
BALANCE_CHECK_EVERY = 4


def balance_check_due(first: int, last: int) -> bool:
    """Whether blocks ``first..last`` contain a balance-check block."""
    return last // BALANCE_CHECK_EVERY > (first - 1) // BALANCE_CHECK_EVERY


def take_baselines(
    lease: Lease, client: RPCClient, network: NetworkConfig, watched: dict[str, Watched], head: int, now: datetime
) -> None:
    """Record the ETH balance of watched addresses that have no baseline for their current session, at the block
    the scan starts from (scanned before the session existed, so no payment to it is included)."""
    due = [a for a in sorted(watched) if watched[a].needs_baseline]
    if not due:
        return
    assert network.multicall3 is not None
    number = max(lease.number, 0)
    try:
        balances = eth_balances(client, network.multicall3, due, number)
    except (RPCResponseError, MulticallError) as exc:
        # A node that pruned that block's state, or Multicall3 not deployed yet at it: the head is the only safe
        # baseline left (ETH paid through a contract since the cursor's block is not credited).
        logger.warning(
            "network %r: balances at block %d unreadable (%s); baselining %d addresses at head %d",
            network.name, number, exc, len(due), head,
        )  # fmt: skip
        number = head
        balances = eth_balances(client, network.multicall3, due, number)
    with transaction.atomic():
        lease.lock()
        _save_baselines([(watched[a].pk, b) for a, b in zip(due, balances, strict=True)], number, now)
    logger.info("network %r: ETH baseline of %d addresses taken at block %d", network.name, len(due), number)


def credit_balance_gains(
    lease: Lease,
    client: RPCClient,
    network: NetworkConfig,
    block: BlockInfo,
    watched: dict[str, Watched],
    head: int,
    now: datetime,
) -> tuple[int, set[int]]:
    """Store as ``internal`` transfers the ETH that watched addresses gained since their baseline beyond the ETH
    transfers seen since; return (transfers stored, sessions recomputed)."""
    assert network.multicall3 is not None
    addresses = sorted(watched)
    balances = eth_balances(client, network.multicall3, addresses, block.number)
    known = baselines(watched)
    received = _received_since_baseline(network, block, watched, known)
    # ETH a forwarder sweep took is not "moved out by the merchant": added back, so what else came in still counts.
    swept = swept_eth_since(network.name, {pk: known_[1] for pk, known_ in known.items() if known_}, block.number)
    gains, rebaseline = [], []
    for address, balance in zip(addresses, balances, strict=True):
        deposit = watched[address]
        baseline = known[deposit.pk]
        if baseline is None:
            # A session created since this scan took baselines: what the address holds now is its baseline.
            rebaseline.append((deposit.pk, balance))
            continue
        surplus = balance - baseline[0] - received[address] + swept.get(deposit.pk, 0)
        if surplus < 0:
            # Less than the baseline plus what came in: the merchant moved funds out. Nothing to credit; count
            # from this balance on.
            rebaseline.append((deposit.pk, balance))
        if surplus > 0:
            gains.append(_gain(network, block, address, surplus))
    if not gains and not rebaseline:
        return 0, set()
    if gains:
        logger.info("network %r: %d ETH payments through contracts found by balance", network.name, len(gains))
    with transaction.atomic():
        lease.lock()
        _save_baselines(rebaseline, block.number, now)
        store = TransferStore(network, head, now)
        stored = store.save(transfer_rows(network, gains, watched))
        store.refresh_sessions()
    return len(stored), store.sessions


def _received_since_baseline(
    network: NetworkConfig, block: BlockInfo, watched: dict[str, Watched], known: dict[int, tuple[int, int] | None]
) -> dict[str, int]:
    """ETH transfers stored for each watched address after its baseline block, up to ``block``."""
    received = dict.fromkeys(watched, 0)
    checksummed = [watched[a].address for a in sorted(watched)]
    for start in range(0, len(checksummed), 1000):
        for to, amount, number in (
            Transfer.objects.filter(
                network=network.name,
                to_address__in=checksummed[start : start + 1000],
                kind__in=[TransferKind.NATIVE, TransferKind.INTERNAL],
                block_number__lte=block.number,
            )
            .exclude(status=TransferStatus.REVERTED)
            .values_list("to_address", "amount", "block_number")
        ):
            baseline = known[watched[to.lower()].pk]
            if baseline is not None and number > baseline[1]:
                received[to.lower()] += amount
    return received


def _gain(network: NetworkConfig, block: BlockInfo, address: str, surplus: int) -> SeenTransfer:
    return SeenTransfer(
        block=block,
        tx_hash="balance:" + keccak(text=f"{block.hash}:{address}").hex()[:58],
        log_index=INTERNAL_LOG_INDEX,
        kind=TransferKind.INTERNAL,
        from_address="",
        to=address,
        asset=network.native.symbol,
        token_address="",
        amount=surplus,
    )


def _save_baselines(balances: list[tuple[int, int]], number: int, now: datetime) -> None:
    for pk, balance in balances:
        DepositAddress.objects.filter(pk=pk).update(baseline_balance=balance, baseline_block=number, baseline_at=now)
