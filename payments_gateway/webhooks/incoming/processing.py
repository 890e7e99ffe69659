"""Storing incoming events once, and running their handlers once.

- :func:`store_event` (the receiver): the event once, and the attempt's log row; a unique (source, event id)
  constraint makes concurrent duplicates find the stored row instead of writing a second one.
- :func:`process_event` (the task): claims the event in a short transaction, runs the handler outside any
  transaction, then marks the event processed, or failed with its traceback and a retry time from
  ``WEBHOOK_INCOMING_RETRY_SCHEDULE``, in a second short one.
- :func:`retry_due_events` (periodic task): failed events whose retry time has come, events whose task was lost
  (received but never processed), and claimed events whose worker died (lease run out).
- :func:`reprocess` (admin): run the handler again on chosen events, whatever their state.
- :func:`purge_old_logs` (periodic task): forget log rows older than ``WEBHOOK_LOG_RETENTION``.
"""

from __future__ import annotations

import functools
import logging
import time
import traceback
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from payments_gateway import hotpath
from payments_gateway.conf import gateway_settings
from payments_gateway.models import WebhookEvent, WebhookEventStatus, WebhookRequest

logger = logging.getLogger(__name__)

PROCESS_TASK = "payments_gateway.tasks.process_incoming_webhook"
# A received event whose task has not run after this long is taken by the periodic sweep (lost enqueue,
# broker down, worker killed).
STALE_RECEIVED = timedelta(minutes=2)
SWEEP_BATCH = 100
SWEEP_TIME_BUDGET = 30.0  # seconds; Q_CLUSTER["timeout"] is 60 in the example shop
# How long a claimed event is left to the worker that claimed it. Longer than a task may run (django-q2 stops a
# task after Q_CLUSTER["timeout"]), so that a slow handler is not taken for a dead one; after it, the attempt
# counts as failed and the event is retried on the schedule.
LEASE = timedelta(minutes=5)
# Rows deleted per statement by the purge: short transactions, so the receiver's writes never wait long on it.
PURGE_BATCH = 1000


def store_event(attempt: WebhookRequest, *, event_id: str, event_type: str) -> tuple[int, bool]:
    """Store the verified event of ``attempt`` unless it is already stored; log ``attempt`` pointing at it.

    Returns (event pk, created); a new event's processing task is queued once it is committed.

    This is the receiver's hot path, and its cost is its statements: a stored event's retry is one read and
    the log row; a new event, one read, the event, the log row and the task. Each statement commits on its
    own (the receiver runs in autocommit); should the process die between the event and its task, the
    periodic sweep (:func:`retry_due_events`) processes the event anyway.
    """
    existing = _find_event(attempt.source, event_id)
    if existing is None:
        event = WebhookEvent(
            source=attempt.source,
            event_id=event_id,
            type=event_type,
            body=attempt.body,
            headers=attempt.headers,
            received_at=attempt.received_at,
        )
        event_pk = hotpath.insert_or_skip(event, unless_conflict_on=("source", "event_id"))
        if event_pk is not None:
            attempt.event_id = event_pk
            attempt.status_code, attempt.outcome = 202, "stored; processing queued"
            attempt.pk = hotpath.insert_or_skip(attempt)
            transaction.on_commit(functools.partial(_enqueue_or_leave_to_sweep, event_pk))
            return event_pk, True
        # A concurrent request stored it between our read and our insert; it has committed by now
        # (PostgreSQL's ON CONFLICT waits for it; SQLite's writers take turns), so the row is there to read.
        existing = _find_event(attempt.source, event_id)
        assert existing is not None  # the conflicting row is committed and never deleted this fast
    event_pk, stored_body = existing
    attempt.event_id = event_pk
    attempt.status_code = 200
    attempt.outcome = f"duplicate of stored event #{event_pk}" + (
        "" if bytes(stored_body) == bytes(attempt.body) else " (this body differs from the stored one, which is kept)"
    )
    attempt.pk = hotpath.insert_or_skip(attempt)
    return event_pk, False


def enqueue(event_pk: int, *, force: bool = False) -> None:
    """Queue the processing task of one event (the sweep catches it if the broker loses it)."""
    from django_q.tasks import async_task

    async_task(PROCESS_TASK, event_pk, force=force, group="incoming-webhooks")


def _enqueue_or_leave_to_sweep(event_pk: int, *, force: bool = False) -> None:
    """:func:`enqueue`, best effort: with the broker down (Redis stopped), a new event waits for the periodic
    sweep. A warning, not a traceback: nothing is lost, and the broker's state is reported by the checks."""
    try:
        enqueue(event_pk, force=force)
    except Exception as exc:
        then = "reprocess it again once the broker is back" if force else "the periodic sweep will process it"
        logger.warning("Could not queue incoming event #%s (%s: %s); %s.", event_pk, type(exc).__name__, exc, then)


