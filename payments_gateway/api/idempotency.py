"""``Idempotency-Key`` for every POST of the API (as Stripe's): the one mechanism, :func:`idempotent`.

- same key + same request (method, path with query, body) → the first response, replayed
  (header ``Idempotent-Replayed``);
- same key + a different request → 400;
- same key while the first request is still running → 409 on PostgreSQL (retry later); on SQLite, whose writers
  take turns, the second request waits for the first and gets its response replayed;
- a malformed key (empty, over 255 characters, not printable ASCII) → 400 naming the rule;
- a key is kept for ``PAYMENTS_GATEWAY["IDEMPOTENCY_KEY_TTL"]`` (default 24 h) and scoped to the API key.

The record is written in the same transaction as the request's own work (one commit for a new checkout
session: record, order, address, quote, session, event), so a request that fails, or a process killed mid-way,
leaves neither the work nor the key behind. Two processes never both run a request with one key: on PostgreSQL
the first holds a transaction-level advisory lock on (API key, key) and the second, not getting it, answers 409;
on SQLite the write lock (``BEGIN IMMEDIATE``) serialises them, and the second finds the first's record.
A response with an error (an exception, a 5xx) is not stored: nothing was done, so the key may be used again.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework import exceptions, status
from rest_framework.response import Response

from ..conf import gateway_settings
from ..models import APIKey, IdempotencyKey

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
#: Printable ASCII: what an HTTP header can carry unchanged through every proxy (Stripe uses UUIDs).
KEY_PATTERN = r"^[\x21-\x7e][\x20-\x7e]*$"
_KEY = re.compile(KEY_PATTERN.replace("^", r"\A").replace("$", r"\Z"))


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
        check_key(key)
        fingerprint = _fingerprint(request)
        try:
            with transaction.atomic():
                replay = _replay_or_claim(request.auth, key, fingerprint)
                if replay is not None:
                    return replay
                response = view_method(self, request, *args, **kwargs)
                if response.status_code < 500:
                    IdempotencyKey.objects.create(
                        api_key=request.auth,
                        key=key,
                        fingerprint=fingerprint,
                        response_status=response.status_code,
                        response_body=response.data,
                    )
                return response
        except IntegrityError:
            # Stored by another request meanwhile (it committed first): everything of ours is rolled back.
            replay = _replay_or_claim(request.auth, key, fingerprint)
            if replay is None:
                raise
            return replay

    wrapper.idempotent = True  # type: ignore[attr-defined]  # tests check every POST of the API has it
    return wrapper


def check_key(key: str) -> None:
    """400 naming the rule a malformed ``Idempotency-Key`` breaks."""
    if not key.strip():
        raise exceptions.ValidationError({HEADER: ["must not be empty: send a unique value, e.g. a UUID."]})
    if len(key) > MAX_KEY_LENGTH:
        raise exceptions.ValidationError({HEADER: [f"at most {MAX_KEY_LENGTH} characters (got {len(key)})."]})
    if not _KEY.match(key):
        raise exceptions.ValidationError(
            {HEADER: ["only printable ASCII characters (no control characters), not starting with a space."]}
        )


def purge_expired_keys(now=None) -> int:
    """Delete idempotency records older than ``IDEMPOTENCY_KEY_TTL``; returns how many (a scheduled task)."""
    cutoff = (now or timezone.now()) - gateway_settings.IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyKey.objects.filter(created__lt=cutoff).delete()
    return deleted


def _replay_or_claim(api_key: APIKey, key: str, fingerprint: str) -> Response | None:
    """The stored response to replay, or None: this request runs (holding the key until its transaction ends)."""
    if transaction.get_connection().in_atomic_block and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(api_key.pk, key)])
            if not cursor.fetchone()[0]:
                raise IdempotencyConflict()
    existing = IdempotencyKey.objects.filter(api_key=api_key, key=key).first()
    if existing is None:
        return None
    if existing.created < timezone.now() - gateway_settings.IDEMPOTENCY_KEY_TTL:
        existing.delete()
        return None
    if existing.fingerprint != fingerprint:
        raise IdempotencyMismatch(
            {HEADER: [f"{key!r} was already used with a different request; use a new key for a new request."]}
        )
    if existing.response_status is None:  # a claim stored by an older version of this module
        raise IdempotencyConflict()
    response = Response(existing.response_body, status=existing.response_status)
    response["Idempotent-Replayed"] = "true"
    return response


def _lock_id(api_key_pk: int, key: str) -> int:
    """A signed 64-bit advisory lock id for (API key, Idempotency-Key)."""
    digest = hashlib.blake2b(f"{api_key_pk}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.get_full_path().encode() + b"\n")
    digest.update(request.body)
    return digest.hexdigest()
