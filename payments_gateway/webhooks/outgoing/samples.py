"""Sample ``data`` for every event type: the payloads of test events, and the README's examples.

Payment, transaction, customer and subscription samples are built by the very functions live events use
(``session_payload``, ``transfer_payload``, ``customer_payload``, ``subscription_payload``) from unsaved example
objects, so a test event always has the shape of a real one. Refund samples describe that object's planned shape.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

_WHEN = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
_ADDRESS = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
_PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"

_SESSION_UUID = "7d0f5f7e-2c1b-4f4e-9a55-3f9d2d8f6a10"

REFUND = {
    "object": "refund",
    "uuid": "c1f3b0a4-1f2e-4c3d-8b5a-6e7f8a9b0c1d",
    "session": _SESSION_UUID,
    "status": "initiated",
    "network": "ethereum",
    "asset": "USDC",
    "amount": "79000000",
    "to": _PAYER,
    "tx_hash": None,
}

_CUSTOMER_UUID = "4a3f9a52-6a0e-4a55-bb7e-5d7bb0c1e0aa"
_SUBSCRIPTION_UUID = "e2d4c6b8-3a5f-4e7d-9c1b-0a2f4e6d8c0b"
_RENEWAL_UUID = "5b8e2f1c-7d4a-4c3e-9f6b-1a2d3e4f5a6b"

# (status, payment_status, amount_received, amount_pending) of the session each payment event reports.
_PAYMENT_STATES = {
    "payment.created": ("open", "unpaid", 0, 0),
    "payment.pending": ("open", "pending", 0, 79_000_000),
    "payment.completed": ("complete", "paid", 79_000_000, 0),
    "payment.failed": ("canceled", "unpaid", 0, 0),
    "payment.expired": ("expired", "partially_paid", 50_000_000, 0),
}
_TRANSFER_STATES = {
    "transaction.detected": ("detected", 0),
    "transaction.confirmed": ("confirmed", 12),
    "transaction.failed": ("reverted", 0),
}


def sample_data(event_type: str) -> dict[str, Any]:
    """A realistic ``data`` object for ``event_type`` (any type in ``EVENT_TYPES``)."""
    if event_type in _PAYMENT_STATES:
        from payments_gateway.services.payloads import session_payload

        data = session_payload(_session(*_PAYMENT_STATES[event_type]))
        if data.get("decimals") is None:  # the sample network is not configured here: fill in USDC's
            from payments_gateway.money import format_units

            data.update(decimals=6, amount_due_display=format_units(79_000_000, 6))
        return data | {"reason": "canceled"} if event_type == "payment.failed" else data
    if event_type in _TRANSFER_STATES:
        from payments_gateway.services.payloads import transfer_payload

        return transfer_payload(_transfer(*_TRANSFER_STATES[event_type]))
    if event_type.startswith("customer."):
        from payments_gateway.services.payloads import customer_payload

        return customer_payload(_customer())
    if event_type.startswith("refund."):
        return {**copy.deepcopy(REFUND), "status": event_type.split(".", 1)[1]}
    if event_type.startswith("subscription."):
        from payments_gateway.services.payloads import subscription_payload

        return subscription_payload(*_subscription(event_type))
    raise ValueError(f"no sample for event type {event_type!r}")


def _customer():
    from payments_gateway.models import Customer

    return Customer(pk=1, uuid=uuid.UUID(_CUSTOMER_UUID), email="alice@example.com", name="Alice")


def _subscription(event_type: str):
    """An unsaved monthly subscription as ``event_type`` reports it, and the session of its newest period."""
    from datetime import timedelta

    from payments_gateway.models import Subscription

    subscription = Subscription(
        uuid=uuid.UUID(_SUBSCRIPTION_UUID),
        customer=_customer(),
        description="Coffee club, monthly",
        amount=Decimal("15.00"),
        currency="USD",
        interval="month",
        interval_count=1,
        payment_methods=[{"network": "ethereum", "asset": "USDC"}],
        status="active",
        billing_anchor=_WHEN - timedelta(days=30),
        current_period_start=_WHEN - timedelta(days=30),
        current_period_end=_WHEN,
        metadata={"plan": "coffee-club"},
        created=_WHEN - timedelta(days=30),
    )
    latest = _session("complete", "paid", 15_000_000, 0)
    if event_type == "subscription.created":
        subscription.status = "incomplete"
        subscription.billing_anchor = subscription.current_period_start = subscription.current_period_end = None
        latest = _session("open", "unpaid", 0, 0)
    elif event_type in {"subscription.renewal_due", "subscription.past_due"}:
        latest = _session("open", "unpaid", 0, 0, session_uuid=_RENEWAL_UUID)
        subscription.status = "past_due" if event_type == "subscription.past_due" else "active"
    elif event_type == "subscription.renewed":
        latest = _session("complete", "paid", 15_000_000, 0, session_uuid=_RENEWAL_UUID)
        subscription.current_period_start, subscription.current_period_end = _WHEN, datetime(2026, 12, 22, 10, 0,
                                                                                              tzinfo=UTC)  # fmt: skip
    elif event_type == "subscription.updated":
        subscription.cancel_at_period_end = True
        subscription.canceled_at = _WHEN - timedelta(days=2)
    elif event_type == "subscription.canceled":
        subscription.status = "canceled"
        subscription.canceled_at = subscription.ended_at = _WHEN
        subscription.cancellation_reason = "requested"
    return subscription, latest


def _session(status: str, payment_status: str, received: int, pending: int, *, session_uuid: str = _SESSION_UUID):
    from payments_gateway.models import CheckoutSession, DepositAddress, Order

    order = Order(
        pk=1,
        uuid=uuid.UUID("0b6c1c37-9d1e-4a4f-8f6a-2f0c4d3b9e21"),
        reference="SHOP-000042",
        amount=Decimal("79.00"),
        currency="USD",
    )
    return CheckoutSession(
        pk=1,
        uuid=uuid.UUID(session_uuid),
        order=order,
        customer=_customer(),
        status=status,
        payment_status=payment_status,
        network="ethereum",
        asset="USDC",
        amount_due=79_000_000,
        amount_received=received,
        amount_pending=pending,
        fiat_amount=Decimal("79.00"),
        fiat_currency="USD",
        quote_rate=Decimal("1"),
        quote_source="fixed",
        quoted_at=_WHEN,
        expires_at=_WHEN,
        completed_at=_WHEN if status == "complete" else None,
        deposit_address=DepositAddress(pk=1, network="ethereum", index=42, address=_ADDRESS),
        metadata={"cart": "42"},
    )


def _transfer(status: str, confirmations: int):
    from payments_gateway.models import Transfer

    return Transfer(
        network="ethereum",
        tx_hash="0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
        log_index=12,
        block_number=21_000_000,
        block_hash="0x8d1a2ba0f6c4e5b3a0e1c2d3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d",
        from_address=_PAYER,
        to_address=_ADDRESS,
        asset="USDC",
        amount=79_000_000,
        confirmations=confirmations,
        status=status,
        session=_session("open", "pending", 0, 79_000_000),
    )
