"""Shared pieces of the incoming-webhook tests: sources, signing (with the official ``standardwebhooks``
library, an implementation independent of ours) and a handler that records what it handled."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import UTC, datetime

from django.db import transaction
from standardwebhooks import Webhook

from payments_gateway.models import Customer

PARTNER_SECRET = "whsec_" + base64.b64encode(b"partner-secret-key-32-bytes-long").decode()
PARTNER_OLD_SECRET = "whsec_" + base64.b64encode(b"the-previous-secret-before-12-00").decode()
GITHUB_SECRET = "It's a Secret to Everybody"
STAMPED_SECRET = "stamped-secret"

SOURCES = {
    "partner": {
        "scheme": "standard",
        "secrets": [PARTNER_SECRET, PARTNER_OLD_SECRET],
        "handler": "tests.incoming_helpers.record",
    },
    "github": {
        "scheme": "hmac-sha256",
        "secrets": ["rotated-away", GITHUB_SECRET],
        "handler": "tests.incoming_helpers.record",
        "signature_header": "X-Hub-Signature-256",
        "id_header": "X-GitHub-Delivery",
        "type_header": "X-GitHub-Event",
    },
    "stamped": {
        "scheme": "hmac-sha256",
        "secrets": [STAMPED_SECRET],
        "handler": "tests.incoming_helpers.record",
        "signature_header": "X-Signature",
        "timestamp_header": "X-Timestamp",
        "tolerance": 300,
    },
}

# What the recording handler saw, in this process (the live server runs in the test process).
CALLS: list[tuple[str, str]] = []
# Event ids the handler crashes on (a test "fixes the bug" by removing the id).
FAIL_IDS: set[str] = set()
_lock = threading.Lock()


def record(event, payload):
    """Test handler: records the call and writes a customer; crashes after writing when told to.

    Handlers run outside any transaction, so, as the contract says, it opens its own for all-or-nothing writes.
    """
    with _lock:
        CALLS.append((event.source, event.event_id))
    with transaction.atomic():
        Customer.objects.create(name=f"from {event.source}:{event.event_id}")
        if event.event_id in FAIL_IDS:
            raise RuntimeError("handler crashed on purpose")
    return "recorded"


def envelope(event_id: str = "evt_1", event_type: str = "payment.completed", **extra) -> bytes:
    return json.dumps({"id": event_id, "type": event_type, "data": {"amount": "10"}, **extra}).encode()


def standard_headers(body: bytes, secret: str = PARTNER_SECRET, msg_id: str = "msg_1", at: float | None = None):
    """Standard Webhooks headers signed by the official library."""
    timestamp = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    try:
        signature = Webhook(secret).sign(msg_id, timestamp, body.decode())
    except UnicodeDecodeError:  # the library signs text; the spec signs the raw bytes
        key = base64.b64decode(secret.removeprefix("whsec_"))
        signed = f"{msg_id}.{int(timestamp.timestamp())}.".encode() + body
        signature = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
