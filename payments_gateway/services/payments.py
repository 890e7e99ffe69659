"""The session lifecycle: what a session's transfers mean for its state, and the events that say so.

A session's state is always *derived* from its transfers that are not reverted, so every caller (the scanner
after new blocks or a reorg, the expiry task, a page read) gets the same answer, and running
:func:`refresh_session` twice changes nothing the second time.

``payment_status``:
- ``unpaid``: nothing seen.
- ``partially_paid``: less than the amount due (minus the tolerance) seen, confirmed or not.
- ``pending``: enough seen, but not all of it has the network's confirmations yet.
- ``paid`` / ``overpaid``: enough confirmed (``overpaid`` when more than the amount due is confirmed).

``status``: ``complete`` once paid. A payment that covers the amount after expiry (inside the late payment
window) still completes the session and marks it ``late``. If a reorg takes the payment away, a complete
session goes back to ``open`` (or ``expired`` past its expiry) and ``payment.failed`` is emitted.

Events: ``transaction.detected|confirmed|failed`` once per transfer status change; ``payment.pending`` when the
payment status moves to ``pending`` or ``partially_paid``; ``payment.completed``; ``payment.expired``;
``payment.failed``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..conf import gateway_settings
from ..events import emit
from ..models import (
    CheckoutSession,
    OrderStatus,
    PaymentStatus,
    SessionStatus,
    Transfer,
    TransferStatus,
)
from ..money import tolerance
from .payloads import session_payload, transfer_payload

PAID = {PaymentStatus.PAID, PaymentStatus.OVERPAID}
TRANSFER_EVENTS = {
    TransferStatus.DETECTED: "transaction.detected",
    TransferStatus.CONFIRMED: "transaction.confirmed",
    TransferStatus.REVERTED: "transaction.failed",
}


def refresh_session(session_id: int, *, now: datetime | None = None) -> CheckoutSession:
    """Recompute the session's amounts and statuses from its transfers; emit the events of what changed."""
    now = now or timezone.now()
    with transaction.atomic():
        session = CheckoutSession.objects.select_for_update().select_related("order").get(pk=session_id)
        transfers = list(session.transfers.order_by("block_number", "log_index"))
        # Every transfer to the address is announced (its payload names its asset), even one in another asset
        # than the session's: the merchant must hear of it to refund it. Only the session's asset pays.
        _announce_transfers(session, transfers)
        previous = (session.status, session.payment_status)
        # Only the chosen asset on the chosen network pays (a transfer matched just before the customer switched
        # network is on the old one).
        counted = [
            t
            for t in transfers
            if (t.network, t.asset) == (session.network, session.asset) and t.status != TransferStatus.REVERTED
        ]
        _apply(session, counted, now)
        session.save()
        _announce_session(session, previous)
    return session


