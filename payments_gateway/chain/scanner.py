"""The chain scanner: find payments to deposit addresses, count confirmations, notice reorgs.

Public entry points:

- :func:`scan_network` — one scan of one network, from its :class:`ChainCursor` up to the chain head. Only one
  process scans a network at a time (a lease on the cursor row, taken with ``select_for_update(skip_locked)``);
  another process gets ``status="busy"`` and returns at once.
- :func:`check_transaction` — an immediate on-chain check of one transaction (webhook hints): whatever the hint
  said, only what the node returns is stored.

How a scan finds money (RPC calls per block range do not grow with the number of watched addresses beyond one
call per ``address_chunk`` addresses):

- ERC-20: ``eth_getLogs`` for ``Transfer`` on every configured token at once, the watched addresses as an
  OR-list on the recipient topic, per ``max_block_range`` blocks and ``address_chunk`` addresses.
- ETH sent by a plain transaction: the block bodies (``eth_getBlockByNumber`` with transactions, which the
  scanner fetches anyway for the block hashes); a receipt is fetched only for a match, to check its status.
- ETH sent by a contract (a Safe, a forwarder): no log, no top-level transaction to the address. When a scan
  reaches a block number divisible by ``BALANCE_CHECK_EVERY``, the watched addresses' balances are read through
  Multicall3 ``getEthBalance`` (1000 addresses per ``eth_call``). Only what an address GAINED counts: its balance
  minus its baseline (``DepositAddress.baseline_balance`` at ``baseline_block``) minus the ETH transfers stored
  for it after the baseline block; that surplus is stored as an ``internal`` transfer seen at that block
  (``log_index`` -2, a synthetic ``tx_hash``). ETH the address already held (address 0 of a funded wallet, an
  old session's payment, ETH sent while nobody watched it) is in the baseline and never credited. The baseline
  is taken by the first scan that watches the address after its current session was created, at the block that
  scan starts from (the last block scanned before it, so a payment made once the session exists is after it);
  a balance below baseline plus transfers (the merchant moved funds out) credits nothing and re-baselines.

Each range is written in one transaction together with the cursor, so a crash mid-range leaves the cursor before
it; a transfer is unique on (network, tx hash, log index), so a rescan never counts it twice. Block hashes of the
last blocks are kept (:class:`ScannedBlock`): when the cursor's block is no longer canonical the scanner walks back
to the fork point, rewinds, and the rescan marks transfers of orphaned blocks ``reverted`` (or moves them to their
new block if the transaction was mined again). Sessions are recomputed with ``refresh_session`` in the same
transaction, which also writes the events.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q
from django.utils import timezone
from eth_utils import keccak, to_checksum_address

from ..conf import ADDRESS_RE, TX_HASH_RE, NetworkConfig, gateway_settings
from ..models import ChainCursor, CheckoutSession, DepositAddress, ScannedBlock, Transfer, TransferKind, TransferStatus
from .addresses import CLOCK_SLACK
from .rpc import RPCClient, RPCError, RPCResponseError, client_for

logger = logging.getLogger(__name__)

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
GET_ETH_BALANCE = bytes.fromhex("4d2301cc")  # Multicall3.getEthBalance(address)
AGGREGATE3 = bytes.fromhex("82ad56cb")  # Multicall3.aggregate3((address,bool,bytes)[])
NATIVE_LOG_INDEX = -1
INTERNAL_LOG_INDEX = -2
# A scan holds its lease this long without progress before another process may take over.
LEASE_TTL = timedelta(minutes=2)
# Blocks fetched per JSON-RPC batch (keeps one HTTP answer of full blocks at a sane size).
BLOCK_BATCH = 50
# The balance check runs when a scan reaches a block number divisible by this: at most every few blocks while
# polling (its cost grows with the watched addresses, unlike the rest of a scan), once per catch-up scan.
BALANCE_CHECK_EVERY = 4
# Addresses per Multicall3 eth_call (each getEthBalance costs ~3k gas; nodes cap eth_call gas near 30-50M).
BALANCE_CHUNK = 1000


class ScanError(Exception):
    """A scan could not proceed (the message says why); the cursor is where the last committed range left it."""


class _ChainMoved(Exception):
    """The chain changed under a range being read (a reorg in progress): stop here, the next scan rewinds."""


@dataclass
class ScanResult:
    """What one :func:`scan_network` call did."""

    network: str
    status: str  # "scanned", "up_to_date" or "busy"
    from_block: int | None = None
    to_block: int | None = None
    head: int | None = None
    transfers: int = 0  # transfers stored or updated (found again, moved to a new block)
    confirmed: int = 0
    reverted: int = 0
    reorg_depth: int = 0
    sessions: set[int] = field(default_factory=set)
    rpc_calls: int = 0


def scan_network(name: str, now: datetime | None = None, *, max_seconds: float = 30.0) -> ScanResult:
    """Scan network ``name`` from its cursor to the chain head (for at most about ``max_seconds``).

    Returns a :class:`ScanResult` (``status="busy"`` when another process holds the network's lease). Raises
    ``ValueError`` for an unknown network and :class:`ScanError` / :class:`~.rpc.RPCError` when the chain
    cannot be read; the error is recorded in ``ChainCursor.last_error`` and the cursor keeps its last
    committed position.
    """
    try:
        network = gateway_settings.network(name)
    except ValueError as exc:
        logger.error("scan refused: %s", exc)
        raise
    owner = _owner_id()
    cursor = _acquire_lease(name, owner)
    if cursor is None:
        logger.info("scan of %r skipped: another process holds its lease", name)
        return ScanResult(network=name, status="busy")
    scan = _Scan(network, cursor, owner, now)
    try:
        result = scan.run(max_seconds)
    except Exception as exc:
        logger.error("scan of network %r failed: %s", name, exc, exc_info=not isinstance(exc, RPCError | ScanError))
        _release_lease(name, owner, error=f"{type(exc).__name__}: {exc}", head=scan.head)
        raise
    _release_lease(name, owner, error="", head=result.head)
    return result


def check_transaction(network_name: str, tx_hash: str, now: datetime | None = None) -> list[Transfer]:
    """Check one transaction on chain now and store the payments it made to deposit addresses.

    Used for notification hints: nothing but the node's answer counts, so a forged hint (no such transaction,
    a failed one, one paying an address that is not ours) stores nothing and returns ``[]``. Returns the
    transfers of that transaction (new or already known), with their current confirmations and status.
    """
    network = gateway_settings.network(network_name)
    if not isinstance(tx_hash, str) or not TX_HASH_RE.match(tx_hash):
        raise ValueError(f"malformed transaction hash {tx_hash!r}: expected 0x followed by 64 hex digits")
    try:
        return _check_transaction(network, tx_hash.lower(), now or timezone.now())
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise ScanError(
            f"network {network.name!r}: the RPC answered something malformed about {tx_hash} "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _check_transaction(network: NetworkConfig, tx_hash: str, now: datetime) -> list[Transfer]:
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
    watched = _deposit_addresses(network.name, _candidate_recipients(network, tx, receipt["logs"]))
    if not watched:
        logger.info("check_transaction %s on %r: pays no deposit address", tx_hash, network.name)
        return []
    info = _BlockInfo.from_rpc(block)
    rows = _native_rows(network, info, [tx], watched, {tx_hash: receipt}) + _log_rows(
        network, receipt["logs"], watched, {info.number: info}
    )
    head = int(head_hex, 16)
    with transaction.atomic():
        stored = _Store(network, head, now)
        stored.save(rows)
        stored.refresh_sessions()
    return list(Transfer.objects.filter(network=network.name, tx_hash=tx_hash).order_by("log_index"))


# --- the scan ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Watched:
    """A deposit address the scan looks for: its row id and EIP-55 address (and, for the watched ones, whether
    its ETH baseline must be taken)."""

    pk: int
    address: str
    needs_baseline: bool = False


@dataclass
class _BlockInfo:
    number: int
    hash: str
    parent_hash: str
    timestamp: datetime

    @classmethod
    def from_rpc(cls, block: dict[str, Any]) -> _BlockInfo:
        return cls(
            number=int(block["number"], 16),
            hash=block["hash"],
            parent_hash=block["parentHash"],
            timestamp=datetime.fromtimestamp(int(block["timestamp"], 16), tz=UTC),
        )


class _Scan:
    def __init__(self, network: NetworkConfig, cursor: ChainCursor, owner: str, now: datetime | None) -> None:
        self.network = network
        self.name = network.name
        self.owner = owner
        self.now = now
        self.client: RPCClient = client_for(network)
        self.cursor_number = cursor.block_number
        self.cursor_hash = cursor.block_hash
        self.head: int | None = None
        self.keep = max(2 * network.confirmations + 32, 64)

    def run(self, max_seconds: float) -> ScanResult:
        started = time.monotonic()
        calls_before = self.client.calls
        try:
            return self._run(max_seconds, started, calls_before)
        except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
            # Our code checks what it parses; anything else here is an answer of the node we cannot read.
            raise ScanError(
                f"network {self.name!r}: the RPC answered something malformed ({type(exc).__name__}: {exc})"
            ) from exc

    def _run(self, max_seconds: float, started: float, calls_before: int) -> ScanResult:
        # The head and the cursor's block in one round trip (the cursor's block tells whether a reorg happened).
        calls: list[tuple[str, list[Any]]] = [("eth_blockNumber", [])]
        if self.cursor_number >= 0:
            calls.append(("eth_getBlockByNumber", [hex(self.cursor_number), False]))
        head_hex, *cursor_block = self.client.batch(calls)
        self.head = head = _int(head_hex, "eth_blockNumber")
        result = ScanResult(network=self.name, status="up_to_date", head=head)
        cutoff = self._check_reorg(cursor_block[0] if cursor_block else None, result)
        if self.cursor_number < 0:
            self.cursor_number = max(head - self.network.max_block_range, -1)
            self.cursor_hash = ""
        watched = _watched_addresses(self.name, cutoff)
        # Plain ETH is matched against every deposit address (a set lookup in the block bodies, no extra call),
        # so ETH reaching an idle address is recorded (for no session). Block bodies are not fetched while no
        # address is watched: ETH arriving then is in the baseline the balance check takes when the address is
        # handed out again, so it is never credited to that session either.
        everyone = {**_all_addresses(self.name), **watched} if watched else {}
        if self.network.multicall3 and watched:
            self._take_baselines(watched)
        first = self.cursor_number + 1
        try:
            while self.cursor_number < head and time.monotonic() - started < max_seconds:
                end = min(self.cursor_number + self.network.max_block_range, head)
                last = self._scan_range(self.cursor_number + 1, end, watched, everyone, result)
                result.status = "scanned"
                result.from_block, result.to_block = first, end
                if self.cursor_number == head and self.network.multicall3 and watched and _sweep_due(first, head):
                    self._sweep_balances(last, watched, result)
        except _ChainMoved as exc:
            logger.warning("network %r changed while scanning (%s); the next scan rewinds", self.name, exc)
        self._update_confirmations(result)
        result.rpc_calls = self.client.calls - calls_before
        return result

    # -- reorgs ------------------------------------------------------------------------------------------------

    def _check_reorg(self, block: dict[str, Any] | None, result: ScanResult) -> datetime | None:
        """Rewind to the fork point if the cursor's block (``block``: the node's block at the cursor's number)
        left the canonical chain; return the cursor block's time (addresses idle since before it need no
        watching)."""
        if self.cursor_number < 0:
            return None
        if block is not None and not self.cursor_hash:
            # A cursor set by hand (a number without its hash): adopt the canonical block as the resume point.
            self.cursor_hash = block["hash"]
            return None
        if block is not None and block["hash"] == self.cursor_hash:
            return _BlockInfo.from_rpc(block).timestamp
        stored = list(ScannedBlock.objects.filter(network=self.name).order_by("-number")[: self.keep])
        canonical = self.client.batch([("eth_getBlockByNumber", [hex(b.number), False]) for b in stored])
        fork: ScannedBlock | None = None
        for kept, block in zip(stored, canonical, strict=True):
            if block is not None and block["hash"] == kept.hash:
                fork = kept
                break
        if fork is None:
            oldest = stored[-1].number if stored else self.cursor_number
            head = self.head or 0
            # Below the oldest kept hash; if the chain is now shorter than that, it is another chain altogether
            # (a dev chain restarted under the same database): rescan its last blocks.
            fork_number = max(oldest - 1 if head >= oldest else head - self.keep, -1)
            fork_block = None
            if fork_number >= 0:
                fork_block = self.client.call("eth_getBlockByNumber", [hex(fork_number), False])
            fork_hash = fork_block["hash"] if fork_block else ""
            logger.error(
                "network %r: reorg deeper than the %d kept block hashes; rescanning from block %d",
                self.name, self.keep, fork_number + 1,
            )  # fmt: skip
        else:
            fork_number, fork_hash = fork.number, fork.hash
        result.reorg_depth = self.cursor_number - fork_number
        logger.warning(
            "network %r: reorg: block %d is no longer canonical; rewinding %d blocks to %d",
            self.name, self.cursor_number, result.reorg_depth, fork_number,
        )  # fmt: skip
        with transaction.atomic():
            self._lock_cursor()
            # Transfers above the new head cannot be canonical; those in (fork, head] are settled by the rescan
            # (reverted, or moved to the block that mined the transaction again).
            store = _Store(self.network, self.head or 0, self._now())
            result.reverted += store.revert(
                Transfer.objects.filter(network=self.name, block_number__gt=max(fork_number, self.head or 0))
            )
            ScannedBlock.objects.filter(network=self.name, number__gt=fork_number).delete()
            # A balance read at an orphaned block is no baseline: take it again at the fork point (the rescan
            # reverts internal transfers of orphaned blocks, and the next balance check finds them again).
            DepositAddress.objects.filter(network=self.name, baseline_block__gt=fork_number).update(
                baseline_balance=None, baseline_block=None, baseline_at=None
            )
            self._save_cursor(fork_number, fork_hash)
            store.refresh_sessions()
            result.sessions |= store.sessions
        return None

    # -- one range ---------------------------------------------------------------------------------------------

    def _scan_range(
        self, start: int, end: int, watched: dict[str, Watched], everyone: dict[str, Watched], result: ScanResult
    ) -> _BlockInfo:
        blocks: dict[int, _BlockInfo] = {}
        candidates: list[tuple[_BlockInfo, dict[str, Any]]] = []
        parent = self.cursor_hash
        log_calls = self._log_calls(start, end, watched)
        logs: list[dict[str, Any]] | None = None if log_calls else []
        for batch_start in range(start, end + 1, BLOCK_BATCH):
            numbers = range(batch_start, min(batch_start + BLOCK_BATCH, end + 1))
            # Transaction bodies only when someone may be paid; the hashes are needed either way.
            block_calls = [("eth_getBlockByNumber", [hex(n), bool(watched)]) for n in numbers]
            if logs is None and log_calls:
                # The log queries ride along with the first blocks: one round trip for a polling scan.
                try:
                    answers = self.client.batch(block_calls + log_calls, max_size=len(block_calls) + len(log_calls))
                    fetched, logs = answers[: len(block_calls)], self._collect_logs(answers[len(block_calls) :])
                except RPCResponseError as exc:
                    # Providers refuse ranges with too many results: ask again in halves, below.
                    if start == end:
                        raise
                    logger.warning("network %r: eth_getLogs %d..%d refused (%s); splitting", self.name, start, end, exc)
                    fetched, log_calls = self.client.batch(block_calls), []
            else:
                fetched = self.client.batch(block_calls)
            for number, block in zip(numbers, fetched, strict=True):
                if block is None:
                    raise _ChainMoved(f"block {number} disappeared")
                info = _BlockInfo.from_rpc(block)
                if parent and info.parent_hash != parent:
                    raise _ChainMoved(f"block {number} does not follow {parent}")
                parent = info.hash
                blocks[number] = info
                for tx in (block.get("transactions") or ()) if watched else ():
                    to = tx.get("to")
                    if to and to.lower() in everyone and int(tx.get("value") or "0x0", 16) > 0:
                        candidates.append((info, tx))
        receipts: dict[str, dict[str, Any]] = {}
        if candidates:
            fetched = self.client.batch([("eth_getTransactionReceipt", [tx["hash"]]) for _, tx in candidates])
            receipts = {tx["hash"].lower(): r for (_, tx), r in zip(candidates, fetched, strict=True) if r}
        rows = []
        for info, tx in candidates:
            rows += _native_rows(self.network, info, [tx], everyone, receipts)
        if logs is None:  # the node refused the range: ask again in halves
            middle = (start + end) // 2
            logs = self._get_logs(start, middle, watched) + self._get_logs(middle + 1, end, watched)
        rows += _log_rows(self.network, logs, watched, blocks)
        last = blocks[end]
        with transaction.atomic():
            self._lock_cursor()
            store = _Store(self.network, self.head or end, self._now())
            found = store.save(rows)
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
            ScannedBlock.objects.filter(network=self.name, number__range=(start, end)).delete()
            ScannedBlock.objects.bulk_create(
                ScannedBlock(network=self.name, number=b.number, hash=b.hash, parent_hash=b.parent_hash)
                for b in blocks.values()
                if b.number > end - self.keep
            )
            ScannedBlock.objects.filter(network=self.name, number__lte=end - self.keep).delete()
            self._save_cursor(end, last.hash)
            store.refresh_sessions()
        result.transfers += len(found)
        result.sessions |= store.sessions
        return last

    def _log_calls(self, start: int, end: int, watched: dict[str, Watched]) -> list[tuple[str, list[Any]]]:
        """``eth_getLogs`` of token transfers to the watched addresses: one per ``address_chunk`` addresses."""
        tokens = [t.address for t in self.network.tokens.values()]
        if not tokens or not watched:
            return []
        addresses = sorted(watched)
        chunk = self.network.address_chunk
        return [
            (
                "eth_getLogs",
                [
                    {
                        "fromBlock": hex(start),
                        "toBlock": hex(end),
                        "address": tokens,
                        "topics": [TRANSFER_TOPIC, None, [_topic(a) for a in addresses[i : i + chunk]]],
                    }
                ],
            )
            for i in range(0, len(addresses), chunk)
        ]

    def _get_logs(self, start: int, end: int, watched: dict[str, Watched]) -> list[dict[str, Any]]:
        calls = self._log_calls(start, end, watched)
        if not calls:
            return []
        try:
            answers = self.client.batch(calls, max_size=10)
        except RPCResponseError as exc:
            # Providers refuse ranges with too many results ("query returned more than 10000 results"):
            # halve the range rather than stall the network on it.
            if start == end:
                raise
            middle = (start + end) // 2
            logger.warning("network %r: eth_getLogs %d..%d refused (%s); splitting", self.name, start, end, exc)
            return self._get_logs(start, middle, watched) + self._get_logs(middle + 1, end, watched)
        return self._collect_logs(answers)

    @staticmethod
    def _collect_logs(answers: list[Any]) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = []
        for answer in answers:
            if not isinstance(answer, list):
                raise ScanError(f"eth_getLogs answered {str(answer)[:200]!r}, not a list of logs")
            logs.extend(answer)
        return logs

    # -- ETH through contracts ---------------------------------------------------------------------------------

    def _take_baselines(self, watched: dict[str, Watched]) -> None:
        """Record the ETH balance of watched addresses that have no baseline for their current session, at the
        block this scan starts from (scanned before the session existed, so no payment to it is included)."""
        due = [a for a in sorted(watched) if watched[a].needs_baseline]
        if not due:
            return
        number = max(self.cursor_number, 0)
        try:
            balances = self._eth_balances(due, number)
        except (RPCResponseError, ScanError) as exc:
            # A node that pruned that block's state, or Multicall3 not deployed yet at it: the head is the only
            # safe baseline left (ETH paid through a contract since the cursor's block is not credited).
            assert self.head is not None
            logger.warning(
                "network %r: balances at block %d unreadable (%s); baselining %d addresses at head %d",
                self.name, number, exc, len(due), self.head,
            )  # fmt: skip
            number = self.head
            balances = self._eth_balances(due, number)
        with transaction.atomic():
            self._lock_cursor()
            self._save_baselines([(watched[a].pk, b) for a, b in zip(due, balances, strict=True)], number)
        logger.info("network %r: ETH baseline of %d addresses taken at block %d", self.name, len(due), number)

    def _sweep_balances(self, block: _BlockInfo, watched: dict[str, Watched], result: ScanResult) -> None:
        """Store as ``internal`` transfers the ETH that watched addresses gained since their baseline beyond the
        ETH transfers seen since."""
        addresses = sorted(watched)
        balances = self._eth_balances(addresses, block.number)
        baselines = _baselines(watched)
        received: dict[str, int] = dict.fromkeys(addresses, 0)
        checksummed = [watched[a].address for a in addresses]
        for start in range(0, len(checksummed), 1000):
            for to, amount, number in (
                Transfer.objects.filter(
                    network=self.name,
                    to_address__in=checksummed[start : start + 1000],
                    kind__in=[TransferKind.NATIVE, TransferKind.INTERNAL],
                    block_number__lte=block.number,
                )
                .exclude(status=TransferStatus.REVERTED)
                .values_list("to_address", "amount", "block_number")
            ):
                baseline = baselines[watched[to.lower()].pk]
                if baseline is not None and number > baseline[1]:
                    received[to.lower()] += amount
        rows, rebaseline = [], []
        for address, balance in zip(addresses, balances, strict=True):
            deposit = watched[address]
            baseline = baselines[deposit.pk]
            if baseline is None:
                # A session created since this scan took baselines: what the address holds now is its baseline.
                rebaseline.append((deposit.pk, balance))
                continue
            surplus = balance - baseline[0] - received[address]
            if surplus < 0:
                # Less than the baseline plus what came in: the merchant moved funds out. Nothing to credit;
                # count from this balance on.
                rebaseline.append((deposit.pk, balance))
            if surplus <= 0:
                continue
            synthetic = "balance:" + keccak(text=f"{block.hash}:{address}").hex()[:58]
            rows.append(
                _row(
                    self.network,
                    deposit,
                    block,
                    tx_hash=synthetic,
                    log_index=INTERNAL_LOG_INDEX,
                    kind=TransferKind.INTERNAL,
                    from_address="",
                    asset=self.network.native.symbol,
                    token_address="",
                    amount=surplus,
                )
            )
        if not rows and not rebaseline:
            return
        if rows:
            logger.info("network %r: %d ETH payments through contracts found by balance", self.name, len(rows))
        with transaction.atomic():
            self._lock_cursor()
            self._save_baselines(rebaseline, block.number)
            store = _Store(self.network, self.head or block.number, self._now())
            result.transfers += len(store.save(rows))
            store.refresh_sessions()
            result.sessions |= store.sessions

    def _save_baselines(self, balances: list[tuple[int, int]], number: int) -> None:
        now = self._now()
        for pk, balance in balances:
            DepositAddress.objects.filter(pk=pk).update(
                baseline_balance=balance, baseline_block=number, baseline_at=now
            )

    def _eth_balances(self, addresses: list[str], number: int) -> list[int]:
        multicall = self.network.multicall3
        assert multicall is not None
        chunks = [addresses[i : i + BALANCE_CHUNK] for i in range(0, len(addresses), BALANCE_CHUNK)]
        calls = [
            ("eth_call", [{"to": multicall, "data": encode_balance_calls(multicall, chunk)}, hex(number)])
            for chunk in chunks
        ]
        balances: list[int] = []
        # ~400 KB of hex calldata per 1000 addresses: two calls per HTTP request keeps bodies under nodes' limits.
        answers = self.client.batch(calls, max_size=2)
        for answer, chunk in zip(answers, chunks, strict=True):
            try:
                balances.extend(decode_balances(answer, len(chunk)))
            except ValueError as exc:
                raise ScanError(f"Multicall3 at {multicall} answered garbage: {exc}") from None
        return balances

    # -- confirmations -----------------------------------------------------------------------------------------

    def _update_confirmations(self, result: ScanResult) -> None:
        head = self.head
        # Only blocks the scan has verified as canonical (at or below the cursor) may confirm.
        detected = Transfer.objects.filter(
            network=self.name, status=TransferStatus.DETECTED, block_number__lte=self.cursor_number
        )
        if head is None or not detected.exists():
            return
        with transaction.atomic():
            self._lock_cursor()
            store = _Store(self.network, head, self._now())
            result.confirmed += store.update_confirmations(detected)
            store.refresh_sessions()
            result.sessions |= store.sessions

    # -- the cursor row ----------------------------------------------------------------------------------------

    def _lock_cursor(self) -> ChainCursor:
        cursor = ChainCursor.objects.select_for_update().get(network=self.name)
        if cursor.lease_owner != self.owner:
            raise ScanError(f"network {self.name!r}: lease lost to {cursor.lease_owner or 'nobody'}; stopping")
        if cursor.block_number != self.cursor_number and self.cursor_number >= 0 and cursor.block_number >= 0:
            raise ScanError(f"network {self.name!r}: cursor moved to {cursor.block_number} by someone else")
        self._cursor = cursor
        return cursor

    def _save_cursor(self, number: int, block_hash: str) -> None:
        cursor = self._cursor
        cursor.block_number, cursor.block_hash = number, block_hash
        cursor.head_block = self.head
        cursor.lease_expires = timezone.now() + LEASE_TTL
        cursor.save(update_fields=["block_number", "block_hash", "head_block", "lease_expires", "updated"])
        self.cursor_number, self.cursor_hash = number, block_hash

    def _now(self) -> datetime:
        return self.now or timezone.now()


# --- storing transfers ---------------------------------------------------------------------------------------


class _Store:
    """Writes transfers (once each), confirmations and reverts, and remembers the sessions to refresh."""

    def __init__(self, network: NetworkConfig, head: int, now: datetime) -> None:
        self.network = network
        self.head = head
        self.now = now
        self.sessions: set[int] = set()

    def save(self, rows: list[dict[str, Any]]) -> set[tuple[str, int]]:
        """Insert new transfers, bring back reverted ones found again; return the keys stored or updated."""
        if not rows:
            return set()
        by_key = {(r["tx_hash"], r["log_index"]): r for r in rows}
        known = {
            (t.tx_hash, t.log_index): t
            for t in Transfer.objects.filter(network=self.network.name, tx_hash__in={k[0] for k in by_key})
        }
        new = [Transfer(**self._confirmations(r)) for key, r in by_key.items() if key not in known]
        Transfer.objects.bulk_create(new, ignore_conflicts=True)
        touched = set()
        for key, row in by_key.items():
            t = known.get(key)
            if t is None:
                touched.add(key)
                if row["session_id"]:
                    self.sessions.add(row["session_id"])
                continue
            if t.status == TransferStatus.REVERTED or t.block_hash != row["block_hash"]:
                # Mined again (same tx, new block) after a reorg: it counts again, from its new block.
                for name, value in self._confirmations(row).items():
                    setattr(t, name, value)
                t.reverted_at = None
                t.save()
                touched.add(key)
            if t.session_id:
                self.sessions.add(t.session_id)
        return touched

    def revert(self, queryset: Any) -> int:
        """Mark the transfers of ``queryset`` reverted (their block left the canonical chain)."""
        rows = list(queryset.exclude(status=TransferStatus.REVERTED).values_list("pk", "session_id"))
        if not rows:
            return 0
        Transfer.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            status=TransferStatus.REVERTED, reverted_at=self.now, confirmations=0
        )
        self.sessions |= {s for _, s in rows if s}
        return len(rows)

    def update_confirmations(self, queryset: Any) -> int:
        """Recount confirmations of detected transfers; return how many became confirmed."""
        confirmed = 0
        for t in queryset.only("pk", "block_number", "confirmations", "session_id", "status"):
            count = max(self.head - t.block_number + 1, 0)
            if count == t.confirmations:
                continue
            fields = {"confirmations": count}
            if count >= self.network.confirmations:
                fields |= {"status": TransferStatus.CONFIRMED, "confirmed_at": self.now}
                confirmed += 1
            Transfer.objects.filter(pk=t.pk).update(**fields)
            if t.session_id:
                self.sessions.add(t.session_id)
        return confirmed

    def refresh_sessions(self) -> None:
        from ..services.payments import refresh_session

        for session_id in sorted(self.sessions):
            refresh_session(session_id, now=self.now)

    def _confirmations(self, row: dict[str, Any]) -> dict[str, Any]:
        count = max(self.head - row["block_number"] + 1, 0)
        confirmed = count >= self.network.confirmations
        return row | {
            "confirmations": count,
            "status": TransferStatus.CONFIRMED if confirmed else TransferStatus.DETECTED,
            "confirmed_at": self.now if confirmed else None,
            "detected_at": self.now,
        }


def _row(network: NetworkConfig, deposit: Watched, block: _BlockInfo, **fields: Any) -> dict[str, Any]:
    session_id, late = _match_session(deposit, block.timestamp)
    return {
        "network": network.name,
        "block_number": block.number,
        "block_hash": block.hash,
        "to_address": deposit.address,
        "deposit_address_id": deposit.pk,
        "session_id": session_id,
        "late": late,
        **fields,
    }


def _native_rows(
    network: NetworkConfig,
    block: _BlockInfo,
    txs: Iterable[dict[str, Any]],
    watched: dict[str, Watched],
    receipts: dict[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    rows = []
    for tx in txs:
        to = (tx.get("to") or "").lower()
        value = int(tx.get("value") or "0x0", 16)
        receipt = receipts.get(tx["hash"].lower())
        if to not in watched or value <= 0 or receipt is None or receipt.get("status") != "0x1":
            continue
        if receipt.get("blockHash") != block.hash:
            raise _ChainMoved(f"receipt of {tx['hash']} is from another block")
        rows.append(
            _row(
                network,
                watched[to],
                block,
                tx_hash=tx["hash"].lower(),
                log_index=NATIVE_LOG_INDEX,
                kind=TransferKind.NATIVE,
                from_address=to_checksum_address(tx["from"]),
                asset=network.native.symbol,
                token_address="",
                amount=value,
            )
        )
    return rows


def _log_rows(
    network: NetworkConfig,
    logs: Iterable[dict[str, Any]],
    watched: dict[str, Watched],
    blocks: dict[int, _BlockInfo],
) -> list[dict[str, Any]]:
    tokens = {t.address.lower(): t for t in network.tokens.values()}
    rows = []
    for log in logs:
        topics = log.get("topics") or []
        token = tokens.get(str(log.get("address", "")).lower())
        # ERC-721 Transfer has the same topic but 4 topics (the token id is indexed): not a payment.
        if log.get("removed") or token is None or len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
            continue
        to = "0x" + topics[2][-40:].lower()
        data = log.get("data") or "0x"
        if to not in watched or len(data) != 66:
            continue
        amount = int(data, 16)
        number = int(log["blockNumber"], 16)
        block = blocks.get(number)
        if block is None or block.hash != log.get("blockHash"):
            raise _ChainMoved(f"log of {log.get('transactionHash')} is from block {log.get('blockHash')}")
        if amount <= 0:
            continue
        rows.append(
            _row(
                network,
                watched[to],
                block,
                tx_hash=log["transactionHash"].lower(),
                log_index=int(log["logIndex"], 16),
                kind=TransferKind.TOKEN,
                from_address=to_checksum_address("0x" + topics[1][-40:]),
                asset=token.symbol,
                token_address=token.address,
                amount=amount,
            )
        )
    return rows


def _match_session(deposit: Watched, at: datetime) -> tuple[int | None, bool]:
    """The session on ``deposit`` whose lifetime (created .. expires_at + late window) covers ``at``."""
    session = (
        CheckoutSession.objects.filter(deposit_address_id=deposit.pk, created__lte=at + CLOCK_SLACK)
        .order_by("-created")
        .only("pk", "expires_at")
        .first()
    )
    if session is None or at > session.expires_at + gateway_settings.LATE_PAYMENT_WINDOW:
        return None, False
    return session.pk, at > session.expires_at


# --- watched addresses, the lease ----------------------------------------------------------------------------


def _all_addresses(network: str) -> dict[str, Watched]:
    """Every deposit address of ``network``, from a per-process cache refreshed when addresses are added."""
    stamp = tuple(
        DepositAddress.objects.filter(network=network)
        .aggregate(n=Count("pk"), last=Max("pk"), high=Max("address"), low=Min("address"))
        .values()
    )
    cached = _address_cache.get(network)
    if cached is None or cached[0] != stamp:
        rows = DepositAddress.objects.filter(network=network).values_list("pk", "address")
        cached = _address_cache[network] = (stamp, _valid(network, rows, log=False))
    return cached[1]


_address_cache: dict[str, tuple[tuple[Any, ...], dict[str, Watched]]] = {}


def _watched_addresses(network: str, cutoff: datetime | None) -> dict[str, Watched]:
    """Deposit addresses that may still receive a payment for a session (lowercase address → row)."""
    queryset = DepositAddress.objects.filter(network=network)
    if cutoff is None:
        queryset = queryset.filter(Q(busy_until__isnull=False) | Q(sessions__isnull=False))
    else:
        late = gateway_settings.LATE_PAYMENT_WINDOW
        since = cutoff - CLOCK_SLACK
        queryset = queryset.filter(Q(busy_until__gte=since) | Q(sessions__expires_at__gte=since - late))
    rows = queryset.distinct().annotate(needs_baseline=_NEEDS_BASELINE).values_list("pk", "address", "needs_baseline")
    return _valid(network, rows)


def _valid(network: str, rows: Iterable[tuple[Any, ...]], *, log: bool = True) -> dict[str, Watched]:
    """lowercase address → :class:`Watched`, leaving out (and logging) a row whose address is malformed: one bad
    row (typed into the admin, say) must not make every query of the network fail."""
    valid = {}
    for pk, address, *needs_baseline in rows:
        if ADDRESS_RE.match(address or ""):
            valid[address.lower()] = Watched(pk, address, bool(needs_baseline and needs_baseline[0]))
        elif log:
            logger.error("network %r: DepositAddress #%s has a malformed address %r; not watched", network, pk, address)
    return valid


def _baselines(watched: dict[str, Watched]) -> dict[int, tuple[int, int] | None]:
    """Deposit address id → its ETH baseline ``(balance, block)``, or ``None`` when it needs one: never taken,
    or taken before the address's newest session was created (the address was handed out again since)."""
    pks = sorted(w.pk for w in watched.values())
    found: dict[int, tuple[int, int] | None] = dict.fromkeys(pks)
    for start in range(0, len(pks), 1000):
        rows = (
            DepositAddress.objects.filter(pk__in=pks[start : start + 1000], baseline_block__isnull=False)
            .exclude(_NEEDS_BASELINE)
            .values_list("pk", "baseline_balance", "baseline_block")
        )
        for pk, balance, number in rows:
            found[pk] = (balance, number)
    return found


