"""Payment methods: the (network, asset) pairs a session may be paid with, and the customer's choice among them.

A session created with a ``network`` and an ``asset`` has one method, chosen at creation (as before). One created
without them (all configured pairs, or those of the one network or asset given) or with ``payment_methods``
opens on the hosted page's chooser. :func:`offers` quotes each method for the chooser exactly as
:func:`choose_payment_method` will lock it; choosing locks the quote and gives the session its deposit address in
one transaction, and may be repeated (switching) until something was sent to the session.

Switching to another asset on the same network keeps the deposit address (a late transfer of the first asset is
still seen, as a payment in another asset). Switching network takes an address on the new network; the old one,
like every deposit address, is never given to another session, and the scanner keeps watching it every block until
its ``busy_until``. A payment that still reaches it is tied to this session (the address remembers the session it
was made for) and is unmatched, ``wrong_asset``: the customer now pays on another network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import AssetConfig, NetworkConfig, gateway_settings
from ..deposits import allocate_address, bind_to_session
from ..models import CheckoutSession, PaymentStatus, SessionStatus, TransferStatus
from ..money import format_units
from ..pricing import NoRate, Quote, RateUnavailable, get_quote

MAX_METHODS = 50


class PriceTooSmall(NoRate):
    """The price rounds to nothing in this asset."""


@dataclass(frozen=True)
class PaymentMethod:
    """One way to pay: an asset on a network."""

    network: str
    asset: str

    @property
    def key(self) -> str:
        """``"network:asset"``: how a form names the method (neither part can contain a colon)."""
        return f"{self.network}:{self.asset}"

    def as_dict(self) -> dict[str, str]:
        return {"network": self.network, "asset": self.asset}


@dataclass(frozen=True)
class Offer:
    """A payment method as the chooser shows it: its quote now, or why there is none (``error``)."""

    method: PaymentMethod
    network: NetworkConfig
    asset: AssetConfig
    quote: Quote | None
    error: str = ""

    @property
    def amount_display(self) -> str | None:
        return format_units(self.quote.amount, self.asset.decimals) if self.quote else None


def resolve_methods(
    network: str, asset: str, payment_methods: Any, errors: dict[str, str]
) -> tuple[list[PaymentMethod], bool]:
    """The methods a new session offers, and whether the merchant named them (``payment_methods``, or a network
    and an asset) rather than asking for "everything configured" (of one network or asset). Bad input is added to
    ``errors`` by field name.

    - ``network`` + ``asset``: that one method (the session skips the chooser);
    - ``payment_methods``: exactly those, in that order (a list of ``{"network", "asset"}``);
    - only ``network`` or only ``asset``, or neither: every configured pair that matches.
    """
    if payment_methods is not None:
        if network or asset:
            errors["payment_methods"] = "give either network and asset or payment_methods, not both."
            return [], True
        return _listed_methods(payment_methods, errors), True
    if network and asset:
        net = _network(network, errors, "network")
        if net is not None and _asset(net, asset, errors, "asset") is not None:
            return [PaymentMethod(network, asset)], True
        return [], True
    networks = gateway_settings.networks
    if network:
        if _network(network, errors, "network") is None:
            return [], False
        networks = {network: networks[network]}
    found = [PaymentMethod(name, symbol) for name, net in networks.items() for symbol in net.assets]
    if asset:
        found = [m for m in found if m.asset == asset]
        if not found:
            where = f"network {network!r}" if network else "any configured network"
            errors["asset"] = f"asset {asset!r} is not configured on {where}."
    elif not found:
        errors["network"] = "no network is configured: add one to PAYMENTS_GATEWAY['NETWORKS']."
    return found, False


def quote_method(fiat_amount: Decimal, currency: str, method: PaymentMethod, *, now: datetime) -> Quote:
    """The quote for ``method``, as the chooser shows it and the choice locks it. Raises ``NoRate`` (no rate for
    this pair; ``PriceTooSmall``: the price rounds to nothing in it), ``RateUnavailable`` or ``ValueError`` (not
    configured)."""
    network = gateway_settings.network(method.network)
    quote = get_quote(fiat_amount, currency, method.asset, network, now=now)
    if quote.amount <= 0:
        raise PriceTooSmall(_("the price is too small to charge in %(asset)s.") % {"asset": method.asset})
    return quote


def offers(session: CheckoutSession, *, now: datetime | None = None) -> list[Offer]:
    """The session's payment methods that are still configured, each with the quote a choice would lock now."""
    now = now or timezone.now()
    found = []
    for method in session_methods(session):
        network = gateway_settings.networks.get(method.network)
        asset = network.assets.get(method.asset) if network else None
        if network is None or asset is None:
            continue  # removed from the settings since the session was created
        try:
            quote, error = quote_method(session.fiat_amount, session.fiat_currency, method, now=now), ""
        except NoRate:
            quote, error = None, _("Not available for this price.")
        except RateUnavailable:
            quote, error = None, _("No price available right now.")
        found.append(Offer(method, network, asset, quote, error))
    return found


def session_methods(session: CheckoutSession) -> list[PaymentMethod]:
    """The methods ``session`` offers (its chosen one when it was created with a network and an asset)."""
    listed = [PaymentMethod(m["network"], m["asset"]) for m in session.payment_methods or []]
    if not listed and session.network and session.asset:
        listed = [PaymentMethod(session.network, session.asset)]
    return listed


def can_switch(session: CheckoutSession) -> bool:
    """Whether the customer may (still) choose another method: the session is open, offers several, and nothing
    was sent to it yet."""
    return (
        session.status == SessionStatus.OPEN
        and len(session_methods(session)) > 1
        and not (session.method_chosen and payment_in_progress(session))
    )


