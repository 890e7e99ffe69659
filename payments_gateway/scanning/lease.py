"""One scanner per network: a lease on the network's :class:`ChainCursor` row.

A process takes the lease with ``select_for_update(skip_locked)`` when it is free or expired, renews it with
every range it commits, and releases it when the scan ends. Every write of a scan happens in a transaction that
first locks the cursor row and checks that the lease is still this process's and the cursor has not moved
(:meth:`Lease.lock`), so a process whose lease was taken over stops instead of writing beside the new owner.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import ChainCursor
from .result import LeaseLost, ScanError

# A scan holds its lease this long without progress before another process may take over.
LEASE_TTL = timedelta(minutes=2)


class Lease:
    """This process's hold on the cursor of network ``network``, and where its scan stands (``number``/``hash``)."""

    def __init__(self, network: str, owner: str, cursor: ChainCursor) -> None:
        self.network = network
        self.owner = owner
        self.number = cursor.block_number
        self.hash = cursor.block_hash
        # Where the slower reading of old addresses' token transfers stands (None: not started).
        self.old_number = cursor.old_block_number
        self._cursor = cursor

    def lock(self) -> ChainCursor:
        """Lock the cursor row (inside ``transaction.atomic()``); :class:`ScanError` if the lease was lost or the
        cursor moved under this scan."""
        cursor = ChainCursor.objects.select_for_update().get(network=self.network)
        if cursor.lease_owner != self.owner:
            raise LeaseLost(f"network {self.network!r}: lease lost to {cursor.lease_owner or 'nobody'}; stopping")
        if cursor.block_number != self.number and self.number >= 0 and cursor.block_number >= 0:
            raise ScanError(f"network {self.network!r}: cursor moved to {cursor.block_number} by someone else")
        self._cursor = cursor
        return cursor

    def move(self, number: int, block_hash: str, head: int | None) -> None:
        """Move the cursor (after :meth:`lock`, in the same transaction) and renew the lease. The old addresses'
        cursor starts where the first range starts, and never stays above the cursor (a rewind takes it back)."""
        cursor = self._cursor
        if self.old_number is None or self.old_number > number:
            self.old_number = min(self.number, number)
        cursor.block_number, cursor.block_hash = number, block_hash
        cursor.old_block_number = self.old_number
        cursor.head_block = head
        cursor.lease_expires = timezone.now() + LEASE_TTL
        cursor.save(
            update_fields=["block_number", "block_hash", "old_block_number", "head_block", "lease_expires", "updated"]
        )
        self.number, self.hash = number, block_hash

    def move_old(self, number: int) -> None:
        """Move the old addresses' cursor (after :meth:`lock`, in the same transaction) and renew the lease."""
        cursor = self._cursor
        cursor.old_block_number = self.old_number = number
        cursor.lease_expires = timezone.now() + LEASE_TTL
        cursor.save(update_fields=["old_block_number", "lease_expires", "updated"])


def acquire(network: str) -> Lease | None:
    """The lease of ``network`` for this process, or None while another process holds it."""
    owner = _owner_id()
    try:
        with transaction.atomic():
            ChainCursor.objects.get_or_create(network=network)
    except IntegrityError:
        pass  # another process created it first
    now = timezone.now()
    with transaction.atomic():
        cursor = ChainCursor.objects.select_for_update(skip_locked=True).filter(network=network).first()
        if cursor is None:
            return None  # locked by a scanner committing right now
        if cursor.lease_owner and cursor.lease_owner != owner and cursor.lease_expires and cursor.lease_expires > now:
            return None
        cursor.lease_owner, cursor.lease_expires = owner, now + LEASE_TTL
        cursor.save(update_fields=["lease_owner", "lease_expires", "updated"])
    return Lease(network, owner, cursor)


def release(lease: Lease, *, error: str, head: int | None) -> None:
    """Give the lease up, recording the scan's error (empty: it succeeded) and the head it saw."""
    fields: dict[str, Any] = {"lease_owner": "", "lease_expires": None, "last_error": error[:2000]}
    if not error:
        fields["last_scan_at"] = timezone.now()
    if head is not None:
        fields["head_block"] = head
    ChainCursor.objects.filter(network=lease.network, lease_owner=lease.owner).update(**fields)


def note(lease: Lease, *, error: str, head: int | None) -> None:
    """Record a scan's outcome like :func:`release`, but keep (and renew) the lease: a follower scans again at the
    next head. :class:`LeaseLost` if another process took the lease over meanwhile."""
    fields: dict[str, Any] = {"lease_expires": timezone.now() + LEASE_TTL, "last_error": error[:2000]}
    if not error:
        fields["last_scan_at"] = timezone.now()
    if head is not None:
        fields["head_block"] = head
    if not ChainCursor.objects.filter(network=lease.network, lease_owner=lease.owner).update(**fields):
        raise LeaseLost(f"network {lease.network!r}: lease lost; stopping")


def is_free(network: str, now: datetime | None = None) -> bool:
    """No process holds ``network``'s lease (or its holder let it expire)."""
    now = now or timezone.now()
    held = ChainCursor.objects.filter(network=network, lease_expires__gt=now).exclude(lease_owner="")
    return not held.exists()


# Tells this process from an earlier one that had the same pid (after a restart, or on another machine).
_PROCESS_TOKEN = uuid.uuid4().hex[:12]


def _owner_id() -> str:
    """The same for every scan of one thread of one process: a scan that died without releasing the lease (its
    database connection dropped) leaves it to the next scan of the same thread, instead of stalling the network
    until the lease runs out. Another thread or process is another owner."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{threading.get_native_id()}:{_PROCESS_TOKEN}"