# A deposit address whose ETH baseline is missing or older than its newest session.
_NEEDS_BASELINE = (
    Q(baseline_at__isnull=True)
    | Q(baseline_balance__isnull=True)
    | Q(baseline_block__isnull=True)
    | Exists(CheckoutSession.objects.filter(deposit_address_id=OuterRef("pk"), created__gt=OuterRef("baseline_at")))
)


def _deposit_addresses(network: str, candidates: set[str]) -> dict[str, Watched]:
    if not candidates:
        return {}
    checksummed = [to_checksum_address(a) for a in candidates]
    rows = DepositAddress.objects.filter(network=network, address__in=checksummed).values_list("pk", "address")
    return {address.lower(): Watched(pk, address) for pk, address in rows}


def _candidate_recipients(network: NetworkConfig, tx: dict[str, Any], logs: list[dict[str, Any]]) -> set[str]:
    found = set()
    if tx.get("to") and int(tx.get("value") or "0x0", 16) > 0:
        found.add(tx["to"].lower())
    tokens = {t.address.lower() for t in network.tokens.values()}
    for log in logs:
        topics = log.get("topics") or []
        if str(log.get("address", "")).lower() in tokens and len(topics) == 3 and topics[0] == TRANSFER_TOPIC:
            found.add("0x" + topics[2][-40:].lower())
    return found


