"""``Idempotency-Key`` for unsafe API requests (as Stripe's).

- same key + same request (method, path, body) → the first response, replayed (header ``Idempotent-Replayed``);
- same key + a different request → 400;
- same key while the first request is still running → 409 (retry later);
- a key is kept for ``PAYMENTS_GATEWAY["IDEMPOTENCY_KEY_TTL"]`` (default 24 h) and scoped to the API key.

The record is claimed through the unique (api_key, key) constraint, committed *before* the view runs, so two
processes can never both run the request. A request that fails with an exception or a 5xx releases its key
(it changed nothing and may be retried); any other response is stored and replayed.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from ..conf import gateway_settings
from ..models import APIKey, IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# A claim older than this with no response belongs to a request that died (process killed): take it over.
ABANDONED_AFTER = timedelta(minutes=5)


class IdempotencyConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "A request with this Idempotency-Key is still being processed; retry in a moment."
    default_code = "idempotency_conflict"


class IdempotencyMismatch(exceptions.ValidationError):
    default_code = "idempotency_mismatch"


def idempotent(view_method: Callable) -> Callable:
    """Decorate a DRF view method (``create``, an ``@action``) to honour ``Idempotency-Key``."""

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None or not isinstance(request.auth, APIKey):
            return view_method(self, request, *args, **kwargs)
        if not key.strip() or len(key) > MAX_KEY_LENGTH:
            raise exceptions.ValidationError({HEADER: [f"must be 1 to {MAX_KEY_LENGTH} characters."]})
        fingerprint = _fingerprint(request)
        record, replay = _claim(request.auth, key, fingerprint)
        if record is None:
            return replay
        try:
            response = view_method(self, request, *args, **kwargs)
        except Exception:
            record.delete()
            raise
        if response.status_code >= 500:
            record.delete()
        else:
            IdempotencyKey.objects.filter(pk=record.pk).update(
                response_status=response.status_code, response_body=response.data
            )
        return response

    return wrapper


def purge_expired_keys(now=None) -> int:
    """Delete idempotency records older than ``IDEMPOTENCY_KEY_TTL``; returns how many (a scheduled task)."""
    cutoff = (now or timezone.now()) - gateway_settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyKey.objects.filter(created__lt=cutoff).delete()
    return deleted


def _claim(api_key: APIKey, key: str, fingerprint: str) -> tuple[IdempotencyKey, None] | tuple[None, Response]:
    """The new record of this key (claimed: run the request), or the response to replay."""
    now = timezone.now()
    for _ in range(2):
        try:
            with transaction.atomic():
                return IdempotencyKey.objects.create(api_key=api_key, key=key, fingerprint=fingerprint), None
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(api_key=api_key, key=key).first()
        if existing is None:
            continue  # released between our insert and our read: claim again
        expired = existing.created < now - gateway_settings.IDEMPOTENCY_KEY_TTL
        abandoned = existing.response_status is None and existing.created < now - ABANDONED_AFTER
        if expired or abandoned:
            IdempotencyKey.objects.filter(pk=existing.pk, created=existing.created).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise IdempotencyMismatch(
                {HEADER: [f"{key!r} was already used with a different request; use a new key for a new request."]}
            )
        if existing.response_status is None:
            raise IdempotencyConflict()
        response = Response(existing.response_body, status=existing.response_status)
        response["Idempotent-Replayed"] = "true"
        return None, response
    raise IdempotencyConflict()


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.path.encode() + b"\n")
    digest.update(request.body)
    return digest.hexdigest()
