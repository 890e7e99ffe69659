"""Subscription products ("Coffee club, monthly"): subscribe from the product page, pay the first period on the
gateway's hosted page, come back to a page that checks the payment on the server."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from payments_gateway.models import CheckoutSession, SessionStatus, SessionType
from payments_gateway.pricing import RateUnavailable
from payments_gateway.ratelimit import rate_limit
from payments_gateway.services.subscriptions import create_subscription_session

from .models import Product
from .views import PayWithCryptoForm


class SubscribeForm(PayWithCryptoForm):
    """The customer's e-mail address (renewal reminders go there) and how to pay."""

    email = forms.EmailField(label="Your e-mail (for renewal reminders)", max_length=254)


@require_POST
@rate_limit("shop-subscribe", limit=30, window=600)  # per client and product
def subscribe(request, slug):
    """Create the subscription and its first session, and send the customer to the hosted page to pay it."""
    product = get_object_or_404(Product, slug=slug)
    if not product.is_subscription:
        return redirect("shop:product", slug=slug)
    form = SubscribeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give your e-mail address and choose a network and an asset to pay with.")
        return redirect("shop:product", slug=slug)
    option = form.cleaned_data["option"]
    # "any": the first session offers every configured coin; renewals are in the one the customer paid with.
    network, asset = ("", "") if option == form.ON_THE_PAYMENT_PAGE else option.split(":", 1)
    back = request.build_absolute_uri(reverse("shop:product", args=[slug]))
    try:
        session = create_subscription_session(
            amount=product.price,
            currency=product.currency,
            interval=product.interval,
            description=product.name,
            customer_email=form.cleaned_data["email"],
            network=network,
            asset=asset,
            # Renewals come back here too: {{TRANSACTION_TYPE}} says which (the page checks the session itself).
            success_url=request.build_absolute_uri(reverse("shop:subscribed"))
            + "?session={CHECKOUT_SESSION_ID}&type={{TRANSACTION_TYPE}}",
            cancel_url=back,
            metadata={"shop": "example", "product": product.slug},
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("shop:product", slug=slug)
    except RateUnavailable as exc:
        messages.error(request, f"No price available right now, please try again shortly ({exc}).")
        return redirect("shop:product", slug=slug)
    return redirect("payments_gateway:checkout", uuid=session.uuid)


def subscribed(request):
    """Where the hosted page sends a subscriber after paying. It never trusts the redirect: the session is read
    here, and only a complete subscription session counts."""
    session = None
    try:
        session = (
            CheckoutSession.objects.filter(
                uuid=request.GET.get("session", ""),
                type__in=[SessionType.CREATE_SUBSCRIPTION, SessionType.RENEW_SUBSCRIPTION],
            )
            .select_related("subscription_period__subscription")
            .first()
        )
    except ValidationError:
        session = None  # not a uuid
    paid = session is not None and session.status == SessionStatus.COMPLETE
    subscription = session.subscription_period.subscription if session else None
    return render(request, "shop/subscribed.html", {"session": session, "paid": paid, "subscription": subscription})