def _acquire_lease(name: str, owner: str) -> ChainCursor | None:
    try:
        with transaction.atomic():
            ChainCursor.objects.get_or_create(network=name)
    except IntegrityError:
        pass  # another process created it first
    now = timezone.now()
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update(skip_locked=True).filter(network=name).first()
        if cursor is None:
            return None  # locked by a scanner committing right now
        if cursor.lease_owner and cursor.lease_owner != owner and cursor.lease_expires and cursor.lease_expires > now:
            return None
        cursor.lease_owner, cursor.lease_expires = owner, now + LEASE_TTL
        cursor.save(update_fields=["lease_owner", "lease_expires", "updated"])
    return cursor


def _release_lease(name: str, owner: str, *, error: str, head: int | None) -> None:
    fields: dict[str, Any] = {"lease_owner": "", "lease_expires": None, "last_error": error[:2000]}
    if not error:
        fields["last_scan_at"] = timezone.now()
    if head is not None:
        fields["head_block"] = head
    ChainCursor.objects.filter(network=name, lease_owner=owner).update(**fields)


def _sweep_due(first: int, last: int) -> bool:
    """Whether blocks ``first..last`` contain a balance-check block."""
    return last // BALANCE_CHECK_EVERY > (first - 1) // BALANCE_CHECK_EVERY


