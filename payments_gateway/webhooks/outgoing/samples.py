"""Sample ``data`` for every event type: the payloads of test events, and the README's examples.

Every sample is built by the very functions live events use (``session_payload``, ``transfer_payload``,
``refund_payload``, ``customer_payload``, ``subscription_payload``) from unsaved example objects, so a test event
always has the shape of a real one.
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
_TX_HASH = "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060"
# The sample networks are not configured where samples are made: their chain ids and decimals.
_CHAINS = {"ethereum": 1, "base": 8453}
_DECIMALS = {"USDC": 6, "ETH": 18}
# What a session that lets the customer choose offers.
_CHOOSER = [
    {"network": "ethereum", "asset": "USDC"},
    {"network": "ethereum", "asset": "ETH"},
    {"network": "base", "asset": "USDC"},
]

_SESSION_UUID = "7d0f5f7e-2c1b-4f4e-9a55-3f9d2d8f6a10"
_REFUND_UUID = "c1f3b0a4-1f2e-4c3d-8b5a-6e7f8a9b0c1d"
_REFUND_TX_HASH = "0x3e1f6b0c2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f"

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
    "transaction.unmatched": ("confirmed", 12),
}
_REFUND_STATES = {"refund.initiated": "initiated", "refund.completed": "completed", "refund.canceled": "canceled"}


def sample_data(event_type: str) -> dict[str, Any]:
    """A realistic ``data`` object for ``event_type`` (any type in ``EVENT_TYPES``)."""
    if event_type in _PAYMENT_STATES:
        status, payment_status, received, pending = _PAYMENT_STATES[event_type]
        data = _session_data(_session(status, payment_status, received, pending))
        if received or pending:
            data["tx_hashes"] = [_TX_HASH]
        return data | {"reason": "canceled"} if event_type == "payment.failed" else data
    if event_type in _TRANSFER_STATES:
        from payments_gateway.services.payloads import transfer_payload

        if event_type == "transaction.unmatched":  # the customer paid the USDC checkout in USDT
            return transfer_payload(_transfer(*_TRANSFER_STATES[event_type], asset="USDT", reason="wrong_asset"))
        return transfer_payload(_transfer(*_TRANSFER_STATES[event_type]))
    if event_type.startswith("customer."):
        from payments_gateway.services.payloads import customer_payload

        return customer_payload(_customer())
    if event_type in _REFUND_STATES:
        from payments_gateway.money import format_units
        from payments_gateway.services.payloads import refund_payload

        data = refund_payload(_refund(_REFUND_STATES[event_type]))
        if data["amount_display"] is None:  # the sample network is not configured here: USDC's 6 decimals
            data["amount_display"] = format_units(int(data["amount"]), 6)
        return data
    if event_type.startswith("subscription."):
        from payments_gateway.services.payloads import subscription_payload

        return _with_chains(subscription_payload(*_subscription(event_type)))
    raise ValueError(f"no sample for event type {event_type!r}")


def unchosen_payment_sample() -> dict[str, Any]:
    """The ``data`` of ``payment.created`` for a session whose customer has not chosen how to pay yet."""
    session = _session("open", "unpaid", 0, 0)
    session.payment_methods = copy.deepcopy(_CHOOSER)
    session.network = session.asset = ""
    session.amount_due = session.quote_rate = session.quoted_at = session.deposit_address = None
    return _session_data(session)


def _session_data(session) -> dict[str, Any]:
    from payments_gateway.money import format_units
    from payments_gateway.services.payloads import session_payload

    data = _with_chains(session_payload(session))
    if session.amount_due is not None:
        data.update(decimals=6, amount_due_display=format_units(session.amount_due, 6))
    return data


def _with_chains(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the chain id and decimals of each of its ``payment_methods``, as a configured network has."""
    for method in data["payment_methods"]:
        method.update(chain_id=_CHAINS[method["network"]], decimals=_DECIMALS[method["asset"]])
    return data


def _customer():
    from payments_gateway.models import Customer

    return Customer(pk=1, uuid=uuid.UUID(_CUSTOMER_UUID), email="customer@example.com", name="Sample Customer")


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
        payment_methods=copy.deepcopy(_CHOOSER),  # its renewals: USDC on ethereum, what the customer chose
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
        payment_methods=[{"network": "ethereum", "asset": "USDC"}],
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


def _refund(status: str):
    from payments_gateway.models import Refund

    return Refund(
        pk=1,
        uuid=uuid.UUID(_REFUND_UUID),
        session=_session("complete", "overpaid", 100_000_000, 0),
        network="ethereum",
        asset="USDC",
        amount=21_000_000,
        address=_PAYER,
        status=status,
        reason="Overpaid by 21 USDC",
        tx_hash=_REFUND_TX_HASH if status == "completed" else "",
        created=_WHEN,
        completed_at=_WHEN if status == "completed" else None,
    )


def _transfer(status: str, confirmations: int, *, asset: str = "USDC", reason: str = ""):
    from payments_gateway.models import Transfer

    return Transfer(
        pk=7,
        network="ethereum",
        tx_hash=_TX_HASH,
        log_index=12,
        block_number=21_000_000,
        block_hash="0x8d1a2ba0f6c4e5b3a0e1c2d3f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d",
        from_address=_PAYER,
        to_address=_ADDRESS,
        asset=asset,
        amount=79_000_000,
        confirmations=confirmations,
        status=status,
        session=_session("open", "pending", 0, 79_000_000),
        reason=reason,
        resolution="open" if reason else "",
    )
