"""Customers, orders and the checkout sessions that collect payment for them."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..fields import ExactDecimalField, StorableJSONField, Uint256Field


class Customer(models.Model):
    """Someone who pays. Created from the checkout form when a session has no customer."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    email = models.EmailField(blank=True, db_index=True)
    name = models.CharField(max_length=200, blank=True)
    metadata = StorableJSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.email or self.name or str(self.uuid)


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Awaiting payment"
    PAID = "paid", "Paid"
    CANCELED = "canceled", "Canceled"


class Order(models.Model):
    """What the merchant sells: a fiat amount under the merchant's own reference. Paid through sessions."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reference = models.CharField(max_length=200, blank=True, help_text="The merchant's own order number.")
    description = models.CharField(max_length=500, blank=True)
    amount = ExactDecimalField(max_digits=24, decimal_places=8, help_text="Fiat price, exact.")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. USD.")
    status = models.CharField(max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING, db_index=True)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    metadata = StorableJSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["reference"], condition=~Q(reference=""), name="pg_order_reference_unique"),
            models.CheckConstraint(
                condition=Q(amount__gt=0),
                name="pg_order_amount_positive",
                violation_error_message="The amount of an order must be greater than zero.",
            ),
        ]

    def __str__(self) -> str:
        return self.reference or str(self.uuid)


class SessionType(models.TextChoices):
    PAYMENT = "payment", "One-time payment"
    CREATE_SUBSCRIPTION = "createSubscription", "Create subscription"
    # Opened by the gateway for each later period of a subscription (services/subscriptions.py), never by a caller.
    RENEW_SUBSCRIPTION = "renewSubscription", "Renew subscription"


class SessionStatus(models.TextChoices):
    OPEN = "open", "Open"
    COMPLETE = "complete", "Complete"
    EXPIRED = "expired", "Expired"
    CANCELED = "canceled", "Canceled"


class PaymentStatus(models.TextChoices):
    UNPAID = "unpaid", "Unpaid"
    PENDING = "pending", "Pending confirmations"
    PARTIALLY_PAID = "partially_paid", "Partially paid"
    PAID = "paid", "Paid"
    OVERPAID = "overpaid", "Overpaid"


class CheckoutSession(models.Model):
    """One attempt to collect an order's price in one asset on one network, at one deposit address.

    The customer may choose the asset and network among ``payment_methods``: until then ``network`` and ``asset``
    are empty and ``amount_due``, the quote and ``deposit_address`` are null (see ``services/methods.py``).
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="sessions")
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions")
    type = models.CharField(max_length=24, choices=SessionType.choices, default=SessionType.PAYMENT)
    status = models.CharField(max_length=16, choices=SessionStatus.choices, default=SessionStatus.OPEN)
    payment_status = models.CharField(
        max_length=16, choices=PaymentStatus.choices, default=PaymentStatus.UNPAID, db_index=True
    )
    # [{"network": ..., "asset": ...}, ...]: what the customer may pay with; the chosen one is network + asset.
    payment_methods = StorableJSONField(default=list, blank=True)
    network = models.CharField(max_length=40, blank=True, help_text="Empty until the customer chooses.")
    asset = models.CharField(max_length=12, blank=True, help_text="Empty until the customer chooses.")
    amount_due = Uint256Field(
        null=True, blank=True, default=None, help_text="Base units (wei, token units); null until chosen."
    )
    amount_received = Uint256Field(help_text="Confirmed base units received so far.")
    amount_pending = Uint256Field(help_text="Base units seen on chain but not yet confirmed.")
    # The locked quote: fiat price / rate = asset amount. Never changes for this session.
    fiat_amount = ExactDecimalField(max_digits=24, decimal_places=8)
    fiat_currency = models.CharField(max_length=3)
    quote_rate = ExactDecimalField(
        max_digits=40, decimal_places=18, null=True, blank=True, help_text="Fiat per one whole asset unit."
    )
    quote_source = models.CharField(max_length=100, blank=True)
    quoted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    success_url = models.URLField(max_length=2000, blank=True)
    cancel_url = models.URLField(max_length=2000, blank=True)
    deposit_address = models.ForeignKey(
        "payments_gateway.DepositAddress", null=True, blank=True, on_delete=models.PROTECT, related_name="sessions"
    )
    late = models.BooleanField(default=False, help_text="Paid after expiry, inside the late payment window.")
    metadata = StorableJSONField(default=dict, blank=True)
    language = models.CharField(
        max_length=8,
        blank=True,
        help_text="The language of the hosted page in which the customer chose how to pay or gave their details "
        "(what e-mails to them are written in); empty until then.",
    )
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "expires_at"], name="pg_session_status_expiry")]
        constraints = [
            models.CheckConstraint(condition=Q(quote_rate__gt=0), name="pg_session_rate_positive"),
            # A chosen payment method always comes with its amount, locked quote and deposit address.
            models.CheckConstraint(
                condition=Q(network="", asset="")
                | Q(
                    amount_due__isnull=False,
                    quote_rate__isnull=False,
                    quoted_at__isnull=False,
                    deposit_address__isnull=False,
                ),
                name="pg_session_method_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.uuid} ({self.status}/{self.payment_status})"

    @property
    def address(self) -> str | None:
        # The address object given, even before it is saved (a session being created, ``hotpath.insert_together``);
        # no query when there is none.
        held = type(self).deposit_address.is_cached(self) or self.deposit_address_id
        return self.deposit_address.address if held and self.deposit_address else None

    @property
    def method_chosen(self) -> bool:
        """Whether the network and asset are set (a session created with them, or the customer chose)."""
        return bool(self.network and self.asset and self.amount_due is not None)

    @property
    def amount_remaining(self) -> int:
        """Base units the customer still has to send: what is seen on chain, confirmed or not, counts as sent
        (0 before a payment method is chosen)."""
        return max((self.amount_due or 0) - self.amount_received - self.amount_pending, 0)
