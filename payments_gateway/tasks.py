"""django-q2 task functions. Thin: each calls a service and is safe to run twice or concurrently."""

# --- outgoing webhooks --------------------------------------------------------------------------------------

# Stay well inside Q_CLUSTER["timeout"] (60 s in the example shop), even when endpoints hang.
WEBHOOK_TIME_BUDGET = 30


def deliver_webhooks(limit: int = 1000) -> int:
    """Periodic: deliver due webhooks in batches until none is due, ``limit`` were attempted or time is up."""
    import time

    from payments_gateway.webhooks.outgoing.delivery import DEFAULT_BATCH, deliver_due

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
    from payments_gateway.webhooks.outgoing.delivery import deliver_due

    return deliver_due(event_id=event_id, time_budget=WEBHOOK_TIME_BUDGET)
