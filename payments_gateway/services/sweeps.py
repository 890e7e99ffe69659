"""Forwarder sweeps: which deposit addresses to collect, when, and sending the transactions that collect them.

:func:`run_sweeps` (the django-q2 task and ``payments_gateway_sweep``) brings pending sweeps up to date
(:mod:`.sweep_state`), plans (:func:`plan_sweeps`) and sends what is due (:func:`send_sweep`).

The plan, per network and asset:

- Candidates are forwarder addresses with a **confirmed** deposit of the asset since their last sweep, none
  awaiting confirmations (a sweep takes everything at the address, so an unconfirmed deposit waits for the next
  one), and none in a sweep still pending. What they hold is read on chain at the newest confirmed block.
- They are grouped by the (factory, treasury) each address was made with (an address made for an old treasury
  goes to that treasury: its code can send nowhere else), by index, at most ``sweep_batch_size`` per batch. A
  token sweep also takes the addresses' ETH, so the ETH plan leaves out addresses a token batch takes.
- A batch is **due** when what it collects is worth at least ``sweep_min_value_ratio`` times its estimated gas
  cost (valued with the rate provider; without a rate only the age rule applies), or when its oldest deposit is
  older than ``sweep_max_age``, or when forced ("Sweep now").

Sending is safe with any number of workers: the addresses are locked (``skip_locked``) and checked to be in no
pending sweep inside the transaction that stores the sweep, and the relayer's nonce is claimed by the sweep's
unique (network, sender, nonce). The signed transaction is stored before it is broadcast, so a crash in between
loses nothing (it is sent again by :func:`~.sweep_state.refresh_sweep`). A relayer without enough gas sends
nothing: it is logged and reported, and the funds wait at their addresses.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from ..chain import forwarder
from ..chain.multicall import asset_balances
from ..chain.rpc import RPCClient, RPCError, RPCUnavailable, client_for
from ..conf import AssetConfig, NetworkConfig, gateway_settings
from ..deposits.forwarder import ForwarderMismatch, relayer_low_message, verify_factory
from ..deposits.relayer import RelayerKeyError, relayer_account
from ..models import (
    DepositAddress,
    Sweep,
    SweepOrigin,
    SweepStatus,
    SweptAddress,
    Transfer,
    TransferKind,
    TransferStatus,
)
from ..pricing import PricingError, get_rate_provider
from .sweep_state import broadcast, refresh_sweep

logger = logging.getLogger(__name__)

#: Gas limit margin over ``eth_estimateGas`` (a batch's cost does not depend on state that can change much).
GAS_MARGIN = Decimal("1.25")
#: Tries at claiming a relayer nonce while other workers claim theirs.
CLAIM_ATTEMPTS = 5
#: Priority fee when the node cannot suggest one (1 gwei).
DEFAULT_TIP = 10**9


@dataclass
class Batch:
    """Deposit addresses to collect in one sweep transaction, and whether (and why) it is due."""

    network: str
    asset: AssetConfig
    treasury: str
    factory: str
    addresses: list[tuple[DepositAddress, int]]  # (address, balance of the asset in base units)
    oldest: datetime  # the oldest deposit it collects (confirmed, since the address's last sweep)
    gas: int = 0
    fee_per_gas: int = 0
    value_wei: int | None = None  # what it collects, valued in the native coin; None: no rate
    due: bool = False
    refused: bool = False  # its factory does not compute its addresses (wrong factory or treasury): never sent
    reason: str = ""

    @property
    def amount(self) -> int:
        return sum(balance for _, balance in self.addresses)

    @property
    def gas_cost(self) -> int:
        return self.gas * self.fee_per_gas

    @property
    def calldata(self) -> str:
        return forwarder.sweep_calldata(self.treasury, self.asset.address, [a.index for a, _ in self.addresses])


@dataclass
class SweepRun:
    """What :func:`run_sweeps` found and did on one network."""

    network: str
    batches: list[Batch] = field(default_factory=list)
    sent: list[Sweep] = field(default_factory=list)
    refreshed: int = 0
    problems: list[str] = field(default_factory=list)


def run_sweeps(
    network: str, asset: str | None = None, *, now: datetime | None = None, dry_run: bool = False, force: bool = False
) -> SweepRun:
    """Refresh pending sweeps, plan, and (unless ``dry_run``) send the due batches of ``network`` (``asset``:
    one configured symbol, else all). ``force`` sends every batch whatever the policy says ("Sweep now")."""
    now = now or timezone.now()
    config = gateway_settings.network(network)
    if config.deposit_scheme != "forwarder":
        raise ValueError(f"network {network!r} does not use the forwarder deposit scheme (deposit_scheme is "
                         f"{config.deposit_scheme!r}): there is nothing to sweep")  # fmt: skip
    run = SweepRun(network)
    client = client_for(config)
    if not dry_run:
        run.refreshed = refresh_sweeps(network, now=now)
        _warn_if_relayer_low(client, config)
    run.batches = plan_sweeps(network, asset, now=now, force=force)
    if dry_run:
        return run
    run.problems += list(dict.fromkeys(batch.reason for batch in run.batches if batch.refused))
    for batch in run.batches:
        if not batch.due:
            continue
        try:
            sweep = send_sweep(batch, client, now=now)
        except ForwarderMismatch as exc:  # this (factory, treasury) only
            logger.error("network %r: sweeping refused: %s", network, exc)
            run.problems.append(str(exc))
            continue
        except (RelayerKeyError, RelayerLow) as exc:  # the same for every batch: they wait, nothing is lost
            logger.error("network %r: sweeping refused: %s", network, exc)
            run.problems.append(str(exc))
            break
        if sweep is not None:
            run.sent.append(sweep)
    return run


def refresh_sweeps(network: str, *, now: datetime | None = None) -> int:
    """Bring every pending sweep of ``network`` up to date (:func:`~.sweep_state.refresh_sweep`); how many."""
    now = now or timezone.now()
    config = gateway_settings.network(network)
    pending = list(Sweep.objects.filter(network=network, status=SweepStatus.PENDING).order_by("nonce"))
    if not pending:
        return 0
    client = client_for(config)
    head = int(client.call("eth_blockNumber"), 16)
    for sweep in pending:
        refresh_sweep(sweep, client, config, head, now)
    return len(pending)


def plan_sweeps(
    network: str, asset: str | None = None, *, now: datetime | None = None, force: bool = False
) -> list[Batch]:
    """The batches that would collect ``network``'s confirmed deposits now (tokens first, then ETH), each
    marked due or not by the policy (module docstring). Reads balances and gas prices on chain; writes nothing."""
    now = now or timezone.now()
    config = gateway_settings.network(network)
    client = client_for(config)
    head = int(client.call("eth_blockNumber"), 16)
    confirmed_block = max(head - config.confirmations + 1, 0)
    assets = [config.asset(asset)] if asset else [*config.tokens.values(), config.native]
    batches: list[Batch] = []
    taken: set[int] = set()  # addresses a due token batch sweeps (with their ETH)
    for item in assets:
        candidates = _candidates(config, item, exclude=taken if item.is_native else set())
        if not candidates:
            continue
        holders = [(row.address, item.address) for row, _ in candidates]
        balances = asset_balances(client, config.multicall3, holders, confirmed_block)
        held = [(row, oldest, b) for (row, oldest), b in zip(candidates, balances, strict=True) if b]
        for group in _groups(held, config.sweep_batch_size):
            batch = Batch(
                network=network,
                asset=item,
                treasury=group[0][0].treasury,
                factory=group[0][0].factory,
                addresses=[(row, balance) for row, _, balance in group],
                oldest=min(oldest for _, oldest, _ in group),
            )
            _judge(batch, client, config, now, force)
            batches.append(batch)
            if batch.due and not item.is_native:
                taken.update(row.pk for row, _ in batch.addresses)
    return batches


class RelayerLow(Exception):
    """The relayer cannot pay for the sweep's gas; nothing was sent."""


