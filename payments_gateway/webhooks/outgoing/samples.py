"""Sample ``data`` for every event type: the payloads of test events, and the README's examples.

Shapes match what the live events carry (payment events: the checkout session; transaction events: the transfer
and its session; customer events: the customer; refund and subscription events: their object).
"""

from __future__ import annotations

import copy
from typing import Any

SESSION = {
    "uuid": "7d0f5f7e-2c1b-4f4e-9a55-3f9d2d8f6a10",
    "type": "payment",
    "status": "complete",
    "payment_status": "paid",
    "network": "ethereum",
    "asset": "USDC",
    "decimals": 6,
    "amount_due": "79000000",
    "amount_received": "79000000",
    "amount_pending": "0",
    "fiat_amount": "79.00",
    "fiat_currency": "USD",
    "deposit_address": "0x9858EfFD232B4033E47d90003D41EC34EcaEda94",
    "expires_at": "2026-11-22T10:00:00+00:00",
    "late": False,
    "order": {"uuid": "0b6c1c37-9d1e-4a4f-8f6a-2f0c4d3b9e21", "reference": "SHOP-000042"},
    "order_reference": "SHOP-000042",
    "customer": "4a3f9a52-6a0e-4a55-bb7e-5d7bb0c1e0aa",
    "metadata": {"cart": "42"},
}

TRANSFER = {
    "session": SESSION["uuid"],
    "network": "ethereum",
    "tx_hash": "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    "log_index": 12,
    "block_number": 21000000,
    "from": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "to": SESSION["deposit_address"],
    "asset": "USDC",
    "amount": "79000000",
    "confirmations": 12,
    "status": "confirmed",
}

CUSTOMER = {
    "uuid": SESSION["customer"],
    "email": "alice@example.com",
    "name": "Alice",
    "metadata": {},
}

REFUND = {
    "uuid": "c1f3b0a4-1f2e-4c3d-8b5a-6e7f8a9b0c1d",
    "session": SESSION["uuid"],
    "status": "initiated",
    "network": "ethereum",
    "asset": "USDC",
    "amount": "79000000",
    "to": TRANSFER["from"],
    "tx_hash": None,
}

SUBSCRIPTION = {
    "uuid": "e2d4c6b8-3a5f-4e7d-9c1b-0a2f4e6d8c0b",
    "status": "active",
    "customer": SESSION["customer"],
    "network": "ethereum",
    "asset": "USDC",
    "amount": "9900000",
    "interval": "month",
    "current_period_end": "2026-12-22T10:00:00+00:00",
    "metadata": {},
}

_UNPAID = {"status": "open", "payment_status": "unpaid", "amount_received": "0"}
_PAYMENT_STATES = {
    "payment.created": _UNPAID,
    "payment.pending": {**_UNPAID, "payment_status": "pending", "amount_pending": "79000000"},
    "payment.completed": {},
    "payment.failed": {"status": "expired", "payment_status": "partially_paid", "amount_received": "50000000"},
    "payment.expired": {**_UNPAID, "status": "expired"},
}
_TRANSFER_STATES = {
    "transaction.detected": {"status": "detected", "confirmations": 0},
    "transaction.confirmed": {},
    "transaction.failed": {"status": "reverted", "confirmations": 0},
}


def sample_data(event_type: str) -> dict[str, Any]:
    """A realistic ``data`` object for ``event_type`` (any type in ``EVENT_TYPES``)."""
    if event_type in _PAYMENT_STATES:
        return {**copy.deepcopy(SESSION), **_PAYMENT_STATES[event_type]}
    if event_type in _TRANSFER_STATES:
        return {**copy.deepcopy(TRANSFER), **_TRANSFER_STATES[event_type]}
    if event_type.startswith("customer."):
        return copy.deepcopy(CUSTOMER)
    if event_type.startswith("refund."):
        status = event_type.split(".", 1)[1]
        return {**copy.deepcopy(REFUND), "status": status}
    if event_type.startswith("subscription."):
        status = {"canceled": "canceled"}.get(event_type.split(".", 1)[1], "active")
        return {**copy.deepcopy(SUBSCRIPTION), "status": status}
    raise ValueError(f"no sample for event type {event_type!r}")
