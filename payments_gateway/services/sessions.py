"""Creating checkout sessions, and what a customer does on the hosted page (cancel, get redirected).

:func:`create_session` validates everything first and raises one ``ValidationError`` mapping each bad field to
a message, so nothing is written for bad input. Then, in ONE database transaction, it creates the order (when
given a price instead of an order), allocates the deposit address, stores the locked quote, creates the session
and emits ``payment.created``: a failure anywhere leaves no half-made session and no address taken. A session
that offers several payment methods gets its address and quote when the customer chooses (``methods.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..conf import gateway_settings
from ..deposits import allocate_address
from ..events import emit, new_event, queue_deliveries
from ..hotpath import insert_together
from ..jsonsafe import unstorable_text
from ..models import (
    CheckoutSession,
    Customer,
    Order,
    OrderStatus,
    PaymentStatus,
    SessionStatus,
    SessionType,
)
from ..money import AMOUNT_FORM, decimal_places, parse_amount
from ..pricing import NoRate, Quote, RateUnavailable, currency_exponent
from .methods import PaymentMethod, PriceTooSmall, payment_in_progress, quote_method, resolve_methods
from .payloads import session_payload

__all__ = ["cancel_session", "create_session", "payment_in_progress", "redirect_url"]

# Order.amount is DecimalField(max_digits=24, decimal_places=8): 16 integer digits.
MAX_FIAT_AMOUNT = Decimal(10) ** 15
MAX_METADATA_BYTES = 8 * 1024
_HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$")
_UNSAFE_URL_CHARS = re.compile(r"[\s<>\"\\^`{|}]")
PLACEHOLDERS = ("{{UUID}}", "{{TRANSACTION_TYPE}}", "{CHECKOUT_SESSION_ID}")
CANCELABLE_PAYMENT_STATUSES = {PaymentStatus.UNPAID}
SUBSCRIPTION_TYPES_MADE_ELSEWHERE: dict[str, str] = {
    SessionType.CREATE_SUBSCRIPTION: "createSubscription sessions create a subscription: use "
    "services.subscriptions.create_subscription_session (the API: POST /sessions/ with an interval).",
    SessionType.RENEW_SUBSCRIPTION: "renewSubscription sessions are opened by the gateway for a subscription's "
    "next period, never created directly.",
}


def create_session(
    *,
    asset: str = "",
    network: str = "",
    payment_methods: list[dict[str, str]] | None = None,
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
    expires_at: datetime | None = None,
    within: Callable[[CheckoutSession], None] | None = None,
) -> CheckoutSession:
    """Create an open session that collects ``order`` (an Order, or the reference of one) or a new order of
    ``amount`` ``currency`` (with optional ``reference`` and ``description``) in ``asset`` on ``network``.

    Without ``network`` and ``asset`` (or with only one of them), or with ``payment_methods`` (a list of
    ``{"network", "asset"}``), the customer chooses on the hosted page: the session offers those methods
    (every configured pair that matches, leaving out pairs without a rate for the currency) and has no address,
    amount or quote until then (``payment.created`` says so with nulls).

    Raises ``ValidationError`` ({field: [message]}) for bad input, before anything is written, and
    ``pricing.RateUnavailable`` when the rate provider cannot quote now.

    Subscription sessions are made by ``services/subscriptions.py``, which passes ``within``: called with the new
    session inside this function's transaction (what it raises rolls everything back), and ``expires_at`` (default
    ``now + SESSION_TTL``).
    """
    now = now or timezone.now()
    errors: dict[str, str] = {}
    methods, named = resolve_methods(network, asset, payment_methods, errors)
    if type not in SessionType.values:
        errors["type"] = f"unknown type {type!r}; use 'payment' or 'createSubscription'."
    elif type != SessionType.PAYMENT and within is None:
        errors["type"] = SUBSCRIPTION_TYPES_MADE_ELSEWHERE[type]
    order_obj, fiat_amount, fiat_currency = _check_order(order, amount, currency, reference, errors)
    for field, url in (("success_url", success_url), ("cancel_url", cancel_url)):
        if url and (msg := _url_error(url)):
            errors[field] = msg
    customer_obj = _check_customer(customer, errors)
    metadata = _check_metadata(metadata, errors)
    _check_text(errors, reference=reference, description=description, success_url=success_url, cancel_url=cancel_url,
                metadata=metadata)  # fmt: skip
    if errors:
        raise ValidationError({field: [msg] for field, msg in errors.items()})

    # Quotes may read a price feed over RPC: get them before the transaction, so no lock waits on the network.
    methods, locked = _quotable(methods, named, fiat_amount, fiat_currency, payment_methods is not None, now)
    chosen: dict[str, Any] = {}
    if locked is not None:
        chosen = {"network": methods[0].network, "asset": methods[0].asset, "amount_due": locked.amount}
        chosen |= _quote_fields(locked)

    expires_at = expires_at or now + gateway_settings.SESSION_TTL
    try:
        with transaction.atomic():
            new_rows: list[Any] = []
            if order_obj is not None:
                _supersede_open_sessions(order_obj, now)
            else:
                order_obj = Order(reference=reference, description=description, amount=fiat_amount,
                                  currency=fiat_currency, customer=customer_obj)  # fmt: skip
                new_rows.append(order_obj)
            if chosen:
                busy_until = expires_at + gateway_settings.LATE_PAYMENT_WINDOW
                chosen["deposit_address"] = allocate_address(chosen["network"], busy_until, now=now, save=False)
                new_rows.append(chosen["deposit_address"])
            session = CheckoutSession(
                order=order_obj,
                customer=customer_obj or order_obj.customer,
                type=type,
                payment_methods=[m.as_dict() for m in methods],
                **chosen,
                fiat_amount=fiat_amount,
                fiat_currency=fiat_currency,
                expires_at=expires_at,
                success_url=success_url,
                cancel_url=cancel_url,
                metadata=metadata,
                created=now,
            )
            new_rows.append(session)
            if within is None:
                # The new order, address, session and its event: one statement on PostgreSQL (hotpath).
                event = new_event("payment.created", session_payload(session, new=True), session=session)
                insert_together(*new_rows, event)
                queue_deliveries(event)
            else:
                insert_together(*new_rows)
                within(session)
                emit("payment.created", session_payload(session, new=True), session=session)
    except IntegrityError:
        if reference and Order.objects.filter(reference=reference).exists():
            # Two requests raced to create the same reference; the other one won.
            raise ValidationError({"reference": [_reference_taken(reference)]}) from None
        raise
    return session


def cancel_session(session: CheckoutSession, *, now: datetime | None = None) -> CheckoutSession:
    """The customer leaves: an open session with nothing paid becomes ``canceled``. Anything else is left as it
    is (a payment already seen must still be tracked); returns the session either way."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = (
            CheckoutSession.objects.select_for_update(of=("self",))
            .select_related("order", "deposit_address")
            .get(pk=session.pk)
        )
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


