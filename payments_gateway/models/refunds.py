"""Refunds: money sent back from the merchant's own wallet, for a session or for an unmatched transfer."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..fields import Uint256Field


class RefundStatus(models.TextChoices):
    AWAITING_ADDRESS = "awaiting_address", "Awaiting the customer's address"
    INITIATED = "initiated", "Initiated: to be paid from the merchant's wallet"
    COMPLETED = "completed", "Completed"
    CANCELED = "canceled", "Canceled"


class Refund(models.Model):
    """``amount`` base units of ``asset`` to send back to ``address``, for a ``session`` (an overpayment's excess,
    a partial payment, the whole payment) or an unmatched ``transfer``.

    The gateway holds no key: the merchant pays it from their own wallet. It is ``completed`` when a confirmed
    transfer of that asset to that address, of at least the amount, made after the refund was created, is seen
    on chain (``tx_hash``). While the payment waits for confirmations, ``tx_hash`` and ``block_number`` name it.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    session = models.ForeignKey(
        "payments_gateway.CheckoutSession", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    transfer = models.ForeignKey(
        "payments_gateway.Transfer", null=True, blank=True, on_delete=models.PROTECT, related_name="refunds"
    )
    network = models.CharField(max_length=40)
    asset = models.CharField(max_length=42, help_text="A configured symbol, or the contract of an unknown token.")
    amount = Uint256Field(help_text="Base units.")
    address = models.CharField(max_length=42, blank=True, help_text="Where the refund goes (EIP-55).")
    status = models.CharField(
        max_length=20, choices=RefundStatus.choices, default=RefundStatus.AWAITING_ADDRESS, db_index=True
    )
    reason = models.CharField(max_length=500, blank=True, help_text="Why the merchant refunds.")
    tx_hash = models.CharField(max_length=66, blank=True)
    block_number = models.PositiveBigIntegerField(null=True, blank=True, help_text="Block of tx_hash, when seen.")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    initiated_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=Q(session__isnull=False, transfer__isnull=True)
                | Q(session__isnull=True, transfer__isnull=False),
                name="pg_refund_one_target",
                violation_error_message="A refund is for a session or for a transfer, not both.",
            ),
        ]

    def __str__(self) -> str:
        return f"refund {self.amount} {self.asset} ({self.status})"
