"""Subscriptions: a fiat price billed every period, each period collected by its own checkout session."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from ..fields import ExactDecimalField, StorableJSONField


class SubscriptionInterval(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    YEAR = "year", "Year"


class SubscriptionStatus(models.TextChoices):
    INCOMPLETE = "incomplete", "Incomplete (first payment awaited)"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    UNPAID = "unpaid", "Unpaid (stopped for non-payment)"


class CancellationReason(models.TextChoices):
    REQUESTED = "requested", "Canceled by the merchant or the customer"
    PAYMENT_FAILED = "payment_failed", "Not paid by the end of the grace period"
    INCOMPLETE_EXPIRED = "incomplete_expired", "The first payment never arrived"


class Subscription(models.Model):
    """A price billed every ``interval_count`` ``interval``\\ s. Each period is paid through its own checkout
    session (:class:`SubscriptionPeriod`); ``services/subscriptions.py`` moves the status."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(
        "payments_gateway.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="subscriptions"
    )
    description = models.CharField(max_length=500, blank=True)
    amount = ExactDecimalField(max_digits=24, decimal_places=8, help_text="Fiat price of one period, exact.")
    currency = models.CharField(max_length=3, help_text="ISO 4217 code, e.g. USD.")
    interval = models.CharField(max_length=8, choices=SubscriptionInterval.choices, db_index=True)
    interval_count = models.PositiveSmallIntegerField(default=1)
    payment_methods = StorableJSONField(default=list, blank=True, help_text='[{"network": ..., "asset": ...}]')
    status = models.CharField(
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.INCOMPLETE, db_index=True
    )
    billing_anchor = models.DateTimeField(
        null=True, blank=True, help_text="Start of the first period; every period boundary is counted from it."
    )
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True, db_index=True)
    cancel_at_period_end = models.BooleanField(default=False)
    canceled_at = models.DateTimeField(null=True, blank=True, help_text="When the cancellation was asked for.")
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When it stopped (canceled or unpaid).")
    cancellation_reason = models.CharField(max_length=24, choices=CancellationReason.choices, blank=True)
    success_url = models.URLField(max_length=2000, blank=True)
    cancel_url = models.URLField(max_length=2000, blank=True)
    metadata = StorableJSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="pg_subscription_amount_positive"),
            models.CheckConstraint(condition=Q(interval_count__gte=1), name="pg_subscription_interval_count_min"),
        ]

    def __str__(self) -> str:
        return f"{self.description or self.uuid} ({self.status})"


class SubscriptionPeriod(models.Model):
    """One billing period of a subscription and the checkout session that collects it.

    The unique (subscription, start) and (subscription, number) constraints are what make renewals exactly once:
    two workers, or a task run twice, can never open two sessions for one period. The first period's bounds are
    unknown (null) until it is paid: it starts when the payment confirms.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="periods")
    number = models.PositiveIntegerField(help_text="1 for the first period.")
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    session = models.OneToOneField(
        "payments_gateway.CheckoutSession", on_delete=models.PROTECT, related_name="subscription_period"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["subscription", "number"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "start"], name="pg_subscription_period_start_once"),
            models.UniqueConstraint(fields=["subscription", "number"], name="pg_subscription_period_number_once"),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id} #{self.number}"