def send_sweep(batch: Batch, client: RPCClient, *, now: datetime | None = None) -> Sweep | None:
    """Sign and send ``batch`` with the relayer key; the stored :class:`Sweep`, or ``None`` when another worker
    took its addresses or nonce first. Raises :class:`ForwarderMismatch` (the factory does not compute these
    addresses), :class:`RelayerKeyError` or :class:`RelayerLow` before anything is signed."""
    now = now or timezone.now()
    config = gateway_settings.network(batch.network)
    verify_factory(client, config, batch.factory, batch.treasury)
    relayer = relayer_account()
    balance = int(client.call("eth_getBalance", [relayer.address, "pending"]), 16)
    if balance < batch.gas_cost:
        message = relayer_low_message(config, relayer.address, balance, needed=batch.gas_cost)
        logger.warning("%s", message)
        raise RelayerLow(message)
    for _attempt in range(CLAIM_ATTEMPTS):
        try:
            with transaction.atomic():
                sweep = _claim_and_sign(batch, client, config, relayer, now)
            break
        except IntegrityError:  # another worker stored a sweep with that nonce first: take the next one
            continue
    else:
        logger.info("network %r: other workers kept claiming the relayer's nonces; sweeping next time", batch.network)
        return None
    if sweep is None:
        return None
    try:
        refusal = broadcast(client, sweep.raw_transaction)
    except RPCUnavailable as exc:
        Sweep.objects.filter(pk=sweep.pk).update(error=f"not sent yet: {exc}")  # sent again by refresh_sweep
        return sweep
    if refusal is not None:
        # Nothing was accepted, so the nonce is free again for the next sweep.
        Sweep.objects.filter(pk=sweep.pk).update(status=SweepStatus.FAILED, error=f"the node refused it: {refusal}")
        sweep.refresh_from_db()
        logger.error("network %r: sweep refused by the node: %s", batch.network, refusal)
        return sweep
    logger.info(
        "network %r: sweep %s sent: %d addresses, %d base units of %s to %s",
        batch.network, sweep.tx_hash, sweep.swept.count(), sweep.planned_amount, sweep.asset, sweep.treasury,
    )  # fmt: skip
    return sweep


