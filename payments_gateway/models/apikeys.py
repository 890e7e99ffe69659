"""API keys (stored hashed) and the idempotency records of API requests."""

from __future__ import annotations

import hashlib
import secrets

from django.db import models
from django.utils import timezone

KEY_PREFIX = "pgk_"
#: What a key may do (DESIGN.md, "REST API"): every GET needs ``read``; each POST its resource's write scope.
SCOPES = ("read", "sessions:write", "refunds:write", "subscriptions:write", "webhooks:write", "transfers:write")
READ_SCOPE = "read"


def all_scopes() -> list[str]:
    """Every scope: what a key gets when none are named (and what keys made before scopes existed got)."""
    return list(SCOPES)


def check_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    """``scopes`` without repeats, in :data:`SCOPES` order; ``ValueError`` naming an unknown one and the valid ones."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"Unknown scope {unknown[0]!r}; valid scopes: {', '.join(SCOPES)}.")
    if not scopes:
        raise ValueError(f"Give at least one scope; valid scopes: {', '.join(SCOPES)}.")
    return [s for s in SCOPES if s in scopes]


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class APIKeyManager(models.Manager["APIKey"]):
    def create_key(self, name: str, scopes: list[str] | tuple[str, ...] | None = None) -> tuple[APIKey, str]:
        """Create a key with ``scopes`` (default: all); return it with the raw secret, which is never stored and
        shown only once. ``ValueError`` for an unknown scope."""
        scopes = all_scopes() if scopes is None else check_scopes(scopes)
        raw = KEY_PREFIX + secrets.token_urlsafe(32)
        key = self.create(name=name, prefix=raw[: len(KEY_PREFIX) + 8], hashed_key=hash_key(raw), scopes=scopes)
        return key, raw

    def get_active(self, raw: str) -> APIKey | None:
        return self.filter(hashed_key=hash_key(raw), revoked_at__isnull=True).first()


class APIKey(models.Model):
    """A bearer key for the REST API. Only its SHA-256 is stored; revoke instead of deleting."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=20, help_text="First characters, to recognise a key.")
    hashed_key = models.CharField(max_length=64, unique=True, editable=False)
    created = models.DateTimeField(default=timezone.now)
    last_used = models.DateTimeField(
        null=True, blank=True, help_text="Written at most once a minute (see api/auth.py)."
    )
    scopes = models.JSONField(default=all_scopes, help_text="What the key may do: read, sessions:write, ...")
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = APIKeyManager()

    class Meta:
        ordering = ["-created"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or ())


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` seen from one API key: the request fingerprint and the response it got."""

    api_key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="idempotency_keys")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    response_status = models.PositiveIntegerField(null=True, blank=True, help_text="Empty while in progress.")
    response_body = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "key"], name="pg_idempotency_unique")]

    def __str__(self) -> str:
        return self.key
