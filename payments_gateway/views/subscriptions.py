"""The customer's own page of a subscription, ``/subscriptions/<token>/`` (the signed link in every e-mail).

It shows the status, the next due date and the open renewal's pay link, and lets the customer cancel in two steps
without JavaScript: the "Cancel subscription" button (GET) shows a confirmation page whose form (POST) cancels.
An active subscription is canceled at the end of the period already paid; any other one at once. The page has the
hosted pages' security headers, and its POST their rate limit.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from ..models import SessionStatus, Subscription, SubscriptionStatus
from ..money import format_fiat
from ..services.subscription_mail import subscription_for_token
from ..services.subscriptions import cancel_subscription
from .security import hosted_page_action, hosted_page_headers


@hosted_page_headers
@never_cache
@require_GET
def subscription(request, token):
    """Status, next due date, the open renewal's pay link, and the cancel button."""
    found = _subscription_or_404(token)
    return render(request, "payments_gateway/subscription.html", _context(found, token))


@hosted_page_headers
@never_cache
@require_http_methods(["GET", "POST"])
def cancel(request, token):
    """GET: the second step, "Do you really want to cancel?" with the form that does it. POST: cancel."""
    if request.method == "POST":
        return _cancel(request, token=token)
    found = _subscription_or_404(token)
    if not _cancelable(found):
        return redirect("payments_gateway:subscription", token=token)
    return render(request, "payments_gateway/subscription_cancel.html", _context(found, token))


@hosted_page_action
def _cancel(request, token):
    """Cancel: at the end of the paid period when active, else now. Back to the page with what happened."""
    found = _subscription_or_404(token)
    if _cancelable(found):
        at_period_end = found.status == SubscriptionStatus.ACTIVE
        try:
            cancel_subscription(found, at_period_end=at_period_end)
        except ValidationError as exc:  # canceled meanwhile (another tab, the merchant)
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(
                request,
                _("Your subscription will end with the period already paid.")
                if at_period_end
                else _("Your subscription is canceled."),
            )
    return redirect("payments_gateway:subscription", token=token)


def price_text(subscription: Subscription) -> str:
    """The price and period, translated: "9.90 USD every month", "25.00 USD every 3 months"."""
    n = subscription.interval_count
    every = {
        "day": ngettext("%(amount)s %(currency)s every day", "%(amount)s %(currency)s every %(n)d days", n),
        "week": ngettext("%(amount)s %(currency)s every week", "%(amount)s %(currency)s every %(n)d weeks", n),
        "month": ngettext("%(amount)s %(currency)s every month", "%(amount)s %(currency)s every %(n)d months", n),
        "year": ngettext("%(amount)s %(currency)s every year", "%(amount)s %(currency)s every %(n)d years", n),
    }[subscription.interval]
    return every % {"amount": format_fiat(subscription.amount, subscription.currency),
                    "currency": subscription.currency, "n": n}  # fmt: skip


def _subscription_or_404(token: str) -> Subscription:
    found = subscription_for_token(token)
    if found is None:
        raise Http404("No such subscription.")
    return found


def _cancelable(subscription: Subscription) -> bool:
    return subscription.status != SubscriptionStatus.CANCELED and not subscription.cancel_at_period_end


def _context(subscription: Subscription, token: str) -> dict:
    latest = subscription.periods.select_related("session").order_by("-number").first()
    open_session = latest.session if latest and latest.session.status == SessionStatus.OPEN else None
    return {
        "subscription": subscription,
        "price": price_text(subscription),
        "token": token,
        "open_session": open_session,
        "cancelable": _cancelable(subscription),
        "cancels_at_period_end": subscription.status == SubscriptionStatus.ACTIVE,
    }
