"""django-q2 task functions: thin, idempotent, each calling a service. Schedule the periodic ones with
``django_q.models.Schedule`` (see the README)."""

from __future__ import annotations

# --- incoming webhooks [branch incoming] -------------------------------------------------------------


def process_incoming_webhook(event_pk: int, force: bool = False) -> str:
    """Run the handler of one stored incoming event (queued by the receiver and the admin)."""
    from .webhooks.incoming.processing import process_event

    return process_event(event_pk, force=force)


def retry_incoming_webhooks() -> int:
    """Every minute: retry failed incoming events that are due, and pick up any whose task was lost."""
    from .webhooks.incoming.processing import retry_due_events

    return retry_due_events()


# --- end incoming webhooks ---------------------------------------------------------------------------
