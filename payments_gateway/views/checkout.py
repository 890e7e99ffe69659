"""The hosted checkout page ``/pay/<uuid>/`` and its live status (JSON polling + Server-Sent Events).

Every read first expires a session whose time is up (``expire_if_due``), so no page, poll or stream shows a
stale open session. The page works without JavaScript: a refresh link and a ``<noscript>`` meta refresh.
"""

from __future__ import annotations

import contextlib
import json
import time

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from ..api.errors import json_error
from ..conf import gateway_settings
from ..models import CheckoutSession, SessionStatus
from ..qr import qr_data_uri, qr_png
from ..services.customers import attach_customer
from ..services.payloads import amount_to_pay, payment_uri
from ..services.payments import expire_if_due
from ..services.sessions import cancel_session, redirect_url
from .presentation import checkout_state
from .security import hosted_page_action, hosted_page_headers

# The SSE stream re-reads the session this often and ends after STREAM_SECONDS; EventSource then reconnects
# (after RETRY_MS). Short streams keep a worker from being held forever by one open tab.
POLL_SECONDS = 1
STREAM_SECONDS = 30
RETRY_MS = 2000
TEST_WALLET_AMOUNTS = {"full": "the full amount", "half": "half of it"}


@hosted_page_headers
@never_cache
@require_GET
def checkout(request, uuid):
    """The payment page: amount, address, QR, countdown, live status, customer form, cancel / continue."""
    session = _session_or_404(uuid)
    state = checkout_state(session)
    network = gateway_settings.network(session.network)
    context = {
        "session": session,
        "state": state,
        "network": network,
        "asset": network.asset(session.asset),
        "open": session.status == SessionStatus.OPEN,
        "complete": session.status == SessionStatus.COMPLETE,
        "qr": qr_data_uri(state["payment_uri"]) if state["payment_uri"] else "",
        "needs_customer": session.customer_id is None and session.status == SessionStatus.OPEN,
        "test_wallet": network.dev and session.status == SessionStatus.OPEN,
        "test_wallet_amounts": TEST_WALLET_AMOUNTS,
        "refresh_seconds": 10,
    }
    return render(request, "payments_gateway/checkout.html", context)


@hosted_page_headers
@never_cache
@require_GET
def status(request, uuid):
    """``GET /pay/<uuid>/status``: the page's state as JSON, for polling."""
    session = _session_or_none(uuid)
    if session is None:
        return json_error(404, f"No payment {uuid}.", "not_found")
    return _json(checkout_state(session))


@hosted_page_headers
@transaction.non_atomic_requests
@require_GET
def events(request, uuid):
    """``GET /pay/<uuid>/events``: Server-Sent Events, one ``status`` event each time the state changes.

    Each query runs in autocommit (no transaction is held between polls). The stream ends after
    ``STREAM_SECONDS`` or when the session is no longer open; the browser's EventSource reconnects.
    """
    session = _session_or_none(uuid)
    if session is None:
        return json_error(404, f"No payment {uuid}.", "not_found")
    response = StreamingHttpResponse(_stream(session.pk), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response


@hosted_page_headers
@never_cache
@require_GET
def qr(request, uuid):
    """``GET /pay/<uuid>/qr.png``: the EIP-681 URI of the amount still to pay, as a PNG."""
    session = _session_or_404(uuid, related=("deposit_address",))
    uri = payment_uri(session)
    if uri is None:
        raise Http404(f"Nothing is left to pay on {uuid}.")
    return HttpResponse(qr_png(uri), content_type="image/png")


@hosted_page_headers
@require_POST
@hosted_page_action
def customer(request, uuid):
    """The customer form: create a Customer with this e-mail and attach it to the session (never an existing one:
    see ``attach_customer``)."""
    session = _session_or_404(uuid)
    if session.status == SessionStatus.OPEN and session.customer_id is None:
        try:
            attach_customer(session, email=request.POST.get("email", ""), name=request.POST.get("name", ""))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    return redirect("payments_gateway:checkout", uuid=session.uuid)


@hosted_page_headers
@require_POST
@hosted_page_action
def cancel(request, uuid):
    """Cancel an open, unpaid session and go back to the shop's ``cancel_url``."""
    session = cancel_session(_session_or_404(uuid))
    if session.status == SessionStatus.CANCELED and session.cancel_url:
        return HttpResponseRedirect(redirect_url(session.cancel_url, session))
    if session.status != SessionStatus.CANCELED:
        messages.error(request, "A payment was already received, so this checkout cannot be canceled.")
    return redirect("payments_gateway:checkout", uuid=session.uuid)


@hosted_page_headers
@require_GET
def success(request, uuid):
    """The "Continue" link after payment: to the shop's ``success_url`` once the session is complete."""
    session = _session_or_404(uuid)
    if session.status == SessionStatus.COMPLETE and session.success_url:
        return HttpResponseRedirect(redirect_url(session.success_url, session))
    return redirect("payments_gateway:checkout", uuid=session.uuid)


@hosted_page_headers
@require_POST
@hosted_page_action
def test_pay(request, uuid):
    """Dev chain only: pay this session from a funded dev account, in full or half of what remains."""
    session = _session_or_404(uuid)
    network = gateway_settings.network(session.network)
    which = request.POST.get("amount", "full")
    if not network.dev or which not in TEST_WALLET_AMOUNTS:
        raise Http404("The test wallet exists only on a dev chain.")
    if session.status == SessionStatus.OPEN:
        from ..chain.devchain import DevChainError, pay_session
        from ..chain.rpc import RPCError
        from ..scanning import check_transaction

        units = amount_to_pay(session)
        if units == 0:
            messages.error(request, "Nothing is left to pay: the payment is waiting for confirmations.")
            return redirect("payments_gateway:checkout", uuid=session.uuid)
        try:
            tx_hash = pay_session(session, amount=units if which == "full" else max(units // 2, 1))
        except (DevChainError, ValueError) as exc:
            messages.error(request, f"The test wallet could not pay: {exc}")
            return redirect("payments_gateway:checkout", uuid=session.uuid)
        messages.success(request, f"Test wallet sent {TEST_WALLET_AMOUNTS[which]} ({tx_hash[:12]}…).")
        # Record it now rather than at the next scan, so the page turns "pending" at once (if the node does not
        # answer, the scanner finds it later).
        with contextlib.suppress(RPCError):
            check_transaction(session.network, tx_hash)
    return redirect("payments_gateway:checkout", uuid=session.uuid)


def _session_or_none(uuid, related=("order", "customer", "deposit_address")) -> CheckoutSession | None:
    try:
        session = CheckoutSession.objects.select_related(*related).get(uuid=uuid)
    except CheckoutSession.DoesNotExist:
        return None
    return expire_if_due(session)


def _session_or_404(uuid, **kwargs) -> CheckoutSession:
    session = _session_or_none(uuid, **kwargs)
    if session is None:
        raise Http404(f"No payment {uuid}.")
    return session


def _json(data) -> HttpResponse:
    response = HttpResponse(json.dumps(data), content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


def _stream(pk: int):
    yield f"retry: {RETRY_MS}\n\n"
    deadline = time.monotonic() + STREAM_SECONDS
    last = None
    while True:
        session = expire_if_due(CheckoutSession.objects.select_related("order", "deposit_address").get(pk=pk))
        state = checkout_state(session)
        changed = {k: v for k, v in state.items() if k != "seconds_left"}
        if changed != last:
            last = changed
            yield f"event: status\ndata: {json.dumps(state)}\n\n"
        if session.status != SessionStatus.OPEN or time.monotonic() >= deadline:
            return
        time.sleep(POLL_SECONDS)
