"""Outgoing webhooks: events (the outbox), the merchant's endpoints, and one delivery per event x endpoint."""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.utils import timezone

EVENT_TYPES = [
    "payment.created",
    "payment.pending",
    "payment.completed",
    "payment.failed",
    "payment.expired",
    "transaction.detected",
    "transaction.confirmed",
    "transaction.failed",
    "transaction.unmatched",
    "refund.initiated",
    "refund.completed",
    "refund.canceled",
    "customer.created",
    "customer.updated",
    "subscription.created",
    "subscription.activated",
    "subscription.renewal_due",
    "subscription.renewed",
    "subscription.past_due",
    "subscription.canceled",
    "subscription.updated",
]


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


class Event(models.Model):
    """Something that happened, written in the same transaction as the change that caused it."""

    id = models.CharField(primary_key=True, max_length=40, default=new_event_id, editable=False)
    type = models.CharField(max_length=40, db_index=True)
    data = models.JSONField(default=dict)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    session = models.ForeignKey(
        "payments_gateway.CheckoutSession",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
    )
    livemode = models.BooleanField(default=True, help_text="False for test events sent from the admin or API.")

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"

    def envelope(self) -> dict:
        """The JSON body sent to endpoints: ``{"id", "type", "created", "data"}``."""
        return {"id": self.id, "type": self.type, "created": self.created.isoformat(), "data": self.data}


def new_webhook_secret() -> str:
    import base64

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class SignatureFormat(models.TextChoices):
    """How deliveries to an endpoint are signed (``webhooks/outgoing/signing.py``)."""

    STANDARD_WEBHOOKS = "standard-webhooks", "Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)"
    HMAC_SHA256 = "hmac-sha256", "HMAC-SHA256 hex (X-Webhook-Signature-256: sha256=..., X-Webhook-Timestamp)"


class WebhookEndpoint(models.Model):
    """A merchant URL that receives signed events."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100, default=new_webhook_secret)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires = models.DateTimeField(null=True, blank=True)
    enabled_events = models.JSONField(default=list, blank=True, help_text='Event types; ["*"] or empty: all.')
    signature_format = models.CharField(
        max_length=20,
        choices=SignatureFormat.choices,
        default=SignatureFormat.STANDARD_WEBHOOKS,
        help_text="How requests are signed: Standard Webhooks, or a hex HMAC-SHA256 of timestamp.body.",
    )
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    failing_since = models.DateTimeField(
        null=True, blank=True, help_text="First failure of the current run of failures (cleared by a success)."
    )
    disabled_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return wants(self.enabled_events, event_type)


def wants(enabled_events: list[str] | None, event_type: str) -> bool:
    """Whether an endpoint with ``enabled_events`` receives ``event_type``: ``["*"]`` or empty means every type."""
    return not enabled_events or "*" in enabled_events or event_type in enabled_events


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (gave up)"


class WebhookDelivery(models.Model):
    """One event to one endpoint; retried on its schedule until it succeeds or gives up."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_response = models.TextField(blank=True, help_text="At most 20 KB of the last response body.")
    last_error = models.TextField(blank=True)
    # Set by the worker that claimed this delivery; its claim lasts until next_attempt_at (a lease), so a worker
    # that dies mid-delivery only delays the delivery, and a late worker cannot overwrite a newer claim's result.
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "webhook deliveries"
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="pg_delivery_due")]
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="pg_delivery_unique")]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint} ({self.state})"


class WebhookAttempt(models.Model):
    """Every HTTP attempt of a delivery, kept for the delivery log."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField(default=timezone.now)
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True)
    error = models.TextField(blank=True)
    success = models.BooleanField(default=False)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.delivery_id} @ {self.started_at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error}"
