"""Creating checkout sessions, and what a customer does on the hosted page (identify, cancel, get redirected).

:func:`create_session` validates everything first and raises one ``ValidationError`` mapping each bad field to
a message, so nothing is written for bad input. Then, in ONE database transaction, it creates the order (when
given a price instead of an order), allocates the deposit address, stores the locked quote, creates the session
and emits ``payment.created``: a failure anywhere leaves no half-made session and no address taken.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..chain.addresses import allocate_address
from ..conf import NetworkConfig, gateway_settings
from ..events import emit
from ..models import (
    CheckoutSession,
    Customer,
    Order,
    OrderStatus,
    PaymentStatus,
    SessionStatus,
    SessionType,
    TransferStatus,
)
from ..money import format_units
from ..pricing import NoRate, Quote, currency_exponent, get_quote
from .payments import session_payload

# Order.amount is DecimalField(max_digits=24, decimal_places=8): 16 integer digits.
MAX_FIAT_AMOUNT = Decimal(10) ** 15
MAX_METADATA_BYTES = 8 * 1024
MAX_EMAIL_LENGTH = Customer._meta.get_field("email").max_length  # 254
_HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$")
_UNSAFE_URL_CHARS = re.compile(r"[\s<>\"\\^`{|}]")
PLACEHOLDERS = ("{{UUID}}", "{{TRANSACTION_TYPE}}", "{CHECKOUT_SESSION_ID}")
CANCELABLE_PAYMENT_STATUSES = {PaymentStatus.UNPAID}
# Enough is seen on chain (confirmed or not): the page stops asking for money.
NOTHING_TO_PAY = {PaymentStatus.PENDING, PaymentStatus.PAID, PaymentStatus.OVERPAID}


def create_session(
    *,
    asset: str,
    network: str,
    order: Order | str | None = None,
    amount: Decimal | str | int | None = None,
    currency: str | None = None,
    reference: str = "",
    description: str = "",
    type: str = SessionType.PAYMENT,  # noqa: A002 - the public field name
    success_url: str = "",
    cancel_url: str = "",
    customer: Customer | str | None = None,
    metadata: dict | None = None,
    now: datetime | None = None,
) -> CheckoutSession:
    """Create an open session that collects ``order`` (an Order, or the reference of one) or a new order of
    ``amount`` ``currency`` (with optional ``reference`` and ``description``) in ``asset`` on ``network``.

    Raises ``ValidationError`` ({field: [message]}) for bad input, before anything is written, and
    ``pricing.RateUnavailable`` when the rate provider cannot quote now.
    """
    now = now or timezone.now()
    errors: dict[str, str] = {}
    net = _check_network(network, errors)
    if net is not None:
        _check_asset(net, asset, errors)
    if type != SessionType.PAYMENT:
        if type in SessionType.values:
            errors["type"] = f"{type!r} sessions are not supported yet; use 'payment'."
        else:
            errors["type"] = f"unknown type {type!r}; use 'payment'."
    order_obj, fiat_amount, fiat_currency = _check_order(order, amount, currency, reference, errors)
    for field, url in (("success_url", success_url), ("cancel_url", cancel_url)):
        if url and (msg := _url_error(url)):
            errors[field] = msg
    customer_obj = _check_customer(customer, errors)
    metadata = _check_metadata(metadata, errors)
    if errors:
        raise ValidationError({field: [msg] for field, msg in errors.items()})

    # The quote may read a price feed over RPC: do it before the transaction, so no lock waits on the network.
    try:
        locked = get_quote(fiat_amount, fiat_currency, asset, net, now=now)
    except NoRate as exc:
        raise ValidationError({"asset": [str(exc)]}) from None
    if locked.amount <= 0:
        raise ValidationError({"amount": ["the price is too small to charge in this asset."]})

    expires_at = now + gateway_settings.SESSION_TTL
    try:
        with transaction.atomic():
            if order_obj is not None:
                _supersede_open_sessions(order_obj, now)
            if order_obj is None:
                order_obj = Order.objects.create(
                    reference=reference,
                    description=description,
                    amount=fiat_amount,
                    currency=fiat_currency,
                    customer=customer_obj,
                )
            deposit = allocate_address(network, expires_at + gateway_settings.LATE_PAYMENT_WINDOW, now=now)
            session = CheckoutSession.objects.create(
                order=order_obj,
                customer=customer_obj or order_obj.customer,
                type=type,
                network=network,
                asset=asset,
                amount_due=locked.amount,
                **_quote_fields(locked),
                expires_at=expires_at,
                success_url=success_url,
                cancel_url=cancel_url,
                deposit_address=deposit,
                metadata=metadata,
                created=now,
            )
            emit("payment.created", session_payload(session), session=session)
    except IntegrityError:
        if reference and Order.objects.filter(reference=reference).exists():
            # Two requests raced to create the same reference; the other one won.
            raise ValidationError({"reference": [_reference_taken(reference)]}) from None
        raise
    return session


def payment_in_progress(session: CheckoutSession) -> bool:
    """Whether something was sent to this session (seen on chain, in any asset, not reverted)."""
    return (
        session.payment_status != PaymentStatus.UNPAID
        or session.transfers.exclude(status=TransferStatus.REVERTED).exists()
    )


def attach_customer(session: CheckoutSession, *, email: str, name: str = "") -> Customer:
    """The hosted page's customer form: create a new Customer (``customer.created``) and attach it to the session
    and, when the order has none, to its order.

    The form is public (anyone with the session link can post it), so it never looks up or changes an existing
    Customer by e-mail: that would let a stranger attach a victim's customer record (and rename it). Only the
    merchant links an existing customer (the API's ``customer`` uuid).
    """
    email = (email or "").strip()
    name = (name or "").strip()[:200]
    if len(email) > MAX_EMAIL_LENGTH:
        raise ValidationError({"email": [f"an e-mail address has at most {MAX_EMAIL_LENGTH} characters."]})
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationError({"email": ["enter a valid e-mail address."]}) from None
    with transaction.atomic():
        customer = Customer.objects.create(email=email, name=name)
        emit("customer.created", customer_payload(customer), session=session)
        CheckoutSession.objects.filter(pk=session.pk).update(customer=customer, updated=timezone.now())
        Order.objects.filter(pk=session.order_id, customer__isnull=True).update(customer=customer)
    session.customer = customer
    return customer


def cancel_session(session: CheckoutSession, *, now: datetime | None = None) -> CheckoutSession:
    """The customer leaves: an open session with nothing paid becomes ``canceled``. Anything else is left as it
    is (a payment already seen must still be tracked); returns the session either way."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = CheckoutSession.objects.select_for_update().select_related("order", "deposit_address")
        locked = locked.get(pk=session.pk)
        if locked.status == SessionStatus.OPEN and locked.payment_status in CANCELABLE_PAYMENT_STATUSES:
            locked.status = SessionStatus.CANCELED
            locked.canceled_at = now
            locked.save(update_fields=["status", "canceled_at", "updated"])
            emit("payment.failed", session_payload(locked) | {"reason": "canceled"}, session=locked)
    session.refresh_from_db()
    return session


def redirect_url(template: str, session: CheckoutSession) -> str:
    """``success_url`` / ``cancel_url`` with ``{{UUID}}``, ``{CHECKOUT_SESSION_ID}`` and
    ``{{TRANSACTION_TYPE}}`` replaced by the URL-encoded session uuid and type."""
    uuid = quote(str(session.uuid), safe="")
    return (
        template.replace("{{UUID}}", uuid)
        .replace("{CHECKOUT_SESSION_ID}", uuid)
        .replace("{{TRANSACTION_TYPE}}", quote(session.type, safe=""))
    )


def payment_uri(session: CheckoutSession) -> str | None:
    """The EIP-681 URI a wallet scans for :func:`amount_to_pay`; None when nothing is left to pay.

    ETH: ``ethereum:<address>@<chainId>?value=<wei>``;
    token: ``ethereum:<token>@<chainId>/transfer?address=<address>&uint256=<units>``.
    """
    network = gateway_settings.network(session.network)
    asset = network.asset(session.asset)
    units = amount_to_pay(session)
    if units == 0:
        return None
    address = session.deposit_address.address
    if asset.is_native:
        return f"ethereum:{address}@{network.chain_id}?value={units}"
    return f"ethereum:{asset.address}@{network.chain_id}/transfer?address={address}&uint256={units}"


def amount_to_pay(session: CheckoutSession) -> int:
    """Base units the customer should still send: the whole amount until something is seen, then the remainder.

    0 once the payment is ``pending``, ``paid`` or ``overpaid``: what is seen on chain (confirmed or not) counts
    as sent, so the page never asks again for an amount already on its way.
    """
    if session.payment_status in NOTHING_TO_PAY:
        return 0
    return session.amount_remaining


def checkout_state(session: CheckoutSession, *, now: datetime | None = None) -> dict[str, Any]:
    """What the hosted page shows, as JSON (``/pay/<uuid>/status`` and the SSE stream). Amounts are base-unit
    strings with ``*_display`` decimal strings."""
    now = now or timezone.now()
    network = gateway_settings.network(session.network)
    decimals = network.asset(session.asset).decimals
    remaining = session.amount_remaining
    unconfirmed = [
        t.confirmations for t in session.transfers.filter(asset=session.asset, status=TransferStatus.DETECTED)
    ]
    excess = max(session.amount_received - session.amount_due, 0)
    to_pay = amount_to_pay(session)
    return {
        "uuid": str(session.uuid),
        "status": session.status,
        "payment_status": session.payment_status,
        "asset": session.asset,
        "network": session.network,
        "amount_due": str(session.amount_due),
        "amount_due_display": format_units(session.amount_due, decimals),
        "amount_received": str(session.amount_received),
        "amount_received_display": format_units(session.amount_received, decimals),
        "amount_pending": str(session.amount_pending),
        "amount_remaining": str(remaining),
        "amount_remaining_display": format_units(remaining, decimals),
        "amount_to_pay": str(to_pay),
        "amount_to_pay_display": format_units(to_pay, decimals),
        "awaiting_payment": session.status == SessionStatus.OPEN and to_pay > 0,
        "overpaid_by_display": format_units(excess, decimals) if excess else None,
        "confirmations": min(unconfirmed) if unconfirmed else None,
        "confirmations_required": network.confirmations,
        "late": session.late,
        "expires_at": session.expires_at.isoformat(),
        "seconds_left": max(int((session.expires_at - now).total_seconds()), 0),
        "payment_uri": payment_uri(session),
        "message": status_message(session, remaining=remaining, decimals=decimals, unconfirmed=unconfirmed,
                                  required=network.confirmations),
        "wrong_asset_message": wrong_asset_message(session),
    }  # fmt: skip


def status_message(
    session: CheckoutSession, *, remaining: int, decimals: int, unconfirmed: list[int], required: int
) -> str:
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
    left = f"{format_units(remaining, decimals)} {session.asset}"
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


def customer_payload(customer: Customer) -> dict[str, Any]:
    """The ``data`` of ``customer.*`` events."""
    return {
        "object": "customer",
        "uuid": str(customer.uuid),
        "email": customer.email,
        "name": customer.name,
        "metadata": customer.metadata,
    }


# --- validation helpers ---------------------------------------------------------------------------------


def _check_network(name: str, errors: dict[str, str]) -> NetworkConfig | None:
    try:
        return gateway_settings.network(name)
    except ValueError as exc:
        errors["network"] = str(exc)
        return None


def _check_asset(net: NetworkConfig, asset: str, errors: dict[str, str]) -> None:
    try:
        net.asset(asset)
    except ValueError as exc:
        errors["asset"] = str(exc)


def _check_order(
    order: Order | str | None,
    amount: Any,
    currency: str | None,
    reference: str,
    errors: dict[str, str],
) -> tuple[Order | None, Decimal, str]:
    if order is not None:
        if amount is not None or currency:
            errors["order"] = "give either an order or an amount and currency, not both."
            return None, Decimal(0), ""
        if not isinstance(order, Order):
            found = Order.objects.filter(reference=order).first() if order else None
            if found is None:
                errors["order"] = f"no order with reference {order!r}."
                return None, Decimal(0), ""
            order = found
        if order.status == OrderStatus.PAID:
            errors["order"] = f"order {order.reference or order.uuid} is already paid."
        elif order.status == OrderStatus.CANCELED:
            errors["order"] = f"order {order.reference or order.uuid} is canceled."
        return order, order.amount, order.currency

    if amount is None:
        errors["amount"] = "give an amount and currency (or the reference of an existing order)."
    if not currency:
        errors["currency"] = "give the ISO 4217 currency of the amount, e.g. 'USD'."
    if amount is None or not currency:
        return None, Decimal(0), ""
    currency = str(currency).upper()
    try:
        exponent = currency_exponent(currency)
    except NoRate as exc:
        errors["currency"] = str(exc)
        return None, Decimal(0), ""
    value = _decimal(amount)
    if value is None:
        errors["amount"] = f"{amount!r} is not a number; give it as a string like '19.99'."
    elif value <= 0:
        errors["amount"] = "the amount must be greater than zero."
    elif value >= MAX_FIAT_AMOUNT:
        errors["amount"] = "the amount is too large."
    elif -value.as_tuple().exponent > exponent and value != value.quantize(Decimal(10) ** -exponent):
        errors["amount"] = f"{currency} has {exponent} decimal places; {amount} has more."
    if reference:
        if len(reference) > 200:
            errors["reference"] = "at most 200 characters."
        elif Order.objects.filter(reference=reference).exists():
            errors["reference"] = _reference_taken(reference)
    return None, value or Decimal(0), currency


def _supersede_open_sessions(order: Order, now: datetime) -> None:
    """One open session per order, so a customer can never pay an order twice: cancel the order's open sessions
    that nothing was sent to (``payment.failed``, reason ``superseded``), or refuse the new session if one has
    a payment in progress. Runs in create_session's transaction, with the order row locked so two requests for
    one order take turns."""
    Order.objects.select_for_update().filter(pk=order.pk).exists()
    open_sessions = list(
        CheckoutSession.objects.select_for_update(of=("self",))
        .select_related("order", "customer", "deposit_address")
        .filter(order=order, status=SessionStatus.OPEN)
    )
    for session in open_sessions:
        if payment_in_progress(session):
            name = order.reference or order.uuid
            raise ValidationError(
                {"order": [f"order {name} already has a session with a payment in progress: {session.uuid}"]}
            )
    for session in open_sessions:
        session.status = SessionStatus.CANCELED
        session.canceled_at = now
        session.save(update_fields=["status", "canceled_at", "updated"])
        emit("payment.failed", session_payload(session) | {"reason": "superseded"}, session=session)


def _reference_taken(reference: str) -> str:
    return f"an order with reference {reference!r} exists; pass order={reference!r} to pay it with a new session."


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, float | bool):
        return None  # never guess at a float's meaning on a money path
    try:
        result = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return result if result.is_finite() else None