def process_event(event_pk: int, *, now: datetime | None = None, force: bool = False) -> str:
    """Run the handler of one stored event, unless it is processed, not yet due for a retry, or being
    processed by another worker. ``force`` runs it whatever its state (admin reprocess), except while another
    worker has it.

    No transaction is open while the handler runs: on SQLite a transaction holds the database-wide write lock,
    and a handler may wait on the network (the built-in one makes RPC calls), which would stall every other
    writer. So, in three steps (call it outside ``transaction.atomic()`` for them to be separate):

    1. claim, in a short transaction: the row lock decides between racing workers, and the winner marks the
       event taken (status ``received``, ``next_attempt_at`` = the end of its :data:`LEASE`, ``attempts`` + 1);
    2. run the handler, outside any transaction (it may open its own, and must be idempotent: a worker that dies
       after its handler's writes and before step 3 leaves the event to be handled again);
    3. record the outcome in one UPDATE, if no other worker has claimed the event since.

    Returns what happened, for the task's result.
    """
    from .sources import get_source

    now = now or timezone.now()
    event = _claim(event_pk, now=now, force=force)
    if isinstance(event, str):
        return event
    try:
        source = get_source(event.source)
        if source is None:
            raise LookupError(f"source {event.source!r} is no longer in WEBHOOK_SOURCES")
        result = source.handler.handle(event, event.payload)
    except Exception:
        logger.exception("Incoming webhook %s:%s failed (attempt %s)", event.source, event.event_id, event.attempts)
        outcome = {
            "status": WebhookEventStatus.FAILED,
            "result": traceback.format_exc(),
            "next_attempt_at": _next_attempt(event.attempts, now),
        }
    else:
        outcome = {
            "status": WebhookEventStatus.PROCESSED,
            "result": result or "",
            "processed_at": now,
            "next_attempt_at": None,
        }
    # Still ours while no other claim has counted an attempt since (each claim adds one).
    if not WebhookEvent.objects.filter(pk=event.pk, attempts=event.attempts).update(**outcome):
        logger.warning(
            "Incoming webhook %s:%s: attempt %s ended %s after its lease ran out and another worker took the "
            "event (or it was deleted); its outcome is not recorded.",
            event.source, event.event_id, event.attempts, outcome["status"],
        )  # fmt: skip
        return f"{outcome['status']}, not recorded (lease lost): {event.source}:{event.event_id}"
    return f"{outcome['status']}: {event.source}:{event.event_id}"


def retry_due_events(*, now: datetime | None = None, time_budget: float = SWEEP_TIME_BUDGET) -> int:
    """Process failed events due for a retry and received events whose task was lost; returns how many.

    Stops starting new events after ``time_budget`` seconds, so that the task ends within the task queue's
    timeout even when handlers are slow (an unreachable RPC); the next run goes on.
    """
    now = now or timezone.now()
    deadline = time.monotonic() + time_budget
    due = (
        Q(status=WebhookEventStatus.FAILED, next_attempt_at__lte=now)
        # Never claimed: its task was lost.
        | Q(status=WebhookEventStatus.RECEIVED, next_attempt_at__isnull=True, received_at__lte=now - STALE_RECEIVED)
        # Claimed, and the lease has run out: its worker died.
        | Q(status=WebhookEventStatus.RECEIVED, next_attempt_at__lte=now)
    )
    pks = list(WebhookEvent.objects.filter(due).order_by("received_at").values_list("pk", flat=True)[:SWEEP_BATCH])
    for done, pk in enumerate(pks):
        if time.monotonic() > deadline:
            return done
        process_event(pk, now=now)
    return len(pks)


def reprocess(events: Iterable[WebhookEvent]) -> int:
    """Queue the handler to run again on ``events`` (admin action); returns how many were queued."""
    pks = [event.pk for event in events]
    for pk in pks:
        transaction.on_commit(functools.partial(_enqueue_or_leave_to_sweep, pk, force=True))
    return len(pks)


