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
window) still completes the session; any payment after expiry, full or partial, marks it ``late``. If a reorg
takes the payment away, a complete session goes back to ``open`` (or ``expired`` past its expiry) and
``payment.failed`` is emitted. A canceled session (by the customer, or superseded by a newer session of its
order) never completes: what reaches its address is unmatched.

Which transfers pay (:func:`_settle`): a transfer to the session's address that settles nothing is
**unmatched**, with a ``reason`` and ``resolution="open"`` until the merchant credits, refunds or dismisses it
(``services/reconciliation.py``, ``services/refunds.py``).

Events: ``transaction.detected|confirmed|failed`` once per transfer status change; ``transaction.unmatched``
when a transfer is found to settle nothing; ``payment.pending`` when the payment status moves to ``pending`` or
``partially_paid``; ``payment.completed``; ``payment.expired``; ``payment.failed``.
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
    SessionType,
    Transfer,
    TransferKind,
    TransferReason,
    TransferResolution,
    TransferStatus,
)
from ..money import tolerance
from .payloads import session_payload, transfer_payload
from .subscriptions import record_payment as record_subscription_payment

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
        # Every transfer to the session's addresses is announced (its payload names its asset), even one in another
        # asset than the session's: the merchant must hear of it to refund it. Only the session's asset on its chosen
        # network pays (not one to the address of a network the customer switched away from).
        _announce_transfers(session, transfers)
        previous = (session.status, session.payment_status)
        counted = _settle(session, transfers)
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


def payment_threshold(session: CheckoutSession) -> int:
    """Base units that count as the full payment: the amount due minus the underpayment tolerance (0 while the
    customer has not chosen a payment method: nothing is due yet)."""
    due = session.amount_due or 0
    return max(due - underpayment_tolerance(session.asset, due), 0)


# --- helpers ---------------------------------------------------------------------------------------------

# The merchant's decision stands over the rules: credited pays, refunded or dismissed does not.
DECIDED = {TransferResolution.CREDITED, TransferResolution.REFUNDED, TransferResolution.DISMISSED}


def _settle(session: CheckoutSession, transfers: list[Transfer]) -> list[Transfer]:
    """The transfers that pay ``session``, in chain order; every other one gets the reason it pays nothing.

    A transfer that is not reverted pays its session unless the merchant decided otherwise (``credited``: it
    pays; ``refunded`` or ``dismissed``: it does not), or the first of these holds:

    - ``wrong_asset`` / ``unknown_token``: another asset than the session's (a token not configured at all), or
      its asset on another network (one the customer switched away from after choosing it);
    - ``closed_session``: the session was canceled, so the order is no longer paid through it;
    - ``after_late_window``: its block is after the session's expiry plus ``LATE_PAYMENT_WINDOW``;
    - ``excess``: the transfers before it already cover the amount due (the customer paid twice).
    """
    threshold = payment_threshold(session)
    counted: list[Transfer] = []
    seen = 0
    for t in transfers:
        if t.status == TransferStatus.REVERTED:
            continue
        if t.resolution not in DECIDED:
            _set_reason(session, t, _reason(session, t, covered=seen >= threshold))
        if not t.reason or t.resolution == TransferResolution.CREDITED:
            counted.append(t)
            seen += t.amount
    return counted


def _reason(session: CheckoutSession, t: Transfer, *, covered: bool) -> str:
    if (t.network, t.asset) != (session.network, session.asset):
        unknown = t.kind == TransferKind.TOKEN and t.asset == t.token_address
        return TransferReason.UNKNOWN_TOKEN if unknown else TransferReason.WRONG_ASSET
    if session.status == SessionStatus.CANCELED:
        return TransferReason.CLOSED_SESSION
    if t.block_time and t.block_time > session.expires_at + gateway_settings.LATE_PAYMENT_WINDOW:
        return TransferReason.AFTER_LATE_WINDOW
    return TransferReason.EXCESS if covered else ""


def _set_reason(session: CheckoutSession, t: Transfer, reason: str) -> None:
    """Record why ``t`` pays nothing (or that it pays after all); a transfer newly unmatched is announced, since
    the merchant must hear of money that settles nothing to credit or refund it."""
    if reason == t.reason:
        return
    resolution = t.resolution
    if reason and not resolution:
        resolution = TransferResolution.OPEN
    elif not reason and resolution == TransferResolution.OPEN:
        resolution = ""  # a reorg took away the payment before it: it pays now
    Transfer.objects.filter(pk=t.pk).update(reason=reason, resolution=resolution)
    t.reason, t.resolution = reason, resolution
    if reason:
        emit("transaction.unmatched", transfer_payload(t), session=session)


def _late(session: CheckoutSession, t: Transfer) -> bool:
    return t.block_time > session.expires_at if t.block_time else t.late


def _apply(session: CheckoutSession, counted: list[Transfer], now: datetime) -> None:
    confirmed = sum((t.amount for t in counted if t.status == TransferStatus.CONFIRMED), 0)
    seen = sum((t.amount for t in counted), 0)
    session.amount_received = confirmed
    session.amount_pending = seen - confirmed
    session.late = any(_late(session, t) for t in counted)
    due = session.amount_due or 0  # a session still choosing has no address, so no transfers to count
    threshold = payment_threshold(session)

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
        if session.status not in {SessionStatus.COMPLETE, SessionStatus.CANCELED}:
            session.status = SessionStatus.COMPLETE
            session.completed_at = now
    elif session.status == SessionStatus.COMPLETE:
        # A reorg took (part of) the payment away: back to what the remaining transfers justify.
        session.status = SessionStatus.OPEN if session.expires_at > now else SessionStatus.EXPIRED
        session.completed_at = None
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
        if session.type != SessionType.PAYMENT:  # a subscription's period is paid: its status moves with it
            record_subscription_payment(session)
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
