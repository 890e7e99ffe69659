"""Handing out deposit addresses: a new address for every session, safe with any number of processes.

No address is ever given to a second session: a customer who pays an old address again (from their wallet's history,
an exchange's address book) must never be credited to someone else's checkout. The payment is recorded against the
session the address was made for (an unmatched transfer, for the merchant to credit or refund). Each session takes
the network's next index from its ``AddressCounter`` row under a row lock, and the network's deposit scheme turns it
into an address, held by its session (and tied to it by :func:`bind_to_session` when the session lets it go for
another). ``busy_until`` (the session's expiry plus the late payment window) says until when the scanner looks at
the address every block; after that it looks at the slower ``OLD_ADDRESS_SCAN_INTERVAL``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from ..conf import gateway_settings
from ..hotpath import take_next
from ..models import AddressCounter, DepositAddress
from .base import scheme_for

# Block timestamps and the server clock may differ a little: the scanner credits a payment mined up to this long
# before a session's creation to that session (here so that allocation and the scanner share one value).
CLOCK_SLACK = timedelta(minutes=5)


def allocate_address(
    network: str, busy_until: datetime, *, now: datetime | None = None, save: bool = True
) -> DepositAddress:
    """A new deposit address on ``network``, watched every block until ``busy_until``. Call inside
    ``transaction.atomic()``: the index is taken by the caller's transaction and released if it rolls back.
    ``save=False``: the address is returned unsaved, for the caller to insert in that same transaction (with the
    rows that refer to it, ``hotpath.insert_together``).

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
    address = _derive_next(network, busy_until, now or timezone.now())
    if save:
        address.save(force_insert=True)
    return address


def bind_to_session(address_id: int, session_id: int) -> None:
    """Record that the address ``address_id`` was made for the session ``session_id`` (``DepositAddress.made_for``),
    when the session lets it go for another one (its customer switched network). The session keeps only its
    current address; this ties the old one to it, so a payment there is still recorded against it. An address a
    session holds needs no record: the holder is the session it was made for (no address is given to two)."""
    DepositAddress.objects.filter(pk=address_id, made_for__isnull=True).update(made_for_id=session_id)


def _derive_next(network: str, busy_until: datetime, now: datetime) -> DepositAddress:
    scheme = scheme_for(network)
    index = take_next(AddressCounter, "next_index", network=network)
    if index is None or index == 0:
        index = _first_index(network, taken=index is not None)
    return DepositAddress(
        network=network,
        index=index,
        scheme=_scheme_name(network),
        address=scheme.address(index),
        busy_until=busy_until,
        created=now,
        **scheme.stored_fields(),
    )


def _first_index(network: str, *, taken: bool) -> int:
    """The network's counter is new (or was reset): create or lock it, and start after any address stored.
    ``taken``: this transaction already moved the counter past the index it got (0)."""
    counter, created = AddressCounter.objects.select_for_update().get_or_create(network=network)
    index = counter.next_index - 1 if taken else counter.next_index
    if created or index == 0:
        # A counter lost or reset must not hand out an index that already has an address.
        highest = DepositAddress.objects.filter(network=network).aggregate(m=Max("index"))["m"]
        if highest is not None:
            index = max(index, highest + 1)
    counter.next_index = index + 1
    counter.save(update_fields=["next_index"])
    return index


def _scheme_name(network: str) -> str:
    scheme = scheme_for(network)
    return scheme.name or scheme.network.deposit_scheme
