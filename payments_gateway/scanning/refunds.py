"""The merchant's refund payments on chain: found by the scan, or checked for a pasted transaction hash.

A refund's address is not a deposit address, so the scan adds the addresses of ``initiated`` refunds to what it
looks for anyway (the recipients of its token log queries, the ETH recipients it looks up in block bodies): a
handful of addresses, no extra call. A transfer of the refund's asset to its address, of at least its amount, in
a block no older than the refund (less ``CLOCK_SLACK``), is noted on the refund (:func:`note_payments`). Once
that block has the network's confirmations, :func:`confirm_payments` checks the transaction again on chain (so a
payment a reorg took away is forgotten, not completed) and completes the refund.

Limitation: ETH sent by a contract (a Safe's ``execTransaction``) to the refund's address is an internal call,
invisible in the transaction and its logs; such a refund is not detected (cancel it and note why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.utils import timezone

from ..chain.blocks import BlockInfo, SeenTransfer, native_transfers, token_transfers
from ..chain.rpc import RPCClient, client_for
from ..conf import NetworkConfig, gateway_settings
from ..deposits import CLOCK_SLACK
from ..formats import TX_HASH_RE
from ..models import Refund, RefundStatus
from ..services.refunds import complete_refund, note_refund_payment

logger = logging.getLogger(__name__)


class PaymentRefused(Exception):
    """The transaction does not pay the refund (the message says why)."""


@dataclass(frozen=True)
class Payment:
    """A transaction that pays a refund: its block and confirmations at the time of the check."""

    tx_hash: str
    block_number: int
    confirmations: int


def awaited(network: str) -> dict[str, list[Refund]]:
    """Initiated refunds of ``network`` whose payment has not been seen yet, by lowercase address."""
    found: dict[str, list[Refund]] = {}
    for refund in Refund.objects.filter(network=network, status=RefundStatus.INITIATED, tx_hash="").order_by("pk"):
        found.setdefault(refund.address.lower(), []).append(refund)
    return found


def note_payments(seen: list[SeenTransfer], refunds: dict[str, list[Refund]]) -> int:
    """Note on each refund of ``refunds`` the first transfer of ``seen`` that pays it; returns how many."""
    noted = 0
    for t in seen:
        for refund in refunds.get(t.to, []):
            if refund.tx_hash or not _pays(refund, t.asset, t.amount, t.block.timestamp):
                continue
            note_refund_payment(refund, t.tx_hash, t.block.number)
            refund.tx_hash = t.tx_hash  # one transaction pays one refund
            noted += 1
            break
    return noted


def confirm_payments(client: RPCClient, network: NetworkConfig, head: int, now: datetime) -> int:
    """Complete the refunds whose noted payment now has the network's confirmations (checked again on chain);
    forget a payment that no longer checks out. Returns how many completed."""
    due = Refund.objects.filter(
        network=network.name,
        status=RefundStatus.INITIATED,
        block_number__lte=head - network.confirmations + 1,
    ).exclude(tx_hash="")
    completed = 0
    for refund in due:
        try:
            payment = verify(client, network, refund, refund.tx_hash)
        except PaymentRefused as exc:
            logger.warning("refund %s: payment %s no longer checks out (%s)", refund.uuid, refund.tx_hash, exc)
            Refund.objects.filter(pk=refund.pk, tx_hash=refund.tx_hash).update(tx_hash="", block_number=None)
            continue
        if payment.confirmations >= network.confirmations:
            completed += complete_refund(refund, payment.tx_hash, payment.block_number, now=now)
    return completed


def submit_payment(refund: Refund, tx_hash: str, *, now: datetime | None = None) -> bool:
    """The merchant pasted the hash of the refund's payment: check it on chain now. Returns True when the refund
    completed, False when the payment is noted and completes once confirmed. Raises ``ValidationError``
    ({"tx_hash": why}) when the transaction does not pay this refund."""
    if not isinstance(tx_hash, str) or not TX_HASH_RE.match(tx_hash.strip()):
        raise ValidationError({"tx_hash": ["a transaction hash is 0x followed by 64 hexadecimal characters."]})
    if refund.status != RefundStatus.INITIATED:
        raise ValidationError({"tx_hash": [f"refund {refund.uuid} is {refund.status}, not waiting for a payment."]})
    network = gateway_settings.network(refund.network)
    try:
        payment = verify(client_for(network), network, refund, tx_hash.strip().lower())
    except PaymentRefused as exc:
        raise ValidationError({"tx_hash": [str(exc)]}) from None
    if payment.confirmations >= network.confirmations:
        return complete_refund(refund, payment.tx_hash, payment.block_number, now=now or timezone.now())
    note_refund_payment(refund, payment.tx_hash, payment.block_number)
    return False


def verify(client: RPCClient, network: NetworkConfig, refund: Refund, tx_hash: str) -> Payment:
    """Check on chain that ``tx_hash`` pays ``refund``: a successful transaction in a canonical block no older
    than the refund, sending at least its amount of its asset to its address. :class:`PaymentRefused` if not."""
    tx, receipt, head_hex = client.batch(
        [("eth_getTransactionByHash", [tx_hash]), ("eth_getTransactionReceipt", [tx_hash]), ("eth_blockNumber", [])]
    )
    if tx is None or receipt is None:
        raise PaymentRefused(f"no mined transaction {tx_hash} on {network.name}.")
    if receipt.get("status") != "0x1":
        raise PaymentRefused(f"transaction {tx_hash} failed on chain: it sent nothing.")
    block = client.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
    if block is None or block["hash"] != receipt["blockHash"]:
        raise PaymentRefused(f"the block of {tx_hash} is not on the chain any more (a reorg); try again shortly.")
    info = BlockInfo.from_rpc(block)
    recipient = {refund.address.lower()}
    seen = native_transfers(network, info, [tx], recipient, {tx_hash: receipt}) + token_transfers(
        network, receipt.get("logs") or [], recipient, {info.number: info}
    )
    paid = max((t.amount for t in seen if t.asset == refund.asset), default=0)
    if paid == 0:
        raise PaymentRefused(f"transaction {tx_hash} sends no {refund.asset} to {refund.address}.")
    if paid < refund.amount:
        raise PaymentRefused(f"transaction {tx_hash} sends {paid} base units; the refund is {refund.amount}.")
    if not _pays(refund, refund.asset, paid, info.timestamp):
        raise PaymentRefused(f"transaction {tx_hash} was mined at {info.timestamp:%Y-%m-%d %H:%M:%S} UTC, before "
                             "this refund was created.")  # fmt: skip
    return Payment(tx_hash, info.number, int(head_hex, 16) - info.number + 1)


def _pays(refund: Refund, asset: str, amount: int, at: datetime) -> bool:
    return asset == refund.asset and amount >= refund.amount and at >= refund.created - CLOCK_SLACK