def _warn_if_relayer_low(client: RPCClient, config: NetworkConfig) -> None:
    """A log line on every run while the relayer is below ``relayer_min_balance`` (before a sweep fails for it)."""
    try:
        address = relayer_account().address
    except RelayerKeyError:
        return  # reported when a batch is due, and by the checks
    balance = int(client.call("eth_getBalance", [address, "latest"]), 16)
    if message := relayer_low_message(config, address, balance):
        logger.warning("%s", message)


def in_pending_sweep() -> Q:
    """Deposit addresses that are part of a sweep still pending."""
    return Q(swept__sweep__status=SweepStatus.PENDING)


# --- planning ---------------------------------------------------------------------------------------


def _candidates(
    config: NetworkConfig, asset: AssetConfig, *, exclude: set[int]
) -> list[tuple[DepositAddress, datetime]]:
    """(address, time of its oldest confirmed deposit of ``asset`` since its last sweep) for every forwarder
    address with such a deposit, none unconfirmed, and no pending sweep."""
    rows = {
        row.pk: row
        for row in DepositAddress.objects.filter(network=config.name, scheme="forwarder")
        .exclude(Q(treasury="") | Q(factory="") | Q(pk__in=exclude))
        .exclude(pk__in=DepositAddress.objects.filter(in_pending_sweep()).values("pk"))
        .exclude(transfers__status=TransferStatus.DETECTED)
        .filter(transfers__status=TransferStatus.CONFIRMED, transfers__asset=asset.symbol)
        .distinct()
    }
    if not rows:
        return []
    swept_at = _last_swept_blocks(config.name, asset, list(rows))
    deposits = Transfer.objects.filter(
        deposit_address_id__in=list(rows), status=TransferStatus.CONFIRMED, asset=asset.symbol
    )
    if asset.is_native:
        deposits = deposits.filter(kind__in=[TransferKind.NATIVE, TransferKind.INTERNAL])
    oldest: dict[int, datetime] = {}
    for pk, number, detected_at in deposits.values_list("deposit_address_id", "block_number", "detected_at"):
        if number > swept_at.get(pk, -1) and (pk not in oldest or detected_at < oldest[pk]):
            oldest[pk] = detected_at
    # Only addresses with a deposit since their last sweep are read on chain: the work stays proportional to new
    # deposits, not to every address ever paid. (Anything else an address holds goes along with its next sweep.)
    return [(rows[pk], oldest[pk]) for pk in sorted(oldest, key=lambda pk: rows[pk].index)]


def _last_swept_blocks(network: str, asset: AssetConfig, pks: list[int]) -> dict[int, int]:
    """Deposit address id → block of its last mined sweep that took ``asset`` (every sweep takes the ETH)."""
    rows = SweptAddress.objects.filter(
        deposit_address_id__in=pks, failed=False, sweep__network=network, sweep__block_number__isnull=False
    ).exclude(sweep__status=SweepStatus.FAILED)
    if not asset.is_native:
        rows = rows.filter(sweep__asset=asset.symbol)
    return dict(
        rows.values("deposit_address_id").annotate(b=Max("sweep__block_number")).values_list("deposit_address_id", "b")
    )


def _groups(
    held: list[tuple[DepositAddress, datetime, int]], size: int
) -> list[list[tuple[DepositAddress, datetime, int]]]:
    by_target: dict[tuple[str, str], list[tuple[DepositAddress, datetime, int]]] = {}
    for item in held:
        by_target.setdefault((item[0].factory, item[0].treasury), []).append(item)
    return [rows[i : i + size] for rows in by_target.values() for i in range(0, len(rows), size)]


