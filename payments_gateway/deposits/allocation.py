"""Handing out deposit addresses: one session per address at a time, safe with any number of processes.

An address is busy until its last session's expiry plus the late payment window (``busy_until``): until then a
late payment to it must still be credited to that session, so it is not given to anyone else. After that it is
reused (oldest first), which keeps the set of addresses the scanner watches small. Reuse waits a further
``CLOCK_SLACK``: the scanner credits a payment to the newest session created up to ``CLOCK_SLACK`` after the
payment's block time, so a late payment for the old session mined just before the reuse must not find the new
one. When none is free, the next index is taken from the network's ``AddressCounter`` row under a row lock and
turned into an address by the network's deposit scheme.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from ..conf import gateway_settings
from ..models import AddressCounter, CheckoutSession, DepositAddress, SessionStatus
from .base import scheme_for

# Block timestamps and the server clock may differ a little: the scanner credits a payment mined up to this long
# before a session's creation to that session (here so that allocation and the scanner share one value).
CLOCK_SLACK = timedelta(minutes=5)


def allocate_address(network: str, busy_until: datetime, *, now: datetime | None = None) -> DepositAddress:
    """A deposit address on ``network`` reserved until ``busy_until``. Call inside ``transaction.atomic()``.

    Reuses the address whose ``busy_until`` passed longest ago, by more than ``CLOCK_SLACK`` (locked with
    ``skip_locked``, so concurrent callers take different ones and never wait on each other), or makes the address
    of the network's next index with its deposit scheme.
    Raises ``ValueError`` for an unknown network and ``TransactionManagementError`` outside a transaction.
    """
    gateway_settings.network(network)  # ValueError naming the configured networks
    if timezone.is_naive(busy_until):
        raise ValueError(f"busy_until must be timezone-aware, not {busy_until!r}")
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError(
            "allocate_address() must run inside transaction.atomic(): the address is reserved by the caller's "
            "transaction and released if it rolls back"
        )
    now = now or timezone.now()
    address = _reuse(network, busy_until, now)
    if address is None:
        address = _derive_next(network, busy_until, now)
    return address


def _reuse(network: str, busy_until: datetime, now: datetime) -> DepositAddress | None:
    # An address whose last session is somehow still open is never reused, whatever busy_until says.
    # (A session still choosing its payment method has no address: NULL would empty the NOT IN below.)
    open_sessions = CheckoutSession.objects.filter(status=SessionStatus.OPEN, deposit_address__isnull=False).values(
        "deposit_address_id"
    )
    # CLOCK_SLACK past busy_until: a payment to the old session mined just before the reuse would otherwise
    # be within the slack of the new session's creation and be credited to it.
    free_before = now - CLOCK_SLACK
    # Only an address the network's current scheme would make: after the merchant changes the scheme or the
    # forwarder treasury, an old address (whose funds go to the old wallet or treasury) is never handed out again.
    scheme = scheme_for(network)
    free = (
        DepositAddress.objects.select_for_update(skip_locked=True)
        .filter(network=network, scheme=_scheme_name(network), **scheme.stored_fields())
        .filter(Q(busy_until__lt=free_before) | Q(busy_until__isnull=True))
        .exclude(pk__in=open_sessions)
        .order_by(F("busy_until").asc(nulls_first=True), "index")
    )
    candidate = free.first()
    if candidate is None:
        return None
    # The conditional update is the claim where rows cannot be locked (SQLite, which serialises writers).
    claimed = (
        DepositAddress.objects.filter(pk=candidate.pk)
        .filter(Q(busy_until__lt=free_before) | Q(busy_until__isnull=True))
        .update(busy_until=busy_until)
    )
    if not claimed:
        return None
    candidate.busy_until = busy_until
    return candidate


def _derive_next(network: str, busy_until: datetime, now: datetime) -> DepositAddress:
    scheme = scheme_for(network)
    counter, created = AddressCounter.objects.select_for_update().get_or_create(network=network)
    index = counter.next_index
    if created or index == 0:
        # A counter lost or reset must not hand out an index that already has an address.
        highest = DepositAddress.objects.filter(network=network).aggregate(m=Max("index"))["m"]
        if highest is not None:
            index = max(index, highest + 1)
    counter.next_index = index + 1
    counter.save(update_fields=["next_index"])
    return DepositAddress.objects.create(
        network=network,
        index=index,
        scheme=_scheme_name(network),
        address=scheme.address(index),
        busy_until=busy_until,
        created=now,
        **scheme.stored_fields(),
    )


def _scheme_name(network: str) -> str:
    scheme = scheme_for(network)
    return scheme.name or scheme.network.deposit_scheme
