"""Continuous scanning with only the web server and ``qcluster``: a follower per network.

A follower is one django-q2 task for one network. It takes the network's lease (:mod:`.lease`: still exactly one
scanner per network, whichever worker or machine runs it), scans from the cursor to the head, then waits for the
next head (:class:`~payments_gateway.chain.heads.Heads`: a WebSocket subscription where the network has a
``ws_url``, else polling) and scans again, until its time budget ends; shortly before, it queues its successor
(``tasks.follow_network``), which takes the lease the moment it is given up. Each network has its own follower, so
a slow or dead network never delays another. The periodic ``follow_networks`` task starts a follower for any
network nobody follows (a worker that died, a fresh install), so the chain of followers never stays broken longer
than the schedule's minute plus the lease's expiry.

The budget stays below django-q2's ``timeout`` (:func:`follow_budget`), which would otherwise kill the worker
mid-scan; a range is committed whole or not at all, so even that loses nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections

from ..chain.heads import Heads
from ..chain.rpc import RPCError, client_for
from ..conf import gateway_settings
from . import lease as leases
from .result import LeaseLost, ScanError
from .scan import scan_network

logger = logging.getLogger(__name__)

#: Seconds a follower waits after a failed scan before it tries again (the RPC may be down).
ERROR_PAUSE = 2.0
#: How long one follower runs. Short, because a stopping ``qcluster`` waits for its workers' tasks to end (a deploy
#: or Ctrl-C waits at most this long); its successor takes over without a gap (:data:`HANDOFF_SECONDS`).
FOLLOW_SECONDS = 10
#: Seconds before its end a follower queues its successor, which then waits for the lease.
HANDOFF_SECONDS = 2.0
#: django-q2's ``timeout`` when Q_CLUSTER sets none, and what a follower leaves of it for its own end.
DEFAULT_TIMEOUT, TIMEOUT_MARGIN = 60, 10


@dataclass
class FollowResult:
    """What one follower did: ``status`` "followed" (its budget ran out), "busy" (another process follows the
    network) or "lost" (its lease was taken over: it stopped at once)."""

    network: str
    status: str
    scans: int = 0
    errors: int = 0
    heads_by: str = "poll"  # "ws" when the last head came by WebSocket, "poll-fallback" when it had failed


def follow_network(
    name: str, seconds: float, *, handoff: Callable[[], None] | None = None, wait_for_lease: float = 0
) -> FollowResult:
    """Follow network ``name`` for ``seconds``: scan at every new head, holding its lease throughout.

    ``handoff`` is called once, :data:`HANDOFF_SECONDS` before the end (it queues the successor, which waits up to
    ``wait_for_lease`` seconds for this follower to give the lease up: no block falls between two followers).
    """
    network = gateway_settings.network(name)
    lease = _acquire(name, wait_for_lease)
    if lease is None:
        return FollowResult(network=name, status="busy")
    outcome = FollowResult(network=name, status="followed")
    heads = Heads(network, client_for(network))
    deadline = time.monotonic() + seconds
    error = ""
    try:
        while (left := deadline - time.monotonic()) > 0:
            if handoff is not None and left <= HANDOFF_SECONDS:
                _hand_off(name, handoff)
                handoff = None
            try:
                scan_network(name, max_seconds=left, lease=lease)
                outcome.scans += 1
                error = ""
            except LeaseLost:
                outcome.status = "lost"
                break
            except Exception as exc:  # recorded in the cursor by scan_network; try again after a pause
                outcome.errors += 1
                error = f"{type(exc).__name__}: {exc}"
                # A dropped database connection (a restart, a failover) stays broken in this long task until it is
                # replaced: without this every later scan would fail until the lease ran out.
                close_old_connections()
                time.sleep(max(min(ERROR_PAUSE, deadline - time.monotonic()), 0))
                continue
            try:
                # Wake in time to hand off (the successor needs a moment to be picked up by a worker).
                heads.wait(lease.number, max(deadline - time.monotonic() - (HANDOFF_SECONDS if handoff else 0), 0))
            except (RPCError, ValueError, TypeError) as exc:
                # No head, or a head that is not a number: the next scan records the error in the cursor.
                logger.warning("network %r: reading the head failed: %s", name, exc)
                time.sleep(max(min(ERROR_PAUSE, deadline - time.monotonic()), 0))
            outcome.heads_by = heads.mode
    finally:
        heads.close()
        if outcome.status != "lost":
            close_old_connections()
            leases.release(lease, error=error, head=None)
    return outcome


def _hand_off(name: str, handoff: Callable[[], None]) -> None:
    """Queue the successor; a broker that refuses is logged (the next ``follow_networks`` starts one)."""
    try:
        handoff()
    except Exception as exc:
        logger.warning("network %r: could not queue the next follower (%s); the schedule will start one", name, exc)


def follow_budget() -> float:
    """Seconds a follower runs: :data:`FOLLOW_SECONDS`, or less when django-q2's ``Q_CLUSTER["timeout"]`` is short
    (less :data:`TIMEOUT_MARGIN`, at least half of it), so the cluster never kills a follower that is scanning."""
    from django.conf import settings

    timeout = getattr(settings, "Q_CLUSTER", {}).get("timeout") or DEFAULT_TIMEOUT
    return float(min(FOLLOW_SECONDS, max(timeout - TIMEOUT_MARGIN, timeout / 2)))


def _acquire(name: str, wait: float) -> leases.Lease | None:
    deadline = time.monotonic() + wait
    while (lease := leases.acquire(name)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return lease


def unfollowed_networks() -> list[str]:
    """The configured networks whose lease nobody holds: no follower (nor any other scan) runs for them."""
    return [name for name in sorted(gateway_settings.networks) if leases.is_free(name)]


__all__ = ["FollowResult", "ScanError", "follow_budget", "follow_network", "unfollowed_networks"]
