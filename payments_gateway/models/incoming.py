"""Incoming webhooks: every request received (audit log) and each event stored once per source."""

from __future__ import annotations

import json
from typing import Any

from django.db import models
from django.utils import timezone


class WebhookRequest(models.Model):
    """One POST to ``/webhooks/<source>/``, valid or not, kept for the audit log for ``WEBHOOK_LOG_RETENTION``."""

    source = models.CharField(max_length=64, db_index=True)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict)
    # Until the signature is verified, only an excerpt: a stranger's request must not fill the disk.
    body = models.BinaryField(help_text="The raw body; only its first 256 bytes if the request was not verified.")
    body_size = models.PositiveIntegerField(default=0, help_text="Bytes of the body as received.")
    valid = models.BooleanField(default=False)
    status_code = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=500, blank=True)
    event = models.ForeignKey("WebhookEvent", null=True, blank=True, on_delete=models.SET_NULL, related_name="requests")

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.source} {self.received_at:%Y-%m-%d %H:%M:%S} → {self.status_code}"


class WebhookEventStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed"


class WebhookEvent(models.Model):
    """A verified event from a source, stored exactly once per (source, event id)."""

    source = models.CharField(max_length=64)
    event_id = models.CharField(max_length=200)
    type = models.CharField(max_length=100, db_index=True)
    body = models.BinaryField(help_text="The raw body, as signed.")
    headers = models.JSONField(default=dict)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=WebhookEventStatus.choices, default=WebhookEventStatus.RECEIVED, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Times the handler ran.")
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, db_index=True, help_text="When a failed event is retried. Empty: no retry left."
    )
    result = models.TextField(blank=True, help_text="What the handler returned, or its traceback.")

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="pg_incoming_event_unique")]

    def __str__(self) -> str:
        return f"{self.source}:{self.event_id} {self.type}"

    @property
    def payload(self) -> Any:
        """The body parsed as JSON (the receiver stored it only after it parsed)."""
        return json.loads(bytes(self.body))
