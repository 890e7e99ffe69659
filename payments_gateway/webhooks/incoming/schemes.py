"""Signature schemes for incoming webhooks: one base class, one registry by name (see :mod:`payments_gateway.plugins`).

A scheme checks a request's signature against the raw body bytes, in constant time, before anything parses
the body. It raises :class:`SignatureError` (with the HTTP status to answer and a message safe to show the
sender) or returns ``None``. A source may hold several secrets, so a secret can be rotated without downtime:
a request passes if it is signed with any of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from payments_gateway.plugins import Plugin

DEFAULT_TOLERANCE = 300  # seconds, both directions (a sender's clock may be ahead of ours)


class SignatureError(Exception):
    """The request is not signed as its source requires; ``status`` is the HTTP answer (400 or 401)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class SignatureScheme(Plugin):
    """Base class: verify ``body`` + ``headers`` (lower-case names) for one source.

    Subclasses set ``name`` (the ``"scheme"`` value in ``WEBHOOK_SOURCES``; a subclass elsewhere is named by its
    dotted path), ``options`` (extra keys they accept, with defaults) and implement :meth:`verify`;
    :meth:`parse_secret` turns a configured secret into key bytes and raises ``ValueError`` on a malformed one.
    """

    registry: ClassVar[dict[str, type[SignatureScheme]]] = {}
    options: ClassVar[dict[str, Any]] = {}

    def __init__(self, secrets: Sequence[str], *, tolerance: int = DEFAULT_TOLERANCE, **options: Any) -> None:
        self.keys = [self.parse_secret(secret) for secret in secrets]
        self.tolerance = tolerance
        self.settings = {**self.options, **options}

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
        """Raise :class:`SignatureError` unless ``body`` is signed with one of this source's secrets."""
        raise NotImplementedError

    @classmethod
    def parse_secret(cls, secret: str) -> bytes:
        return secret.encode()

    def check_timestamp(self, value: str, header: str, now: float | None) -> None:
        """A Unix time in seconds, within ``tolerance`` of ``now`` (replays of old requests are refused)."""
        if not re.fullmatch(r"[0-9]{1,15}", value):
            raise SignatureError(f"{header} must be a Unix time in whole seconds.", status=400)
        skew = int(value) - (time.time() if now is None else now)
        if abs(skew) > self.tolerance:
            direction = "old" if skew < 0 else "far in the future"
            raise SignatureError(
                f"{header} is too {direction}: {abs(int(skew))} s from our clock, tolerance {self.tolerance} s."
            )


class StandardWebhooksScheme(SignatureScheme):
    """Standard Webhooks 1.0: ``webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`` (several,
    space-separated); secrets are ``whsec_<base64>``."""

    name = "standard"

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
        missing = [h for h in ("webhook-id", "webhook-timestamp", "webhook-signature") if not headers.get(h)]
        if missing:
            raise SignatureError(f"Missing header(s): {', '.join(missing)}.", status=400)
        msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
        if not msg_id.isascii():
            raise SignatureError("webhook-id must be ASCII.", status=400)
        self.check_timestamp(timestamp, "webhook-timestamp", now)
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = [hmac.new(key, signed, hashlib.sha256).digest() for key in self.keys]
        for candidate in headers["webhook-signature"].split():
            version, _, value = candidate.partition(",")
            if version != "v1":
                continue  # other versions (e.g. v1a asymmetric) are not ours to check
            try:
                given = base64.b64decode(value, validate=True)
            except (ValueError, binascii.Error):
                continue
            if any(hmac.compare_digest(given, digest) for digest in expected):
                return
        raise SignatureError("No webhook-signature matches this source's secrets.")

    @classmethod
    def parse_secret(cls, secret: str) -> bytes:
        raw = secret.removeprefix("whsec_")
        try:
            key = base64.b64decode(raw, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from None
        if len(key) < 16:
            raise ValueError("a Standard Webhooks secret must hold at least 16 bytes (24 base64 characters)")
        return key


class HmacSha256Scheme(SignatureScheme):
    """HMAC-SHA256 hex digest of the raw body in a named header, with or without a ``sha256=`` prefix
    (GitHub's ``X-Hub-Signature-256``).

    With ``timestamp_header`` set, that header must hold a Unix time within the tolerance, and the signed
    message is ``<timestamp>.<body>`` (a timestamp outside the signature would not stop a replay); set
    ``sign_timestamp`` to False for senders that sign the body alone.
    """

    name = "hmac-sha256"
    options: ClassVar[dict[str, Any]] = {
        "signature_header": "X-Hub-Signature-256",
        "timestamp_header": None,
        "sign_timestamp": True,
    }

    def verify(self, body: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
        header = self.settings["signature_header"]
        value = headers.get(header.lower(), "").strip()
        if not value:
            raise SignatureError(f"Missing header {header}.", status=400)
        signed = body
        timestamp_header = self.settings["timestamp_header"]
        if timestamp_header:
            timestamp = headers.get(timestamp_header.lower(), "").strip()
            if not timestamp:
                raise SignatureError(f"Missing header {timestamp_header}.", status=400)
            self.check_timestamp(timestamp, timestamp_header, now)
            if self.settings["sign_timestamp"]:
                signed = timestamp.encode() + b"." + body
        given = value.removeprefix("sha256=").lower()
        if not re.fullmatch(r"[0-9a-f]{64}", given):
            raise SignatureError(f"{header} must be 64 hex digits, optionally prefixed with 'sha256='.", status=400)
        expected = [hmac.new(key, signed, hashlib.sha256).hexdigest() for key in self.keys]
        if not any(hmac.compare_digest(given.encode(), digest.encode()) for digest in expected):
            raise SignatureError(f"{header} does not match this source's secrets.")

    @classmethod
    def parse_secret(cls, secret: str) -> bytes:
        return secret.encode()
