"""django-q2 task functions. Thin: each calls a service and is safe to run twice or in several workers."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


# --- chain scanner (branch scanner) ------------------------------------------------------------------------


def follow_networks() -> list[str]:
    """Periodic: start a follower (:func:`follow_network`) for every network nobody follows; return their names.

    Normally each follower queues its successor, so this only starts the first ones and replaces a follower whose
    worker died (once its lease has expired)."""
    from .scanning.follow import unfollowed_networks

    started = unfollowed_networks()
    for name in started:
        _queue_follower(name)
    return started


def follow_network(name: str, successor: bool = False) -> dict[str, Any]:
    """Scan network ``name`` at every new head for the follower's time budget (``scanning/follow.py``); shortly
    before it ends, queue the next follower, which waits for the lease and takes over without a gap. One network
    per task: a slow network delays no other."""
    from .scanning.follow import FOLLOW_SECONDS, follow_budget
    from .scanning.follow import follow_network as follow

    outcome = follow(name, follow_budget(), handoff=lambda: _queue_follower(name, successor=True),
                     wait_for_lease=FOLLOW_SECONDS if successor else 0)  # fmt: skip
    return {"status": outcome.status, "scans": outcome.scans, "errors": outcome.errors, "heads": outcome.heads_by}


def _queue_follower(name: str, *, successor: bool = False) -> None:
    from django_q.conf import Conf
    from django_q.tasks import async_task

    if successor and Conf.SYNC:
        # Synchronous django-q2 (tests, debugging) would run the successor inside this follower, and that one its
        # own successor, without end: the schedule starts the next follower instead.
        return
    async_task("payments_gateway.tasks.follow_network", name, successor, task_name=f"follow {name}")


def scan_all_networks() -> dict[str, Any]:
    """Scan every configured network once, each in isolation: one failing network never stalls the others (the
    scanner's schedule before followers; kept for ``manage.py`` shells and the benchmark's baseline).

    Returns ``{network: summary or "error: ..."}``; the error of a network is also in its
    ``ChainCursor.last_error`` and the log.
    """
    from .conf import gateway_settings
    from .models import ChainCursor
    from .scanning import scan_network

    outcome: dict[str, Any] = {}
    for name in sorted(gateway_settings.networks):
        try:
            result = scan_network(name)
        except Exception as exc:  # isolation: log, record, next network
            logger.error("scan_all_networks: network %r failed: %s", name, exc)
            ChainCursor.objects.filter(network=name).update(last_error=f"{type(exc).__name__}: {exc}"[:2000])
            outcome[name] = f"error: {exc}"
            continue
        outcome[name] = {"status": result.status, "to_block": result.to_block, "transfers": result.transfers}
    return outcome


# --- checkout sessions (branch checkout) -------------------------------------------------------------------


def expire_sessions() -> int:
    """Periodic: expire open sessions past ``expires_at`` (several workers may run it: rows are claimed with
    ``skip_locked``). Reads expire a due session too, so a page never waits for this task."""
    from .services.payments import expire_due_sessions

    total = 0
    while count := expire_due_sessions():
        total += count
    return total


def purge_idempotency_keys() -> int:
    """Periodic: forget ``Idempotency-Key`` records older than ``IDEMPOTENCY_KEY_TTL``."""
    from .api.idempotency import purge_expired_keys

    return purge_expired_keys()


# --- subscriptions ---------------------------------------------------------------------------------------------


def renew_subscriptions() -> dict[str, int]:
    """Periodic: open the renewal sessions that are due, and move subscriptions that time changes (past due,
    canceled or unpaid after the grace period, ended at period end). Idempotent; safe in several workers."""
    from .services.subscriptions import renew_due_subscriptions

    return renew_due_subscriptions()


# --- outgoing webhooks (branch outgoing) -------------------------------------------------------------------

# Stay well inside Q_CLUSTER["timeout"] (60 s in the example shop), even when endpoints hang.
WEBHOOK_TIME_BUDGET = 30


def deliver_webhooks(limit: int = 1000) -> int:
    """Periodic: deliver due webhooks in batches until none is due, ``limit`` were attempted or time is up."""
    import time

    from .webhooks.outgoing.delivery import DEFAULT_BATCH, deliver_due

    deadline = time.monotonic() + WEBHOOK_TIME_BUDGET
    done = 0
    while done < limit and time.monotonic() < deadline:
        attempted = deliver_due(
            limit=min(DEFAULT_BATCH, limit - done), time_budget=max(0.0, deadline - time.monotonic())
        )
        if not attempted:
            break
        done += attempted
    return done


def deliver_event_webhooks(event_id: str) -> int:
    """Right after an event commits: deliver it to its endpoints without waiting for the periodic run."""
    from .webhooks.outgoing.delivery import deliver_due

    return deliver_due(event_id=event_id, time_budget=WEBHOOK_TIME_BUDGET)


# --- incoming webhooks (branch incoming) -------------------------------------------------------------------


def process_incoming_webhook(event_pk: int, force: bool = False) -> str:
    """Run the handler of one stored incoming event (queued by the receiver and the admin)."""
    from .webhooks.incoming.processing import process_event

    return process_event(event_pk, force=force)


def retry_incoming_webhooks() -> int:
    """Periodic: retry failed incoming events that are due, and pick up any whose task was lost."""
    from .webhooks.incoming.processing import retry_due_events

    return retry_due_events()


def purge_incoming_webhook_logs() -> dict[str, int]:
    """Periodic: forget incoming-webhook log rows older than ``WEBHOOK_LOG_RETENTION`` (see ``purge_old_logs``)."""
    from .webhooks.incoming.processing import purge_old_logs

    return purge_old_logs()


# --- forwarder sweeps (issue 10) ---------------------------------------------------------------------------


def sweep_all_networks() -> dict[str, Any]:
    """Periodic: on every forwarder network, bring pending sweeps up to date and send the batches the sweep policy
    says are due. Each network in isolation; a relayer low on gas or a wrong factory is logged and the funds
    wait at their deposit addresses."""
    from .conf import gateway_settings
    from .services.sweeps import run_sweeps

    outcome: dict[str, Any] = {}
    for name, config in sorted(gateway_settings.networks.items()):
        if config.deposit_scheme != "forwarder":
            continue
        try:
            run = run_sweeps(name)
        except Exception as exc:  # isolation: log, next network
            logger.error("sweep_all_networks: network %r failed: %s", name, exc)
            outcome[name] = f"error: {exc}"
            continue
        outcome[name] = {"sent": [s.tx_hash for s in run.sent], "refreshed": run.refreshed, "problems": run.problems}
    return outcome
