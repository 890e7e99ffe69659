"""A sweep's state, derived from its transaction on chain; and the ETH each swept address gave up.

The rule (:func:`refresh_sweep`), from the node's answer about the sweep's transaction:

- a receipt with status 1, in a block with the network's ``confirmations`` → ``confirmed``; in a younger block →
  ``pending`` with its block recorded (what it moved is known, it can still be undone by a reorg);
- a receipt with status 0 → ``failed`` (it moved nothing; its addresses are planned again);
- no receipt: the transaction is waiting in the mempool → ``pending``. If the node does not know it (dropped, or
  its block was orphaned and not mined again), the relayer's signed transaction is sent again; when its nonce
  was meanwhile used by another transaction it can never be mined → ``failed``. A sweep seen on chain but sent by
  someone else (no signed copy here) that vanished → ``failed``.

A reorg below a sweep's block makes it ``pending`` again (:func:`forget_orphaned_sweeps`, called by the scanner
when it rewinds), so its addresses are not planned again until the chain says whether it was mined anew.

ETH leaves a deposit address by SELFDESTRUCT, which writes no log, so :func:`swept_eth` works out what each
address gave up: its balance at the end of the block before the sweep, plus plain ETH transactions to it earlier
in the sweep's block. The scanner's balance check adds this back (:func:`swept_eth_since`), so a sweep never looks
like "the merchant moved funds out" and a payment through a contract in the same window is still credited. One
case stays unknowable from the node's standard API: ETH sent to the address by a *contract* in the sweep's own
block, before the sweep; it reaches the treasury with the rest but is not credited to a session (logged).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from eth_utils import to_checksum_address

from ..chain import forwarder
from ..chain.multicall import MulticallError, asset_balances
from ..chain.rpc import RPCClient, RPCError, RPCResponseError
from ..conf import NetworkConfig
from ..models import DepositAddress, Sweep, SweepOrigin, SweepStatus, SweptAddress

logger = logging.getLogger(__name__)

#: What nodes answer to a transaction whose nonce is already used: it can never be mined.
NONCE_USED = ("nonce too low", "nonce has already been used", "already been used", "old nonce")
ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown")


def refresh_sweep(sweep: Sweep, client: RPCClient, network: NetworkConfig, head: int, now: datetime) -> Sweep:
    """Bring ``sweep`` to the state its transaction's receipt justifies (module docstring); returns it saved."""
    if sweep.status == SweepStatus.FAILED:
        return sweep
    receipt = client.call("eth_getTransactionReceipt", [sweep.tx_hash])
    if receipt is None:
        _not_mined(sweep, client, now)
    elif int(receipt["status"], 16) != 1:
        _record_block(sweep, receipt, now)
        sweep.status, sweep.error = SweepStatus.FAILED, "the sweep transaction reverted: it moved nothing"
    else:
        if receipt["blockHash"] != sweep.block_hash:
            _record_block(sweep, receipt, now)
            _record_outcome(sweep, client, network, receipt)
        if head - sweep.block_number + 1 >= network.confirmations:  # type: ignore[operator]  # set just above
            sweep.status, sweep.confirmed_at = SweepStatus.CONFIRMED, sweep.confirmed_at or now
        else:
            sweep.status = SweepStatus.PENDING
    sweep.save()
    if sweep.status == SweepStatus.FAILED:
        logger.warning("network %r: sweep %s failed: %s", network.name, sweep.tx_hash, sweep.error)
    return sweep


def observe_sweeps(
    client: RPCClient, network: NetworkConfig, txs: list[dict[str, Any]], head: int, now: datetime
) -> list[Sweep]:
    """Record the sweep transactions among ``txs`` (transactions of scanned blocks): ours are brought up to date,
    anyone else's are recorded as ``observed`` sweeps of the deposit addresses they name. Never payments."""
    if not txs:
        return []
    factories = set(
        DepositAddress.objects.filter(network=network.name)
        .exclude(factory="")
        .order_by()
        .values_list("factory", flat=True)
        .distinct()
    )
    factories = {f.lower() for f in factories | ({network.forwarder_factory} if network.forwarder_factory else set())}
    found = [
        tx
        for tx in txs
        if (tx.get("to") or "").lower() in factories and str(tx.get("input", "")).startswith(forwarder.SWEEP_SELECTOR)
    ]
    sweeps = []
    for tx in found:
        sweep = Sweep.objects.filter(network=network.name, tx_hash=tx["hash"]).first() or _observed(network, tx, now)
        if sweep is not None:
            sweeps.append(refresh_sweep(sweep, client, network, head, now))
    return sweeps


