"""The hosted page's state: what ``/pay/<uuid>/`` shows, as JSON for its polling and live stream.

Built on the session's one description (:func:`payments_gateway.services.payloads.describe_session`), plus what
only the page says: a sentence for the customer, the confirmations of the newest payment, the countdown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from ..models import CheckoutSession, PaymentStatus, SessionStatus, TransferStatus
from ..money import format_units
from ..services.payloads import describe_session

# The facts of describe_session() the page state carries.
PAGE_FIELDS = (
    "uuid", "status", "payment_status", "asset", "network", "amount_due", "amount_due_display", "amount_received",
    "amount_received_display", "amount_pending", "amount_remaining", "amount_remaining_display", "amount_to_pay",
    "amount_to_pay_display", "confirmations_required", "late", "payment_uri",
)  # fmt: skip


def checkout_state(session: CheckoutSession, *, now: datetime | None = None) -> dict[str, Any]:
    """What the hosted page shows, as JSON (``/pay/<uuid>/status`` and the SSE stream). Amounts are base-unit
    strings with ``*_display`` decimal strings."""
    now = now or timezone.now()
    facts = describe_session(session)
    decimals = facts["decimals"] or 0
    required = facts["confirmations_required"] or 0
    paying = session.transfers.filter(asset=session.asset, status=TransferStatus.DETECTED, reason="")
    unconfirmed = [t.confirmations for t in paying]
    excess = max(session.amount_received - session.amount_due, 0)
    return {name: facts[name] for name in PAGE_FIELDS} | {
        "awaiting_payment": session.status == SessionStatus.OPEN and int(facts["amount_to_pay"]) > 0,
        "overpaid_by_display": format_units(excess, decimals) if excess else None,
        "confirmations": min(unconfirmed) if unconfirmed else None,
        "expires_at": session.expires_at.isoformat(),
        "seconds_left": max(int((session.expires_at - now).total_seconds()), 0),
        "message": status_message(session, decimals=decimals, unconfirmed=unconfirmed, required=required),
        "wrong_asset_message": wrong_asset_message(session),
    }  # fmt: skip


def status_message(session: CheckoutSession, *, decimals: int, unconfirmed: list[int], required: int) -> str:
    """One sentence for the customer."""
    if session.status == SessionStatus.COMPLETE:
        text = "Paid — thank you!"
        if session.payment_status == PaymentStatus.OVERPAID:
            excess = format_units(session.amount_received - session.amount_due, decimals)
            text += f" You sent {excess} {session.asset} more than the amount due."
        return text
    if session.status == SessionStatus.CANCELED:
        return "This payment was canceled."
    if session.payment_status == PaymentStatus.PENDING:
        done = min(unconfirmed) if unconfirmed else required
        return f"Payment received, waiting for confirmations ({min(done, required)}/{required})."
    partial = session.payment_status == PaymentStatus.PARTIALLY_PAID
    left = f"{format_units(session.amount_remaining, decimals)} {session.asset}"
    if session.status == SessionStatus.EXPIRED:
        if partial:
            return f"This payment expired with {left} still unpaid. The partial payment is recorded."
        return "This payment expired. Please start a new checkout."
    if partial:
        return f"Partially paid: {left} still to pay to the same address."
    return "Waiting for your payment."


def wrong_asset_message(session: CheckoutSession) -> str | None:
    """What to tell a customer who sent another asset than the session's to its address (it does not count
    towards the payment; only the merchant can send it back), or None."""
    others = (
        session.transfers.exclude(asset=session.asset)
        .exclude(status=TransferStatus.REVERTED)
        .values_list("asset", flat=True)
        .distinct()
    )
    assets = sorted(set(others))
    if not assets:
        return None
    return (
        f"A payment in {' and '.join(assets)} was received; this checkout expects {session.asset}. "
        "Contact the merchant for a refund."
    )