def _judge(batch: Batch, client: RPCClient, config: NetworkConfig, now: datetime, force: bool) -> None:
    """Estimate the batch's gas and cost and decide whether it is due (and say why). A factory that does not
    compute these addresses makes the batch ``refused``: never due, whatever ``force`` says."""
    try:
        verify_factory(client, config, batch.factory, batch.treasury)
    except ForwarderMismatch as exc:
        batch.refused, batch.reason = True, str(exc)
        return
    batch.fee_per_gas = fee_per_gas(client)[0]
    estimate = int(client.call("eth_estimateGas", [{"to": batch.factory, "data": batch.calldata}]), 16)
    batch.gas = int(estimate * GAS_MARGIN)
    batch.value_wei = _value_in_native(batch, config)
    wanted = config.sweep_min_value_ratio * batch.gas_cost
    old = batch.oldest <= now - config.sweep_max_age
    if force:
        batch.due, batch.reason = True, "forced"
    elif batch.value_wei is not None and batch.value_wei >= wanted:
        batch.due, batch.reason = True, f"worth {_ratio(batch.value_wei, batch.gas_cost)}x its gas cost"
    elif old:
        batch.due, batch.reason = True, f"oldest deposit older than {config.sweep_max_age}"
    elif batch.value_wei is None:
        batch.reason = f"no rate for {batch.asset.symbol}: waits for sweep_max_age ({config.sweep_max_age})"
    else:
        batch.reason = (
            f"worth {_ratio(batch.value_wei, batch.gas_cost)}x its gas cost, below sweep_min_value_ratio "
            f"{config.sweep_min_value_ratio}"
        )


def _value_in_native(batch: Batch, config: NetworkConfig) -> int | None:
    if batch.asset.is_native:
        return batch.amount
    provider = get_rate_provider()
    try:
        token_usd = provider.rate(batch.asset, "USD", config)[0]
        native_usd = provider.rate(config.native, "USD", config)[0]
    except PricingError:
        return None
    whole = Decimal(batch.amount).scaleb(-batch.asset.decimals)
    return int((whole * token_usd / native_usd).scaleb(config.native.decimals))


def fee_per_gas(client: RPCClient) -> tuple[int, int]:  # also used to deploy the factory
    """(max fee per gas, priority fee) for an EIP-1559 transaction: twice the base fee plus the tip."""
    block = client.call("eth_getBlockByNumber", ["latest", False])
    try:
        tip = int(client.call("eth_maxPriorityFeePerGas"), 16)
    except RPCError:
        tip = DEFAULT_TIP
    return 2 * int(block.get("baseFeePerGas") or "0x0", 16) + tip, tip


def _ratio(value: int, cost: int) -> str:
    return "∞" if cost == 0 else f"{Decimal(value) / Decimal(cost):.1f}"


# --- sending ----------------------------------------------------------------------------------------


def _claim_and_sign(
    batch: Batch, client: RPCClient, config: NetworkConfig, relayer: Any, now: datetime
) -> Sweep | None:
    """Inside the caller's transaction: lock the batch's addresses that are still free, claim the next nonce by
    storing the sweep, and sign it."""
    pks = [row.pk for row, _ in batch.addresses]
    free = set(
        DepositAddress.objects.select_for_update(skip_locked=True)
        .filter(pk__in=pks)
        .exclude(pk__in=DepositAddress.objects.filter(in_pending_sweep()).values("pk"))
        .values_list("pk", flat=True)
    )
    batch.addresses = [(row, balance) for row, balance in batch.addresses if row.pk in free]
    if not batch.addresses:
        return None
    address = relayer.address
    # The lowest nonce the chain has not used and no live sweep of ours holds: a sweep the node refused (failed)
    # leaves a gap that the next one fills, so the sweeps after it are not stuck behind it.
    chain_nonce = int(client.call("eth_getTransactionCount", [address, "pending"]), 16)
    held = set(
        Sweep.objects.filter(network=batch.network, sender=address, origin=SweepOrigin.RELAYER, nonce__gte=chain_nonce)
        .exclude(status=SweepStatus.FAILED)
        .values_list("nonce", flat=True)
    )
    nonce = next(n for n in itertools.count(chain_nonce) if n not in held)
    max_fee, tip = fee_per_gas(client)
    signed = relayer.sign_transaction(
        {
            "type": 2,
            "chainId": config.chain_id,
            "nonce": nonce,
            "to": batch.factory,
            "value": 0,
            "data": batch.calldata,
            "gas": batch.gas,
            "maxFeePerGas": max(max_fee, batch.fee_per_gas),
            "maxPriorityFeePerGas": tip,
        }
    )
    sweep = Sweep.objects.create(
        network=batch.network,
        asset=batch.asset.symbol,
        token_address=batch.asset.address or "",
        treasury=batch.treasury,
        factory=batch.factory,
        planned_amount=batch.amount,
        tx_hash="0x" + bytes(signed.hash).hex(),
        sender=address,
        nonce=nonce,
        raw_transaction="0x" + bytes(signed.raw_transaction).hex(),
        gas_limit=batch.gas,
        created=now,
    )
    SweptAddress.objects.bulk_create(
        SweptAddress(sweep=sweep, deposit_address=row, balance=balance) for row, balance in batch.addresses
    )
    return sweep
