"""``POST /webhooks/<source>/``: verify the raw body, log the attempt, store the event once, answer.

Answers: 202 stored (processing queued), 200 duplicate, 400 malformed (missing header, wrong content type,
bad JSON, no id/type), 401 bad signature or stale timestamp, 404 unknown source, 405 not a POST, 413 body over
``WEBHOOK_MAX_BODY``. Every POST is logged as a :class:`~payments_gateway.models.WebhookRequest`. An error of
ours is not caught: it becomes a 500, which tells the sender to retry later.

Until the signature is verified the request is a stranger's: its log row keeps only the first
:data:`UNVERIFIED_EXCERPT` bytes of the body and of each header (and the body's size), so requests to unknown
sources or with bad signatures cannot fill the disk. A verified request keeps its whole body. The log is purged
after ``WEBHOOK_LOG_RETENTION`` (``processing.purge_old_logs``).
"""

from __future__ import annotations

import ipaddress
import json

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from payments_gateway.conf import gateway_settings
from payments_gateway.jsonsafe import MAX_JSON_DEPTH, nesting_deeper_than
from payments_gateway.models import WebhookRequest

from .processing import store_event
from .schemes import SignatureError
from .sources import get_source

# Headers that could carry a credential of a proxy or a browser: never written to the log.
REDACTED_HEADERS = {"authorization", "proxy-authorization", "cookie"}
# Bytes of the body, and characters of each header, kept from a request not (yet) verified; and how many headers.
UNVERIFIED_EXCERPT = 256
UNVERIFIED_MAX_HEADERS = 50


class Rejected(Exception):
    """The request is refused with ``status`` and a message for the sender."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@csrf_exempt
@transaction.non_atomic_requests  # the audit row must survive whatever happens after it
def receive_webhook(request: HttpRequest, source: str) -> JsonResponse:
    """Receive one webhook for ``source``; see the module docstring for the answers."""
    if request.method != "POST":
        return JsonResponse({"error": "Use POST."}, status=405, headers={"Allow": "POST"})
    attempt = WebhookRequest(
        source=_loggable(source)[:64], remote_addr=_remote_addr(request), headers=_logged_headers(request)
    )
    try:
        return _receive(request, source, attempt)
    except Rejected as exc:
        attempt.status_code, attempt.outcome = exc.status, _loggable(exc.message)[:500]
        if not attempt.valid:
            attempt.headers = _excerpt_headers(attempt.headers)
        attempt.save()
        return JsonResponse({"error": exc.message}, status=exc.status)


def _receive(request: HttpRequest, source_name: str, attempt: WebhookRequest) -> JsonResponse:
    body = _read_body(request)
    attempt.body, attempt.body_size = body[:UNVERIFIED_EXCERPT], len(body)
    source = get_source(source_name)
    if source is None:
        raise Rejected(404, f"Unknown webhook source {source_name!r}.")
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        source.scheme.verify(body, headers)
    except SignatureError as exc:
        raise Rejected(exc.status, exc.message) from None
    attempt.valid, attempt.body = True, body
    # Parsing starts only now that the body is known to come from the source.
    if request.content_type != "application/json":
        raise Rejected(400, f"Content-Type must be application/json, not {request.content_type or 'missing'!r}.")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise Rejected(400, f"The body must be UTF-8 JSON: {exc}.") from None
    if nesting_deeper_than(text, MAX_JSON_DEPTH):
        raise Rejected(400, f"The body's JSON is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise Rejected(400, f"The body is not valid JSON: {exc}.") from None
    try:
        event_id, event_type = source.identify(payload, headers)
        source.handler.validate(payload)
    except ValueError as exc:
        raise Rejected(400, str(exc)) from None
    _, created = store_event(attempt, event_id=event_id, event_type=event_type)
    answer = "accepted" if created else "duplicate"
    return JsonResponse({"status": answer, "event": event_id}, status=attempt.status_code)


def _read_body(request: HttpRequest) -> bytes:
    """The raw body, refused with 413 before reading it when its declared length is over the limit."""
    limit = gateway_settings.WEBHOOK_MAX_BODY
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    too_big = Rejected(413, f"The body is over the limit of {limit} bytes.")
    if declared > limit:
        raise too_big
    body = request.read(limit + 1)
    if len(body) > limit:
        raise too_big
    return body


def _remote_addr(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client wrote unless a trusted proxy sets it.
    value = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _logged_headers(request: HttpRequest) -> dict[str, str]:
    return {
        _loggable(name): ("[redacted]" if name.lower() in REDACTED_HEADERS else _loggable(value))
        for name, value in request.headers.items()
    }


def _excerpt_headers(headers: dict[str, str]) -> dict[str, str]:
    """The first headers of a request not verified, each name and value cut at :data:`UNVERIFIED_EXCERPT`."""
    return {_cut(name): _cut(value) for name, value in list(headers.items())[:UNVERIFIED_MAX_HEADERS]}


def _cut(text: str) -> str:
    return text if len(text) <= UNVERIFIED_EXCERPT else text[:UNVERIFIED_EXCERPT] + "…"


def _loggable(text: str) -> str:
    """``text`` as PostgreSQL text and jsonb can store it: NUL becomes U+FFFD, a lone surrogate '?'."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode()
