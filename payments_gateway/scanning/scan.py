"""One scan of one network: from its cursor to the chain head, range by range.

A scan takes the network's lease (:mod:`.lease`), checks that the cursor's block is still canonical (else it
rewinds, :mod:`.reorgs`), then reads each range of at most ``max_block_range`` blocks:

- the blocks (with their transactions once any deposit address exists: plain ETH payments are in their bodies,
  matched against every deposit address, open or old) and the ERC-20 ``Transfer`` logs (any token) to the
  watched addresses (:mod:`payments_gateway.chain.logs`), in one round trip for a polling scan; a receipt is
  fetched only for an ETH transaction that pays a deposit address;
- what they pay (:mod:`payments_gateway.chain.blocks`), matched to sessions and stored with the cursor and the
  block hashes in one transaction (:mod:`.store`), so a crash mid-range leaves the cursor before it.

The addresses of initiated refunds ride along as recipients, so the merchant's refund payments are found too
(:mod:`.refunds`). Token transfers to old deposit addresses (past their session's late window) are read in a
second pass with its own cursor, every ``OLD_ADDRESS_SCAN_INTERVAL`` (:meth:`_Scan._scan_old`). At the head it
credits ETH that arrived through contracts (:mod:`.balances`), recounts confirmations and completes refunds.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Container
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..chain.blocks import BlockInfo, ChainMoved, SeenTransfer, native_transfers, token_transfers
from ..chain.logs import collect_logs, transfer_log_calls, transfer_logs
from ..chain.rpc import RPCClient, RPCError, RPCResponseError, client_for
from ..conf import NetworkConfig, gateway_settings
from ..models import Refund, Transfer, TransferStatus
from ..services.sweep_state import observe_sweeps
from . import lease as leases
from . import refunds as refund_payments
from .balances import balance_check_due, credit_balance_gains, take_baselines
from .lease import Lease
from .reorgs import find_fork, remember_blocks, rewind
from .result import ScanError, ScanResult
from .store import TransferStore, transfer_rows
from .watched import Watched, all_addresses, watched_addresses

logger = logging.getLogger(__name__)

# Blocks fetched per JSON-RPC batch (keeps one HTTP answer of full blocks at a sane size).
BLOCK_BATCH = 50


def scan_network(
    name: str, now: datetime | None = None, *, max_seconds: float = 30.0, lease: Lease | None = None
) -> ScanResult:
    """Scan network ``name`` from its cursor to the chain head (for at most about ``max_seconds``).

    Returns a :class:`ScanResult` (``status="busy"`` when another process holds the network's lease). Raises
    ``ValueError`` for an unknown network and :class:`ScanError` / :class:`~payments_gateway.chain.rpc.RPCError`
    when the chain cannot be read; the error is recorded in ``ChainCursor.last_error`` and the cursor keeps its
    last committed position. With ``lease`` (a follower's, :mod:`.follow`) the scan uses it and keeps it;
    otherwise it takes the network's lease and gives it up when done.
    """
    try:
        network = gateway_settings.network(name)
    except ValueError as exc:
        logger.error("scan refused: %s", exc)
        raise
    held = lease is not None
    lease = lease or leases.acquire(name)
    if lease is None:
        logger.info("scan of %r skipped: another process holds its lease", name)
        return ScanResult(network=name, status="busy")
    outcome = leases.note if held else leases.release
    scan = _Scan(network, lease, now)
    try:
        result = scan.run(max_seconds)
    except Exception as exc:
        logger.error("scan of network %r failed: %s", name, exc, exc_info=not isinstance(exc, RPCError | ScanError))
        outcome(lease, error=f"{type(exc).__name__}: {exc}", head=scan.head)
        raise
    outcome(lease, error="", head=result.head)
    return result


class _Scan:
    def __init__(self, network: NetworkConfig, lease: Lease, now: datetime | None) -> None:
        self.network = network
        self.name = network.name
        self.lease = lease
        self.now = now
        self.client: RPCClient = client_for(network)
        self.head: int | None = None

    def run(self, max_seconds: float) -> ScanResult:
        calls_before = self.client.calls
        try:
            result = self._run(max_seconds, time.monotonic())
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            # Our code checks what it parses; anything else here is an answer of the node we cannot read.
            raise ScanError(
                f"network {self.name!r}: the RPC answered something malformed ({type(exc).__name__}: {exc})"
            ) from exc
        result.rpc_calls = self.client.calls - calls_before
        return result

    def _run(self, max_seconds: float, started: float) -> ScanResult:
        lease = self.lease
        # The head and the cursor's block in one round trip (the cursor's block tells whether a reorg happened).
        calls: list[tuple[str, list[Any]]] = [("eth_blockNumber", [])]
        if lease.number >= 0:
            calls.append(("eth_getBlockByNumber", [hex(lease.number), False]))
        head_hex, *cursor_block = self.client.batch(calls)
        self.head = head = _int(head_hex, "eth_blockNumber")
        result = ScanResult(network=self.name, status="up_to_date", head=head)
        cutoff = self._settle_reorg(cursor_block[0] if cursor_block else None, result)
        if lease.number < 0:
            lease.number, lease.hash = max(head - self.network.max_block_range, -1), ""
        watched = watched_addresses(self.name, cutoff)
        # Plain ETH is matched against every deposit address (a set lookup in the block bodies, no extra call),
        # so ETH reaching an old address is recorded as it arrives (unmatched, for the merchant to resolve).
        everyone = all_addresses(self.name)
        refunds = refund_payments.awaited(self.name)
        balances = bool(self.network.multicall3 and watched)
        if balances:
            take_baselines(lease, self.client, self.network, watched, head, self._now())
        first = lease.number + 1
        try:
            while lease.number < head and time.monotonic() - started < max_seconds:
                end = min(lease.number + self.network.max_block_range, head)
                last = self._scan_range(lease.number + 1, end, watched, everyone, refunds, result)
                result.status = "scanned"
                result.from_block, result.to_block = first, end
                if lease.number == head and balances and balance_check_due(first, head):
                    stored, sessions = credit_balance_gains(
                        lease, self.client, self.network, last, watched, head, self._now()
                    )
                    result.transfers += stored
                    result.sessions |= sessions
            if lease.number == head and self._old_due():
                old = {a: w for a, w in everyone.items() if a not in watched}
                self._scan_old(old, started, max_seconds, result)
        except ChainMoved as exc:
            logger.warning("network %r changed while scanning (%s); the next scan rewinds", self.name, exc)
        self._update_confirmations(result)
        refund_payments.confirm_payments(self.client, self.network, self.lease.number, self._now())
        return result

    def _settle_reorg(self, block: dict[str, Any] | None, result: ScanResult) -> datetime | None:
        """Rewind to the fork point if the cursor's block (``block``: the node's block at the cursor's number)
        left the canonical chain; return the cursor block's time (addresses idle since before it need no
        watching)."""
        lease = self.lease
        if lease.number < 0:
            return None
        if block is not None and not lease.hash:
            # A cursor set by hand (a number without its hash): adopt the canonical block as the resume point.
            lease.hash = block["hash"]
            return None
        if block is not None and block["hash"] == lease.hash:
            return BlockInfo.from_rpc(block).timestamp
        head = self.head or 0
        fork = find_fork(self.client, self.network, lease.number, head)
        result.reorg_depth = lease.number - fork[0]
        reverted, sessions = rewind(lease, self.network, fork, head, self._now())
        result.reverted += reverted
        result.sessions |= sessions
        return None

    def _scan_range(
        self,
        start: int,
        end: int,
        watched: dict[str, Watched],
        everyone: dict[str, Watched],
        refunds: dict[str, list[Refund]],
        result: ScanResult,
    ) -> BlockInfo:
        recipients = watched.keys() | refunds.keys()
        blocks, txs, logs = self._fetch(start, end, sorted(recipients), bodies=bool(everyone or refunds))
        seen = self._native(txs, _Either(everyone, refunds)) + token_transfers(self.network, logs, recipients, blocks)
        last = blocks[end]
        with transaction.atomic():
            self.lease.lock()
            store = TransferStore(self.network, self.head or end, self._now())
            found = store.save(transfer_rows(self.network, [t for t in seen if t.to in everyone], everyone))
            refund_payments.note_payments([t for t in seen if t.to in refunds], refunds)
            # A transfer stored from a block of this range that is not the canonical one, and not found again
            # here, was orphaned by a reorg.
            stale = [
                t.pk
                for t in Transfer.objects.filter(network=self.name, block_number__range=(start, end))
                .exclude(status=TransferStatus.REVERTED)
                .only("pk", "block_number", "block_hash", "tx_hash", "log_index")
                if t.block_hash != blocks[t.block_number].hash and (t.tx_hash, t.log_index) not in found
            ]
            result.reverted += store.revert(Transfer.objects.filter(pk__in=stale))
            remember_blocks(self.network, list(blocks.values()), start, end)
            self.lease.move(end, last.hash, self.head)
            store.refresh_sessions()
        result.transfers += len(found)
        result.sessions |= store.sessions
        # Forwarder sweeps move funds out of deposit addresses: recorded (never as payments) so that the balance
        # check below knows the ETH they took.
        observe_sweeps(self.client, self.network, [tx for _, tx in txs], self.head or end, self._now())
        return last

    def _fetch(
        self, start: int, end: int, recipients: list[str], *, bodies: bool
    ) -> tuple[dict[int, BlockInfo], list[tuple[BlockInfo, dict[str, Any]]], list[dict[str, Any]]]:
        """Blocks ``start..end`` (checked to follow each other from the cursor), their transactions when
        ``bodies``, and the token transfer logs to ``recipients``. The log queries ride along with the first
        blocks: one round trip for a polling scan."""
        log_calls = transfer_log_calls(self.network, start, end, recipients)
        logs: list[dict[str, Any]] | None = None if log_calls else []
        blocks: dict[int, BlockInfo] = {}
        txs: list[tuple[BlockInfo, dict[str, Any]]] = []
        parent = self.lease.hash
        for batch_start in range(start, end + 1, BLOCK_BATCH):
            numbers = range(batch_start, min(batch_start + BLOCK_BATCH, end + 1))
            block_calls = [("eth_getBlockByNumber", [hex(n), bodies]) for n in numbers]
            if logs is None and log_calls:
                try:
                    answers = self.client.batch(block_calls + log_calls, max_size=len(block_calls) + len(log_calls))
                    fetched, logs = answers[: len(block_calls)], collect_logs(answers[len(block_calls) :])
                except RPCResponseError as exc:
                    # Providers refuse ranges with too many results: the logs are asked again in halves, below.
                    if start == end:
                        raise
                    logger.warning("network %r: eth_getLogs %d..%d refused (%s); splitting", self.name, start, end, exc)
                    fetched, log_calls = self.client.batch(block_calls), []
            else:
                fetched = self.client.batch(block_calls)
            for number, block in zip(numbers, fetched, strict=True):
                if block is None:
                    raise ChainMoved(f"block {number} disappeared")
                info = BlockInfo.from_rpc(block)
                if parent and info.parent_hash != parent:
                    raise ChainMoved(f"block {number} does not follow {parent}")
                parent = info.hash
                blocks[number] = info
                txs.extend((info, tx) for tx in (block.get("transactions") or ()) if bodies)
        if logs is None:  # the node refused the range
            logs = transfer_logs(self.client, self.network, start, end, recipients, refused=True)
        return blocks, txs, logs

    def _scan_old(self, old: dict[str, Watched], started: float, max_seconds: float, result: ScanResult) -> None:
        """Token transfers to the ``old`` deposit addresses (those not watched every block), from the old
        addresses' cursor up to the main one, once it is ``OLD_ADDRESS_SCAN_INTERVAL`` behind.

        The old addresses' ETH is found every block (in the block bodies); their token transfers cost one
        ``eth_getLogs`` per ``address_chunk`` addresses and ``max_block_range`` blocks, so they are read in one
        go every interval instead of at every block. Blocks at or below the main cursor are canonical as far as
        the scan knows; a log from another block means a reorg under way: stop, the next scan rewinds both.
        """
        lease = self.lease
        recipients = sorted(old)
        while (done := lease.old_number) is not None and done < lease.number:
            if time.monotonic() - started >= max_seconds:
                return
            start, end = done + 1, min(done + self.network.max_block_range, lease.number)
            logs = transfer_logs(self.client, self.network, start, end, recipients) if recipients else []
            numbers = sorted({int(log["blockNumber"], 16) for log in logs})
            headers = self.client.batch([("eth_getBlockByNumber", [hex(n), False]) for n in numbers])
            blocks = {n: BlockInfo.from_rpc(b) for n, b in zip(numbers, headers, strict=True) if b is not None}
            seen = token_transfers(self.network, logs, old, blocks)
            with transaction.atomic():
                self.lease.lock()
                store = TransferStore(self.network, self.head or end, self._now())
                result.transfers += len(store.save(transfer_rows(self.network, seen, old)))
                lease.move_old(end)
                store.refresh_sessions()
            result.sessions |= store.sessions

    def _old_due(self) -> bool:
        old = self.lease.old_number
        return old is not None and self.lease.number - old >= old_scan_blocks(self.network)

    def _native(self, txs: list[tuple[BlockInfo, dict[str, Any]]], everyone: Container[str]) -> list[SeenTransfer]:
        """Plain ETH payments to any of ``everyone`` among ``txs``; a receipt is fetched only for those."""
        candidates = [
            (info, tx)
            for info, tx in txs
            if tx.get("to") and tx["to"].lower() in everyone and int(tx.get("value") or "0x0", 16) > 0
        ]
        if not candidates:
            return []
        fetched = self.client.batch([("eth_getTransactionReceipt", [tx["hash"]]) for _, tx in candidates])
        receipts = {tx["hash"].lower(): r for (_, tx), r in zip(candidates, fetched, strict=True) if r}
        seen: list[SeenTransfer] = []
        for info, tx in candidates:
            seen += native_transfers(self.network, info, [tx], everyone, receipts)
        return seen

    def _update_confirmations(self, result: ScanResult) -> None:
        # Only blocks the scan has verified as canonical (at or below the cursor) may confirm.
        detected = Transfer.objects.filter(
            network=self.name, status=TransferStatus.DETECTED, block_number__lte=self.lease.number
        )
        if self.head is None or not detected.exists():
            return
        with transaction.atomic():
            self.lease.lock()
            store = TransferStore(self.network, self.head, self._now())
            result.confirmed += store.update_confirmations(detected)
            store.refresh_sessions()
        result.sessions |= store.sessions

    def _now(self) -> datetime:
        return self.now or timezone.now()


class _Either:
    """``address in _Either(a, b)``: in ``a`` or in ``b``, without building their union (``a`` may hold every
    deposit address of the network)."""

    def __init__(self, *containers: Container[str]) -> None:
        self.containers = containers

    def __contains__(self, item: object) -> bool:
        return any(item in c for c in self.containers)


def old_scan_blocks(network: NetworkConfig) -> int:
    """Blocks between two readings of the old addresses' token transfers: ``OLD_ADDRESS_SCAN_INTERVAL`` in the
    network's blocks (at least 1)."""
    seconds = int(gateway_settings.OLD_ADDRESS_SCAN_INTERVAL.total_seconds())
    return max(math.ceil(seconds / network.block_time), 1)


def _int(value: Any, what: str) -> int:
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        raise ScanError(f"{what} answered {value!r}, not a hex number") from None
