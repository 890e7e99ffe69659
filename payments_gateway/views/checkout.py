"""The hosted checkout page ``/pay/<uuid>/`` and its live status (JSON polling + Server-Sent Events).

Every read first expires a session whose time is up (``expire_if_due``), so no page, poll or stream shows a
stale open session. The page works without JavaScript: a refresh link and a ``<noscript>`` meta refresh. A session
whose customer has not chosen how to pay shows the chooser (``choose.py``). Every page speaks the customer's
language (``payments_gateway/i18n.py``) and carries the shop's branding (``layout.py``).
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from ..api.errors import json_error
from ..conf import gateway_settings
from ..i18n import with_language
from ..models import CheckoutSession, SessionStatus
from ..qr import qr_data_uri, qr_png
from ..services.customers import attach_customer
from ..services.payloads import amount_to_pay, payment_uri
from ..services.sessions import cancel_session, redirect_url
from .choose import chooser_context
from .layout import back_to_page, hosted_page, page_context
from .live import async_stream, read_closing, sync_stream
from .lookup import session_or_404, session_or_none
from .presentation import checkout_state
from .security import hosted_page_action, hosted_page_poll, hosted_page_stream
from .wallet import wallet_context

TEST_WALLET_AMOUNTS = ("full", "half")
# After payment, the page sends the customer back to the shop by itself after this many seconds.
SUCCESS_REDIRECT_SECONDS = 5


@hosted_page(remember_language=True)
@never_cache
@require_GET
def checkout(request, uuid):
    """The payment page: amount, address, QR, wallet button, countdown, live status, transactions, customer form,
    cancel / continue. Before a payment method is chosen (or with ``?change=1`` while switching is possible): the
    chooser."""
    session = session_or_404(uuid)
    state = checkout_state(session)
    is_open = session.status == SessionStatus.OPEN
    choosing = is_open and (not session.method_chosen or (bool(request.GET.get("change")) and state["can_switch"]))
    network = gateway_settings.networks.get(session.network)
    asset = network.assets.get(session.asset) if network else None
    context = page_context(request) | {
        "session": session,
        "state": state,
        "network": network,
        "asset": asset,
        "open": is_open,
        "complete": session.status == SessionStatus.COMPLETE,
        "qr": qr_data_uri(state["payment_uri"]) if state["payment_uri"] else "",
        "needs_customer": session.customer_id is None and is_open,
        "test_wallet": bool(network and network.dev and is_open and session.method_chosen),
        "test_wallet_amounts": {
            "full": _("Pay the full amount with test wallet"),
            "half": _("Pay half of it with test wallet"),
        },  # fmt: skip
        "refresh_seconds": 10,
        "success_seconds": SUCCESS_REDIRECT_SECONDS,
        "back_url": redirect_url(session.cancel_url, session) if session.cancel_url else "",
        "urls": _urls(session),
    }
    if choosing:
        return render(request, "payments_gateway/choose.html", context | chooser_context(session))
    if is_open and network and asset and session.method_chosen:
        context |= wallet_context(session, network, asset)
    return render(request, "payments_gateway/checkout.html", context)


@hosted_page()
@never_cache
@require_GET
@hosted_page_poll
def status(request, uuid):
    """``GET /pay/<uuid>/status``: the page's state as JSON, for polling."""
    session = session_or_none(uuid)
    if session is None:
        return json_error(404, f"No payment {uuid}.", "not_found")
    return _json(checkout_state(session))


