"""Delivering events to endpoints: claim due deliveries, POST them signed, record every attempt, reschedule.

Any number of workers on any number of machines run :func:`deliver_due`. A worker claims a batch of due
deliveries with ``select_for_update(skip_locked=True)`` and stamps them with its claim token and a lease: their
``next_attempt_at`` moves past the time the batch can take. A worker that dies mid-delivery therefore leaves its
deliveries pending; they are due again when the lease ends and another worker retries them. Receivers may thus see
an event twice (Standard Webhooks receivers deduplicate by ``webhook-id``, which is the event id on every attempt),
but never miss one.

Outcome of an attempt: only 2xx is success. Redirects are never followed (3xx is a failure). Other failures are
retried after ``WEBHOOK_RETRY_SCHEDULE[n]`` seconds (jittered ±20 %) or the ``Retry-After`` of a 429/503 if that is
longer; after the last step the delivery gives up (``failed``). 410 Gone disables the endpoint at once; an endpoint
whose failures run for ``WEBHOOK_DISABLE_AFTER`` (5 days) without a success is disabled too. Deliveries of a
disabled endpoint stay pending and resume if the merchant re-enables it.

Each delivery is isolated from the others of its batch: an event whose body cannot be built (data that cannot be
encoded) fails at once with the reason, since every retry would build the same bytes; any other error of ours
while sending one delivery is recorded as that delivery's failed attempt and retried on the schedule. Neither
counts against the endpoint, and neither keeps the rest of the batch from being sent and recorded.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import requests
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from payments_gateway import hotpath
from payments_gateway.conf import gateway_settings
from payments_gateway.models import DeliveryState, Event, WebhookAttempt, WebhookDelivery, WebhookEndpoint

from . import signing, ssrf

logger = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 20 * 1024
# Time a claim may take beyond the HTTP timeout (DB writes, a slow body) before another worker may take over.
LEASE_MARGIN = timedelta(seconds=30)
DEFAULT_BATCH = 20
# A worker writes its results at least this often (seconds), so the delivery log is current while a batch runs.
FLUSH_INTERVAL = 1.0
USER_AGENT = "payments-gateway-webhooks/1"


@dataclass
class Outcome:
    """What one HTTP attempt produced."""

    status_code: int | None = None
    response: str = ""
    error: str = ""
    duration_ms: int = 0
    retry_after: int | None = None
    # The failure is ours (the body cannot be built, the code crashed), not the endpoint's: it does not count
    # towards disabling the endpoint.
    internal: bool = False
    # Retrying cannot help (the same event always builds the same bytes): the delivery fails at once.
    give_up: bool = False

    @property
    def success(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver_due(
    *,
    limit: int = DEFAULT_BATCH,
    now: datetime | None = None,
    event_id: str | None = None,
    http: requests.Session | None = None,
    time_budget: float | None = None,
) -> int:
    """Claim up to ``limit`` due deliveries (of one event if ``event_id``), attempt each; return how many were.

    ``now`` fixes the clock for claiming and scheduling (tests); by default each step reads the real clock.
    With ``time_budget`` (seconds), deliveries not yet started when it runs out are released for the next run,
    so a task stays within the task queue's own timeout even when endpoints hang. Results are written in one
    transaction per batch (or per second, whichever comes first): the lease covers the whole batch.
    """
    token, deliveries = claim_due(limit=limit, now=now, event_id=event_id)
    http = http or http_session()
    deadline = None if time_budget is None else time.monotonic() + time_budget
    done: list[tuple[WebhookDelivery, Outcome, datetime]] = []
    flushed_at = time.monotonic()
    try:
        for index, delivery in enumerate(deliveries):
            if deadline is not None and time.monotonic() > deadline:
                release(deliveries[index:], token=token, now=now)
                return index
            started = now or timezone.now()
            done.append((delivery, _attempt(delivery, now=started, http=http), started))
            if time.monotonic() - flushed_at > FLUSH_INTERVAL:
                record_attempts(done, token=token, now=now)
                done, flushed_at = [], time.monotonic()
    finally:
        # Also on an unexpected error: what was sent is recorded; the rest keeps its lease and is retried.
        record_attempts(done, token=token, now=now)
    return len(deliveries)


def claim_due(
    *, limit: int = DEFAULT_BATCH, now: datetime | None = None, event_id: str | None = None
) -> tuple[str, list[WebhookDelivery]]:
    """Lease up to ``limit`` due pending deliveries of active endpoints to this worker; return (token, deliveries).

    The rows are locked with ``skip_locked`` so concurrent workers take different rows, and the update is
    conditional on the row still being due, so even a database without row locks (SQLite) never hands one
    delivery to two workers at once.
    """
    now = now or timezone.now()
    token = secrets.token_hex(16)
    due = WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now, endpoint__active=True)
    if event_id is not None:
        due = due.filter(event_id=event_id)
    with transaction.atomic():
        hotpath.relax_durability()
        # of=("self",): lock only delivery rows; locking the joined endpoint row would make workers skip each
        # other's deliveries to the same endpoint.
        ids = list(
            due.select_for_update(skip_locked=True, of=("self",))
            .order_by("next_attempt_at", "id")
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return token, []
        # The lease covers what was claimed, not the batch size asked for: a worker killed while sending one
        # event's delivery holds it up for one timeout (plus the margin), not twenty.
        due.filter(id__in=ids).update(next_attempt_at=now + lease_duration(len(ids)), claim_token=token)
    claimed = WebhookDelivery.objects.filter(id__in=ids, claim_token=token).select_related("event", "endpoint")
    return token, list(claimed.order_by("id"))


def release(deliveries: list[WebhookDelivery], *, token: str, now: datetime | None = None) -> None:
    """Give claimed deliveries back unattempted: due at once for any worker."""
    WebhookDelivery.objects.filter(id__in=[d.id for d in deliveries], claim_token=token).update(
        next_attempt_at=now or timezone.now(), claim_token=""
    )


def lease_duration(batch_size: int) -> timedelta:
    """How long a claim of ``batch_size`` deliveries lasts: each may use the whole timeout, one after another."""
    timeout = float(gateway_settings.WEBHOOK_TIMEOUT)
    return timedelta(seconds=timeout * batch_size) + LEASE_MARGIN


def post(endpoint: WebhookEndpoint, event: Event, *, now: datetime, http: requests.Session) -> Outcome:
    """Send ``event`` to ``endpoint``: signed, with the timeout, no redirects; read at most 20 KB of the answer."""
    try:
        ssrf.validate_endpoint_url(endpoint.url, resolve=False)
    except ValidationError as exc:
        return Outcome(error=" ".join(exc.messages))
    try:
        body = event_body(event)
    except Exception as exc:  # built from stored data only: whatever fails here fails on every retry
        return Outcome(
            error=f"The event's body cannot be built ({_exception_text(exc)}); it is never sent.",
            internal=True,
            give_up=True,
        )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signing.signed_headers(endpoint, event.id, body, now=now),
    }
    timeout = float(gateway_settings.WEBHOOK_TIMEOUT)
    clock = time.monotonic()
    try:
        with http.post(
            endpoint.url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True
        ) as response:
            excerpt = _read_excerpt(response, deadline=clock + timeout)
            outcome = Outcome(status_code=response.status_code, response=excerpt)
            if response.status_code in (429, 503):
                outcome.retry_after = parse_retry_after(response.headers.get("Retry-After"))
    except requests.Timeout:
        outcome = Outcome(error=f"timed out after {timeout:g} s")
    except requests.RequestException as exc:
        outcome = Outcome(error=_describe(exc))
    outcome.duration_ms = int((time.monotonic() - clock) * 1000)
    return outcome


def record_attempts(
    results: list[tuple[WebhookDelivery, Outcome, datetime]], *, token: str, now: datetime | None = None
) -> None:
    """Store each attempt, move each delivery on (done, retry later, give up) and update endpoints: one transaction.

    Only the current claimer moves a delivery on: if its lease ran out and another worker took over (or someone
    redelivered it), the newer claim decides; this attempt still goes into the log.
    """
    if not results:
        return
    now = now or timezone.now()
    schedule_length = len(gateway_settings.WEBHOOK_RETRY_SCHEDULE)
    attempts, updated = [], []
    for delivery, outcome, started in results:
        attempts.append(
            WebhookAttempt(
                delivery=delivery,
                started_at=started,
                duration_ms=outcome.duration_ms,
                status_code=outcome.status_code,
                response_excerpt=_storable(outcome.response),
                error=_storable(outcome.error),
                success=outcome.success,
            )
        )
        delivery.attempts += 1
        delivery.state, delivery.next_attempt_at = DeliveryState.PENDING, None
        if outcome.success:
            delivery.state = DeliveryState.SUCCEEDED
        elif outcome.give_up or outcome.status_code == 410 or delivery.attempts > schedule_length:
            delivery.state = DeliveryState.FAILED
        else:
            delivery.next_attempt_at = now + retry_delay(delivery.attempts, outcome.retry_after)
        delivery.last_attempt_at = started
        delivery.last_status_code = outcome.status_code
        delivery.last_response = _storable(outcome.response)
        delivery.last_error = _storable(outcome.error)
        updated.append(delivery)
    with transaction.atomic():
        hotpath.relax_durability()
        WebhookAttempt.objects.bulk_create(attempts)
        # Only the current claimer moves a delivery on (a newer claim or a redelivery has another token).
        hotpath.update_each(
            updated, _DELIVERY_RESULT_FIELDS, where={"claim_token": token, "state": DeliveryState.PENDING},
            also_set={"claim_token": ""},
        )  # fmt: skip
        for delivery, outcome, _ in results:
            # A success at an endpoint with no run of failures changes nothing: skip the query (the common case).
            # A failure of ours says nothing about the endpoint.
            if not outcome.internal and not (outcome.success and delivery.endpoint.failing_since is None):
                _update_endpoint(delivery.endpoint, outcome, now=now)


def retry_delay(attempts: int, retry_after: int | None = None) -> timedelta:
    """Wait before attempt ``attempts + 1``: the schedule step with ±20 % jitter, at least ``Retry-After``.

    ``Retry-After`` is capped at the schedule's longest step, so a receiver cannot park a delivery forever.
    """
    schedule = gateway_settings.WEBHOOK_RETRY_SCHEDULE
    step = schedule[min(attempts, len(schedule)) - 1]
    delay = step * random.uniform(0.8, 1.2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(schedule)))
    return timedelta(seconds=delay)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> int | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None if absent or malformed."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0, int((when - (now or timezone.now())).total_seconds()))


def _update_endpoint(endpoint: WebhookEndpoint, outcome: Outcome, *, now: datetime) -> None:
    endpoints = WebhookEndpoint.objects.filter(pk=endpoint.pk)
    if outcome.success:
        endpoints.filter(failing_since__isnull=False).update(failing_since=None)
        return
    if outcome.status_code == 410:
        disable_endpoint(endpoint, "The endpoint answered 410 Gone.", now=now)
        return
    endpoints.filter(failing_since__isnull=True).update(failing_since=now)
    disable_after = gateway_settings.WEBHOOK_DISABLE_AFTER
    if endpoints.filter(active=True, failing_since__lte=now - disable_after).exists():
        days = disable_after.total_seconds() / 86400
        disable_endpoint(endpoint, f"Every delivery failed for {days:g} days.", now=now)


def disable_endpoint(endpoint: WebhookEndpoint, reason: str, *, now: datetime | None = None) -> None:
    """Stop delivering to ``endpoint``; its pending deliveries wait until the merchant re-enables it."""
    now = now or timezone.now()
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, active=True).update(
        active=False, disabled_reason=reason[:200], disabled_at=now
    )
    if updated:
        logger.warning("Webhook endpoint %s disabled: %s", endpoint.url, reason)


# --- redelivery, test events, and the after-commit kick ---------------------------------------------------------


def redeliver(
    event: Event, endpoints: list[WebhookEndpoint] | None = None, *, now: datetime | None = None
) -> list[WebhookDelivery]:
    """Queue ``event`` again now, to ``endpoints`` (default: every endpoint it was delivered to).

    The delivery restarts its retry schedule; its attempt log is kept. ``webhook-id`` stays the event id.
    """
    now = now or timezone.now()
    with transaction.atomic():
        if endpoints is None:
            endpoints = [d.endpoint for d in event.deliveries.select_related("endpoint")]
        result = []
        for endpoint in endpoints:
            delivery, _ = WebhookDelivery.objects.update_or_create(
                event=event,
                endpoint=endpoint,
                defaults={
                    "state": DeliveryState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "claim_token": "",
                },
            )
            result.append(delivery)
        transaction.on_commit(lambda: kick(event.id))
    return result


def send_test_event(endpoint: WebhookEndpoint, event_type: str, *, now: datetime | None = None) -> Event:
    """Send a sample ``event_type`` event (``livemode`` False) to ``endpoint`` only.

    Test events do not fire the in-process ``event_emitted`` signal: no shop code should act on sample data.
    """
    from payments_gateway.models.outgoing import EVENT_TYPES

    from .samples import sample_data

    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    now = now or timezone.now()
    with transaction.atomic():
        event = Event.objects.create(type=event_type, data=sample_data(event_type), livemode=False, created=now)
        WebhookDelivery.objects.create(event=event, endpoint=endpoint, next_attempt_at=now)
        transaction.on_commit(lambda: kick(event.id))
    return event


def on_event_emitted(sender, event: Event, deliveries: int = 1, **kwargs) -> None:
    """``event_emitted`` receiver: start delivering the new event now rather than at the next periodic run.

    Most events have no endpoint to go to (none configured, or none wanting the type): queueing a task for them
    would cost a broker write per event for nothing.
    """
    if deliveries:
        kick(event.id)


def kick(event_id: str) -> None:
    """Queue a django-q2 task delivering ``event_id`` at once. Best effort: the periodic task is the safety net."""
    try:
        from django_q.tasks import async_task

        async_task("payments_gateway.tasks.deliver_event_webhooks", event_id, task_name=f"webhooks {event_id}")
    except Exception as exc:  # a broker outage must not fail the request that emitted the event
        # A warning, not a traceback: nothing is lost (the delivery is in the database) and the cause is the
        # broker's, which payments_gateway_check and /health/ report.
        logger.warning("Could not queue the delivery of %s (%s); the periodic task will send it.", event_id,
                       _exception_text(exc))  # fmt: skip


# --- helpers --------------------------------------------------------------------------------------------------


def _attempt(delivery: WebhookDelivery, *, now: datetime, http: requests.Session) -> Outcome:
    """:func:`post` one delivery; an unexpected error of ours becomes this delivery's failed attempt (retried on
    the schedule), so it can never stop the rest of the batch or leave it unrecorded."""
    try:
        return post(delivery.endpoint, delivery.event, now=now, http=http)
    except Exception as exc:
        logger.exception("Webhook delivery %s (%s to %s) crashed", delivery.pk, delivery.event_id, delivery.endpoint)
        return Outcome(error=f"Could not be sent ({_exception_text(exc)}).", internal=True)


_sessions: dict[tuple[int, bool], requests.Session] = {}


def http_session() -> requests.Session:
    """A keep-alive HTTP session for this process, with the SSRF guard mounted and proxies ignored."""
    key = (os.getpid(), ssrf.private_allowed())
    if key not in _sessions:
        session = requests.Session()
        session.trust_env = False  # an environment proxy would connect for us, past the address check
        adapter = ssrf.GuardedAdapter(allow_private=key[1], max_retries=0)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _sessions[key] = session
    return _sessions[key]


def event_body(event: Event) -> bytes:
    """The exact bytes signed and sent: the envelope as compact JSON."""
    return json.dumps(event.envelope(), separators=(",", ":"), ensure_ascii=False).encode()


_DELIVERY_RESULT_FIELDS = [
    "state", "attempts", "next_attempt_at", "last_attempt_at", "last_status_code", "last_response", "last_error",
]  # fmt: skip


def _read_excerpt(response: requests.Response, *, deadline: float) -> str:
    data = b""
    for chunk in response.iter_content(4096):
        data += chunk
        if len(data) >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
            break
    text = data[:MAX_RESPONSE_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd")
    # A replacement character is 3 bytes: trim again so the stored excerpt is at most 20 KB encoded.
    return text.encode()[:MAX_RESPONSE_BYTES].decode("utf-8", "ignore")


def _exception_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _storable(text: str) -> str:
    """``text`` as both databases can store it: NUL becomes U+FFFD, a lone surrogate '?' (an error message may
    quote the very data that could not be encoded)."""
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode()


def _describe(exc: requests.RequestException) -> str:
    text = str(exc)
    if "refused:" in text:
        return "refused: " + text.split("refused:", 1)[1].split("'))", 1)[0].strip()
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return text[:500]
