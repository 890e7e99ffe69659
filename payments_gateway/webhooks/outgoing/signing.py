"""Signatures of outgoing webhooks, in the format each endpoint chose (``WebhookEndpoint.signature_format``).

**Standard Webhooks 1.0** (https://www.standardwebhooks.com/, the default): each request carries ``webhook-id``
(the event id, the same on every retry), ``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">``. While a secret rotates, the signature
header holds one ``v1,...`` per valid secret, space-separated, so a receiver that still has the old secret and one
that already has the new one both verify.

**hmac-sha256**, for receivers written for gateways that sign this way: ``X-Webhook-Signature-256:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` keyed with the secret string as given (``whsec_...``, UTF-8:
what such a receiver naturally passes to ``hmac.new``), ``X-Webhook-Timestamp`` (Unix seconds) and ``X-Webhook-Id``
(the event id, the same on every retry). The header holds one signature, so while a secret rotates requests are
signed with the **current** secret only: the receiver must accept the old and the new secret until it has switched
(the overlap, ``WEBHOOK_SECRET_ROTATION_OVERLAP``, only matters for Standard Webhooks endpoints).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import datetime, timedelta

from django.utils import timezone

SECRET_PREFIX = "whsec_"
#: ``WebhookEndpoint.signature_format`` of the hex HMAC format (the default is ``"standard-webhooks"``).
HMAC_SHA256 = "hmac-sha256"


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` under ``secret`` (a ``whsec_...`` string)."""
    to_sign = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(endpoint, msg_id: str, body: bytes, *, now: datetime | None = None) -> dict[str, str]:
    """The signature headers for one attempt to ``endpoint``, in its ``signature_format``: the three Standard
    Webhooks headers (both signatures while rotating), or the hmac-sha256 ones (the current secret only).

    ``now`` decides whether the previous secret is still valid. The signed timestamp is always the wall clock:
    receivers compare it with their own clock, so it must be the real time of sending.
    """
    timestamp = int(time.time())
    if endpoint.signature_format == HMAC_SHA256:
        return {
            "X-Webhook-Id": msg_id,
            "X-Webhook-Timestamp": str(timestamp),
            "X-Webhook-Signature-256": "sha256=" + sign_hex(endpoint.secret, timestamp, body),
        }
    signatures = [sign(s, msg_id, timestamp, body) for s in valid_secrets(endpoint, now=now)]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
    }


def sign_hex(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret`` as UTF-8 (the hmac-sha256 format)."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def valid_secrets(endpoint, *, now: datetime | None = None) -> list[str]:
    """The endpoint's current secret, then the previous one while its overlap lasts."""
    now = now or timezone.now()
    result = [endpoint.secret]
    expires = endpoint.previous_secret_expires
    if endpoint.previous_secret and expires and expires > now:
        result.append(endpoint.previous_secret)
    return result


def new_secret() -> str:
    """``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def rotate_secret(endpoint, *, overlap: timedelta | None = None, now: datetime | None = None) -> str:
    """Give ``endpoint`` a new secret, keep the old one valid for ``overlap`` (default: the setting); return it.

    Rotating again during an overlap drops the older secret at once: at most two secrets are ever valid.
    """
    from payments_gateway.conf import gateway_settings

    now = now or timezone.now()
    if overlap is None:
        overlap = gateway_settings.WEBHOOK_SECRET_ROTATION_OVERLAP
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires = now + overlap
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires"])
    return endpoint.secret


def secret_bytes(secret: str) -> bytes:
    """The key bytes of a ``whsec_`` secret (as the official libraries decode it)."""
    if secret.startswith(SECRET_PREFIX):
        secret = secret[len(SECRET_PREFIX) :]
    return base64.b64decode(secret + "==")