def _url_error(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL we can redirect to, or None. Single-label hosts (an intranet
    name, ``localhost``) are fine: Django's URLValidator would refuse them."""
    if not isinstance(url, str) or len(url) > 2000:
        return "must be an http(s) URL of at most 2000 characters."
    probe = url
    for placeholder in PLACEHOLDERS:
        probe = probe.replace(placeholder, "00000000-0000-0000-0000-000000000000")
    invalid = f"{url!r} is not a valid http(s) URL."
    if _UNSAFE_URL_CHARS.search(probe):
        return invalid
    try:
        parts = urlsplit(probe)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return invalid
    host = parts.hostname or ""
    if parts.scheme not in {"http", "https"} or not (_HOSTNAME.match(host) or ":" in host):
        return invalid
    return None


def _check_customer(customer: Customer | str | None, errors: dict[str, str]) -> Customer | None:
    if customer is None or isinstance(customer, Customer):
        return customer
    try:
        return Customer.objects.get(uuid=customer)
    except (Customer.DoesNotExist, ValidationError, ValueError):
        errors["customer"] = f"no customer with uuid {customer!r}."
        return None


def _check_metadata(metadata: Any, errors: dict[str, str]) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        errors["metadata"] = "must be a JSON object."
        return {}
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        errors["metadata"] = f"at most {MAX_METADATA_BYTES} bytes of JSON."
    return metadata


def _quote_fields(q: Quote) -> dict[str, Any]:
    return {
        "fiat_amount": q.fiat_amount,
        "fiat_currency": q.currency,
        "quote_rate": q.rate,
        "quote_source": q.source,
        "quoted_at": q.quoted_at,
    }
