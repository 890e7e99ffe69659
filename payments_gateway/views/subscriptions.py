"""The customer's own page of a subscription, ``/subscriptions/<token>/`` (the signed link in every e-mail).

It shows the status, the next due date and the open renewal's pay link, and lets the customer cancel in two steps
without JavaScript: the "Cancel subscription" button (GET) shows a confirmation page whose form (POST) cancels.
An active subscription is canceled at the end of the period already paid; any other one at once. Like every hosted
page it has the shop's branding, speaks the customer's language with a switcher (``layout.py``; its links and forms
keep that language, the pay link included) and the hosted pages' security headers; its POST has their rate limit.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from ..i18n import localize_amount, with_language
from ..models import SessionStatus, Subscription, SubscriptionStatus
from ..money import format_fiat
from ..services.subscription_mail import subscription_for_token
from ..services.subscriptions import cancel_subscription
from .layout import hosted_page, in_posted_language, page_context
from .security import hosted_page_action


@hosted_page(remember_language=True)
@never_cache
@require_GET
def subscription(request, token):
    """Status, next due date, the open renewal's pay link, and the cancel button."""
    found = _subscription_or_404(token)
    return render(request, "payments_gateway/subscription.html", _context(request, found, token))


@hosted_page(remember_language=True)
@never_cache
@require_http_methods(["GET", "POST"])
def cancel(request, token):
    """GET: the second step, "Do you really want to cancel?" with the form that does it. POST: cancel."""
    if request.method == "POST":
        return _cancel(request, token=token)
    found = _subscription_or_404(token)
    if not _cancelable(found):
        return redirect(_page_url(request, token))
    return render(request, "payments_gateway/subscription_cancel.html", _context(request, found, token))


@hosted_page_action
def _cancel(request, token):
    """Cancel: at the end of the paid period when active, else now. Back to the page with what happened."""
    found = _subscription_or_404(token)
    if _cancelable(found):
        at_period_end = found.status == SubscriptionStatus.ACTIVE
        try:
            cancel_subscription(found, at_period_end=at_period_end)
        except ValidationError:  # canceled meanwhile (another tab, the merchant): the page shows how it stands
            messages.error(request, _("This subscription was changed in the meantime; nothing more was canceled."))
        else:
            messages.success(
                request,
                _("Your subscription will end with the period already paid.")
                if at_period_end
                else _("Your subscription is canceled."),
            )
    return redirect(_page_url(request, token))


def price_text(subscription: Subscription) -> str:
    """The price and period in the active language: "9.90 USD every month", "25,00 USD alle 3 Monate"."""
    n = subscription.interval_count
    every = {
        "day": ngettext("%(amount)s %(currency)s every day", "%(amount)s %(currency)s every %(n)d days", n),
        "week": ngettext("%(amount)s %(currency)s every week", "%(amount)s %(currency)s every %(n)d weeks", n),
        "month": ngettext("%(amount)s %(currency)s every month", "%(amount)s %(currency)s every %(n)d months", n),
        "year": ngettext("%(amount)s %(currency)s every year", "%(amount)s %(currency)s every %(n)d years", n),
    }[subscription.interval]
    amount = localize_amount(format_fiat(subscription.amount, subscription.currency))
    return every % {"amount": amount, "currency": subscription.currency, "n": n}


def _subscription_or_404(token: str) -> Subscription:
    found = subscription_for_token(token)
    if found is None:
        raise Http404("No such subscription.")
    return found


def _cancelable(subscription: Subscription) -> bool:
    return subscription.status != SubscriptionStatus.CANCELED and not subscription.cancel_at_period_end


def _page_url(request, token: str) -> str:
    return in_posted_language(request, reverse("payments_gateway:subscription", args=[token]))


def _context(request, subscription: Subscription, token: str) -> dict:
    latest = subscription.periods.select_related("session").order_by("-number").first()
    open_session = latest.session if latest and latest.session.status == SessionStatus.OPEN else None
    cancel_url = reverse("payments_gateway:subscription-cancel", args=[token])
    return page_context(request) | {
        "subscription": subscription,
        "price": price_text(subscription),
        "token": token,
        "open_session": open_session,
        "pay_url": with_language(reverse("payments_gateway:checkout", args=[open_session.uuid]))
        if open_session else "",
        "page_url": with_language(reverse("payments_gateway:subscription", args=[token])),
        "cancel_url": cancel_url,  # a GET form: the page's language goes in a field, not the query
        "cancel_form_url": with_language(cancel_url),
        "cancelable": _cancelable(subscription),
        "cancels_at_period_end": subscription.status == SubscriptionStatus.ACTIVE,
    }  # fmt: skip