def purge_old_logs(*, now: datetime | None = None, time_budget: float = SWEEP_TIME_BUDGET) -> dict[str, int]:
    """Delete what the incoming-webhook log no longer needs after ``WEBHOOK_LOG_RETENTION``; return the counts.

    - every :class:`WebhookRequest` received before the cut-off (the audit log);
    - every *processed* :class:`WebhookEvent` received before the cut-off that no request has mentioned since
      (no retry, no duplicate). Failed events stay until an operator has dealt with them, and events not yet
      handled stay until they are.

    A forgotten event id is accepted again if its sender ever sends it again: deduplication holds for the
    retention period after the sender's last attempt. That is far longer than any sender retries (Standard
    Webhooks senders for about a day, this app's own outgoing schedule for about three); a replay older than the
    signature's timestamp tolerance is refused anyway, and handlers must be idempotent. Keeping every event id
    forever would make the table grow without end.

    Deletes in batches of :data:`PURGE_BATCH` rows and stops after ``time_budget`` seconds (the next run goes
    on). Safe to run in several workers at once: a row deleted twice is deleted once.
    """
    now = now or timezone.now()
    cutoff = now - gateway_settings.WEBHOOK_LOG_RETENTION
    deadline = time.monotonic() + time_budget
    mentioned_since = WebhookRequest.objects.filter(event=OuterRef("pk"), received_at__gte=cutoff)
    old = {
        "requests": WebhookRequest.objects.filter(received_at__lt=cutoff),
        "events": WebhookEvent.objects.filter(status=WebhookEventStatus.PROCESSED, received_at__lt=cutoff).exclude(
            Exists(mentioned_since)
        ),
    }
    deleted = dict.fromkeys(old, 0)
    for name, rows in old.items():
        while time.monotonic() < deadline:
            pks = list(rows.values_list("pk", flat=True)[:PURGE_BATCH])
            if not pks:
                break
            # Counted from the query's own model only (an event's delete also unlinks its requests).
            deleted[name] += rows.model._default_manager.filter(pk__in=pks).delete()[1].get(rows.model._meta.label, 0)
    return deleted


def _claim(event_pk: int, *, now: datetime, force: bool) -> WebhookEvent | str:
    """Take the event for this worker (step 1 of :func:`process_event`): the event, or why it is not taken."""
    with transaction.atomic():
        # NO KEY: a duplicate's log row referencing this event holds a KEY SHARE lock on it (foreign key
        # check) for a moment; a plain FOR UPDATE would take that for "another worker has it" and skip.
        claim = WebhookEvent.objects.select_for_update(skip_locked=True, no_key=True)
        event = claim.filter(pk=event_pk).first()
        if event is None:
            return "skipped: being processed by another worker, or deleted"
        if _claimed(event):
            assert event.next_attempt_at is not None  # a claim is a lease until then
            if event.next_attempt_at > now:
                return "skipped: being processed by another worker"
            if not force:
                # The worker that claimed it died (killed, stopped by the task timeout): that attempt failed.
                event.status = WebhookEventStatus.FAILED
                event.result = (
                    f"Attempt {event.attempts} did not finish: its worker stopped before its lease ran out at "
                    f"{event.next_attempt_at.isoformat()} (killed, timed out, or lost the database)."
                )
                event.next_attempt_at = _next_attempt(event.attempts, now)
                event.save(update_fields=["status", "result", "next_attempt_at"])
                return f"failed: {event.source}:{event.event_id} (attempt {event.attempts} did not finish)"
        elif not force:
            if event.status == WebhookEventStatus.PROCESSED:
                return "skipped: already processed"
            retry_at = event.next_attempt_at
            if event.status == WebhookEventStatus.FAILED and (retry_at is None or retry_at > now):
                return "skipped: not due for a retry"
        event.attempts += 1
        event.status = WebhookEventStatus.RECEIVED
        event.next_attempt_at = now + LEASE
        event.result = (
            f"Processing: attempt {event.attempts} started at {now.isoformat()}; if it has not ended by "
            f"{event.next_attempt_at.isoformat()}, it counts as failed."
        )
        event.save(update_fields=["status", "result", "next_attempt_at", "attempts"])
    return event


def _find_event(source: str, event_id: str) -> tuple[int, bytes] | None:
    """(pk, body) of the stored event, or None."""
    row = hotpath.select_one(WebhookEvent, ["id", "body"], source=source, event_id=event_id)
    return None if row is None else (row[0], row[1])


def _claimed(event: WebhookEvent) -> bool:
    # A claim is the only way an event is "received" with a next attempt time: the end of its lease.
    return event.status == WebhookEventStatus.RECEIVED and event.next_attempt_at is not None


def _next_attempt(attempts: int, now: datetime) -> datetime | None:
    """Backoff from the schedule: the n-th failure waits schedule[n-1]; past its end, no more retries."""
    schedule = gateway_settings.WEBHOOK_INCOMING_RETRY_SCHEDULE
    if attempts > len(schedule):
        return None
    return now + timedelta(seconds=schedule[attempts - 1])
