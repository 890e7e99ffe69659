"""The customer's refund page ``/refund/<token>/``: where they give the address to refund, through a signed link.

The token is the refund's uuid signed with Django's ``signing`` (salted, timestamped): it cannot be guessed or
altered, and it expires after ``REFUND_LINK_TTL`` (410, "ask the shop for a new link"). The page names the
network, the asset and the amount, and asks for the address twice; ``services/refunds.py``
``set_refund_address`` refuses a malformed address, one without its EIP-55 checksum or with a wrong one (a typing
mistake), and two entries that differ, each with a message saying what to do. Like every hosted page it has the
shop's branding, speaks the customer's language with a switcher (``layout.py``) and the hosted pages' security
headers; its form has their rate limit.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from ..conf import gateway_settings
from ..i18n import localize_amount, with_language
from ..models import Refund, RefundStatus
from ..money import format_units
from ..services.refunds import ClaimLinkExpired, refund_for_token, set_refund_address
from .layout import hosted_page, in_posted_language, page_context
from .security import hosted_page_action

TEMPLATE = "payments_gateway/refund.html"


@hosted_page(remember_language=True)
@never_cache
@require_http_methods(["GET", "POST"])
def refund_claim(request, token):
    """The refund page: GET shows the refund and the address form; POST gives the address."""
    try:
        refund = refund_for_token(token)
    except ClaimLinkExpired:
        return render(request, TEMPLATE, page_context(request) | {"expired": True}, status=410)
    if refund is None:
        raise Http404("No such refund link.")
    if request.method == "POST":
        return _give_address(request, token=token)
    return _page(request, refund, token)


@hosted_page_action
def _give_address(request, *, token):
    refund = refund_for_token(token)
    assert refund is not None  # checked by refund_claim a moment ago
    address, confirm = request.POST.get("address", ""), request.POST.get("confirm", "")
    try:
        set_refund_address(refund, address, confirm)
    except ValidationError as exc:
        errors = {field: " ".join(messages) for field, messages in exc.message_dict.items()}
        return _page(request, refund, token, errors=errors, address=address, confirm=confirm, status=400)
    return redirect(in_posted_language(request, reverse("payments_gateway:refund-claim", args=[token])))


def _page(request, refund: Refund, token: str, *, errors=None, address="", confirm="", status=200):
    network = gateway_settings.networks.get(refund.network)
    decimals = gateway_settings.decimals(refund.network, refund.asset)
    if decimals is not None:
        amount, unit = localize_amount(format_units(refund.amount, decimals)), refund.asset
    else:
        amount = localize_amount(refund.amount)
        unit = _("base units of the token %(token)s") % {"token": refund.asset}
    context = page_context(request) | {
        "refund": refund,
        "network_name": network.display_name if network else refund.network,
        "chain_id": network.chain_id if network else None,
        "amount": amount,
        "unit": unit,
        "awaiting": refund.status == RefundStatus.AWAITING_ADDRESS,
        "tx_url": network.explorer_link("tx", refund.tx_hash) if network and refund.tx_hash else None,
        "form_url": with_language(reverse("payments_gateway:refund-claim", args=[token])),
        "errors": errors or {},
        "address": address,
        "confirm": confirm,
    }
    return render(request, TEMPLATE, context, status=status)