# --- validation helpers ---------------------------------------------------------------------------------


def _quotable(
    methods: list[PaymentMethod], named: bool, fiat_amount: Decimal, currency: str, listed: bool, now: datetime
) -> tuple[list[PaymentMethod], Quote | None]:
    """The methods the session offers, and the locked quote when there is one method (chosen now).

    A method the merchant named must have a rate for the currency (else a field error); of "every configured
    pair", those without one are left out. A rate that is only unavailable for now does not remove a method from
    the chooser (the customer may choose it once the price is back)."""
    field = "payment_methods" if listed else "asset"
    if len(methods) == 1:
        try:
            return methods, quote_method(fiat_amount, currency, methods[0], now=now)
        except PriceTooSmall as exc:
            raise ValidationError({"amount": [str(exc)]}) from None
        except NoRate as exc:
            raise ValidationError({field: [str(exc)]}) from None
    kept: dict[PaymentMethod, Quote | None] = {}
    for method in methods:
        try:
            kept[method] = quote_method(fiat_amount, currency, method, now=now)
        except RateUnavailable:
            kept[method] = None
        except NoRate as exc:
            if named:
                raise ValidationError({field: [f"{method.asset} on {method.network}: {exc}"]}) from None
    if not kept:
        raise ValidationError({field: [f"no configured asset can be priced in {currency}: add a rate for one."]})
    # Only one left to offer: nothing to choose, so it is chosen now (when it can be priced now).
    only = next(iter(kept.values())) if len(kept) == 1 else None
    return list(kept), only


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
    value = parse_amount(amount)
    if value is None:
        errors["amount"] = f"{amount!r} is not an amount: give {AMOUNT_FORM}."
    elif value <= 0:
        errors["amount"] = "the amount must be greater than zero."
    elif value >= MAX_FIAT_AMOUNT:
        errors["amount"] = "the amount is too large."
    elif decimal_places(value) > exponent and value != value.quantize(Decimal(10) ** -exponent):
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


def _check_text(errors: dict[str, str], **fields: Any) -> None:
    """Refuse text no database stores exactly (NUL, lone surrogates), naming the field, before any write."""
    for name, value in fields.items():
        found = unstorable_text(value, name)
        if found and name not in errors:
            errors[name] = f"{found[0]} {found[1]}."


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
        "quote_rate": q.rate,
        "quote_source": q.source,
        "quoted_at": q.quoted_at,
    }