@hosted_page()
@transaction.non_atomic_requests
@require_GET
@hosted_page_stream
async def events(request, uuid):
    """``GET /pay/<uuid>/events``: Server-Sent Events, one ``status`` event now and each time the state changes.

    Under ASGI the stream waits for the change itself (``views/live.py``: no thread, no per-page loop); under WSGI
    it re-reads the session every second in the request's thread. The stream ends when the session is no longer
    open, or after a while; the browser's EventSource reconnects. Each client may open
    ``security.STREAM_LIMIT`` streams per session per ``security.STREAM_WINDOW`` seconds (then 429).
    """
    served_async = isinstance(request, ASGIRequest)
    if served_async:  # any executor thread (a thread-sensitive call would hold a thread for the whole stream)
        session = await sync_to_async(read_closing, thread_sensitive=False)(session_or_none, uuid)
    else:  # the request's own thread and its database connection
        session = await sync_to_async(session_or_none)(uuid)
    if session is None:
        return json_error(404, f"No payment {uuid}.", "not_found")
    language = translation.get_language()  # the stream is written after this view returns: keep its language
    stream: Any = async_stream(session, language) if served_async else sync_stream(session.pk, language)
    response = StreamingHttpResponse(stream, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


@hosted_page()
@never_cache
@require_GET
def qr(request, uuid):
    """``GET /pay/<uuid>/qr.png``: the EIP-681 URI of the amount still to pay, as a PNG."""
    session = session_or_404(uuid, related=("deposit_address",))
    uri = payment_uri(session)
    if uri is None:
        raise Http404(f"Nothing is left to pay on {uuid}.")
    return HttpResponse(qr_png(uri), content_type="image/png")


@hosted_page()
@require_POST
@hosted_page_action
def customer(request, uuid):
    """The customer form: create a Customer with this e-mail and attach it to the session (never an existing one:
    see ``attach_customer``)."""
    session = session_or_404(uuid)
    if session.status == SessionStatus.OPEN and session.customer_id is None:
        try:
            attach_customer(session, email=request.POST.get("email", ""), name=request.POST.get("name", ""),
                            language=translation.get_language())  # fmt: skip
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return _back_to_page(request, session)


@hosted_page()
@require_POST
@hosted_page_action
def cancel(request, uuid):
    """Cancel an open, unpaid session and go back to the shop's ``cancel_url``."""
    session = cancel_session(session_or_404(uuid))
    if session.status == SessionStatus.CANCELED and session.cancel_url:
        return HttpResponseRedirect(redirect_url(session.cancel_url, session))
    if session.status != SessionStatus.CANCELED:
        messages.error(request, _("A payment was already received, so this checkout cannot be canceled."))
    return _back_to_page(request, session)


@hosted_page()
@require_GET
def success(request, uuid):
    """The "Continue" link after payment: to the shop's ``success_url`` once the session is complete."""
    session = session_or_404(uuid)
    if session.status == SessionStatus.COMPLETE and session.success_url:
        return HttpResponseRedirect(redirect_url(session.success_url, session))
    return _back_to_page(request, session)


@hosted_page()
@require_POST
@hosted_page_action
def test_pay(request, uuid):
    """Dev chain only: pay this session from a funded dev account, in full or half of what remains."""
    session = session_or_404(uuid)
    network = gateway_settings.networks.get(session.network)
    which = request.POST.get("amount", "full")
    if network is None or not network.dev or which not in TEST_WALLET_AMOUNTS:
        raise Http404("The test wallet exists only on a dev chain.")
    if session.status == SessionStatus.OPEN:
        from ..chain.devchain import DevChainError, pay_session
        from ..chain.rpc import RPCError
        from ..scanning import check_transaction

        units = amount_to_pay(session)
        if units == 0:
            messages.error(request, _("Nothing is left to pay: the payment is waiting for confirmations."))
            return _back_to_page(request, session)
        try:
            tx_hash = pay_session(session, amount=units if which == "full" else max(units // 2, 1))
        except (DevChainError, ValueError) as exc:
            messages.error(request, _("The test wallet could not pay: %(error)s") % {"error": exc})
            return _back_to_page(request, session)
        sent = _("Test wallet sent the full amount") if which == "full" else _("Test wallet sent half of it")
        messages.success(request, f"{sent} ({tx_hash[:12]}…).")
        # Record it now rather than at the next scan, so the page turns "pending" at once (if the node does not
        # answer, the scanner finds it later).
        with contextlib.suppress(RPCError):
            check_transaction(session.network, tx_hash)
    return _back_to_page(request, session)


def _back_to_page(request, session: CheckoutSession) -> HttpResponse:
    """Redirect to the session's page (in the language the form asked for: the page's forms say it)."""
    return redirect(back_to_page(request, session))


def _urls(session: CheckoutSession) -> dict[str, str]:
    """The page's own URLs (its forms, status, stream), each keeping the page's language."""
    names = {"page": "checkout", "status": "checkout-status", "events": "checkout-events",
             "customer": "checkout-customer", "cancel": "checkout-cancel", "success": "checkout-success",
             "test_pay": "checkout-test-pay", "method": "checkout-method"}  # fmt: skip
    urls = {key: with_language(reverse(f"payments_gateway:{name}", args=[session.uuid])) for key, name in names.items()}
    return urls | {"qr": reverse("payments_gateway:checkout-qr", args=[session.uuid])}  # an image: no language


def _json(data) -> HttpResponse:
    response = HttpResponse(json.dumps(data), content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
