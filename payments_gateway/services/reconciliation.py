"""Unmatched transfers: money that reached a deposit address but settles no session, and what the merchant does
with it.

A transfer is unmatched when it has a ``reason`` (see ``services/payments.py`` for the transfers of a session;
:func:`flag_sessionless` for those the scanner could tie to no session at all) and stays ``open`` until the
merchant resolves it, from the admin's "Needs attention" list or ``POST /api/v1/transfers/<id>/resolve/``:

- :func:`credit_transfer`: it pays a session of the same network and asset after all (that session then follows
  its usual lifecycle and events: it completes if it is now paid);
- a refund (``services/refunds.py``): the money goes back; the transfer is ``refunded`` while a refund of it is
  not canceled;
- :func:`dismiss_transfer`: nothing is done with it (a note says why: dust, a test, settled outside).

Each records who (``resolved_by``, for a person in the admin), when and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..events import emit
from ..jsonsafe import unstorable_text
from ..models import CheckoutSession, SessionStatus, Transfer, TransferReason, TransferResolution, TransferStatus
from .payloads import transfer_payload
from .payments import refresh_session

MAX_NOTE = 2000


def unmatched_transfers() -> QuerySet[Transfer]:
    """Transfers that need the merchant's attention: unmatched, open, not reverted; newest first."""
    return Transfer.objects.filter(resolution=TransferResolution.OPEN).exclude(status=TransferStatus.REVERTED)


def flag_sessionless(transfer_ids: list[int]) -> int:
    """Mark the transfers of ``transfer_ids`` that have no session and no reason yet as unmatched, and announce
    each (``transaction.unmatched``). Their address served no session when they arrived: ``closed_session``
    (``unknown_token`` for a token that is not configured). Returns how many were flagged. Call inside the
    transaction that stored them."""
    flagged = 0
    for t in Transfer.objects.filter(pk__in=transfer_ids, session__isnull=True, reason="", resolution=""):
        unknown = t.asset == t.token_address and bool(t.token_address)
        t.reason = TransferReason.UNKNOWN_TOKEN if unknown else TransferReason.CLOSED_SESSION
        t.resolution = TransferResolution.OPEN
        t.save(update_fields=["reason", "resolution"])
        emit("transaction.unmatched", transfer_payload(t))
        flagged += 1
    return flagged


def credit_transfer(
    transfer: Transfer, session: CheckoutSession, *, user: Any = None, note: str = "", now: datetime | None = None
) -> Transfer:
    """Count the unmatched ``transfer`` as a payment of ``session`` (same network and asset; not complete, not
    canceled). The session is recomputed at once and emits its events as usual. Raises ``ValidationError``
    naming the field before anything is written."""
    now = now or timezone.now()
    note = _note(note, required=False)
    with transaction.atomic():
        locked = _lock_open(transfer)
        target = CheckoutSession.objects.select_for_update().filter(pk=session.pk).first()
        if target is None:
            raise ValidationError({"session": ["no such session."]})
        _check_credit(locked, target)
        previous = locked.session_id
        locked.session = target
        _resolve(locked, TransferResolution.CREDITED, user, note, now, extra=["session"])
        refresh_session(target.pk, now=now)
        if previous and previous != target.pk:
            refresh_session(previous, now=now)
    transfer.refresh_from_db()
    return transfer


def dismiss_transfer(transfer: Transfer, *, user: Any = None, note: str = "", now: datetime | None = None) -> Transfer:
    """Leave the unmatched ``transfer`` as it is, for the reason given in ``note`` (required)."""
    now = now or timezone.now()
    note = _note(note, required=True)
    with transaction.atomic():
        locked = _lock_open(transfer)
        _resolve(locked, TransferResolution.DISMISSED, user, note, now)
    transfer.refresh_from_db()
    return transfer


def mark_refunded(transfer: Transfer, *, user: Any, note: str, now: datetime) -> None:
    """``transfer`` is being refunded (called by ``services/refunds.py`` in the refund's transaction)."""
    _resolve(transfer, TransferResolution.REFUNDED, user, note, now)


def reopen(transfer: Transfer) -> None:
    """Its last refund was canceled: the transfer needs attention again."""
    transfer.resolution = TransferResolution.OPEN
    transfer.save(update_fields=["resolution"])


# --- helpers ---------------------------------------------------------------------------------------------------


def _lock_open(transfer: Transfer) -> Transfer:
    locked = Transfer.objects.select_for_update().get(pk=transfer.pk)
    if locked.status == TransferStatus.REVERTED:
        raise ValidationError({"transfer": [f"transfer {locked.pk} was reverted (its block left the chain)."]})
    if locked.resolution != TransferResolution.OPEN:
        state = locked.get_resolution_display().lower() if locked.resolution else "matched to its session"
        raise ValidationError({"transfer": [f"transfer {locked.pk} does not need attention: it is {state}."]})
    return locked


def _check_credit(transfer: Transfer, session: CheckoutSession) -> None:
    if not session.method_chosen:
        raise ValidationError(
            {"session": [f"session {session.uuid} has no payment method yet (its customer has not chosen one): "
                         "credit a session that takes this asset on this network, or refund the transfer."]}
        )  # fmt: skip
    if (session.network, session.asset) != (transfer.network, transfer.asset):
        raise ValidationError(
            {"session": [f"session {session.uuid} takes {session.asset} on {session.network}; this transfer is "
                         f"{transfer.asset} on {transfer.network}. Refund it instead."]}
        )  # fmt: skip
    if session.status in {SessionStatus.COMPLETE, SessionStatus.CANCELED}:
        raise ValidationError(
            {"session": [f"session {session.uuid} is {session.status}: credit an open or expired session, or "
                         "refund the transfer."]}
        )  # fmt: skip


def _resolve(
    transfer: Transfer, resolution: str, user: Any, note: str, now: datetime, extra: list[str] | None = None
) -> None:
    transfer.resolution = resolution
    transfer.resolved_by = user if getattr(user, "pk", None) else None
    transfer.resolved_at = now
    transfer.resolution_note = note
    transfer.save(update_fields=["resolution", "resolved_by", "resolved_at", "resolution_note", *(extra or [])])


def _note(note: Any, *, required: bool) -> str:
    if not isinstance(note, str):
        raise ValidationError({"note": ["must be text."]})
    note = note.strip()
    if required and not note:
        raise ValidationError({"note": ["say why (it is kept in the record of this transfer)."]})
    if len(note) > MAX_NOTE:
        raise ValidationError({"note": [f"at most {MAX_NOTE} characters."]})
    if found := unstorable_text(note, "note"):
        raise ValidationError({"note": [f"{found[0]} {found[1]}."]})
    return note