def expire_due_sessions(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expire open sessions past ``expires_at``; safe to run in several workers at once. Returns the count.

    A ``pending`` session (its full amount seen, waiting for confirmations) is not expired: it completes when
    the transfers confirm, or, if they are reverted, goes back to unpaid/partially paid and expires then.
    """
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        due = (
            CheckoutSession.objects.select_for_update(skip_locked=True)
            .filter(status=SessionStatus.OPEN, expires_at__lte=now)
            .exclude(payment_status=PaymentStatus.PENDING)
            .order_by("expires_at")[:limit]
        )
        for session in due:
            _expire(session, now)
            count += 1
    return count


def expire_if_due(session: CheckoutSession, *, now: datetime | None = None) -> CheckoutSession:
    """Expire this session if its time is up (used on read, so no page shows a stale open session)."""
    now = now or timezone.now()
    if not _due(session, now):
        return session
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().get(pk=session.pk)
        if _due(locked, now):
            _expire(locked, now)
    session.refresh_from_db()
    return session


def expire_session(session: CheckoutSession, *, now: datetime | None = None) -> CheckoutSession:
    """Expire an open session now, whatever its ``expires_at`` (the merchant's "expire" action)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().get(pk=session.pk)
        if locked.status != SessionStatus.OPEN:
            raise ValueError(f"session {locked.uuid} is {locked.status}; only an open session can be expired")
        locked.expires_at = min(locked.expires_at, now)
        _expire(locked, now)
    session.refresh_from_db()
    return session


def underpayment_tolerance(asset: str, amount_due: int) -> int:
    """Base units by which a payment of ``asset`` may fall short of ``amount_due`` and still count as paid
    (``UNDERPAYMENT_TOLERANCE``; see :func:`payments_gateway.money.tolerance` for the cap)."""
    table = gateway_settings.UNDERPAYMENT_TOLERANCE
    return tolerance(table.get(asset, table.get("*", 0)), amount_due)


# --- helpers ---------------------------------------------------------------------------------------------


def _apply(session: CheckoutSession, counted: list[Transfer], now: datetime) -> None:
    confirmed = sum((t.amount for t in counted if t.status == TransferStatus.CONFIRMED), 0)
    seen = sum((t.amount for t in counted), 0)
    session.amount_received = confirmed
    session.amount_pending = seen - confirmed
    due = session.amount_due or 0  # a session still choosing has no transfers (no address) to count
    threshold = max(due - underpayment_tolerance(session.asset, due), 0)

    if seen == 0:
        session.payment_status = PaymentStatus.UNPAID
    elif seen < threshold:
        session.payment_status = PaymentStatus.PARTIALLY_PAID
    elif confirmed < threshold:
        session.payment_status = PaymentStatus.PENDING
    elif confirmed > due:
        session.payment_status = PaymentStatus.OVERPAID
    else:
        session.payment_status = PaymentStatus.PAID

    if session.payment_status in PAID:
        if session.status != SessionStatus.COMPLETE:
            session.status = SessionStatus.COMPLETE
            session.completed_at = now
        session.late = any(t.late for t in counted)
    elif session.status == SessionStatus.COMPLETE:
        # A reorg took (part of) the payment away: back to what the remaining transfers justify.
        session.status = SessionStatus.OPEN if session.expires_at > now else SessionStatus.EXPIRED
        session.completed_at = None
        session.late = False
        if session.status == SessionStatus.EXPIRED and session.expired_at is None:
            session.expired_at = now


def _announce_transfers(session: CheckoutSession, transfers: list[Transfer]) -> None:
    for t in transfers:
        if t.notified_status == t.status:
            continue
        if t.status == TransferStatus.CONFIRMED and not t.notified_status:
            # Seen for the first time already confirmed: say both, so listeners see every step.
            emit("transaction.detected", transfer_payload(t) | {"status": "detected"}, session=session)
        emit(TRANSFER_EVENTS[TransferStatus(t.status)], transfer_payload(t), session=session)
        Transfer.objects.filter(pk=t.pk).update(notified_status=t.status)


def _announce_session(session: CheckoutSession, previous: tuple[str, str]) -> None:
    old_status, old_payment = previous
    if (session.status, session.payment_status) == (old_status, old_payment):
        return
    order = session.order
    if session.status == SessionStatus.COMPLETE and old_status != SessionStatus.COMPLETE:
        emit("payment.completed", session_payload(session), session=session)
        if order.status != OrderStatus.PAID:
            order.status = OrderStatus.PAID
            order.save(update_fields=["status", "updated"])
        return
    if old_status == SessionStatus.COMPLETE:
        emit("payment.failed", session_payload(session) | {"reason": "payment_reverted"}, session=session)
        if order.status == OrderStatus.PAID and not order.sessions.filter(status=SessionStatus.COMPLETE).exists():
            order.status = OrderStatus.PENDING
            order.save(update_fields=["status", "updated"])
        return
    if (
        session.payment_status in {PaymentStatus.PENDING, PaymentStatus.PARTIALLY_PAID}
        and session.payment_status != old_payment
    ):
        emit("payment.pending", session_payload(session), session=session)


def _due(session: CheckoutSession, now: datetime) -> bool:
    # Same rule as expire_due_sessions: a pending payment keeps the session open.
    return (
        session.status == SessionStatus.OPEN
        and session.expires_at <= now
        and session.payment_status != PaymentStatus.PENDING
    )


def _expire(session: CheckoutSession, now: datetime) -> None:
    session.status = SessionStatus.EXPIRED
    session.expired_at = now
    session.save(update_fields=["status", "expired_at", "expires_at", "updated"])
    emit("payment.expired", session_payload(session), session=session)
