"""django-q2 schedules of the gateway's periodic tasks, created idempotently by :func:`ensure_schedules`.

Runs after ``migrate`` (post_migrate) and from ``manage.py payments_gateway_schedules``. Each branch adds its
periodic task as one entry of :data:`SCHEDULES`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.db import transaction

#: name → Schedule fields. Minute granularity is django-q2's: the scanner is continuous because each network's
#: follower queues its successor; the schedule only starts a follower where none runs (scanning/follow.py).
SCHEDULES: dict[str, dict[str, Any]] = {
    "payments_gateway.follow_networks": {
        "func": "payments_gateway.tasks.follow_networks",
        "schedule_type": "I",  # Schedule.MINUTES
        "minutes": 1,
    },
    # branch checkout
    "payments_gateway.expire_sessions": {
        "func": "payments_gateway.tasks.expire_sessions",
        "schedule_type": "I",
        "minutes": 1,
    },
    "payments_gateway.purge_idempotency_keys": {
        "func": "payments_gateway.tasks.purge_idempotency_keys",
        "schedule_type": "H",  # Schedule.HOURLY
    },
    # subscriptions: renewals opened RENEWAL_NOTICE before a period ends; past due, grace and period ends
    "payments_gateway.renew_subscriptions": {
        "func": "payments_gateway.tasks.renew_subscriptions",
        "schedule_type": "I",
        "minutes": 1,
    },
    # branch outgoing: retries and anything an after-commit kick missed (new events are kicked at once)
    "payments_gateway.deliver_webhooks": {
        "func": "payments_gateway.tasks.deliver_webhooks",
        "schedule_type": "I",
        "minutes": 1,
    },
    # branch incoming: retries of failed incoming events, and events whose task was lost
    "payments_gateway.retry_incoming_webhooks": {
        "func": "payments_gateway.tasks.retry_incoming_webhooks",
        "schedule_type": "I",
        "minutes": 1,
    },
    # the incoming-webhook log is kept for WEBHOOK_LOG_RETENTION, then forgotten
    "payments_gateway.purge_incoming_webhook_logs": {
        "func": "payments_gateway.tasks.purge_incoming_webhook_logs",
        "schedule_type": "H",
    },
    # forwarder networks: pending sweeps confirmed, due batches sent (the policy keeps it from sweeping dust)
    "payments_gateway.sweep_all_networks": {
        "func": "payments_gateway.tasks.sweep_all_networks",
        "schedule_type": "I",
        "minutes": 1,
    },
}


#: Schedules of earlier versions, deleted by :func:`ensure_schedules` (the once-a-minute scan became followers).
RETIRED = ["payments_gateway.scan_all_networks"]


def ensure_schedules() -> list[str]:
    """Create or update every schedule of :data:`SCHEDULES` (one row per name), delete the :data:`RETIRED` ones;
    return the names created."""
    from django_q.models import Schedule

    created = []
    with transaction.atomic():
        Schedule.objects.filter(name__in=RETIRED).delete()
        for name, fields in SCHEDULES.items():
            rows = list(Schedule.objects.select_for_update().filter(name=name).order_by("pk"))
            if not rows:
                Schedule.objects.create(name=name, repeats=-1, **fields)
                created.append(name)
                continue
            first, duplicates = rows[0], rows[1:]
            for duplicate in duplicates:
                duplicate.delete()
            changed = {k: v for k, v in fields.items() if getattr(first, k) != v}
            if changed:
                Schedule.objects.filter(pk=first.pk).update(**changed)
    return created


def ensure_schedules_after_migrate(sender: Any, **kwargs: Any) -> None:
    """post_migrate receiver: the schedules exist as soon as the database does."""
    from django.db.utils import DatabaseError

    # django_q's tables may not be migrated yet (a partial migrate): then the next migrate creates them.
    with contextlib.suppress(DatabaseError):
        ensure_schedules()