def forget_orphaned_sweeps(network: str, fork_number: int) -> int:
    """A reorg back to ``fork_number``: sweeps mined above it are ``pending`` again until the chain says where
    (and whether) they are mined now. Returns how many."""
    orphaned = Sweep.objects.filter(network=network, block_number__gt=fork_number).exclude(status=SweepStatus.FAILED)
    SweptAddress.objects.filter(sweep__in=orphaned).update(eth_amount=None)
    return orphaned.update(
        status=SweepStatus.PENDING, block_number=None, block_hash="", amount=None, mined_at=None, confirmed_at=None
    )


def swept_eth_since(network: str, baseline_blocks: dict[int, int], upto: int) -> dict[int, int]:
    """Deposit address id → wei that sweeps mined after its baseline block (``baseline_blocks``) and up to block
    ``upto`` took from it (the scanner's balance check adds it back)."""
    taken: dict[int, int] = defaultdict(int)
    pks = sorted(baseline_blocks)
    for start in range(0, len(pks), 1000):
        rows = (
            SweptAddress.objects.filter(
                deposit_address_id__in=pks[start : start + 1000],
                sweep__network=network,
                sweep__block_number__lte=upto,
                failed=False,
                eth_amount__isnull=False,
            )
            .exclude(sweep__status=SweepStatus.FAILED)
            .values_list("deposit_address_id", "sweep__block_number", "eth_amount")
        )
        for pk, number, amount in rows:
            if number is not None and amount is not None and number > baseline_blocks[pk]:
                taken[pk] += amount
    return taken


# --- the receipt's facts -----------------------------------------------------------------------------


def _not_mined(sweep: Sweep, client: RPCClient, now: datetime) -> None:
    if sweep.block_number is not None:  # it was mined, and that block is gone
        sweep.block_number, sweep.block_hash, sweep.amount, sweep.mined_at = None, "", None, None
        sweep.swept.update(eth_amount=None)
    if client.call("eth_getTransactionByHash", [sweep.tx_hash]) is not None:
        sweep.status = SweepStatus.PENDING  # waiting in the mempool
        return
    if sweep.origin != SweepOrigin.RELAYER or not sweep.raw_transaction:
        sweep.status, sweep.error = SweepStatus.FAILED, "the transaction is no longer known to the node"
        return
    outcome = broadcast(client, sweep.raw_transaction)
    if outcome is None:
        sweep.status, sweep.error = SweepStatus.PENDING, ""
    elif any(marker in outcome.lower() for marker in NONCE_USED):
        sweep.status, sweep.error = SweepStatus.FAILED, f"its nonce was used by another transaction ({outcome})"
    else:
        sweep.status, sweep.error = SweepStatus.PENDING, f"sending it again failed: {outcome}"


def broadcast(client: RPCClient, raw_transaction: str) -> str | None:
    """Send a signed transaction; ``None`` when the node took it (or already had it), else the node's refusal.
    :class:`~payments_gateway.chain.rpc.RPCUnavailable` (no node answered) propagates: try again later."""
    try:
        client.call("eth_sendRawTransaction", [raw_transaction])
    except RPCResponseError as exc:
        text = str(exc)
        return None if any(marker in text.lower() for marker in ALREADY_KNOWN) else text
    return None


def _record_block(sweep: Sweep, receipt: dict[str, Any], now: datetime) -> None:
    sweep.block_number = int(receipt["blockNumber"], 16)
    sweep.block_hash = receipt["blockHash"]
    sweep.gas_used = int(receipt["gasUsed"], 16)
    sweep.mined_at = sweep.mined_at or now


