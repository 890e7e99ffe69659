"""What a session, a transfer and a customer look like outside the database: one description of each.

:func:`describe_session` gathers the facts every reader of a session shows — statuses, amounts as base-unit strings
with their decimal display, the deposit address, what is left to pay and the EIP-681 URI for it — and each reader
takes its shape from it: :func:`session_payload` (the ``data`` of ``payment.*`` events, here), the API's
``SessionSerializer`` and ``TransactionStatusSerializer``, and the hosted page's state
(``views/presentation.py``). Datetimes stay ``datetime`` here: each reader formats them its own way.

Every event payload is built in this module (``payment.*``, ``transaction.*``, ``customer.*``, ``refund.*``,
``subscription.*``); :func:`describe_subscription` is the one description of a subscription.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..conf import gateway_settings
from ..models import (
    CheckoutSession,
    Customer,
    PaymentStatus,
    Refund,
    SessionType,
    Subscription,
    SubscriptionPeriod,
    Transfer,
    TransferStatus,
)
from ..money import format_fiat, format_units

# Enough is seen on chain (confirmed or not): nothing is asked of the customer any more.
NOTHING_TO_PAY = {PaymentStatus.PENDING, PaymentStatus.PAID, PaymentStatus.OVERPAID}

# The keys of describe_session() that payment events carry, in the order the README documents them.
EVENT_SESSION_FIELDS = (
    "uuid", "type", "status", "payment_status", "payment_methods", "network", "asset", "decimals", "amount_due",
    "amount_received", "amount_pending", "amount_remaining", "amount_due_display", "deposit_address", "tx_hashes",
    "late", "expires_at", "completed_at", "fiat_amount", "fiat_currency", "order", "customer", "subscription",
    "metadata",
)  # fmt: skip


def describe_session(session: CheckoutSession, *, new: bool = False) -> dict[str, Any]:
    """The facts about ``session`` that the API, the events and the hosted page show.

    Amounts are base-unit strings (exact for uint256), each ``*_display`` the decimal string of the asset (None
    when the network or asset is no longer configured). Until the customer chooses a payment method (a session
    offering several), ``network``, ``asset``, ``decimals``, ``deposit_address`` and the amounts due, remaining
    and to pay are None; ``payment_methods`` lists what may be chosen. ``tx_hashes``: the transactions seen
    paying the session (not reverted), oldest first; ``new``: the session was created by this very request, so
    nothing can have paid it yet (no query for its transfers).
    """
    network = gateway_settings.networks.get(session.network)
    decimals = gateway_settings.decimals(session.network, session.asset)
    chosen = session.amount_due is not None
    to_pay = amount_to_pay(session)
    order = session.order

    def display(units: int | None) -> str | None:
        return format_units(units, decimals) if decimals is not None and units is not None else None

    def units(value: int) -> str | None:
        return str(value) if chosen else None

    return {
        "uuid": str(session.uuid),
        "type": session.type,
        "status": session.status,
        "payment_status": session.payment_status,
        "payment_methods": [describe_method(m) for m in session.payment_methods or []],
        "network": session.network or None,
        "chain_id": network.chain_id if network else None,
        "asset": session.asset or None,
        "decimals": decimals,
        "deposit_address": session.address,
        "amount_due": units(session.amount_due or 0),
        "amount_due_display": display(session.amount_due),
        "amount_received": str(session.amount_received),
        "amount_received_display": display(session.amount_received),
        "amount_pending": str(session.amount_pending),
        "amount_remaining": units(session.amount_remaining),
        "amount_remaining_display": display(session.amount_remaining if chosen else None),
        "amount_to_pay": units(to_pay),
        "amount_to_pay_display": display(to_pay if chosen else None),
        "tx_hashes": [] if new else tx_hashes(session),
        "payment_uri": payment_uri(session) if network and decimals is not None else None,
        "confirmations_required": network.confirmations if network else None,
        "late": session.late,
        "expires_at": session.expires_at,
        "completed_at": session.completed_at,
        "fiat_amount": format_fiat(session.fiat_amount, session.fiat_currency),
        "fiat_currency": session.fiat_currency,
        "order": {
            "uuid": str(order.uuid),
            "reference": order.reference,
            "amount": format_fiat(order.amount, order.currency),
            "currency": order.currency,
        },
        "customer": str(session.customer.uuid) if session.customer_id and session.customer else None,
        "subscription": _subscription_of(session),
        "metadata": session.metadata,
    }


def describe_method(method: dict[str, str]) -> dict[str, Any]:
    """One of a session's ``payment_methods``: network and asset, with the chain id and decimals when still
    configured."""
    network = gateway_settings.networks.get(method["network"])
    return {
        "network": method["network"],
        "asset": method["asset"],
        "chain_id": network.chain_id if network else None,
        "decimals": gateway_settings.decimals(method["network"], method["asset"]),
    }


def tx_hashes(session: CheckoutSession) -> list[str]:
    """Hashes of the transactions seen paying ``session`` (any asset, not reverted), oldest first, each once."""
    if session._state.adding:  # an unsaved example (webhook samples) has no transfers
        return []
    found = (
        session.transfers.exclude(status=TransferStatus.REVERTED)
        .order_by("block_number", "log_index")
        .values_list("tx_hash", flat=True)
    )
    return list(dict.fromkeys(found))


def session_payload(session: CheckoutSession, *, new: bool = False) -> dict[str, Any]:
    """The ``data`` of ``payment.*`` events: the session's description, datetimes in ISO 8601."""
    facts = describe_session(session, new=new)
    return {"object": "checkout.session"} | {name: _json(facts[name]) for name in EVENT_SESSION_FIELDS}


