"""The outbox: write an :class:`Event` and its webhook deliveries in the caller's transaction.

Call :func:`emit` inside the ``transaction.atomic()`` block that makes the state change, so a rolled-back
change leaves no event and a committed one always has its event and deliveries. A caller that inserts the event
with the rows it is about (a new session, ``hotpath.insert_together``) takes it from :func:`new_event` and then
calls :func:`queue_deliveries`, in the same transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from .hotpath import select_all
from .models import CheckoutSession, Event, WebhookDelivery, WebhookEndpoint
from .models.outgoing import EVENT_TYPES, wants
from .signals import event_emitted


def emit(
    event_type: str, data: dict[str, Any], *, session: CheckoutSession | None = None, livemode: bool = True
) -> Event:
    """Record ``event_type`` with ``data`` and queue one delivery per active endpoint that wants it."""
    event = new_event(event_type, data, session=session, livemode=livemode)
    # No savepoint: the event belongs to the caller's change, and a failure here fails that change as a whole.
    with transaction.atomic(savepoint=False):
        event.save(force_insert=True)
        queue_deliveries(event)
    return event


def new_event(
    event_type: str, data: dict[str, Any], *, session: CheckoutSession | None = None, livemode: bool = True
) -> Event:
    """The unsaved :class:`Event`: for a caller that inserts it with the rows it is about (then
    :func:`queue_deliveries`, in the same transaction). ``ValueError`` for an unknown type."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    return Event(type=event_type, data=data, session=session, livemode=livemode)


def queue_deliveries(event: Event) -> None:
    """One delivery of the saved ``event`` per active endpoint that wants it, and ``event_emitted`` on commit.
    Call inside the transaction that saved the event."""
    endpoints = [pk for pk, enabled in select_all(WebhookEndpoint, ["id", "enabled_events"], active=True)
                 if wants(enabled, event.type)]  # fmt: skip
    if endpoints:
        WebhookDelivery.objects.bulk_create(WebhookDelivery(event=event, endpoint_id=pk) for pk in endpoints)
    transaction.on_commit(lambda: _after_commit(event, len(endpoints)))


def _after_commit(event: Event, deliveries: int) -> None:
    event_emitted.send(sender=Event, event=event, deliveries=deliveries)
