"""The hosted page's state: what ``/pay/<uuid>/`` shows, as JSON for its polling and live stream.

Built on the session's one description (:func:`payments_gateway.services.payloads.describe_session`), plus what
only the page says: a sentence for the customer (in the active language), amounts in the language's number format
(``*_local``; the base-unit and ``*_display`` values stay exact and machine-readable), the confirmations of the
newest payment, each transaction with its explorer link, the countdown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import gateway_settings
from ..i18n import localize_amount
from ..models import CheckoutSession, PaymentStatus, SessionStatus, TransferResolution, TransferStatus
from ..money import format_units
from ..services.methods import can_switch
from ..services.payloads import describe_session

# The facts of describe_session() the page state carries.
PAGE_FIELDS = (
    "uuid", "status", "payment_status", "asset", "network", "chain_id", "deposit_address", "amount_due",
    "amount_due_display", "amount_received", "amount_received_display", "amount_pending", "amount_remaining",
    "amount_remaining_display", "amount_to_pay", "amount_to_pay_display", "confirmations_required", "late",
    "payment_uri", "tx_hashes",
)  # fmt: skip


def checkout_state(session: CheckoutSession, *, now: datetime | None = None) -> dict[str, Any]:
    """What the hosted page shows, as JSON (``/pay/<uuid>/status`` and the SSE stream). Amounts are base-unit
    strings with ``*_display`` decimal strings (exact, for machines) and ``*_local`` ones (for people)."""
    now = now or timezone.now()
    facts = describe_session(session)
    decimals = facts["decimals"] or 0
    required = facts["confirmations_required"] or 0
    # Only transfers that pay the session (its network and asset; not unmatched, unless the merchant credited them).
    paying = session.transfers.filter(
        Q(reason="") | Q(resolution=TransferResolution.CREDITED),
        network=session.network,
        asset=session.asset,
        status=TransferStatus.DETECTED,
    )
    unconfirmed = [t.confirmations for t in paying]
    excess = max(session.amount_received - (session.amount_due or 0), 0) if session.method_chosen else 0
    network = gateway_settings.networks.get(session.network)
    to_pay = int(facts["amount_to_pay"] or 0)
    return {name: facts[name] for name in PAGE_FIELDS} | {
        "method_chosen": session.method_chosen,
        "can_switch": can_switch(session),
        "awaiting_payment": session.status == SessionStatus.OPEN and to_pay > 0,
        "amount_due_local": localize_amount(facts["amount_due_display"]),
        "amount_to_pay_local": localize_amount(facts["amount_to_pay_display"]),
        "overpaid_by_display": format_units(excess, decimals) if excess else None,
        "transactions": [
            {"hash": h, "url": network.explorer_link("tx", h) if network else None} for h in facts["tx_hashes"]
        ],
        "confirmations": min(unconfirmed) if unconfirmed else None,
        "expires_at": session.expires_at.isoformat(),
        "seconds_left": max(int((session.expires_at - now).total_seconds()), 0),
        "message": status_message(session, decimals=decimals, unconfirmed=unconfirmed, required=required),
        "wrong_asset_message": wrong_asset_message(session),
    }  # fmt: skip


def status_message(session: CheckoutSession, *, decimals: int, unconfirmed: list[int], required: int) -> str:
    """One sentence for the customer, in the active language."""
    if session.status == SessionStatus.COMPLETE:
        text = _("Paid — thank you!")
        if session.payment_status == PaymentStatus.OVERPAID:
            excess = _amount(session.amount_received - (session.amount_due or 0), decimals)
            text += " " + _("You sent %(amount)s %(asset)s more than the amount due.") % {
                "amount": excess,
                "asset": session.asset,
            }
        return text
    if session.status == SessionStatus.CANCELED:
        return _("This payment was canceled.")
    if session.payment_status == PaymentStatus.PENDING:
        done = min(unconfirmed) if unconfirmed else required
        return _("Payment received, waiting for confirmations (%(done)s/%(required)s).") % {
            "done": min(done, required),
            "required": required,
        }
    partial = session.payment_status == PaymentStatus.PARTIALLY_PAID
    left = {"amount": _amount(session.amount_remaining, decimals), "asset": session.asset}
    if session.status == SessionStatus.EXPIRED:
        if partial:
            return (
                _("This payment expired with %(amount)s %(asset)s still unpaid. The partial payment is recorded.")
                % left
            )
        return _("This payment expired. Please start a new checkout.")
    if partial:
        return _("Partially paid: %(amount)s %(asset)s still to pay to the same address.") % left
    if not session.method_chosen:
        return _("Choose how you want to pay.")
    return _("Waiting for your payment.")


def wrong_asset_message(session: CheckoutSession) -> str | None:
    """What to tell a customer who sent another asset than the session's to its address, or its asset on a network
    they switched away from (it does not count towards the payment; only the merchant can send it back), or None."""
    others = (
        session.transfers.exclude(network=session.network, asset=session.asset)
        .exclude(status=TransferStatus.REVERTED)
        .values_list("network", "asset")
        .distinct()
    )
    sent = sorted(set(others))
    if not sent:
        return None
    # The network is named only when it is not the session's (the same asset sent on the old network).
    elsewhere = any(network != session.network for network, _asset in sent)
    joiner = " " + _("and") + " "
    return _(
        "A payment in %(sent)s was received; this checkout expects %(expected)s. Contact the merchant for a refund."
    ) % {
        "sent": joiner.join(dict.fromkeys(_on(asset, network, session.network) for network, asset in sent)),
        "expected": _on(session.asset, session.network, "" if elsewhere else session.network),
    }


def _on(asset: str, network: str, shown_network: str) -> str:
    """``asset``, followed by "on <network>" unless ``network`` is ``shown_network`` (the one the page is about)."""
    if network == shown_network:
        return asset
    config = gateway_settings.networks.get(network)
    return f"{asset} " + _("on %(network)s") % {"network": config.display_name if config else network}


def _amount(units: int, decimals: int) -> str:
    return localize_amount(format_units(units, decimals))