def _record_outcome(sweep: Sweep, client: RPCClient, network: NetworkConfig, receipt: dict[str, Any]) -> None:
    """What the mined sweep moved: the treasury's gain of the asset (the ``Swept`` event), the addresses the token
    refused (``SweepFailed``), and the ETH each address gave up."""
    outcome = forwarder.parse_sweep_logs(receipt["logs"], sweep.factory)
    sweep.amount = outcome["amount"]
    swept = list(sweep.swept.select_related("deposit_address"))
    refused = set(outcome["failed_salts"])
    for row in swept:
        row.failed = row.deposit_address.index in refused
    moved = [row for row in swept if not row.failed]
    amounts: list[int | None]
    try:
        amounts = list(swept_eth(client, network, [r.deposit_address.address for r in moved], receipt))
    except (RPCError, MulticallError) as exc:
        # A node without the state of the block before (pruned): the balance check then cannot tell this sweep
        # from funds moved out, and re-baselines (README, "Chain scanner", limitations).
        logger.warning("network %r: ETH taken by sweep %s unreadable (%s)", network.name, sweep.tx_hash, exc)
        amounts = [None] * len(moved)
    for row, amount in zip(moved, amounts, strict=True):
        row.eth_amount = amount
    for row in swept:
        if row.failed:
            row.eth_amount = 0
    SweptAddress.objects.bulk_update(swept, ["failed", "eth_amount"])
    known = [a for a in amounts if a is not None]
    if sweep.token_address == "" and len(known) == len(amounts) and sum(known) != sweep.amount:
        logger.warning(
            "network %r: sweep %s moved %d wei, %d more than the addresses held before it: ETH sent to them by a "
            "contract in the sweep's own block is not credited to any session",
            network.name, sweep.tx_hash, sweep.amount, (sweep.amount or 0) - sum(known),
        )  # fmt: skip


def swept_eth(client: RPCClient, network: NetworkConfig, addresses: list[str], receipt: dict[str, Any]) -> list[int]:
    """The wei each of ``addresses`` gave up to the sweep of ``receipt``: its balance after the block before,
    plus plain ETH sent to it by transactions earlier in the same block (that succeeded)."""
    if not addresses:
        return []
    number, position = int(receipt["blockNumber"], 16), int(receipt["transactionIndex"], 16)
    before = asset_balances(client, network.multicall3, [(a, None) for a in addresses], number - 1)
    wanted = {a.lower(): i for i, a in enumerate(addresses)}
    block = client.call("eth_getBlockByNumber", [hex(number), True])
    earlier = [
        tx
        for tx in block["transactions"]
        if int(tx["transactionIndex"], 16) < position
        and (tx.get("to") or "").lower() in wanted
        and int(tx.get("value") or "0x0", 16) > 0
    ]
    receipts = client.batch([("eth_getTransactionReceipt", [tx["hash"]]) for tx in earlier]) if earlier else []
    amounts = [b or 0 for b in before]
    for tx, tx_receipt in zip(earlier, receipts, strict=True):
        if tx_receipt and int(tx_receipt["status"], 16) == 1:
            amounts[wanted[tx["to"].lower()]] += int(tx["value"], 16)
    return amounts


def _observed(network: NetworkConfig, tx: dict[str, Any], now: datetime) -> Sweep | None:
    """Someone else's sweep of our deposit addresses (anyone may call ``sweep``), recorded from its calldata."""
    try:
        treasury, token, salts = forwarder.decode_sweep_calldata(tx["input"])
    except ValueError:
        return None
    factory = to_checksum_address(tx["to"])
    addresses = forwarder.deposit_addresses(factory, treasury, salts)
    rows = list(DepositAddress.objects.filter(network=network.name, address__in=addresses, factory=factory))
    if not rows:
        return None  # not ours
    symbol = network.native.symbol
    if token != forwarder.ETH:
        symbol = next((s for s, t in network.tokens.items() if t.address == token), "ERC20")
    try:
        with transaction.atomic():
            sweep = Sweep.objects.create(
                network=network.name,
                asset=symbol,
                token_address="" if token == forwarder.ETH else token,
                treasury=treasury,
                factory=factory,
                origin=SweepOrigin.OBSERVED,
                tx_hash=tx["hash"],
                sender=to_checksum_address(tx["from"]),
                nonce=int(tx["nonce"], 16),
                planned_amount=0,
                created=now,
            )
            SweptAddress.objects.bulk_create(SweptAddress(sweep=sweep, deposit_address=row, balance=0) for row in rows)
    except IntegrityError:  # recorded meanwhile by another process
        return Sweep.objects.filter(network=network.name, tx_hash=tx["hash"]).first()
    logger.info(
        "network %r: sweep %s by %s of %d deposit addresses seen", network.name, tx["hash"], tx["from"], len(rows)
    )
    return sweep
