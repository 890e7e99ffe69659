"""Forwarder sweeps: transactions that move what deposit addresses hold to the treasury. Never payments."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..fields import Uint256Field
from .chain import DepositAddress


class SweepStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    CONFIRMED = "confirmed", "Confirmed"
    FAILED = "failed", "Failed"


class SweepOrigin(models.TextChoices):
    RELAYER = "relayer", "Sent by this gateway's relayer"
    OBSERVED = "observed", "Sent by someone else, seen on chain"


class Sweep(models.Model):
    """One ``ForwarderFactory.sweep`` transaction: all of ``asset`` (and all ETH) at ``addresses`` to ``treasury``.

    ``pending`` from signing until its receipt is buried under the network's confirmations (``confirmed``), or
    says it reverted, or its nonce went to another transaction (``failed``); a reorg that drops its block makes it
    ``pending`` again (``services/sweeps.py``). ``amount`` is what the treasury received of ``asset``, from the
    factory's ``Swept`` event. A sweep is never a payment: the scanner only uses it to explain the ETH it took
    from deposit addresses (:attr:`SweptAddress.eth_amount`).
    """

    network = models.CharField(max_length=40)
    asset = models.CharField(max_length=12, help_text="The swept asset's symbol (the native coin: ETH only).")
    token_address = models.CharField(max_length=42, blank=True, help_text="Empty for an ETH-only sweep.")
    treasury = models.CharField(max_length=42)
    factory = models.CharField(max_length=42)
    addresses = models.ManyToManyField(DepositAddress, through="SweptAddress", related_name="sweeps")
    amount = Uint256Field(null=True, blank=True, default=None, help_text="Base units the treasury received.")
    planned_amount = Uint256Field(help_text="Base units the addresses held when the sweep was planned.")
    status = models.CharField(max_length=10, choices=SweepStatus.choices, default=SweepStatus.PENDING, db_index=True)
    origin = models.CharField(max_length=10, choices=SweepOrigin.choices, default=SweepOrigin.RELAYER)
    tx_hash = models.CharField(max_length=66)
    sender = models.CharField(max_length=42)
    nonce = models.PositiveBigIntegerField()
    # The signed transaction (public data, no key): sent again if the node forgets it before it is mined.
    raw_transaction = models.TextField(blank=True)
    gas_limit = models.PositiveBigIntegerField(default=0)
    gas_used = models.PositiveBigIntegerField(null=True, blank=True)
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)
    mined_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["network", "tx_hash"], name="pg_sweep_tx"),
            # The relayer's nonce is claimed by inserting its sweep: two workers can never sign the same nonce.
            models.UniqueConstraint(
                fields=["network", "sender", "nonce"],
                condition=Q(origin="relayer") & ~Q(status="failed"),
                name="pg_sweep_relayer_nonce",
            ),
        ]

    def __str__(self) -> str:
        return f"sweep of {self.asset} on {self.network} ({self.tx_hash[:10]}…, {self.status})"


class SweptAddress(models.Model):
    """A deposit address in a sweep; ``eth_amount`` is the ETH the sweep took from it (known once mined)."""

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="swept")
    deposit_address = models.ForeignKey(DepositAddress, on_delete=models.PROTECT, related_name="swept")
    balance = Uint256Field(help_text="Base units of the sweep's asset it held when the sweep was planned.")
    eth_amount = Uint256Field(null=True, blank=True, default=None, help_text="Wei the sweep took from it.")
    failed = models.BooleanField(default=False, help_text="The token refused its transfer; it kept its funds.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["sweep", "deposit_address"], name="pg_swept_address")]

    def __str__(self) -> str:
        return f"{self.deposit_address.address} in {self.sweep}"