def _owner_id() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _topic(address: str) -> str:
    return "0x" + "0" * 24 + address[2:].lower()


def _int(value: Any, what: str) -> int:
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        raise ScanError(f"{what} answered {value!r}, not a hex number") from None


def encode_balance_calls(multicall: str, addresses: list[str]) -> str:
    """Calldata of ``Multicall3.aggregate3`` calling its own ``getEthBalance`` once per address.

    Written by hand: eth_abi's generic encoder is most of a scan's CPU time for a thousand addresses. The layout
    is the ABI's (array of dynamic tuples: offsets, then ``(target, allowFailure, offset, length, data)`` each).
    """
    n = len(addresses)
    target = multicall[2:].lower().rjust(64, "0")
    word = "{:064x}".format
    parts = [AGGREGATE3.hex(), word(0x20), word(n)]
    parts += [word(32 * n + 192 * i) for i in range(n)]
    call_head = target + word(1) + word(0x60) + word(36) + GET_ETH_BALANCE.hex() + "0" * 24
    for address in addresses:
        parts.append(call_head + address[2:].lower() + "0" * 56)
    return "0x" + "".join(parts)


def decode_balances(data: Any, count: int) -> list[int]:
    """Balances from the ``(bool success, bytes returnData)[]`` that ``aggregate3`` returns; ``ValueError`` if
    the answer is not that."""
    if not isinstance(data, str) or not data.startswith("0x"):
        raise ValueError(f"not hex data: {str(data)[:80]!r}")
    raw = bytes.fromhex(data[2:])

    def word(at: int) -> int:
        if at < 0 or at + 32 > len(raw):
            raise ValueError(f"truncated answer ({len(raw)} bytes)")
        return int.from_bytes(raw[at : at + 32], "big")

    base = word(0) + 32  # the array's elements start after its length word
    if word(base - 32) != count:
        raise ValueError(f"{word(base - 32)} results for {count} addresses")
    balances = []
    for i in range(count):
        item = base + word(base + 32 * i)
        if word(item) != 1:
            raise ValueError(f"getEthBalance of address {i} failed")
        returned = item + word(item + 32)
        if word(returned) != 32:
            raise ValueError(f"getEthBalance of address {i} returned {word(returned)} bytes")
        balances.append(word(returned + 32))
    return balances
