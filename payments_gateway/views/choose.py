"""The chooser of the hosted page: how a customer picks the coin and network (``/pay/<uuid>/`` before a choice, or
with ``?change=1`` to switch) and the form it posts (``POST /pay/<uuid>/method``).

It works without JavaScript: each payment method is a submit button of one CSRF-protected form, whose value says
the method and the exact amount shown for it (``network:asset:units``). The service locks the quote only if it
still is that amount, so a customer never gets a price they did not see. Bad input (a method the session does
not offer, a forged value, a choice after a payment was seen) is a message on the page, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from ..i18n import localize_amount
from ..models import CheckoutSession
from ..money import format_fiat
from ..pricing import RateUnavailable
from ..services.methods import Offer, choose_payment_method, offers
from .layout import back_to_page, hosted_page
from .lookup import session_or_404
from .security import hosted_page_action

FIELD = "method"


def chooser_context(session: CheckoutSession) -> dict[str, Any]:
    """The chooser's part of the page: each method with the amount a choice locks now (``choices``)."""
    return {
        "choices": [_choice(offer, session) for offer in offers(session)],
        "fiat_local": localize_amount(format_fiat(session.fiat_amount, session.fiat_currency)),
        "method_field": FIELD,
    }


@hosted_page()
@require_POST
@hosted_page_action
def choose(request: HttpRequest, uuid) -> HttpResponse:
    """Lock the chosen method (``network:asset:units``) and show the page to pay it; or say why not."""
    session = session_or_404(uuid)
    parsed = _parse(request.POST.get(FIELD, ""))
    if parsed is None:
        messages.error(request, _("Please choose one of the payment methods below."))
        return redirect(back_to_page(request, session, "change=1"))
    network, asset, units = parsed
    try:
        choose_payment_method(session, network, asset, expected_amount=units, language=get_language())
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(back_to_page(request, session, "change=1"))
    except RateUnavailable:
        messages.error(request, _("No price is available for %(asset)s right now. Please try again shortly or "
                                  "choose another way to pay.") % {"asset": asset})  # fmt: skip
        return redirect(back_to_page(request, session, "change=1"))
    return redirect(back_to_page(request, session))


def _choice(offer: Offer, session: CheckoutSession) -> dict[str, Any]:
    current = (offer.method.network, offer.method.asset) == (session.network, session.asset)
    return {
        "value": f"{offer.method.key}:{offer.quote.amount}" if offer.quote else "",
        "asset": offer.asset.symbol,
        "network": offer.network.display_name,
        "token": not offer.asset.is_native,
        "amount_local": localize_amount(offer.amount_display),
        "error": offer.error,
        "current": current,
    }


def _parse(value: str) -> tuple[str, str, int] | None:
    """``"network:asset:units"`` → its parts, or None for anything else (a forged or empty value)."""
    parts = value.split(":")
    if len(parts) != 3 or not all(parts) or len(value) > 200 or not parts[2].isascii() or not parts[2].isdigit():
        return None
    return parts[0], parts[1], int(parts[2])