def transfer_payload(t: Transfer) -> dict[str, Any]:
    """The ``data`` of ``transaction.*`` events. ``reason`` and ``resolution`` are empty for a transfer that pays
    its session; ``id`` is the transfer's id in the API (``/api/v1/transfers/<id>/``)."""
    return {
        "object": "transaction",
        "id": t.pk,
        "network": t.network,
        "tx_hash": t.tx_hash,
        "log_index": t.log_index,
        "block_number": t.block_number,
        "block_hash": t.block_hash,
        "from": t.from_address,
        "to": t.to_address,
        "asset": t.asset,
        "amount": str(t.amount),
        "confirmations": t.confirmations,
        "status": t.status,
        "late": t.late,
        "session": str(t.session.uuid) if t.session_id and t.session else None,
        "reason": t.reason,
        "resolution": t.resolution,
    }


def refund_payload(refund: Refund) -> dict[str, Any]:
    """The ``data`` of ``refund.*`` events (and the API's refund): amounts as base-unit strings, with the decimal
    display when the asset is configured."""
    decimals = gateway_settings.decimals(refund.network, refund.asset)
    transfer = refund.transfer if refund.transfer_id else None
    return {
        "object": "refund",
        "uuid": str(refund.uuid),
        "status": refund.status,
        "session": str(refund.session.uuid) if refund.session_id and refund.session else None,
        "transfer": transfer.pk if transfer else None,
        "network": refund.network,
        "asset": refund.asset,
        "amount": str(refund.amount),
        "amount_display": format_units(refund.amount, decimals) if decimals is not None else None,
        "address": refund.address or None,
        "reason": refund.reason,
        "tx_hash": refund.tx_hash or None,
        "created": _json(refund.created),
        "completed_at": _json(refund.completed_at),
    }


def customer_payload(customer: Customer) -> dict[str, Any]:
    """The ``data`` of ``customer.*`` events."""
    return {
        "object": "customer",
        "uuid": str(customer.uuid),
        "email": customer.email,
        "name": customer.name,
        "metadata": customer.metadata,
    }


def describe_subscription(subscription: Subscription, latest: CheckoutSession | None = None) -> dict[str, Any]:
    """The facts about ``subscription`` that the API and the events show. ``latest_session`` is the session of
    its newest period (``latest``, or read from the database): the one to pay while a renewal is open."""
    if latest is None and subscription.pk is not None:
        newest = subscription.periods.select_related("session").order_by("-number").first()
        latest = newest.session if newest else None
    return {
        "uuid": str(subscription.uuid),
        "status": subscription.status,
        "customer": str(subscription.customer.uuid) if subscription.customer_id and subscription.customer else None,
        "description": subscription.description,
        "amount": format_fiat(subscription.amount, subscription.currency),
        "currency": subscription.currency,
        "interval": subscription.interval,
        "interval_count": subscription.interval_count,
        "payment_methods": [describe_method(m) for m in subscription.payment_methods or []],
        "current_period_start": subscription.current_period_start,
        "current_period_end": subscription.current_period_end,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "canceled_at": subscription.canceled_at,
        "ended_at": subscription.ended_at,
        "cancellation_reason": subscription.cancellation_reason or None,
        "latest_session": str(latest.uuid) if latest else None,
        "metadata": subscription.metadata,
        "created": subscription.created,
    }


def subscription_payload(subscription: Subscription, latest: CheckoutSession | None = None) -> dict[str, Any]:
    """The ``data`` of ``subscription.*`` events: the subscription's description, datetimes in ISO 8601."""
    facts = describe_subscription(subscription, latest)
    return {"object": "subscription"} | {name: _json(value) for name, value in facts.items()}


def amount_to_pay(session: CheckoutSession) -> int:
    """Base units the customer should still send: the whole amount until something is seen, then the remainder.

    0 once the payment is ``pending``, ``paid`` or ``overpaid``: what is seen on chain (confirmed or not) counts
    as sent, so the page never asks again for an amount already on its way.
    """
    if session.payment_status in NOTHING_TO_PAY or session.amount_due is None:
        return 0
    return session.amount_remaining


def payment_uri(session: CheckoutSession) -> str | None:
    """The EIP-681 URI a wallet scans for :func:`amount_to_pay`; None when nothing is left to pay.

    ETH: ``ethereum:<address>@<chainId>?value=<wei>``;
    token: ``ethereum:<token>@<chainId>/transfer?address=<address>&uint256=<units>``.
    Raises ``ValueError`` when the session's network or asset is no longer configured.
    """
    if not session.method_chosen or session.deposit_address is None:
        return None
    network = gateway_settings.network(session.network)
    asset = network.asset(session.asset)
    units = amount_to_pay(session)
    if units == 0:
        return None
    address = session.deposit_address.address
    if asset.is_native:
        return f"ethereum:{address}@{network.chain_id}?value={units}"
    return f"ethereum:{asset.address}@{network.chain_id}/transfer?address={address}&uint256={units}"


def _subscription_of(session: CheckoutSession) -> str | None:
    """The uuid of the subscription a ``createSubscription`` or ``renewSubscription`` session pays for."""
    if session.type == SessionType.PAYMENT or session.pk is None:
        return None
    found = SubscriptionPeriod.objects.filter(session_id=session.pk).values_list("subscription__uuid", flat=True)
    uuid = found.first()
    return str(uuid) if uuid else None


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