def payment_in_progress(session: CheckoutSession) -> bool:
    """Whether something was sent to this session (seen on chain, in any asset, not reverted)."""
    return (
        session.payment_status != PaymentStatus.UNPAID
        or session.transfers.exclude(status=TransferStatus.REVERTED).exists()
    )


def choose_payment_method(
    session: CheckoutSession,
    network: str,
    asset: str,
    *,
    expected_amount: int | None = None,
    language: str = "",
    now: datetime | None = None,
) -> CheckoutSession:
    """The customer pays ``session`` in ``asset`` on ``network``: lock the quote and give the session its deposit
    address, in one transaction. Choosing again switches method, until something was sent to the session.

    ``expected_amount``: the base units the customer was shown; if the quote now differs (the rate moved), nothing
    changes and ``ValidationError`` says so, so a customer never gets a price they did not see. ``language``: the
    language of the page the customer chose on, kept as the session's (e-mails to the customer use it). Raises
    ``ValidationError`` ({"payment_method": [message]}, for the customer) for a method the session does not offer,
    a session that is not open or already has a payment, and ``RateUnavailable`` when no price can be had now.
    """
    now = now or timezone.now()
    method = PaymentMethod(network, asset)
    if method not in session_methods(session):
        raise _refused(
            _("%(asset)s on %(network)s is not a payment method of this checkout.")
            % {"asset": asset or "?", "network": network or "?"}
        )
    try:
        quote = quote_method(session.fiat_amount, session.fiat_currency, method, now=now)
    except (NoRate, ValueError) as exc:
        raise _refused(str(exc)) from None
    if expected_amount is not None and quote.amount != expected_amount:
        decimals = gateway_settings.network(network).asset(asset).decimals
        raise _refused(
            _("The price in %(asset)s changed to %(amount)s %(asset)s. Please check it and choose again.")
            % {"asset": asset, "amount": format_units(quote.amount, decimals)},
            code="price_changed",
        )
    with transaction.atomic():
        locked = (
            CheckoutSession.objects.select_for_update(of=("self",)).select_related("deposit_address").get(pk=session.pk)
        )
        _check_can_choose(locked)
        if (locked.network, locked.asset) != (network, asset):
            _apply_choice(locked, method, quote, now)
        if language and language != locked.language:
            CheckoutSession.objects.filter(pk=locked.pk).update(language=language)
    session.refresh_from_db()
    return session


# --- helpers ---------------------------------------------------------------------------------------------------


def _check_can_choose(session: CheckoutSession) -> None:
    if session.status != SessionStatus.OPEN:
        raise _refused(_("This checkout is no longer open, so its payment method cannot change."), code="closed")
    if session.method_chosen and payment_in_progress(session):
        raise _refused(
            _(
                "A payment was already sent to this checkout, so the payment method can no longer change. "
                "Pay the rest in %(asset)s on %(network)s."
            )
            % {"asset": session.asset, "network": session.network},
            code="payment_seen",
        )


def _apply_choice(session: CheckoutSession, method: PaymentMethod, quote: Quote, now: datetime) -> None:
    let_go = None
    if session.network != method.network or session.deposit_address_id is None:
        # The old address (another network) keeps its busy_until: it is watched every block while this customer
        # might still pay to it (and, like every address, never given to anyone else), and stays tied to this
        # session by made_for once the session holds the new one.
        let_go = session.deposit_address_id
        busy_until = session.expires_at + gateway_settings.LATE_PAYMENT_WINDOW
        session.deposit_address = allocate_address(method.network, busy_until, now=now)
    session.network = method.network
    session.asset = method.asset
    session.amount_due = quote.amount
    session.quote_rate = quote.rate
    session.quote_source = quote.source
    session.quoted_at = quote.quoted_at
    session.save()
    if let_go is not None:
        bind_to_session(let_go, session.pk)


def _refused(message: str, code: str = "invalid") -> ValidationError:
    return ValidationError({"payment_method": [ValidationError(message, code=code)]})


def _listed_methods(value: Any, errors: dict[str, str]) -> list[PaymentMethod]:
    example = 'a list like [{"network": "ethereum", "asset": "USDC"}]'
    if not isinstance(value, list | tuple) or not value:
        errors["payment_methods"] = f"must be {example}."
        return []
    if len(value) > MAX_METHODS:
        errors["payment_methods"] = f"at most {MAX_METHODS} payment methods."
        return []
    methods: list[PaymentMethod] = []
    for i, item in enumerate(value):
        where = f"item {i + 1}"
        if not isinstance(item, dict) or set(item) != {"network", "asset"}:
            errors["payment_methods"] = f"{where} must be an object with exactly 'network' and 'asset'."
            return []
        found: dict[str, str] = {}
        net = _network(item["network"], found, where)
        if net is not None:
            _asset(net, item["asset"], found, where)
        if found:
            errors["payment_methods"] = found[where]
            return []
        method = PaymentMethod(item["network"], item["asset"])
        if method in methods:
            errors["payment_methods"] = f"{where} repeats {method.asset} on {method.network}."
            return []
        methods.append(method)
    return methods


def _network(name: Any, errors: dict[str, str], field: str) -> NetworkConfig | None:
    try:
        return gateway_settings.network(name)
    except (ValueError, TypeError) as exc:
        errors[field] = (f"{field}: " if field.startswith("item") else "") + str(exc)
        return None


def _asset(net: NetworkConfig, symbol: Any, errors: dict[str, str], field: str) -> AssetConfig | None:
    try:
        return net.asset(symbol)
    except (ValueError, TypeError) as exc:
        errors[field] = (f"{field}: " if field.startswith("item") else "") + str(exc)
        return None
