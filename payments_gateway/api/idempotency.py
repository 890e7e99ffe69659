"""``Idempotency-Key`` for every POST of the API (as Stripe's): the one mechanism, :func:`idempotent`.

- same key + same request (method, path with query, body) → the first response, replayed
  (header ``Idempotent-Replayed``);
- same key + a different request → 400;
- same key while the first request is still running → 409 (retry later);
- a malformed key (empty, over 255 characters, not printable ASCII) → 400 naming the rule;
- a key is kept for ``PAYMENTS_GATEWAY["IDEMPOTENCY_KEY_TTL"]`` (default 24 h) and scoped to the API key.

The record is written in the same transaction as the request's own work (one commit for a new checkout
session: record, order, address, quote, session, event), so a request that fails, or a process killed mid-way,
leaves neither the work nor the key behind. Two requests never both run with one key: on PostgreSQL the first
holds a transaction-level advisory lock on (API key, key) and the second, not getting it, answers 409. SQLite has
no such lock (its writers take turns, so the second would wait and replay): there the first marks the key in
flight in the cache named by ``RATE_LIMIT_CACHE`` (an atomic ``add``) before its transaction and clears it after;
the second finds the mark and answers 409. Several processes on SQLite need that cache shared, as the rate
limits do.
A response with an error (an exception, a 5xx) is not stored: nothing was done, so the key may be used again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
from collections.abc import Callable, Iterator

from django.core.cache import caches
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
#: How long an in-flight mark outlives a process killed mid-request (SQLite only).
IN_FLIGHT_SECONDS = 60
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
        with _in_flight(request.auth, key):
            return _run_once(self, request, view_method, key, fingerprint, *args, **kwargs)

    wrapper.idempotent = True  # type: ignore[attr-defined]  # tests check every POST of the API has it
    return wrapper


def _run_once(self, request, view_method: Callable, key: str, fingerprint: str, *args, **kwargs) -> Response:
    """Replay the stored response, or run the view and store its response in the view's own transaction."""
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


@contextlib.contextmanager
def _in_flight(api_key: APIKey, key: str) -> Iterator[None]:
    """On databases without advisory locks: 409 while another request runs with this key (see the docstring)."""
    if connection.vendor == "postgresql":
        yield
        return
    cache = caches[gateway_settings.RATE_LIMIT_CACHE]
    mark = f"payments_gateway:idempotency:{_lock_id(api_key.pk, key)}"
    if not cache.add(mark, 1, timeout=IN_FLIGHT_SECONDS):
        raise IdempotencyConflict()
    try:
        yield
    finally:
        cache.delete(mark)


def _lock_id(api_key_pk: int, key: str) -> int:
    """A signed 64-bit advisory lock id for (API key, Idempotency-Key)."""
    digest = hashlib.blake2b(f"{api_key_pk}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.get_full_path().encode() + b"\n")
    digest.update(request.body)
    return digest.hexdigest()
