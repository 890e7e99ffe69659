"""Subscriptions: a price billed every period, each period collected by its own checkout session.

Statuses mirror Stripe Billing. The status of a started subscription is *derived* from facts — the end of the
period paid through, the time, ``cancel_at_period_end`` and the settings — by :func:`status_at`, so the task,
a payment and a cancellation all reach the same answer, and running :func:`refresh_subscription` twice changes
nothing the second time:

- ``incomplete``: created with its first session (``createSubscription``, which may let the customer choose the
  payment method like any session); nothing paid yet. It is ``canceled``
  (``incomplete_expired``) once that session can no longer be paid: expired or canceled, and past the late
  payment window.
- ``active``: paid through ``current_period_end``. The first payment starts the first period at the time it
  confirmed (the billing anchor); every later boundary is counted from the anchor (``periods.py``).
- A renewal session for the next period (``renewSubscription``) opens ``RENEWAL_NOTICE`` before the period ends
  (never before the period starts) and stays open until ``SUBSCRIPTION_GRACE`` after it: ``renewal_due``. It is
  in the network and asset the current period was paid with, and like every session gets a new deposit address.
  Paid, the next period becomes the current one at once (``renewed``), even before the previous one ends.
- ``past_due``: the period ended and the next one is not paid.
- After ``SUBSCRIPTION_GRACE``, still unpaid: ``canceled`` (``payment_failed``) or ``unpaid``, by
  ``SUBSCRIPTION_AFTER_GRACE``. An unpaid subscription revives if its renewal is still paid (the session's late
  payment window); a canceled one never does: such a payment is the merchant's to refund.
- Canceled on request now, or at the end of the paid period (``cancel_at_period_end``; canceled when it ends).
  An open renewal (or first) session with nothing paid is canceled with it, so nobody pays for a period that will
  not come.

Events: ``subscription.created``, ``activated``, ``renewal_due``, ``renewed``, ``past_due``, ``canceled`` (also when
it becomes ``unpaid``), ``updated`` (cancel at period end asked). The customer is e-mailed at ``renewal_due`` and
``past_due`` (``subscription_mail.py``).

Exactly once: a period is a :class:`SubscriptionPeriod` row, unique per (subscription, start), created in the
transaction that creates its session, with the subscription's row locked; every change locks that row first.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from ..conf import gateway_settings, key_of
from ..events import emit
from ..models import (
    CancellationReason,
    CheckoutSession,
    Customer,
    SessionStatus,
    SessionType,
    Subscription,
    SubscriptionPeriod,
)
from ..models import SubscriptionStatus as Status
from .customers import MAX_EMAIL_LENGTH, attach_customer
from .payloads import subscription_payload
from .periods import interval_errors, period_bounds
from .sessions import cancel_session, create_session
from .subscription_mail import remind_after_commit

logger = logging.getLogger(__name__)

STARTED = {Status.ACTIVE, Status.PAST_DUE, Status.UNPAID}


def create_subscription_session(
    *,
    interval: str,
    interval_count: int = 1,
    customer_email: str = "",
    now: datetime | None = None,
    **session_fields: Any,
) -> CheckoutSession:
    """Create a subscription (``incomplete``) and its first period's session, in one transaction; return the
    session. ``session_fields`` are :func:`~.sessions.create_session`'s (``amount`` + ``currency``, ``asset``,
    ``network`` or ``payment_methods``, ``description``, URLs, ``customer``, ``metadata``...).

    The first session is like any other: with one fixed method, or a chooser (``payment_methods``, or no network
    and asset). The subscription keeps the methods it offered (``payment_methods``, the session's format); each
    renewal is in the network and asset the customer paid the period before with.

    With ``SUBSCRIPTION_REMINDERS`` on, the customer must have an e-mail address: the ``customer``'s, or
    ``customer_email`` (a new customer is made with it). Bad input raises ``ValidationError`` naming each field,
    before anything is written.
    """
    now = now or timezone.now()
    errors = interval_errors(interval, interval_count)
    errors |= _customer_errors(session_fields.get("customer"), customer_email)
    if session_fields.get("order") is not None:
        errors["order"] = "a subscription is priced by amount and currency, not by an existing order."
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})
    if gateway_settings.SUBSCRIPTION_REMINDERS and gateway_settings.PUBLIC_URL is None:
        raise ImproperlyConfigured(
            f"{key_of('PUBLIC_URL')} is not set: subscription reminders need absolute links. Set it to the address "
            "customers reach your site at, e.g. 'https://shop.example', or set SUBSCRIPTION_REMINDERS to False."
        )

    def start(session: CheckoutSession) -> None:
        if session.customer is None and customer_email:
            attach_customer(session, email=customer_email)
        subscription = Subscription.objects.create(
            customer=session.customer,
            description=session.order.description,
            amount=session.order.amount,
            currency=session.order.currency,
            interval=interval,
            interval_count=interval_count,
            payment_methods=list(session.payment_methods),
            success_url=session.success_url,
            cancel_url=session.cancel_url,
            metadata=session.metadata,
            created=now,
        )
        SubscriptionPeriod.objects.create(subscription=subscription, number=1, session=session, created=now)
        emit("subscription.created", subscription_payload(subscription, session), session=session)

    return create_session(type=SessionType.CREATE_SUBSCRIPTION, now=now, within=start, **session_fields)


def record_payment(session: CheckoutSession) -> None:
    """A subscription's session was paid (called by ``payments.py`` in the transaction that completes it).

    The first period: the subscription becomes ``active`` and its periods are anchored at the payment's
    confirmation time. The next period: it becomes the current one (``renewed``). Anything else (a canceled
    subscription, a period already counted) changes nothing, so a second call is harmless.
    """
    period = SubscriptionPeriod.objects.filter(session=session).first()
    if period is None:
        return
    subscription = Subscription.objects.select_for_update().get(pk=period.subscription_id)
    paid_at = session.completed_at or timezone.now()
    if period.paid_at is None:
        period.paid_at = paid_at
        period.save(update_fields=["paid_at"])
    if period.number == 1 and subscription.status == Status.INCOMPLETE:
        _activate(subscription, period, session)
    elif subscription.status in STARTED and period.start == subscription.current_period_end:
        subscription.current_period_start, subscription.current_period_end = period.start, period.end
        _apply(subscription, paid_at)
        subscription.save()
        emit("subscription.renewed", subscription_payload(subscription, session), session=session)


def refresh_subscription(subscription_id: int, *, now: datetime | None = None) -> Subscription:
    """Apply what time alone changes: ``past_due``, the end of the grace period, the end of a period that was
    to be the last, an incomplete subscription whose first session can no longer be paid."""
    now = now or timezone.now()
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription_id)
        if subscription.status == Status.INCOMPLETE and _first_session_lost(subscription, now):
            _end(subscription, Status.CANCELED, now, CancellationReason.INCOMPLETE_EXPIRED)
        elif subscription.status in STARTED and subscription.status != status_at(subscription, now):
            _apply(subscription, now)
            subscription.save()
    return subscription


def open_renewal(subscription: Subscription, *, now: datetime | None = None) -> CheckoutSession | None:
    """Open the renewal session of the period after the current one, if it is due and not opened yet; return it,
    or None. Safe in several workers at once: the period row is unique, and inserted with the subscription locked.

    Raises what :func:`~.sessions.create_session` raises when the subscription's network, asset or price can no
    longer be quoted (``ValidationError``, ``RateUnavailable``).
    """
    now = now or timezone.now()
    if not renewal_due(subscription, now):
        return None
    current = subscription.periods.select_related("session").get(start=subscription.current_period_start)
    assert subscription.billing_anchor is not None  # a started subscription is anchored
    start, end = period_bounds(
        subscription.billing_anchor, subscription.interval, subscription.interval_count, current.number + 1
    )
    if subscription.periods.filter(start=start).exists():
        return None

    def claim(session: CheckoutSession) -> None:
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if not renewal_due(locked, now) or locked.current_period_end != start:
            raise _NotDue
        # Two workers: the second waits for the lock above, then fails here on the unique (subscription, start).
        SubscriptionPeriod.objects.create(
            subscription=locked, number=current.number + 1, start=start, end=end, session=session, created=now
        )
        emit("subscription.renewal_due", subscription_payload(locked, session), session=session)
        remind_after_commit("renewal_due", locked, session)

    # The customer pays as they paid the current period (one fixed method: no chooser), until the grace period ends.
    paid_with = current.session
    try:
        return create_session(
            amount=subscription.amount,
            currency=subscription.currency,
            network=paid_with.network,
            asset=paid_with.asset,
            description=subscription.description,
            type=SessionType.RENEW_SUBSCRIPTION,
            success_url=subscription.success_url,
            cancel_url=subscription.cancel_url,
            customer=subscription.customer,
            metadata=subscription.metadata,
            now=now,
            expires_at=start + gateway_settings.SUBSCRIPTION_GRACE,
            within=claim,
        )
    except (_NotDue, IntegrityError):
        return None  # opened by another worker, or no longer due


def cancel_subscription(
    subscription: Subscription, *, at_period_end: bool = False, now: datetime | None = None
) -> Subscription:
    """Cancel now, or at the end of the period paid for (``cancel_at_period_end``). Cancelling what is already
    canceled, or asking twice for the period end, raises ``ValidationError`` naming the field."""
    now = now or timezone.now()
    with transaction.atomic():
        # Sessions before the subscription, in the order a payment locks them (refresh_session, record_payment).
        open_sessions = CheckoutSession.objects.filter(subscription_period__subscription=subscription)
        list(open_sessions.select_for_update(of=("self",)).filter(status=SessionStatus.OPEN).values_list("pk"))
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if locked.status == Status.CANCELED:
            raise ValidationError({"status": [f"subscription {locked.uuid} is already canceled."]})
        if at_period_end:
            if locked.cancel_at_period_end:
                raise ValidationError({"at_period_end": [
                    f"subscription {locked.uuid} is already set to cancel at the end of its period "
                    f"({locked.current_period_end:%Y-%m-%d %H:%M} UTC)."]})  # fmt: skip
            if locked.status != Status.ACTIVE:
                raise ValidationError({"at_period_end": [
                    f"a {locked.status} subscription has no paid period to finish: cancel it now "
                    "(at_period_end false)."]})  # fmt: skip
            locked.cancel_at_period_end = True
            locked.canceled_at = now
            locked.save()
            emit("subscription.updated", subscription_payload(locked), session=None)
        else:
            locked.canceled_at = now
            _end(locked, Status.CANCELED, now, CancellationReason.REQUESTED)
        _cancel_open_sessions(locked, now)
    subscription.refresh_from_db()
    return subscription


def renew_due_subscriptions(*, now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """The periodic task's work: refresh every subscription that time changes and open every renewal that is
    due. Idempotent and safe in several workers. Returns counts; a subscription that fails (its network was
    removed, no rate) is logged by the caller's error and skipped, never blocking the others."""
    now = now or timezone.now()
    counts = {"refreshed": 0, "renewals": 0, "failed": 0}
    for pk in _needing_work(now).values_list("pk", flat=True)[:limit]:
        try:
            subscription = refresh_subscription(pk, now=now)
            counts["refreshed"] += 1
            if open_renewal(subscription, now=now) is not None:
                counts["renewals"] += 1
        except Exception:  # isolation: one broken subscription never stops the renewals of the others
            logger.exception("subscription %s: renewal failed", pk)
            counts["failed"] += 1
    return counts


def status_at(subscription: Subscription, now: datetime) -> str:
    """The status a started subscription has at ``now``, from the end of the period it is paid through."""
    end = subscription.current_period_end
    if subscription.status not in STARTED or end is None:
        return subscription.status
    if now < end:
        return Status.ACTIVE
    if subscription.cancel_at_period_end:
        return Status.CANCELED
    if now < end + gateway_settings.SUBSCRIPTION_GRACE:
        return Status.PAST_DUE
    return gateway_settings.SUBSCRIPTION_AFTER_GRACE


def renewal_due(subscription: Subscription, now: datetime) -> bool:
    """Whether the next period's renewal session should be open at ``now`` (it may be already)."""
    start, end = subscription.current_period_start, subscription.current_period_end
    if subscription.status not in {Status.ACTIVE, Status.PAST_DUE} or subscription.cancel_at_period_end:
        return False
    assert start is not None and end is not None
    return max(end - gateway_settings.RENEWAL_NOTICE, start) <= now < end + gateway_settings.SUBSCRIPTION_GRACE


# --- helpers ---------------------------------------------------------------------------------------------


class _NotDue(Exception):
    """Raised inside a renewal's transaction to roll it back: another worker changed the subscription."""


def _customer_errors(customer: Customer | str | None, email: str) -> dict[str, str]:
    if email:
        if customer is not None:
            return {"customer_email": "give either customer (an existing customer) or customer_email, not both."}
        try:
            if len(email) > MAX_EMAIL_LENGTH:
                raise ValidationError("too long")
            validate_email(email)
        except ValidationError:
            return {"customer_email": f"{email!r} is not a valid e-mail address."}
        return {}
    if not gateway_settings.SUBSCRIPTION_REMINDERS:
        return {}
    if customer is None:
        return {"customer_email": "reminders are e-mailed: give the customer's customer_email, or a customer "
                "with an e-mail address."}  # fmt: skip
    found = customer if isinstance(customer, Customer) else _customer_or_none(customer)
    if found is not None and not found.email:
        return {"customer": f"customer {found.uuid} has no e-mail address, and reminders are e-mailed: set one."}
    return {}  # an unknown customer is create_session's to report


def _customer_or_none(value: str) -> Customer | None:
    try:
        return Customer.objects.filter(uuid=uuid.UUID(str(value))).first()
    except ValueError:
        return None


def _activate(subscription: Subscription, period: SubscriptionPeriod, session: CheckoutSession) -> None:
    anchor = session.completed_at or timezone.now()
    period.start, period.end = period_bounds(anchor, subscription.interval, subscription.interval_count, 1)
    period.save(update_fields=["start", "end"])
    subscription.billing_anchor = anchor
    subscription.current_period_start, subscription.current_period_end = period.start, period.end
    subscription.status = Status.ACTIVE
    if subscription.customer_id is None:
        subscription.customer = session.customer  # given on the hosted page's form
    subscription.save()
    emit("subscription.activated", subscription_payload(subscription, session), session=session)


def _apply(subscription: Subscription, now: datetime) -> None:
    """Set the status :func:`status_at` derives (the caller saves); announce a move to past due or an end."""
    status = status_at(subscription, now)
    if status == subscription.status:
        return
    if status == Status.PAST_DUE:
        subscription.status = status
        latest = subscription.periods.select_related("session").order_by("-number").first()
        session = latest.session if latest and latest.start == subscription.current_period_end else None
        emit("subscription.past_due", subscription_payload(subscription, session), session=session)
        remind_after_commit("past_due", subscription, session)
    elif status == Status.ACTIVE:
        subscription.status = status  # a past-due (or unpaid) subscription paid: the caller says "renewed"
        subscription.ended_at = None
    else:
        assert subscription.current_period_end is not None
        if subscription.cancel_at_period_end:
            _end(subscription, status, subscription.current_period_end, CancellationReason.REQUESTED)
        else:
            ended = subscription.current_period_end + gateway_settings.SUBSCRIPTION_GRACE
            _end(subscription, status, ended, CancellationReason.PAYMENT_FAILED)


def _end(subscription: Subscription, status: str, when: datetime, reason: str) -> None:
    subscription.status = status
    subscription.ended_at = when
    subscription.cancellation_reason = reason if status == Status.CANCELED else ""
    subscription.save()
    emit("subscription.canceled", subscription_payload(subscription), session=None)


def _first_session_lost(subscription: Subscription, now: datetime) -> bool:
    first = subscription.periods.select_related("session").get(number=1).session
    return (
        first.status in {SessionStatus.EXPIRED, SessionStatus.CANCELED}
        and first.expires_at + gateway_settings.LATE_PAYMENT_WINDOW <= now
    )


def _cancel_open_sessions(subscription: Subscription, now: datetime) -> None:
    for period in subscription.periods.select_related("session").filter(session__status=SessionStatus.OPEN):
        if period.paid_at is None:
            cancel_session(period.session, now=now)


def _needing_work(now: datetime) -> QuerySet[Subscription]:
    """Subscriptions that time changes at ``now``, or whose renewal is due and not open yet."""
    grace, notice = gateway_settings.SUBSCRIPTION_GRACE, gateway_settings.RENEWAL_NOTICE
    renewal_open = SubscriptionPeriod.objects.filter(subscription=OuterRef("pk"), start=OuterRef("current_period_end"))
    first_lost = SubscriptionPeriod.objects.filter(
        subscription=OuterRef("pk"),
        number=1,
        session__status__in=[SessionStatus.EXPIRED, SessionStatus.CANCELED],
        session__expires_at__lte=now - gateway_settings.LATE_PAYMENT_WINDOW,
    )
    return Subscription.objects.filter(
        Q(status=Status.ACTIVE, current_period_end__lte=now)
        | Q(status=Status.PAST_DUE, current_period_end__lte=now - grace)
        | Q(
            ~Exists(renewal_open),
            status__in=[Status.ACTIVE, Status.PAST_DUE],
            cancel_at_period_end=False,
            current_period_start__lte=now,
            current_period_end__lte=now + notice,
        )
        | Q(Exists(first_lost), status=Status.INCOMPLETE)
    ).order_by("current_period_end", "pk")
